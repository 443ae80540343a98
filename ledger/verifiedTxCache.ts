import { bytesKey } from '../crypto/bytes.js'

/**
 * A bounded set of transaction hashes whose signatures this node has already verified, so a signature is checked
 * once per node: the mempool adds a hash after admitting a transaction, and execution skips the check for hashes
 * in the set. Sound because a transaction hash is SHA-256 of the whole wire bytes, signature and signed fields
 * included. Past `maxEntries` the oldest hash is forgotten (its signature would simply be checked again). The
 * mempool deletes a transaction's hash once it is committed, so the set holds about what is pending.
 */
export class VerifiedTxCache {
  private readonly set = new Set<string>()
  private readonly maxEntries: number

  constructor(options: { maxEntries?: number } = {}) {
    this.maxEntries = options.maxEntries ?? 200_000
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError('VerifiedTxCache: maxEntries must be a positive integer')
  }

  /** Number of hashes held. */
  get size(): number {
    return this.set.size
  }

  /** Records that the signature of the transaction with this hash verified. */
  add(hash: Uint8Array): void {
    const id = bytesKey(hash)
    if (this.set.has(id)) return
    if (this.set.size >= this.maxEntries) this.set.delete(this.set.values().next().value!)
    this.set.add(id)
  }

  /** True when the signature of the transaction with this hash has been verified by this node. */
  has(hash: Uint8Array): boolean {
    return this.set.has(bytesKey(hash))
  }

  /** Forgets a hash (e.g. once its transaction is committed and can never be executed again). */
  delete(hash: Uint8Array): void {
    this.set.delete(bytesKey(hash))
  }
}
