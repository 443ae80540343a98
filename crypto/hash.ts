import * as nodeCrypto from 'node:crypto'

/** Length of a SHA-256 digest in bytes. */
export const HASH_LENGTH = 32

type OneShotHash = (algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Buffer
/** Node's one-shot hash (20.12+): about 2.6x faster than createHash for the small inputs of the state tree. */
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash

/**
 * Copies a digest into a 32-byte array of its own. An array this small lives in the V8 heap, so it is freed by the
 * next scavenge; the Buffer node:crypto returns has a native backing store, freed only when the GC gets to its
 * wrapper, and the state tree makes about a million of them a minute under load: returned as they are, they grew
 * the process's native heap by some 20 MB (docs/performance.md).
 */
function ownDigest(d: Buffer): Uint8Array {
  const out = new Uint8Array(HASH_LENGTH)
  out.set(d)
  return out
}

/** SHA-256 of the concatenation of the given byte arrays (OpenSSL through node:crypto). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && oneShot !== undefined) return ownDigest(oneShot('sha256', parts[0]!, 'buffer'))
  const h = nodeCrypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return ownDigest(h.digest())
}
