import { Packr } from 'msgpackr'
import { bytesEqual } from './bytes.js'
import { malformed, type DecodeResult } from './decodeError.js'
import { ok } from './result.js'

/**
 * Canonical encoding: MessagePack (msgpackr) of fixed-order tuples, never of objects whose key order could vary.
 *
 * Values are byte strings, text, small integers (JS numbers from -2^31 to 2^32-1, encoded in their shortest
 * integer form), u64 bigints (always the 9-byte int64/uint64 form), booleans, nil and arrays of these. No maps,
 * no floats, no extensions. Larger integers must be bigints: MessagePack libraries write a JS number beyond 32 bits
 * as a float64, which another implementation would not reproduce.
 * Decoding is strict: the bytes must decode within the size bound and re-encode to exactly the same bytes,
 * so every value has one encoding and a hash of the encoding identifies the value.
 */

/** A value the canonical encoding can carry. */
export type Canonical = Uint8Array | string | number | bigint | boolean | null | readonly Canonical[]

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: false,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: 'bigint',
  encodeUndefinedAsNil: false,
})

/** Deepest nesting of a canonical value: the top value is at depth 0. */
const MAX_DEPTH = 16

/** The range of JS numbers the encoding carries (as MessagePack integers). */
export const MIN_CANONICAL_NUMBER = -(2 ** 31)
export const MAX_CANONICAL_NUMBER = 2 ** 32 - 1

function isCanonicalNumber(v: number): boolean {
  return Number.isInteger(v) && v >= MIN_CANONICAL_NUMBER && v <= MAX_CANONICAL_NUMBER
}

/** Throws TypeError on a value outside the canonical subset: a bug in the caller, never input from outside. */
function check(value: Canonical, depth: number): void {
  if (depth > MAX_DEPTH) throw new TypeError(`canonical: nesting deeper than ${MAX_DEPTH}`)
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || value instanceof Uint8Array) return
  if (typeof value === 'number') {
    if (!isCanonicalNumber(value)) throw new TypeError(`canonical: ${value} is not an integer from -2^31 to 2^32-1 (use a bigint)`)
    return
  }
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << 64n) throw new TypeError('canonical: bigint outside u64')
    return
  }
  if (Array.isArray(value)) {
    for (const v of value as readonly Canonical[]) check(v, depth + 1)
    return
  }
  throw new TypeError(`canonical: unsupported value of type ${typeof value}`)
}

/** Encodes a canonical value. */
export function encodeCanonical(value: Canonical): Uint8Array {
  check(value, 0)
  const b = packr.pack(value)
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/**
 * Decodes bytes that must be the canonical encoding of some value: at most `maxBytes` long, fully consumed,
 * and re-encoding to the same bytes. The value is returned as `unknown`: callers validate its shape.
 */
export function decodeCanonical(bytes: Uint8Array, maxBytes: number): DecodeResult<unknown> {
  if (!(bytes instanceof Uint8Array)) return malformed('not bytes')
  if (bytes.byteLength === 0) return malformed('empty input')
  if (bytes.byteLength > maxBytes) return malformed(`input of ${bytes.byteLength} bytes exceeds ${maxBytes}`)
  const problem = layoutProblem(bytes)
  if (problem !== undefined) return malformed(problem)
  let value: unknown
  try {
    value = packr.unpack(bytes)
  } catch (e) {
    return malformed(`not MessagePack: ${(e as Error).message}`)
  }
  let normal: Canonical
  let again: Uint8Array
  try {
    normal = normalize(value, 0)
    again = encodeCanonical(normal)
  } catch (e) {
    return malformed((e as Error).message)
  }
  if (!bytesEqual(again, bytes)) return malformed('not the canonical encoding')
  return ok(normal)
}

/**
 * Walks the MessagePack headers of `bytes` without decoding them, and names the first thing no canonical encoding
 * holds: a type outside the canonical subset, nesting deeper than {@link MAX_DEPTH}, a length or an array's count
 * beyond the bytes left (every item takes at least one), or bytes after the value. msgpackr allocates an array of
 * the count its header claims before reading any item, so without this five bytes claiming 2^25 items would cost a
 * decoder a quarter of a gigabyte and most of a second. Every canonical encoding passes.
 */
function layoutProblem(b: Uint8Array): string | undefined {
  const n = b.byteLength
  let i = 0
  // items still to read in each open array, the outermost first; the input is one value
  const left: number[] = [1]
  while (left.length > 0) {
    const top = left.length - 1
    if (left[top] === 0) {
      left.pop()
      continue
    }
    left[top]!--
    if (i >= n) return 'input ends inside a value'
    const t = b[i++]!
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) continue
    let skip = 0
    let count = -1
    // fixstr: its bytes follow; fixarray: its items; uint and int 8, 16, 32, 64 (0xcc-0xd3): 1, 2, 4 or 8 bytes
    if (t >= 0xa0 && t <= 0xbf) skip = t & 0x1f
    else if (t >= 0x90 && t <= 0x9f) count = t & 0x0f
    else if (t >= 0xcc && t <= 0xd3) skip = 1 << (t & 3)
    else {
      // bin 8/16/32 and str 8/16/32: a length follows; array 16/32: a count
      const width = t >= 0xc4 && t <= 0xc6 ? 1 << (t - 0xc4) : t >= 0xd9 && t <= 0xdb ? 1 << (t - 0xd9) : t === 0xdc || t === 0xdd ? 2 << (t - 0xdc) : 0
      if (width === 0) return `MessagePack type 0x${t.toString(16)} is not in the canonical subset`
      if (width > n - i) return 'input ends inside a header'
      let v = 0
      for (let k = 0; k < width; k++) v = v * 256 + b[i + k]!
      i += width
      if (t >= 0xdc) count = v
      else skip = v
    }
    if (count >= 0) {
      if (count > n - i) return `an array of ${count} items in ${n - i} bytes`
      // its items are one level deeper than the array, which is at depth left.length - 1
      if (count > 0 && left.length > MAX_DEPTH) return `canonical: nesting deeper than ${MAX_DEPTH}`
      left.push(count)
    } else {
      if (skip > n - i) return `a value of ${skip} bytes in ${n - i}`
      i += skip
    }
  }
  return i === n ? undefined : 'bytes after the value'
}

/** Turns decoded Buffers into plain Uint8Arrays and rejects anything outside the canonical subset. */
function normalize(value: unknown, depth: number): Canonical {
  if (depth > MAX_DEPTH) throw new TypeError(`canonical: nesting deeper than ${MAX_DEPTH}`)
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (Array.isArray(value)) {
    // a loop, not a callback made per call (ledger/smt.ts, byKey)
    const out: Canonical[] = []
    for (let i = 0; i < value.length; i++) out.push(normalize(value[i], depth + 1))
    return out
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'bigint') return value
  if (typeof value === 'number') {
    if (!isCanonicalNumber(value)) throw new TypeError('canonical: a float or an integer beyond 32 bits')
    return value
  }
  throw new TypeError(`canonical: unsupported decoded ${value instanceof Map ? 'map' : typeof value}`)
}

/**
 * Sign bytes: the canonical encoding of [domain tag, chain id, ...fields]. The domain tag keeps a signature
 * for one kind of message from being valid as another; the chain id keeps it from being valid on another chain.
 */
export function signBytes(domain: string, chainId: string, fields: readonly Canonical[]): Uint8Array {
  return encodeCanonical([domain, chainId, ...fields])
}

/** Domain tags of everything Tally signs. */
export const Domain = {
  transaction: 'tally/tx/v1',
  governance: 'tally/gov/v1',
  proposal: 'tally/proposal/v1',
  prevote: 'tally/prevote/v1',
  precommit: 'tally/precommit/v1',
  gossip: 'tally/gossip/v1',
} as const
