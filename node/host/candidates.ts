import { bytesKey } from '../../crypto/bytes.js'
import type { CommitCertificate } from '../../consensus/index.js'
import type { BlockHeader } from '../../ledger/block.js'
import type { ExecutionResult } from '../../ledger/ledgerState.js'
import type { DecodedTransaction } from '../../ledger/transaction.js'

/**
 * The blocks consensus is deciding between: the parts of each proposed block (header, transaction hashes, the
 * previous height's certificate), what this node resolved and executed of it, and its verdict once reached.
 *
 * Parts are stored only for proposals whose signature and proposer the admission has verified, and at most
 * `perSlot` distinct blocks per (height, round) — an honest proposer sends one, an equivocating one two, anything
 * beyond is refused — so a peer cannot fill the store, and every height it names was signed by the proposer of that
 * height and round. Pruned when a height commits.
 */

/** What a validation concluded: for good, or not yet (retry later). */
export type Verdict = 'valid' | 'invalid'

/** A proposed (or own) block and what this node knows of it. */
export interface Candidate {
  readonly header: BlockHeader
  readonly hash: Uint8Array
  readonly txHashes: readonly Uint8Array[]
  /** The block's evidence items (consensus encoding). */
  readonly evidence: readonly Uint8Array[]
  readonly lastCommit: CommitCertificate | null
  /** Present once the transactions are resolved. */
  txs?: DecodedTransaction[]
  /** Present once executed successfully (the block is valid). */
  result?: ExecutionResult
  executionMs?: number
  /** The permanent verdict, once reached; absent while the block cannot be judged yet. */
  verdict?: Verdict
  /** True while a judgement executes the block (waiting for the ledger included): only local, bounded work is left. */
  executing?: boolean
  /** The judgement under way, shared by every caller that asks meanwhile. */
  judging?: Promise<Verdict | { readonly retryMs: number; readonly reason: string }>
  /** Transaction bytes by hash (bytesKey), built on the first fetch a peer makes. */
  byHash?: Map<string, Uint8Array>
}

/** The parts a proposal carries. */
export type CandidateParts = Pick<Candidate, 'header' | 'hash' | 'txHashes' | 'evidence' | 'lastCommit'>

export class CandidateStore {
  private readonly byId = new Map<string, Candidate>()
  /** `height/round` → ids of the blocks stored for that slot. */
  private readonly slots = new Map<string, Set<string>>()

  constructor(private readonly perSlot = 2) {}

  get size(): number {
    return this.byId.size
  }

  get(valueId: Uint8Array): Candidate | undefined {
    return this.byId.get(bytesKey(valueId))
  }

  /**
   * Stores the parts of a block proposed for (height, round), or returns the candidate already stored under its
   * hash (a valid value re-proposed in a later round). Undefined when the slot already holds `perSlot` other blocks.
   */
  add(height: number, round: number, parts: CandidateParts | Candidate): Candidate | undefined {
    const id = bytesKey(parts.hash)
    const key = `${height}/${round}`
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = new Set()
      this.slots.set(key, slot)
    }
    if (!slot.has(id)) {
      if (slot.size >= this.perSlot) return undefined
      slot.add(id)
    }
    let c = this.byId.get(id)
    if (c === undefined) {
      c = { ...parts }
      this.byId.set(id, c)
    }
    return c
  }

  /**
   * Whether {@link add} would keep a block with this hash for (height, round): its slot holds it already or has room.
   * A proposal it would refuse is never kept, so admission refuses it before checking its signature.
   */
  hasRoom(height: number, round: number, valueId: Uint8Array): boolean {
    const slot = this.slots.get(`${height}/${round}`)
    return slot === undefined || slot.size < this.perSlot || slot.has(bytesKey(valueId))
  }

  /** Every candidate, in insertion order. */
  values(): IterableIterator<Candidate> {
    return this.byId.values()
  }

  /** Drops the candidates and slots of heights up to `height` (committed). */
  prune(height: number): void {
    for (const [id, c] of this.byId) if (c.header.height <= height) this.byId.delete(id)
    for (const key of this.slots.keys()) if (Number(key.slice(0, key.indexOf('/'))) <= height) this.slots.delete(key)
  }
}
