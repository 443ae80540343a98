import { Rng } from '../helpers/random.js'
import { BYZANTINE_REPERTOIRE, runSimulation, type Behaviour, type Partition, type SimOptions, type SimResult } from './simulation.js'

/**
 * Randomized scenarios: everything about a run (which validators are Byzantine and how, network delays,
 * loss, duplication, partitions, GST, powers) is drawn from the seed, so `seed` alone replays a run.
 */

/** What a randomized campaign fixes; the rest comes from the seed. */
export interface RandomRunOptions {
  readonly validators: number
  readonly faulty: number
  readonly heights?: number
}

/** The options of the randomized run for this seed. */
export function randomSimOptions(seed: number, o: RandomRunOptions): SimOptions {
  const rng = new Rng(seed ^ 0x5eed)
  const n = o.validators
  const order = [...Array(n).keys()]
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const byzantine: Record<number, Behaviour[]> = {}
  for (const i of order.slice(0, o.faulty)) {
    const count = 1 + rng.int(2)
    const set = new Set<Behaviour>()
    while (set.size < count) set.add(rng.pick(BYZANTINE_REPERTOIRE))
    byzantine[i] = [...set].sort()
  }
  const gst = rng.int(4000)
  const partitions: Partition[] = []
  if (rng.chance(0.4)) {
    // A partition that heals by GST: a random split of the validators.
    const start = rng.int(Math.max(1, gst))
    const end = Math.min(gst, start + 500 + rng.int(3000))
    const a = order.filter(() => rng.chance(0.5))
    const b = order.filter((i) => !a.includes(i))
    if (a.length > 0 && b.length > 0 && end > start) partitions.push({ start, end, groups: [a, b] })
  }
  // Equal powers mostly; sometimes unequal ones, kept such that the Byzantine power stays below a third.
  let powers: number[] | undefined
  if (rng.chance(0.25)) {
    powers = order.map(() => 1 + rng.int(3))
    const total = powers.reduce((x, y) => x + y, 0)
    let bad = Object.keys(byzantine).reduce((x, i) => x + powers![Number(i)]!, 0)
    for (const i of Object.keys(byzantine).map(Number)) {
      if (bad * 3 < total - 0) break
      bad -= powers[i]! - 1
      powers[i] = 1
    }
    if (bad * 3 >= powers.reduce((x, y) => x + y, 0)) powers = undefined
  }
  return {
    seed,
    validators: n,
    powers,
    byzantine,
    heights: o.heights ?? 3,
    network: {
      gst,
      minDelay: 1,
      preGstMaxDelay: 200 + rng.int(2000),
      delta: 20 + rng.int(150),
      loss: rng.chance(0.5) ? rng.float() * 0.3 : 0,
      duplicate: rng.float() * 0.1,
      partitions,
    },
  }
}

/** Runs the randomized scenario of one seed. */
export function runRandom(seed: number, o: RandomRunOptions): SimResult {
  return runSimulation(randomSimOptions(seed, o))
}

/** A one-line description of a run's faults, for failure reports. */
export function describeRun(options: SimOptions): string {
  const byz = Object.entries(options.byzantine ?? {}).map(([i, b]) => `${i}:${b.join('+')}`).join(' ') || 'none'
  const net = options.network ?? {}
  return `n=${options.validators} byzantine=[${byz}] gst=${net.gst} loss=${(net.loss ?? 0).toFixed(2)} partitions=${net.partitions?.length ?? 0}`
}
