import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addCoverage, emptyTotals, formatTotals, type CoverageTotals } from './coverage.js'
import { describeRun, randomSimOptions, type Schedule } from './randomScenario.js'
import { runSimulation, type Behaviour } from './simulation.js'

/** A randomized campaign: `runs` runs from `firstSeed` on. */
export interface CampaignOptions {
  readonly validators: number
  readonly faulty: number
  readonly runs: number
  readonly firstSeed: number
  readonly heights?: number
  readonly schedule?: Schedule
  readonly repertoire?: readonly Behaviour[]
  readonly wipes?: boolean
  /** Mix changes of the validator set into the runs. */
  readonly membership?: boolean
}

/** One failed run: its seed and what broke. */
export interface CampaignFailure {
  readonly seed: number
  readonly lines: readonly string[]
}

/** Runs a campaign; every violation of every run is reported with its seed. */
export async function runCampaign(
  o: CampaignOptions,
  onRun?: (seed: number, lines: readonly string[]) => void,
): Promise<{ failures: CampaignFailure[]; totals: CoverageTotals }> {
  const totals = emptyTotals()
  const failures: CampaignFailure[] = []
  for (let seed = o.firstSeed; seed < o.firstSeed + o.runs; seed++) {
    const options = randomSimOptions(seed, o)
    const result = await runSimulation(options)
    addCoverage(totals, result.coverage)
    const lines = result.violations.map((v) => `${v.kind}: ${v.detail} (t=${v.time} ms; ${describeRun(options)})`)
    if (lines.length > 0) failures.push({ seed, lines })
    onRun?.(seed, lines)
  }
  return { failures, totals }
}

/** The command that replays one seed of a campaign. */
export function replayCommand(o: Omit<CampaignOptions, 'runs' | 'firstSeed'>, seed: number): string {
  const heights = o.heights === undefined ? '' : ` --heights ${o.heights}`
  const repertoire = o.repertoire === undefined ? '' : ` --repertoire ${o.repertoire.join(',')}`
  const wipes = o.wipes === false ? ' --no-wipes' : ''
  const membership = o.membership === true ? ' --membership' : ''
  return `npm run sim -- --validators ${o.validators} --faulty ${o.faulty} --schedule ${o.schedule ?? 'mixed'}${heights}${repertoire}${wipes}${membership} --runs 1 --seed ${seed}`
}

/**
 * Registers a campaign as one test: every run must keep every invariant (checker.ts), and the campaign's coverage is
 * reported as a diagnostic. `expect` names coverage counters that must not stay at zero (a lock campaign that stops
 * relocking has lost its point).
 */
export function campaign(
  name: string,
  o: CampaignOptions,
  expect: readonly ('relocks' | 'l28Unlocks' | 'divergingLocks' | 'crashes' | 'syncedBlocks' | 'invalidVerdicts' | 'setChanges')[] = [],
): void {
  test(`${name}: ${o.runs} randomized runs from seed ${o.firstSeed} keep agreement, validity, safe signing, bounds and liveness`, async (t) => {
    const { failures, totals } = await runCampaign(o)
    t.diagnostic(`${name} coverage: ${formatTotals(totals)}`)
    assert.deepEqual(
      failures.map((f) => `seed ${f.seed}: ${f.lines.join('; ')} — replay: ${replayCommand(o, f.seed)}`),
      [],
    )
    for (const k of expect) assert.ok(totals[k] > 0, `${name}: no ${k} in ${o.runs} runs (${formatTotals(totals)})`)
  })
}
