import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesEqual, bytesKey, toHex } from '../../../crypto/bytes.js'
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

test('bytesEqual is true exactly for the same bytes, at every length, for views and Buffers alike', () => {
  const rng = new Rng(9)
  for (const len of [0, 1, 20, 32, 47, 48, 49, 64, 300, 5000]) {
    const a = rng.bytes(len)
    // the same bytes at an offset of a larger array, and as a Buffer
    const host = new Uint8Array(len + 7)
    host.set(a, 3)
    const view = host.subarray(3, 3 + len)
    assert.equal(bytesEqual(a, view), true, `${len}`)
    assert.equal(bytesEqual(view, Buffer.from(a)), true, `${len}`)
    assert.equal(bytesEqual(a, a), true)
    // one byte changed anywhere, or one byte more or less
    for (const at of len === 0 ? [] : [0, len >> 1, len - 1]) {
      const b = new Uint8Array(a)
      b[at]! ^= 0x80
      assert.equal(bytesEqual(a, b), false, `${len} at ${at}`)
      assert.equal(bytesEqual(b, a), false, `${len} at ${at}`)
    }
    assert.equal(bytesEqual(a, host.subarray(3, 4 + len)), false)
    if (len > 0) assert.equal(bytesEqual(a, a.subarray(0, len - 1)), false)
  }
})
