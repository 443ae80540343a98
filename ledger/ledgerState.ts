import { ADDRESS_LENGTH } from '../crypto/address.js'
import { bytesEqual, bytesKey, toHex } from '../crypto/bytes.js'
import { HASH_LENGTH, sha256 } from '../crypto/hash.js'
import { ZERO_ACCOUNT, accountStoreKey, accountTreeKey, decodeAccount, encodeAccount, isZeroAccount, type Account } from './account.js'
import { encodeAccountProof, type AccountProof } from './accountProof.js'
import { applyTransactions, type ExecutionContext } from './applyBlock.js'
import { decodeGovernanceState, encodeGovernanceState, rosterAt, type GovernanceState, type Roster } from './governance.js'
import type { Receipt } from './receipt.js'
import {
  EMPTY_HASH,
  MAX_TREE_CACHE_DEPTH,
  RESIDENT_DEPTH,
  TreeNodeCache,
  loadResidentLevels,
  readPath,
  updateTreePacked,
  type PackedTreeOps,
  type TreeUpdate,
} from './smt.js'
import { LEDGER_KEY_PREFIX, type KvOp, type KvStore } from './store.js'
import { senderAddress, type DecodedTransaction } from './transaction.js'

/** Store key of the committed state root: `'L' 'r'`. */
export const ROOT_STORE_KEY: Uint8Array = new Uint8Array([LEDGER_KEY_PREFIX, 0x72])
/** Store key of the governance record (ledger/governance.ts): `'L' 'g'`. */
export const GOVERNANCE_STORE_KEY: Uint8Array = new Uint8Array([LEDGER_KEY_PREFIX, 0x67])
/**
 * The governance record's key in the state tree: SHA-256 of "tally/state/governance". Account keys are SHA-256 of
 * 20-byte addresses, so no account can land on it.
 */
export const GOVERNANCE_TREE_KEY: Uint8Array = sha256(new TextEncoder().encode('tally/state/governance'))

/**
 * The outcome of executing a block (or of staging genesis balances) on top of a committed state. Speculative:
 * nothing is written. The caller writes `ops` atomically (with its own block ops, if any) and then calls
 * {@link LedgerState.commit}; or drops the result.
 */
export interface ExecutionResult {
  /** The root this result was computed on: commit refuses it unless it is still the committed root. */
  readonly parentRoot: Uint8Array
  /** The state root after this block: the header's `stateRoot`. */
  readonly stateRoot: Uint8Array
  /** One receipt per transaction, in order. */
  readonly receipts: Receipt[]
  /**
   * The store ops (all keys start with 'L'; at most one per key): the changed accounts by address, then the tree's
   * nodes, then the root. Their order is fixed by the data, so identical on every node for the same block.
   * A result of {@link LedgerState} keeps the tree's nodes packed while the block waits for its decision and builds
   * this array at each read: read it once for a write.
   */
  readonly ops: KvOp[]
  /** The accounts this block changed, with their new values, in address byte order. */
  readonly changed: readonly AccountEntry[]
  /** The governance state after this block (undefined for a state without one). */
  readonly governance: GovernanceState | undefined
  /** Its encoding, when the block changed it (written and committed to the tree). */
  readonly governanceBytes?: Uint8Array
}

/**
 * The outcome of executing a block whose tree update waits ({@link LedgerState.executeDeferred}): an
 * {@link ExecutionResult} without the state root and without store ops. A run of such blocks is committed one by one
 * and its tree updated once, for all of them ({@link LedgerState.settleTree}), whose ops store the run's accounts and
 * governance record, each once at its last value; until then the ledger serves them from memory.
 */
export interface DeferredExecution {
  readonly receipts: Receipt[]
  readonly changed: readonly AccountEntry[]
  readonly governance: GovernanceState | undefined
  readonly governanceBytes?: Uint8Array
  /** Marks the deferred form: its tree is updated at the settle, from the run's last value of each changed entry. */
  readonly deferred: true
}

/** The tree updated for the deferred blocks committed since the last settle: the new root and the ops that store it. */
export interface SettledTree {
  /** The root the update started from: {@link LedgerState.commitTree} refuses it on another. */
  readonly parentRoot: Uint8Array
  readonly root: Uint8Array
  /** The run's changed accounts and governance record, each at its last value, the tree's ops, then the root's. */
  readonly ops: KvOp[]
}

/** An account and its address. */
export interface AccountEntry {
  readonly address: Uint8Array
  readonly account: Account
}

/** The store op that writes an account (a zero account is deleted). */
function accountOp({ address, account }: AccountEntry): KvOp {
  return isZeroAccount(account) ? { type: 'del', key: accountStoreKey(address) } : { type: 'put', key: accountStoreKey(address), value: encodeAccount(account) }
}

/** The store ops of a block's accounts and, if it changed, of the governance record. */
function recordOps(changed: readonly AccountEntry[], governanceBytes: Uint8Array | undefined): KvOp[] {
  const ops: KvOp[] = changed.map(accountOp)
  if (governanceBytes !== undefined) ops.push({ type: 'put', key: GOVERNANCE_STORE_KEY, value: governanceBytes })
  return ops
}

/** An execution result's store ops: its accounts, the governance record if it changed, the tree's nodes, the root. */
function resultOps(changed: readonly AccountEntry[], governanceBytes: Uint8Array | undefined, packed: PackedTreeOps, rootOp: KvOp): KvOp[] {
  const ops = recordOps(changed, governanceBytes)
  for (const op of packed.toOps()) ops.push(op)
  ops.push(rootOp)
  return ops
}

/** The tree's ops of each result {@link LedgerState} staged, packed: its commit applies them to the node cache. */
const packedTreeOps = new WeakMap<ExecutionResult | SettledTree, PackedTreeOps>()
/** How many deferred blocks a {@link SettledTree} covers ({@link LedgerState}'s count when it was settled). */
const settledCount = new WeakMap<SettledTree, number>()

/** The tree updates of changed accounts and of the governance record, if it changed (`updateTree` sorts them). */
function treeUpdatesOf(changed: readonly AccountEntry[], governanceBytes: Uint8Array | undefined): TreeUpdate[] {
  const updates: TreeUpdate[] = []
  for (const { address, account } of changed) {
    updates.push({ key: accountTreeKey(address), valueHash: isZeroAccount(account) ? null : sha256(encodeAccount(account)) })
  }
  if (governanceBytes !== undefined) updates.push({ key: GOVERNANCE_TREE_KEY, valueHash: sha256(governanceBytes) })
  return updates
}

/**
 * The ledger's committed state over a {@link KvStore}: accounts plus the sparse Merkle tree committing to them.
 *
 * Lifecycle per height: `execute` a candidate block (as many candidates as consensus needs; none changes anything),
 * write the decided one's `ops` with the block in one batch, then `commit` it. Reads (`getAccount`, `proveAccount`)
 * see the committed state; the caller serialises them with its write+commit step. Blocks already decided may instead
 * run in a row without their tree: `executeDeferred` and `commitDeferred`, for each; then `settleTree`, write its
 * `ops` (with the blocks', in one batch, for a crash to keep all of the run or none), `commitTree`.
 */
export class LedgerState {
  /**
   * Committed accounts by hex address, most recently loaded or changed last: admission and execution read each hot
   * account from memory instead of the store. Coherent because only `commit` changes the committed state, and it
   * updates the entries of every account it changes; a read that raced a commit is not cached (`epoch`).
   */
  private readonly accounts = new Map<string, Account>()
  private epoch = 0
  /**
   * The accounts deferred blocks changed since the last settle, by address, the latest value of each, and the
   * governance record's encoding if one of them changed it. While any wait, the tree (and so {@link root}) is behind
   * the accounts: nothing is executed on it or proved against it.
   */
  private readonly pendingAccounts = new Map<string, AccountEntry>()
  private pendingGovernance: Uint8Array | undefined
  /** Deferred blocks committed so far: a settled tree is committed only if none came after it. */
  private deferredCount = 0

  private constructor(
    private readonly store: KvStore,
    private committedRoot: Uint8Array,
    private readonly cache: TreeNodeCache,
    private readonly maxCachedAccounts: number,
    private gov: { readonly state: GovernanceState; readonly bytes: Uint8Array } | undefined,
  ) {}

  /**
   * Opens the state stored in `store` (an empty store is the empty state, root {@link EMPTY_HASH}).
   * The tree's upper levels are held in memory, computed from the store's (`loadResidentLevels`, one range read)
   * and checked against the stored root. `treeCacheDepth` is how many levels (default and least
   * {@link RESIDENT_DEPTH}, 16: at most 2^17 − 1 nodes in 8.6 MB, `TreeNodeCache.bytesFor`; those below the resident
   * ones are filled as they are read). `maxCachedAccounts` bounds the in-memory cache of committed accounts (default
   * 65,536, about 15 MB; 0 disables it).
   */
  static async open(store: KvStore, options: { treeCacheDepth?: number; maxCachedAccounts?: number } = {}): Promise<LedgerState> {
    const root = await store.get(ROOT_STORE_KEY)
    if (root !== undefined && root.byteLength !== HASH_LENGTH) throw new Error('state corrupt: stored root is not 32 bytes')
    const depth = options.treeCacheDepth ?? RESIDENT_DEPTH
    if (!Number.isSafeInteger(depth) || depth < RESIDENT_DEPTH || depth > MAX_TREE_CACHE_DEPTH)
      throw new RangeError(`treeCacheDepth must be an integer from ${RESIDENT_DEPTH} to ${MAX_TREE_CACHE_DEPTH}`)
    const maxCachedAccounts = options.maxCachedAccounts ?? 65_536
    if (!Number.isSafeInteger(maxCachedAccounts) || maxCachedAccounts < 0) throw new RangeError('maxCachedAccounts must be a non-negative integer')
    const govBytes = await store.get(GOVERNANCE_STORE_KEY)
    const gov = govBytes === undefined ? undefined : { state: decodeGovernanceState(govBytes), bytes: new Uint8Array(govBytes) }
    const cache = new TreeNodeCache(depth)
    // a store without a root holds no state (a seeding cut short may have left records no root reaches)
    if (root !== undefined && !bytesEqual(root, EMPTY_HASH)) {
      const loaded = await loadResidentLevels(store, cache)
      if (!bytesEqual(loaded, root)) {
        throw new Error(
          `state corrupt: the stored tree gives root ${toHex(loaded)}, the stored root is ${toHex(root)} (a database of an ` +
            'earlier layout, or damaged: remove the data directory and let the node sync)',
        )
      }
    }
    return new LedgerState(store, root === undefined ? new Uint8Array(EMPTY_HASH) : new Uint8Array(root), cache, maxCachedAccounts, gov)
  }

  /** The committed governance state (undefined for a state set up without one). */
  governance(): GovernanceState | undefined {
    return this.gov?.state
  }

  /**
   * The validator set in force at `height`, as the committed state knows it: the state after block h knows the sets
   * of h + 1 and h + 2. Throws for a height it does not cover (a caller's bug) or a state without governance.
   */
  rosterAt(height: number): Roster {
    if (this.gov === undefined) throw new Error('this ledger state has no governance record')
    return rosterAt(this.gov.state, height)
  }

  /** The committed state root; while tree updates wait ({@link treePending}), that of the last settled state. */
  root(): Uint8Array {
    return new Uint8Array(this.committedRoot)
  }

  /** True while deferred blocks' tree updates wait for {@link settleTree}. */
  get treePending(): boolean {
    return this.pendingAccounts.size > 0 || this.pendingGovernance !== undefined
  }

  private settledRoot(what: string): Uint8Array {
    if (this.treePending) throw new Error(`${what}: the tree is behind the accounts (deferred blocks not settled)`)
    return this.root()
  }

  /** The committed account of a 20-byte address (the zero account when unknown); synchronous when cached. */
  getAccount(address: Uint8Array): Account | Promise<Account> {
    return this.accounts.get(bytesKey(address)) ?? this.getAccounts([address]).then((a) => a[0]!)
  }

  /** The committed account of an address when it is held in memory (cached, or changed by a deferred block), else undefined. */
  peekAccount(address: Uint8Array): Account | undefined {
    const id = bytesKey(address)
    return this.accounts.get(id) ?? this.pendingAccounts.get(id)?.account
  }

  /** The committed accounts of several addresses, in order: cached ones from memory, the others in one read. */
  async getAccounts(addresses: readonly Uint8Array[]): Promise<Account[]> {
    // loops, not callbacks made per call (smt.ts, byKey)
    const ids = addresses.map(bytesKey)
    const out: (Account | undefined)[] = []
    const missing: number[] = []
    for (let i = 0; i < ids.length; i++) {
      // an account a deferred block changed is stored only at the settle: its entry stands in for the record
      const a = this.accounts.get(ids[i]!) ?? this.pendingAccounts.get(ids[i]!)?.account
      if (a === undefined) missing.push(i)
      out.push(a)
    }
    if (missing.length === 0) return out as Account[]
    const epoch = this.epoch
    const keys: Uint8Array[] = []
    for (const i of missing) keys.push(accountStoreKey(addresses[i]!))
    const values = await this.store.getMany(keys)
    const cache = this.epoch === epoch
    for (let k = 0; k < missing.length; k++) {
      const i = missing[k]!
      const v = values[k]
      const account = v === undefined ? ZERO_ACCOUNT : decodeAccount(v)
      out[i] = account
      if (cache) this.remember(ids[i]!, account)
    }
    return out as Account[]
  }

  private remember(id: string, account: Account): void {
    if (this.maxCachedAccounts === 0) return
    this.accounts.delete(id)
    this.accounts.set(id, account)
    if (this.accounts.size > this.maxCachedAccounts) this.accounts.delete(this.accounts.keys().next().value!)
  }

  /** A proof of the committed account of `address`, or of its absence, against {@link root}. */
  async proveAccount(address: Uint8Array): Promise<AccountProof> {
    if (address.byteLength !== ADDRESS_LENGTH) throw new RangeError(`address must be ${ADDRESS_LENGTH} bytes`)
    const root = this.settledRoot('proveAccount')
    const path = await readPath(this.store, this.cache, root, accountTreeKey(address))
    let account: Account | null = null
    if (path.terminal.kind === 'leaf') {
      const bytes = await this.store.get(accountStoreKey(address))
      if (bytes === undefined || !bytesEqual(sha256(bytes), path.terminal.valueHash)) {
        throw new Error('state corrupt: account does not match its leaf')
      }
      account = decodeAccount(bytes)
    }
    return { root, address: new Uint8Array(address), account, proof: encodeAccountProof(path, account) }
  }

  /**
   * Executes transfers in order on top of the committed state, without changing it: prefetches every touched
   * account in one read, applies the transfers in memory, then updates the tree in one batch.
   */
  async execute(txs: readonly DecodedTransaction[], ctx: ExecutionContext): Promise<ExecutionResult> {
    const parentRoot = this.settledRoot('execute')
    const { receipts, updates, governance, governanceBytes } = await this.apply(txs, ctx)
    return this.stage(parentRoot, updates, receipts, governance, governanceBytes)
  }

  /**
   * {@link execute} without the tree: the accounts and receipts of the block on top of the committed state (deferred
   * blocks committed before it included); its tree is updated by the next {@link settleTree}. For blocks known to
   * be decided (certified), whose roots need checking only at the last of a run: the settled root is that block's.
   */
  async executeDeferred(txs: readonly DecodedTransaction[], ctx: ExecutionContext): Promise<DeferredExecution> {
    const { receipts, updates, governance, governanceBytes } = await this.apply(txs, ctx)
    const changed = [...updates.keys()].sort().map((id) => updates.get(id)!)
    const tail = governanceBytes === undefined ? {} : { governanceBytes }
    return { receipts, changed, governance, ...tail, deferred: true }
  }

  /** Applies transfers in memory on top of the committed accounts: what {@link execute} and its deferred form share. */
  private async apply(txs: readonly DecodedTransaction[], ctx: ExecutionContext) {
    const senders: Uint8Array[] = []
    for (const t of txs) senders.push(senderAddress(t.tx))
    const touched = new Map<string, Uint8Array>()
    for (let i = 0; i < txs.length; i++) {
      touched.set(bytesKey(senders[i]!), senders[i]!)
      const tx = txs[i]!.tx
      if (tx.kind !== 'governance') touched.set(bytesKey(tx.to), tx.to)
    }
    const ids = [...touched.keys()]
    const loaded = await this.getAccounts([...touched.values()])
    const accounts = new Map<string, Account>()
    for (let i = 0; i < ids.length; i++) accounts.set(ids[i]!, loaded[i]!)
    const { receipts, changed, governance } = applyTransactions(txs, accounts, this.gov?.state, ctx, senders)
    const updates = new Map<string, AccountEntry>()
    for (const id of changed) updates.set(id, { address: touched.get(id)!, account: accounts.get(id)! })
    let governanceBytes: Uint8Array | undefined
    if (governance !== undefined && governance !== this.gov?.state) {
      const bytes = encodeGovernanceState(governance)
      if (this.gov === undefined || !bytesEqual(bytes, this.gov.bytes)) governanceBytes = bytes
    }
    return { receipts, updates, governance, governanceBytes }
  }

  /**
   * Sets the governance record directly, with accounts, on top of the committed state: how genesis enters an empty
   * state. Commit like {@link execute}'s result.
   */
  async setGenesis(entries: readonly AccountEntry[], governance: GovernanceState): Promise<ExecutionResult> {
    const updates = new Map<string, AccountEntry>()
    for (const { address, account } of entries) {
      if (address.byteLength !== ADDRESS_LENGTH) throw new RangeError(`address must be ${ADDRESS_LENGTH} bytes`)
      encodeAccount(account) // range check
      updates.set(bytesKey(address), { address: new Uint8Array(address), account })
    }
    return this.stage(this.settledRoot('setGenesis'), updates, [], governance, encodeGovernanceState(governance))
  }

  /**
   * Sets accounts directly, on top of the committed state, without changing it: how genesis balances enter an
   * empty state (genesis/). Later entries for one address win. Commit like {@link execute}'s result.
   */
  async setAccounts(entries: readonly AccountEntry[]): Promise<ExecutionResult> {
    const updates = new Map<string, AccountEntry>()
    for (const { address, account } of entries) {
      if (address.byteLength !== ADDRESS_LENGTH) throw new RangeError(`address must be ${ADDRESS_LENGTH} bytes`)
      encodeAccount(account) // range check
      updates.set(bytesKey(address), { address: new Uint8Array(address), account })
    }
    return this.stage(this.settledRoot('setAccounts'), updates, [], this.gov?.state, undefined)
  }

  /** `updates` is keyed by bytesKey(address): sorting the keys sorts the addresses byte by byte. */
  private async stage(
    parentRoot: Uint8Array,
    updates: Map<string, AccountEntry>,
    receipts: Receipt[],
    governance: GovernanceState | undefined,
    governanceBytes: Uint8Array | undefined,
  ): Promise<ExecutionResult> {
    const changed = [...updates.keys()].sort().map((id) => updates.get(id)!)
    const treeUpdates = treeUpdatesOf(changed, governanceBytes)
    const tail = governanceBytes === undefined ? {} : { governanceBytes }
    if (treeUpdates.length === 0) return { parentRoot, stateRoot: parentRoot, receipts, ops: [], changed, governance, ...tail }
    const tree = await updateTreePacked(this.store, parentRoot, treeUpdates, this.cache)
    const rootOp: KvOp = { type: 'put', key: ROOT_STORE_KEY, value: tree.root }
    const packed = tree.ops
    // the accounts' ops are built from `changed` when read, like the tree's from their packed form: a result that
    // waits for its decision holds no op objects (at a million accounts, blocks of thousands of transfers, tens of
    // megabytes for the few candidates of a height)
    const result: ExecutionResult = {
      parentRoot,
      stateRoot: tree.root,
      receipts,
      get ops(): KvOp[] {
        return resultOps(changed, governanceBytes, packed, rootOp)
      },
      changed,
      governance,
      ...tail,
    }
    packedTreeOps.set(result, packed)
    return result
  }

  /**
   * Makes a result the committed state, once the caller has written its ops. Throws if the result was computed on
   * another root (a stale candidate): committing it would corrupt the state; or if it changes the tree and is not one
   * this state returned (a copy): its resident nodes are known only to the original.
   */
  commit(result: ExecutionResult): void {
    const committed = this.settledRoot('commit')
    if (!bytesEqual(result.parentRoot, committed)) {
      throw new Error(`commit: result was executed on root ${toHex(result.parentRoot)}, committed root is ${toHex(committed)}`)
    }
    const packed = packedTreeOps.get(result)
    if (packed === undefined && !bytesEqual(result.stateRoot, result.parentRoot)) {
      throw new Error('commit: a result that changes the tree must be the one execute returned, not a copy')
    }
    this.committedRoot = new Uint8Array(result.stateRoot)
    this.commitAccounts(result)
    // a result without packed ops changed no tree node (checked above): the cache stays as it is
    if (packed !== undefined) this.cache.applyPacked(packed)
  }

  /**
   * Makes a deferred block's accounts and governance record the committed ones, once the caller has written its ops;
   * the tree updates for what it changed wait for {@link settleTree}, which hashes each changed account once for the
   * whole run, at its last value. Deferred blocks are committed in order, like any others.
   */
  commitDeferred(result: DeferredExecution): void {
    this.deferredCount++
    this.commitAccounts(result)
    for (const e of result.changed) this.pendingAccounts.set(bytesKey(e.address), e)
    if (result.governanceBytes !== undefined) this.pendingGovernance = result.governanceBytes
  }

  private commitAccounts(result: ExecutionResult | DeferredExecution): void {
    if (result.governanceBytes !== undefined && result.governance !== undefined) this.gov = { state: result.governance, bytes: result.governanceBytes }
    else if (result.governance !== undefined && this.gov !== undefined) this.gov = { state: result.governance, bytes: this.gov.bytes }
    this.epoch++
    for (const { address, account } of result.changed) this.remember(bytesKey(address), account)
  }

  /**
   * Updates the tree, without changing the committed state, for every deferred block committed since the last settle:
   * the root after the last of them and the ops that store the tree there. The caller writes the ops in the same batch
   * as the blocks' own and then calls {@link commitTree}. With nothing pending, the root as it is and no ops.
   */
  async settleTree(): Promise<SettledTree> {
    const parentRoot = this.root()
    if (!this.treePending) {
      const none: SettledTree = { parentRoot, root: parentRoot, ops: [] }
      settledCount.set(none, this.deferredCount)
      return none
    }
    // each changed account hashed and stored once for the run, at its last value
    const entries = [...this.pendingAccounts.keys()].sort().map((id) => this.pendingAccounts.get(id)!)
    const governanceBytes = this.pendingGovernance
    const tree = await updateTreePacked(this.store, parentRoot, treeUpdatesOf(entries, governanceBytes), this.cache)
    const rootOp: KvOp = { type: 'put', key: ROOT_STORE_KEY, value: tree.root }
    const packed = tree.ops
    const settled: SettledTree = {
      parentRoot,
      root: tree.root,
      get ops(): KvOp[] {
        return resultOps(entries, governanceBytes, packed, rootOp)
      },
    }
    packedTreeOps.set(settled, packed)
    settledCount.set(settled, this.deferredCount)
    return settled
  }

  /**
   * Makes a settled tree the committed one, once its ops are written. Throws if it was computed on another root, or
   * a deferred block was committed since: either would leave the tree behind its accounts.
   */
  commitTree(settled: SettledTree): void {
    if (!bytesEqual(settled.parentRoot, this.committedRoot)) throw new Error('commitTree: the tree was settled on another root')
    if (settledCount.get(settled) !== this.deferredCount) throw new Error('commitTree: deferred blocks were committed after the tree was settled')
    const packed = packedTreeOps.get(settled)
    if (packed === undefined) return
    this.committedRoot = new Uint8Array(settled.root)
    this.cache.applyPacked(packed)
    this.pendingAccounts.clear()
    this.pendingGovernance = undefined
    this.epoch++
  }
}
