import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'
import { MAX_COMMIT_BYTES, decodeCommitCertificate, type CommitCertificate } from '../../consensus/index.js'
import { envelopeFail as fail, type EnvelopeResult } from '../storage/envelope.js'
import { decodeStoredBlock, type StoredBlock } from '../storage/storedBlock.js'

/** Block sync's requests (a height, or 0 for the tip) and responses (a stored block with its certificate). */

/** A block sync response: the stored block and the certificate that decided it, or nothing. */
export function encodeBlockResponse(stored: Uint8Array | undefined, certificate: Uint8Array | undefined): Uint8Array {
  return encodeCanonical(stored === undefined || certificate === undefined ? [] : [stored, certificate])
}

export function decodeBlockResponse(
  bytes: Uint8Array,
  limits: { maxBytes: number; maxTxs: number },
): EnvelopeResult<{ stored: StoredBlock; certificate: CommitCertificate } | null> {
  const d = decodeCanonical(bytes, limits.maxBytes + 2 * MAX_COMMIT_BYTES + 128)
  if (!d.ok) return fail(d.error.reason)
  const v = d.value
  if (!Array.isArray(v)) return fail('block response shape')
  if (v.length === 0) return { ok: true, value: null }
  if (v.length !== 2 || !(v[0] instanceof Uint8Array) || !(v[1] instanceof Uint8Array)) return fail('block response shape')
  const stored = decodeStoredBlock(v[0], limits)
  if (!stored.ok) return stored
  const cert = decodeCommitCertificate(v[1])
  if (!cert.ok) return fail(`certificate: ${cert.error.reason}`)
  return { ok: true, value: { stored: stored.value, certificate: cert.value } }
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
