import { decodeCanonical, encodeCanonical, malformed, ok, type DecodeResult, type Result } from '../../crypto/index.js'
import type { TxFailureCode } from '../../ledger/receipt.js'
import { MAX_TX_BYTES } from '../../ledger/transaction.js'
import type { Logger } from '../logger.js'
import type { DirectStreams } from '../p2p/directStreams.js'
import type { GossipHandler, GossipVerdict } from '../p2p/p2p.js'

/**
 * Transaction gossip in batches over direct peer streams ({@link DirectStreams}: one hop to every connected
 * validator, never relayed). Every libp2p message costs tens of microseconds, so one message per transaction caps a
 * receiver near 2,000 tx/s; packing many transactions into one message lifts that to hundreds of thousands
 * (docs/p2p.md). Outgoing transactions are queued and flushed as one message every `flushMs` or as soon as the
 * batch reaches `maxBatchTxs` or `maxBatchBytes`.
 *
 * Batch wire format: canonical `[1, [tx wire bytes, ...]]`, 1 to maxBatchTxs transactions of at most MAX_TX_BYTES
 * each, whole message at most maxBatchBytes. A receiver hands every transaction to the admission callback (the
 * mempool) and judges the batch:
 *  - reject (the sender is penalized) when the batch is not well formed, or any transaction fails a stateless
 *    check: `malformed`, `invalid_signature`, `wrong_chain`. An honest peer never relays such a transaction,
 *    because it checked the same deterministic rules before relaying;
 *  - accept when at least one transaction was new to this node;
 *  - ignore (no penalty) when every transaction was merely stale for this node: already known, already committed,
 *    a used nonce, insufficient funds, or a full mempool. Those depend on local state and timing, so an honest peer
 *    can send them.
 * Transactions that arrived from a peer are not sent on: every validator connects to every other, and the node that
 * admitted a transaction from a client sends it to all of them. A peer that connects later gets this node's pending
 * transactions ({@link TxGossip.sendPending}), so one admitted while its node had no peers (a full node cut off, a
 * partition) still reaches a proposer. A validator that missed some (its queue overflowed) fetches them from its
 * peers when a proposal names them.
 */

/** The outcome of admitting one transaction (the mempool's `add` result satisfies it). */
export type AdmitResult = Result<unknown, { readonly code: string }>

/**
 * Admission codes that prove the transaction invalid regardless of local state: the batch is rejected. They are
 * transaction failure codes (ledger/receipt.ts), so a change to that list that drops one does not compile here.
 */
export const STATELESS_REJECTIONS: ReadonlySet<string> = new Set(['malformed', 'invalid_signature', 'wrong_chain'] as const satisfies readonly TxFailureCode[])

/** Batch format version. */
export const TX_BATCH_VERSION = 1

/** Options of {@link TxGossip}. */
export interface TxGossipOptions {
  /** Stream protocol (default `/tally/tx-batches/1`). */
  readonly topic?: string
  /** Longest wait before a queued transaction is sent, in ms (default 5), outside a hold ({@link TxGossipDependencies.holdUntil}). */
  readonly flushMs?: number
  /** Longest a hold may delay a queued transaction, in ms (default 100). */
  readonly maxHoldMs?: number
  /**
   * A peer that connects again within this many ms of the last time it was sent this node's whole pending set is sent
   * only what was admitted since (default 10,000): reconnecting over and over would otherwise have this node read and
   * send its whole mempool each time.
   */
  readonly pendingResendMs?: number
  /** Most transactions in one batch (default 2,000). */
  readonly maxBatchTxs?: number
  /** Largest batch message in bytes (default 256 KiB); must fit the p2p layer's maxGossipBytes. */
  readonly maxBatchBytes?: number
}

/** The part of the p2p layer transaction gossip uses ({@link DirectStreams} satisfies it). */
export interface GossipTransport {
  subscribe(topic: string, handler: GossipHandler): void | Promise<void>
  publish(topic: string, data: Uint8Array): Promise<number>
  /** Queues a message for one peer; false when it was dropped. */
  sendTo(peer: string, topic: string, data: Uint8Array): boolean
}

/** Dependencies of {@link TxGossip}. */
export interface TxGossipDependencies<R extends AdmitResult = AdmitResult> {
  readonly gossip: GossipTransport
  /** Admits one transaction's wire bytes (the mempool). `from` is the relaying peer, undefined for local submissions. */
  readonly admit: (tx: Uint8Array, from?: string) => R | Promise<R>
  /**
   * A time (ms, on {@link now}'s clock) before which small batches are held back: the transactions queued until then
   * go out as one batch at that time; `Infinity` holds them as long as `maxHoldMs` allows, NaN holds nothing. A
   * validator holds them until shortly before the proposer of its height proposes (the pacing interval,
   * `consensus.minBlockIntervalMs`), and, once it has voted in the height's round, until the next height's such moment
   * ({@link rearm} when it starts): sent earlier they would not make an earlier block. Without it, batches wait
   * `flushMs`.
   */
  readonly holdUntil?: () => number
  /** The clock of {@link holdUntil} (default the wall clock). */
  readonly now?: () => number
  readonly logger: Logger
}

/** Counters for metrics and tests. */
export interface TxGossipStats {
  batchesSent: number
  txsSent: number
  batchesReceived: number
  txsReceived: number
  batchesRejected: number
  batchesIgnored: number
}

/** Per-batch framing overhead allowance: array headers and version; each transaction's bin header is added exactly. */
const BATCH_HEADER_BYTES = 8

/** A transaction's bytes in a batch: its MessagePack bin header (bin8, bin16 from 256 bytes, bin32 from 64 KiB) too. */
function entryBytes(tx: Uint8Array): number {
  return tx.byteLength + (tx.byteLength < 0x100 ? 2 : tx.byteLength < 0x10000 ? 3 : 5)
}

/** Encodes a batch of transaction wire bytes (canonical `[1, [tx, ...]]`). */
export function encodeTxBatch(txs: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([TX_BATCH_VERSION, txs])
}

/** Decodes a batch within the bounds; never throws. */
export function decodeTxBatch(bytes: Uint8Array, maxBatchBytes: number, maxBatchTxs: number): DecodeResult<Uint8Array[]> {
  const d = decodeCanonical(bytes, maxBatchBytes)
  if (!d.ok) return d
  const v = d.value
  if (!Array.isArray(v) || v.length !== 2) return malformed('a batch is [version, txs]')
  if (v[0] !== TX_BATCH_VERSION) return malformed(`unsupported batch version ${String(v[0])}`)
  const txs = v[1]
  if (!Array.isArray(txs) || txs.length === 0) return malformed('a batch holds a non-empty list of transactions')
  if (txs.length > maxBatchTxs) return malformed(`batch of ${txs.length} transactions exceeds ${maxBatchTxs}`)
  for (const tx of txs) {
    if (!(tx instanceof Uint8Array) || tx.byteLength > MAX_TX_BYTES) return malformed('a batch entry is not transaction bytes')
  }
  return ok(txs as Uint8Array[])
}

/** Batches outgoing transactions into gossip messages and validates incoming batches. */
export class TxGossip<R extends AdmitResult = AdmitResult> {
  readonly topic: string
  private readonly flushMs: number
  private readonly maxBatchTxs: number
  private readonly maxBatchBytes: number
  private readonly maxHoldMs: number
  private readonly pendingResendMs: number
  /**
   * When each peer was last sent the whole pending set, and the mempool's admission mark of what it was last sent
   * ({@link sendPending}); keyed by admitted peers.
   */
  private readonly pendingSent = new Map<string, { readonly at: number; readonly mark: number }>()
  private readonly deps: TxGossipDependencies<R>
  private queue: Uint8Array[] = []
  private queueBytes = BATCH_HEADER_BYTES
  private timer?: NodeJS.Timeout
  /** When the first transaction of the queued batch was queued (on the hold's clock). */
  private queuedAt = 0
  private sending: Promise<void> = Promise.resolve()
  private running = false
  /** Counters since start. */
  readonly stats: TxGossipStats = {
    batchesSent: 0,
    txsSent: 0,
    batchesReceived: 0,
    txsReceived: 0,
    batchesRejected: 0,
    batchesIgnored: 0,
  }

  constructor(options: TxGossipOptions, dependencies: TxGossipDependencies<R>) {
    this.topic = options.topic ?? '/tally/tx-batches/1'
    this.flushMs = options.flushMs ?? 5
    this.maxBatchTxs = options.maxBatchTxs ?? 2_000
    this.maxBatchBytes = options.maxBatchBytes ?? 256 * 1024
    this.maxHoldMs = options.maxHoldMs ?? 100
    this.pendingResendMs = options.pendingResendMs ?? 10_000
    if (this.maxBatchBytes < BATCH_HEADER_BYTES + entryBytes(new Uint8Array(MAX_TX_BYTES))) throw new RangeError('maxBatchBytes too small for one transaction')
    if (this.maxBatchTxs < 1) throw new RangeError('maxBatchTxs must be at least 1')
    this.deps = dependencies
  }

  /** Starts receiving batches and sending queued ones. */
  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    await this.deps.gossip.subscribe(this.topic, (data, from) => this.onBatch(data, from))
  }

  /** Sends what is queued and stops batching. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.flush()
    this.running = false
    await this.sending
  }

  /**
   * Admits a locally submitted transaction (RPC) and, when admitted, queues it for gossip. Returns the admission
   * result unchanged so the caller can answer the client.
   */
  async submit(tx: Uint8Array): Promise<R> {
    const r = await this.deps.admit(tx)
    if (r.ok) this.broadcast(tx)
    return r
  }

  /** Queues already-admitted transaction bytes for the next batch. */
  broadcast(tx: Uint8Array): void {
    if (!this.running) return
    if (tx.byteLength > MAX_TX_BYTES) throw new RangeError(`transaction of ${tx.byteLength} bytes exceeds ${MAX_TX_BYTES}`)
    const size = entryBytes(tx)
    if (this.queueBytes + size > this.maxBatchBytes) this.flush()
    this.queue.push(tx)
    this.queueBytes += size
    if (this.queue.length >= this.maxBatchTxs) this.flush()
    else if (this.timer === undefined) {
      this.queuedAt = this.now()
      this.timer = setTimeout(() => this.flush(), this.delay())
    }
  }

  /** Schedules the queued batch again, for a hold that changed (a new height started). */
  rearm(): void {
    if (this.timer === undefined) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.flush(), this.delay())
  }

  private now(): number {
    return (this.deps.now ?? Date.now)()
  }

  /**
   * How long the queued batch still waits: `flushMs` after its first transaction, or until the hold ends, but never
   * longer than `maxHoldMs` after its first transaction.
   */
  private delay(): number {
    const now = this.now()
    const waited = now - this.queuedAt
    const until = this.deps.holdUntil?.()
    if (until === undefined || Number.isNaN(until)) return Math.max(0, this.flushMs - waited)
    return Math.max(0, this.flushMs - waited, Math.min(until - now, this.maxHoldMs - waited))
  }

  /**
   * Sends transactions to one peer only, in the order given (a sender's nonces in order), in as few batches as the
   * bounds allow: what this node holds pending, for a peer that just connected. `pending(since)` gives the pending
   * transactions and the mempool's admission mark: all of them (`since` undefined), or, for a peer sent the whole set
   * within `pendingResendMs`, those admitted after the mark it was last sent. Returns how many were queued; a batch
   * the peer's outbound queue cannot take ends the sending (and the next connection sends from the same mark).
   */
  sendPending(peer: string, pending: (since: number | undefined) => { readonly txs: readonly Uint8Array[]; readonly mark: number }): number {
    if (!this.running) return 0
    const now = this.now()
    const last = this.pendingSent.get(peer)
    const recent = last !== undefined && now - last.at < this.pendingResendMs ? last : undefined
    const { txs, mark } = pending(recent?.mark)
    const sent = this.sendAll(peer, txs)
    if (sent === txs.length) this.pendingSent.set(peer, { at: recent?.at ?? now, mark })
    return sent
  }

  /** Sends transactions to one peer in as few batches as the bounds allow; how many were queued. */
  private sendAll(peer: string, txs: readonly Uint8Array[]): number {
    let sent = 0
    let batch: Uint8Array[] = []
    let bytes = BATCH_HEADER_BYTES
    const send = (): boolean => {
      if (batch.length === 0) return true
      if (!this.deps.gossip.sendTo(peer, this.topic, encodeTxBatch(batch))) return false
      this.stats.batchesSent++
      this.stats.txsSent += batch.length
      sent += batch.length
      batch = []
      bytes = BATCH_HEADER_BYTES
      return true
    }
    for (const tx of txs) {
      const size = entryBytes(tx)
      if ((bytes + size > this.maxBatchBytes || batch.length >= this.maxBatchTxs) && !send()) return sent
      batch.push(tx)
      bytes += size
    }
    send()
    return sent
  }

  /** Sends the queued transactions now as one batch. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.queue.length === 0) return
    const txs = this.queue
    this.queue = []
    this.queueBytes = BATCH_HEADER_BYTES
    const batch = encodeTxBatch(txs)
    // publish in order: a sender's nonces then arrive in order at every peer
    this.sending = this.sending.then(async () => {
      try {
        await this.deps.gossip.publish(this.topic, batch)
        this.stats.batchesSent++
        this.stats.txsSent += txs.length
      } catch (e) {
        this.deps.logger.warn({ err: (e as Error).message, txs: txs.length }, 'tx batch publish failed')
      }
    })
  }

  private async onBatch(data: Uint8Array, from: string): Promise<GossipVerdict> {
    this.stats.batchesReceived++
    const batch = decodeTxBatch(data, this.maxBatchBytes, this.maxBatchTxs)
    if (!batch.ok) {
      this.stats.batchesRejected++
      this.deps.logger.debug({ peer: from, reason: batch.error.reason }, 'malformed tx batch')
      return 'reject'
    }
    this.stats.txsReceived += batch.value.length
    // admitted together, so their signatures are verified as one batch; a sender's nonces still enter in order
    const results = await Promise.all(batch.value.map((tx) => this.deps.admit(tx, from)))
    let fresh = 0
    for (const r of results) {
      if (r.ok) fresh++
      else if (STATELESS_REJECTIONS.has(r.error.code)) {
        this.stats.batchesRejected++
        this.deps.logger.debug({ peer: from, code: r.error.code }, 'tx batch holds an invalid transaction')
        return 'reject'
      }
    }
    if (fresh > 0) return 'accept'
    this.stats.batchesIgnored++
    return 'ignore'
  }
}
