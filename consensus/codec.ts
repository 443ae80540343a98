import { ADDRESS_LENGTH, SIGNATURE_LENGTH, decodeCanonical, encodeCanonical, malformed, type DecodeError, type DecodeResult } from '../crypto/index.js'
import { VALUE_ID_LENGTH, type SignedProposal, type SignedVote } from './types.js'

/**
 * Wire codecs of the messages validators gossip. Canonical, strict and bounded, like every Tally format:
 *  - vote:     canonical([type, height, round, valueId | null, validator, signature]), type 1 = prevote, 2 = precommit
 *  - proposal: canonical([height, round, valueId, polRound, proposer, signature])
 *  - consensus message (one gossip topic for both): canonical([kind, body]), kind 1 = proposal, 2 = vote,
 *    body the array above.
 * Decoding checks shape, lengths and ranges and returns a typed error; signatures are checked by the core
 * (or `verifyVoteSignature`), which knows the validator set.
 */

/** Upper bound on an encoded vote or proposal. */
export const MAX_CONSENSUS_MESSAGE_BYTES = 256
/** Heights are 1 .. 2^32-1 (canonical numbers are 32-bit; see crypto/canonical.ts). */
export const MAX_HEIGHT = 2 ** 32 - 1
/** Rounds are 0 .. MAX_ROUND. */
export const MAX_ROUND = 1_000_000

/** Why bytes are not a consensus message: the decode failure every strict decoder shares. */
export type ConsensusDecodeError = DecodeError

/** The result of decoding. */
export type ConsensusDecodeResult<T> = DecodeResult<T>

/** A gossiped consensus message. */
export type ConsensusMessage = { readonly kind: 'proposal'; readonly proposal: SignedProposal } | { readonly kind: 'vote'; readonly vote: SignedVote }

const fail = malformed

function isBytes(v: unknown, n: number): v is Uint8Array {
  return v instanceof Uint8Array && v.byteLength === n
}
function isHeight(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_HEIGHT
}
function isRound(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_ROUND
}

/** A reason when the vote's fields are out of format, else undefined. */
export function checkVoteFields(v: SignedVote): string | undefined {
  if (v.type !== 'prevote' && v.type !== 'precommit') return 'vote type must be prevote or precommit'
  if (!isHeight(v.height)) return 'height must be an integer from 1 to 2^32-1'
  if (!isRound(v.round)) return `round must be an integer from 0 to ${MAX_ROUND}`
  if (v.valueId !== null && !isBytes(v.valueId, VALUE_ID_LENGTH)) return `value id must be ${VALUE_ID_LENGTH} bytes or nil`
  if (!isBytes(v.validator, ADDRESS_LENGTH)) return `validator must be a ${ADDRESS_LENGTH}-byte address`
  if (!isBytes(v.signature, SIGNATURE_LENGTH)) return `signature must be ${SIGNATURE_LENGTH} bytes`
  return undefined
}

/** A reason when the proposal's fields are out of format, else undefined. */
export function checkProposalFields(p: SignedProposal): string | undefined {
  if (!isHeight(p.height)) return 'height must be an integer from 1 to 2^32-1'
  if (!isRound(p.round)) return `round must be an integer from 0 to ${MAX_ROUND}`
  if (!isBytes(p.valueId, VALUE_ID_LENGTH)) return `value id must be ${VALUE_ID_LENGTH} bytes`
  if (typeof p.polRound !== 'number' || !Number.isSafeInteger(p.polRound) || p.polRound < -1 || p.polRound >= p.round) {
    return 'polRound must be -1 or a round below the proposal round'
  }
  if (!isBytes(p.proposer, ADDRESS_LENGTH)) return `proposer must be a ${ADDRESS_LENGTH}-byte address`
  if (!isBytes(p.signature, SIGNATURE_LENGTH)) return `signature must be ${SIGNATURE_LENGTH} bytes`
  return undefined
}

function voteFields(v: SignedVote) {
  return [v.type === 'prevote' ? 1 : 2, v.height, v.round, v.valueId, v.validator, v.signature]
}
function proposalFields(p: SignedProposal) {
  return [p.height, p.round, p.valueId, p.polRound, p.proposer, p.signature]
}

function voteFrom(body: unknown): ConsensusDecodeResult<SignedVote> {
  if (!Array.isArray(body) || body.length !== 6) return fail('a vote is an array of 6 fields')
  const [type, height, round, valueId, validator, signature] = body as unknown[]
  if (type !== 1 && type !== 2) return fail('vote type must be 1 (prevote) or 2 (precommit)')
  const vote = { type: type === 1 ? 'prevote' : 'precommit', height, round, valueId, validator, signature } as SignedVote
  const problem = checkVoteFields(vote)
  return problem === undefined ? { ok: true, value: vote } : fail(problem)
}

function proposalFrom(body: unknown): ConsensusDecodeResult<SignedProposal> {
  if (!Array.isArray(body) || body.length !== 6) return fail('a proposal is an array of 6 fields')
  const [height, round, valueId, polRound, proposer, signature] = body as unknown[]
  const proposal = { height, round, valueId, polRound, proposer, signature } as SignedProposal
  const problem = checkProposalFields(proposal)
  return problem === undefined ? { ok: true, value: proposal } : fail(problem)
}

/** Encodes a signed vote. Throws RangeError on fields out of format (a caller's bug). */
export function encodeSignedVote(vote: SignedVote): Uint8Array {
  const problem = checkVoteFields(vote)
  if (problem !== undefined) throw new RangeError(`encodeSignedVote: ${problem}`)
  return encodeCanonical(voteFields(vote))
}

/** Decodes a signed vote: bounded, canonical, exact shape. Never throws. */
export function decodeSignedVote(bytes: Uint8Array): ConsensusDecodeResult<SignedVote> {
  const d = decodeCanonical(bytes, MAX_CONSENSUS_MESSAGE_BYTES)
  return d.ok ? voteFrom(d.value) : fail(d.error.reason)
}

/** Encodes a signed proposal. Throws RangeError on fields out of format (a caller's bug). */
export function encodeSignedProposal(proposal: SignedProposal): Uint8Array {
  const problem = checkProposalFields(proposal)
  if (problem !== undefined) throw new RangeError(`encodeSignedProposal: ${problem}`)
  return encodeCanonical(proposalFields(proposal))
}

/** Decodes a signed proposal: bounded, canonical, exact shape. Never throws. */
export function decodeSignedProposal(bytes: Uint8Array): ConsensusDecodeResult<SignedProposal> {
  const d = decodeCanonical(bytes, MAX_CONSENSUS_MESSAGE_BYTES)
  return d.ok ? proposalFrom(d.value) : fail(d.error.reason)
}
