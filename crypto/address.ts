import { fromHex, toHex } from './bytes.js'
import { sha256 } from './hash.js'

/**
 * Addresses: the first 20 bytes of SHA-256(public key), written `0x` + 40 lowercase hex digits.
 * Input is accepted in any letter case.
 */

/** Length of an address in bytes. */
export const ADDRESS_LENGTH = 20

/** Derives the 20-byte address of an Ed25519 public key. */
export function addressFromPublicKey(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, ADDRESS_LENGTH)
}

/** Formats an address as `0x` + 40 lowercase hex digits. */
export function formatAddress(address: Uint8Array): string {
  return `0x${toHex(address)}`
}

/** Parses `0x` + 40 hex digits (any case); undefined for anything else. */
export function parseAddress(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length !== 2 + ADDRESS_LENGTH * 2 || !/^0[xX]/.test(text)) return undefined
  return fromHex(text, ADDRESS_LENGTH)
}
