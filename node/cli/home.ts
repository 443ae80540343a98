import { existsSync, lstatSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { bytesEqual } from '../../crypto/bytes.js'
import { sha256 } from '../../crypto/hash.js'
import { MAX_KEY_FILE_LENGTH, decodeKeyFile } from '../../crypto/keyfile.js'
import { parseStrictJson } from '../../crypto/strictJson.js'
import { parseConfig, type NodeConfig } from '../../genesis/config.js'
import type { FieldError } from '../../genesis/fieldErrors.js'
import {
  genesisHeader,
  parseCompactGenesis,
  parseGenesis,
  parseGenesisHeader,
  type CompactGenesis,
  type Genesis,
  type GenesisHeader,
} from '../../genesis/genesis.js'
import { GenesisBalances } from '../../genesis/genesisBalances.js'
import { FileReadError, checkRegularFile, readBoundedFileSync } from './boundedFile.js'
import { isPeerId } from '../p2p/peerId.js'
import { MAX_GENESIS_FILE_BYTES, scanGenesisFile } from './genesisFile.js'

/**
 * A node's home directory (docs/operations.md):
 *  - `config.json`, `genesis.json`;
 *  - `validator_key.json` (the consensus signing key; absent on a non-validator) and `node_key.json` (the libp2p
 *    identity, listed in genesis as the validator's peer id), both key files (crypto/keyfile.ts);
 *  - `validator_state.json`: the safety guard's last signature, and `consensus.wal`: the consensus inputs that led to
 *    it (the lock among them). Neither can be rebuilt from the network, so they live outside `data/`;
 *  - `data/`: everything that can be rebuilt from the network: `data/chain` (classic-level: blocks, certificates,
 *    transaction index, state).
 */
export const HomeFiles = {
  config: 'config.json',
  genesis: 'genesis.json',
  validatorKey: 'validator_key.json',
  nodeKey: 'node_key.json',
  validatorState: 'validator_state.json',
  data: 'data',
  chain: join('data', 'chain'),
  wal: 'consensus.wal',
} as const

/**
 * The consensus WAL's path in a home. A home laid out when the WAL lived in `data/wal/` gets its WAL moved beside the
 * guard's record, so that deleting `data/` cannot take the lock with it.
 */
export function walPath(dir: string): string {
  const path = join(dir, HomeFiles.wal)
  const legacy = join(dir, 'data', 'wal', 'consensus.wal')
  if (!existsSync(path) && existsSync(legacy)) renameSync(legacy, path)
  return path
}

/**
 * `genesis.json` as a home was loaded with it. Its balances are read again, whole, only when they are needed:
 * to seed a new database, or to check a file whose bytes are not the ones a database was seeded from.
 */
export interface GenesisFile {
  readonly path: string
  /** SHA-256 of the file's bytes, as read when the home was loaded. */
  readonly digest: Uint8Array
  /** The file's length in bytes, then. */
  readonly size: number
  /**
   * Reads and validates the whole genesis, balances included, in bounded pieces. Throws a {@link HomeError} naming
   * every problem, or when the file's bytes are no longer the ones the home was loaded with.
   */
  readAll(): Genesis | CompactGenesis
}

/** The genesis of a home: everything but the balances, and the file they are in. */
export interface HomeGenesis extends GenesisHeader {
  readonly file: GenesisFile
}

/** Everything a node reads from its home before it starts. */
export interface NodeHome {
  readonly dir: string
  readonly config: NodeConfig
  /** Checked whole but for the elements of its balances (see {@link GenesisFile.readAll}). */
  readonly genesis: HomeGenesis
  /** The validator signing key's seed, when this home has one. */
  readonly validatorSeed: Uint8Array | undefined
  readonly nodeSeed: Uint8Array
}

/** A home that cannot be used, with every problem named. */
export class HomeError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(problems.length > 0 ? `${message}:\n  ${problems.join('\n  ')}` : message)
  }
}

/**
 * Bounds a JSON file before parsing it. Config and key files are small; a genesis may list a million balances,
 * near 90 bytes each as `tallyd testnet` writes them.
 */
const MAX_FILE_BYTES = MAX_GENESIS_FILE_BYTES

/** A JSON file's bytes and the document they hold. */
function readJson(path: string): { bytes: Buffer; json: unknown } {
  const bytes = homeFile(() => readBoundedFileSync(path, MAX_FILE_BYTES))
  try {
    return { bytes, json: parseStrictJson(bytes.toString('utf8')) }
  } catch (e) {
    throw new HomeError(`${path} is not valid JSON: ${(e as Error).message}`)
  }
}

/** `read()`, its {@link FileReadError} (a missing, oversized or not-regular file) as a {@link HomeError}. */
function homeFile<T>(read: () => T): T {
  try {
    return read()
  } catch (e) {
    if (e instanceof FileReadError) throw new HomeError(e.message)
    throw e
  }
}

/** True when something is at `path`, even a dangling symlink or a loop (which reading then reports). */
export function isPresent(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

const describe = (errors: readonly FieldError[]) => errors.map((e) => `${e.path}: ${e.message}`)

const invalidGenesis = (path: string, errors: readonly FieldError[]) => new HomeError(`${path} is invalid`, describe(errors))

/**
 * A genesis file read whole, by `JSON.parse` and {@link parseGenesis}: for the files the piecewise reader does not
 * follow (node/cli/genesisFile.ts), so that they are accepted or refused, and their problems named, as always.
 */
function readWholeGenesis(path: string): { genesis: Genesis; digest: Uint8Array; size: number } {
  const { bytes, json } = readJson(path)
  const g = parseGenesis(json)
  if (!g.ok) throw invalidGenesis(path, g.error.errors)
  return { genesis: g.value, digest: sha256(bytes), size: bytes.byteLength }
}

/** The whole genesis at `path`, balances included, read piece by piece; throws HomeError on any problem. */
function readGenesis(path: string): { genesis: Genesis | CompactGenesis; digest: Uint8Array; size: number } {
  homeFile(() => checkRegularFile(path, MAX_GENESIS_FILE_BYTES))
  const balances = new GenesisBalances()
  const scan = homeFile(() => scanGenesisFile(path, (b) => balances.add(b)))
  if (scan === undefined) return readWholeGenesis(path)
  const g = parseCompactGenesis(scan.fields, balances)
  if (!g.ok) throw invalidGenesis(path, g.error.errors)
  return { genesis: g.value, digest: scan.digest, size: scan.size }
}

/** The file behind a home's genesis, loaded with `size` bytes whose digest is `digest`. */
function genesisFile(path: string, digest: Uint8Array, size: number): GenesisFile {
  return {
    path,
    digest,
    size,
    readAll() {
      const r = readGenesis(path)
      if (!bytesEqual(r.digest, digest)) throw new HomeError(`${path} changed while the node was starting; start it again`)
      return r.genesis
    },
  }
}

/**
 * Reads a home's genesis, checking everything but the elements of its balances (they are stepped over). When the
 * header has a problem, the whole file is checked, so that every problem is named at once.
 */
export function loadGenesisHeader(path: string): HomeGenesis {
  homeFile(() => checkRegularFile(path, MAX_GENESIS_FILE_BYTES))
  const scan = homeFile(() => scanGenesisFile(path))
  if (scan !== undefined) {
    const header = parseGenesisHeader(scan.fields)
    if (header.ok) return { ...header.value, file: genesisFile(path, scan.digest, scan.size) }
  }
  const r = scan === undefined ? readWholeGenesis(path) : readGenesis(path)
  return { ...genesisHeader(r.genesis), file: genesisFile(path, r.digest, r.size) }
}

/** Reads and validates a whole genesis file, balances included (for tools that need them all); throws HomeError. */
export function loadGenesis(path: string): Genesis {
  return readWholeGenesis(path).genesis
}

/** Reads a plaintext key file (validator and node keys are unencrypted, mode 600, like CometBFT's). */
export function readKeySeed(path: string): Uint8Array {
  const r = decodeKeyFile(homeFile(() => readBoundedFileSync(path, MAX_KEY_FILE_LENGTH)).toString('utf8'))
  if (!r.ok) throw new HomeError(`${path}: ${r.error.reason}`)
  return r.value.secretKey
}

/**
 * Loads and validates a home; throws HomeError naming every problem. The genesis balances are not read (see
 * {@link HomeGenesis}): they are checked when a database is seeded from them, or when the file is not the one the
 * database was seeded from.
 */
export function loadHome(dir: string): NodeHome {
  const config = parseConfig(readJson(join(dir, HomeFiles.config)).json)
  if (!config.ok) throw new HomeError(`${join(dir, HomeFiles.config)} is invalid`, describe(config.error.errors))
  const configPeers = [
    ...config.value.p2p.peers.map((p, i) => [`p2p.peers[${i}].peerId`, p.peerId] as const),
    ...config.value.p2p.allowedPeerIds.map((id, i) => [`p2p.allowedPeerIds[${i}]`, id] as const),
  ]
  const badConfigPeers = notPeerIds(configPeers)
  if (badConfigPeers.length > 0) throw new HomeError(`${join(dir, HomeFiles.config)} is invalid`, badConfigPeers)
  const genesis = loadGenesisHeader(join(dir, HomeFiles.genesis))
  const badGenesisPeers = notPeerIds(genesis.validators.map((v, i) => [`validators[${i}].peerId`, v.peerId] as const))
  if (badGenesisPeers.length > 0) throw new HomeError(`${join(dir, HomeFiles.genesis)} is invalid`, badGenesisPeers)
  const validatorKeyPath = join(dir, HomeFiles.validatorKey)
  const validatorSeed = isPresent(validatorKeyPath) ? readKeySeed(validatorKeyPath) : undefined
  const nodeSeed = readKeySeed(join(dir, HomeFiles.nodeKey))
  return { dir, config: config.value, genesis, validatorSeed, nodeSeed }
}

/**
 * The problems of peer ids libp2p cannot read, each naming its field. The formats check only their characters
 * (genesis/ and config parsing are pure); libp2p would otherwise fail the start with a message that names nothing.
 */
function notPeerIds(fields: readonly (readonly [string, string])[]): string[] {
  const problems: string[] = []
  for (const [field, id] of fields) {
    if (!isPeerId(id)) problems.push(`${field}: ${id} is not a libp2p peer id (a node key's, as tallyd init prints it: 12D3KooW…)`)
  }
  return problems
}

/** Turns `host:port` (or a multiaddr, kept as it is) into a TCP multiaddr. */
export function toMultiaddr(address: string): string {
  if (address.startsWith('/')) return address
  const i = address.lastIndexOf(':')
  const host = address.slice(0, i).replace(/^\[|\]$/g, '')
  const port = address.slice(i + 1)
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return `/ip4/${host}/tcp/${port}`
  if (host.includes(':')) return `/ip6/${host}/tcp/${port}`
  return `/dns4/${host}/tcp/${port}`
}
