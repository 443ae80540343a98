import type { CommitCertificate } from './commitCertificate.js'
import type { Proposal, SignedProposal, SignedVote, Timeout, Vote } from './types.js'

/** Proof that a validator signed two conflicting messages at one (height, round, step). */
export type Evidence =
  | { readonly kind: 'conflictingVotes'; readonly first: SignedVote; readonly second: SignedVote }
  | { readonly kind: 'conflictingProposals'; readonly first: SignedProposal; readonly second: SignedProposal }

/**
 * Effects of the step function: commands to the host, which is their only interpreter. Executed in order.
 * A closed union.
 */
export type ConsensusEffect =
  /** Ask the safety guard to sign this proposal; feed the result back as a `proposal` input. */
  | { readonly type: 'signProposal'; readonly proposal: Proposal }
  /** Ask the safety guard to sign this vote; feed the result back as a `vote` input. */
  | { readonly type: 'signVote'; readonly vote: Vote }
  /** Gossip this validator's own signed proposal (emitted when it comes back as an input). */
  | { readonly type: 'broadcastProposal'; readonly proposal: SignedProposal }
  /** Gossip this validator's own signed vote (emitted when it comes back as an input). */
  | { readonly type: 'broadcastVote'; readonly vote: SignedVote }
  /** Arm a timer; after `durationMs` feed `timeoutElapsed` with the same timeout. */
  | { readonly type: 'scheduleTimeout'; readonly timeout: Timeout; readonly durationMs: number }
  /** Build a block for (height, round) and feed `valueReady` with its id. */
  | { readonly type: 'getValue'; readonly height: number; readonly round: number }
  /** Check the proposed block with this id (fetching it if needed) and feed `valueValidated`. */
  | { readonly type: 'validateValue'; readonly height: number; readonly round: number; readonly valueId: Uint8Array; readonly proposer: Uint8Array }
  /** The value is decided at this height; the certificate proves it. The host commits, then feeds `startHeight`. */
  | { readonly type: 'decide'; readonly height: number; readonly round: number; readonly valueId: Uint8Array; readonly certificate: CommitCertificate }
  /** A validator equivocated; the host stores (and may gossip or report) the evidence. */
  | { readonly type: 'evidence'; readonly evidence: Evidence }
