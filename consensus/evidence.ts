import { bytesEqual } from '../crypto/bytes.js'
import { decodeCanonical, encodeCanonical } from '../crypto/canonical.js'
import { DECODE_ERROR_CODES } from '../crypto/decodeError.js'
import { sha256 } from '../crypto/hash.js'
import { err, ok, type Result } from '../crypto/result.js'
import { checkProposalFields, checkVoteFields, decodeSignedProposal, decodeSignedVote, encodeSignedProposal, encodeSignedVote } from './codec.js'
import type { Evidence } from './effects.js'
import { verifyProposalSignature, verifyVoteSignature } from './signBytes.js'
import type { ValidatorSet } from './types.js'
import { findValidator } from './validatorSet.js'

/**
 * Equivocation evidence as data blocks carry: proof that one validator signed two conflicting messages for one
 * (height, round, step). Encoding: canonical `[1, signedVote, signedVote]` or `[2, signedProposal, signedProposal]`,
 * the two messages in the byte order of their encodings, so the same equivocation has one encoding (and one hash)
 * whichever message a node saw first.
 */

/** Every code an evidence failure can carry: a decode failure's, and why decoded evidence proves nothing. */
export const EVIDENCE_ERROR_CODES = [...DECODE_ERROR_CODES, 'not_conflicting', 'unknown_signer', 'bad_signature'] as const

/** Why bytes are not valid evidence. */
export interface EvidenceError {
  readonly code: (typeof EVIDENCE_ERROR_CODES)[number]
  readonly reason: string
}

/** The most bytes an evidence encoding may take: what {@link decodeEvidence} reads at most. */
export const MAX_EVIDENCE_ENCODING_BYTES = 1024

const KIND_VOTES = 1
const KIND_PROPOSALS = 2

/** The canonical encoding of evidence. */
export function encodeEvidence(e: Evidence): Uint8Array {
  const [a, b] =
    e.kind === 'conflictingVotes' ? [encodeSignedVote(e.first), encodeSignedVote(e.second)] : [encodeSignedProposal(e.first), encodeSignedProposal(e.second)]
  const ordered = compare(a, b) <= 0 ? [a, b] : [b, a]
  return encodeCanonical([e.kind === 'conflictingVotes' ? KIND_VOTES : KIND_PROPOSALS, ...ordered])
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.byteLength - b.byteLength
}

/** The hash that identifies evidence (blocks commit to these; duplicates share it). */
export function evidenceHash(bytes: Uint8Array): Uint8Array {
  return sha256(bytes)
}

/** The validator the evidence convicts. */
export function evidenceOffender(e: Evidence): Uint8Array {
  return e.kind === 'conflictingVotes' ? e.first.validator : e.first.proposer
}

/** The height of the equivocation. */
export function evidenceHeight(e: Evidence): number {
  return e.first.height
}

/**
 * Decodes evidence strictly: canonical, in its one encoding, two messages of the same kind, signer, height, round
 * (and vote type) that differ. Signatures are not checked here ({@link verifyEvidence}).
 */
export function decodeEvidence(bytes: Uint8Array): Result<Evidence, EvidenceError> {
  const fail = (code: EvidenceError['code'], reason: string) => err<EvidenceError>({ code, reason })
  const d = decodeCanonical(bytes, MAX_EVIDENCE_ENCODING_BYTES)
  if (!d.ok) return fail('malformed', d.error.reason)
  if (!Array.isArray(d.value) || d.value.length !== 3) return fail('malformed', 'evidence is [kind, first, second]')
  const [kind, x, y] = d.value as unknown[]
  if (!(x instanceof Uint8Array) || !(y instanceof Uint8Array)) return fail('malformed', 'evidence messages must be bytes')
  if (compare(x, y) >= 0) return fail('malformed', 'evidence messages must be distinct and in byte order')
  if (kind === KIND_VOTES) {
    const a = decodeSignedVote(x)
    const b = decodeSignedVote(y)
    if (!a.ok || !b.ok) return fail('malformed', 'evidence votes do not decode')
    const e: Evidence = { kind: 'conflictingVotes', first: a.value, second: b.value }
    const v1 = e.first
    const v2 = e.second
    if (v1.type !== v2.type || v1.height !== v2.height || v1.round !== v2.round || !bytesEqual(v1.validator, v2.validator)) {
      return fail('not_conflicting', 'the votes are not of one validator, height, round and type')
    }
    const same = v1.valueId === null ? v2.valueId === null : v2.valueId !== null && bytesEqual(v1.valueId, v2.valueId)
    if (same) return fail('not_conflicting', 'the votes are for the same value')
    return ok(e)
  }
  if (kind === KIND_PROPOSALS) {
    const a = decodeSignedProposal(x)
    const b = decodeSignedProposal(y)
    if (!a.ok || !b.ok) return fail('malformed', 'evidence proposals do not decode')
    const e: Evidence = { kind: 'conflictingProposals', first: a.value, second: b.value }
    if (e.first.height !== e.second.height || e.first.round !== e.second.round || !bytesEqual(e.first.proposer, e.second.proposer)) {
      return fail('not_conflicting', 'the proposals are not of one proposer, height and round')
    }
    return ok(e)
  }
  return fail('malformed', 'unknown evidence kind')
}

/** Checks both signatures of decoded evidence against the validator set of its height. */
export function verifyEvidence(e: Evidence, chainId: string, set: ValidatorSet): Result<void, EvidenceError> {
  const offender = findValidator(set, evidenceOffender(e))
  if (offender === undefined) return err({ code: 'unknown_signer', reason: 'the offender was not a validator at that height' })
  if (e.kind === 'conflictingVotes') {
    if (checkVoteFields(e.first) !== undefined || checkVoteFields(e.second) !== undefined) return err({ code: 'malformed', reason: 'vote fields' })
    if (!verifyVoteSignature(chainId, offender, e.first, e.first.signature) || !verifyVoteSignature(chainId, offender, e.second, e.second.signature)) {
      return err({ code: 'bad_signature', reason: 'a vote signature does not verify' })
    }
    return ok(undefined)
  }
  if (checkProposalFields(e.first) !== undefined || checkProposalFields(e.second) !== undefined) return err({ code: 'malformed', reason: 'proposal fields' })
  if (!verifyProposalSignature(chainId, offender, e.first, e.first.signature) || !verifyProposalSignature(chainId, offender, e.second, e.second.signature)) {
    return err({ code: 'bad_signature', reason: 'a proposal signature does not verify' })
  }
  return ok(undefined)
}
