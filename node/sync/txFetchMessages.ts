import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'
import { HASH_LENGTH } from '../../crypto/hash.js'

/** A transaction fetch: hashes in, wire bytes out (an empty byte string where unknown), same order. */
export function encodeTxFetchRequest(hashes: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([...hashes])
}

export function decodeTxFetchRequest(bytes: Uint8Array, maxHashes: number): Uint8Array[] | undefined {
  const d = decodeCanonical(bytes, 16 + maxHashes * (HASH_LENGTH + 2))
  if (!d.ok || !Array.isArray(d.value) || d.value.length > maxHashes) return undefined
  for (const h of d.value) if (!(h instanceof Uint8Array) || h.byteLength !== HASH_LENGTH) return undefined
  return d.value as Uint8Array[]
}

export function encodeTxFetchResponse(txs: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([...txs])
}

export function decodeTxFetchResponse(bytes: Uint8Array, count: number, maxBytes: number): Uint8Array[] | undefined {
  const d = decodeCanonical(bytes, maxBytes)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== count) return undefined
  for (const t of d.value) if (!(t instanceof Uint8Array)) return undefined
  return d.value as Uint8Array[]
}
