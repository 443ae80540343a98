import { bytesKey, compareBytes, toHex } from '../../crypto/bytes.js'
import { decodeEvidence, encodeEvidence, evidenceHash, evidenceHeight, evidenceOffender, type Evidence } from '../../consensus/index.js'
import type { KvOp } from '../../ledger/store.js'
import type { DomainValue } from '../../rpc/backend.js'
import { evidenceView } from '../../rpc/format.js'
import type { Logger } from '../logger.js'
import { MAX_COMMITTED_EVIDENCE, type ChainStore } from '../storage/chainStore.js'

/**
 * Equivocation evidence: what this node observed or received (verified, waiting to go into a block) and what the
 * chain committed. A proposer puts pending evidence into its block (at most `maxPerBlock`, not older than
 * `maxAgeHeights`, never evidence the chain already holds); every replica commits the same items with the block, so
 * `chain_getEvidence` answers the same everywhere. Committed evidence is indexed by its hash in the chain store, so
 * validity can refuse it twice.
 */

/** Most pending evidence items held (the oldest leave first). */
export const MAX_PENDING_EVIDENCE = 256
/**
 * Most pending evidence items against one validator. One convicts it; each further equivocation (every round is a
 * slot of its own) adds little, and without a bound one validator signing two messages in round after round made
 * every node check two signatures and log a warning per round, and pushed the evidence against others out.
 */
export const MAX_PENDING_PER_OFFENDER = 4

export interface EvidencePoolDependencies {
  readonly chain: ChainStore
  readonly logger: Logger
}

interface Pending {
  readonly bytes: Uint8Array
  readonly hash: Uint8Array
  readonly height: number
  readonly slot: string
  readonly offender: string
}

/**
 * The equivocation a piece of evidence proves: its offender, height, round and message type. One piece per slot
 * convicts; the other pairs of the same conflicting messages add nothing (k messages of one slot make k(k-1)/2 pairs).
 */
function slotOf(e: Evidence): string {
  const type = e.kind === 'conflictingVotes' ? e.first.type : 'proposal'
  return `${toHex(evidenceOffender(e))}/${e.first.height}/${e.first.round}/${type}`
}

export class EvidencePool {
  private readonly pending = new Map<string, Pending>()
  /** The slots of the pending items ({@link slotOf}), each to its item's id. */
  private readonly pendingSlots = new Map<string, string>()
  /** Pending items per offender (address hex). */
  private readonly pendingByOffender = new Map<string, number>()
  private committed: { height: number; bytes: Uint8Array }[] = []
  /** The slots of the committed evidence the list keeps. */
  private committedSlots = new Set<string>()

  private constructor(private readonly d: EvidencePoolDependencies) {}

  static async load(d: EvidencePoolDependencies): Promise<EvidencePool> {
    const pool = new EvidencePool(d)
    pool.committed = await d.chain.loadCommittedEvidence()
    pool.committedSlots = slotsOf(pool.committed)
    return pool
  }

  /** The committed evidence as RPC shows it, oldest first. */
  views(): DomainValue[] {
    return this.committed.map((r) => {
      const e = decodeEvidence(r.bytes)
      if (!e.ok) throw new Error('stored evidence is corrupt')
      return evidenceView(r.bytes, e.value, r.height)
    })
  }

  /** True when this node holds this evidence pending. */
  has(bytes: Uint8Array): boolean {
    return this.pending.has(bytesKey(evidenceHash(bytes)))
  }

  /**
   * True when this node holds evidence of the same equivocation, pending or committed ({@link slotOf}), or
   * {@link MAX_PENDING_PER_OFFENDER} pending items against its offender: {@link add} would not take it.
   */
  provesAlready(e: Evidence): boolean {
    const slot = slotOf(e)
    return this.pendingSlots.has(slot) || this.committedSlots.has(slot) || this.offenderFull(e)
  }

  private offenderFull(e: Evidence): boolean {
    return (this.pendingByOffender.get(toHex(evidenceOffender(e))) ?? 0) >= MAX_PENDING_PER_OFFENDER
  }

  /** The height at which the chain committed evidence with this hash, if it did. */
  committedAt(hash: Uint8Array): Promise<number | undefined> {
    return this.d.chain.evidenceHeight(hash)
  }

  /**
   * Adds evidence this node verified (seen by its core, or received and checked against the set of its height).
   * Returns its encoding when it is new to the pool, for gossip; undefined when already held.
   */
  add(e: Evidence): Uint8Array | undefined {
    // its own copy: an encoding is a view of the encoder's working buffer, which may be as large as a block
    const bytes = new Uint8Array(encodeEvidence(e))
    const hash = evidenceHash(bytes)
    const id = bytesKey(hash)
    const slot = slotOf(e)
    if (this.pending.has(id) || this.pendingSlots.has(slot) || this.offenderFull(e)) return undefined
    const offender = toHex(evidenceOffender(e))
    this.d.logger.warn({ kind: e.kind, validator: offender, height: e.first.height, round: e.first.round }, 'equivocation evidence')
    this.pending.set(id, { bytes, hash, height: evidenceHeight(e), slot, offender })
    this.pendingSlots.set(slot, id)
    this.pendingByOffender.set(offender, (this.pendingByOffender.get(offender) ?? 0) + 1)
    if (this.pending.size > MAX_PENDING_EVIDENCE) this.drop(this.pending.keys().next().value!)
    return bytes
  }

  private drop(id: string): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    if (this.pendingSlots.get(p.slot) === id) this.pendingSlots.delete(p.slot)
    const left = (this.pendingByOffender.get(p.offender) ?? 1) - 1
    if (left > 0) this.pendingByOffender.set(p.offender, left)
    else this.pendingByOffender.delete(p.offender)
  }

  /** Pending evidence a block of `height` may carry: recent enough, not committed, in hash order, at most `max`. */
  async forBlock(height: number, max: number, maxAgeHeights: number): Promise<Uint8Array[]> {
    const out: Pending[] = []
    for (const [id, p] of [...this.pending]) {
      if (height - p.height > maxAgeHeights) {
        this.drop(id)
        continue
      }
      if (p.height >= height) continue
      if ((await this.committedAt(p.hash)) !== undefined) {
        this.drop(id)
        continue
      }
      out.push(p)
    }
    return out
      .sort((a, b) => compareBytes(a.hash, b.hash))
      .slice(0, max)
      .map((p) => p.bytes)
  }

  /** The write ops that record a block's evidence as committed at `height`. */
  commitOps(height: number, items: readonly Uint8Array[]): KvOp[] {
    if (items.length === 0) return []
    return [
      ...this.d.chain.evidenceIndexOps(height, items.map(evidenceHash)),
      this.d.chain.committedEvidenceOp([...this.committed, ...items.map((bytes) => ({ height, bytes }))]),
    ]
  }

  /**
   * After the block's batch is durable: its evidence leaves the pending pool and joins the committed list, as copies:
   * the items are views of the block's message, which the list would otherwise keep alive. Pending evidence that no
   * block of the next height may carry (more than `maxAgeHeights` below it) leaves too, on every node, proposer or not:
   * it would otherwise count against its offender's pending items for good.
   */
  onCommitted(height: number, items: readonly Uint8Array[], maxAgeHeights: number): void {
    for (const b of items) this.drop(bytesKey(evidenceHash(b)))
    for (const [id, p] of [...this.pending]) if (height + 1 - p.height > maxAgeHeights) this.drop(id)
    if (items.length === 0) return
    this.committed = [...this.committed, ...items.map((b) => ({ height, bytes: new Uint8Array(b) }))].slice(-MAX_COMMITTED_EVIDENCE)
    this.committedSlots = slotsOf(this.committed)
    // pending evidence of an equivocation the block convicted is not needed
    for (const [slot, id] of [...this.pendingSlots]) if (this.committedSlots.has(slot)) this.drop(id)
  }
}

/** The slots of committed evidence records (stored, so decoded without fail). */
function slotsOf(records: readonly { readonly bytes: Uint8Array }[]): Set<string> {
  const out = new Set<string>()
  for (const r of records) {
    const e = decodeEvidence(r.bytes)
    if (e.ok) out.add(slotOf(e.value))
  }
  return out
}
