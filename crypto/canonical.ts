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

/** The range of JS numbers the encoding carries (as MessagePack integers). */
export const MIN_CANONICAL_NUMBER = -(2 ** 31)
export const MAX_CANONICAL_NUMBER = 2 ** 32 - 1

function isCanonicalNumber(v: number): boolean {
  return Number.isInteger(v) && v >= MIN_CANONICAL_NUMBER && v <= MAX_CANONICAL_NUMBER
}

/** Throws TypeError on a value outside the canonical subset: a bug in the caller, never input from outside. */
function check(value: Canonical, depth: number): void {
  if (depth > 16) throw new TypeError('canonical: nesting deeper than 16')
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

/** Turns decoded Buffers into plain Uint8Arrays and rejects anything outside the canonical subset. */
function normalize(value: unknown, depth: number): Canonical {
  if (depth > 16) throw new TypeError('canonical: nesting deeper than 16')
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
