import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'
import { MAX_COMMIT_BYTES, decodeCommitCertificate, encodeCommitCertificate, type CommitCertificate } from '../../consensus/index.js'
import { MAX_BLOCK_EVIDENCE, MAX_EVIDENCE_BYTES, MAX_HEADER_BYTES, decodeBlock, encodeBlock, type Block } from '../../ledger/block.js'
import { envelopeFail as fail, type EnvelopeResult } from './envelope.js'

/** A block as stored and served: the block and the certificate for height - 1 it carries. */
export interface StoredBlock {
  readonly block: Block
  readonly lastCommit: CommitCertificate | null
}

export function encodeStoredBlock(s: StoredBlock): Uint8Array {
  return encodeCanonical([encodeBlock(s.block), s.lastCommit === null ? null : encodeCommitCertificate(s.lastCommit)])
}

/** Upper bound on a stored block's encoding for blocks of at most `maxBytes` of transactions. */
export function maxStoredBlockBytes(limits: { readonly maxBytes: number }): number {
  return limits.maxBytes + MAX_COMMIT_BYTES + MAX_HEADER_BYTES + MAX_BLOCK_EVIDENCE * (MAX_EVIDENCE_BYTES + 3) + 1024
}

export function decodeStoredBlock(bytes: Uint8Array, limits: { maxBytes: number; maxTxs: number }): EnvelopeResult<StoredBlock> {
  const d = decodeCanonical(bytes, maxStoredBlockBytes(limits))
  if (!d.ok) return fail(d.error.reason)
  const v = d.value
  if (!Array.isArray(v) || v.length !== 2 || !(v[0] instanceof Uint8Array)) return fail('stored block shape')
  const block = decodeBlock(v[0], { maxBytes: maxStoredBlockBytes(limits), maxTxs: limits.maxTxs })
  if (!block.ok) return fail(`block: ${block.error.reason}`)
  let lastCommit: CommitCertificate | null = null
  if (v[1] !== null) {
    if (!(v[1] instanceof Uint8Array)) return fail('stored block last commit')
    const c = decodeCommitCertificate(v[1])
    if (!c.ok) return fail(`last commit: ${c.error.reason}`)
    lastCommit = c.value
  }
  return { ok: true, value: { block: block.value, lastCommit } }
}
