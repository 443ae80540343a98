import type { CommitCertificate } from './commitCertificate.js'
import type { ConsensusParams, SignedProposal, SignedVote, ValidatorSet } from './types.js'
import { checkConsensusParams } from './types.js'
import { ADDRESS_LENGTH } from '../crypto/index.js'
import type { VoteSet } from './voteSet.js'

/**
 * The state of the consensus core: a plain value (records, arrays, bigints, byte arrays) that a host can
 * snapshot with structuredClone. The step function never mutates the state it is given.
 */

/** The step within a round, plus `idle` (before the first height) and `decided` (waiting for the next height). */
export type Step = 'idle' | 'propose' | 'prevote' | 'precommit' | 'decided'

/** Everything received for one round of the current height. */
export interface RoundState {
  /** Signed proposals from the round's proposer, in arrival order (more than one only if it equivocated). */
  readonly proposals: SignedProposal[]
  readonly prevotes: VoteSet
  readonly precommits: VoteSet
  /** Validators that sent any message for this round (address hex), and their power: the L55 count. */
  readonly senders: Record<string, true>
  senderPower: bigint
}

/** A message buffered for a future height. */
export type BufferedMessage = { readonly kind: 'proposal'; readonly proposal: SignedProposal } | { readonly kind: 'vote'; readonly vote: SignedVote }

/** Validation state of a proposed value at the current height. */
export type Validity = 'pending' | 'valid' | 'invalid'

/** The decision of the current height, once reached. */
export interface Decision {
  readonly round: number
  readonly valueId: Uint8Array
  readonly certificate: CommitCertificate
}

/** The core's state. Field names follow the paper (h_p, round_p, step_p, lockedValue_p, …). */
export interface ConsensusState {
  readonly chainId: string
  readonly params: ConsensusParams
  /** This validator's address, or null for an observer that never signs. */
  readonly address: Uint8Array | null
  height: number
  round: number
  step: Step
  validatorSet: ValidatorSet | null
  lockedValue: Uint8Array | null
  lockedRound: number
  validValue: Uint8Array | null
  validRound: number
  /** Per round of the current height (integer keys). */
  rounds: Record<number, RoundState>
  /** Value id hex → validation state, for the current height. */
  validity: Record<string, Validity>
  /** True while this proposer waits for `valueReady` for the current round. */
  awaitingValue: boolean
  /** L34 fired in the current round. */
  prevoteTimeoutScheduled: boolean
  /** L47 fired in the current round. */
  precommitTimeoutScheduled: boolean
  /** L36 fired in the current round. */
  polkaSeen: boolean
  decision: Decision | null
  /** Verified messages for heights above the current one (bounded, see ConsensusParams). */
  future: BufferedMessage[]
}

/** Construction options of the core. */
export interface ConsensusOptions {
  readonly chainId: string
  readonly params: ConsensusParams
  /** This validator's address (its guard signs for it), or null for a non-signing observer. */
  readonly address: Uint8Array | null
}

/**
 * The initial state: idle until the host feeds `startHeight`. Throws on unusable options (a host's bug).
 */
export function initialConsensusState(options: ConsensusOptions): ConsensusState {
  const problem = checkConsensusParams(options.params)
  if (problem !== undefined) throw new RangeError(`initialConsensusState: ${problem}`)
  if (options.address !== null && (!(options.address instanceof Uint8Array) || options.address.byteLength !== ADDRESS_LENGTH)) {
    throw new RangeError('initialConsensusState: address must be 20 bytes or null')
  }
  return {
    chainId: options.chainId,
    params: { ...options.params },
    address: options.address === null ? null : new Uint8Array(options.address),
    height: 0,
    round: 0,
    step: 'idle',
    validatorSet: null,
    lockedValue: null,
    lockedRound: -1,
    validValue: null,
    validRound: -1,
    rounds: {},
    validity: {},
    awaitingValue: false,
    prevoteTimeoutScheduled: false,
    precommitTimeoutScheduled: false,
    polkaSeen: false,
    decision: null,
    future: [],
  }
}
