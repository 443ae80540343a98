import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/bytes.js'
import { HASH_LENGTH, sha256 } from '../../../crypto/hash.js'

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
