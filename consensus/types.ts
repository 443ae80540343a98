/**
 * The data the consensus core speaks: validators, votes, proposals and the consensus parameters.
 * Everything here is a plain value (no classes), so a host can snapshot, log and compare it.
 */

/** Length of a value id (the block hash) in bytes. */
export const VALUE_ID_LENGTH = 32

/** A validator as consensus sees it: its address (first 20 bytes of SHA-256 of the key), key and voting power. */
export interface Validator {
  /** 20 bytes, derived from `publicKey` (crypto/address.ts). */
  readonly address: Uint8Array
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** Voting power: a positive safe integer. */
  readonly power: number
}

/**
 * A validator set: validators sorted by address bytes, their total power (exact, bigint) and the set's hash.
 * Built only by `createValidatorSet`, which checks it; `indexByAddress` maps lowercase address hex to the
 * validator's position so look-ups need no iteration.
 */
export interface ValidatorSet {
  readonly validators: readonly Validator[]
  readonly totalPower: bigint
  /** `validatorSetHash(validators)`: SHA-256 of the canonical list of [address, publicKey, power]. */
  readonly hash: Uint8Array
  readonly indexByAddress: Readonly<Record<string, number>>
  /** The greatest common divisor of the powers; the proposer sequence works in units of it. */
  readonly proposerUnit: bigint
  /** The multiplier of the proposer sequence (see `proposerIndex`), fixed by the total power. */
  readonly proposerStride: bigint
}

/** The two kinds of vote. */
export type VoteType = 'prevote' | 'precommit'

/** An unsigned vote: what a validator says about a round. `valueId` null is a vote for nil. */
export interface Vote {
  readonly type: VoteType
  readonly height: number
  readonly round: number
  readonly valueId: Uint8Array | null
  /** Address of the voting validator. */
  readonly validator: Uint8Array
}

/** A vote with its Ed25519 signature over `voteSignBytes`. */
export interface SignedVote extends Vote {
  readonly signature: Uint8Array
}

/**
 * An unsigned proposal. `polRound` is the paper's valid round vr: -1 for a fresh value, otherwise the round
 * (below `round`) in which the proposer saw a polka (2f+1 prevotes) for the value (the proof of lock).
 */
export interface Proposal {
  readonly height: number
  readonly round: number
  readonly valueId: Uint8Array
  readonly polRound: number
  /** Address of the proposer. */
  readonly proposer: Uint8Array
}

/** A proposal with its Ed25519 signature over `proposalSignBytes`. */
export interface SignedProposal extends Proposal {
  readonly signature: Uint8Array
}

/** The three timeouts of a round. */
export type TimeoutKind = 'propose' | 'prevote' | 'precommit'

/** A timeout as data: the host arms a timer for it and later feeds `timeoutElapsed` with the same value. */
export interface Timeout {
  readonly height: number
  readonly round: number
  readonly kind: TimeoutKind
}

/**
 * Consensus parameters, fixed at construction (from genesis). Timeouts grow with the round,
 * `base + delta × round`, so that after the network stabilizes some round is long enough for everyone.
 */
export interface ConsensusParams {
  readonly timeoutProposeMs: number
  readonly timeoutProposeDeltaMs: number
  readonly timeoutPrevoteMs: number
  readonly timeoutPrevoteDeltaMs: number
  readonly timeoutPrecommitMs: number
  readonly timeoutPrecommitDeltaMs: number
  /** Messages for rounds more than this far above the current round (or, for future heights, above this round) are dropped. */
  readonly maxRoundsAhead: number
  /** Messages for heights more than this far above the current height are dropped; nearer ones are buffered. */
  readonly maxHeightsAhead: number
}

/** Defaults close to CometBFT's (3 s propose, 1 s prevote and precommit, +0.5 s per round). */
export const defaultConsensusParams: ConsensusParams = {
  timeoutProposeMs: 3000,
  timeoutProposeDeltaMs: 500,
  timeoutPrevoteMs: 1000,
  timeoutPrevoteDeltaMs: 500,
  timeoutPrecommitMs: 1000,
  timeoutPrecommitDeltaMs: 500,
  maxRoundsAhead: 10,
  maxHeightsAhead: 2,
}

/** The duration of a timeout: base + delta × round, in milliseconds. */
export function timeoutDuration(params: ConsensusParams, kind: TimeoutKind, round: number): number {
  switch (kind) {
    case 'propose':
      return params.timeoutProposeMs + params.timeoutProposeDeltaMs * round
    case 'prevote':
      return params.timeoutPrevoteMs + params.timeoutPrevoteDeltaMs * round
    case 'precommit':
      return params.timeoutPrecommitMs + params.timeoutPrecommitDeltaMs * round
  }
}

/** Checks parameters given at construction; returns a reason when they are unusable. */
export function checkConsensusParams(params: ConsensusParams): string | undefined {
  const ms: (keyof ConsensusParams)[] = [
    'timeoutProposeMs',
    'timeoutProposeDeltaMs',
    'timeoutPrevoteMs',
    'timeoutPrevoteDeltaMs',
    'timeoutPrecommitMs',
    'timeoutPrecommitDeltaMs',
  ]
  for (const k of ms) {
    const v = params[k]
    if (!Number.isSafeInteger(v) || v < 0) return `${k} must be a non-negative integer`
  }
  if (params.timeoutProposeMs < 1 || params.timeoutPrevoteMs < 1 || params.timeoutPrecommitMs < 1) return 'base timeouts must be at least 1 ms'
  if (!Number.isSafeInteger(params.maxRoundsAhead) || params.maxRoundsAhead < 1 || params.maxRoundsAhead > 1000) return 'maxRoundsAhead must be 1..1000'
  if (!Number.isSafeInteger(params.maxHeightsAhead) || params.maxHeightsAhead < 0 || params.maxHeightsAhead > 100) return 'maxHeightsAhead must be 0..100'
  return undefined
}
