import { test } from 'node:test'
import assert from 'node:assert/strict'
import { VerifiedTxCache } from '../../../ledger/verifiedTxCache.js'

const h = (i: number) => new Uint8Array(32).fill(i)

test('the cache remembers hashes up to its bound, forgetting the oldest first', () => {
  const c = new VerifiedTxCache({ maxEntries: 3 })
  for (let i = 1; i <= 3; i++) c.add(h(i))
  c.add(h(2)) // re-adding does not grow or reorder
  assert.equal(c.size, 3)
  c.add(h(4))
  assert.equal(c.size, 3)
  assert.equal(c.has(h(1)), false)
  assert.ok(c.has(h(2)) && c.has(h(3)) && c.has(h(4)))
  c.delete(h(3))
  assert.equal(c.has(h(3)), false)
  assert.throws(() => new VerifiedTxCache({ maxEntries: 0 }), RangeError)
})
