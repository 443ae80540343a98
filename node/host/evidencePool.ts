import { bytesKey, compareBytes, toHex } from '../../crypto/bytes.js'
import { decodeEvidence, encodeEvidence, evidenceHash, evidenceHeight, evidenceOffender, type Evidence } from '../../consensus/index.js'
import type { KvOp } from '../../ledger/store.js'
import type { DomainValue } from '../../rpc/backend.js'
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

export interface EvidencePoolDependencies {
  readonly chain: ChainStore
  readonly logger: Logger
}

/** How RPC shows an evidence record. */
export function evidenceView(e: Evidence, committedAt?: number): DomainValue {
  const type = e.kind === 'conflictingVotes' ? e.first.type : 'proposal'
  return {
    kind: e.kind,
    validator: evidenceOffender(e),
    height: e.first.height,
    round: e.first.round,
    type,
    first: { valueId: e.first.valueId, signature: e.first.signature },
    second: { valueId: e.second.valueId, signature: e.second.signature },
    ...(committedAt === undefined ? {} : { committedAt }),
  }
}

interface Pending {
  readonly bytes: Uint8Array
  readonly hash: Uint8Array
  readonly height: number
}

export class EvidencePool {
  private readonly pending = new Map<string, Pending>()
  private committed: { height: number; bytes: Uint8Array }[] = []

  private constructor(private readonly d: EvidencePoolDependencies) {}

  static async load(d: EvidencePoolDependencies): Promise<EvidencePool> {
    const pool = new EvidencePool(d)
    pool.committed = await d.chain.loadCommittedEvidence()
    return pool
  }

  /** The committed evidence as RPC shows it, oldest first. */
  views(): DomainValue[] {
    return this.committed.map((r) => {
      const e = decodeEvidence(r.bytes)
      if (!e.ok) throw new Error('stored evidence is corrupt')
      return evidenceView(e.value, r.height)
    })
  }

  /** True when this node holds this evidence pending. */
  has(bytes: Uint8Array): boolean {
    return this.pending.has(bytesKey(evidenceHash(bytes)))
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
    if (this.pending.has(id)) return undefined
    this.d.logger.warn({ kind: e.kind, validator: toHex(evidenceOffender(e)), height: e.first.height, round: e.first.round }, 'equivocation evidence')
    this.pending.set(id, { bytes, hash, height: evidenceHeight(e) })
    if (this.pending.size > MAX_PENDING_EVIDENCE) this.pending.delete(this.pending.keys().next().value!)
    return bytes
  }

  /** Pending evidence a block of `height` may carry: recent enough, not committed, in hash order, at most `max`. */
  async forBlock(height: number, max: number, maxAgeHeights: number): Promise<Uint8Array[]> {
    const out: Pending[] = []
    for (const [id, p] of [...this.pending]) {
      if (height - p.height > maxAgeHeights) {
        this.pending.delete(id)
        continue
      }
      if (p.height >= height) continue
      if ((await this.committedAt(p.hash)) !== undefined) {
        this.pending.delete(id)
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
   * the items are views of the block's message, which the list would otherwise keep alive.
   */
  onCommitted(height: number, items: readonly Uint8Array[]): void {
    for (const b of items) this.pending.delete(bytesKey(evidenceHash(b)))
    if (items.length > 0) this.committed = [...this.committed, ...items.map((b) => ({ height, bytes: new Uint8Array(b) }))].slice(-MAX_COMMITTED_EVIDENCE)
  }
}
