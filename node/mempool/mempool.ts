import { bytesKey, toHex } from '../../crypto/index.js'
import {
  MAX_TX_BYTES, decodeTransaction, senderAddress, verifyTransactionSignature, type DecodedTransaction, type Transaction,
} from '../../ledger/transaction.js'
import type { Logger } from '../logger.js'

/**
 * The mempool: transactions admitted but not yet committed, per sender in nonce order.
 *
 * Admission (`add`) checks, in this order, each failure a typed value whose code is the RPC reason of
 * /work/shared/interface.md: size and decoding (`malformed`), chain id (`wrong_chain`), hash already pending or
 * recently committed (`duplicate`), signature (`invalid_signature`; verified once, then recorded in the ledger's
 * verified-signature cache), nonce (`bad_nonce`: below the committed nonce, equal to a pending transaction's nonce
 * with different bytes, or more than maxFuturePerSender beyond the next contiguous nonce), funds covering every
 * pending spend of the sender plus this one (`insufficient_funds`), global count and byte bounds (`mempool_full`).
 * A replacement (same sender and nonce, different bytes) is refused as `bad_nonce`: the first one stands.
 *
 * Every admitted transaction leaves the pool exactly one way, observed through `onRemoved`: `committed`, or
 * dropped after a block made it invalid (`bad_nonce` when its nonce was used, `insufficient_funds` when the
 * sender's balance no longer covers it). Admission is O(1) per transaction apart from the signature check.
 */

/** The committed state of an account as the mempool needs it. */
export interface AccountView {
  readonly balance: bigint
  readonly nonce: bigint
}

/** Read access to the committed ledger state (the ledger's state store satisfies it). */
export interface AccountReader {
  getAccount(address: Uint8Array): AccountView | Promise<AccountView>
}

/** The ledger's cache of transaction hashes whose signature has been verified (skips re-verification in blocks). */
export interface VerifiedSignatureCache {
  add(hash: Uint8Array): void
  has(hash: Uint8Array): boolean
  delete(hash: Uint8Array): void
}

/** Admission failure codes: exactly the RPC `tx_submit` reasons. */
export type AdmissionCode =
  | 'malformed' | 'wrong_chain' | 'duplicate' | 'invalid_signature' | 'bad_nonce' | 'insufficient_funds' | 'mempool_full'

/** The outcome of {@link Mempool.add}. */
export type AddResult =
  | { readonly ok: true; readonly hash: Uint8Array }
  | { readonly ok: false; readonly code: AdmissionCode; readonly reason: string }

/** Why a transaction left the pool. */
export interface Removal {
  readonly code: 'committed' | 'bad_nonce' | 'insufficient_funds' | 'invalid_signature' | 'wrong_chain' | 'balance_overflow' | 'malformed'
  readonly reason: string
}

/** Options of {@link Mempool}. */
export interface MempoolOptions {
  readonly chainId: string
  /** Most pending transactions (default 100,000). */
  readonly maxTxs?: number
  /** Most pending bytes (default 32 MiB). */
  readonly maxBytes?: number
  /** How far beyond the next contiguous nonce a sender may queue (default 64). */
  readonly maxFuturePerSender?: number
  /** How many committed hashes are remembered to refuse replays as `duplicate` (default 200,000). */
  readonly recentCommittedCapacity?: number
}

/** Dependencies of {@link Mempool}. */
export interface MempoolDependencies {
  readonly accounts: AccountReader
  readonly verifiedSignatures?: VerifiedSignatureCache
  /** Verifies a transaction's signature, possibly off the event loop (default: inline). */
  readonly verifySignature?: (tx: Transaction) => boolean | Promise<boolean>
  readonly logger?: Logger
  /** Called once for every transaction that leaves the pool, with why. */
  readonly onRemoved?: (hash: Uint8Array, removal: Removal) => void
}

/** Limits of one reap, usually the block's. */
export interface ReapLimits {
  readonly maxTxs: number
  /** Sum of the wire sizes of the reaped transactions. */
  readonly maxBytes: number
}

interface Entry {
  readonly decoded: DecodedTransaction
  readonly key: string
  readonly sender: SenderState
  readonly seq: number
}

interface SenderState {
  readonly key: string
  readonly address: Uint8Array
  /** Committed account state, or undefined after a block touched it (refetched before use). */
  account?: AccountView
  readonly byNonce: Map<bigint, Entry>
  /** The committed nonce plus the number of contiguous pending nonces from it. */
  next: bigint
  /** Sum of amounts of all pending transactions of this sender. */
  spend: bigint
}

/** Pending transactions, ordered per sender by nonce. */
export class Mempool {
  private readonly chainId: string
  private readonly maxTxs: number
  private readonly maxBytes: number
  private readonly maxFuture: bigint
  private readonly recentCapacity: number
  private readonly deps: MempoolDependencies
  private readonly byHash = new Map<string, Entry>()
  private readonly senders = new Map<string, SenderState>()
  private readonly recentCommitted = new Set<string>()
  private totalBytes = 0
  private seq = 0
  /** Incremented whenever committed state may have changed; an admission that awaited across it refetches. */
  private epoch = 0

  constructor(options: MempoolOptions, dependencies: MempoolDependencies) {
    this.chainId = options.chainId
    this.maxTxs = options.maxTxs ?? 100_000
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024
    this.maxFuture = BigInt(options.maxFuturePerSender ?? 64)
    this.recentCapacity = options.recentCommittedCapacity ?? 200_000
    this.deps = dependencies
  }

  /** Number of pending transactions. */
  get size(): number {
    return this.byHash.size
  }

  /** Sum of the wire sizes of the pending transactions. */
  get bytes(): number {
    return this.totalBytes
  }

  /** True when the transaction is pending. */
  has(hash: Uint8Array): boolean {
    return this.byHash.has(bytesKey(hash))
  }

  /** A pending transaction, decoded, with its bytes and hash. */
  get(hash: Uint8Array): DecodedTransaction | undefined {
    return this.byHash.get(bytesKey(hash))?.decoded
  }

  /** True when the hash was committed recently (within the remembered window). */
  wasCommitted(hash: Uint8Array): boolean {
    return this.recentCommitted.has(bytesKey(hash))
  }

  /** Admits a transaction's wire bytes, or says why not. Never throws on any input. */
  async add(bytes: Uint8Array): Promise<AddResult> {
    // 1. size bound, then decode
    if (!(bytes instanceof Uint8Array)) return fail('malformed', 'not bytes')
    if (bytes.byteLength > MAX_TX_BYTES) return fail('malformed', `transaction of ${bytes.byteLength} bytes exceeds ${MAX_TX_BYTES}`)
    const d = decodeTransaction(bytes)
    if (!d.ok) return fail('malformed', d.error.reason)
    const decoded = d.value
    const tx = decoded.tx
    // 2. chain id
    if (tx.chainId !== this.chainId) return fail('wrong_chain', `chain id ${tx.chainId} is not ${this.chainId}`)
    // 3. duplicates, pending or recently committed
    const key = bytesKey(decoded.hash)
    if (this.byHash.has(key)) return fail('duplicate', 'already pending')
    if (this.recentCommitted.has(key)) return fail('duplicate', 'already committed')
    // 4. signature, once per node (a block this node executed may have verified it already)
    if (this.deps.verifiedSignatures?.has(decoded.hash) !== true) {
      const check = this.deps.verifySignature?.(tx) ?? verifyTransactionSignature(tx)
      if (!(check instanceof Promise ? await check : check)) return fail('invalid_signature', 'signature does not verify')
    }
    this.deps.verifiedSignatures?.add(decoded.hash)
    // 5. committed state of the sender (cached until a block touches the account)
    const address = senderAddress(tx)
    const senderKey = bytesKey(address)
    let sender = this.senders.get(senderKey)
    let account = sender?.account
    for (let attempt = 0; account === undefined; attempt++) {
      const epoch = this.epoch
      const got = this.deps.accounts.getAccount(address)
      const fetched = got instanceof Promise ? await got : got
      if (this.epoch === epoch || attempt >= 3) account = fetched
      sender = this.senders.get(senderKey)
      if (sender?.account !== undefined) account = sender.account
    }
    // from here on nothing awaits: the checks and the insertion see one consistent pool
    if (this.byHash.has(key)) return fail('duplicate', 'already pending')
    if (this.recentCommitted.has(key)) return fail('duplicate', 'already committed')
    if (sender === undefined) {
      sender = { key: senderKey, address, account, byNonce: new Map(), next: account.nonce, spend: 0n }
    } else if (sender.account === undefined) {
      sender.account = account
      this.recheckSender(sender)
    }
    // 6. nonce: not below the committed nonce, not taken, not too far ahead
    if (tx.nonce < account.nonce) return fail('bad_nonce', `nonce ${tx.nonce} is below the account nonce ${account.nonce}`)
    if (sender.byNonce.has(tx.nonce)) return fail('bad_nonce', `nonce ${tx.nonce} is taken by a pending transaction`)
    if (tx.nonce > sender.next + this.maxFuture) {
      return fail('bad_nonce', `nonce ${tx.nonce} is more than ${this.maxFuture} beyond the next expected nonce ${sender.next}`)
    }
    // 7. funds cover all pending spends plus this one
    if (sender.spend + tx.amount > account.balance) {
      return fail('insufficient_funds', `balance ${account.balance} does not cover pending spends ${sender.spend} plus ${tx.amount}`)
    }
    // 8. global bounds
    if (this.byHash.size >= this.maxTxs) return fail('mempool_full', `mempool holds ${this.byHash.size} transactions`)
    if (this.totalBytes + bytes.byteLength > this.maxBytes) return fail('mempool_full', `mempool holds ${this.totalBytes} bytes`)
    const entry: Entry = { decoded, key, sender, seq: this.seq++ }
    if (sender.byNonce.size === 0) this.senders.set(senderKey, sender)
    sender.byNonce.set(tx.nonce, entry)
    sender.spend += tx.amount
    while (sender.byNonce.has(sender.next)) sender.next++
    this.byHash.set(key, entry)
    this.totalBytes += bytes.byteLength
    return { ok: true, hash: decoded.hash }
  }

  /**
   * The next nonce a sender should sign: the committed nonce plus the contiguous pending ones (the wallet
   * pipelines transfers with it).
   */
  async pendingNonce(address: Uint8Array): Promise<bigint> {
    const sender = this.senders.get(bytesKey(address))
    if (sender?.account !== undefined) return sender.next
    const got = this.deps.accounts.getAccount(address)
    const account = got instanceof Promise ? await got : got
    const s = this.senders.get(bytesKey(address))
    if (s === undefined) return account.nonce
    let next = account.nonce
    while (s.byNonce.has(next)) next++
    return next
  }

  /**
   * Executable transactions for a block: per sender only the contiguous run from the committed nonce, in nonce
   * order; senders interleaved by the arrival of their next transaction (deterministic for a given pool), within
   * the limits. The transactions stay pending until `update` reports them committed.
   */
  reap(limits: ReapLimits): DecodedTransaction[] {
    const out: DecodedTransaction[] = []
    let bytes = 0
    const heap = new EntryHeap()
    for (const sender of this.senders.values()) {
      if (sender.account === undefined) continue // touched by a block and not yet refreshed: wait for update
      const head = sender.byNonce.get(sender.account.nonce)
      if (head !== undefined) heap.push(head)
    }
    while (out.length < limits.maxTxs) {
      const e = heap.pop()
      if (e === undefined) break
      const size = e.decoded.bytes.byteLength
      if (bytes + size > limits.maxBytes) continue // this sender's run stops here; others may still fit
      out.push(e.decoded)
      bytes += size
      const next = e.sender.byNonce.get(e.decoded.tx.nonce + 1n)
      if (next !== undefined) heap.push(next)
    }
    return out
  }

  /**
   * Drops a pending transaction that failed execution against the committed state (the proposer found it would
   * not apply), with the ledger's failure code, together with the same sender's later nonces, which can no longer
   * apply either. Listeners see each removal with its reason.
   */
  reject(hash: Uint8Array, code: Exclude<Removal['code'], 'committed'>, reason: string): void {
    const e = this.byHash.get(bytesKey(hash))
    if (e === undefined) return
    const s = e.sender
    const later = [...s.byNonce.keys()].filter((n) => n > e.decoded.tx.nonce).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    this.removeEntry(e, { code, reason })
    for (const n of later) {
      const x = s.byNonce.get(n)
      if (x !== undefined) this.removeEntry(x, { code: 'bad_nonce', reason: `follows nonce ${e.decoded.tx.nonce}, which was rejected (${code})` })
    }
  }

  /**
   * Applies a committed block: its transactions leave as `committed`, then the senders whose accounts the block
   * touched (all senders with pending transactions when `touched` is omitted) are re-read from the committed
   * state, and transactions that became invalid are dropped with a reason. Call after the block's state is
   * committed, before admitting more transactions against it.
   */
  async update(committedHashes: readonly Uint8Array[], touched?: readonly Uint8Array[]): Promise<void> {
    this.epoch++
    const stale = new Set<SenderState>()
    for (const hash of committedHashes) {
      const key = bytesKey(hash)
      this.rememberCommitted(key)
      // a committed hash is refused as a duplicate before any signature check, so its verified mark is not needed
      this.deps.verifiedSignatures?.delete(hash)
      const e = this.byHash.get(key)
      if (e === undefined) continue
      this.removeEntry(e, { code: 'committed', reason: 'committed in a block' })
      stale.add(e.sender)
    }
    if (touched === undefined) for (const s of this.senders.values()) stale.add(s)
    else {
      for (const address of touched) {
        const s = this.senders.get(bytesKey(address))
        if (s !== undefined) stale.add(s)
      }
    }
    for (const s of stale) s.account = undefined
    const refreshed = await Promise.all([...stale].map(async (s) => {
      const got = this.deps.accounts.getAccount(s.address)
      return [s, got instanceof Promise ? await got : got] as const
    }))
    this.epoch++
    for (const [s, account] of refreshed) {
      if (this.senders.get(s.key) !== s) continue
      if (s.account === undefined) s.account = account
      this.recheckSender(s)
    }
  }

  /** Drops a sender's transactions that the (refreshed) committed state makes invalid, then recomputes its run. */
  private recheckSender(s: SenderState): void {
    const account = s.account
    if (account === undefined) return
    const nonces = [...s.byNonce.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    let spend = 0n
    for (const n of nonces) {
      const e = s.byNonce.get(n)!
      if (n < account.nonce) {
        this.removeEntry(e, { code: 'bad_nonce', reason: `nonce ${n} was used by a committed transaction` })
        continue
      }
      const amount = e.decoded.tx.amount
      if (spend + amount > account.balance) {
        this.removeEntry(e, { code: 'insufficient_funds', reason: `balance ${account.balance} no longer covers it` })
        continue
      }
      spend += amount
    }
    s.spend = spend
    let next = account.nonce
    while (s.byNonce.has(next)) next++
    s.next = next
  }

  private removeEntry(e: Entry, removal: Removal): void {
    this.byHash.delete(e.key)
    this.totalBytes -= e.decoded.bytes.byteLength
    const s = e.sender
    s.byNonce.delete(e.decoded.tx.nonce)
    s.spend -= e.decoded.tx.amount
    if (e.decoded.tx.nonce < s.next) s.next = e.decoded.tx.nonce
    if (s.byNonce.size === 0) this.senders.delete(s.key)
    if (removal.code !== 'committed') this.deps.logger?.debug({ hash: toHex(e.decoded.hash), ...removal }, 'transaction dropped')
    this.deps.onRemoved?.(e.decoded.hash, removal)
  }

  private rememberCommitted(key: string): void {
    if (this.recentCommitted.has(key)) return
    this.recentCommitted.add(key)
    if (this.recentCommitted.size > this.recentCapacity) {
      this.recentCommitted.delete(this.recentCommitted.values().next().value!)
    }
  }
}

function fail(code: AdmissionCode, reason: string): AddResult {
  return { ok: false, code, reason }
}

/** A binary min-heap of entries by arrival order. */
class EntryHeap {
  private readonly a: Entry[] = []

  push(e: Entry): void {
    const a = this.a
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]!.seq <= e.seq) break
      a[i] = a[p]!
      i = p
    }
    a[i] = e
  }

  pop(): Entry | undefined {
    const a = this.a
    if (a.length === 0) return undefined
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= a.length) break
        const r = l + 1
        const c = r < a.length && a[r]!.seq < a[l]!.seq ? r : l
        if (a[c]!.seq >= last.seq) break
        a[i] = a[c]!
        i = c
      }
      a[i] = last
    }
    return top
  }
}
