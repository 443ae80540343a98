import type { CommitCertificate } from './commitCertificate.js'
import type { SignedProposal, SignedVote, Timeout, ValidatorSet } from './types.js'

/**
 * Inputs of the step function: facts the host reports, one at a time, in the order it logs them (its WAL).
 * A closed union: the step function handles every member and nothing else.
 */
export type ConsensusInput =
  /** Begin `height` with this validator set (after the genesis, or after the host applied the previous decision). */
  | { readonly type: 'startHeight'; readonly height: number; readonly validatorSet: ValidatorSet }
  /** A signed proposal, from the network or this validator's own guard. */
  | { readonly type: 'proposal'; readonly proposal: SignedProposal }
  /** A signed vote, from the network, this validator's guard, or a commit certificate being caught up on. */
  | { readonly type: 'vote'; readonly vote: SignedVote }
  /**
   * A commit certificate for the current height (from block sync or a peer that already decided). Verified by the
   * core against the height's validator set; if it holds, the height is decided with it (L49).
   */
  | { readonly type: 'commitCertificate'; readonly certificate: CommitCertificate }
  /** A timeout the core asked for has elapsed. */
  | { readonly type: 'timeoutElapsed'; readonly timeout: Timeout }
  /** The block the host built after `getValue`: its 32-byte id (the block hash). */
  | { readonly type: 'valueReady'; readonly height: number; readonly round: number; readonly valueId: Uint8Array }
  /** The host's verdict on a proposed block after `validateValue`. */
  | { readonly type: 'valueValidated'; readonly height: number; readonly round: number; readonly valueId: Uint8Array; readonly valid: boolean }
