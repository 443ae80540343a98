import { bytesKey } from '../../crypto/bytes.js'
import { HASH_LENGTH } from '../../crypto/hash.js'

/**
 * The hashes of the latest committed transactions, at most `capacity` of them, the oldest forgotten first: the mempool
 * refuses a replay of one as a duplicate before checking its signature.
 *
 * A lookup answers as if every hash had been recorded one by one in commit order: a hash already held keeps its
 * place, and past `capacity` the one held longest leaves. Recording a hash only copies its bytes, though; they are
 * keyed when the set is next looked up. So a node that commits many blocks while admitting nothing (catching up)
 * makes no key and keeps no object per transaction, and never keys the hashes it would have forgotten before a
 * lookup (a committed hash is never committed again, so `capacity` hashes recorded after one push it out).
 * Forgetting is O(1): the keys wait in a ring in the order they came (a Set's own first entry is found by skipping
 * the entries deleted since it last rehashed, a cost that grows with every deletion).
 */
export class RecentHashes {
  private readonly keys = new Set<string>()
  /** The keys held, in the order they were recorded, the oldest at `head` once the ring is full. */
  private readonly ring: string[] = []
  private head = 0
  /** Hashes recorded and not keyed yet: `pendingCount` of them, from slot `pendingStart` of a ring of `capacity` slots. */
  private pending: Buffer | undefined
  private pendingStart = 0
  private pendingCount = 0

  constructor(private readonly capacity: number) {}

  /** Number of hashes held. */
  get size(): number {
    this.settle()
    return this.keys.size
  }

  /** Records a committed hash (after those recorded before it). */
  add(hash: Uint8Array): void {
    if (this.capacity < 1) return
    if (hash.byteLength !== HASH_LENGTH) {
      this.settle()
      this.remember(bytesKey(hash))
      return
    }
    this.pending ??= Buffer.allocUnsafe(this.capacity * HASH_LENGTH)
    let slot = this.pendingStart + this.pendingCount
    if (slot >= this.capacity) slot -= this.capacity
    if (this.pendingCount < this.capacity) this.pendingCount++
    // the ring is full of hashes that came after the oldest one: that one would leave before any lookup
    else this.pendingStart = slot + 1 === this.capacity ? 0 : slot + 1
    this.pending.set(hash, slot * HASH_LENGTH)
  }

  /** True when the hash is held. */
  has(hash: Uint8Array): boolean {
    this.settle()
    return this.keys.has(bytesKey(hash))
  }

  /** Keys the hashes recorded since the last lookup, in order. */
  private settle(): void {
    const pending = this.pending
    if (pending === undefined || this.pendingCount === 0) return
    let slot = this.pendingStart
    for (let i = 0; i < this.pendingCount; i++) {
      const at = slot * HASH_LENGTH
      // a latin1 string, one character per byte: the key bytesKey gives
      this.remember(pending.toString('latin1', at, at + HASH_LENGTH))
      slot = slot + 1 === this.capacity ? 0 : slot + 1
    }
    this.pendingStart = 0
    this.pendingCount = 0
  }

  private remember(key: string): void {
    if (this.keys.has(key)) return
    this.keys.add(key)
    if (this.ring.length < this.capacity) {
      this.ring.push(key)
      return
    }
    this.keys.delete(this.ring[this.head]!)
    this.ring[this.head] = key
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1
  }
}
