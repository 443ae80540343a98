import type { ConsensusParams } from '../../consensus/index.js'
import type { Genesis } from '../../genesis/genesis.js'

/** The core's timeouts from the genesis parameters, with the host's window of rounds and heights it buffers. */
export function consensusParamsOf(genesis: Genesis): ConsensusParams {
  const t = genesis.params.timeouts
  return {
    timeoutProposeMs: t.proposeMs,
    timeoutProposeDeltaMs: t.proposeDeltaMs,
    timeoutPrevoteMs: t.prevoteMs,
    timeoutPrevoteDeltaMs: t.prevoteDeltaMs,
    timeoutPrecommitMs: t.precommitMs,
    timeoutPrecommitDeltaMs: t.precommitDeltaMs,
    maxRoundsAhead: 10,
    maxHeightsAhead: 2,
  }
}
