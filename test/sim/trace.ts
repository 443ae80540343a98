import { toHex } from '../../crypto/index.js'
import type { ConsensusMessage } from '../../consensus/index.js'
import type { RouteInfo, StepObservation } from './simulation.js'

/**
 * A recorder for scenario tests: what each node signed, when its lock changed, when it decided, and how its
 * round moved, collected through the simulator's `observe` hook.
 */
export class Trace {
  readonly votes: { node: number; time: number; type: string; round: number; value: string | null }[] = []
  readonly proposals: { node: number; time: number; round: number; value: string; polRound: number }[] = []
  readonly locks: { node: number; time: number; lockedRound: number; value: string | null }[] = []
  readonly decisions: { node: number; time: number; height: number; round: number; roundBefore: number; value: string; input: string }[] = []
  readonly broadcasts: { node: number; time: number; kind: 'vote' | 'proposal' }[] = []
  readonly roundChanges: { node: number; time: number; from: number; to: number; input: string }[] = []
  private readonly last = new Map<number, { height: number; round: number; lockedRound: number }>()

  /** The `observe` hook to pass to the simulation. */
  readonly observe = (o: StepObservation): void => {
    const prev = this.last.get(o.node) ?? { height: 0, round: 0, lockedRound: -1 }
    for (const e of o.effects) {
      if (e.type === 'signVote') this.votes.push({ node: o.node, time: o.time, type: e.vote.type, round: e.vote.round, value: e.vote.valueId === null ? null : toHex(e.vote.valueId) })
      if (e.type === 'signProposal') this.proposals.push({ node: o.node, time: o.time, round: e.proposal.round, value: toHex(e.proposal.valueId), polRound: e.proposal.polRound })
      if (e.type === 'decide') this.decisions.push({ node: o.node, time: o.time, height: e.height, round: e.round, roundBefore: prev.round, value: toHex(e.valueId), input: o.input.type })
      if (e.type === 'broadcastVote' || e.type === 'broadcastProposal') this.broadcasts.push({ node: o.node, time: o.time, kind: e.type === 'broadcastVote' ? 'vote' : 'proposal' })
    }
    const s = o.state
    if (s.height === prev.height && s.round !== prev.round) this.roundChanges.push({ node: o.node, time: o.time, from: prev.round, to: s.round, input: o.input.type })
    if (s.lockedRound !== prev.lockedRound && s.height === prev.height) {
      this.locks.push({ node: o.node, time: o.time, lockedRound: s.lockedRound, value: s.lockedValue === null ? null : toHex(s.lockedValue) })
    }
    this.last.set(o.node, { height: s.height, round: s.round, lockedRound: s.lockedRound })
  }

  /** Votes a node signed of a type in a round at height 1. */
  votesOf(node: number, type: 'prevote' | 'precommit', round: number): (string | null)[] {
    return this.votes.filter((v) => v.node === node && v.type === type && v.round === round).map((v) => v.value)
  }
}

/** Accessors for route hooks. */
export function isProposal(info: RouteInfo, height: number, round: number): boolean {
  const m: ConsensusMessage | undefined = info.message
  return m !== undefined && m.kind === 'proposal' && m.proposal.height === height && m.proposal.round === round
}

/** True when the routed message is a vote of this type, height and round (any voter, or the given one). */
export function isVote(info: RouteInfo, type: 'prevote' | 'precommit', height: number, round: number, voter?: Uint8Array): boolean {
  const m = info.message
  if (m === undefined || m.kind !== 'vote') return false
  const v = m.vote
  return v.type === type && v.height === height && v.round === round && (voter === undefined || toHex(v.validator) === toHex(voter))
}
