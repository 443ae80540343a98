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
    r.add(hashOf(2, 20))
    assert.equal(r.has(hashOf(1)), false)
    assert.equal(r.has(hashOf(2, 20)), false)
    assert.equal(r.size, 0)
  })

  it('answers every lookup as the eagerly keyed set does, whatever the mix of new hashes and lookups', () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rng = new Rng(seed)
      const capacity = 1 + rng.int(40)
      const r = new RecentHashes(capacity)
      const model = new EagerModel(capacity)
      let next = 0
      for (let step = 0; step < 3000; step++) {
        const roll = rng.int(10)
        if (roll < 6) {
          // a chain commits a transaction once: each hash recorded is new (a few of another length)
          const h = hashOf(next++, rng.int(30) === 0 ? 20 : 32)
          r.add(h)
          model.add(h)
        } else if (roll < 9) {
          const h = hashOf(rng.int(next + 1), rng.int(30) === 0 ? 20 : 32)
          assert.equal(r.has(h), model.has(h), `seed ${seed}, step ${step}, hash ${toHex(h)}`)
        } else {
          assert.equal(r.size, model.size, `seed ${seed}, step ${step}`)
        }
      }
    }
  })

  it('keeps no reference to the arrays it was given', () => {
    const r = new RecentHashes(8)
    const h = hashOf(7)
    r.add(h)
    h.fill(0)
    assert.ok(r.has(hashOf(7)))
  })
})
