import { Rng } from '../helpers/random.js'
import { BYZANTINE_REPERTOIRE, type Behaviour } from './byzantine.js'
import type { CutPhase, StoreOp } from './simDisk.js'
import type { Partition } from './simNetwork.js'
import type { CrashPlan } from './simNode.js'
import type { SimOptions } from './simulation.js'

/**
 * Randomized runs: everything about a run (which validators are Byzantine and how, which honest ones lose power at
 * which store operation, network delays, losses, partitions, GST, clock skews, fetch blackouts, powers, the host's
 * timing) is drawn from the seed, so the seed alone replays a run. Two kinds of schedule:
 *  - `random`: Byzantine behaviours drawn from the repertoire, an adversarial network until GST (0-6 s);
 *  - `locks`: the lock adversary (lockAdversary.ts) with `lockAttack` validators, splitting rounds at every height
 *    until GST (30-80 s, past ten rounds), so honest validators lock, unlock and relock on different values.
 * `mixed` draws one of the two per seed (locks a third of the time when there are Byzantine validators).
 */

export type Schedule = 'random' | 'locks' | 'mixed'

/** What a randomized campaign fixes; the rest comes from the seed. */
export interface RandomRunOptions {
  readonly validators: number
  readonly faulty: number
  readonly heights?: number
  readonly schedule?: Schedule
  /** The behaviours random schedules draw from (default the repertoire of byzantine.ts). */
  readonly repertoire?: readonly Behaviour[]
  /** Some crashed validators restart with `data/` deleted (default); `false` keeps every crash's data. */
  readonly wipes?: boolean
}

const OPS: readonly { op: StoreOp; most: number }[] = [
  { op: 'walWrite', most: 300 }, { op: 'walSync', most: 60 }, { op: 'guardSave', most: 60 }, { op: 'kvWrite', most: 12 },
]

function shuffled(rng: Rng, n: number): number[] {
  const order = [...Array(n).keys()]
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order
}

/** Crash plans for some honest validators: power cut at a random store operation or moment, restart from disk. */
function crashPlans(rng: Rng, honest: readonly number[], gst: number, chance: number, wipes: boolean): Record<number, CrashPlan[]> {
  const out: Record<number, CrashPlan[]> = {}
  if (!rng.chance(chance) || honest.length === 0) return out
  const victims = honest.filter(() => rng.chance(0.4))
  if (victims.length === 0) victims.push(rng.pick(honest))
  for (const v of victims) {
    const plans: CrashPlan[] = []
    for (let k = 1 + rng.int(2); k > 0; k--) {
      const downMs = 200 + rng.int(5_000)
      const wipe = rng.chance(0.08) && wipes
      if (rng.chance(0.75)) {
        const { op, most } = rng.pick(OPS)
        const phase: CutPhase = rng.chance(0.5) ? 'before' : 'after'
        plans.push({ atOp: { op, phase, nth: 1 + rng.int(most) }, downMs, wipe })
      } else {
        plans.push({ atMs: rng.int(Math.max(1, gst + 5_000)), downMs, wipe })
      }
    }
    out[v] = plans
  }
  return out
}

/** Per-node validity: clock skews beyond the drift bound, and windows in which a validator cannot fetch transactions. */
function validityFaults(rng: Rng, n: number, honest: readonly number[], gst: number): Pick<SimOptions, 'skews' | 'fetchBlackouts'> {
  const skews: Record<number, number> = {}
  if (rng.chance(0.3)) for (let i = 0; i < n; i++) if (rng.chance(0.4)) skews[i] = rng.int(3_001) - 1_500
  const fetchBlackouts = []
  if (rng.chance(0.25) && honest.length > 0) {
    const start = rng.int(Math.max(1, gst))
    fetchBlackouts.push({ node: rng.pick(honest), start, end: start + 1_000 + rng.int(6_000) })
  }
  return { skews, fetchBlackouts }
}

/** Voting powers: equal mostly; sometimes unequal ones, with the Byzantine power kept below a third. */
function drawPowers(rng: Rng, n: number, byzantine: readonly number[]): number[] | undefined {
  if (!rng.chance(0.25)) return undefined
  const powers = Array.from({ length: n }, () => 1 + rng.int(3))
  for (const i of byzantine) powers[i] = 1
  const total = powers.reduce((x, y) => x + y, 0)
  return byzantine.length * 3 < total ? powers : undefined
}

/** The options of the randomized run for this seed. */
export function randomSimOptions(seed: number, o: RandomRunOptions): SimOptions {
  const rng = new Rng(seed ^ 0x5eed)
  const n = o.validators
  const order = shuffled(rng, n)
  const byzantineNodes = order.slice(0, o.faulty)
  const honest = order.slice(o.faulty).sort((a, b) => a - b)
  const schedule = o.schedule ?? 'mixed'
  const locks = o.faulty >= 1 && n >= 4 && (schedule === 'locks' || (schedule === 'mixed' && rng.chance(1 / 3)))
  const host = {
    emptyBlockIntervalMs: rng.pick([0, 50, 100, 300]),
    diskMs: rng.pick([0, 1, 1, 3]),
    commitMs: rng.pick([0, 0, 50]),
  }
  const clients = { accounts: 3 + rng.int(4), txGossip: rng.chance(0.7) }
  if (locks) {
    const byzantine: Record<number, Behaviour[]> = {}
    for (const i of byzantineNodes) byzantine[i] = rng.chance(0.2) ? ['lockAttack', 'withhold'] : ['lockAttack']
    const gst = 45_000 + rng.int(40_000)
    return {
      seed, validators: n, heights: o.heights ?? 5, byzantine, powers: drawPowers(rng, n, byzantineNodes), host, clients,
      network: { gst, minDelay: 1, preGstMaxDelay: 40 + rng.int(200), delta: 20 + rng.int(100), loss: rng.chance(0.2) ? 0.02 : 0, duplicate: rng.float() * 0.05, partitions: [] },
      lockAdversary: { splitRounds: [2 + rng.int(3), 8 + rng.int(8)], splitChance: 0.8 + rng.float() * 0.15, holdRounds: [0.7, 2], byzantineProposals: true },
      crashes: crashPlans(rng, honest, gst, 0.3, o.wipes !== false),
      ...validityFaults(rng, n, honest, gst),
    }
  }
  const byzantine: Record<number, Behaviour[]> = {}
  const repertoire = o.repertoire ?? BYZANTINE_REPERTOIRE
  for (const i of byzantineNodes) {
    const count = 1 + rng.int(Math.min(2, repertoire.length))
    const set = new Set<Behaviour>()
    while (set.size < count) set.add(rng.pick(repertoire))
    byzantine[i] = [...set].sort()
  }
  const gst = rng.int(6_000)
  const partitions: Partition[] = []
  if (rng.chance(0.35)) {
    const start = rng.int(Math.max(1, gst))
    const end = Math.min(gst, start + 500 + rng.int(3_000))
    const a = order.filter(() => rng.chance(0.5))
    const b = order.filter((i) => !a.includes(i))
    if (a.length > 0 && b.length > 0 && end > start) partitions.push({ start, end, groups: [a, b] })
  }
  return {
    seed, validators: n, heights: o.heights ?? 4, byzantine, powers: drawPowers(rng, n, byzantineNodes), host, clients,
    network: {
      gst, minDelay: 1, preGstMaxDelay: 200 + rng.int(1_500), delta: 20 + rng.int(150),
      loss: rng.chance(0.5) ? rng.float() * 0.3 : 0, duplicate: rng.float() * 0.1, partitions,
    },
    crashes: crashPlans(rng, honest, gst, 0.5, o.wipes !== false),
    ...validityFaults(rng, n, honest, gst),
  }
}

/** A one-line description of a run's faults, for failure reports. */
export function describeRun(options: SimOptions): string {
  const byz = Object.entries(options.byzantine ?? {}).map(([i, b]) => `${i}:${b.join('+')}`).join(' ') || 'none'
  const crashes = Object.entries(options.crashes ?? {}).map(([i, ps]) => `${i}:${ps.map((p) => (p.atOp ? `${p.atOp.op}#${p.atOp.nth}/${p.atOp.phase}` : `t${p.atMs}`) + (p.wipe === true ? '+wipe' : '')).join(',')}`).join(' ') || 'none'
  const net = options.network ?? {}
  return `n=${options.validators} ${options.lockAdversary ? 'locks' : 'random'} byzantine=[${byz}] crashes=[${crashes}] gst=${net.gst} ` +
    `loss=${(net.loss ?? 0).toFixed(2)} partitions=${net.partitions?.length ?? 0} powers=${options.powers?.join(',') ?? 'equal'}`
}
