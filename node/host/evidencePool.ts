import { bytesKey, toHex } from '../../crypto/bytes.js'
import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'
import { sha256 } from '../../crypto/hash.js'
import { decodeSignedProposal, decodeSignedVote, encodeSignedProposal, encodeSignedVote, type Evidence } from '../../consensus/index.js'
import type { KvStore } from '../../ledger/store.js'
import type { DomainValue } from '../../rpc/backend.js'
import type { Logger } from '../logger.js'
import type { ChainStore } from '../storage/chainStore.js'

/**
 * Equivocation evidence this node observed (conflicting votes or proposals signed by one validator), kept in the
 * chain database, newest last, deduplicated by the hash of its encoding and bounded to `maxRecords`.
 * Record bytes: canonical `[1, signedVote, signedVote]` or `[2, signedProposal, signedProposal]`.
 */

/** Most evidence records kept (the oldest leave first). */
export const MAX_EVIDENCE = 1000

export interface EvidencePoolDependencies {
  readonly chain: ChainStore
  readonly kv: KvStore
  readonly logger: Logger
}

/** Encodes an evidence record. */
export function encodeEvidence(e: Evidence): Uint8Array {
  return e.kind === 'conflictingVotes'
    ? encodeCanonical([1, encodeSignedVote(e.first), encodeSignedVote(e.second)])
    : encodeCanonical([2, encodeSignedProposal(e.first), encodeSignedProposal(e.second)])
}

/** Decodes a stored evidence record; undefined when it is not one. */
export function decodeEvidence(bytes: Uint8Array): Evidence | undefined {
  const e = decodeCanonical(bytes, 4096)
  if (!e.ok || !Array.isArray(e.value) || e.value.length !== 3) return undefined
  const [kind, x, y] = e.value as [unknown, unknown, unknown]
  if (!(x instanceof Uint8Array) || !(y instanceof Uint8Array)) return undefined
  if (kind === 1) {
    const first = decodeSignedVote(x), second = decodeSignedVote(y)
    return first.ok && second.ok ? { kind: 'conflictingVotes', first: first.value, second: second.value } : undefined
  }
  if (kind === 2) {
    const first = decodeSignedProposal(x), second = decodeSignedProposal(y)
    return first.ok && second.ok ? { kind: 'conflictingProposals', first: first.value, second: second.value } : undefined
  }
  return undefined
}

/** How RPC shows an evidence record. */
export function evidenceView(e: Evidence): DomainValue {
  const signer = e.kind === 'conflictingVotes' ? e.first.validator : e.first.proposer
  const type = e.kind === 'conflictingVotes' ? e.first.type : 'proposal'
  return {
    kind: e.kind, validator: signer, height: e.first.height, round: e.first.round, type,
    first: { valueId: e.first.valueId, signature: e.first.signature }, second: { valueId: e.second.valueId, signature: e.second.signature },
  }
}

/** The node's evidence records. */
export class EvidencePool {
  private records: { readonly id: string; readonly bytes: Uint8Array; readonly view: DomainValue }[] = []

  private constructor(private readonly d: EvidencePoolDependencies) {}

  /** Loads the stored records; a record that does not decode means the database is corrupt (throws). */
  static async load(d: EvidencePoolDependencies): Promise<EvidencePool> {
    const pool = new EvidencePool(d)
    for (const bytes of await d.chain.loadEvidence()) {
      const e = decodeEvidence(bytes)
      if (e === undefined) throw new Error('stored evidence is corrupt')
      pool.records.push({ id: bytesKey(sha256(bytes)), bytes, view: evidenceView(e) })
    }
    return pool
  }

  /** The records as RPC shows them, oldest first. */
  views(): DomainValue[] {
    return this.records.map((r) => r.view)
  }

  /** Records new evidence (a duplicate is ignored) and saves the list. */
  async add(e: Evidence): Promise<void> {
    const bytes = encodeEvidence(e)
    const id = bytesKey(sha256(bytes))
    if (this.records.some((r) => r.id === id)) return
    const signer = e.kind === 'conflictingVotes' ? e.first.validator : e.first.proposer
    this.d.logger.warn({ kind: e.kind, validator: toHex(signer), height: e.first.height, round: e.first.round }, 'equivocation evidence')
    this.records.push({ id, bytes, view: evidenceView(e) })
    if (this.records.length > MAX_EVIDENCE) this.records.shift()
    await this.d.kv.write([this.d.chain.evidenceOp(this.records.map((r) => r.bytes))])
  }
}
