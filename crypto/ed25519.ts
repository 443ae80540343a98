import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { sha512 } from '@noble/hashes/sha2.js'
import { bytesEqual, bytesKey, concatBytes } from './bytes.js'

/**
 * Ed25519 keys, signing and the one verification rule every path of a node uses
 * (mempool admission, block execution, vote and proposal checks, commit certificates).
 *
 * The rule (docs/formats.md, "Signature rule"):
 *  1. the public key A is 32 bytes, a canonical encoding (y < p) of a curve point that is not of small order;
 *  2. the signature is 64 bytes R || S with S < L (non-canonical S is rejected, so a valid signature
 *     cannot be altered into a second valid one);
 *  3. the cofactorless equation [S]B = R + [SHA-512(R || A || M)]A holds, checked by comparing the
 *     canonical encoding of [S]B - [k]A with the bytes of R (so a non-canonical R never verifies).
 * Steps 2 and 3 are OpenSSL's Ed25519 verification (node:crypto). Step 1 is checked once per key, when the key's
 * OpenSSL handle enters the cache, so the hot path costs one OpenSSL call: verification screens the bytes
 * ({@link passesKeyScreen}) and leaves the curve check to OpenSSL, which refuses a key that decodes to no point;
 * {@link isAcceptablePublicKey} checks the whole of step 1 with @noble/curves, for keys that are stored (genesis,
 * validator changes) rather than verified against.
 */

/** Length of a public key in bytes. */
export const PUBLIC_KEY_LENGTH = 32
/** Length of a secret key (the RFC 8032 seed) in bytes. */
export const SECRET_KEY_LENGTH = 32
/** Length of a signature in bytes. */
export const SIGNATURE_LENGTH = 64

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** L, the order of the prime subgroup, little-endian: S must be below it. */
const L_LE = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex')

/** An Ed25519 key pair: the 32-byte seed and the public key derived from it. */
export interface KeyPair {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
}

/**
 * Derives the key pair for a 32-byte seed. Key generation draws the seed outside the pure rooms
 * (node:crypto randomBytes in the wallet and the node) and passes it here.
 */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (seed.byteLength !== SECRET_KEY_LENGTH) throw new RangeError(`secret key must be ${SECRET_KEY_LENGTH} bytes`)
  const secretKey = new Uint8Array(seed)
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) }
}

const signerCache = new Map<string, KeyObject>()

/**
 * Signs a message with the RFC 8032 deterministic scheme. Uses OpenSSL (byte-identical to @noble/curves,
 * which the tests check) because it is many times faster.
 */
export function sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  if (secretKey.byteLength !== SECRET_KEY_LENGTH) throw new RangeError(`secret key must be ${SECRET_KEY_LENGTH} bytes`)
  const id = bytesKey(secretKey)
  let key = signerCache.get(id)
  if (key === undefined) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' })
    if (signerCache.size >= 64) signerCache.delete(signerCache.keys().next().value!)
    signerCache.set(id, key)
  }
  const sig = nodeSign(null, message, key)
  return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)
}

/** Most public keys whose OpenSSL handles are kept; the oldest is evicted past this. */
const VERIFIER_CACHE_LIMIT = 100_000
/** Public key ({@link bytesKey}) to its OpenSSL handle, or null when the key fails rule 1. */
const verifierCache = new Map<string, KeyObject | null>()

/** Rule 1: true when the 32 bytes are a canonical encoding of a point that is not of small order. */
export function isAcceptablePublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.byteLength !== PUBLIC_KEY_LENGTH) return false
  try {
    // zip215 = false: strict RFC 8032 decoding, which rejects y >= p.
    const point = ed25519.Point.fromBytes(publicKey, false)
    return !point.isSmallOrder()
  } catch {
    return false
  }
}

/**
 * The OpenSSL handle of a raw public key, imported as a JWK: OpenSSL then takes the 32 bytes as they are, where the
 * equivalent SPKI DER goes through its slower decoder framework. Every validator pays this once for each sender it
 * meets.
 */
function importPublicKey(publicKey: Uint8Array): KeyObject {
  const x = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64url')
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
}

/**
 * The encodings of rule 1's small-order points: the eight canonical ones, and the two of x = 0 with the sign bit set
 * (y = 1 and y = p - 1), which strict decoding refuses. Hex.
 */
const SMALL_ORDER_ENCODINGS: ReadonlySet<string> = new Set([
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
])

/** True when the 255-bit y of an encoded point (little-endian, sign bit cleared) is below p = 2^255 - 19. */
function hasCanonicalY(publicKey: Uint8Array): boolean {
  if ((publicKey[31]! & 0x7f) !== 0x7f) return true
  for (let i = 30; i >= 1; i--) if (publicKey[i] !== 0xff) return true
  return publicKey[0]! < 0xed
}

/**
 * Rule 1 as far as the bytes tell, for keys about to be verified against: a canonical y, and not the encoding of a
 * small-order point. What it leaves, that the bytes decode to a point at all, OpenSSL checks as it verifies (a key
 * that decodes to no point verifies nothing), so {@link verify} keeps rule 1 whole for ~0.1 µs a key instead of the
 * ~230 µs of decoding the point in JavaScript, which every validator paid for every new sender.
 */
export function passesKeyScreen(publicKey: Uint8Array): boolean {
  return (
    publicKey.byteLength === PUBLIC_KEY_LENGTH &&
    hasCanonicalY(publicKey) &&
    !SMALL_ORDER_ENCODINGS.has(Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('hex'))
  )
}

function verifierFor(publicKey: Uint8Array): KeyObject | null {
  const id = bytesKey(publicKey)
  let key = verifierCache.get(id)
  if (key === undefined) {
    key = passesKeyScreen(publicKey) ? importPublicKey(publicKey) : null
    if (verifierCache.size >= VERIFIER_CACHE_LIMIT) verifierCache.delete(verifierCache.keys().next().value!)
    verifierCache.set(id, key)
  }
  return key
}

/** Rule 2: S, the second half of the signature read little-endian, is below L. */
function hasCanonicalS(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i]!
    const l = L_LE[i]!
    if (s < l) return true
    if (s > l) return false
  }
  return false
}

/** Verifies a signature under the project's one rule (see the module comment). Never throws. */
export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.byteLength !== SIGNATURE_LENGTH || publicKey.byteLength !== PUBLIC_KEY_LENGTH) return false
  if (!hasCanonicalS(signature)) return false
  const key = verifierFor(publicKey)
  if (key === null) return false
  try {
    return nodeVerify(null, message, key, signature)
  } catch {
    return false
  }
}

/** Most (key, message, signature) triples {@link verifyRemembered} keeps; the oldest is forgotten past this. */
const REMEMBERED_LIMIT = 8192
/** Signature ({@link bytesKey}) to the public key ‖ message it was found valid for. */
const remembered = new Map<string, Uint8Array>()

/**
 * Records that `signature` is valid for `message` under `publicKey`: a signature this process just made, or one
 * {@link verify} accepted. Only for triples known valid; a wrong entry would make {@link verifyRemembered} lie.
 */
export function rememberValid(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): void {
  if (remembered.size >= REMEMBERED_LIMIT) remembered.delete(remembered.keys().next().value!)
  remembered.set(bytesKey(signature), concatBytes(publicKey, message))
}

/**
 * {@link verify}, answering at once for a triple seen valid recently: consensus meets the same signatures more than
 * once (a validator's own votes fed back to it, the previous height's precommits again in the proposal's last
 * commit, a re-broadcast). Same verdicts as `verify`: a hit needs the identical key, message and signature.
 */
export function verifyRemembered(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.byteLength !== SIGNATURE_LENGTH || publicKey.byteLength !== PUBLIC_KEY_LENGTH) return false
  const known = remembered.get(bytesKey(signature))
  if (
    known !== undefined &&
    known.byteLength === PUBLIC_KEY_LENGTH + message.byteLength &&
    bytesEqual(known.subarray(0, PUBLIC_KEY_LENGTH), publicKey) &&
    bytesEqual(known.subarray(PUBLIC_KEY_LENGTH), message)
  )
    return true
  if (!verify(publicKey, message, signature)) return false
  rememberValid(publicKey, message, signature)
  return true
}

const L = 2n ** 252n + 27742317777372353535851937790883648493n

function leToBigInt(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.byteLength - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!)
  return n
}

/**
 * The same rule computed entirely in pure JS with @noble/curves primitives: the cofactorless equation,
 * R compared by encoding. Not used on any node path; the tests check it agrees with `verify` on every vector,
 * and the benchmark compares their speed.
 */
export function verifyPureJs(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.byteLength !== SIGNATURE_LENGTH || !isAcceptablePublicKey(publicKey)) return false
  if (!hasCanonicalS(signature)) return false
  const r = signature.subarray(0, 32)
  const s = leToBigInt(signature.subarray(32))
  const k = leToBigInt(sha512(concatBytes(r, publicKey, message))) % L
  const A = ed25519.Point.fromBytes(publicKey, false)
  const rPrime = ed25519.Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k))
  return bytesEqual(rPrime.toBytes(), r)
}
