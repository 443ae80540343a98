import type { SimObservation } from './checker.js'
import type { RouteInfo } from './simNetwork.js'

/**
 * A recorder for scenario tests: what each node signed and sent, when it locked (released a precommit for a value),
 * committed, changed round, crashed and restarted, collected through the simulation's `observe` hook.
 */
export class Trace {
  readonly votes: { node: number; time: number; type: string; height: number; round: number; value: string | null }[] = []
  readonly proposals: { node: number; time: number; height: number; round: number; value: string; polRound: number }[] = []
  readonly locks: { node: number; time: number; height: number; lockedRound: number; value: string }[] = []
  readonly commits: { node: number; time: number; height: number; round: number; roundBefore: number; value: string }[] = []
  readonly sent: { node: number; time: number; type: string; height: number; round: number; value: string | null }[] = []
  readonly roundChanges: { node: number; time: number; height: number; from: number; to: number }[] = []
  readonly crashes: { node: number; time: number }[] = []
  readonly restarts: { node: number; time: number }[] = []

  /** The `observe` hook to pass to the simulation. */
  readonly observe = (o: SimObservation): void => {
    switch (o.kind) {
      case 'sign':
        if (o.type === 'proposal') this.proposals.push({ node: o.node, time: o.time, height: o.height, round: o.round, value: o.value!, polRound: o.polRound })
        else this.votes.push({ node: o.node, time: o.time, type: o.type, height: o.height, round: o.round, value: o.value })
        return
      case 'lock':
        this.locks.push({ node: o.node, time: o.time, height: o.height, lockedRound: o.round, value: o.value })
        return
      case 'commit':
        this.commits.push({ node: o.node, time: o.time, height: o.height, round: o.round, roundBefore: o.roundBefore, value: o.value })
        return
      case 'broadcast':
        this.sent.push({ node: o.node, time: o.time, type: o.type, height: o.height, round: o.round, value: o.value })
        return
      case 'round':
        this.roundChanges.push({ node: o.node, time: o.time, height: o.height, from: o.from, to: o.to })
        return
      case 'crash':
        this.crashes.push({ node: o.node, time: o.time })
        return
      case 'restart':
        this.restarts.push({ node: o.node, time: o.time })
    }
  }

  /** Votes a node signed of a type in a round of a height (1 unless given). */
  votesOf(node: number, type: 'prevote' | 'precommit', round: number, height = 1): (string | null)[] {
    return this.votes.filter((v) => v.node === node && v.type === type && v.round === round && v.height === height).map((v) => v.value)
  }

  /** The first value proposed (signed by an honest proposer) in a round of a height. */
  proposed(round: number, height = 1): string | undefined {
    return this.proposals.find((p) => p.round === round && p.height === height)?.value
  }
}

/** True when the routed message is a proposal of this height and round. */
export function isProposal(info: RouteInfo, height: number, round: number): boolean {
  const m = info.message
  return m !== undefined && m.kind === 'proposal' && m.message.proposal.height === height && m.message.proposal.round === round
}

/** True when the routed message is a vote of this type, height and round (by any voter, or the given one). */
export function isVote(info: RouteInfo, type: 'prevote' | 'precommit', height: number, round: number, voter?: Uint8Array): boolean {
  const m = info.message
  if (m === undefined || m.kind !== 'vote') return false
  const v = m.vote
  if (v.type !== type || v.height !== height || v.round !== round) return false
  if (voter === undefined) return true
  if (voter.byteLength !== v.validator.byteLength) return false
  for (let i = 0; i < voter.byteLength; i++) if (voter[i] !== v.validator[i]) return false
  return true
}
