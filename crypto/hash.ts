import { createHash } from 'node:crypto'

/** Length of a SHA-256 digest in bytes. */
export const HASH_LENGTH = 32

/** SHA-256 of the concatenation of the given byte arrays (OpenSSL through node:crypto). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  const d = h.digest()
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}
