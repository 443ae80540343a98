import * as nodeCrypto from 'node:crypto'

/** Length of a SHA-256 digest in bytes. */
export const HASH_LENGTH = 32

type OneShotHash = (algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Buffer
/** Node's one-shot hash (20.12+): about 2.6x faster than createHash for the small inputs of the state tree. */
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash

function view(d: Buffer): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

/** SHA-256 of the concatenation of the given byte arrays (OpenSSL through node:crypto). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && oneShot !== undefined) return view(oneShot('sha256', parts[0]!, 'buffer'))
  const h = nodeCrypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return view(h.digest())
}
