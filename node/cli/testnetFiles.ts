import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, copyFileSync, openSync, readdirSync, writeFileSync, writeSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { formatAddress } from '../../crypto/address.js'
import { encodeKeyFile } from '../../crypto/keyfile.js'
import { formatGenesisHeader, type CompactGenesis, type GenesisJson } from '../../genesis/genesis.js'
import { makeTestnet, testnetSeedCount, type TestnetOptions } from '../../genesis/testnet.js'
import { checkDirectory, makeDirectory } from './directory.js'
import { HomeFiles } from './home.js'
import { MAX_DEFAULT_VERIFY_WORKERS } from '../mempool/verifyPool.js'
import { peerIdOf } from '../p2p/peerId.js'

/**
 * `tallyd testnet`: draws the key seeds, generates the testnet (genesis/testnet.ts, pure) and writes
 * `OUT/genesis.json`, one home per validator `OUT/node{i}` (config.json, genesis.json, validator_key.json,
 * node_key.json) and the funded dev keys `OUT/keys/faucet.json` and `OUT/keys/account{i}.json` (unencrypted).
 */

/** The pure generator's options, less what this writer draws itself (seeds, time), plus where and how to write. */
export interface TestnetFileOptions extends Omit<TestnetOptions, 'seeds' | 'genesisTime' | 'params' | 'unkeyedAddresses'> {
  readonly out: string
  /** Funded addresses whose keys are not kept, drawn at random (state weight for benchmarks); default 0. */
  readonly unkeyedAccounts?: number
  /** Per-validator hosts for peers' addresses (containers); default: `host` for all. */
  readonly hosts?: readonly string[]
  /** The interface to listen on for p2p and RPC; default: `host`. */
  readonly listenHost?: string
  /**
   * `mempool.verifyWorkers` of every validator; `'shared'` (validators sharing this machine, e.g. containers named in
   * `hosts`) writes {@link sharedHostVerifyWorkers}. Default: `'shared'` without `hosts`; with `hosts`, left out
   * (each node then takes its own default).
   */
  readonly verifyWorkers?: number | 'shared'
}

/**
 * Signature verification threads for each of `validators` validators sharing this machine: the cores each has to
 * itself, less one for its event loop, at least 0 and at most the node's own default maximum. A worker thread adds
 * capacity only on a core of its own; on a shared core it only adds hand-offs.
 */
export function sharedHostVerifyWorkers(validators: number, cores = availableParallelism()): number {
  return Math.min(MAX_DEFAULT_VERIFY_WORKERS, Math.max(0, Math.floor(cores / validators) - 1))
}

/** Thrown with every problem named, for the CLI to print. */
export class TestnetError extends Error {}

function writeFile(path: string, text: string, secret = false): void {
  writeFileSync(path, text, { mode: secret ? 0o600 : 0o644 })
  if (secret) chmodSync(path, 0o600)
}

/**
 * `genesis.json`'s text: indented as `JSON.stringify` would, except that each balance takes one line, so that a
 * genesis of a million balances stays near 80 bytes a balance.
 */
export function formatGenesisText(json: GenesisJson): string {
  const { before, after } = genesisTextFrame(json)
  if (json.balances.length === 0) return `${before}${after}`
  return `${before}\n${json.balances.map((b) => `    ${JSON.stringify(b)}`).join(',\n')}\n  ${after}`
}

/**
 * The text of a genesis around its balances' lines: `before` ends with `"balances": [`, `after` starts with `]`.
 * With no lines in between, `before + after` is the text of a genesis without balances.
 */
function genesisTextFrame(json: GenesisJson): { before: string; after: string } {
  const { balances: _, ...rest } = json
  const text = `${JSON.stringify({ ...rest, balances: [] }, null, 2)}\n`
  const at = text.indexOf('"balances": []') + '"balances": ['.length
  return { before: text.slice(0, at), after: text.slice(at) }
}

/** Characters of text gathered before each write of {@link writeGenesisFile}. */
const WRITE_CHARS = 1024 * 1024

/**
 * Writes a genesis to `path` as {@link formatGenesisText} formats it, a piece at a time: the text of a million
 * balances never exists whole.
 */
export function writeGenesisFile(path: string, genesis: CompactGenesis): void {
  const { before, after } = genesisTextFrame(formatGenesisHeader(genesis))
  const { count, addresses, amounts } = genesis.balances
  const fd = openSync(path, 'w', 0o644)
  try {
    let text = before
    for (let i = 0; i < count; i++) {
      const address = Buffer.from(addresses.buffer, addresses.byteOffset + 20 * i, 20).toString('hex')
      text += `${i === 0 ? '\n' : ',\n'}    {"address":"0x${address}","amount":"${amounts[i]}"}`
      if (text.length >= WRITE_CHARS) {
        writeSync(fd, text)
        text = ''
      }
    }
    writeSync(fd, count === 0 ? `${text}${after}` : `${text}\n  ${after}`)
  } finally {
    closeSync(fd)
  }
}

/** `n` random 20-byte addresses, back to back. */
function unkeyedAddresses(n: number): Uint8Array {
  return new Uint8Array(randomBytes(20 * n))
}

/** Generates and writes a testnet; refuses a non-empty output directory. */
export function writeTestnet(o: TestnetFileOptions): { chainId: string; validators: number; faucet: string } {
  if (checkDirectory(o.out).length === 0 && readdirSync(o.out).length > 0) throw new TestnetError(`${o.out} is not empty`)
  if (o.hosts !== undefined && o.hosts.length !== o.validators) throw new TestnetError(`--hosts names ${o.hosts.length} hosts for ${o.validators} validators`)
  const seeds = Array.from({ length: testnetSeedCount(o.validators, o.accounts) }, () => new Uint8Array(randomBytes(32)))
  const r = makeTestnet(
    {
      validators: o.validators,
      chainId: o.chainId,
      host: o.host,
      p2pPort: o.p2pPort,
      rpcPort: o.rpcPort,
      accounts: o.accounts,
      balance: o.balance,
      genesisTime: new Date().toISOString(),
      seeds,
      unkeyedAddresses: unkeyedAddresses(o.unkeyedAccounts ?? 0),
    },
    { peerIdOf },
  )
  if (!r.ok) throw new TestnetError(r.error.errors.map((e) => `${e.path}: ${e.message}`).join('\n'))
  const t = r.value
  makeDirectory(o.out)
  const genesisPath = join(o.out, 'genesis.json')
  writeGenesisFile(genesisPath, t.genesis)
  const verifyWorkers =
    o.verifyWorkers === 'shared' || (o.verifyWorkers === undefined && o.hosts === undefined) ? sharedHostVerifyWorkers(o.validators) : o.verifyWorkers
  t.validators.forEach((v, i) => {
    const home = join(o.out, `node${i}`)
    makeDirectory(home)
    let config = v.config
    if (verifyWorkers !== undefined) config = { ...config, mempool: { ...config.mempool, verifyWorkers } }
    if (o.hosts !== undefined || o.listenHost !== undefined) {
      const listenHost = o.listenHost ?? o.host
      const port = (address: string) => address.slice(address.lastIndexOf(':') + 1)
      config = {
        ...config,
        p2p: {
          ...config.p2p,
          listen: `${listenHost}:${port(config.p2p.listen)}`,
          peers: config.p2p.peers.map((p) => {
            const j = t.validators.findIndex((w) => w.peerId === p.peerId)
            return { peerId: p.peerId, address: `${o.hosts?.[j] ?? o.host}:${port(p.address)}` }
          }),
        },
        rpc: { ...config.rpc, host: listenHost },
      }
    }
    writeFile(join(home, HomeFiles.config), `${JSON.stringify(config, null, 2)}\n`)
    copyFileSync(genesisPath, join(home, HomeFiles.genesis))
    writeFile(join(home, HomeFiles.validatorKey), encodeKeyFile(v.key.seed), true)
    writeFile(join(home, HomeFiles.nodeKey), encodeKeyFile(v.nodeKey.seed), true)
  })
  makeDirectory(join(o.out, 'keys'))
  writeFile(join(o.out, 'keys', 'faucet.json'), encodeKeyFile(t.faucet.seed), true)
  t.accounts.forEach((a, i) => {
    writeFile(join(o.out, 'keys', `account${i}.json`), encodeKeyFile(a.seed), true)
  })
  return { chainId: t.genesis.chainId, validators: t.validators.length, faucet: formatAddress(t.faucet.address) }
}
