import type { ConsensusMessage } from './codec.js'
import type { ConsensusState, RoundState } from './consensusState.js'
import { compareBytes } from '../crypto/index.js'
import { certificateVotes } from './commitCertificate.js'

/**
 * Every proposal and vote the core holds for its current height, in a data-defined order (round, then
 * proposals before prevotes before precommits, then signer address). A host's gossip layer re-sends these to
 * peers that may lack them (periodically, or when a peer is seen in this height): Tendermint's liveness assumes
 * that a message one correct validator received eventually reaches all (the paper's gossip assumption; without
 * it a lock seen by one validator alone can stall the height).
 */
export function heightMessages(state: ConsensusState): ConsensusMessage[] {
  const out: ConsensusMessage[] = []
  const rounds = Object.keys(state.rounds)
    .map(Number)
    .sort((a, b) => a - b)
  for (const r of rounds) {
    const rs = state.rounds[r]!
    for (const proposal of rs.proposals) out.push({ kind: 'proposal', proposal })
    for (const set of [rs.prevotes, rs.precommits]) {
      const votes = Object.values(set.votes)
        .flat()
        .sort((a, b) => compareBytes(a.validator, b.validator))
      for (const vote of votes) out.push({ kind: 'vote', vote })
    }
  }
  return out
}

/**
 * What a validator re-sends while its height is stuck, bounded whatever the round:
 *  - its own proposals and votes of the current and the previous round (peers in other rounds learn where it is);
 *  - what brought it to its round, whoever signed it: every precommit it holds of the previous round (the 2f+1 of
 *    L47 that ended that round) and every proposal and vote of the current round (the f+1 of L55, if it skipped).
 *    A peer still in an earlier round then follows by the same rule. Without them, one Byzantine validator that sends
 *    its precommit to one peer alone strands that peer a round ahead of the others: it holds 2f+1 precommits of the
 *    round, they hold 2f, and nobody's own messages make up the difference;
 *  - the proof behind its valid value: the proposal of that value and the 2f+1 prevotes of the valid round, so a peer
 *    that missed the polka can still accept the value's re-proposal (L28);
 *  - once it decided, the 2f+1 precommits of its decision.
 * Their signers may have crashed since, which is why this validator sends them on. At most O(n) messages per call,
 * never O(rounds × n).
 */
export function repairMessages(state: ConsensusState): ConsensusMessage[] {
  const out: ConsensusMessage[] = []
  const own = (address: Uint8Array) => state.address !== null && compareBytes(address, state.address) === 0
  const byValidator = (set: RoundState['prevotes']) =>
    Object.values(set.votes)
      .flat()
      .sort((a, b) => compareBytes(a.validator, b.validator))
  const previous = state.rounds[state.round - 1]
  if (previous !== undefined) {
    for (const proposal of previous.proposals) if (own(proposal.proposer)) out.push({ kind: 'proposal', proposal })
    for (const vote of byValidator(previous.prevotes)) if (own(vote.validator)) out.push({ kind: 'vote', vote })
    for (const vote of byValidator(previous.precommits)) out.push({ kind: 'vote', vote })
  }
  const current = state.rounds[state.round]
  if (current !== undefined) {
    for (const proposal of current.proposals) out.push({ kind: 'proposal', proposal })
    for (const vote of [...byValidator(current.prevotes), ...byValidator(current.precommits)]) out.push({ kind: 'vote', vote })
  }
  const valid = state.validValue
  if (valid !== null && state.validRound >= 0) {
    const polka = state.rounds[state.validRound]
    const proposal = Object.values(state.rounds)
      .flatMap((rs) => rs.proposals)
      .find((p) => compareBytes(p.valueId, valid) === 0)
    if (proposal !== undefined) out.push({ kind: 'proposal', proposal })
    if (polka !== undefined) {
      const votes = Object.values(polka.prevotes.votes)
        .flat()
        .filter((v) => v.valueId !== null && compareBytes(v.valueId, valid) === 0)
        .sort((a, b) => compareBytes(a.validator, b.validator))
      for (const vote of votes) out.push({ kind: 'vote', vote })
    }
  }
  // A validator that decided holds 2f+1 precommits its peers may lack (it may also lack the block, and wait for them
  // to commit it): the decision's precommits go out too, so every peer can decide.
  if (state.decision !== null) for (const vote of certificateVotes(state.decision.certificate)) out.push({ kind: 'vote', vote })
  const seen = new Set<object>()
  return out.filter((m) => {
    const x = m.kind === 'vote' ? m.vote : m.proposal
    if (seen.has(x)) return false
    seen.add(x)
    return true
  })
}
