import type { ConsensusMessage } from './codec.js'
import type { ConsensusState } from './consensusState.js'
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
 * What a validator re-sends while its height is stuck, bounded whatever the round: its own proposals and votes of
 * the current and the previous round (peers in other rounds learn where it is, and L55 lets them follow), and the
 * proof behind its valid value: the proposal of that value and the 2f+1 prevotes of the valid round, so a peer that
 * missed the polka can still accept the value's re-proposal (L28). Their signers may have crashed since, which is why
 * this validator sends them on; and once it decided, the 2f+1 precommits of its decision. At most O(n) messages per
 * call, never O(rounds × n).
 */
export function repairMessages(state: ConsensusState): ConsensusMessage[] {
  const out: ConsensusMessage[] = []
  const own = (address: Uint8Array) => state.address !== null && compareBytes(address, state.address) === 0
  for (const r of [state.round - 1, state.round]) {
    const rs = state.rounds[r]
    if (rs === undefined) continue
    for (const proposal of rs.proposals) if (own(proposal.proposer)) out.push({ kind: 'proposal', proposal })
    for (const set of [rs.prevotes, rs.precommits]) {
      for (const vote of Object.values(set.votes).flat()) if (own(vote.validator)) out.push({ kind: 'vote', vote })
    }
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
