import { bytesKey } from '../../crypto/bytes.js'

/**
 * Transactions that left the mempool without being committed, with why, so `tx_get` can answer `rejected` with the
 * reason instead of `unknown`. Bounded: the oldest entries leave first.
 */
export class RejectedTxs {
  private readonly byHash = new Map<string, { readonly error: string; readonly reason: string }>()

  constructor(private readonly capacity = 100_000) {}

  add(hash: Uint8Array, error: string, reason: string): void {
    const key = bytesKey(hash)
    this.byHash.delete(key)
    if (this.byHash.size >= this.capacity) this.byHash.delete(this.byHash.keys().next().value!)
    this.byHash.set(key, { error, reason })
  }

  get(hash: Uint8Array): { readonly error: string; readonly reason: string } | undefined {
    return this.byHash.get(bytesKey(hash))
  }
}
