import { bytesKey, err, ok, toHex, type Result } from '../../crypto/index.js'
import type { GovernanceError } from '../../ledger/governance.js'
import { PRECHECK_FAILURE_CODES, TX_FAILURE_CODES } from '../../ledger/receipt.js'
import {
  MAX_TX_BYTES,
  decodeTransaction,
  senderAddress,
  spendOf,
  verifyDecodedSignature,
  type DecodedTransaction,
  type GovernanceTransaction,
} from '../../ledger/transaction.js'
import type { Logger } from '../logger.js'
import { VerifiedTxCache } from '../../ledger/verifiedTxCache.js'
import { RecentHashes } from './recentHashes.js'

/**
 * The mempool: transactions admitted but not yet committed, per sender in nonce order.
 *
 * A pending transaction is *executable* when its nonce continues the sender's contiguous run from the committed
 * nonce (a block could include it now), and *gapped* when an earlier nonce is missing. Gapped transactions cost
 * their sender nothing (they never execute while gapped; a balance covering their amounts is all they need), so
 * the pool keeps them on a short leash: they hold at most `gappedSharePercent` of the pool's count and bytes, they
 * leave as `expired` once they have stayed gapped for `gappedExpiryHeights` committed heights, and they are the
 * only transactions ever evicted. An arrival that finds no room evicts gapped transactions of other senders, the
 * one gapped longest first (its gap is the least likely to be filled, and it is nearest to expiry anyway); a
 * gapped arrival may only do so within the gapped share. So a flood of gapped nonces can neither keep an
 * executable transfer out nor push one out, and the outcome depends only on the order of arrivals and blocks.
 *
 * Admission (`add`) checks, in this order, each failure a typed value whose code is the `tx_submit` reason of
 * docs/rpc.md: size and decoding (`malformed`), chain id (`wrong_chain`), hash already pending or recently committed
 * (`duplicate`), signature (`invalid_signature`; verified once, then recorded in the ledger's verified-signature cache;
 * a transaction of a sender whose account is in memory that the nonce, funds and room checks below refuse on the state
 * as it stands is refused before its signature is checked, so a known key's stale or unfunded transfers cost no
 * signature check), nonce (`bad_nonce`: below the committed nonce,
 * equal to a pending transaction's nonce with different bytes, or more than maxFuturePerSender beyond the next
 * contiguous nonce), funds covering every pending spend of the sender plus this one (`insufficient_funds`), the
 * sender's own count and byte caps, then the global count and byte bounds and the gapped share, after evicting what may
 * be evicted (`mempool_full`).
 * A replacement (same sender and nonce, different bytes) is refused as `bad_nonce`: the first one stands.
 *
 * Every admitted transaction leaves the pool exactly one way, observed through `onRemoved`: `committed`; dropped
 * after a block made it invalid (`bad_nonce` when its nonce was used, `insufficient_funds` when the sender's balance
 * no longer covers it) or after it failed execution in this node's proposal; `evicted` (gapped, to make room);
 * `expired` (gapped for too many heights). Admission is O(1) per transaction apart from the signature check (an
 * eviction skips the arriving sender's own gapped transactions, which its caps bound); `update` costs the pending
 * transactions of the senders a block touched, plus what it removes.
 */

/** The committed state of an account as the mempool needs it. */
export interface AccountView {
  readonly balance: bigint
  readonly nonce: bigint
}

/** Read access to the committed ledger state (the ledger's state store satisfies it). */
export interface AccountReader {
  getAccount(address: Uint8Array): AccountView | Promise<AccountView>
  /**
   * The committed account when it is held in memory, without reading the store (undefined otherwise). Admission asks
   * it before a signature is checked, so that a transaction of a sender never seen costs no store read (nor a place in
   * the reader's cache) until its signature verifies. A reader without it: no refusal before the signature but for
   * senders with pending transactions.
   */
  peekAccount?(address: Uint8Array): AccountView | undefined
}

/** The ledger's cache of transaction hashes whose signature has been verified (skips re-verification in blocks). */
export interface VerifiedSignatureCache {
  add(hash: Uint8Array): void
  has(hash: Uint8Array): boolean
  delete(hash: Uint8Array): void
}

/**
 * Admission failure codes: the ledger's transaction failure codes that admission checks against the committed state
 * ahead of execution, and the mempool's own two. They are the RPC `tx_submit` reasons (rpc/backend.ts).
 */
export const ADMISSION_CODES = [...PRECHECK_FAILURE_CODES, 'duplicate', 'mempool_full'] as const

/** A code from {@link ADMISSION_CODES}. */
export type AdmissionCode = (typeof ADMISSION_CODES)[number]

/** Why a transaction was not admitted: its code and the facts that explain it. */
export interface AdmissionError {
  readonly code: AdmissionCode
  readonly reason: string
}

/** The outcome of {@link Mempool.add}: the admitted transaction's hash, or why it was not admitted. */
export type AddResult = Result<Uint8Array, AdmissionError>

/**
 * Every reason a transaction leaves the pool: a block committed it, a committed block made it fail with a transaction
 * failure code, or the pool's bounds pushed it out (`evicted`) or aged it out (`expired`).
 */
export const REMOVAL_CODES = ['committed', ...TX_FAILURE_CODES, 'evicted', 'expired'] as const

/** A code from {@link REMOVAL_CODES}. */
export type RemovalCode = (typeof REMOVAL_CODES)[number]

/** Why a transaction left the pool. */
export interface Removal {
  readonly code: RemovalCode
  readonly reason: string
}

/** Defaults of the {@link MempoolOptions} bounds (the node's `config.json` `mempool` section uses the same). */
export const MEMPOOL_DEFAULTS = Object.freeze({
  maxTxs: 100_000,
  maxBytes: 32 * 1024 * 1024,
  maxFuturePerSender: 64,
  maxTxsPerSender: 10_000,
  maxBytesPerSender: 2 * 1024 * 1024,
  gappedSharePercent: 25,
  gappedExpiryHeights: 100,
  recentCommittedCapacity: 200_000,
})

/** Options of {@link Mempool}. */
export interface MempoolOptions {
  readonly chainId: string
  /** Most pending transactions (default 100,000). */
  readonly maxTxs?: number
  /** Most pending bytes (default 32 MiB). */
  readonly maxBytes?: number
  /** How far beyond the next contiguous nonce a sender may queue (default 64). */
  readonly maxFuturePerSender?: number
  /** Most pending transactions of one sender, executable or gapped (default 10,000). */
  readonly maxTxsPerSender?: number
  /** Most pending bytes of one sender (default 2 MiB). */
  readonly maxBytesPerSender?: number
  /**
   * Most of the pool's count and bytes, in percent (rounded up), that gapped transactions may hold (1 to 100,
   * default 25).
   */
  readonly gappedSharePercent?: number
  /** Committed heights after which a transaction still gapped leaves as `expired` (at least 1, default 100). */
  readonly gappedExpiryHeights?: number
  /** How many committed hashes are remembered to refuse replays as `duplicate` (default 200,000). */
  readonly recentCommittedCapacity?: number
}

/** Dependencies of {@link Mempool}. */
export interface MempoolDependencies {
  readonly accounts: AccountReader
  readonly verifiedSignatures?: VerifiedSignatureCache
  /** Verifies a transaction's signature, possibly off the event loop (default: inline). */
  readonly verifySignature?: (d: DecodedTransaction) => boolean | Promise<boolean>
  readonly logger?: Logger
  /** Called once for every transaction that leaves the pool, with why. */
  readonly onRemoved?: (hash: Uint8Array, removal: Removal) => void
  /**
   * Judges a governance vote against the committed governance state (the signer a validator of the next height, the
   * change applicable, the signer's open votes within bounds); undefined when it would apply. Without it, governance
   * votes are refused as `not_validator`.
   */
  readonly checkGovernance?: (tx: GovernanceTransaction) => GovernanceError | undefined
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
  /** The pool's height count when it became gapped, or -1 while executable. */
  gappedSince: number
  /** Neighbours in the list of gapped entries, which runs from the longest gapped to the latest. */
  older: Entry | undefined
  newer: Entry | undefined
}

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0
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
  /** Sum of the wire sizes of all pending transactions of this sender. */
  bytes: number
  /** How many of them are gapped, and their bytes. */
  gappedTxs: number
  gappedBytes: number
}

/** Pending transactions, ordered per sender by nonce. */
export class Mempool {
  private readonly chainId: string
  private readonly maxTxs: number
  private readonly maxBytes: number
  private readonly maxFuture: bigint
  private readonly maxTxsPerSender: number
  private readonly maxBytesPerSender: number
  private readonly maxGappedTxs: number
  private readonly maxGappedBytes: number
  private readonly expiryHeights: number
  private readonly deps: MempoolDependencies
  private readonly byHash = new Map<string, Entry>()
  private readonly senders = new Map<string, SenderState>()
  private readonly recentCommitted: RecentHashes
  private totalBytes = 0
  private seq = 0
  /** Incremented whenever committed state may have changed; an admission that awaited across it refetches. */
  private epoch = 0
  /** Committed heights seen (calls of `update`): the clock of expiry. */
  private height = 0
  /**
   * Transactions whose signature verified here but which were not admitted (refused for the sender's nonce or funds,
   * the pool full): a copy sent again is refused without verifying it again. Kept apart from the verified marks of
   * pending transactions, which refused ones would otherwise push out of that bounded cache.
   */
  private readonly verifiedNotAdmitted = new VerifiedTxCache({ maxEntries: 20_000 })
  /** Senders blocks touched while the committed state was already a later block's: re-read at the next settled update. */
  private readonly unrefreshed = new Set<SenderState>()
  /** Gapped entries, oldest gap first (appended at the current height, so their `gappedSince` never decreases). */
  private gapHead: Entry | undefined
  private gapTail: Entry | undefined
  private gappedTxs = 0
  private gappedBytesTotal = 0
  /** Resolves the promise {@link changed} handed out, if any: at the next admission or the end of an update. */
  private wakeWaiters: (() => void) | undefined
  private changedPromise: Promise<void> | undefined

  constructor(options: MempoolOptions, dependencies: MempoolDependencies) {
    const d = MEMPOOL_DEFAULTS
    this.chainId = options.chainId
    this.maxTxs = options.maxTxs ?? d.maxTxs
    this.maxBytes = options.maxBytes ?? d.maxBytes
    this.maxFuture = BigInt(options.maxFuturePerSender ?? d.maxFuturePerSender)
    this.maxTxsPerSender = options.maxTxsPerSender ?? d.maxTxsPerSender
    this.maxBytesPerSender = options.maxBytesPerSender ?? d.maxBytesPerSender
    const share = Math.min(100, Math.max(1, options.gappedSharePercent ?? d.gappedSharePercent))
    this.maxGappedTxs = Math.ceil((this.maxTxs * share) / 100)
    this.maxGappedBytes = Math.ceil((this.maxBytes * share) / 100)
    this.expiryHeights = Math.max(1, options.gappedExpiryHeights ?? d.gappedExpiryHeights)
    this.recentCommitted = new RecentHashes(options.recentCommittedCapacity ?? d.recentCommittedCapacity)
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

  /** Number of pending transactions that are gapped (an earlier nonce of their sender is missing). */
  get gappedSize(): number {
    return this.gappedTxs
  }

  /** Sum of the wire sizes of the gapped transactions. */
  get gappedBytes(): number {
    return this.gappedBytesTotal
  }

  /**
   * Resolves at the next change that may give {@link reap} more to take: a transaction admitted, or an `update`
   * done (its senders refreshed). Every caller until then shares one promise, so a waiter costs nothing per
   * admission beyond its own wake-up.
   */
  changed(): Promise<void> {
    this.changedPromise ??= new Promise<void>((resolve) => {
      this.wakeWaiters = resolve
    })
    return this.changedPromise
  }

  private notifyChanged(): void {
    const wake = this.wakeWaiters
    if (wake === undefined) return
    this.wakeWaiters = undefined
    this.changedPromise = undefined
    wake()
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
    return this.recentCommitted.has(hash)
  }

  /**
   * Recomputes the pool's accounting from its entries and throws on the first mismatch: totals, each sender's
   * spend, bytes and next nonce, which entries are gapped, the order of the gapped list, and every bound. A
   * self-check for tests and debugging, O(pending log pending); call it when no `update` is in progress.
   */
  audit(): void {
    const broken = (what: string): never => {
      throw new Error(`mempool accounting is broken: ${what}`)
    }
    let count = 0
    let bytes = 0
    let gappedTxs = 0
    let gappedBytes = 0
    for (const [key, s] of this.senders) {
      const who = `sender ${toHex(s.address)}`
      if (s.key !== key || s.byNonce.size === 0) broken(`${who} is misfiled or empty`)
      let spend = 0n
      let sBytes = 0
      let sGappedTxs = 0
      let sGappedBytes = 0
      for (const [n, e] of s.byNonce) {
        if (e.sender !== s || e.decoded.tx.nonce !== n || this.byHash.get(e.key) !== e) broken(`${who} nonce ${n} is misfiled`)
        const size = e.decoded.bytes.byteLength
        spend += spendOf(e.decoded.tx)
        sBytes += size
        if (e.gappedSince >= 0) {
          sGappedTxs++
          sGappedBytes += size
        }
      }
      if (spend !== s.spend || sBytes !== s.bytes) broken(`${who} spend ${s.spend} / bytes ${s.bytes}, entries say ${spend} / ${sBytes}`)
      if (sGappedTxs !== s.gappedTxs || sGappedBytes !== s.gappedBytes) broken(`${who} gapped count or bytes`)
      if (s.byNonce.size > this.maxTxsPerSender || sBytes > this.maxBytesPerSender) broken(`${who} exceeds its caps`)
      if (s.account !== undefined) {
        let next = s.account.nonce
        while (s.byNonce.has(next)) next++
        if (next !== s.next) broken(`${who} next ${s.next}, entries say ${next}`)
        for (const [n, e] of s.byNonce) {
          if (n < s.account.nonce) broken(`${who} nonce ${n} is below the committed nonce`)
          if (n > next !== e.gappedSince >= 0) broken(`${who} nonce ${n} is ${e.gappedSince >= 0 ? '' : 'not '}marked gapped`)
        }
        if (spend > s.account.balance) broken(`${who} spends ${spend} of ${s.account.balance}`)
      }
      count += s.byNonce.size
      bytes += sBytes
      gappedTxs += sGappedTxs
      gappedBytes += sGappedBytes
    }
    if (count !== this.byHash.size || bytes !== this.totalBytes) broken(`size ${this.byHash.size} / bytes ${this.totalBytes}, senders say ${count} / ${bytes}`)
    let listed = 0
    let listedBytes = 0
    let prev: Entry | undefined
    for (let e = this.gapHead; e !== undefined; prev = e, e = e.newer) {
      if (e.older !== prev || e.gappedSince < 0 || e.gappedSince < (prev?.gappedSince ?? 0) || this.byHash.get(e.key) !== e) {
        broken(`gapped list at nonce ${e.decoded.tx.nonce}`)
      }
      listed++
      listedBytes += e.decoded.bytes.byteLength
    }
    if (prev !== this.gapTail) broken('gapped list tail')
    if (listed !== gappedTxs || listedBytes !== gappedBytes || listed !== this.gappedTxs || listedBytes !== this.gappedBytesTotal) {
      broken(`gapped ${this.gappedTxs} / ${this.gappedBytesTotal} bytes, listed ${listed} / ${listedBytes}, senders say ${gappedTxs} / ${gappedBytes}`)
    }
    if (this.byHash.size > this.maxTxs || this.totalBytes > this.maxBytes) broken('over the global bounds')
    if (this.gappedTxs > this.maxGappedTxs || this.gappedBytesTotal > this.maxGappedBytes) broken('gapped over their share')
  }

  /** Admits a transaction's wire bytes, or says why not. Never throws on any input. */
  async add(bytes: Uint8Array): Promise<AddResult> {
    // 1. size bound, then decode
    if (!(bytes instanceof Uint8Array)) return fail('malformed', 'not bytes')
    if (bytes.byteLength > MAX_TX_BYTES) return fail('malformed', `transaction of ${bytes.byteLength} bytes exceeds ${MAX_TX_BYTES}`)
    // a transaction cut from a larger message (a peer's batch) is copied out of it, so that what a pending transaction
    // keeps alive is its own bytes, never the message: the decoded fields are views of what is decoded here
    if (bytes.byteLength !== bytes.buffer.byteLength) bytes = new Uint8Array(bytes)
    const d = decodeTransaction(bytes)
    if (!d.ok) return fail('malformed', d.error.reason)
    const decoded = d.value
    const tx = decoded.tx
    // 2. chain id
    if (tx.chainId !== this.chainId) return fail('wrong_chain', `chain id ${tx.chainId} is not ${this.chainId}`)
    // 3. duplicates, pending or recently committed
    const key = bytesKey(decoded.hash)
    if (this.byHash.has(key)) return fail('duplicate', 'already pending')
    if (this.recentCommitted.has(decoded.hash)) return fail('duplicate', 'already committed')
    // 4. signature, once per node (a block this node executed may have verified it already); first what the sender's
    //    state and the pool's room refuse as they stand, which costs no signature check
    const address = senderAddress(tx)
    const senderKey = bytesKey(address)
    if (this.deps.verifiedSignatures?.has(decoded.hash) !== true && !this.verifiedNotAdmitted.has(decoded.hash)) {
      const refused = this.refusedBeforeSignature(tx, bytes.byteLength, address, senderKey)
      if (refused !== undefined) return err(refused)
      const check = this.deps.verifySignature?.(decoded) ?? verifyDecodedSignature(decoded)
      if (!(check instanceof Promise ? await check : check)) return fail('invalid_signature', 'signature does not verify')
      this.verifiedNotAdmitted.add(decoded.hash)
    }
    // 4b. a governance vote must apply to the committed governance state
    if (tx.kind === 'governance') {
      const check = this.deps.checkGovernance
      const problem = check === undefined ? { code: 'not_validator' as const, reason: 'this node takes no governance votes' } : check(tx)
      if (problem !== undefined) return fail(problem.code, problem.reason)
    }
    // 5. committed state of the sender (cached until a block touches the account)
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
    if (this.recentCommitted.has(decoded.hash)) return fail('duplicate', 'already committed')
    if (sender === undefined) {
      sender = { key: senderKey, address, account, byNonce: new Map(), next: account.nonce, spend: 0n, bytes: 0, gappedTxs: 0, gappedBytes: 0 }
    } else if (sender.account === undefined) {
      sender.account = account
      this.recheckSender(sender)
      this.trimGapped()
    }
    // 6. nonce: not below the committed nonce, not taken, not too far ahead
    if (tx.nonce < account.nonce) return fail('bad_nonce', `nonce ${tx.nonce} is below the account nonce ${account.nonce}`)
    if (sender.byNonce.has(tx.nonce)) return fail('bad_nonce', `nonce ${tx.nonce} is taken by a pending transaction`)
    if (tx.nonce > sender.next + this.maxFuture) {
      return fail('bad_nonce', `nonce ${tx.nonce} is more than ${this.maxFuture} beyond the next expected nonce ${sender.next}`)
    }
    // 7. funds cover all pending spends plus this one
    if (sender.spend + spendOf(tx) > account.balance) {
      return fail('insufficient_funds', `balance ${account.balance} does not cover pending spends ${sender.spend} plus ${spendOf(tx)}`)
    }
    // 8. the sender's own caps; 9. global bounds, and the gapped share for a gapped arrival (room may come from
    //    evicting gapped transactions of other senders, never executable ones)
    const size = bytes.byteLength
    const room = this.room(tx, size, sender)
    if ('code' in room) return err(room)
    if (room.evictTxs > 0 || room.evictBytes > 0) this.evict(sender, room.evictTxs, room.evictBytes, room.gapped)
    const entry: Entry = { decoded, key, sender, seq: this.seq++, gappedSince: -1, older: undefined, newer: undefined }
    if (sender.byNonce.size === 0) this.senders.set(senderKey, sender)
    sender.byNonce.set(tx.nonce, entry)
    sender.spend += spendOf(tx)
    sender.bytes += size
    this.byHash.set(key, entry)
    this.totalBytes += size
    if (room.gapped) this.markGapped(entry)
    else {
      // the run grows through this nonce and every gapped one it reaches
      for (let e = entry as Entry | undefined; e !== undefined; e = sender.byNonce.get(++sender.next)) this.unmarkGapped(e)
    }
    // marked verified only once admitted: refused transactions (validly signed by unfunded keys, say) would push the
    // marks of pending ones out of the bounded cache, and executing their block would verify them again
    this.deps.verifiedSignatures?.add(decoded.hash)
    this.verifiedNotAdmitted.delete(decoded.hash)
    this.notifyChanged()
    return ok(decoded.hash)
  }

  /**
   * Whether the pool has room for a transaction of `sender`: its own caps, the global bounds and, for a gapped one,
   * the gapped share, counting what evicting gapped transactions of other senders would free. A refusal, or how much
   * to evict.
   */
  private room(
    tx: DecodedTransaction['tx'],
    size: number,
    sender: Pick<SenderState, 'byNonce' | 'bytes' | 'next' | 'gappedTxs' | 'gappedBytes'>,
  ): AdmissionError | { readonly gapped: boolean; readonly evictTxs: number; readonly evictBytes: number } {
    const full = (reason: string): AdmissionError => ({ code: 'mempool_full', reason })
    if (sender.byNonce.size >= this.maxTxsPerSender) return full(`the sender has ${sender.byNonce.size} pending transactions, the most one sender may have`)
    if (sender.bytes + size > this.maxBytesPerSender) {
      return full(`the sender has ${sender.bytes} pending bytes; ${size} more exceed the ${this.maxBytesPerSender} one sender may have`)
    }
    const gapped = tx.nonce > sender.next
    const evictTxs = Math.max(this.byHash.size + 1 - this.maxTxs, gapped ? this.gappedTxs + 1 - this.maxGappedTxs : 0)
    const evictBytes = Math.max(this.totalBytes + size - this.maxBytes, gapped ? this.gappedBytesTotal + size - this.maxGappedBytes : 0)
    if ((evictTxs > 0 || evictBytes > 0) && (evictTxs > this.gappedTxs - sender.gappedTxs || evictBytes > this.gappedBytesTotal - sender.gappedBytes)) {
      return full(
        gapped
          ? `mempool holds ${this.byHash.size} transactions (${this.totalBytes} bytes), ${this.gappedTxs} of them (${this.gappedBytesTotal} bytes) waiting for missing nonces, and nonce ${tx.nonce} would wait for ${sender.next}`
          : `mempool holds ${this.byHash.size} transactions (${this.totalBytes} bytes), too few of them waiting for missing nonces of other senders to make room`,
      )
    }
    return { gapped, evictTxs, evictBytes }
  }

  /**
   * A refusal the nonce, funds and room checks of {@link add} give on the committed account and the pool as they
   * stand, without changing the pool. Asked before a signature is checked: transfers from unfunded keys, below their
   * sender's nonce, far ahead of it, replacing a pending one or finding the pool full cost a peer nothing to sign and
   * send, and would otherwise each cost a signature check. Only for a sender whose account is in memory (pending
   * transactions, or the reader's `peekAccount`): a sender never seen costs a signature check first, as forging one
   * costs a key and a signature. A sender whose cached account a block made stale
   * is judged by its nonce and this transfer's spend alone (its pending spend may include what the block committed,
   * and its pending transactions some the refreshed state drops).
   */
  private refusedBeforeSignature(tx: DecodedTransaction['tx'], size: number, address: Uint8Array, senderKey: string): AdmissionError | undefined {
    const sender = this.senders.get(senderKey)
    // only what is in memory: a sender never seen is judged after its signature, so that transactions of made-up
    // senders with forged signatures are refused as forged (costing their peer) and read nothing from the store
    const account = sender?.account ?? this.deps.accounts.peekAccount?.(address)
    if (account === undefined) return undefined
    const current = sender?.account !== undefined
    if (tx.nonce < account.nonce) return { code: 'bad_nonce', reason: `nonce ${tx.nonce} is below the account nonce ${account.nonce}` }
    // a stale sender's pending transaction at this nonce may be one the refreshed state drops
    if (current && sender!.byNonce.has(tx.nonce)) return { code: 'bad_nonce', reason: `nonce ${tx.nonce} is taken by a pending transaction` }
    const next = sender === undefined || sender.next < account.nonce ? account.nonce : sender.next
    if (tx.nonce > next + this.maxFuture) {
      return { code: 'bad_nonce', reason: `nonce ${tx.nonce} is more than ${this.maxFuture} beyond the next expected nonce ${next}` }
    }
    const pending = current ? sender!.spend : 0n
    if (pending + spendOf(tx) > account.balance) {
      return { code: 'insufficient_funds', reason: `balance ${account.balance} does not cover pending spends ${pending} plus ${spendOf(tx)}` }
    }
    // the pool's room, for a sender whose pending transactions the committed state does not make stale
    if (sender !== undefined && !current) return undefined
    const room = this.room(tx, size, sender ?? { byNonce: new Map(), bytes: 0, next: account.nonce, gappedTxs: 0, gappedBytes: 0 })
    return 'code' in room ? room : undefined
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
   * What to send a peer so that it holds what this pool holds, and the mark to ask from next time: for a peer sent
   * the pool before, the transactions admitted after the mark it was sent ({@link admittedSince}); otherwise the
   * whole pool within the limits, the executable transactions first as {@link reap} orders them, then the gapped
   * ones, each sender's in nonce order. The gapped ones matter: once their missing nonce arrives and is gossiped
   * alone, they become executable here, and nothing else would send them to a peer that was away at their admission.
   */
  pendingForPeer(since: number | undefined, limits: ReapLimits): { txs: DecodedTransaction[]; mark: number } {
    if (since !== undefined) {
      const { txs, next } = this.admittedSince(since, limits)
      return { txs, mark: next }
    }
    const txs = this.reap(limits)
    const taken = new Set<DecodedTransaction>(txs)
    let bytes = 0
    for (const t of txs) bytes += t.bytes.byteLength
    for (const sender of this.senders.values()) {
      if (txs.length >= limits.maxTxs) break
      if (sender.byNonce.size === 0) continue
      const nonces = [...sender.byNonce.keys()].sort(compareBigint)
      for (const n of nonces) {
        const e = sender.byNonce.get(n)
        if (e === undefined || taken.has(e.decoded)) continue
        const size = e.decoded.bytes.byteLength
        if (txs.length >= limits.maxTxs || bytes + size > limits.maxBytes) break
        txs.push(e.decoded)
        bytes += size
      }
    }
    return { txs, mark: this.seq }
  }

  /** The count of admissions so far: {@link admittedSince} this mark gives the transactions admitted after it. */
  get admissionMark(): number {
    return this.seq
  }

  /**
   * The pending transactions admitted after `mark` ({@link admissionMark}), in the order they were admitted (a sender's
   * nonces in order, as it sent them), within the limits: what a peer that was sent the pool at `mark` has not seen;
   * and the mark to ask from next time, past the last one given (before the first left out when the limits cut).
   */
  admittedSince(mark: number, limits: ReapLimits): { txs: DecodedTransaction[]; next: number } {
    const txs: DecodedTransaction[] = []
    let bytes = 0
    // the pool's entries are in the order they were admitted
    for (const e of this.byHash.values()) {
      if (e.seq < mark) continue
      const size = e.decoded.bytes.byteLength
      if (txs.length >= limits.maxTxs || bytes + size > limits.maxBytes) return { txs, next: e.seq }
      txs.push(e.decoded)
      bytes += size
    }
    return { txs, next: this.seq }
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
    const later = [...s.byNonce.keys()].filter((n) => n > e.decoded.tx.nonce).sort(compareBigint)
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
   * committed, before admitting more transactions against it. With `settled` false the committed state is already a
   * later block's (a synced run's heights are committed together and reported one by one): read now, it would make
   * the pending transactions those later blocks commit look invalid, so the touched senders are re-read at the next
   * settled update instead.
   */
  async update(committedHashes: readonly Uint8Array[], touched?: readonly Uint8Array[], settled = true): Promise<void> {
    this.epoch++
    this.height++
    const stale = new Set<SenderState>()
    for (const hash of committedHashes) {
      this.recentCommitted.add(hash)
      // a committed hash is refused as a duplicate before any signature check, so its verified mark is not needed
      this.deps.verifiedSignatures?.delete(hash)
      // (an empty pool, as while catching up, has nothing to look up)
      const e = this.byHash.size === 0 ? undefined : this.byHash.get(bytesKey(hash))
      if (e === undefined) continue
      this.removeEntry(e, { code: 'committed', reason: 'committed in a block' })
      stale.add(e.sender)
    }
    if (touched === undefined) for (const s of this.senders.values()) stale.add(s)
    else if (this.senders.size > 0) {
      for (const address of touched) {
        const s = this.senders.get(bytesKey(address))
        if (s !== undefined) stale.add(s)
      }
    }
    for (const s of stale) s.account = undefined
    if (!settled) {
      for (const s of stale) this.unrefreshed.add(s)
      this.notifyChanged()
      return
    }
    for (const s of this.unrefreshed) stale.add(s)
    this.unrefreshed.clear()
    // a loop, not a callback made per call (ledger/smt.ts, byKey)
    const refreshing = [...stale]
    const reads: (AccountView | Promise<AccountView>)[] = []
    for (const s of refreshing) reads.push(this.deps.accounts.getAccount(s.address))
    const accounts = await Promise.all(reads)
    this.epoch++
    for (let i = 0; i < refreshing.length; i++) {
      const s = refreshing[i]!
      const account = accounts[i]!
      if (this.senders.get(s.key) !== s) continue
      if (s.account === undefined) s.account = account
      this.recheckSender(s)
    }
    this.expireGapped()
    this.trimGapped()
    this.notifyChanged()
  }

  /**
   * Drops a sender's transactions that the (refreshed) committed state makes invalid, then recomputes its run and
   * which of its transactions are gapped (one that stays gapped keeps its age; one that became gapped starts now).
   */
  private recheckSender(s: SenderState): void {
    const account = s.account
    if (account === undefined) return
    const nonces = [...s.byNonce.keys()].sort(compareBigint)
    let spend = 0n
    for (const n of nonces) {
      const e = s.byNonce.get(n)!
      if (n < account.nonce) {
        this.removeEntry(e, { code: 'bad_nonce', reason: `nonce ${n} was used by a committed transaction` })
        continue
      }
      const amount = spendOf(e.decoded.tx)
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
    for (const n of nonces) {
      const e = s.byNonce.get(n)
      if (e === undefined) continue
      if (n < next) this.unmarkGapped(e)
      else if (e.gappedSince < 0) this.markGapped(e)
    }
  }

  /**
   * Frees room for an arrival of `sender` by evicting gapped transactions of other senders, the longest gapped
   * first, until at least `txs` transactions and `bytes` bytes are freed. The caller checked that enough exist.
   */
  private evict(sender: SenderState, txs: number, bytes: number, arrivalGapped: boolean): void {
    const arrival = arrivalGapped ? 'transaction waiting for a missing nonce' : 'executable transaction'
    let e = this.gapHead
    while (e !== undefined && (txs > 0 || bytes > 0)) {
      const victim = e
      e = e.newer
      if (victim.sender === sender) continue
      txs--
      bytes -= victim.decoded.bytes.byteLength
      this.removeEntry(victim, {
        code: 'evicted',
        reason: `evicted to make room for an arriving ${arrival}: nonce ${victim.decoded.tx.nonce} was waiting for the sender's missing nonce ${victim.sender.next}, longer than any other transaction that could give way`,
      })
    }
  }

  /** Removes the transactions that have stayed gapped for `expiryHeights` committed heights. */
  private expireGapped(): void {
    const limit = this.height - this.expiryHeights
    let e = this.gapHead
    while (e !== undefined && e.gappedSince <= limit) {
      const x = e
      e = e.newer
      // a sender still being refreshed by an overlapping update is judged once its state is known
      if (x.sender.account === undefined) continue
      this.removeEntry(x, {
        code: 'expired',
        reason: `nonce ${x.decoded.tx.nonce} could not execute for ${this.expiryHeights} committed heights: the sender's nonce ${x.sender.next} is missing`,
      })
    }
  }

  /** Evicts the longest gapped transactions while gapped ones exceed their share (a block can open new gaps). */
  private trimGapped(): void {
    while (this.gapHead !== undefined && (this.gappedTxs > this.maxGappedTxs || this.gappedBytesTotal > this.maxGappedBytes)) {
      const x = this.gapHead
      this.removeEntry(x, {
        code: 'evicted',
        reason: `evicted because transactions waiting for missing nonces exceeded their share of the mempool: nonce ${x.decoded.tx.nonce} was waiting for the sender's missing nonce ${x.sender.next} the longest`,
      })
    }
  }

  private markGapped(e: Entry): void {
    e.gappedSince = this.height
    e.older = this.gapTail
    e.newer = undefined
    if (this.gapTail === undefined) this.gapHead = e
    else this.gapTail.newer = e
    this.gapTail = e
    const size = e.decoded.bytes.byteLength
    this.gappedTxs++
    this.gappedBytesTotal += size
    e.sender.gappedTxs++
    e.sender.gappedBytes += size
  }

  private unmarkGapped(e: Entry): void {
    if (e.gappedSince < 0) return
    if (e.older === undefined) this.gapHead = e.newer
    else e.older.newer = e.newer
    if (e.newer === undefined) this.gapTail = e.older
    else e.newer.older = e.older
    e.older = undefined
    e.newer = undefined
    e.gappedSince = -1
    const size = e.decoded.bytes.byteLength
    this.gappedTxs--
    this.gappedBytesTotal -= size
    e.sender.gappedTxs--
    e.sender.gappedBytes -= size
  }

  private removeEntry(e: Entry, removal: Removal): void {
    this.unmarkGapped(e)
    this.byHash.delete(e.key)
    this.totalBytes -= e.decoded.bytes.byteLength
    const s = e.sender
    s.byNonce.delete(e.decoded.tx.nonce)
    s.spend -= spendOf(e.decoded.tx)
    s.bytes -= e.decoded.bytes.byteLength
    if (e.decoded.tx.nonce < s.next) s.next = e.decoded.tx.nonce
    if (s.byNonce.size === 0) this.senders.delete(s.key)
    if (removal.code !== 'committed') this.deps.logger?.debug({ hash: toHex(e.decoded.hash), ...removal }, 'transaction dropped')
    this.deps.onRemoved?.(e.decoded.hash, removal)
  }
}

function fail(code: AdmissionCode, reason: string): AddResult {
  return err({ code, reason })
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
