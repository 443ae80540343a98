import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fromHex, toHex } from '../../../crypto/bytes.js'
import { decodeCanonical, encodeCanonical, signBytes } from '../../../crypto/canonical.js'

test('round trip of every canonical kind', () => {
  const v = [1, 'a', new Uint8Array([1, 2]), 5n, (1n << 64n) - 1n, true, false, null, [0, []]]
  const d = decodeCanonical(encodeCanonical(v), 1000)
  assert.ok(d.ok)
  assert.deepEqual(d.value, v)
})

test('numbers take their shortest form and bigints their 9-byte form', () => {
  assert.equal(toHex(encodeCanonical(5)), '05')
  assert.equal(toHex(encodeCanonical(300)), 'cd012c')
  assert.equal(toHex(encodeCanonical(5n)), 'd30000000000000005')
  assert.equal(toHex(encodeCanonical(1n << 63n)), 'cf8000000000000000')
})

test('the encoder refuses values outside the subset', () => {
  assert.throws(() => encodeCanonical(1.5), TypeError)
  assert.throws(() => encodeCanonical(2 ** 32), TypeError, 'beyond 32 bits a number would be written as a float64')
  assert.throws(() => encodeCanonical(-(2 ** 31) - 1), TypeError)
  assert.equal(toHex(encodeCanonical(2 ** 32 - 1)), 'ceffffffff')
  assert.equal(toHex(encodeCanonical(-1)), 'ff')
  assert.throws(() => encodeCanonical(-1n), TypeError)
  assert.throws(() => encodeCanonical(1n << 64n), TypeError)
  assert.throws(() => encodeCanonical({ a: 1 } as never), TypeError)
})

test('the decoder rejects non-canonical, trailing, oversized, float and map input', () => {
  const cases: [string, string][] = [
    ['cd0005', 'number in a longer form'],
    ['cf0000000000000005', 'uint64 form of a small bigint'],
    ['0500', 'trailing byte'],
    ['cb3ff8000000000000', 'float'],
    ['cb4270000000000000', 'an integer written as a float64'],
    ['81a16101', 'map'],
    ['', 'empty'],
    ['c1', 'reserved byte'],
    ['dd7fffffff', 'huge array header'],
    ['d9016161', 'str8 for a short string'],
  ]
  for (const [h, why] of cases) {
    const r = decodeCanonical(fromHex(h)!, 100)
    assert.equal(r.ok, false, why)
  }
  assert.equal(decodeCanonical(new Uint8Array(101), 100).ok, false)
})

test('sign bytes put the domain tag and chain id first', () => {
  const b = signBytes('tally/x/v1', 'chain', [1])
  const d = decodeCanonical(b, 100)
  assert.ok(d.ok)
  assert.deepEqual(d.value, ['tally/x/v1', 'chain', 1])
})
