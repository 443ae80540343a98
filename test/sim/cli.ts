import { availableParallelism } from 'node:os'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { Command, InvalidArgumentError, Option } from 'commander'
import { addCoverage, emptyTotals, formatTotals, mergeTotals, type CoverageTotals } from './coverage.js'
import { replayCommand } from './campaign.js'
import { describeRun, randomSimOptions, type Schedule } from './randomScenario.js'
import { runSimulation, type Behaviour } from './simulation.js'
import { BYZANTINE_REPERTOIRE } from './byzantine.js'

/**
 * `npm run sim -- --validators N --faulty F --runs R --seed S [--heights H] [--schedule random|locks|mixed] [--membership] [--jobs J]`:
 * R randomized simulations from seed S on (run i uses seed S+i), F Byzantine validators each, on J worker threads;
 * with `--membership`, each run also changes its validator set by governance (randomScenario.ts).
 * Prints every violation with the command that replays its seed, the campaign's coverage (locks, relocks, unlocks,
 * rounds, crashes, syncs) and its speed; exits 1 if there was any violation. The last line is exactly
 * `R runs, V violations`. `--trace` (with `--runs 1`) prints every node's log of the run. On worker threads, a run
 * whose worker dies (`--worker-heap` MB of heap) or that takes more than `--run-timeout` seconds is a failed run of
 * its seed, and the campaign goes on.
 */

interface Settings {
  readonly validators: number
  readonly faulty: number
  readonly runs: number
  readonly seed: number
  readonly heights?: number
  readonly schedule: Schedule
  readonly repertoire?: readonly Behaviour[]
  readonly wipes: boolean
  readonly membership: boolean
  readonly jobs: number
  readonly verbose: boolean
  readonly trace: boolean
  readonly stopOnFailure: boolean
  /** Real time a run may take on a worker before it is stopped and reported as failed. */
  readonly runTimeoutS: number
  /** Heap limit of each worker in MB (undefined: Node's default). */
  readonly workerHeapMb?: number
}

/** What a worker reports per run. */
interface RunReport {
  readonly seed: number
  readonly lines: string[]
  readonly totals: CoverageTotals
  readonly summary: string
}

/**
 * Promises a run's code let reject with nobody waiting (a failure the code under test dropped). A thread runs one
 * simulation at a time, so what is caught while it runs is that run's, reported as its violation with its seed
 * instead of ending the process with every run after it.
 */
let unhandled: unknown[] = []
process.on('unhandledRejection', (e) => {
  unhandled.push(e)
})

async function runOne(s: Settings, seed: number): Promise<RunReport> {
  const options = randomSimOptions(seed, s)
  const trace = s.trace
    ? {
        trace: (node: number, time: number, line: { level: string; message: string; fields: Record<string, unknown> }) =>
          console.log(`${time} v${node} ${line.level} ${line.message} ${JSON.stringify(line.fields, jsonBytes)}`),
      }
    : {}
  let lines: string[]
  let summary = ''
  const totals = emptyTotals()
  unhandled = []
  try {
    const r = await runSimulation({ ...options, ...trace })
    addCoverage(totals, r.coverage)
    lines = r.violations.map((v) => `${v.kind} violation: ${v.detail} (t=${v.time} ms)`)
    const sets = r.coverage.setChangesPlanned === 0 ? '' : `, set changes ${r.coverage.setChanges}/${r.coverage.setChangesPlanned} (${describeRun(options)})`
    summary = `${r.violations.length} violations, ${r.events} events, t=${r.endTime} ms, max round ${r.coverage.maxRound}, relocks ${r.coverage.relocks}, unlocks ${r.coverage.l28Unlocks}, diverging ${r.coverage.divergingLockHeights.size}${sets}`
  } catch (e) {
    lines = [`invariant broken: ${(e as Error).stack ?? (e as Error).message}`]
  }
  // one more turn, for a rejection of the run's last events to be reported
  await new Promise((resolve) => setImmediate(resolve))
  for (const e of unhandled) lines.push(`invariant broken: unhandled rejection: ${(e as Error)?.stack ?? String(e)}`)
  unhandled = []
  return { seed, lines: lines.map((l) => `${l} (${describeRun(options)})`), totals, summary }
}

function jsonBytes(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return String(v)
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex').slice(0, 16)
  return v
}

/** What a worker posts: that a run starts (for the watchdog), or a run's report. */
type WorkerMessage = { readonly start: number } | { readonly report: RunReport }

async function worker(): Promise<void> {
  const { settings, seeds } = workerData as { settings: Settings; seeds: number[] }
  for (const seed of seeds) {
    parentPort!.postMessage({ start: seed } satisfies WorkerMessage)
    parentPort!.postMessage({ report: await runOne(settings, seed) } satisfies WorkerMessage)
  }
}

/** The report of a run its worker did not finish (it ran out of memory, failed, or overran the run timeout). */
function lostRun(s: Settings, seed: number, why: string): RunReport {
  return { seed, lines: [`run did not end: ${why} (${describeRun(randomSimOptions(seed, s))})`], totals: emptyTotals(), summary: `did not end: ${why}` }
}

/**
 * Runs `seeds` in order on worker threads, one after another, reporting each. A worker that dies or overruns the
 * run timeout costs the run it was in (reported as failed, with its seed) and nothing else: the next seeds go on in
 * a new worker.
 */
function runOnWorkers(s: Settings, seeds: readonly number[], report: (r: RunReport) => void, stopped: () => boolean, workers: Set<Worker>): Promise<void> {
  return new Promise<void>((resolve) => {
    const spawn = (rest: readonly number[]): void => {
      if (rest.length === 0 || stopped()) {
        resolve()
        return
      }
      const resourceLimits = s.workerHeapMb === undefined ? undefined : { maxOldGenerationSizeMb: s.workerHeapMb }
      const w = new Worker(new URL(import.meta.url), { workerData: { settings: s, seeds: rest }, resourceLimits })
      workers.add(w)
      let done = 0
      let running: number | undefined
      let lost = false
      let watchdog: NodeJS.Timeout | undefined
      const lose = (why: string): void => {
        if (lost) return
        lost = true
        clearTimeout(watchdog)
        const seed = running ?? rest[done]
        if (seed !== undefined) report(lostRun(s, seed, why))
        void w.terminate()
      }
      w.on('message', (m: WorkerMessage) => {
        // a worker being terminated may still deliver what it posted: its lost seed is reported once, as lost, and the
        // seeds after it go to the next worker
        if (lost) return
        if ('start' in m) {
          running = m.start
          clearTimeout(watchdog)
          watchdog = setTimeout(() => lose(`it ran for more than ${s.runTimeoutS} s of real time`), s.runTimeoutS * 1000)
          return
        }
        clearTimeout(watchdog)
        running = undefined
        done++
        report(m.report)
        if (stopped()) for (const x of workers) void x.terminate()
      })
      w.on('error', (e) => lose(`its worker failed: ${e.message}`))
      w.on('exit', (code) => {
        clearTimeout(watchdog)
        workers.delete(w)
        if (!lost && done < rest.length && !stopped()) lose(`its worker exited with code ${code}`)
        const next = rest.slice(done + (lost ? 1 : 0))
        spawn(stopped() ? [] : next)
      })
    }
    spawn(seeds)
  })
}

function int(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
    return n
  }
}

async function main(): Promise<void> {
  const program = new Command()
    .name('sim')
    .description('randomized simulations of Tally validators (real consensus hosts) with Byzantine peers, crashes and an adversarial network')
    .option('--validators <n>', 'number of validators', int('validators', 1), 4)
    .option('--faulty <f>', 'Byzantine validators per run', int('faulty', 0), 1)
    .option('--runs <r>', 'number of runs', int('runs', 1), 100)
    .option('--seed <s>', 'first seed (run i uses seed s+i)', int('seed', 0), 1)
    .option('--heights <h>', 'heights each run must commit (default: 4, or 5 for lock schedules)', int('heights', 1))
    .addOption(new Option('--schedule <kind>', 'random faults, the lock adversary, or a mix').choices(['random', 'locks', 'mixed']).default('mixed'))
    .option('--repertoire <behaviours>', `Byzantine behaviours random schedules draw from, comma-separated (default ${BYZANTINE_REPERTOIRE.join(',')})`)
    .option('--no-wipes', 'crashed validators always restart with their data/ (by default some restart with it deleted)')
    .option('--membership', 'mix validator-set changes into each run: joiners, additions, removals, power changes, rotations')
    .option('--jobs <j>', 'worker threads', int('jobs', 1), Math.min(2, availableParallelism()))
    .option('--verbose', 'print one line per run')
    .option('--trace', "print every node's log (use with --runs 1)")
    .option('--stop-on-failure', 'stop at the first run with a violation')
    .option('--run-timeout <s>', 'seconds of real time a run may take with --jobs 2 or more; past it, the run fails', int('run-timeout', 1), 900)
    .option('--worker-heap <mb>', "each worker's heap limit in MB with --jobs 2 or more (a run past it fails)", int('worker-heap', 1))
    .parse()
  const o = program.opts<{
    validators: number
    faulty: number
    runs: number
    seed: number
    heights?: number
    schedule: Schedule
    repertoire?: string
    wipes?: boolean
    membership?: boolean
    jobs: number
    verbose?: boolean
    trace?: boolean
    stopOnFailure?: boolean
    runTimeout: number
    workerHeap?: number
  }>()
  if (o.faulty > o.validators) program.error('--faulty cannot exceed --validators')
  const known: readonly string[] = [...BYZANTINE_REPERTOIRE, 'lockAttack', 'splitBrain', 'slotFlood', 'linger']
  const repertoire = o.repertoire
    ?.split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0) as Behaviour[] | undefined
  const unknown = repertoire?.find((b) => !known.includes(b))
  if (unknown !== undefined) program.error(`--repertoire: unknown behaviour ${unknown} (known: ${known.join(', ')})`)
  if (repertoire !== undefined && repertoire.length === 0) program.error('--repertoire names no behaviour')
  const s: Settings = {
    validators: o.validators,
    faulty: o.faulty,
    runs: o.runs,
    seed: o.seed,
    heights: o.heights,
    schedule: o.schedule,
    repertoire,
    wipes: o.wipes !== false,
    membership: o.membership === true,
    jobs: Math.min(o.jobs, o.runs),
    verbose: o.verbose === true,
    trace: o.trace === true,
    stopOnFailure: o.stopOnFailure === true,
    runTimeoutS: o.runTimeout,
    workerHeapMb: o.workerHeap,
  }
  const f = Math.floor((s.validators - 1) / 3)
  if (s.faulty > f) console.log(`note: ${s.faulty} faulty exceeds f = ${f} for n = ${s.validators}; liveness is not checked (agreement and validity are)`)

  const started = performance.now()
  const totals = emptyTotals()
  let violations = 0
  let done = 0
  let stopped = false
  const pending = new Map<number, RunReport>()
  let next = s.seed
  const workers = new Set<Worker>()
  const report = (r: RunReport) => {
    pending.set(r.seed, r)
    while (pending.has(next) && !stopped) {
      const x = pending.get(next)!
      pending.delete(next)
      next++
      done++
      mergeTotals(totals, x.totals)
      if (s.verbose) console.log(`seed ${x.seed}: ${x.summary}`)
      for (const line of x.lines) {
        violations++
        console.log(`seed ${x.seed}: ${line}`)
      }
      if (x.lines.length > 0) {
        console.log(`  replay: ${replayCommand(s, x.seed)}`)
        if (s.stopOnFailure) stopped = true
      }
    }
  }
  if (s.jobs <= 1) {
    for (let i = 0; i < s.runs && !stopped; i++) report(await runOne(s, s.seed + i))
  } else {
    await Promise.all(
      Array.from({ length: s.jobs }, (_, k) => {
        const seeds: number[] = []
        for (let i = k; i < s.runs; i += s.jobs) seeds.push(s.seed + i)
        return runOnWorkers(s, seeds, report, () => stopped, workers)
      }),
    )
  }
  const seconds = (performance.now() - started) / 1000
  console.log(`coverage: ${formatTotals(totals)}`)
  console.log(`elapsed ${seconds.toFixed(1)} s, ${(done / seconds).toFixed(2)} runs/s on ${s.jobs} worker${s.jobs === 1 ? '' : 's'}`)
  console.log(`${done} runs, ${violations} violations`)
  process.exitCode = violations > 0 ? 1 : 0
}

if (isMainThread) await main()
else await worker()
