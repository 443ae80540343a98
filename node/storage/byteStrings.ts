import { envelopeFail as fail, type EnvelopeResult } from './envelope.js'

/**
 * A strict reader of the envelope node records and messages wrap other encodings in: the canonical encoding
 * (crypto/canonical.ts) of an array whose items are byte strings or nil. It accepts exactly the bytes
 * `encodeCanonical` gives such an array, with the same bounds (at most `maxBytes` in all), and rejects everything
 * else: the shortest array header (fixarray below 16 items, then array 16, then array 32), each item the shortest
 * byte-string header (bin 8 below 256 bytes, then bin 16, then bin 32) or nil, nothing after the last item.
 *
 * `decodeCanonical` checks a value by decoding, re-encoding and comparing it, which copies and compares every byte of
 * a large envelope (a block response, a stored block) once per level of nesting; this reads only the headers and
 * returns the items as views of `bytes`, so what they hold is decoded, strictly, once, by its own decoder.
 */
export function decodeByteStrings(bytes: Uint8Array, limits: { readonly maxItems: number; readonly maxBytes: number }): EnvelopeResult<(Uint8Array | null)[]> {
  const n = bytes.byteLength
  if (n === 0) return fail('empty input')
  if (n > limits.maxBytes) return fail(`input of ${n} bytes exceeds ${limits.maxBytes}`)
  const head = bytes[0]!
  let count: number
  let off: number
  if (head >= 0x90 && head <= 0x9f) {
    count = head - 0x90
    off = 1
  } else if (head === 0xdc && n >= 3) {
    count = (bytes[1]! << 8) | bytes[2]!
    off = 3
    if (count < 16) return fail('not the canonical encoding: a longer array header than needed')
  } else if (head === 0xdd && n >= 5) {
    count = readU32(bytes, 1)
    off = 5
    if (count < 0x10000) return fail('not the canonical encoding: a longer array header than needed')
  } else {
    return fail('not an array of byte strings')
  }
  if (count > limits.maxItems) return fail(`more than ${limits.maxItems} items`)
  const items: (Uint8Array | null)[] = []
  for (let i = 0; i < count; i++) {
    if (off >= n) return fail('truncated')
    const t = bytes[off]!
    let len: number
    if (t === 0xc0) {
      items.push(null)
      off += 1
      continue
    }
    if (t === 0xc4 && off + 2 <= n) {
      len = bytes[off + 1]!
      off += 2
    } else if (t === 0xc5 && off + 3 <= n) {
      len = (bytes[off + 1]! << 8) | bytes[off + 2]!
      off += 3
      if (len < 0x100) return fail('not the canonical encoding: a longer byte-string header than needed')
    } else if (t === 0xc6 && off + 5 <= n) {
      len = readU32(bytes, off + 1)
      off += 5
      if (len < 0x10000) return fail('not the canonical encoding: a longer byte-string header than needed')
    } else {
      return fail(`item ${i} is not a byte string or nil`)
    }
    if (off + len > n) return fail('truncated')
    items.push(new Uint8Array(bytes.buffer, bytes.byteOffset + off, len))
    off += len
  }
  if (off !== n) return fail('trailing bytes')
  return { ok: true, value: items }
}

function readU32(b: Uint8Array, off: number): number {
  return b[off]! * 0x1000000 + ((b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!)
}
