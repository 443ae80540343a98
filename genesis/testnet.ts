import { addressFromPublicKey } from '../crypto/address.js'
import { keyPairFromSeed, SECRET_KEY_LENGTH } from '../crypto/ed25519.js'
import { to0x } from '../crypto/bytes.js'
import { DEFAULT_CONFIG, parseConfig, type NodeConfig } from './config.js'
import { err, ok } from '../crypto/result.js'
import type { FieldError, ParseResult } from './fieldErrors.js'
import { MAX_GENESIS_BALANCES, parseCompactGenesis, type CompactGenesis, type ConsensusParams } from './genesis.js'
import { GenesisBalances } from './genesisBalances.js'

/**
 * Local testnet generation, pure: the caller (`tallyd testnet`) draws the key seeds and writes the files.
 * Validator i is named `node{i}`, listens for p2p on `host:(p2pPort + i)` and serves RPC on `host:(rpcPort + i)`,
 * and dials every other validator. The faucet, each extra account and each unkeyed address are funded with `balance`.
 */

/** Most extra accounts with keys a testnet may have (each key is derived, and written to a file, one by one). */
export const MAX_TESTNET_KEYED_ACCOUNTS = 100_000

/** What to generate. */
export interface TestnetOptions {
  readonly validators: number
  readonly chainId: string
  readonly host: string
  readonly p2pPort: number
  readonly rpcPort: number
  /** Extra funded accounts besides the faucet. */
  readonly accounts: number
  /** The balance of the faucet and of each extra account. */
  readonly balance: bigint
  /** RFC 3339. */
  readonly genesisTime: string
  /**
   * 32-byte seeds, {@link testnetSeedCount} of them, in this order: the validators' signing keys, the validators'
   * libp2p node keys, the faucet, the extra accounts.
   */
  readonly seeds: readonly Uint8Array[]
  /**
   * Addresses funded with `balance` whose keys nobody holds, 20 bytes each, back to back: state weight for
   * benchmarks (a testnet of a million funded accounts needs no million key files, nor a million objects). Drawn by
   * the caller; together with the faucet and the extra accounts at most {@link MAX_GENESIS_BALANCES}.
   */
  readonly unkeyedAddresses?: Uint8Array
  /** Consensus parameters to override (each field optional). */
  readonly params?: { timeouts?: Partial<ConsensusParams['timeouts']>; block?: Partial<ConsensusParams['block']>; emptyBlockIntervalMs?: number }
}

/** What the pure generator needs from outside the pure rooms. */
export interface TestnetDependencies {
  /** The libp2p peer id (text) of an Ed25519 node public key. */
  peerIdOf(publicKey: Uint8Array): string
}

/** A funded key. */
export interface TestnetKey {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly address: Uint8Array
}

/** One validator's home: its name, keys and `config.json`. */
export interface TestnetValidator {
  readonly name: string
  /** The validator's signing key. */
  readonly key: TestnetKey
  /** The libp2p identity key of its node. */
  readonly nodeKey: { readonly seed: Uint8Array; readonly publicKey: Uint8Array }
  readonly peerId: string
  readonly config: NodeConfig
}

/** A generated testnet. */
export interface Testnet {
  /** Its balances held compactly (`formatGenesis` gives the JSON of `genesis.json`). */
  readonly genesis: CompactGenesis
  readonly validators: readonly TestnetValidator[]
  readonly faucet: TestnetKey
  readonly accounts: readonly TestnetKey[]
}

/** How many seeds {@link makeTestnet} needs: two per validator, one for the faucet, one per account. */
export function testnetSeedCount(validators: number, accounts: number): number {
  return 2 * validators + 1 + accounts
}

function keyOf(seed: Uint8Array): TestnetKey {
  const { publicKey } = keyPairFromSeed(seed)
  return { seed: new Uint8Array(seed), publicKey, address: addressFromPublicKey(publicKey) }
}

/** Generates a testnet, or lists what is wrong with the options (in the genesis error style). */
export function makeTestnet(options: TestnetOptions, deps: TestnetDependencies): ParseResult<Testnet> {
  const errors: FieldError[] = []
  const { validators: n, accounts: k } = options
  if (!Number.isSafeInteger(n) || n < 1 || n > 128) errors.push({ path: 'validators', message: 'must be an integer from 1 to 128' })
  if (!Number.isSafeInteger(k) || k < 0 || k > MAX_TESTNET_KEYED_ACCOUNTS)
    errors.push({ path: 'accounts', message: `must be an integer from 0 to ${MAX_TESTNET_KEYED_ACCOUNTS}` })
  const unkeyed = options.unkeyedAddresses ?? new Uint8Array(0)
  const unkeyedCount = Math.floor(unkeyed.byteLength / 20)
  if (!(unkeyed instanceof Uint8Array) || unkeyed.byteLength % 20 !== 0)
    errors.push({ path: 'unkeyedAddresses', message: 'must hold addresses of 20 bytes, back to back' })
  else if (Number.isSafeInteger(k) && 1 + k + unkeyedCount > MAX_GENESIS_BALANCES) {
    errors.push({
      path: 'unkeyedAddresses',
      message: `the faucet, ${k} accounts and ${unkeyedCount} unkeyed addresses exceed ${MAX_GENESIS_BALANCES} balances`,
    })
  }
  for (const [f, port] of [
    ['p2pPort', options.p2pPort],
    ['rpcPort', options.rpcPort],
  ] as const) {
    if (!Number.isSafeInteger(port) || port < 1 || port + Math.max(0, n) - 1 > 65535)
      errors.push({ path: f, message: `must leave room for ${n} ports below 65536` })
  }
  // validator i takes p2pPort + i and rpcPort + i, on one host unless hosts are given: the two ranges must not meet
  if (Number.isSafeInteger(n) && n > 0 && options.p2pPort < options.rpcPort + n && options.rpcPort < options.p2pPort + n) {
    errors.push({
      path: 'rpcPort',
      message: `ports ${options.rpcPort}-${options.rpcPort + n - 1} overlap the p2p ports ${options.p2pPort}-${options.p2pPort + n - 1}`,
    })
  }
  if (errors.length === 0 && options.seeds.length !== testnetSeedCount(n, k)) {
    errors.push({ path: 'seeds', message: `must hold ${testnetSeedCount(n, k)} seeds (2 per validator, faucet, accounts), got ${options.seeds.length}` })
  }
  if (errors.length === 0 && options.seeds.some((s) => !(s instanceof Uint8Array) || s.byteLength !== SECRET_KEY_LENGTH)) {
    errors.push({ path: 'seeds', message: `every seed must be ${SECRET_KEY_LENGTH} bytes` })
  }
  if (errors.length > 0) return err({ code: 'invalid_testnet', errors })

  const validatorKeys = options.seeds.slice(0, n).map(keyOf)
  const nodeKeys = options.seeds.slice(n, 2 * n).map((seed) => ({ seed: new Uint8Array(seed), publicKey: keyPairFromSeed(seed).publicKey }))
  const peerIds = nodeKeys.map((nk) => deps.peerIdOf(nk.publicKey))
  const faucet = keyOf(options.seeds[2 * n]!)
  const accounts = options.seeds.slice(2 * n + 1).map(keyOf)
  const names = validatorKeys.map((_, i) => `node${i}`)

  // The genesis goes through the same validation as a file would (chain id, time, amounts, supply).
  const balances = new GenesisBalances()
  for (const a of [faucet, ...accounts]) balances.addEntry(a.address, options.balance)
  for (let i = 0; i < unkeyedCount; i++) balances.addEntry(unkeyed.subarray(20 * i, 20 * i + 20), options.balance)
  const header = {
    chainId: options.chainId,
    genesisTime: options.genesisTime,
    validators: validatorKeys.map((key, i) => ({ name: names[i]!, publicKey: to0x(key.publicKey), power: 1, peerId: peerIds[i]! })),
    balances: true,
    params: options.params ?? {},
  }
  const parsed = parseCompactGenesis(header, balances)
  if (!parsed.ok) return parsed
  const host = options.host
  const validators = validatorKeys.map(
    (key, i): TestnetValidator => ({
      name: names[i]!,
      key,
      nodeKey: nodeKeys[i]!,
      peerId: peerIds[i]!,
      config: {
        ...DEFAULT_CONFIG,
        moniker: names[i]!,
        p2p: {
          listen: `${host}:${options.p2pPort + i}`,
          peers: peerIds.flatMap((peerId, j) => (j === i ? [] : [{ peerId, address: `${host}:${options.p2pPort + j}` }])),
          allowedPeerIds: [],
        },
        rpc: { ...DEFAULT_CONFIG.rpc, host, port: options.rpcPort + i },
      },
    }),
  )
  for (const v of validators) {
    const checked = parseConfig(v.config)
    if (!checked.ok) return err({ code: checked.error.code, errors: checked.error.errors.map((e) => ({ path: `${v.name}.${e.path}`, message: e.message })) })
  }
  return ok({ genesis: parsed.value, validators, faucet, accounts })
}
