import { bytesEqual } from '../crypto/bytes.js'
import { decodeCanonical, encodeCanonical } from '../crypto/canonical.js'
import { HASH_LENGTH, sha256 } from '../crypto/hash.js'
import { err, ok, type Result } from '../crypto/result.js'
import { MAX_BLOCK_TXS, txLeafLevel, txParentLevel } from './block.js'
import type { ProofError } from './proofError.js'

/**
 * Inclusion proofs of a transaction in a block: the RFC 6962 audit path of its hash in the block's transaction tree
 * ({@link txRoot} in ledger/block.ts), checkable against the header's `txRoot` alone.
 *
 * Bytes: `canonical([index, count, [sibling, ...]])`, the siblings from the leaf's level up. The verifier recomputes
 * the root from the hash, its index, the number of transactions and the siblings (RFC 6962 §2.1.1; RFC 9162 §2.1.3.2).
 * A proof that verifies binds the transaction to its index under the root; the count only shapes the path (counts that
 * give the same path verify alike), so it is informative, not proven.
 */

/** Most siblings a proof can need (a tree of at most MAX_BLOCK_TXS leaves). */
const MAX_SIBLINGS = 32

const LEAF = new Uint8Array([0x00])
const INNER = new Uint8Array([0x01])

/**
 * A block's transaction tree ({@link txRoot}) with every level kept, each level's hashes side by side in one array (a
 * node with no right neighbour carried up unchanged, which builds the tree RFC 6962 splits recursively): the audit
 * path of any transaction then takes no hashing. About 2 × 32 bytes per transaction.
 */
export class TxTree {
  private constructor(
    /** The number of transactions (leaves). */
    readonly count: number,
    private readonly levels: readonly Uint8Array[],
  ) {}

  /** The tree of a block's transaction hashes (32 bytes each, in block order; at least one). */
  static of(hashes: readonly Uint8Array[]): TxTree {
    if (hashes.length === 0) throw new RangeError('a transaction tree has at least one transaction')
    for (const h of hashes) if (h.byteLength !== HASH_LENGTH) throw new RangeError('transaction hashes are 32 bytes')
    const levels = [txLeafLevel(hashes)]
    for (let count = hashes.length; count > 1; ) {
      const above = new Uint8Array(((count >> 1) + (count % 2)) * HASH_LENGTH)
      count = txParentLevel(levels[levels.length - 1]!, count, above)
      levels.push(above)
    }
    return new TxTree(hashes.length, levels)
  }

  /** Bytes the levels take. */
  get bytes(): number {
    let n = 0
    for (const l of this.levels) n += l.byteLength
    return n
  }

  /** The audit path of the transaction at `index`: {@link verifyTxInclusion} checks it against the root. */
  proof(index: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.count) throw new RangeError(`index ${index} is not a transaction of the block`)
    const path: Uint8Array[] = []
    let at = index
    for (let k = 0; k < this.levels.length - 1; k++) {
      const neighbour = at ^ 1
      if (neighbour * HASH_LENGTH < this.levels[k]!.byteLength) path.push(this.levels[k]!.slice(neighbour * HASH_LENGTH, (neighbour + 1) * HASH_LENGTH))
      at >>= 1
    }
    return encodeCanonical([index, this.count, path])
  }
}

/** The audit path of the transaction at `index` among `hashes` (the block's transaction hashes, in order). */
export function txInclusionProof(hashes: readonly Uint8Array[], index: number): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0 || index >= hashes.length) throw new RangeError(`index ${index} is not a transaction of the block`)
  return TxTree.of(hashes).proof(index)
}

/** Why a proof does not prove the inclusion. */
export type TxProofError = ProofError

/**
 * Verifies that `hash` is the transaction at the proof's index of a block whose transaction root is `root`; returns
 * the index and the block's transaction count. Pure; never throws on any input.
 */
export function verifyTxInclusion(root: Uint8Array, hash: Uint8Array, proof: Uint8Array): Result<{ index: number; count: number }, TxProofError> {
  const fail = (code: TxProofError['code'], reason: string) => err<TxProofError>({ code, reason })
  if (!(root instanceof Uint8Array) || root.byteLength !== HASH_LENGTH || !(hash instanceof Uint8Array) || hash.byteLength !== HASH_LENGTH) {
    return fail('malformed', 'root and hash must be 32 bytes')
  }
  if (!(proof instanceof Uint8Array)) return fail('malformed', 'proof must be bytes')
  const d = decodeCanonical(proof, 16 + MAX_SIBLINGS * (HASH_LENGTH + 2))
  if (!d.ok) return fail('malformed', d.error.reason)
  if (!Array.isArray(d.value) || d.value.length !== 3) return fail('malformed', 'a proof is [index, count, siblings]')
  const [index, count, siblings] = d.value as unknown[]
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > MAX_BLOCK_TXS) return fail('malformed', 'count')
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0 || index >= count) return fail('malformed', 'index')
  if (!Array.isArray(siblings) || siblings.length > MAX_SIBLINGS) return fail('malformed', 'siblings')
  for (const s of siblings) if (!(s instanceof Uint8Array) || s.byteLength !== HASH_LENGTH) return fail('malformed', 'sibling')
  // RFC 9162 §2.1.3.2: walk up from the leaf; `fn` is the node's index, `sn` the last index of its level.
  let fn = index
  let sn = count - 1
  let r = sha256(LEAF, hash)
  for (const s of siblings as Uint8Array[]) {
    if (sn === 0) return fail('malformed', 'more siblings than levels')
    if (fn % 2 === 1 || fn === sn) {
      r = sha256(INNER, s, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn >>= 1
          sn >>= 1
        }
      }
    } else {
      r = sha256(INNER, r, s)
    }
    fn >>= 1
    sn >>= 1
  }
  if (sn !== 0) return fail('malformed', 'fewer siblings than levels')
  if (!bytesEqual(r, root)) return fail('root_mismatch', 'the proof leads to another root')
  return ok({ index, count })
}
