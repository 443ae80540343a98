import { addressFromPublicKey, formatAddress, parseAddress } from '../crypto/address.js'
import { bytesEqual, compareBytes, fromHex, to0x, toHex } from '../crypto/bytes.js'
import { encodeCanonical } from '../crypto/canonical.js'
import { isAcceptablePublicKey } from '../crypto/ed25519.js'
import { sha256 } from '../crypto/hash.js'
import { MAX_BLOCK_BYTES, MAX_BLOCK_EVIDENCE, MAX_BLOCK_TXS } from '../ledger/block.js'
import {
  DEFAULT_GOVERNANCE_PARAMS,
  MAX_TOTAL_POWER,
  MAX_VALIDATORS,
  NAME_RE,
  PEER_ID_RE,
  genesisGovernance,
  type GovernanceParams,
} from '../ledger/governance.js'
import { LedgerState, ROOT_STORE_KEY, type ExecutionResult } from '../ledger/ledgerState.js'
import { EMPTY_HASH } from '../ledger/smt.js'
import { MemoryKvStore, type KvOp, type KvStore } from '../ledger/store.js'
import { U64_MAX, isValidChainId } from '../ledger/transaction.js'
import { ok } from '../crypto/result.js'
import { FieldErrors, join, type ParseResult } from './fieldErrors.js'
import { parseRfc3339 } from './rfc3339.js'

/**
 * The genesis file (`genesis.json`): the chain id, genesis time, the validators, the initial balances and the
 * consensus parameters. Every node of a network must hold the same genesis; {@link genesisHash} identifies it.
 * Format and bounds: docs/formats.md, "Genesis".
 */

export { MAX_TOTAL_POWER, MAX_VALIDATORS, NAME_RE, PEER_ID_RE }
/** Most initial balances a genesis may list. */
export const MAX_GENESIS_BALANCES = 1_000_000
/** Longest timeout a genesis may set: ten minutes. */
export const MAX_TIMEOUT_MS = 600_000
/** u64 amounts as decimal strings, no sign, no leading zeros. */
export const AMOUNT_RE = /^(0|[1-9][0-9]{0,19})$/

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

/** A validated genesis. */
export interface Genesis {
  readonly chainId: string
  /** As written in the file (RFC 3339). */
  readonly genesisTime: string
  /** The genesis time in unix milliseconds: the first block's time must be later. */
  readonly genesisTimeMs: number
  /** In file order. */
  readonly validators: readonly GenesisValidator[]
  /** Sorted by address (the file's order does not matter). */
  readonly balances: readonly GenesisBalance[]
  readonly params: ConsensusParams
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

/**
 * Validates a parsed `genesis.json` and builds the {@link Genesis}, or lists every problem, each naming its field.
 * `params` and each of its fields may be left out (defaults: {@link DEFAULT_PARAMS}); everything else is required.
 */
export function parseGenesis(json: unknown): ParseResult<Genesis, 'invalid_genesis'> {
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

  const balances: GenesisBalance[] = []
  if (json.balances !== undefined) {
    if (!Array.isArray(json.balances)) e.add('balances', 'must be an array')
    else if (json.balances.length > MAX_GENESIS_BALANCES) e.add('balances', `must list at most ${MAX_GENESIS_BALANCES} balances`)
    else {
      const seen = new Map<string, number>()
      let supply = 0n
      json.balances.forEach((b: unknown, i: number) => {
        const p = join('balances', i)
        if (!e.object(p, b, ['address', 'amount'], ['address', 'amount'])) return
        const address = typeof b.address === 'string' ? parseAddress(b.address) : undefined
        if (address === undefined) e.add(join(p, 'address'), 'must be 0x + 40 hex digits')
        else {
          const first = seen.get(toHex(address))
          if (first !== undefined) e.add(join(p, 'address'), `duplicates balances[${first}].address`)
          else seen.set(toHex(address), i)
        }
        let amount: bigint | undefined
        if (typeof b.amount !== 'string' || !AMOUNT_RE.test(b.amount)) e.add(join(p, 'amount'), 'must be a decimal string (no sign, no leading zeros)')
        else {
          amount = BigInt(b.amount)
          if (amount > U64_MAX) e.add(join(p, 'amount'), 'must be below 2^64')
          else if (amount === 0n) e.add(join(p, 'amount'), 'must be positive (an unlisted address already holds zero)')
          else supply += amount
        }
        if (address !== undefined && amount !== undefined && amount > 0n && amount <= U64_MAX) balances.push({ address, amount })
      })
      if (supply > U64_MAX) e.add('balances', `total supply ${supply} exceeds 2^64-1`)
    }
  }

  const params = parseParams(e, 'params', json.params)
  if (!e.empty) return e.fail('invalid_genesis')
  balances.sort((a, b) => compareBytes(a.address, b.address))
  return ok({ chainId: chainId as string, genesisTime: json.genesisTime as string, genesisTimeMs, validators, balances, params })
}

/** The JSON form of a genesis (for writing `genesis.json`); {@link parseGenesis} reads it back to an equal value. */
export function formatGenesis(genesis: Genesis): GenesisJson {
  return {
    chainId: genesis.chainId,
    genesisTime: genesis.genesisTime,
    validators: genesis.validators.map((v) => ({ name: v.name, publicKey: to0x(v.publicKey), power: v.power, peerId: v.peerId })),
    balances: genesis.balances.map((b) => ({ address: formatAddress(b.address), amount: b.amount.toString() })),
    params: {
      timeouts: { ...genesis.params.timeouts },
      block: { ...genesis.params.block },
      emptyBlockIntervalMs: genesis.params.emptyBlockIntervalMs,
      governance: { ...genesis.params.governance },
      evidence: { ...genesis.params.evidence },
    },
  }
}

/**
 * The genesis hash: SHA-256 of `canonical(["tally/genesis/v2", chainId, genesisTimeMs, validators, balances, params])`
 * with validators `[name, publicKey, power, peerId]` in file order, balances `[address, amount]` sorted by address,
 * params `[proposeMs, proposeDeltaMs, prevoteMs, prevoteDeltaMs, precommitMs, precommitDeltaMs, commitMs, maxTxs,
 * maxBytes, emptyBlockIntervalMs, voteExpiryHeights, maxOpenVotes, maxAgeHeights, maxPerBlock]`, every integer as a
 * u64, then `removeOffenders` as a boolean. Nodes compare it to refuse a database of another genesis.
 */
export function genesisHash(genesis: Genesis): Uint8Array {
  const t = genesis.params.timeouts
  const g = genesis.params.governance
  const v = genesis.params.evidence
  return sha256(
    encodeCanonical([
      'tally/genesis/v2',
      genesis.chainId,
      BigInt(genesis.genesisTimeMs),
      genesis.validators.map((v) => [v.name, v.publicKey, BigInt(v.power), v.peerId]),
      [...genesis.balances].sort((a, b) => compareBytes(a.address, b.address)).map((b) => [b.address, b.amount]),
      [
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
      ].map((n) => BigInt(n)),
      g.removeOffenders,
    ]),
  )
}

function genesisAccounts(genesis: Genesis) {
  return genesis.balances.map((b) => ({ address: b.address, account: { balance: b.amount, nonce: 0n } }))
}

function genesisRoster(genesis: Genesis) {
  return genesisGovernance(genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power, peerId: v.peerId, name: v.name })))
}

/**
 * The initial state of a genesis as store ops and its root, computed purely (nothing is written anywhere):
 * the same for any order of balances in the file.
 */
export async function initialStateOps(genesis: Genesis): Promise<{ stateRoot: Uint8Array; ops: KvOp[] }> {
  const state = await LedgerState.open(new MemoryKvStore())
  const r = await state.setGenesis(genesisAccounts(genesis), genesisRoster(genesis))
  return { stateRoot: r.stateRoot, ops: r.ops }
}

/** Accounts staged and written per batch while {@link genesisState} seeds a store. */
export const GENESIS_SEED_BATCH = 20_000

/**
 * Writes a genesis's initial state into an empty ledger store and returns the opened state (its root is the
 * genesis state root). Refuses a store that already holds a state.
 *
 * The balances go in batches of `batchSize` accounts, each staged on top of the last and written before the next is
 * staged, then the governance record: the tree's root does not depend on the order its leaves arrive in, so the
 * result is the state {@link initialStateOps} computes in one piece, while the ops held at any moment stay bounded
 * (a million balances would otherwise mean millions of ops, and gigabytes, at once). Only the last write, with the
 * governance record, stores the root: a store cut short while seeding holds no state yet (only records no root
 * reaches), and seeding it again overwrites them with the same values.
 */
export async function genesisState(genesis: Genesis, store: KvStore, batchSize = GENESIS_SEED_BATCH): Promise<LedgerState> {
  const state = await LedgerState.open(store)
  if (toHex(state.root()) !== toHex(EMPTY_HASH)) throw new Error('genesisState: the store already holds a state')
  for (let from = 0; from < genesis.balances.length; from += batchSize) {
    const batch = genesis.balances.slice(from, from + batchSize).map((b) => ({ address: b.address, account: { balance: b.amount, nonce: 0n } }))
    const r = await state.setAccounts(batch)
    await store.write(r.ops.filter((op) => !bytesEqual(op.key, ROOT_STORE_KEY)))
    state.commit(r)
  }
  const r: ExecutionResult = await state.setGenesis([], genesisRoster(genesis))
  await store.write(r.ops)
  state.commit(r)
  return state
}
