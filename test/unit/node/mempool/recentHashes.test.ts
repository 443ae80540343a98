import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toHex } from '../../../../crypto/index.js'
import { RecentHashes } from '../../../../node/mempool/recentHashes.js'
import { Rng } from '../../../helpers/random.js'

/** The set as it is specified: each hash keyed as it is recorded, in a Set, the first one recorded leaving first. */
class EagerModel {
  private readonly keys = new Set<string>()
  constructor(private readonly capacity: number) {}
  add(hash: Uint8Array): void {
    const key = toHex(hash)
    if (this.keys.has(key)) return
    this.keys.add(key)
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!)
  }
  has(hash: Uint8Array): boolean {
    return this.keys.has(toHex(hash))
  }
  get size(): number {
    return this.keys.size
  }
}

function hashOf(n: number, length = 32): Uint8Array {
  const h = new Uint8Array(length)
  new DataView(h.buffer).setUint32(0, n)
  h[length - 1] = 0xa5
  return h
}

describe('recent committed hashes', () => {
  it('holds the latest hashes up to its capacity, the first recorded leaving first', () => {
    const r = new RecentHashes(3)
    for (const n of [1, 2, 3]) r.add(hashOf(n))
    assert.equal(r.size, 3)
    assert.ok([1, 2, 3].every((n) => r.has(hashOf(n))))
    r.add(hashOf(4))
    assert.equal(r.has(hashOf(1)), false)
    assert.ok([2, 3, 4].every((n) => r.has(hashOf(n))))
    // a hash held already keeps its place: 2 is still the oldest and leaves next
    r.add(hashOf(2))
    r.add(hashOf(5))
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => r.has(hashOf(n))),
      [false, false, true, true, true],
    )
  })

  it('forgets hashes recorded far enough before a lookup, as if each had been keyed', () => {
    const r = new RecentHashes(4)
    for (let n = 0; n < 11; n++) r.add(hashOf(n))
    assert.equal(r.size, 4)
    assert.deepEqual(
      Array.from({ length: 11 }, (_, n) => r.has(hashOf(n))),
      Array.from({ length: 11 }, (_, n) => n >= 7),
    )
  })

  it('holds nothing with a capacity of zero', () => {
    const r = new RecentHashes(0)
    r.add(hashOf(1))
    assert.equal(r.has(hashOf(1)), false)
    assert.equal(r.size, 0)
  })

  it('holds 32-byte hashes only: recording another length is a caller bug, looking one up finds nothing', () => {
    const r = new RecentHashes(4)
    r.add(hashOf(1))
    assert.throws(() => r.add(hashOf(2, 20)), RangeError)
    assert.throws(() => r.add(new Uint8Array(33)), RangeError)
    assert.equal(r.has(hashOf(1, 20)), false)
    assert.equal(r.has(hashOf(1, 33)), false)
    assert.ok(r.has(hashOf(1)))
    assert.equal(r.size, 1)
  })

  it('answers every lookup as the eagerly keyed set does, whatever the mix of new hashes, repeats and lookups', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const rng = new Rng(seed)
      const capacity = seed > 6 ? 500 + rng.int(600) : 1 + rng.int(40)
      const r = new RecentHashes(capacity)
      const model = new EagerModel(capacity)
      // one hash in five shares its first eight bytes (its place in the index) with others: runs form, and forgetting
      // a hash in the middle of one must leave the rest of the run reachable
      const prefixes = [rng.bytes(8), rng.bytes(8), rng.bytes(8)]
      const fresh = () => {
        const h = rng.bytes(32)
        if (rng.int(5) === 0) h.set(rng.pick(prefixes))
        return h
      }
      const seen: Uint8Array[] = []
      const before = () => (seen.length > 0 ? seen[rng.int(seen.length)]! : fresh())
      for (let step = 0; step < (seed > 6 ? 30_000 : 3000); step++) {
        const roll = rng.int(10)
        if (roll < 6) {
          // mostly new hashes; now and then one recorded before, held or forgotten
          const h = rng.int(20) === 0 ? before() : fresh()
          r.add(h)
          model.add(h)
          seen.push(h)
        } else if (roll < 9) {
          const h = rng.int(4) === 0 ? fresh() : before()
          assert.equal(r.has(h), model.has(h), `seed ${seed}, step ${step}, hash ${toHex(h)}`)
        } else {
          assert.equal(r.size, model.size, `seed ${seed}, step ${step}`)
        }
      }
    }
  })

  it('takes memory as it holds hashes: many sets of a large capacity holding a few hashes each stay small', () => {
    const before = process.memoryUsage().arrayBuffers
    const sets = Array.from({ length: 100 }, (_, n) => {
      const r = new RecentHashes(200_000)
      for (let i = 0; i < 10; i++) r.add(hashOf(n * 10 + i))
      return r
    })
    const grown = process.memoryUsage().arrayBuffers - before
    // a full-size ring and index would be 8.4 MB each, 840 MB for the hundred
    assert.ok(grown < 20 * 1024 * 1024, `${grown} bytes of buffers for 100 sets of 10 hashes`)
    assert.ok(sets.every((r, n) => r.size === 10 && r.has(hashOf(n * 10 + 9))))
  })

  it('keeps no reference to the arrays it was given', () => {
    const r = new RecentHashes(8)
    const h = hashOf(7)
    r.add(h)
    h.fill(0)
    assert.ok(r.has(hashOf(7)))
  })
})
