import * as nodeCrypto from 'node:crypto'

/** Length of a SHA-256 digest in bytes. */
export const HASH_LENGTH = 32

type OneShotHash = (algorithm: string, data: Uint8Array, outputEncoding: 'latin1') => string
/** Node's one-shot hash (20.12+): about 2.6x faster than createHash for the small inputs of the state tree. */
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash

/**
 * The digest, returned by node:crypto as a latin1 string (one character per byte), copied into a 32-byte array of
 * its own. A string and an array this small live in the V8 heap and are freed by the next scavenge; a digest Buffer
 * would have a native backing store, freed only when the garbage collector gets to its wrapper, and the state tree
 * hashes constantly under load.
 */
function ownDigest(latin1: string): Uint8Array {
  const out = new Uint8Array(HASH_LENGTH)
  for (let i = 0; i < HASH_LENGTH; i++) out[i] = latin1.charCodeAt(i)
  return out
}

/** Most bytes of several parts hashed by copying them together (the Merkle trees' 33- and 65-byte nodes). */
const JOINED_BYTES = 256
/** Where several small parts are copied to be hashed at once; used and done with within one call. */
const joined = new Uint8Array(JOINED_BYTES)
/** Views of the first n bytes of `joined`, made once each (a view per call would be garbage per hash). */
const joinedViews: (Uint8Array | undefined)[] = []

/**
 * SHA-256 of the concatenation of the given byte arrays (OpenSSL through node:crypto). Several parts of
 * {@link JOINED_BYTES} or fewer in all are copied together and hashed at once: a hash object per call costs more than
 * the copy.
 */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (oneShot !== undefined) {
    if (parts.length === 1) return ownDigest(oneShot('sha256', parts[0]!, 'latin1'))
    let total = 0
    for (const p of parts) total += p.byteLength
    if (total <= JOINED_BYTES) {
      let off = 0
      for (const p of parts) {
        joined.set(p, off)
        off += p.byteLength
      }
      const view = joinedViews[total] ?? joined.subarray(0, total)
      joinedViews[total] = view
      return ownDigest(oneShot('sha256', view, 'latin1'))
    }
  }
  const h = nodeCrypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return ownDigest(h.digest('binary')) // 'binary' is node's alias of latin1
}

/**
 * Writes SHA-256 of `data` into `out` at `offset` (32 bytes) and allocates no array: for trees that keep the hashes
 * of a level side by side in one array.
 */
export function sha256Into(out: Uint8Array, offset: number, data: Uint8Array): void {
  if (oneShot === undefined) {
    out.set(nodeCrypto.createHash('sha256').update(data).digest(), offset)
    return
  }
  const digest = oneShot('sha256', data, 'latin1')
  for (let i = 0; i < HASH_LENGTH; i++) out[offset + i] = digest.charCodeAt(i)
}
