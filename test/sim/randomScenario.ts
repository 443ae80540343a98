import { Rng } from '../helpers/random.js'
import { BYZANTINE_REPERTOIRE, type Behaviour } from './byzantine.js'
import type { CutPhase, StoreOp } from './simDisk.js'
import { describeChange, type SetChange } from './governors.js'
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
 * With `membership`, a run also changes its validator set by governance (`membershipPlan`).
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
  /** Changes of the validator set mixed into each run (default none). */
  readonly membership?: boolean
}

const OPS: readonly { op: StoreOp; most: number }[] = [
  { op: 'walWrite', most: 300 },
  { op: 'walSync', most: 60 },
  { op: 'guardSave', most: 60 },
  { op: 'kvWrite', most: 12 },
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

/** Node index → power. */
type Powers = Map<number, number>

/**
 * Whether the set may go from `before` to `after` in one change: it keeps a member, governance takes it (it moves at
 * most a third of the power), and the Byzantine nodes hold less than a third of the new set's power (so the honest
 * ones can vote the next change in and liveness is checked).
 */
function fairStep(before: Powers, after: Powers, byzantine: ReadonlySet<number>): boolean {
  let total = 0
  let bad = 0
  for (const [i, p] of after) {
    total += p
    if (byzantine.has(i)) bad += p
  }
  let was = 0
  let moved = 0
  for (const [i, p] of before) {
    was += p
    moved += Math.abs((after.get(i) ?? 0) - p)
  }
  for (const [i, p] of after) if (!before.has(i)) moved += p
  return after.size > 0 && 3 * bad < total && 3 * moved <= was
}

function applied(set: Powers, c: SetChange): Powers {
  const next = new Map(set)
  if (c.type === 'remove') next.delete(c.node)
  else next.set(c.node, c.power ?? 1)
  return next
}

/**
 * The set changes of a run, drawn from `rng`: one to three joiners (full nodes numbered after the genesis validators,
 * Byzantine now and then when the run has Byzantine validators), and either a rotation (every joiner added, then as
 * many genesis validators removed, Byzantine ones first) or, when that is not drawn or its first addition would leave
 * the Byzantine nodes a third of the power, one to four changes drawn at random (add a joiner outside the set, a
 * removed one included; remove a member; change a member's power to 1-3). Every step keeps the Byzantine power below
 * a third of the set and moves at most a third of the power; a draw that would not is drawn again, or dropped. A
 * Byzantine validator the plan removes often keeps signing after its removal (`linger`).
 */
function membershipPlan(
  rng: Rng,
  validators: number,
  faulty: number,
  powers: readonly number[] | undefined,
  byzantine: Readonly<Record<number, readonly Behaviour[]>>,
  repertoire: readonly Behaviour[],
  locks: boolean,
): { joiners: number; changes: SetChange[]; byzantine: Record<number, Behaviour[]> } {
  const joiners = 1 + rng.int(3)
  const nodes = validators + joiners
  const bad = new Map<number, Behaviour[]>(
    Object.entries(byzantine)
      .filter(([, b]) => b.length > 0)
      .map(([i, b]) => [Number(i), [...b]]),
  )
  for (let i = validators; i < nodes; i++) {
    if (faulty === 0 || !rng.chance(0.3)) continue
    bad.set(i, locks ? ['lockAttack'] : [rng.pick(repertoire)])
  }
  const byzantineNodes = new Set(bad.keys())
  const genesis: Powers = new Map(Array.from({ length: validators }, (_, i) => [i, powers?.[i] ?? 1]))
  const changes: SetChange[] = []
  let set = genesis
  const step = (c: SetChange): boolean => {
    const next = applied(set, c)
    if (!fairStep(set, next, byzantineNodes)) return false
    changes.push(c)
    set = next
    return true
  }
  if (rng.chance(0.25)) {
    const joining = [...Array(joiners).keys()].map((k) => validators + k).sort((a, b) => Number(byzantineNodes.has(a)) - Number(byzantineNodes.has(b)))
    for (const j of joining) if (!step({ type: 'add', node: j })) break
    const leaving = [...genesis.keys()].sort((a, b) => Number(byzantineNodes.has(b)) - Number(byzantineNodes.has(a)))
    for (const i of leaving.slice(0, changes.length)) if (!step({ type: 'remove', node: i })) break
  }
  if (changes.length === 0) {
    for (let k = 1 + rng.int(4); k > 0; k--) {
      for (let attempt = 0; attempt < 8; attempt++) {
        const members = [...set.keys()]
        const outside = [...Array(joiners).keys()].map((k) => validators + k).filter((i) => !set.has(i))
        const kind = rng.pick(outside.length > 0 ? (['add', 'add', 'remove', 'power'] as const) : (['remove', 'power'] as const))
        const c: SetChange =
          kind === 'add'
            ? { type: 'add', node: rng.pick(outside), ...(rng.chance(0.2) ? { power: 1 + rng.int(2) } : {}) }
            : kind === 'remove'
              ? { type: 'remove', node: rng.pick(members) }
              : { type: 'power', node: rng.pick(members), power: 1 + rng.int(3) }
        if (c.type === 'power' && set.get(c.node) === c.power) continue
        if (step(c)) break
      }
    }
  }
  for (const c of changes) {
    const b = bad.get(c.node)
    if (c.type === 'remove' && b !== undefined && !b.includes('linger') && rng.chance(0.7)) b.push('linger')
  }
  return { joiners, changes, byzantine: Object.fromEntries([...bad].map(([i, b]) => [i, [...b].sort()])) }
}

/** The options of the randomized run for this seed: those of {@link baseOptions}, with set changes when asked for. */
export function randomSimOptions(seed: number, o: RandomRunOptions): SimOptions {
  const base = baseOptions(seed, o)
  if (o.membership !== true) return base
  const rng = new Rng(seed ^ 0x3e3b)
  const plan = membershipPlan(
    rng,
    o.validators,
    o.faulty,
    base.powers,
    base.byzantine ?? {},
    o.repertoire ?? BYZANTINE_REPERTOIRE,
    base.lockAdversary !== undefined,
  )
  const joiners = [...Array(plan.joiners).keys()].map((k) => o.validators + k)
  // joiners take a side of each partition, and honest ones sometimes lose power too
  const partitions = (base.network?.partitions ?? []).map((p) => {
    const side = joiners.map(() => rng.int(p.groups.length))
    return { ...p, groups: p.groups.map((g, k) => [...g, ...joiners.filter((_, x) => side[x] === k)]) }
  })
  const honestJoiners = joiners.filter((j) => plan.byzantine[j] === undefined)
  const crashes = { ...base.crashes, ...crashPlans(rng, honestJoiners, base.network?.gst ?? 0, 0.3, o.wipes !== false) }
  const skews = { ...base.skews }
  for (const j of joiners) if (rng.chance(0.2)) skews[j] = rng.int(1_001) - 500
  return {
    ...base,
    joiners: plan.joiners,
    byzantine: plan.byzantine,
    crashes,
    skews,
    network: { ...base.network, partitions },
    membership: { changes: plan.changes, afterHeight: 1 + rng.int(3) },
  }
}

/** The options of the randomized run for this seed without set changes. */
function baseOptions(seed: number, o: RandomRunOptions): SimOptions {
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
      seed,
      validators: n,
      heights: o.heights ?? 5,
      byzantine,
      powers: drawPowers(rng, n, byzantineNodes),
      host,
      clients,
      network: {
        gst,
        minDelay: 1,
        preGstMaxDelay: 40 + rng.int(200),
        delta: 20 + rng.int(100),
        loss: rng.chance(0.2) ? 0.02 : 0,
        duplicate: rng.float() * 0.05,
        partitions: [],
      },
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
    seed,
    validators: n,
    heights: o.heights ?? 4,
    byzantine,
    powers: drawPowers(rng, n, byzantineNodes),
    host,
    clients,
    network: {
      gst,
      minDelay: 1,
      preGstMaxDelay: 200 + rng.int(1_500),
      delta: 20 + rng.int(150),
      loss: rng.chance(0.5) ? rng.float() * 0.3 : 0,
      duplicate: rng.float() * 0.1,
      partitions,
    },
    crashes: crashPlans(rng, honest, gst, 0.5, o.wipes !== false),
    ...validityFaults(rng, n, honest, gst),
  }
}

/** A one-line description of a run's faults, for failure reports. */
export function describeRun(options: SimOptions): string {
  const plan = options.membership?.changes ?? []
  const sets = plan.length === 0 ? '' : ` joiners=${options.joiners ?? 0} changes=[${plan.map(describeChange).join(', ')}]`
  const byz =
    Object.entries(options.byzantine ?? {})
      .map(([i, b]) => `${i}:${b.join('+')}`)
      .join(' ') || 'none'
  const crashes =
    Object.entries(options.crashes ?? {})
      .map(
        ([i, ps]) =>
          `${i}:${ps.map((p) => (p.atOp ? `${p.atOp.op}#${p.atOp.nth}/${p.atOp.phase}` : `t${p.atMs}`) + (p.wipe === true ? '+wipe' : '')).join(',')}`,
      )
      .join(' ') || 'none'
  const net = options.network ?? {}
  return (
    `n=${options.validators} ${options.lockAdversary ? 'locks' : 'random'} byzantine=[${byz}] crashes=[${crashes}] gst=${net.gst} ` +
    `loss=${(net.loss ?? 0).toFixed(2)} partitions=${net.partitions?.length ?? 0} powers=${options.powers?.join(',') ?? 'equal'}${sets}`
  )
}
