import type { ConsensusMessage } from './codec.js'
import type { ConsensusState } from './consensusState.js'
import { compareBytes } from '../crypto/index.js'

/**
 * Every proposal and vote the core holds for its current height, in a data-defined order (round, then
 * proposals before prevotes before precommits, then signer address). A host's gossip layer re-sends these to
 * peers that may lack them (periodically, or when a peer is seen in this height): Tendermint's liveness assumes
 * that a message one correct validator received eventually reaches all (the paper's gossip assumption; without
 * it a lock seen by one validator alone can stall the height).
 */
export function heightMessages(state: ConsensusState): ConsensusMessage[] {
  const out: ConsensusMessage[] = []
  const rounds = Object.keys(state.rounds).map(Number).sort((a, b) => a - b)
  for (const r of rounds) {
    const rs = state.rounds[r]!
    for (const proposal of rs.proposals) out.push({ kind: 'proposal', proposal })
    for (const set of [rs.prevotes, rs.precommits]) {
      const votes = Object.values(set.votes).flat().sort((a, b) => compareBytes(a.validator, b.validator))
      for (const vote of votes) out.push({ kind: 'vote', vote })
    }
  }
  return out
}
