import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ed25519 } from '@noble/curves/ed25519.js'
import { fromHex, toHex } from '../../../crypto/bytes.js'
import {
  isAcceptablePublicKey,
  keyPairFromSeed,
  passesKeyScreen,
  rememberValid,
  sign,
  verify,
  verifyPureJs,
  verifyRemembered,
} from '../../../crypto/ed25519.js'
import { loadFixture } from '../../helpers/fixtures.js'
import { Rng } from '../../helpers/random.js'

interface WycheproofCase {
  tcId: number
  comment: string
  msg: string
  sig: string
  result: 'valid' | 'invalid'
}
interface Wycheproof {
  testGroups: { publicKey: { pk: string }; tests: WycheproofCase[] }[]
}
interface SpeccheckCase {
  message: string
  pub_key: string
  signature: string
}

const hex = (s: string) => fromHex(s)!

test('every Wycheproof case gets its expected verdict, on the fast and the pure-JS path', () => {
  const w = loadFixture<Wycheproof>('vectors/wycheproof-ed25519_test.json')
  let n = 0
  for (const group of w.testGroups) {
    const pk = hex(group.publicKey.pk)
    for (const c of group.tests) {
      const want = c.result === 'valid'
      const sig = fromHex(c.sig) ?? new Uint8Array(0)
      assert.equal(verify(pk, hex(c.msg), sig), want, `tcId ${c.tcId} (${c.comment})`)
      assert.equal(verifyPureJs(pk, hex(c.msg), sig), want, `pure-JS tcId ${c.tcId}`)
      n++
    }
  }
  assert.equal(n, 151)
})

// Pinned verdicts on the twelve speccheck cases under the rule of docs/formats.md:
// cofactorless, S < L, canonical R (by encoding comparison), canonical A that is not of small order.
const speccheckVerdicts: { verdict: boolean; why: string }[] = [
  { verdict: false, why: 'small-order A (and R), S = 0' },
  { verdict: false, why: 'small-order A' },
  { verdict: true, why: 'mixed-order A, small-order R: the cofactorless equation holds' },
  { verdict: true, why: 'mixed-order A and R: both equations hold' },
  { verdict: false, why: 'only the cofactored equation holds' },
  { verdict: false, why: 'only the cofactored equation holds (mixed-order A)' },
  { verdict: false, why: 'S > L' },
  { verdict: false, why: 'S much larger than L' },
  { verdict: false, why: 'non-canonical R' },
  { verdict: false, why: 'non-canonical R' },
  { verdict: false, why: 'non-canonical A' },
  { verdict: false, why: 'non-canonical A' },
]

test('the twelve speccheck edge cases get their pinned verdicts on every path', () => {
  const cases = loadFixture<SpeccheckCase[]>('vectors/ed25519-speccheck-cases.json')
  assert.equal(cases.length, 12)
  cases.forEach((c, i) => {
    const { verdict, why } = speccheckVerdicts[i]!
    const args = [hex(c.pub_key), hex(c.message), hex(c.signature)] as const
    assert.equal(verify(...args), verdict, `case ${i}: ${why}`)
    assert.equal(verifyPureJs(...args), verdict, `pure-JS case ${i}: ${why}`)
  })
})

test('RFC 8032 section 7.1 test 2: key derivation and signature', () => {
  const kp = keyPairFromSeed(hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'))
  assert.equal(toHex(kp.publicKey), '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c')
  const sig = sign(kp.secretKey, hex('72'))
  assert.equal(toHex(sig), '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00')
  assert.ok(verify(kp.publicKey, hex('72'), sig))
})

test('OpenSSL signing is byte-identical to @noble/curves, and signatures verify', () => {
  const rng = new Rng(7)
  for (let i = 0; i < 50; i++) {
    const kp = keyPairFromSeed(rng.bytes(32))
    const msg = rng.bytes(rng.int(200))
    const sig = sign(kp.secretKey, msg)
    assert.equal(toHex(sig), toHex(ed25519.sign(msg, kp.secretKey)))
    assert.ok(verify(kp.publicKey, msg, sig))
    const flipped = new Uint8Array(msg.length === 0 ? [1] : msg)
    if (msg.length > 0) flipped[0]! ^= 1
    assert.equal(verify(kp.publicKey, flipped, sig), false)
  }
})

test('S + L (the malleated twin of a valid signature) is rejected', () => {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(9))
  const msg = new TextEncoder().encode('tally')
  const sig = sign(kp.secretKey, msg)
  const L = 2n ** 252n + 27742317777372353535851937790883648493n
  let s = 0n
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!)
  let t = s + L
  const twin = new Uint8Array(sig)
  for (let i = 0; i < 32; i++) {
    twin[32 + i] = Number(t & 0xffn)
    t >>= 8n
  }
  assert.ok(verify(kp.publicKey, msg, sig))
  assert.equal(verify(kp.publicKey, msg, twin), false)
  assert.equal(verifyPureJs(kp.publicKey, msg, twin), false)
})

/** True when the 32 bytes decode (strict RFC 8032) to a curve point. */
function decodesToPoint(bytes: Uint8Array): boolean {
  try {
    ed25519.Point.fromBytes(bytes, false)
    return true
  } catch {
    return false
  }
}

test('the key screen refuses what rule 1 refuses, except keys that decode to no point, and those verify nothing', () => {
  const rng = new Rng(21)
  const keys: Uint8Array[] = []
  // every small-order point, each with both sign bits (one of each pair is non-canonical or not a point)
  const torsion = ed25519.Point.fromBytes(hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'), false)
  for (let k = 0n; k < 8n; k++) {
    const enc = k === 0n ? ed25519.Point.ZERO.toBytes() : torsion.multiplyUnsafe(k).toBytes()
    keys.push(
      enc,
      Uint8Array.from(enc, (b, i) => (i === 31 ? b ^ 0x80 : b)),
    )
  }
  // non-canonical y: p .. 2^255 - 1, both signs
  for (let d = 0; d < 19; d++) {
    const y = new Uint8Array(32).fill(0xff)
    y[0] = 0xed + d
    y[31] = 0x7f
    keys.push(
      y,
      Uint8Array.from(y, (b, i) => (i === 31 ? b | 0x80 : b)),
    )
  }
  // a mixed-order point (a valid key plus a torsion component) is acceptable
  const kp = keyPairFromSeed(new Uint8Array(32).fill(5))
  keys.push(ed25519.Point.fromBytes(kp.publicKey, false).add(torsion).toBytes())
  for (let i = 0; i < 300; i++) keys.push(i % 2 === 0 ? keyPairFromSeed(rng.bytes(32)).publicKey : rng.bytes(32))
  const message = new Uint8Array([1, 2, 3])
  const foreign = sign(kp.secretKey, message)
  let offCurve = 0
  for (const key of keys) {
    const acceptable = isAcceptablePublicKey(key)
    if (passesKeyScreen(key) === acceptable) continue
    assert.equal(acceptable, false, `the screen refused acceptable key ${toHex(key)}`)
    assert.equal(decodesToPoint(key), false, `the screen passed key ${toHex(key)}, a point rule 1 refuses`)
    offCurve++
    assert.equal(verify(key, message, foreign), false)
    assert.equal(verify(key, message, new Uint8Array(64)), false)
    assert.equal(verify(key, message, Uint8Array.from([1, ...new Uint8Array(63)])), false)
  }
  assert.ok(offCurve > 50, 'random bytes include keys that decode to no point')
})

test('wrong lengths and garbage never throw', () => {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(1))
  assert.equal(verify(kp.publicKey.slice(1), new Uint8Array(1), new Uint8Array(64)), false)
  assert.equal(verify(kp.publicKey, new Uint8Array(1), new Uint8Array(63)), false)
  assert.equal(verify(new Uint8Array(32).fill(0xff), new Uint8Array(1), new Uint8Array(64)), false)
  assert.equal(isAcceptablePublicKey(new Uint8Array(32)), false)
  assert.equal(isAcceptablePublicKey(kp.publicKey), true)
  assert.throws(() => keyPairFromSeed(new Uint8Array(31)), RangeError)
})

test("verifyRemembered gives verify's verdict on every Wycheproof case, twice over (cold and remembered)", () => {
  const w = loadFixture<Wycheproof>('vectors/wycheproof-ed25519_test.json')
  for (let pass = 0; pass < 2; pass++) {
    for (const group of w.testGroups) {
      const pk = hex(group.publicKey.pk)
      for (const c of group.tests) {
        const sig = fromHex(c.sig) ?? new Uint8Array(0)
        assert.equal(verifyRemembered(pk, hex(c.msg), sig), c.result === 'valid', `pass ${pass} tcId ${c.tcId}`)
      }
    }
  }
})

test('a remembered signature counts only for its own key and message', () => {
  const a = keyPairFromSeed(new Uint8Array(32).fill(1))
  const b = keyPairFromSeed(new Uint8Array(32).fill(2))
  const msg = new Uint8Array([1, 2, 3])
  const sig = sign(a.secretKey, msg)
  rememberValid(a.publicKey, msg, sig)
  assert.equal(verifyRemembered(a.publicKey, msg, sig), true)
  assert.equal(verifyRemembered(b.publicKey, msg, sig), false)
  assert.equal(verifyRemembered(a.publicKey, new Uint8Array([1, 2, 4]), sig), false)
  assert.equal(verifyRemembered(a.publicKey, new Uint8Array([1, 2, 3, 0]), sig), false)
  assert.equal(verifyRemembered(a.publicKey, msg, sig.subarray(0, 63)), false)
})
