import { HASH_LENGTH } from '../../crypto/hash.js'

/**
 * The hashes of the latest committed transactions, at most `capacity` of them, the oldest forgotten first: the mempool
 * refuses a replay of one as a duplicate before checking its signature.
 *
 * A hash already held keeps its place, and past `capacity` the one held longest leaves. The hashes live in one ring
 * of 32-byte slots, found through an open-addressing index (linear probing, at most half full) of slot numbers: no
 * object or string per hash, so the default 200,000 cost the collector nothing, and once the ring is grown recording one
 * allocates nothing.
 * The index position mixes a hash's first eight bytes; a transaction hash is SHA-256 of its bytes, so a sender who
 * grinds hashes into one run of the index pays a committed transaction for each, and only lookups that land in that
 * run probe it. The ring and the index grow by doubling up to `capacity` (at most 48 bytes a hash, the index's 4 bytes
 * a position included; 8.5 MB for 200,000): a pool that commits little, as in tests and simulations, holds little.
 */
export class RecentHashes {
  /** Slot i holds a hash at 32 × i; slots 0…count−1 are in use. */
  private ring: Uint8Array | undefined
  /** Slot number + 1 at each position, 0 where empty; at least twice as many positions as the ring has slots. */
  private index: Int32Array | undefined
  /** log2 of the index's length. */
  private bits = 0
  private count = 0
  /** Once the ring is full, the slot of the hash held longest: the next to be replaced. */
  private oldest = 0

  constructor(private readonly capacity: number) {}

  /** Number of hashes held. */
  get size(): number {
    return this.count
  }

  /** Records a committed hash (after those recorded before it). Hashes are 32 bytes. */
  add(hash: Uint8Array): void {
    if (hash.byteLength !== HASH_LENGTH) throw new RangeError(`RecentHashes: a hash is ${HASH_LENGTH} bytes, not ${hash.byteLength}`)
    if (this.capacity < 1 || this.find(hash, 0) >= 0) return
    if (this.count < this.capacity && this.count === (this.ring?.byteLength ?? 0) / HASH_LENGTH) this.grow()
    const ring = this.ring!
    let slot: number
    if (this.count < this.capacity) slot = this.count++
    else {
      slot = this.oldest
      this.oldest = slot + 1 === this.capacity ? 0 : slot + 1
      this.remove(this.find(ring, slot * HASH_LENGTH))
    }
    ring.set(hash, slot * HASH_LENGTH)
    this.place(slot)
  }

  /**
   * Doubles the ring (up to `capacity` slots) and rebuilds the index for it. Only while the ring is filling: its slots
   * 0…count−1 hold the hashes oldest first, so they are copied as they are.
   */
  private grow(): void {
    const slots = Math.min(this.capacity, Math.max(64, 2 * this.count))
    const ring = new Uint8Array(slots * HASH_LENGTH)
    if (this.ring !== undefined) ring.set(this.ring)
    this.ring = ring
    this.bits = Math.max(1, Math.ceil(Math.log2(2 * slots)))
    this.index = new Int32Array(2 ** this.bits)
    for (let slot = 0; slot < this.count; slot++) this.place(slot)
  }

  /** Indexes the hash in `slot`. */
  private place(slot: number): void {
    const index = this.index!
    const mask = index.length - 1
    let i = this.home(this.ring!, slot * HASH_LENGTH)
    while (index[i] !== 0) i = (i + 1) & mask
    index[i] = slot + 1
  }

  /** True when the hash is held. */
  has(hash: Uint8Array): boolean {
    return hash.byteLength === HASH_LENGTH && this.find(hash, 0) >= 0
  }

  /** The index position of the 32-byte hash at `at` of `b` when nothing is in the way: a mix of its first eight bytes. */
  private home(b: Uint8Array, at: number): number {
    const lo = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)
    const hi = b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)
    return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> (32 - this.bits)
  }

  /** The index position holding the 32-byte hash at `at` of `b`, or -1. */
  private find(b: Uint8Array, at: number): number {
    const ring = this.ring
    const index = this.index
    if (ring === undefined || index === undefined) return -1
    const mask = index.length - 1
    for (let i = this.home(b, at); ; i = (i + 1) & mask) {
      const e = index[i]!
      if (e === 0) return -1
      const held = (e - 1) * HASH_LENGTH
      let k = 0
      while (k < HASH_LENGTH && ring[held + k] === b[at + k]) k++
      if (k === HASH_LENGTH) return i
    }
  }

  /** Empties index position `i`, moving back the entries after it that probing would no longer reach. */
  private remove(i: number): void {
    if (i < 0) return // every slot in use is indexed once: not reached
    const index = this.index!
    const ring = this.ring!
    const mask = index.length - 1
    let hole = i
    for (let j = (i + 1) & mask; index[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(ring, (index[j]! - 1) * HASH_LENGTH)
      // the entry at j stays where it is if its home lies cyclically in (hole, j]
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j
      if (stays) continue
      index[hole] = index[j]!
      hole = j
    }
    index[hole] = 0
  }
}
