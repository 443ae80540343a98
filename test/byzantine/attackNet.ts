import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Testnet, rpc, waitFor } from '../e2e/harness.js'
import { ByzantineValidator } from './byzantineValidator.js'

/**
 * A testnet under attack: validators 0, 1 and 2 are real `tallyd` processes, validator 3 is a
 * {@link ByzantineValidator} in the test process holding validator 3's keys. It carries the checks every attack
 * ends with (the honest validators keep committing, agree block by block, are alive with no fatal log line, still
 * prevote the blocks that get decided, and say they are healthy) and the measurements particular to attacks:
 * offender log lines, WAL size and resident memory.
 */

/** A parsed JSON log line of a node. */
export interface LogLine {
  readonly level: number
  readonly time: number
  readonly msg: string
  readonly raw: string
  readonly [field: string]: unknown
}

const WARN = 40
const FATAL = 60

/** Calls `fn` every `everyMs` for `durationMs` (the pace of an attack that repeats); resolves when the time is up. */
export async function repeatFor(durationMs: number, everyMs: number, fn: () => void | Promise<void>): Promise<void> {
  const until = Date.now() + durationMs
  await new Promise<void>((resolve, reject) => {
    let busy = false
    const timer = setInterval(() => {
      if (Date.now() >= until) {
        clearInterval(timer)
        resolve()
        return
      }
      if (busy) return
      busy = true
      Promise.resolve()
        .then(fn)
        .then(
          () => {
            busy = false
          },
          (e: unknown) => {
            clearInterval(timer)
            reject(e as Error)
          },
        )
    }, everyMs)
  })
}

/** A testnet that could not start for reasons of the machine, not of the code under test. */
class StartFailed extends Error {}

/** Options of {@link AttackNet.start}. */
export interface AttackNetOptions {
  /** Edits validator i's parsed `config.json` before it starts (all four homes). */
  readonly configure?: (config: Record<string, any>, i: number) => void
}

/** The largest value each node reached of what a {@link AttackNet.sample} sampled. */
export interface ResourcePeaks {
  readonly walBytes: number[]
  readonly rssBytes: number[]
}

export class AttackNet {
  /** Start of the current test's phase (ms): fatal lines before it belong to an earlier attack. */
  private phaseStart = Date.now()
  /** True once {@link assertHealthy} passed in the current phase. */
  private healthy = true

  private constructor(
    readonly net: Testnet,
    readonly honest: readonly number[],
    private attackerValue: ByzantineValidator | undefined,
  ) {}

  /** The attacker (throws while the testnet is still starting). */
  get attacker(): ByzantineValidator {
    if (this.attackerValue === undefined) throw new Error('the attacker has not started')
    return this.attackerValue
  }

  /**
   * Creates a 4-validator testnet, starts validators 0-2 and the attacker, and waits for height 2. A start where a
   * validator exits at once (a port taken between the choice of free ports and the start, by anything else on the
   * machine) is retried on new ports, twice at most.
   */
  static async start(o: AttackNetOptions = {}): Promise<AttackNet> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await AttackNet.startOnce(o)
      } catch (e) {
        if (!(e instanceof StartFailed) || attempt >= 3) throw e
        console.log(`# the testnet did not start (${e.message}); again on other ports`)
      }
    }
  }

  private static async startOnce(o: AttackNetOptions): Promise<AttackNet> {
    const net = await Testnet.create(4)
    const honest = [0, 1, 2]
    const a = new AttackNet(net, honest, undefined)
    try {
      if (o.configure) {
        for (let i = 0; i < 4; i++) {
          const path = join(net.home(i), 'config.json')
          const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>
          o.configure(config, i)
          writeFileSync(path, JSON.stringify(config, null, 2))
        }
      }
      for (const i of honest) net.start(i)
      const attacker = await ByzantineValidator.start(net.home(3), join(net.dir, 'attacker.log')).catch((e: Error) => {
        throw new StartFailed(`the attacker: ${e.message}`)
      })
      a.attackerValue = attacker
      // a validator that exits while the testnet starts fails the start at once (waitFor would wait out its deadline)
      let exited: number | undefined
      await waitFor(
        'height 2 on the honest validators',
        async () => {
          exited = honest.find((i) => !a.alive(i))
          if (exited !== undefined) return true
          return (await Promise.all(honest.map((i) => a.height(i)))).every((h) => (h ?? 0) >= 2)
        },
        45_000,
        200,
      )
      if (exited !== undefined) throw new StartFailed(`node${exited} exited: ${a.net.logTail(exited, 1)}`)
      await waitFor(
        'the attacker to connect to every honest validator and follow the chain',
        () => attacker.p2p.peers().length === honest.length && attacker.follower.height >= 2,
        20_000,
      )
      return a
    } catch (e) {
      await a.destroy()
      throw e
    }
  }

  /** Stops the attacker and every process, and removes the testnet's directory. */
  async destroy(): Promise<void> {
    await this.attackerValue?.stop().catch(() => undefined)
    await this.net.destroy()
  }

  /**
   * Starts a test on a shared testnet. What an earlier attack left behind must not count against this one: when
   * the previous phase did not end with {@link assertHealthy} passing, or the chain does not move, every honest
   * validator is restarted (their in-memory state is where attacks leave their marks); a validator that is down is
   * started. Then the attacker is put back to its default behaviours and waits until it is connected again.
   * Returns what it had to repair.
   */
  async beginPhase(): Promise<string[]> {
    const repaired: string[] = []
    this.attackerValue?.behaveHonestly()
    const restartAll = async (why: string) => {
      await Promise.all(this.honest.map((i) => this.net.stop(i)))
      for (const i of this.honest) this.net.start(i)
      repaired.push(`${why}: restarted every honest validator`)
      await this.waitProgress(2, this.honest, 60_000)
    }
    if (!this.healthy) await restartAll('the previous test did not end healthy')
    for (const i of this.honest) {
      if (!this.alive(i)) {
        await this.net.stop(i)
        this.net.start(i)
        repaired.push(`node${i} was down: started`)
      }
    }
    if (repaired.length === 0) {
      try {
        await this.waitProgress(1, this.honest, 15_000)
      } catch {
        await restartAll('the chain did not move')
      }
    }
    this.healthy = false
    const attacker = this.attackerValue
    if (attacker) {
      await waitFor('the attacker to be connected to every honest validator', () => attacker.p2p.peers().length === this.honest.length, 30_000)
    }
    this.phaseStart = Date.now()
    for (const r of repaired) console.log(`# before this test: ${r}`)
    return repaired
  }

  /** Samples every honest node's WAL size and resident memory every `intervalMs` until the returned stop is called. */
  sample(intervalMs = 200): () => ResourcePeaks {
    const peaks: ResourcePeaks = { walBytes: this.net.procs.map(() => 0), rssBytes: this.net.procs.map(() => 0) }
    const tick = () => {
      for (const i of this.honest) {
        peaks.walBytes[i] = Math.max(peaks.walBytes[i]!, this.walBytes(i))
        peaks.rssBytes[i] = Math.max(peaks.rssBytes[i]!, this.rssBytes(i))
      }
    }
    tick()
    const timer = setInterval(tick, intervalMs)
    timer.unref()
    return () => {
      clearInterval(timer)
      tick()
      return peaks
    }
  }

  /** Height of node i, undefined when it does not answer within 2 s. */
  height(i: number): Promise<number | undefined> {
    return this.net.height(i)
  }

  /** The highest height any listed node reports. */
  async maxHeight(nodes: readonly number[] = this.honest): Promise<number> {
    let best = 0
    for (const i of nodes) best = Math.max(best, (await this.height(i)) ?? 0)
    return best
  }

  /** Waits until every listed node is `by` heights past the highest height any of them reported at the call. */
  async waitProgress(by = 2, nodes: readonly number[] = this.honest, timeoutMs = 20_000): Promise<number> {
    const target = (await this.maxHeight(nodes)) + by
    await this.net.waitHeight(target, [...nodes], timeoutMs)
    return target
  }

  /** True while node i's process runs. */
  alive(i: number): boolean {
    const p = this.net.procs[i]
    return p !== undefined && p.exitCode === null && p.signalCode === null
  }

  /** Node i's log, parsed (lines that are not JSON are kept with level 0). */
  logLines(i: number): LogLine[] {
    const f = join(this.net.dir, `node${i}.log`)
    if (!existsSync(f)) return []
    return readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((raw) => {
        try {
          const j = JSON.parse(raw) as Record<string, unknown>
          return { ...j, level: Number(j.level ?? 0), time: Date.parse(String(j.time ?? '')) || 0, msg: String(j.msg ?? ''), raw }
        } catch {
          return { level: 0, time: 0, msg: raw, raw }
        }
      })
  }

  /** Fatal lines of node i's log since `sinceMs` (default: the start of the current phase). */
  fatalLines(i: number, sinceMs = this.phaseStart): LogLine[] {
    return this.logLines(i).filter((l) => l.level >= FATAL && l.time >= sinceMs)
  }

  /**
   * Warn-or-worse lines of node i's log since `sinceMs` (default: the start of the current phase) that mention any of
   * `needles` (a peer id, an address).
   */
  offenderLines(i: number, needles: readonly string[], sinceMs = this.phaseStart): LogLine[] {
    return this.logLines(i).filter((l) => l.level >= WARN && l.time >= sinceMs && needles.some((n) => l.raw.toLowerCase().includes(n.toLowerCase())))
  }

  /** Size of node i's consensus WAL in bytes (0 when absent). */
  walBytes(i: number): number {
    const f = join(this.net.home(i), 'consensus.wal')
    return existsSync(f) ? statSync(f).size : 0
  }

  /** Resident memory of node i's process in bytes (0 when it is not running). */
  rssBytes(i: number): number {
    const pid = this.net.procs[i]?.pid
    if (pid === undefined) return 0
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      return m ? Number(m[1]) * 1024 : 0
    } catch {
      return 0
    }
  }

  /** `/health` status code and `node_status.catchingUp` of node i. */
  async healthOf(i: number): Promise<{ status: number; catchingUp: boolean; height: number }> {
    const res = await fetch(`${this.net.rpcUrl(i)}/health`, { signal: AbortSignal.timeout(2_000) })
    await res.body?.cancel()
    const s = await rpc<{ catchingUp: boolean; height: number }>(this.net.rpcUrl(i), 'node_status', [], 2_000)
    return { status: res.status, catchingUp: s.catchingUp, height: s.height }
  }

  /** Deletes the data/ of node i, which must be stopped. */
  wipe(i: number): void {
    if (this.alive(i)) throw new Error(`node${i} is running`)
    rmSync(join(this.net.home(i), 'data'), { recursive: true, force: true })
  }

  /** Stops node i, deletes its data/ and starts it again. */
  async wipeAndRestart(i: number): Promise<void> {
    await this.net.stop(i)
    this.wipe(i)
    this.net.start(i)
  }

  /**
   * Checks, from the attacker's seat, that every listed validator still validates proposals: over `heights`
   * heights, each prevotes the block that gets decided, in the deciding round, at all but one. A validator that can
   * no longer rebuild or check proposals prevotes nil; the chain still moves with the other three, so only this
   * shows it (and one more failure would then halt the chain).
   */
  async assertPrevoting(nodes: readonly number[] = this.honest, heights = 3): Promise<void> {
    const attacker = this.attacker
    await waitFor(
      'the attacker to be connected to every honest validator',
      () => nodes.every((i) => attacker.p2p.peers().includes(attacker.peerIdOf(i))),
      30_000,
    )
    const from = Math.max(attacker.follower.height, await this.maxHeight(nodes)) + 1
    await waitFor(`the attacker to follow the chain to ${from + heights - 1}`, async () => attacker.follower.height >= from + heights - 1, 60_000, 200)
    const range = Array.from({ length: heights }, (_, k) => from + k)
    const got = attacker.prevotedDecided(range)
    const weak = nodes.filter((i) => (got.get(`node${i}`)?.length ?? 0) < heights - 1)
    if (weak.length > 0) {
      throw new Error(
        `validators no longer prevote the blocks that get decided, heights ${range[0]}-${range[range.length - 1]}: ` +
          weak.map((i) => `node${i} prevoted the decided block at ${JSON.stringify(got.get(`node${i}`))}`).join('; '),
      )
    }
  }

  /**
   * The checks every attack ends with, on the listed nodes: each is alive with no fatal log line, they commit
   * `progress` more heights within `timeoutMs`, agree block by block up to the lowest of their heights, each still
   * prevotes the proposals that get decided (seen by the attacker, when there is one), and each reports itself
   * healthy and not catching up.
   */
  async assertHealthy(nodes: readonly number[] = this.honest, o: { progress?: number; timeoutMs?: number } = {}): Promise<void> {
    const problems: string[] = []
    for (const i of nodes) {
      if (!this.alive(i)) problems.push(`node${i} is not running (exit ${this.net.procs[i]?.exitCode ?? 'n/a'})`)
      for (const l of this.fatalLines(i)) problems.push(`node${i} logged fatal: ${l.raw.slice(0, 300)}`)
    }
    if (problems.length > 0) throw new Error(problems.join('\n'))
    try {
      await this.waitProgress(o.progress ?? 2, nodes, o.timeoutMs ?? 20_000)
    } catch (e) {
      const heights = await Promise.all(nodes.map(async (i) => `node${i}=${(await this.height(i)) ?? 'down'}`))
      throw new Error(`honest validators stopped committing (${heights.join(' ')}): ${(e as Error).message}`)
    }
    let lowest = Infinity
    for (const i of nodes) lowest = Math.min(lowest, (await this.height(i)) ?? 0)
    await this.net.checkSameChain(lowest, [...nodes])
    if (this.attackerValue) await this.assertPrevoting(nodes)
    for (const i of nodes) {
      await waitFor(
        `node${i} to report itself healthy and not catching up`,
        async () => {
          const h = await this.healthOf(i)
          return h.status === 200 && !h.catchingUp
        },
        10_000,
        250,
      )
    }
    this.healthy = true
  }
}

/**
 * Collects the failed expectations of one test, so a test that checks several properties of one attack reports
 * every property the attack broke, not only the first.
 */
export class Verdict {
  private readonly failures: string[] = []

  /** Records a failure unless `condition` holds. */
  expect(condition: boolean, failure: string): void {
    if (!condition) this.failures.push(failure)
  }

  /** Runs a check that throws on failure, recording its message. */
  async check(what: string, fn: () => Promise<unknown> | unknown): Promise<void> {
    try {
      await fn()
    } catch (e) {
      this.failures.push(`${what}: ${(e as Error).message}`)
    }
  }

  /** Throws one error listing every failure, if any. */
  done(): void {
    if (this.failures.length > 0) throw new Error(`${this.failures.length} expectation(s) failed:\n- ${this.failures.join('\n- ')}`)
  }
}
