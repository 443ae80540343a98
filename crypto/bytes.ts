/**
 * Byte helpers shared by every room: strict hex codecs and constant-shape comparisons.
 * Hex input is validated (even length, hex digits only); output is lowercase.
 */

const HEX_RE = /^[0-9a-fA-F]*$/

/** Encodes bytes as lowercase hex without a prefix. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/**
 * An exact string key for bytes, one character (code 0-255) per byte, for Maps and Sets keyed by hashes and
 * addresses: smaller and cheaper to make than a hex key. Equal bytes give equal keys and different bytes different
 * keys. Not for display or storage. Hashes (32 bytes) and addresses (20) are keyed without a Buffer view.
 */
export function bytesKey(b: Uint8Array): string {
  if (b.length === 32) {
    return String.fromCharCode(
      b[0]!,
      b[1]!,
      b[2]!,
      b[3]!,
      b[4]!,
      b[5]!,
      b[6]!,
      b[7]!,
      b[8]!,
      b[9]!,
      b[10]!,
      b[11]!,
      b[12]!,
      b[13]!,
      b[14]!,
      b[15]!,
      b[16]!,
      b[17]!,
      b[18]!,
      b[19]!,
      b[20]!,
      b[21]!,
      b[22]!,
      b[23]!,
      b[24]!,
      b[25]!,
      b[26]!,
      b[27]!,
      b[28]!,
      b[29]!,
      b[30]!,
      b[31]!,
    )
  }
  if (b.length === 20) {
    return String.fromCharCode(
      b[0]!,
      b[1]!,
      b[2]!,
      b[3]!,
      b[4]!,
      b[5]!,
      b[6]!,
      b[7]!,
      b[8]!,
      b[9]!,
      b[10]!,
      b[11]!,
      b[12]!,
      b[13]!,
      b[14]!,
      b[15]!,
      b[16]!,
      b[17]!,
      b[18]!,
      b[19]!,
    )
  }
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/** Encodes bytes as `0x` + lowercase hex. */
export function to0x(bytes: Uint8Array): string {
  return `0x${toHex(bytes)}`
}

/**
 * Decodes hex with an optional `0x` prefix. Returns undefined on odd length or a non-hex digit,
 * so callers at the edge turn it into their own typed error. `expectedLength` (in bytes) is enforced when given.
 */
export function fromHex(hex: string, expectedLength?: number): Uint8Array | undefined {
  const body = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex
  if (body.length % 2 !== 0 || !HEX_RE.test(body)) return undefined
  if (expectedLength !== undefined && body.length !== expectedLength * 2) return undefined
  return new Uint8Array(Buffer.from(body, 'hex'))
}

/** Arrays this long or longer are compared natively: below it, a call into C++ costs more than the loop. */
const NATIVE_EQUAL_BYTES = 48

/**
 * True when both arrays hold the same bytes. Hashes and addresses are compared in a loop (whose bound is read once:
 * `byteLength` is a call per read), anything longer by `Buffer.compare`.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.byteLength
  if (n !== b.byteLength) return false
  if (n >= NATIVE_EQUAL_BYTES) return Buffer.compare(a, b) === 0
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

/** Lexicographic byte order: negative, zero or positive like a comparator. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.byteLength - b.byteLength
}

/** Concatenates byte arrays into a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0
  for (const p of parts) total += p.byteLength
  const out = new Uint8Array(total)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.byteLength
  }
  return out
}
