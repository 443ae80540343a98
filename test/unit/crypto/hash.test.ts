import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/bytes.js'
import { HASH_LENGTH, sha256, sha256Into } from '../../../crypto/hash.js'

const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' // FIPS 180-2, "abc"
const bytes = (s: string) => new TextEncoder().encode(s)

test('sha256 matches the FIPS 180-2 vector, whole or in parts', () => {
  assert.equal(toHex(sha256(bytes('abc'))), ABC)
  assert.equal(toHex(sha256(bytes('a'), bytes('bc'))), ABC)
  assert.equal(toHex(sha256(new Uint8Array(0), bytes('abc'), new Uint8Array(0))), ABC)
})

test('sha256 returns a plain 32-byte array that owns its memory', () => {
  for (const d of [sha256(bytes('abc')), sha256(bytes('a'), bytes('bc'))]) {
    assert.equal(Buffer.isBuffer(d), false)
    assert.equal(d.byteLength, HASH_LENGTH)
    assert.equal(d.byteOffset, 0)
    assert.equal(d.buffer.byteLength, HASH_LENGTH)
  }
  const a = sha256(bytes('x'))
  const b = sha256(bytes('y'))
  a.fill(0)
  assert.notEqual(toHex(b), toHex(a))
  assert.equal(toHex(sha256(bytes('abc'))), ABC)
})

test('sha256 agrees with node:crypto digests byte for byte, every byte value included', async () => {
  const { createHash } = await import('node:crypto')
  const seen = new Set<number>()
  for (let i = 0; i < 4000; i++) {
    const input = new Uint8Array(i % 200)
    for (let j = 0; j < input.length; j++) input[j] = (i * 31 + j * 7) & 0xff
    const want = new Uint8Array(createHash('sha256').update(input).digest())
    assert.deepEqual(sha256(input), want)
    assert.deepEqual(sha256(input.subarray(0, input.length >> 1), input.subarray(input.length >> 1)), want)
    for (const b of want) seen.add(b)
  }
  assert.equal(seen.size, 256)
})

test('sha256 of several parts agrees with node:crypto below, at and above the size they are copied together up to', async () => {
  const { createHash } = await import('node:crypto')
  for (const total of [0, 1, 33, 65, 255, 256, 257, 300, 4096]) {
    const input = new Uint8Array(total)
    for (let j = 0; j < total; j++) input[j] = (total * 13 + j * 29) & 0xff
    const want = new Uint8Array(createHash('sha256').update(input).digest())
    for (const cuts of [[0], [1], [total >> 1], [1, total >> 1, total - 1], [0, 0, total]]) {
      const parts: Uint8Array[] = []
      let from = 0
      for (const c of cuts) {
        const at = Math.max(from, Math.min(total, c))
        parts.push(input.subarray(from, at))
        from = at
      }
      parts.push(input.subarray(from))
      assert.deepEqual(sha256(...parts), want, `${total} bytes cut at ${cuts.join(',')}`)
    }
  }
  // one digest is not disturbed by the next
  const first = sha256(bytes('a'), bytes('bc'))
  sha256(bytes('xy'), bytes('z'))
  assert.equal(toHex(first), ABC)
})

test('sha256Into writes the digest at an offset and nothing else', () => {
  const out = new Uint8Array(80).fill(0xee)
  sha256Into(out, 7, bytes('abc'))
  assert.equal(toHex(out.subarray(7, 7 + HASH_LENGTH)), ABC)
  assert.ok(out.subarray(0, 7).every((b) => b === 0xee))
  assert.ok(out.subarray(7 + HASH_LENGTH).every((b) => b === 0xee))
  // the input may be a view of the output array itself
  const both = new Uint8Array(64)
  both.set(bytes('abc'), 40)
  sha256Into(both, 0, both.subarray(40, 43))
  assert.equal(toHex(both.subarray(0, HASH_LENGTH)), ABC)
})
