import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesKey, toHex } from '../../../crypto/bytes.js'
import { Rng } from '../../helpers/random.js'

test('bytesKey is one character per byte, for every byte value and length, and never equal for different bytes', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i)
  for (const len of [0, 1, 20, 31, 32, 33, 64, 256]) {
    const b = all.subarray(256 - len)
    const k = bytesKey(b)
    assert.equal(k.length, len)
    assert.deepEqual(
      [...k].map((c) => c.charCodeAt(0)),
      [...b],
    )
  }
  // a view into a larger buffer is keyed by its own bytes only
  const big = Uint8Array.from({ length: 100 }, (_, i) => i)
  assert.equal(bytesKey(big.subarray(10, 42)), bytesKey(Uint8Array.from({ length: 32 }, (_, i) => i + 10)))
  // distinct inputs give distinct keys exactly when their hex differs
  const rng = new Rng(7)
  const seen = new Map<string, string>()
  for (let i = 0; i < 5000; i++) {
    const b = rng.bytes(i % 3 === 0 ? 20 : 32)
    if (i % 50 === 0) b.fill(i % 256)
    const k = bytesKey(b)
    const h = toHex(b)
    const prev = seen.get(k)
    assert.ok(prev === undefined || prev === h)
    seen.set(k, h)
  }
  assert.equal(new Set(seen.values()).size, seen.size)
})
