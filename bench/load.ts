import { fork, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { keyPairFromSeed, sign, verify } from '../crypto/ed25519.js'
import { sharedHostVerifyWorkers } from '../node/cli/testnetFiles.js'
import { nodeProcessEnv } from '../node/memorySettings.js'

/**
 * `npm run bench -- --validators N [--json FILE]`: the load benchmark on loopback.
 *
 * Starts N validators from a generated testnet with many funded accounts, pre-signs transfers in a separate submitter
 * process, and submits them over JSON-RPC batches: first at saturation, then open loop at half the measured
 * saturation rate; each phase after a warm-up at its rate that is not measured (`--warmup`, `--rate-warmup`). Reports committed transactions per second (from the blocks' own times), submit-to-commit latency
 * percentiles, CPU and peak RSS per validator (with its anonymous and file-backed parts), each phase's CPU by process
 * (validators, submitter, the bench itself, the rest of the machine) and per committed transfer, and the machine's
 * Ed25519 ceiling measured in the same run:
 * verifyCeilingTps = cores × single-core verifications per second ÷ validators (every validator verifies every
 * transaction once).
 *
 * The validators share the machine, so each gets the verification threads of its share of the cores, as
 * `tallyd testnet` writes them for validators on one host: floor(cores ÷ validators) − 1, from 0 to 4 (a worker
 * thread adds no capacity to a validator without a core of its own, only hand-offs). `--verify-workers` overrides it.
 * They run in the environment docs/operations.md recommends (`MALLOC_ARENA_MAX=2`, {@link nodeProcessEnv}) unless
 * the bench's own environment sets `MALLOC_ARENA_MAX` (0 is glibc's default).
 */

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..')
const TALLYD = join(root, 'bin', 'tallyd.js')

const program = new Command()
  .name('bench')
  .option('--validators <n>', 'validators to start', '4')
  .option('--accounts <n>', 'funded accounts; the first --senders of them send (beyond those, addresses without keys, each a recipient)', '2000')
  .option('--senders <n>', 'accounts that send transfers (default: --accounts, at most 2000)')
  .option('--seconds <n>', 'length of each phase in seconds', '15')
  .option('--warmup <n>', 'seconds of load before the measured phases, not measured (0: none)', '10')
  .option('--rate-warmup <n>', 'seconds at the half rate before that phase is measured, not measured (0: none)', '5')
  .option('--batch <n>', 'transactions per JSON-RPC batch (the node accepts 100 by default)', '100')
  .option('--outstanding <n>', 'at saturation, most transactions between submission and commit', '4000')
  .option('--json <file>', 'write the results as JSON')
  .option('--keep', 'keep the testnet directory')
  .option('--profile <dir>', 'run the validators under --cpu-prof, writing profiles to DIR')
  .option('--rate <n>', 'skip the saturation phase: run open loop at this rate (tx/s) only')
  .option('--resync', 'after the load, stop the last validator, delete its data/, restart it and time its catch-up')
  .option('--resync-seconds <n>', 'with --resync: seconds of load, not measured, before the resync (a longer history)', '0')
  .option('--resync-rate <n>', 'with --resync-seconds: the rate of that load in tx/s (0: saturated; a lower rate makes smaller blocks)', '0')
  .option('--verify-workers <n>', "set the validators' mempool.verifyWorkers (default: the cores each validator has to itself, less one, from 0 to 4)")
  .option('--min-block-interval <ms>', "set the validators' consensus.minBlockIntervalMs (default: the node's default)")
  .parse()
const opts = program.opts<{
  validators: string
  accounts: string
  seconds: string
  warmup: string
  rateWarmup: string
  batch: string
  outstanding: string
  json?: string
  keep?: boolean
  profile?: string
  rate?: string
  verifyWorkers?: string
  minBlockInterval?: string
  resync?: boolean
  resyncSeconds: string
  resyncRate: string
  senders?: string
}>()
const N = positive(opts.validators, '--validators')
const ACCOUNTS = positive(opts.accounts, '--accounts')
const SENDERS =
  opts.senders === undefined
    ? Math.min(ACCOUNTS, 2000)
    : integerIn(opts.senders, 1, Math.min(ACCOUNTS, 100_000), '--senders', 'a positive integer, at most --accounts and 100000')
/** Funded addresses without keys: with the faucet and the senders, --accounts in all. */
const UNKEYED = ACCOUNTS > SENDERS ? ACCOUNTS - SENDERS - 1 : 0
const SECONDS = positive(opts.seconds, '--seconds')
const WARMUP = integerIn(opts.warmup, 0, 3600, '--warmup', 'a whole number of seconds from 0 to 3600')
// with --rate, the warm-up already runs at that rate
const RATE_WARMUP = opts.rate === undefined ? integerIn(opts.rateWarmup, 0, 3600, '--rate-warmup', 'a whole number of seconds from 0 to 3600') : 0
const BATCH = positive(opts.batch, '--batch')
const OUTSTANDING = positive(opts.outstanding, '--outstanding')
const RATE = opts.rate === undefined ? undefined : positive(opts.rate, '--rate')
const RESYNC_SECONDS = opts.resync ? integerIn(opts.resyncSeconds, 0, 3600, '--resync-seconds', 'a whole number of seconds from 0 to 3600') : 0
const RESYNC_RATE = integerIn(opts.resyncRate, 0, 1_000_000, '--resync-rate', 'a whole number of transactions a second from 0 to 1000000')

function positive(v: string, name: string): number {
  return integerIn(v, 1, Number.MAX_SAFE_INTEGER, name, 'a positive integer')
}

function integerIn(v: string, min: number, max: number, name: string, what: string): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
    console.error(`bench: ${name} must be ${what}`)
    process.exit(2)
  }
  return n
}

function verifyRate(): number {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(5))
  const msgs = Array.from({ length: 256 }, (_, i) => new Uint8Array([i, 1, 2, 3, 4, 5, 6, 7]))
  const sigs = msgs.map((m) => sign(kp.secretKey, m))
  for (let i = 0; i < 2000; i++) verify(kp.publicKey, msgs[i % 256]!, sigs[i % 256]!)
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < 1000) {
    for (let i = 0; i < 256; i++) if (verify(kp.publicKey, msgs[i]!, sigs[i]!)) n++
  }
  return n / ((performance.now() - t0) / 1000)
}

async function rpc(url: string, method: string, params: unknown[] = []): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(5000),
  })
  const body = (await res.json()) as { result?: unknown; error?: { message: string } }
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result
}

/** Clock ticks per second of /proc's CPU counters (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100

function round2(x: number): number {
  return Math.round(x * 100) / 100
}

/** The monotonic clock in µs, the clock of V8's CPU profiles' timestamps. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/**
 * A process's resident memory (all of it, and its anonymous and file-backed parts: a validator's file-backed pages are
 * the node executable's and libraries' (~45 MB) and LevelDB's memory-mapped table files, the kernel's page cache)
 * and its CPU time so far.
 */
function procStats(pid: number): { rssMb: number; anonMb: number; fileMb: number; cpuSec: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024
    const rss = kb('VmRSS')
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    const ticks = Number(stat[11]) + Number(stat[12])
    return { rssMb: rss, anonMb: kb('RssAnon'), fileMb: kb('RssFile'), cpuSec: ticks / CLOCK_TICKS }
  } catch {
    return undefined
  }
}

/** CPU seconds of a process's main thread (its JavaScript, beside the thread pool's and V8's own threads). */
function mainThreadCpuSec(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(stat[11]) + Number(stat[12])) / CLOCK_TICKS
  } catch {
    return undefined
  }
}

/** The machine's CPU time counters (all cores, in clock ticks): busy and total, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const idle = fields[3]! + (fields[4] ?? 0)
    const total = fields.reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

function bar(done: number, total: number, label: string): void {
  if (!process.stdout.isTTY) return
  const width = 30
  const filled = Math.round((done / total) * width)
  process.stdout.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round((done / total) * 100)}%  `)
  if (done >= total) process.stdout.write('\n')
}

function ask(child: ChildProcess, msg: unknown): Promise<any> {
  return new Promise((resolveMsg, reject) => {
    child.once('message', (m: any) => (m.error ? reject(new Error(m.error)) : resolveMsg(m)))
    child.send(msg as object)
  })
}

async function main(): Promise<void> {
  const cores = availableParallelism()
  const verifyWorkers =
    opts.verifyWorkers === undefined ? sharedHostVerifyWorkers(N, cores) : integerIn(opts.verifyWorkers, 0, 64, '--verify-workers', 'an integer from 0 to 64')
  console.log(`bench: ${N} validators on loopback, ${cores} cores (${cpus()[0]?.model ?? 'cpu'}), ${Math.round(totalmem() / 2 ** 30)} GiB`)
  const minBlockInterval =
    opts.minBlockInterval === undefined ? undefined : integerIn(opts.minBlockInterval, 0, 60_000, '--min-block-interval', 'an integer from 0 to 60000')
  if (minBlockInterval !== undefined) console.log(`bench: validators propose no sooner than ${minBlockInterval} ms into a height (--min-block-interval)`)
  console.log(`bench: ${verifyWorkers} signature verification thread${verifyWorkers === 1 ? '' : 's'} per validator (--verify-workers)`)
  console.log(`bench: validators' MALLOC_ARENA_MAX=${nodeProcessEnv().MALLOC_ARENA_MAX} (set it in the bench's environment to choose; 0: glibc's default)`)
  const single = verifyRate()
  const verifyCeilingTps = (cores * single) / N
  console.log(`bench: Ed25519 verify ${Math.round(single)}/s on one core → ceiling ${Math.round(verifyCeilingTps)} tx/s`)

  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-'))
  const procs: ChildProcess[] = []
  const peak = new Array(N).fill(0)
  /** Each validator's anonymous and file-backed memory at its peak RSS, and its highest anonymous memory. */
  const atPeak = Array.from({ length: N }, () => ({ anonMb: 0, fileMb: 0, maxAnonMb: 0 }))
  const cpuStart: number[] = []
  let sampler: NodeJS.Timeout | undefined
  const submitter = fork(join(root, 'dist', 'bench', 'submitter.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  try {
    const base = 30000 + (process.pid % 5000)
    const gen = spawn(
      process.execPath,
      [
        TALLYD,
        'testnet',
        '--validators',
        String(N),
        '--out',
        dir,
        '--chain-id',
        'tally-bench',
        '--p2p-port',
        String(base),
        '--rpc-port',
        String(base + 100),
        '--accounts',
        String(SENDERS),
        '--unkeyed-accounts',
        String(UNKEYED),
        '--balance',
        '1000000000000',
        '--verify-workers',
        String(verifyWorkers),
      ],
      { stdio: 'inherit' },
    )
    await new Promise<void>((r, j) => gen.on('exit', (c) => (c === 0 ? r() : j(new Error('tallyd testnet failed')))))
    if (minBlockInterval !== undefined) {
      for (let i = 0; i < N; i++) {
        const file = join(dir, `node${i}`, 'config.json')
        const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
        writeFileSync(file, `${JSON.stringify({ ...config, consensus: { minBlockIntervalMs: minBlockInterval } }, null, 2)}\n`)
      }
    }
    const urls = Array.from({ length: N }, (_, i) => `http://127.0.0.1:${base + 100 + i}`)
    const seeding = UNKEYED > 0 ? await seedOnce(dir, urls[0]!) : undefined
    for (let i = 0; i < N; i++) {
      const log = openSync(join(dir, `node${i}.log`), 'a')
      const prof = opts.profile ? ['--cpu-prof', '--cpu-prof-dir', resolve(opts.profile)] : []
      procs.push(spawn(process.execPath, [...prof, TALLYD, 'start', '--home', join(dir, `node${i}`)], { stdio: ['ignore', log, log], env: nodeProcessEnv() }))
      closeSync(log)
    }
    // a validator seeds the genesis accounts at its first start: allow for a million of them
    const startSeconds = 60 + Math.ceil(ACCOUNTS / 2_000)
    const deadline = Date.now() + startSeconds * 1000
    for (;;) {
      const hs = await Promise.all(
        urls.map((u) =>
          rpc(u, 'node_status').then(
            (s) => s.height as number,
            () => -1,
          ),
        ),
      )
      if (hs.every((h) => h >= 1)) break
      if (Date.now() > deadline) throw new Error(`validators did not start within ${startSeconds} s`)
      await new Promise((r) => setTimeout(r, 250))
    }
    const chainId = (await rpc(urls[0]!, 'node_status')).chainId as string
    procs.forEach((p, i) => {
      cpuStart[i] = procStats(p.pid!)?.cpuSec ?? 0
    })
    sampler = setInterval(
      () =>
        procs.forEach((p, i) => {
          const s = procStats(p.pid!)
          if (s === undefined) return
          if (s.rssMb > peak[i]) {
            peak[i] = s.rssMb
            atPeak[i]!.anonMb = s.anonMb
            atPeak[i]!.fileMb = s.fileMb
          }
          atPeak[i]!.maxAnonMb = Math.max(atPeak[i]!.maxAnonMb, s.anonMb)
        }),
      250,
    )

    const perAccount = Math.max(4, Math.ceil(((RATE ?? verifyCeilingTps) * (WARMUP + SECONDS * 2 + RATE_WARMUP + RESYNC_SECONDS)) / SENDERS))
    console.log(`bench: pre-signing ${perAccount * SENDERS} transfers from ${SENDERS} accounts${UNKEYED > 0 ? ` to ${ACCOUNTS} funded accounts` : ''}…`)
    await ask(submitter, { cmd: 'prepare', dir, accounts: SENDERS, perAccount, chainId, spread: UNKEYED > 0 })

    const run = async (label: string, rate: number, seconds: number) => {
      let t = 0
      const ticker = setInterval(() => bar(Math.min(++t, seconds), seconds, label), 1000)
      const r = await ask(submitter, { cmd: 'run', urls, rate, seconds, batch: BATCH, maxOutstanding: rate === 0 ? OUTSTANDING : Infinity })
      clearInterval(ticker)
      bar(seconds, seconds, label)
      return r
    }
    const phase = async (label: string, rate: number) => {
      const cpu0 = machineCpu()
      const own0 = process.cpuUsage()
      const proc0 = [...procs, submitter].map((p) => procStats(p.pid!)?.cpuSec ?? 0)
      const startUs = monotonicUs()
      const r = await run(label, rate, SECONDS)
      const endUs = monotonicUs()
      const cpu1 = machineCpu()
      const own1 = process.cpuUsage(own0)
      const proc1 = [...procs, submitter].map((p) => procStats(p.pid!)?.cpuSec ?? 0)
      const machineCpuBusyPct = cpu1.total > cpu0.total ? Math.round((100 * (cpu1.busy - cpu0.busy)) / (cpu1.total - cpu0.total)) : NaN
      const procCpu = proc1.map((c, i) => c - proc0[i]!)
      const machineSeconds = (cpu1.busy - cpu0.busy) / CLOCK_TICKS
      const validatorsSeconds = procCpu.slice(0, N).reduce((a, b) => a + b, 0)
      const submitterSeconds = procCpu[N]!
      const benchSeconds = (own1.user + own1.system) / 1e6
      const blocks = [] as { time: number; txs: number }[]
      for (let h = r.firstHeight - 1; h <= r.lastHeight; h++) {
        const b = await rpc(urls[0]!, 'chain_getBlock', [h])
        if (b) blocks.push({ time: Number(b.header.time), txs: b.txs.length })
      }
      const committed = blocks.slice(1).reduce((a, b) => a + b.txs, 0)
      const span = (blocks[blocks.length - 1]!.time - blocks[0]!.time) / 1000
      const lat = (r.latenciesMs as number[]).sort((a, b) => a - b)
      if (Object.keys(r.errorReasons).length > 0) console.log(`bench: ${label}: requests that failed, by reason: ${JSON.stringify(r.errorReasons)}`)
      return {
        label,
        rate,
        admitted: r.admitted,
        rejected: r.rejected,
        errors: r.errors,
        errorReasons: r.errorReasons,
        committed,
        committedTps: span > 0 ? committed / span : 0,
        p50LatencyMs: percentile(lat, 50),
        p99LatencyMs: percentile(lat, 99),
        blocks: blocks.length - 1,
        machineCpuBusyPct,
        /** The phase on the monotonic clock the validators' CPU profiles use (bench/profileSummary.ts --window). */
        windowUs: `${startUs}:${endUs}`,
        cpuSeconds: {
          machine: round2(machineSeconds),
          validators: round2(validatorsSeconds),
          submitter: round2(submitterSeconds),
          bench: round2(benchSeconds),
          other: round2(machineSeconds - validatorsSeconds - submitterSeconds - benchSeconds),
        },
        /** Machine CPU (all processes) per committed transfer, and the validators' share of it. */
        cpuMsPerTx: committed > 0 ? round2((1000 * machineSeconds) / committed) : NaN,
        validatorCpuMsPerTx: committed > 0 ? round2((1000 * validatorsSeconds) / committed) : NaN,
      }
    }
    // a node runs for weeks: the first seconds of load, while V8 compiles the hot paths and each validator meets
    // the senders' keys for the first time, are left out of the measurement
    if (WARMUP > 0) await run('warm-up (not measured)', RATE ?? 0, WARMUP)
    const saturation = RATE === undefined ? await phase('saturation', 0) : undefined
    const halfRate = RATE ?? Math.max(1, Math.round(saturation!.committedTps / 2))
    // the same for the change of regime: the first seconds at the lower rate compile the paths of small batches and
    // drain the queues saturation left behind
    if (RATE_WARMUP > 0) await run(`warm-up at ${halfRate} tx/s (not measured)`, halfRate, RATE_WARMUP)
    const half = await phase(`open loop ${halfRate} tx/s`, halfRate)

    clearInterval(sampler)
    const cpu = procs.map((p, i) => (procStats(p.pid!)?.cpuSec ?? 0) - cpuStart[i]!)
    // a longer history for the resync, where the syncing validator's start-up weighs less
    if (RESYNC_SECONDS > 0)
      await run(`history for the resync at ${RESYNC_RATE === 0 ? 'saturation' : `${RESYNC_RATE} tx/s`} (not measured)`, RESYNC_RATE, RESYNC_SECONDS)
    const resync = opts.resync ? await resyncPhase(dir, procs, urls, N - 1) : undefined
    const result = {
      validators: N,
      cores,
      verifyWorkers,
      minBlockIntervalMs: minBlockInterval ?? null,
      warmupSeconds: WARMUP,
      rateWarmupSeconds: RATE_WARMUP,
      accounts: UNKEYED > 0 ? ACCOUNTS : ACCOUNTS + 1,
      senders: SENDERS,
      date: new Date().toISOString(),
      verifyPerSecSingleCore: Math.round(single),
      verifyCeilingTps: Math.round(verifyCeilingTps),
      committedTps: saturation === undefined ? null : Math.round(saturation.committedTps),
      p50LatencyMs: Math.round(half.p50LatencyMs),
      p99LatencyMs: Math.round(half.p99LatencyMs),
      peakRssMb: Math.round(Math.max(...peak)),
      /** The largest validator's peak RSS split into anonymous memory and file-backed pages (mapped files). */
      peakRssSplitMb: (() => {
        const i = peak.indexOf(Math.max(...peak))
        return { anon: Math.round(atPeak[i]!.anonMb), file: Math.round(atPeak[i]!.fileMb) }
      })(),
      /** The highest anonymous memory of any validator (not necessarily at its RSS peak). */
      peakAnonMb: Math.round(Math.max(...atPeak.map((a) => a.maxAnonMb))),
      seeding,
      saturation,
      halfSaturation: half,
      resync,
      perValidator: procs.map((_, i) => ({
        node: i,
        peakRssMb: Math.round(peak[i]),
        anonAtPeakMb: Math.round(atPeak[i]!.anonMb),
        fileAtPeakMb: Math.round(atPeak[i]!.fileMb),
        peakAnonMb: Math.round(atPeak[i]!.maxAnonMb),
        cpuSeconds: Number(cpu[i]!.toFixed(1)),
      })),
    }
    console.log('')
    console.table([
      { metric: 'committed TPS (saturation)', value: result.committedTps },
      { metric: 'verify ceiling TPS', value: result.verifyCeilingTps },
      { metric: 'TPS / ceiling', value: result.committedTps === null ? '-' : `${Math.round((100 * result.committedTps) / result.verifyCeilingTps)}%` },
      { metric: `p50 latency at ${halfRate} tx/s (ms)`, value: result.p50LatencyMs },
      { metric: `p99 latency at ${halfRate} tx/s (ms)`, value: result.p99LatencyMs },
      { metric: 'peak RSS, largest validator (MB)', value: result.peakRssMb },
      { metric: '  of which anonymous / file-backed (MB)', value: `${result.peakRssSplitMb.anon} / ${result.peakRssSplitMb.file}` },
      { metric: 'peak anonymous memory, any validator (MB)', value: result.peakAnonMb },
      { metric: 'blocks at saturation / at half rate', value: `${saturation?.blocks ?? '-'} / ${half.blocks}` },
      { metric: 'machine CPU busy at saturation / at half rate', value: `${saturation?.machineCpuBusyPct ?? '-'}% / ${half.machineCpuBusyPct}%` },
      { metric: 'machine CPU ms per committed tx, saturation / half rate', value: `${saturation?.cpuMsPerTx ?? '-'} / ${half.cpuMsPerTx}` },
      {
        metric: 'half rate / saturation CPU per tx',
        value: saturation === undefined ? '-' : `${(half.cpuMsPerTx / saturation.cpuMsPerTx).toFixed(2)}×`,
      },
    ])
    console.table(
      [saturation, half]
        .filter((p) => p !== undefined)
        .map((p) => ({ phase: p.label, ...p.cpuSeconds, 'validators ms/tx': p.validatorCpuMsPerTx, 'machine ms/tx': p.cpuMsPerTx })),
    )
    console.table(result.perValidator)
    if (opts.profile) {
      for (const p of [saturation, half].filter((x) => x !== undefined))
        console.log(`bench: profiles of "${p.label}": node dist/bench/profileSummary.js ${resolve(opts.profile)}/*.cpuprofile --window ${p.windowUs}`)
    }
    if (seeding)
      console.log(`bench: seeding ${ACCOUNTS} genesis accounts took ${seeding.seconds} s, peak RSS ${seeding.peakRssMb} MB (node0, once; copied to the others)`)
    if (resync) {
      console.table([
        { metric: 'resync: heights', value: `${resync.fromHeight} → ${resync.targetHeight}` },
        { metric: 'resync: blocks / transactions of history', value: `${resync.blocks} / ${resync.transactions}` },
        { metric: 'resync: seconds (restart → tip / first answer → tip)', value: `${resync.seconds} / ${resync.syncSeconds}` },
        { metric: 'resync: blocks/s, tx/s of history (from restart)', value: `${resync.blocksPerSecond} / ${resync.txPerSecond}` },
        { metric: 'resync: tx/s of history (from first answer)', value: resync.syncTxPerSecond },
        { metric: 'resync: peak RSS of the syncing validator (MB)', value: resync.peakRssMb },
        {
          metric: 'resync: CPU s of the syncing validator (µs per tx; its main thread), machine busy',
          value: `${resync.cpuSeconds} (${resync.cpuUsPerTx}; ${resync.mainThreadCpuSeconds}), ${resync.machineBusyPercent}%`,
        },
      ])
    }
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(result, null, 2)}\n`)
  } finally {
    if (sampler) clearInterval(sampler)
    submitter.kill('SIGKILL')
    await Promise.all(procs.map(stopProcess))
    if (opts.keep) console.log(`bench: testnet kept in ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Seeds the genesis state once: starts validator 0 alone until it answers (its database then holds the genesis
 * state), stops it and copies its `data/` to the other validators, so that they do not each seed a large genesis at
 * the same time on the same cores. Reports the time and validator 0's peak RSS while it seeded.
 */
async function seedOnce(dir: string, url: string): Promise<{ seconds: number; peakRssMb: number }> {
  const log = openSync(join(dir, 'node0.log'), 'a')
  const p = spawn(process.execPath, [TALLYD, 'start', '--home', join(dir, 'node0')], { stdio: ['ignore', log, log], env: nodeProcessEnv() })
  closeSync(log)
  const t0 = performance.now()
  let peakRssMb = 0
  try {
    for (;;) {
      if (p.exitCode !== null) throw new Error(`node0 exited while seeding the genesis (see ${join(dir, 'node0.log')})`)
      if (performance.now() - t0 > 30 * 60_000) throw new Error('node0 did not seed the genesis within 30 minutes')
      peakRssMb = Math.max(peakRssMb, procStats(p.pid!)?.rssMb ?? 0)
      if (
        await rpc(url, 'node_status').then(
          () => true,
          () => false,
        )
      )
        break
      await new Promise((r) => setTimeout(r, 250))
    }
  } finally {
    await stopProcess(p)
  }
  const seconds = Number(((performance.now() - t0) / 1000).toFixed(1))
  for (let i = 1; i < N; i++) cpSync(join(dir, 'node0', 'data'), join(dir, `node${i}`, 'data'), { recursive: true })
  return { seconds, peakRssMb: Math.round(peakRssMb) }
}

function stopProcess(p: ChildProcess): Promise<void> {
  return new Promise<void>((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r()
    p.once('exit', () => r())
    p.kill('SIGTERM')
    setTimeout(() => p.kill('SIGKILL'), 10_000).unref()
  })
}

/** Transactions per height 1…`tip` on the node at `url`, fetched in JSON-RPC batches. */
async function txCounts(url: string, tip: number): Promise<number[]> {
  const counts = new Array<number>(tip + 1).fill(0)
  for (let from = 1; from <= tip; from += 50) {
    const body = []
    for (let h = from; h <= Math.min(tip, from + 49); h++) body.push({ jsonrpc: '2.0', id: h, method: 'chain_getBlock', params: [h] })
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    })
    for (const r of (await res.json()) as { id: number; result?: { txs: unknown[] } }[]) counts[r.id] = r.result?.txs.length ?? 0
  }
  return counts
}

/**
 * The resync phase: stops validator `i`, deletes its `data/` (its keys, safety record and WAL stay at the home's
 * root), restarts it, and times it until it holds the others' tip as it was at the restart, printing its progress.
 * Reports the history it replayed (blocks, transactions) and the rates, counted from the restart (start-up included)
 * and from its first JSON-RPC answer.
 */
async function resyncPhase(dir: string, procs: ChildProcess[], urls: string[], i: number) {
  await stopProcess(procs[i]!)
  const other = urls[i === 0 ? 1 : 0]!
  const target = (await rpc(other, 'node_status')).height as number
  const counts = await txCounts(other, target)
  const upTo = new Array<number>(target + 1).fill(0)
  for (let h = 1; h <= target; h++) upTo[h] = upTo[h - 1]! + counts[h]!
  rmSync(join(dir, `node${i}`, 'data'), { recursive: true, force: true })
  console.log(`resync: node${i} stopped, data/ deleted; restarting it to catch up ${target} blocks, ${upTo[target]} transactions`)
  const log = openSync(join(dir, `node${i}.log`), 'a')
  const prof = opts.profile ? ['--cpu-prof', '--cpu-prof-dir', resolve(opts.profile)] : []
  const machine0 = machineCpu()
  const t0 = performance.now()
  procs[i] = spawn(process.execPath, [...prof, TALLYD, 'start', '--home', join(dir, `node${i}`)], { stdio: ['ignore', log, log], env: nodeProcessEnv() })
  closeSync(log)
  const p = procs[i]!
  let peakRssMb = 0
  let firstAnswerAt: number | undefined
  let fromHeight: number | undefined
  let height = 0
  let last = { at: t0, height: 0 }
  const deadline = t0 + 30 * 60_000
  while (height < target) {
    if (performance.now() > deadline) throw new Error(`node${i} did not catch up within 30 minutes (at ${height} of ${target})`)
    if (p.exitCode !== null) throw new Error(`node${i} exited while catching up (see ${join(dir, `node${i}.log`)})`)
    await new Promise((r) => setTimeout(r, 200))
    peakRssMb = Math.max(peakRssMb, procStats(p.pid!)?.rssMb ?? 0)
    const h = await rpc(urls[i]!, 'node_status').then(
      (s) => s.height as number,
      () => undefined,
    )
    if (h === undefined) continue
    const now = performance.now()
    if (firstAnswerAt === undefined) {
      firstAnswerAt = now
      fromHeight = h
    }
    height = Math.min(h, target)
    if (now - last.at >= 1000 || height >= target) {
      const secs = (now - last.at) / 1000
      const bps = (height - last.height) / secs
      const tps = (upTo[height]! - upTo[last.height]!) / secs
      const eta = bps > 0 ? `${Math.round((target - height) / bps)} s` : '-'
      console.log(`resync: height ${height}/${target}, ${bps.toFixed(1)} blocks/s, ${Math.round(tps)} tx/s, ETA ${eta}`)
      last = { at: now, height }
    }
  }
  const seconds = (performance.now() - t0) / 1000
  const syncSeconds = (performance.now() - (firstAnswerAt ?? t0)) / 1000
  // the syncing validator's CPU from its start (start-up included), and how busy the machine was meanwhile
  const cpuSec = procStats(p.pid!)?.cpuSec ?? 0
  const mainSec = mainThreadCpuSec(p.pid!) ?? 0
  const machine1 = machineCpu()
  const machineBusy = machine1.total > machine0.total ? (machine1.busy - machine0.busy) / (machine1.total - machine0.total) : 0
  const transactions = upTo[target]!
  return {
    node: i,
    fromHeight: fromHeight ?? 0,
    targetHeight: target,
    blocks: target,
    transactions,
    seconds: Number(seconds.toFixed(2)),
    syncSeconds: Number(syncSeconds.toFixed(2)),
    blocksPerSecond: Math.round(target / seconds),
    txPerSecond: Math.round(transactions / seconds),
    syncTxPerSecond: Math.round((transactions - upTo[fromHeight ?? 0]!) / syncSeconds),
    peakRssMb: Math.round(peakRssMb),
    cpuSeconds: round2(cpuSec),
    cpuUsPerTx: transactions > 0 ? Math.round((cpuSec * 1e6) / transactions) : 0,
    mainThreadCpuSeconds: round2(mainSec),
    machineBusyPercent: Math.round(machineBusy * 100),
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`)
  process.exit(1)
})
