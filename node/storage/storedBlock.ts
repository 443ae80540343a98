import { encodeCanonical } from '../../crypto/canonical.js'
import { MAX_COMMIT_BYTES, decodeCommitCertificate, encodeCommitCertificate, type CommitCertificate } from '../../consensus/index.js'
import { MAX_BLOCK_EVIDENCE, MAX_EVIDENCE_BYTES, MAX_HEADER_BYTES, decodeBlock, encodeBlock, type Block } from '../../ledger/block.js'
import { decodeByteStrings } from './byteStrings.js'
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

/**
 * Decodes a stored block strictly: the canonical `[block, lastCommit | nil]` (its envelope read in one pass over its
 * headers, node/storage/byteStrings.ts), the block and the certificate each by their own strict decoder. So the bytes
 * accepted are exactly `encodeStoredBlock` of the value returned, and may be stored or served as they are.
 */
export function decodeStoredBlock(bytes: Uint8Array, limits: { maxBytes: number; maxTxs: number }): EnvelopeResult<StoredBlock> {
  const d = decodeByteStrings(bytes, { maxItems: 2, maxBytes: maxStoredBlockBytes(limits) })
  if (!d.ok) return fail(d.error.reason)
  const [blockBytes, commitBytes] = d.value
  if (d.value.length !== 2 || blockBytes === undefined || blockBytes === null || commitBytes === undefined) return fail('stored block shape')
  const block = decodeBlock(blockBytes, { maxBytes: maxStoredBlockBytes(limits), maxTxs: limits.maxTxs })
  if (!block.ok) return fail(`block: ${block.error.reason}`)
  let lastCommit: CommitCertificate | null = null
  if (commitBytes !== null) {
    const c = decodeCommitCertificate(commitBytes)
    if (!c.ok) return fail(`last commit: ${c.error.reason}`)
    lastCommit = c.value
  }
  return { ok: true, value: { block: block.value, lastCommit } }
}
