import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeRun, randomSimOptions } from './randomScenario.js'
import { runSimulation } from './simulation.js'

/**
 * Registers a randomized campaign as one test: `runs` runs from `firstSeed` with `faulty` Byzantine validators
 * (behaviours drawn from the repertoire) on a random network; every run must keep agreement, validity and
 * liveness. A failure names the seed, which replays with
 * `npm run sim -- --validators N --faulty F --heights 2 --runs 1 --seed SEED`.
 */
export function campaign(validators: number, faulty: number, runs: number, firstSeed: number): void {
  test(`n${validators}f${faulty}: ${runs} randomized runs from seed ${firstSeed} keep agreement, validity and liveness`, () => {
    const failures: string[] = []
    for (let seed = firstSeed; seed < firstSeed + runs; seed++) {
      const options = randomSimOptions(seed, { validators, faulty, heights: 2 })
      const result = runSimulation(options)
      for (const v of result.violations) failures.push(`seed ${seed}: ${v.kind}: ${v.detail} (${describeRun(options)})`)
    }
    assert.deepEqual(failures, [])
  })
}
