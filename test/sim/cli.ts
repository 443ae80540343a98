import { Command, InvalidArgumentError } from 'commander'
import { describeRun, randomSimOptions } from './randomScenario.js'
import { runSimulation } from './simulation.js'

/**
 * `npm run sim -- --validators N --faulty F --runs R --seed S [--heights H]`: R randomized consensus simulations
 * from seed S on, F Byzantine validators each. Prints every violation with the seed that replays it
 * (`--runs 1 --seed <seed>`); exits 1 if there was any. The last line is exactly `R runs, V violations`.
 */

function int(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
    return n
  }
}

const program = new Command()
  .name('sim')
  .description('randomized Tendermint simulations with Byzantine validators and an adversarial network')
  .option('--validators <n>', 'number of validators', int('validators', 1), 4)
  .option('--faulty <f>', 'Byzantine validators per run', int('faulty', 0), 1)
  .option('--runs <r>', 'number of runs', int('runs', 1), 100)
  .option('--seed <s>', 'first seed (run i uses seed s+i)', int('seed', 0), 1)
  .option('--heights <h>', 'heights each run must decide', int('heights', 1), 3)
  .option('--verbose', 'print one line per run')
  .parse()

const opts = program.opts<{ validators: number; faulty: number; runs: number; seed: number; heights: number; verbose?: boolean }>()
if (opts.faulty > opts.validators) program.error('--faulty cannot exceed --validators')
const f = Math.floor((opts.validators - 1) / 3)
if (opts.faulty > f) console.log(`note: ${opts.faulty} faulty exceeds f = ${f} for n = ${opts.validators}; liveness is not checked (agreement and validity are)`)

let violations = 0
const started = performance.now()
for (let i = 0; i < opts.runs; i++) {
  const seed = opts.seed + i
  const options = randomSimOptions(seed, { validators: opts.validators, faulty: opts.faulty, heights: opts.heights })
  let result
  try {
    result = runSimulation(options)
  } catch (e) {
    violations++
    console.log(`seed ${seed}: invariant broken: ${(e as Error).message} (${describeRun(options)})`)
    console.log(`  replay: npm run sim -- --validators ${opts.validators} --faulty ${opts.faulty} --heights ${opts.heights} --runs 1 --seed ${seed}`)
    continue
  }
  if (opts.verbose) console.log(`seed ${seed}: ${result.violations.length} violations, ${result.steps} steps, t=${result.endTime} ms (${describeRun(options)})`)
  for (const v of result.violations) {
    violations++
    console.log(`seed ${seed}: ${v.kind} violation: ${v.detail} (${describeRun(options)})`)
    console.log(`  replay: npm run sim -- --validators ${opts.validators} --faulty ${opts.faulty} --heights ${opts.heights} --runs 1 --seed ${seed}`)
  }
}
console.log(`elapsed ${((performance.now() - started) / 1000).toFixed(1)} s`)
console.log(`${opts.runs} runs, ${violations} violations`)
process.exitCode = violations > 0 ? 1 : 0
