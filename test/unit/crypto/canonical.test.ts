import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fromHex, toHex } from '../../../crypto/bytes.js'
import { type Canonical, decodeCanonical, encodeCanonical, signBytes } from '../../../crypto/canonical.js'
import { Rng } from '../../helpers/random.js'

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

test('a header claiming more items or bytes than the input holds is refused before anything is decoded', () => {
  // msgpackr allocates an array of the count a header claims before reading its items: 2^25 - 1 of them from 5 bytes
  const cases: [string, RegExp][] = [
    ['dd01ffffff', /an array of 33554431 items in 0 bytes/],
    ['9191dd01ffffff', /an array of 33554431 items in 0 bytes/],
    ['dc0100c0', /an array of 256 items in 1 bytes/],
    ['92dd00100000c0c0', /an array of 1048576 items in 2 bytes/],
    ['c6ffffffff00', /a value of 4294967295 bytes in 1/],
    ['db00100000', /a value of 1048576 bytes in 0/],
    ['dd00', /input ends inside a header/],
    ['9292c0c0', /input ends inside a value/],
    ['81a16101', /type 0x81 is not in the canonical subset/],
    ['cb3ff8000000000000', /type 0xcb is not in the canonical subset/],
    ['d6ff00000000', /type 0xd6 is not in the canonical subset/],
    ['910000', /bytes after the value/],
  ]
  for (const [h, reason] of cases) {
    const r = decodeCanonical(fromHex(h)!, 1 << 20)
    assert.equal(r.ok, false, h)
    if (!r.ok) assert.match(r.error.reason, reason, h)
  }
  // nesting: items at depth 16 are canonical, at 17 not; an empty array at depth 16 holds no item deeper
  const nest = (depth: number, inner: Canonical): Canonical => (depth === 0 ? inner : [nest(depth - 1, inner)])
  assert.ok(decodeCanonical(encodeCanonical(nest(16, 1)), 100).ok)
  assert.ok(decodeCanonical(encodeCanonical(nest(16, [])), 100).ok)
  const deep = decodeCanonical(fromHex(`${'91'.repeat(17)}01`)!, 100)
  assert.equal(deep.ok, false)
  if (!deep.ok) assert.match(deep.error.reason, /nesting deeper than 16/)
})

test('every canonical encoding decodes: random values of every kind and length form, nested', () => {
  const rng = new Rng(0xca70)
  const lengths = [0, 1, 31, 32, 255, 256, 65_535, 65_536]
  const numbers = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31)]
  const value = (depth: number): Canonical => {
    switch (rng.int(depth >= 16 ? 6 : 8)) {
      case 0:
        return rng.pick([null, true, false])
      case 1:
        return rng.pick(numbers)
      case 2:
        return rng.pick([0n, 1n, 2n ** 63n, 2n ** 64n - 1n])
      case 3:
        return 'x'.repeat(rng.chance(0.9) ? rng.int(40) : rng.pick(lengths))
      case 4:
      case 5:
        return rng.bytes(rng.chance(0.9) ? rng.int(40) : rng.pick(lengths))
      default: {
        const n = rng.chance(0.95) ? rng.int(5) : rng.pick([15, 16, 17])
        const out: Canonical[] = []
        for (let i = 0; i < n; i++) out.push(value(depth + 1))
        return out
      }
    }
  }
  for (let k = 0; k < 300; k++) {
    const v = value(0)
    const bytes = encodeCanonical(v)
    const r = decodeCanonical(bytes, bytes.byteLength)
    assert.ok(r.ok, `value ${k}: ${r.ok ? '' : r.error.reason}`)
    assert.equal(toHex(encodeCanonical(r.value as Canonical)), toHex(bytes), `value ${k}`)
  }
})

test('sign bytes put the domain tag and chain id first', () => {
  const b = signBytes('tally/x/v1', 'chain', [1])
  const d = decodeCanonical(b, 100)
  assert.ok(d.ok)
  assert.deepEqual(d.value, ['tally/x/v1', 'chain', 1])
})
