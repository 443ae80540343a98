import {
  SafetyGuard,
  proposalSignBytes,
  voteSignBytes,
  type Proposal,
  type SafetyGuardDependencies,
  type SafetyGuardOptions,
  type SignResult,
  type SignedProposal,
  type SignedVote,
  type Vote,
} from '../../consensus/index.js'
import type { SignRequest } from './checker.js'

/** What watches an honest validator's guard: every request before it is decided, and every answer. */
export interface GuardWatch {
  request(req: SignRequest): void
  result(req: SignRequest, result: { ok: true; signBytes: Uint8Array } | { ok: false; code: string; reason: string }): void
}

/**
 * The real safety guard of an honest simulated validator, with every signing request shown to the checker first (which
 * compares it with the host's consensus state at that moment) and every answer after. The signing itself, the record
 * and its save are the guard's own.
 */
export class CheckedGuard extends SafetyGuard {
  constructor(
    options: SafetyGuardOptions,
    dependencies: SafetyGuardDependencies,
    private readonly watch: GuardWatch,
    private readonly signChainId: string,
  ) {
    super(options, dependencies)
  }

  override async signVoteAsync(vote: Vote): Promise<SignResult<SignedVote>> {
    const req: SignRequest = { kind: 'vote', vote }
    this.watch.request(req)
    const r = await super.signVoteAsync(vote)
    this.watch.result(req, r.ok ? { ok: true, signBytes: voteSignBytes(this.signChainId, vote) } : { ok: false, ...r.error })
    return r
  }

  override async signProposalAsync(proposal: Proposal): Promise<SignResult<SignedProposal>> {
    const req: SignRequest = { kind: 'proposal', proposal }
    this.watch.request(req)
    const r = await super.signProposalAsync(proposal)
    this.watch.result(req, r.ok ? { ok: true, signBytes: proposalSignBytes(this.signChainId, proposal) } : { ok: false, ...r.error })
    return r
  }
}
