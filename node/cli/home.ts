import { existsSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { decodeKeyFile } from '../../crypto/keyfile.js'
import { parseConfig, type NodeConfig } from '../../genesis/config.js'
import type { FieldError } from '../../genesis/fieldErrors.js'
import { parseGenesis, type Genesis } from '../../genesis/genesis.js'

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

/** Everything a node reads from its home before it starts. */
export interface NodeHome {
  readonly dir: string
  readonly config: NodeConfig
  readonly genesis: Genesis
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
const MAX_FILE_BYTES = 192 * 1024 * 1024

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new HomeError(`${path} does not exist`)
  const text = readFileSync(path)
  if (text.byteLength > MAX_FILE_BYTES) throw new HomeError(`${path} is larger than ${MAX_FILE_BYTES} bytes`)
  try {
    return JSON.parse(text.toString('utf8'))
  } catch (e) {
    throw new HomeError(`${path} is not valid JSON: ${(e as Error).message}`)
  }
}

const describe = (errors: readonly FieldError[]) => errors.map((e) => `${e.path}: ${e.message}`)

/** Reads a plaintext key file (validator and node keys are unencrypted, mode 600, like CometBFT's). */
export function readKeySeed(path: string): Uint8Array {
  if (!existsSync(path)) throw new HomeError(`${path} does not exist`)
  const r = decodeKeyFile(readFileSync(path, 'utf8'))
  if (!r.ok) throw new HomeError(`${path}: ${r.error.reason}`)
  return r.value.secretKey
}

/** Loads and validates a home; throws HomeError naming every problem. */
export function loadHome(dir: string): NodeHome {
  const config = parseConfig(readJson(join(dir, HomeFiles.config)))
  if (!config.ok) throw new HomeError(`${join(dir, HomeFiles.config)} is invalid`, describe(config.error.errors))
  const genesis = parseGenesis(readJson(join(dir, HomeFiles.genesis)))
  if (!genesis.ok) throw new HomeError(`${join(dir, HomeFiles.genesis)} is invalid`, describe(genesis.error.errors))
  const validatorKeyPath = join(dir, HomeFiles.validatorKey)
  const validatorSeed = existsSync(validatorKeyPath) ? readKeySeed(validatorKeyPath) : undefined
  const nodeSeed = readKeySeed(join(dir, HomeFiles.nodeKey))
  return { dir, config: config.value, genesis: genesis.value, validatorSeed, nodeSeed }
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
