import type { ConsensusParams, ConsensusState } from '../../consensus/index.js'
import type { Rng } from '../helpers/random.js'
import type { Scheduler } from './scheduler.js'
import type { RouteDecision, RouteInfo } from './simNetwork.js'

/**
 * An adversary that steers honest validators into different locks. Before GST it splits rounds: for a split round of
 * a height it picks an audience of at most f honest validators (preferring ones not locked on the round's value) and
 *  - delivers the audience's prevotes for a value to the audience only, holding them back from everyone else for one
 *    to two rounds' time (so the others learn of the polka later, which is what lets a later re-proposal unlock them);
 *  - has the Byzantine validators prevote and precommit the proposed value to the audience only, and nil or another
 *    real value of the height to the rest (byzantine.ts sends them).
 * The audience then sees 2f+1 prevotes for the value and locks it, the others see 2f+1 prevotes without a polka and
 * precommit nil, and no value gathers 2f+1 precommits (the audience and the Byzantine validators hold at most 2f). Over
 * a sequence of split rounds with different proposers, different honest validators lock different values (diverging
 * locks); a proposer re-proposing its valid value makes others prevote against their lock once the held prevotes
 * arrive (L28) and lock again (relock). After `splitRounds` rounds of a height (drawn per height) the height goes free.
 * From GST on nothing is held and every round is free.
 */

/** What the adversary does. */
export interface LockAdversaryOptions {
  /** Range of the number of rounds split at each height (drawn per height, inclusive). */
  readonly splitRounds: readonly [number, number]
  /** Probability that one of those rounds is split rather than left free. */
  readonly splitChance?: number
  /** How long held prevotes wait, in rounds' durations (range). */
  readonly holdRounds?: readonly [number, number]
  /** Byzantine proposers re-propose old values with false valid rounds, propose out of turn, withhold proposals. */
  readonly byzantineProposals?: boolean
}

/** The adversary's decision for one round. */
export interface RoundPlan {
  readonly split: boolean
  /** Honest validators that see the polka. */
  readonly audience: ReadonlySet<number>
}

/** What the adversary may look at. */
export interface LockAdversaryContext {
  readonly rng: Rng
  readonly sched: Scheduler
  readonly gst: number
  readonly validators: number
  readonly f: number
  readonly honest: readonly number[]
  readonly byzantine: readonly number[]
  readonly maxTxs: number
  readonly params: ConsensusParams
  readonly addressOf: (node: number) => Uint8Array
  /** The honest validators of a height's set, when the set changes (default `honest`). */
  readonly honestAt?: (height: number) => readonly number[]
  /** f of a height's set, when the set changes (default `f`). */
  readonly fAt?: (height: number) => number
  /** The consensus state of a running validator (the adversary is omniscient). */
  stateOf?: (node: number) => ConsensusState | undefined
}

const FREE: RoundPlan = { split: false, audience: new Set() }

export class LockAdversary {
  private readonly plans = new Map<string, RoundPlan>()
  private readonly heightRounds = new Map<number, number>()
  /** Rounds split so far. */
  splits = 0

  constructor(
    readonly o: LockAdversaryOptions,
    private readonly ctx: LockAdversaryContext,
  ) {}

  /** True before GST. */
  get active(): boolean {
    return this.ctx.sched.now < this.ctx.gst
  }

  /** Looks up the validator state, when the simulation lets the adversary see it. */
  setStateView(view: (node: number) => ConsensusState | undefined): void {
    this.ctx.stateOf = view
  }

  /** The plan of (height, round), drawn the first time it is needed. */
  plan(height: number, round: number, value?: Uint8Array): RoundPlan {
    if (!this.active) return FREE
    const key = `${height}/${round}`
    const known = this.plans.get(key)
    if (known !== undefined) return known
    const { rng } = this.ctx
    const f = this.ctx.fAt?.(height) ?? this.ctx.f
    const honest = this.ctx.honestAt?.(height) ?? this.ctx.honest
    let rounds = this.heightRounds.get(height)
    if (rounds === undefined) {
      const [lo, hi] = this.o.splitRounds
      rounds = lo + rng.int(hi - lo + 1)
      this.heightRounds.set(height, rounds)
    }
    let plan = FREE
    if (round < rounds && f >= 1 && honest.length > f + 1 && rng.chance(this.o.splitChance ?? 0.85)) {
      const size = 1 + rng.int(f)
      // prefer validators not locked on this value: they are the ones a polka moves
      const lockedOn = (i: number) => {
        const s = this.ctx.stateOf?.(i)
        return s !== undefined && s.height === height && s.lockedValue !== null && value !== undefined && sameBytes(s.lockedValue, value)
      }
      const order = honest
        .map((i) => ({ i, k: (lockedOn(i) ? 1 : 0) + rng.float() }))
        .sort((a, b) => a.k - b.k)
        .map((x) => x.i)
      plan = { split: true, audience: new Set(order.slice(0, size)) }
      this.splits++
    }
    this.plans.set(key, plan)
    return plan
  }

  /** The plan of a round if it was drawn, without drawing it. */
  known(height: number, round: number): RoundPlan | undefined {
    return this.plans.get(`${height}/${round}`)
  }

  /** Holds the audience's prevotes for a value back from everyone else during split rounds. */
  readonly route = (m: RouteInfo): RouteDecision => {
    if (m.channel !== 'consensus' || !this.active || m.message === undefined || m.message.kind !== 'vote') return undefined
    const v = m.message.vote
    if (v.type !== 'prevote' || v.valueId === null) return undefined
    const plan = this.known(v.height, v.round)
    if (plan === undefined || !plan.split || !plan.audience.has(m.from) || plan.audience.has(m.to)) return undefined
    const [lo, hi] = this.o.holdRounds ?? [1, 2]
    const rounds = lo + this.ctx.rng.float() * (hi - lo)
    const duration =
      this.ctx.params.timeoutProposeMs +
      this.ctx.params.timeoutPrevoteMs +
      this.ctx.params.timeoutPrecommitMs +
      (this.ctx.params.timeoutProposeDeltaMs + this.ctx.params.timeoutPrevoteDeltaMs + this.ctx.params.timeoutPrecommitDeltaMs) * v.round
    return Math.max(1, Math.min(Math.round(rounds * duration), this.ctx.gst - this.ctx.sched.now + 50))
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
