import { addressFromPublicKey, formatAddress } from '../crypto/address.js'
import { bytesEqual, fromHex, to0x, toHex } from '../crypto/bytes.js'
import { encodeCanonical } from '../crypto/canonical.js'
import { isAcceptablePublicKey } from '../crypto/ed25519.js'
import { sha256 } from '../crypto/hash.js'
import { ok } from '../crypto/result.js'
import { accountStoreKey, accountTreeKey, encodeAccount } from '../ledger/account.js'
import { MAX_BLOCK_BYTES, MAX_BLOCK_EVIDENCE, MAX_BLOCK_TXS } from '../ledger/block.js'
import {
  DEFAULT_GOVERNANCE_PARAMS,
  MAX_TOTAL_POWER,
  MAX_VALIDATORS,
  NAME_RE,
  PEER_ID_RE,
  encodeGovernanceState,
  genesisGovernance,
  type GovernanceParams,
} from '../ledger/governance.js'
import { GOVERNANCE_STORE_KEY, GOVERNANCE_TREE_KEY, LedgerState, ROOT_STORE_KEY } from '../ledger/ledgerState.js'
import { EMPTY_HASH, buildTree } from '../ledger/smt.js'
import { MemoryKvStore, type KvOp, type KvStore } from '../ledger/store.js'
import { isValidChainId } from '../ledger/transaction.js'
import { FieldErrors, join, type ParseResult } from './fieldErrors.js'
import { AMOUNT_RE, GenesisBalances, MAX_GENESIS_BALANCES, sortBalances, type SortedBalances } from './genesisBalances.js'
import { parseRfc3339 } from './rfc3339.js'

/**
 * The genesis file (`genesis.json`): the chain id, genesis time, the validators, the initial balances and the
 * consensus parameters. Every node of a network must hold the same genesis; {@link genesisHash} identifies it.
 * Format and bounds: docs/formats.md, "Genesis".
 */

export { AMOUNT_RE, MAX_GENESIS_BALANCES, MAX_TOTAL_POWER, MAX_VALIDATORS, NAME_RE, PEER_ID_RE }
/** Longest timeout a genesis may set: ten minutes. */
export const MAX_TIMEOUT_MS = 600_000

/** Consensus timeouts (Tendermint): the base of each step and how much it grows per round, in milliseconds. */
export interface TimeoutParams {
  readonly proposeMs: number
  readonly proposeDeltaMs: number
  readonly prevoteMs: number
  readonly prevoteDeltaMs: number
  readonly precommitMs: number
  readonly precommitDeltaMs: number
  /** Wait after a commit before starting the next height, letting transactions gather (0 = none). */
  readonly commitMs: number
}

/** Evidence in blocks: how old an equivocation may be when a block records it, and how many one block may carry. */
export interface EvidenceParams {
  readonly maxAgeHeights: number
  readonly maxPerBlock: number
}

/** Consensus parameters, fixed at genesis. */
export interface ConsensusParams {
  readonly timeouts: TimeoutParams
  /** Block limits: most transactions and most encoded bytes in a block. */
  readonly block: { readonly maxTxs: number; readonly maxBytes: number }
  /** With an empty mempool, a proposer waits this long before proposing an empty block (0 = at once). */
  readonly emptyBlockIntervalMs: number
  /** Validator-set governance (ledger/governance.ts). */
  readonly governance: GovernanceParams
  readonly evidence: EvidenceParams
}

/** Longest vote expiry and evidence age a genesis may set, in heights. */
export const MAX_AGE_HEIGHTS = 10_000_000

/** The default consensus parameters: what a genesis gets for any field it leaves out. */
export const DEFAULT_PARAMS: ConsensusParams = Object.freeze({
  timeouts: Object.freeze({
    proposeMs: 3000,
    proposeDeltaMs: 500,
    prevoteMs: 1000,
    prevoteDeltaMs: 500,
    precommitMs: 1000,
    precommitDeltaMs: 500,
    commitMs: 0,
  }),
  block: Object.freeze({ maxTxs: 10_000, maxBytes: 4 * 1024 * 1024 }),
  emptyBlockIntervalMs: 1000,
  governance: DEFAULT_GOVERNANCE_PARAMS,
  evidence: Object.freeze({ maxAgeHeights: 100, maxPerBlock: 8 }),
})

/** A validator as genesis names it. */
export interface GenesisValidator {
  readonly name: string
  /** Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array
  /** The validator's address (derived from the public key). */
  readonly address: Uint8Array
  /** Voting power, a positive safe integer. */
  readonly power: number
  /** The libp2p peer id of the validator's node. */
  readonly peerId: string
}

/** An initial balance. */
export interface GenesisBalance {
  readonly address: Uint8Array
  /** 1 to 2^64-1. */
  readonly amount: bigint
}

/** Everything of a validated genesis but its balances: what a running node needs of it. */
export interface GenesisHeader {
  readonly chainId: string
  /** As written in the file (RFC 3339). */
  readonly genesisTime: string
  /** The genesis time in unix milliseconds: the first block's time must be later. */
  readonly genesisTimeMs: number
  /** In file order. */
  readonly validators: readonly GenesisValidator[]
  readonly params: ConsensusParams
}

/** A validated genesis. */
export interface Genesis extends GenesisHeader {
  /** Sorted by address (the file's order does not matter). */
  readonly balances: readonly GenesisBalance[]
}

/**
 * A validated genesis whose balances are held compactly (a million balances as a few flat arrays): what a node
 * seeds its state from, and what a testnet of a million accounts is generated as.
 */
export interface CompactGenesis extends GenesisHeader {
  readonly balances: SortedBalances
}

/** The JSON shape of `genesis.json`, as {@link formatGenesis} writes it. */
export interface GenesisJson {
  chainId: string
  genesisTime: string
  validators: { name: string; publicKey: string; power: number; peerId: string }[]
  balances: { address: string; amount: string }[]
  params: ConsensusParams
}

const TIMEOUT_FIELDS = ['proposeMs', 'proposeDeltaMs', 'prevoteMs', 'prevoteDeltaMs', 'precommitMs', 'precommitDeltaMs', 'commitMs'] as const

function parseParams(e: FieldErrors, path: string, value: unknown): ConsensusParams {
  if (value === undefined) return DEFAULT_PARAMS
  if (!e.object(path, value, ['timeouts', 'block', 'emptyBlockIntervalMs', 'governance', 'evidence'])) return DEFAULT_PARAMS
  const timeouts: Record<string, number> = { ...DEFAULT_PARAMS.timeouts }
  const tPath = join(path, 'timeouts')
  if (value.timeouts !== undefined && e.object(tPath, value.timeouts, TIMEOUT_FIELDS)) {
    for (const f of TIMEOUT_FIELDS) {
      const v = value.timeouts[f]
      if (v === undefined) continue
      const min = f.endsWith('DeltaMs') || f === 'commitMs' ? 0 : 1
      timeouts[f] = e.integer(join(tPath, f), v, min, MAX_TIMEOUT_MS) ?? timeouts[f]!
    }
  }
  let block = DEFAULT_PARAMS.block
  const bPath = join(path, 'block')
  if (value.block !== undefined && e.object(bPath, value.block, ['maxTxs', 'maxBytes'])) {
    block = {
      maxTxs: value.block.maxTxs === undefined ? block.maxTxs : (e.integer(join(bPath, 'maxTxs'), value.block.maxTxs, 1, MAX_BLOCK_TXS) ?? block.maxTxs),
      maxBytes:
        value.block.maxBytes === undefined
          ? block.maxBytes
          : (e.integer(join(bPath, 'maxBytes'), value.block.maxBytes, 1024, MAX_BLOCK_BYTES) ?? block.maxBytes),
    }
  }
  const emptyBlockIntervalMs =
    value.emptyBlockIntervalMs === undefined
      ? DEFAULT_PARAMS.emptyBlockIntervalMs
      : (e.integer(join(path, 'emptyBlockIntervalMs'), value.emptyBlockIntervalMs, 0, 3_600_000) ?? DEFAULT_PARAMS.emptyBlockIntervalMs)
  let governance = DEFAULT_PARAMS.governance
  const gPath = join(path, 'governance')
  if (value.governance !== undefined && e.object(gPath, value.governance, ['voteExpiryHeights', 'maxOpenVotes', 'removeOffenders'])) {
    const g = value.governance
    let removeOffenders = governance.removeOffenders
    if (g.removeOffenders !== undefined) {
      if (typeof g.removeOffenders === 'boolean') removeOffenders = g.removeOffenders
      else e.add(join(gPath, 'removeOffenders'), 'must be true or false')
    }
    governance = {
      voteExpiryHeights:
        g.voteExpiryHeights === undefined
          ? governance.voteExpiryHeights
          : (e.integer(join(gPath, 'voteExpiryHeights'), g.voteExpiryHeights, 1, MAX_AGE_HEIGHTS) ?? governance.voteExpiryHeights),
      maxOpenVotes:
        g.maxOpenVotes === undefined ? governance.maxOpenVotes : (e.integer(join(gPath, 'maxOpenVotes'), g.maxOpenVotes, 1, 64) ?? governance.maxOpenVotes),
      removeOffenders,
    }
  }
  let evidence = DEFAULT_PARAMS.evidence
  const vPath = join(path, 'evidence')
  if (value.evidence !== undefined && e.object(vPath, value.evidence, ['maxAgeHeights', 'maxPerBlock'])) {
    evidence = {
      maxAgeHeights:
        value.evidence.maxAgeHeights === undefined
          ? evidence.maxAgeHeights
          : (e.integer(join(vPath, 'maxAgeHeights'), value.evidence.maxAgeHeights, 1, MAX_AGE_HEIGHTS) ?? evidence.maxAgeHeights),
      maxPerBlock:
        value.evidence.maxPerBlock === undefined
          ? evidence.maxPerBlock
          : (e.integer(join(vPath, 'maxPerBlock'), value.evidence.maxPerBlock, 0, MAX_BLOCK_EVIDENCE) ?? evidence.maxPerBlock),
    }
  }
  return { timeouts: timeouts as unknown as TimeoutParams, block, emptyBlockIntervalMs, governance, evidence }
}

/** Where {@link checkGenesis} takes the balances from. */
type BalancesInput =
  /** `json.balances`, an array of JSON values */
  | { readonly kind: 'json' }
  /** a list fed element by element by the reader of the file (`json.balances` only marks that the field is there) */
  | { readonly kind: 'fed'; readonly list: GenesisBalances }
  /** not checked at all */
  | { readonly kind: 'skipped' }

/** The checks of a genesis, every problem named; the balances come as `input` says. */
function checkGenesis(json: unknown, input: BalancesInput): ParseResult<{ header: GenesisHeader; balances: SortedBalances | undefined }, 'invalid_genesis'> {
  const e = new FieldErrors()
  if (!e.object('', json, ['chainId', 'genesisTime', 'validators', 'balances', 'params'], ['chainId', 'genesisTime', 'validators', 'balances'])) {
    return e.fail('invalid_genesis')
  }
  const chainId = json.chainId
  if (json.chainId !== undefined && !isValidChainId(chainId)) e.add('chainId', 'must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric')

  let genesisTimeMs = 0
  if (json.genesisTime !== undefined) {
    const t = parseRfc3339(json.genesisTime)
    if (t.ok) genesisTimeMs = t.value
    else e.add('genesisTime', t.error.reason)
  }

  const validators: GenesisValidator[] = []
  if (json.validators !== undefined) {
    if (!Array.isArray(json.validators)) e.add('validators', 'must be an array')
    else if (json.validators.length === 0) e.add('validators', 'must name at least one validator')
    else if (json.validators.length > MAX_VALIDATORS) e.add('validators', `must name at most ${MAX_VALIDATORS} validators`)
    else {
      const names = new Map<string, number>()
      const keys = new Map<string, number>()
      const peers = new Map<string, number>()
      let total = 0
      json.validators.forEach((v: unknown, i: number) => {
        const p = join('validators', i)
        if (!e.object(p, v, ['name', 'publicKey', 'power', 'peerId'], ['name', 'publicKey', 'power', 'peerId'])) return
        const name = e.string(join(p, 'name'), v.name, NAME_RE, '1-64 characters of [A-Za-z0-9._-], starting alphanumeric')
        let publicKey: Uint8Array | undefined
        if (typeof v.publicKey !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(v.publicKey)) e.add(join(p, 'publicKey'), 'must be 0x + 64 hex digits')
        else {
          publicKey = fromHex(v.publicKey)!
          if (!isAcceptablePublicKey(publicKey)) {
            e.add(join(p, 'publicKey'), 'is not an acceptable Ed25519 public key (non-canonical or small order)')
            publicKey = undefined
          }
        }
        const power = e.integer(join(p, 'power'), v.power, 1, MAX_TOTAL_POWER)
        const peerId = e.string(join(p, 'peerId'), v.peerId, PEER_ID_RE, 'a libp2p peer id (base58btc)')
        const dup = (seen: Map<string, number>, id: string | undefined, field: string) => {
          if (id === undefined) return
          const first = seen.get(id)
          if (first !== undefined) e.add(join(p, field), `duplicates validators[${first}].${field}`)
          else seen.set(id, i)
        }
        dup(names, name, 'name')
        dup(keys, publicKey === undefined ? undefined : toHex(publicKey), 'publicKey')
        dup(peers, peerId, 'peerId')
        if (power !== undefined) total += power
        if (name !== undefined && publicKey !== undefined && power !== undefined && peerId !== undefined) {
          validators.push({ name, publicKey, address: addressFromPublicKey(publicKey), power, peerId })
        }
      })
      if (total > MAX_TOTAL_POWER) e.add('validators', `total power ${total} exceeds ${MAX_TOTAL_POWER}`)
    }
  }

  let balances: SortedBalances | undefined
  if (json.balances !== undefined && input.kind !== 'skipped') {
    let list: GenesisBalances | undefined
    if (input.kind === 'fed') list = input.list
    else if (!Array.isArray(json.balances)) e.add('balances', 'must be an array')
    else if (json.balances.length > MAX_GENESIS_BALANCES) e.add('balances', `must list at most ${MAX_GENESIS_BALANCES} balances`)
    else {
      list = new GenesisBalances()
      for (const b of json.balances) list.add(b)
    }
    if (list !== undefined) {
      const r = list.finish()
      if (r.ok) balances = r.value
      else for (const problem of r.error.errors) e.add(problem.path, problem.message)
    }
  }

  const params = parseParams(e, 'params', json.params)
  if (!e.empty) return e.fail('invalid_genesis')
  return ok({ header: { chainId: chainId as string, genesisTime: json.genesisTime as string, genesisTimeMs, validators, params }, balances })
}

/**
 * Validates a parsed `genesis.json` and builds the {@link Genesis}, or lists every problem, each naming its field.
 * `params` and each of its fields may be left out (defaults: {@link DEFAULT_PARAMS}); everything else is required.
 */
export function parseGenesis(json: unknown): ParseResult<Genesis, 'invalid_genesis'> {
  const r = checkGenesis(json, { kind: 'json' })
  if (!r.ok) return r
  const sorted = r.value.balances!
  const balances: GenesisBalance[] = []
  for (let i = 0; i < sorted.count; i++) balances.push({ address: sorted.addresses.slice(20 * i, 20 * i + 20), amount: sorted.amounts[i]! })
  return ok({ ...r.value.header, balances })
}

/**
 * Validates a genesis read piece by piece: `json` holds its top-level fields but the balances (`balances` present,
 * any value, to mark that the file has the field), and `list` the elements of the file's `balances` array, fed in
 * file order. Accepts and refuses exactly what {@link parseGenesis} does for the whole document, with the same
 * problems, and gives the same genesis with its balances held compactly.
 */
export function parseCompactGenesis(json: unknown, list: GenesisBalances): ParseResult<CompactGenesis, 'invalid_genesis'> {
  const r = checkGenesis(json, { kind: 'fed', list })
  if (!r.ok) return r
  return ok({ ...r.value.header, balances: r.value.balances! })
}

/**
 * Validates everything of a genesis but the elements of its balances (`json.balances` must be present; its value
 * is not looked at): for a node whose database already holds the state of this very file, checked when it was seeded.
 */
export function parseGenesisHeader(json: unknown): ParseResult<GenesisHeader, 'invalid_genesis'> {
  const r = checkGenesis(json, { kind: 'skipped' })
  if (!r.ok) return r
  return ok(r.value.header)
}

/** The header of a genesis: everything but its balances. */
export function genesisHeader(genesis: GenesisHeader): GenesisHeader {
  const { chainId, genesisTime, genesisTimeMs, validators, params } = genesis
  return { chainId, genesisTime, genesisTimeMs, validators, params }
}

/** The JSON form of a genesis (for writing `genesis.json`); {@link parseGenesis} reads it back to an equal value. */
export function formatGenesis(genesis: Genesis | CompactGenesis): GenesisJson {
  const balances: GenesisJson['balances'] = []
  forEachBalance(genesis, (address, amount) => balances.push({ address: formatAddress(address), amount: amount.toString() }))
  return { ...formatGenesisHeader(genesis), balances }
}

/** The JSON form of a genesis but its balances (`balances` empty): what precedes them in `genesis.json`. */
export function formatGenesisHeader(genesis: GenesisHeader): GenesisJson {
  return {
    chainId: genesis.chainId,
    genesisTime: genesis.genesisTime,
    validators: genesis.validators.map((v) => ({ name: v.name, publicKey: to0x(v.publicKey), power: v.power, peerId: v.peerId })),
    balances: [],
    params: {
      timeouts: { ...genesis.params.timeouts },
      block: { ...genesis.params.block },
      emptyBlockIntervalMs: genesis.params.emptyBlockIntervalMs,
      governance: { ...genesis.params.governance },
      evidence: { ...genesis.params.evidence },
    },
  }
}

/** Calls `f` with each balance of a genesis, in its order (by address for a validated one). */
function forEachBalance(genesis: Genesis | CompactGenesis, f: (address: Uint8Array, amount: bigint) => void): void {
  const b = genesis.balances
  if (Array.isArray(b)) for (const { address, amount } of b as readonly GenesisBalance[]) f(address, amount)
  else {
    const s = b as SortedBalances
    for (let i = 0; i < s.count; i++) f(s.addresses.subarray(20 * i, 20 * i + 20), s.amounts[i]!)
  }
}

/** A genesis's balances sorted by address, compactly. */
function sortedBalancesOf(genesis: Genesis | CompactGenesis): SortedBalances {
  return Array.isArray(genesis.balances) ? sortBalances(genesis.balances as readonly GenesisBalance[]) : (genesis.balances as SortedBalances)
}

/** The domain tag of the genesis hash: it names the genesis format the hash covers. */
export const GENESIS_HASH_TAG = 'tally/genesis/v2'

/**
 * The genesis hash: SHA-256 of `canonical(["tally/genesis/v2", chainId, genesisTimeMs, validators, balances, params])`
 * with validators `[name, publicKey, power, peerId]` in file order, balances `[address, amount]` sorted by address,
 * params `[proposeMs, proposeDeltaMs, prevoteMs, prevoteDeltaMs, precommitMs, precommitDeltaMs, commitMs, maxTxs,
 * maxBytes, emptyBlockIntervalMs, voteExpiryHeights, maxOpenVotes, maxAgeHeights, maxPerBlock]`, every integer as a
 * u64, then `removeOffenders` as a boolean. Nodes compare it to refuse a database of another genesis.
 *
 * The encoding is hashed in pieces, the balances' part written straight into flat buffers: a canonical array is its
 * header followed by its elements' encodings, so the pieces are the encoding of the whole.
 */
export function genesisHash(genesis: Genesis | CompactGenesis): Uint8Array {
  const t = genesis.params.timeouts
  const g = genesis.params.governance
  const v = genesis.params.evidence
  const params = [
    t.proposeMs,
    t.proposeDeltaMs,
    t.prevoteMs,
    t.prevoteDeltaMs,
    t.precommitMs,
    t.precommitDeltaMs,
    t.commitMs,
    genesis.params.block.maxTxs,
    genesis.params.block.maxBytes,
    genesis.params.emptyBlockIntervalMs,
    g.voteExpiryHeights,
    g.maxOpenVotes,
    v.maxAgeHeights,
    v.maxPerBlock,
  ].map((n) => BigInt(n))
  const balances = sortedBalancesOf(genesis)
  return sha256(
    canonicalArrayHeader(7),
    encodeCanonical(GENESIS_HASH_TAG),
    encodeCanonical(genesis.chainId),
    encodeCanonical(BigInt(genesis.genesisTimeMs)),
    encodeCanonical(genesis.validators.map((v) => [v.name, v.publicKey, BigInt(v.power), v.peerId])),
    canonicalArrayHeader(balances.count),
    ...encodeBalanceEntries(balances),
    encodeCanonical(params),
    encodeCanonical(g.removeOffenders),
  )
}

/** The canonical (MessagePack, shortest) header of an array of `n` elements. */
export function canonicalArrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n)
  if (n < 0x10000) return Uint8Array.of(0xdc, n >> 8, n & 0xff)
  return Uint8Array.of(0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/** Balance entries per piece of {@link encodeBalanceEntries}. */
const ENTRIES_PER_PIECE = 4096

/**
 * `canonical([address, amount])` of each balance, back to back, in pieces of up to {@link ENTRIES_PER_PIECE}: a
 * 2-element array (0x92), the address as 20 bytes (bin 8: 0xc4 0x14) and the amount as a u64 (the 9-byte form:
 * int 64, 0xd3, below 2^63, else uint 64, 0xcf), 32 bytes in all. A test holds it to `encodeCanonical`.
 */
export function encodeBalanceEntries(balances: SortedBalances): Uint8Array[] {
  const pieces: Uint8Array[] = []
  for (let from = 0; from < balances.count; from += ENTRIES_PER_PIECE) {
    const n = Math.min(ENTRIES_PER_PIECE, balances.count - from)
    const piece = new Uint8Array(32 * n)
    const view = new DataView(piece.buffer)
    for (let k = 0; k < n; k++) {
      const at = 32 * k
      const amount = balances.amounts[from + k]!
      piece[at] = 0x92
      piece[at + 1] = 0xc4
      piece[at + 2] = 20
      piece.set(balances.addresses.subarray(20 * (from + k), 20 * (from + k) + 20), at + 3)
      piece[at + 23] = amount < 1n << 63n ? 0xd3 : 0xcf
      view.setBigUint64(at + 24, amount)
    }
    pieces.push(piece)
  }
  return pieces
}

function genesisAccounts(genesis: Genesis) {
  return genesis.balances.map((b) => ({ address: b.address, account: { balance: b.amount, nonce: 0n } }))
}

function genesisRoster(genesis: GenesisHeader) {
  return genesisGovernance(genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power, peerId: v.peerId, name: v.name })))
}

/**
 * The initial state of a genesis as store ops and its root, computed purely (nothing is written anywhere), through
 * the ledger's own staging of accounts: the reference {@link genesisState}'s bottom-up build is held to. The same
 * for any order of balances in the file.
 */
export async function initialStateOps(genesis: Genesis): Promise<{ stateRoot: Uint8Array; ops: KvOp[] }> {
  const state = await LedgerState.open(new MemoryKvStore())
  const r = await state.setGenesis(genesisAccounts(genesis), genesisRoster(genesis))
  return { stateRoot: r.stateRoot, ops: r.ops }
}

/**
 * Accounts per batch where genesis balances are staged as ledger updates (`LedgerState.setAccounts`) batch after
 * batch instead of built bottom-up: a bound on the ops held at once.
 */
export const GENESIS_SEED_BATCH = 20_000

/** Most store ops {@link genesisState} writes at once. */
export const GENESIS_SEED_OPS = 10_000

/**
 * Writes a genesis's initial state into an empty ledger store and returns the opened state (its root is the
 * genesis state root, and the store holds what {@link initialStateOps} computes, key for key). Refuses a store that
 * already holds a state.
 *
 * Built bottom-up rather than staged as updates: the accounts in address order, then the state tree from its leaves
 * sorted by tree key (ledger/smt.ts, `buildTree`), each node computed once and written once, nothing read back.
 * Writes hold at most about `opsPerWrite` ops, so a million balances never mean millions of ops at once. Only the
 * last write, with the governance record, stores the root: a store cut short while seeding holds no state yet (only
 * records no root reaches), and seeding it again with the same genesis overwrites them with the same values.
 */
export async function genesisState(genesis: Genesis | CompactGenesis, store: KvStore, opsPerWrite = GENESIS_SEED_OPS): Promise<LedgerState> {
  if (!Number.isSafeInteger(opsPerWrite) || opsPerWrite < 1) throw new RangeError('genesisState: opsPerWrite must be a positive integer')
  const root = await store.get(ROOT_STORE_KEY)
  if (root !== undefined && !bytesEqual(root, EMPTY_HASH)) throw new Error('genesisState: the store already holds a state')
  const balances = sortedBalancesOf(genesis)
  const n = balances.count
  const governanceBytes = encodeGovernanceState(genesisRoster(genesis))
  const accountBytes = lastValueCache((amount: bigint) => encodeAccount({ balance: amount, nonce: 0n }))
  const accountHash = lastValueCache((amount: bigint) => sha256(accountBytes(amount)))

  // the accounts, in address order
  let ops: KvOp[] = []
  for (let i = 0; i < n; i++) {
    ops.push({ type: 'put', key: accountStoreKey(balances.addresses.subarray(20 * i, 20 * i + 20)), value: accountBytes(balances.amounts[i]!) })
    if (ops.length >= opsPerWrite) {
      await store.write(ops)
      ops = []
    }
  }
  if (ops.length > 0) await store.write(ops)

  // the tree: one leaf per account (i < n) and the governance record's (n), by tree key
  const { keys, order } = treeKeys(balances)
  const governanceHash = sha256(governanceBytes)
  const stateRoot = await buildTree(
    { count: n + 1, keys, valueHash: (j) => (order[j] === n ? governanceHash : accountHash(balances.amounts[order[j]!]!)) },
    (batch) => store.write(batch),
    opsPerWrite,
  )
  await store.write([
    { type: 'put', key: GOVERNANCE_STORE_KEY, value: governanceBytes },
    { type: 'put', key: ROOT_STORE_KEY, value: stateRoot },
  ])
  return LedgerState.open(store)
}

/** `f` with its last argument's result remembered: balances often repeat one amount. */
function lastValueCache<T>(f: (amount: bigint) => T): (amount: bigint) => T {
  let last: bigint | undefined
  let value: T | undefined
  return (amount) => {
    if (amount !== last) {
      value = f(amount)
      last = amount
    }
    return value as T
  }
}

/**
 * The state tree keys of the accounts of `balances` and of the governance record (position `count`), sorted, with
 * each one's position: `keys` holds them back to back.
 */
function treeKeys(balances: SortedBalances): { keys: Uint8Array; order: Uint32Array } {
  const n = balances.count
  const unsorted = new Uint8Array(32 * (n + 1))
  for (let i = 0; i < n; i++) unsorted.set(accountTreeKey(balances.addresses.subarray(20 * i, 20 * i + 20)), 32 * i)
  unsorted.set(GOVERNANCE_TREE_KEY, 32 * n)
  const order = sortKeys(unsorted, n + 1)
  const keys = new Uint8Array(unsorted.length)
  for (let j = 0; j <= n; j++) keys.set(unsorted.subarray(32 * order[j]!, 32 * order[j]! + 32), 32 * j)
  return { keys, order }
}

/** Positions of the `count` 32-byte keys in `keys`, in key order. */
function sortKeys(keys: Uint8Array, count: number): Uint32Array {
  const order = new Uint32Array(count)
  const prefix = new Uint32Array(count)
  for (let i = 0; i < count; i++) {
    order[i] = i
    prefix[i] = ((keys[32 * i]! << 24) | (keys[32 * i + 1]! << 16) | (keys[32 * i + 2]! << 8) | keys[32 * i + 3]!) >>> 0
  }
  return order.sort((x, y) => {
    const d = prefix[x]! - prefix[y]!
    if (d !== 0) return d
    for (let k = 4; k < 32; k++) {
      const e = keys[32 * x + k]! - keys[32 * y + k]!
      if (e !== 0) return e
    }
    return 0
  })
}
