import { findValidator, type SignedVote, type ValidatorSet } from '../../consensus/index.js'
import type { GossipHandler } from '../p2p/p2p.js'
import { decodeConsensusGossip, type ProposalMessage } from './consensusMessages.js'

/**
 * Admission of consensus gossip (`/tally/consensus/1`): decodes each message strictly, drops what the host cannot
 * use, and hands the rest to the consensus host. A message that does not decode, or is signed by no validator,
 * penalizes the peer that sent it.
 */

export const CONSENSUS_PROTOCOL = '/tally/consensus/1'

export interface ConsensusGossipDependencies {
  readonly validatorSet: () => ValidatorSet
  readonly maxTxs: number
  /** The height the host works on. */
  readonly height: () => number
  /** Called with the height a peer has committed at least (it sent a message for the next one). */
  readonly notePeerTip: (peer: string, height: number) => void
  readonly onProposal: (message: ProposalMessage, from: string) => void
  readonly onVote: (vote: SignedVote, from: string) => void
}

/** The gossip handler of consensus messages. */
export function consensusGossipHandler(d: ConsensusGossipDependencies): GossipHandler {
  return (data, from) => {
    const m = decodeConsensusGossip(data, d.maxTxs)
    if (!m.ok) return 'reject'
    const height = m.value.kind === 'proposal' ? m.value.message.proposal.height : m.value.vote.height
    // Signatures are checked once, by the core; here only what costs nothing: the signer is a validator.
    const signer = m.value.kind === 'proposal' ? m.value.message.proposal.proposer : m.value.vote.validator
    if (findValidator(d.validatorSet(), signer) === undefined) return 'reject'
    // the sender works on `height`, so it holds height - 1 (a claim block sync checks like any tip it is told)
    d.notePeerTip(from, height - 1)
    const current = d.height()
    if (height < current || height > current + 2) return 'ignore'
    if (m.value.kind === 'proposal') d.onProposal(m.value.message, from)
    else d.onVote(m.value.vote, from)
    return 'accept'
  }
}
