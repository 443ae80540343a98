import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'
import { MAX_COMMIT_BYTES, decodeCommitCertificate, type CommitCertificate } from '../../consensus/index.js'
import { decodeByteStrings } from '../storage/byteStrings.js'
import { envelopeFail as fail, type EnvelopeResult } from '../storage/envelope.js'
import { decodeStoredBlock, maxStoredBlockBytes, type StoredBlock } from '../storage/storedBlock.js'

/**
 * Block sync's requests (a height, or 0 for the tip; a range of heights) and responses (stored blocks with their
 * certificates). Responses are decoded strictly, each block by its own decoder, and their envelopes in one pass over
 * their headers (node/storage/byteStrings.ts): a block's bytes are read once, not once per level of nesting.
 */

/** A block with the certificate that decided it, as a peer served them; `storedBytes` are the stored block's bytes. */
export interface ServedBlock {
  readonly stored: StoredBlock
  readonly storedBytes: Uint8Array
  readonly certificate: CommitCertificate
}

/** Most heights one range request may ask for (a server answers at most these). */
export const MAX_RANGE_BLOCKS = 64
/** Most bytes of blocks and certificates a range response carries beyond its first block (a server clamps a request's budget to it). */
export const MAX_RANGE_RESPONSE_BYTES = 8 * 1024 * 1024

/** A block sync response: the stored block and the certificate that decided it, or nothing. */
export function encodeBlockResponse(stored: Uint8Array | undefined, certificate: Uint8Array | undefined): Uint8Array {
  return encodeCanonical(stored === undefined || certificate === undefined ? [] : [stored, certificate])
}

export function decodeBlockResponse(bytes: Uint8Array, limits: { maxBytes: number; maxTxs: number }): EnvelopeResult<ServedBlock | null> {
  const d = decodeByteStrings(bytes, { maxItems: 2, maxBytes: limits.maxBytes + 2 * MAX_COMMIT_BYTES + 128 })
  if (!d.ok) return fail(d.error.reason)
  const v = d.value
  if (v.length === 0) return { ok: true, value: null }
  if (v.length !== 2) return fail('block response shape')
  return decodeServedBlock(v[0]!, v[1]!, limits)
}

function decodeServedBlock(
  stored: Uint8Array | null,
  certificate: Uint8Array | null,
  limits: { maxBytes: number; maxTxs: number },
): EnvelopeResult<ServedBlock> {
  if (stored === null || certificate === null) return fail('block response shape')
  const s = decodeStoredBlock(stored, limits)
  if (!s.ok) return s
  const cert = decodeCommitCertificate(certificate)
  if (!cert.ok) return fail(`certificate: ${cert.error.reason}`)
  return { ok: true, value: { stored: s.value, storedBytes: stored, certificate: cert.value } }
}

/** A request for one height, or for the peer's tip (height 0). */
export function encodeHeightRequest(height: number): Uint8Array {
  return encodeCanonical([height])
}

export function decodeHeightRequest(bytes: Uint8Array): number | undefined {
  const d = decodeCanonical(bytes, 16)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 1) return undefined
  const h = d.value[0]
  return typeof h === 'number' && Number.isSafeInteger(h) && h >= 0 ? h : undefined
}

/** A request for the blocks of heights `from` to `from + count - 1`, in at most about `maxBytes` (see {@link encodeRangeResponse}). */
export interface RangeRequest {
  readonly from: number
  readonly count: number
  readonly maxBytes: number
}

export function encodeRangeRequest(r: RangeRequest): Uint8Array {
  return encodeCanonical([r.from, r.count, r.maxBytes])
}

/** The request, or undefined for bytes that are not one (a height below 1, a count of 0 or above {@link MAX_RANGE_BLOCKS}). */
export function decodeRangeRequest(bytes: Uint8Array): RangeRequest | undefined {
  const d = decodeCanonical(bytes, 32)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 3) return undefined
  const [from, count, maxBytes] = d.value as unknown[]
  if (typeof from !== 'number' || typeof count !== 'number' || typeof maxBytes !== 'number') return undefined
  if (from < 1 || count < 1 || count > MAX_RANGE_BLOCKS || maxBytes < 0) return undefined
  return { from, count, maxBytes }
}

/**
 * A range response: `[stored1, certificate1, stored2, certificate2, …]` for consecutive heights from the request's
 * first, as many as the server holds up to the request's count, and beyond the first block only while the items stay
 * within the request's byte budget (clamped to {@link MAX_RANGE_RESPONSE_BYTES}); `[]` when it does not hold the first.
 */
export function encodeRangeResponse(items: readonly { stored: Uint8Array; certificate: Uint8Array }[]): Uint8Array {
  return encodeCanonical(items.flatMap((i) => [i.stored, i.certificate]))
}

/**
 * The largest range response to a request for `count` blocks within `maxBytes`, under these block limits: the budget,
 * one whole block (always served, whatever the budget) and the envelope's headers.
 */
export function maxRangeResponseBytes(count: number, maxBytes: number, limits: { maxBytes: number }): number {
  return Math.min(maxBytes, MAX_RANGE_RESPONSE_BYTES) + maxStoredBlockBytes(limits) + MAX_COMMIT_BYTES + 10 * count + 16
}

/** Decodes a range response to a request for `count` blocks within `maxBytes`: the blocks it holds, in height order. */
export function decodeRangeResponse(
  bytes: Uint8Array,
  request: { count: number; maxBytes: number },
  limits: { maxBytes: number; maxTxs: number },
): EnvelopeResult<ServedBlock[]> {
  const d = decodeByteStrings(bytes, { maxItems: 2 * request.count, maxBytes: maxRangeResponseBytes(request.count, request.maxBytes, limits) })
  if (!d.ok) return fail(d.error.reason)
  const v = d.value
  if (v.length % 2 !== 0) return fail('range response shape')
  const out: ServedBlock[] = []
  for (let i = 0; i < v.length; i += 2) {
    const b = decodeServedBlock(v[i]!, v[i + 1]!, limits)
    if (!b.ok) return fail(`block ${i / 2}: ${b.error.reason}`)
    out.push(b.value)
  }
  return { ok: true, value: out }
}

/**
 * A tip response: the peer's committed height and the certificate that decided it (absent at height 0). The
 * certificate is what makes the claim worth anything: a receiver believes a tip only once it verifies.
 */
export function encodeTipResponse(height: number, certificate: Uint8Array | undefined): Uint8Array {
  return encodeCanonical(certificate === undefined ? [height] : [height, certificate])
}

export function decodeTipResponse(bytes: Uint8Array): { height: number; certificate: CommitCertificate | null } | undefined {
  const d = decodeCanonical(bytes, MAX_COMMIT_BYTES + 32)
  if (!d.ok || !Array.isArray(d.value) || d.value.length < 1 || d.value.length > 2) return undefined
  const [h, c] = d.value as unknown[]
  if (typeof h !== 'number' || !Number.isSafeInteger(h) || h < 0) return undefined
  if (c === undefined) return h === 0 ? { height: 0, certificate: null } : undefined
  if (!(c instanceof Uint8Array)) return undefined
  const cert = decodeCommitCertificate(c)
  if (!cert.ok || cert.value.height !== h) return undefined
  return { height: h, certificate: cert.value }
}
