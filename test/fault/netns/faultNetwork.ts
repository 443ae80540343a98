import { rpc, runCli, waitFor } from '../../e2e/harness.js'
import { readDevKey } from '../../e2e/load.js'
import { ChainAudit, type SeenCommit } from './chainAudit.js'
import type { DelayRelay } from './delayRelay.js'
import { whyNoFakeClock } from './fakeClock.js'
import type { FaultBudget } from './faultBudget.js'
import { cleanAndProbe, HostNetwork, releaseLock, takeLock, whyNoIptables, whyNoNamespaces } from './hostNetwork.js'
import { NamespaceTestnet } from './namespaceTestnet.js'
import { PacketFilter } from './packetFilter.js'

/** What this machine allows: why the suite, the packet-filter faults and the clock faults cannot run, if so. */
export interface FaultPreflight {
  /** Why nothing can run (the lock is not held then). */
  readonly suite?: string
  /** Why partitions, loss and latency cannot run. */
  readonly iptables?: string
  /** Why the clock faults cannot run. */
  readonly clock?: string
}

/** A finished `tally transfer`. */
export interface WalletRun {
  readonly code: number
  readonly stderr: string
  readonly elapsedMs: number
  /** From `--json` output, when it printed one. */
  readonly hash?: string
  readonly height?: number
  readonly status?: string
}

/**
 * The fault suite's world: four validators on namespace hosts, the packet filter in their namespaces, the audit
 * of what must hold after each fault, and the wallet CLI run from the root namespace. Each fault ends with
 * {@link FaultNetwork.heal} (also when it fails), which leaves every validator running, connected and on the
 * machine's clock, so the next fault starts from a healthy network.
 */
export class FaultNetwork {
  /** Delay relays of a latency fault under way. */
  readonly relays: DelayRelay[] = []

  private constructor(
    readonly host: HostNetwork,
    readonly net: NamespaceTestnet,
    readonly filter: PacketFilter | undefined,
    readonly audit: ChainAudit,
    readonly chainId: string,
  ) {
    net.budget.snapshot = () => net.describe()
  }

  /**
   * Checks the machine and takes the suite's lock (released by {@link FaultNetwork.destroy}, or here when
   * nothing can run); removes what an earlier run left behind.
   */
  static async preflight(): Promise<FaultPreflight> {
    const noNamespaces = whyNoNamespaces()
    if (noNamespaces !== undefined) return { suite: noNamespaces }
    const lock = await takeLock()
    if (lock !== undefined) return { suite: lock }
    const probe = cleanAndProbe()
    if (probe !== undefined) {
      releaseLock()
      return { suite: probe }
    }
    return { iptables: whyNoIptables(), clock: whyNoFakeClock() }
  }

  /** Builds the hosts, generates and starts the testnet, and waits for height 2 on every validator. */
  static async start(o: { withIptables: boolean; validators?: number }): Promise<FaultNetwork> {
    const host = await HostNetwork.create(o.validators ?? 4)
    let net: NamespaceTestnet | undefined
    try {
      net = await NamespaceTestnet.create(host)
      const filter = o.withIptables ? await PacketFilter.install(host) : undefined
      net.startAll()
      await net.waitHeight(2, net.all, 60_000)
      const chainId = (await rpc<{ chainId: string }>(net.rpcUrl(0), 'node_status')).chainId
      return new FaultNetwork(host, net, filter, new ChainAudit(net), chainId)
    } catch (e) {
      const logs = net ? net.all.map((i) => `--- node${i}\n${net!.logTail(i, 10)}`).join('\n') : ''
      await net?.destroy()
      await host.destroy()
      throw new Error(`${(e as Error).message}\n${logs}`)
    }
  }

  /** Every validator's index. */
  get all(): number[] {
    return this.net.all
  }

  /** A dev key of the testnet (`faucet`, `account0` …). */
  key(name: string): { secretKey: Uint8Array; address: string } {
    return readDevKey(this.net.keyFile(name))
  }

  /**
   * Runs `tally transfer --json` from the root namespace with `--rpc` listing `nodes` in order; a transfer it
   * saw committed is recorded for the audit.
   */
  async transfer(nodes: readonly number[], o: { from?: string; to?: string; amount?: bigint; wait?: boolean } = {}): Promise<WalletRun> {
    const to = this.key(o.to ?? 'account0').address
    const args = [
      'transfer',
      '--key',
      this.net.keyFile(o.from ?? 'faucet'),
      '--to',
      to,
      '--amount',
      String(o.amount ?? 1n),
      '--rpc',
      nodes.map((i) => this.net.rpcUrl(i)).join(','),
      '--json',
      '--genesis',
      this.net.genesisFile(),
    ]
    if (o.wait === false) args.push('--no-wait')
    const t0 = Date.now()
    const what = `tally transfer --rpc ${nodes.map((i) => `node${i}`).join(',')}${o.wait === false ? ' --no-wait' : ''}`
    const r = await this.budget.wait(what, 150_000, (ms) => runCli('tally', args, { timeoutMs: ms }))
    const elapsedMs = Date.now() - t0
    let out: { hash?: string; height?: number; status?: string } = {}
    try {
      out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as typeof out
    } catch {
      /* no JSON: the caller reports code and stderr */
    }
    if (r.code === 0 && out.status === 'committed' && out.hash !== undefined && out.height !== undefined) {
      this.audit.sawCommitted({ hash: out.hash, height: out.height })
    }
    return { code: r.code, stderr: r.stderr, elapsedMs, ...out }
  }

  /** Waits until a transfer is committed on validator i and records it for the audit. */
  async waitCommitted(hash: string, i: number, timeoutMs = 60_000): Promise<SeenCommit> {
    const t = await this.waitFor(
      `${hash} committed on node${i}`,
      async () => {
        const v = await rpc<{ status: string; height?: number }>(this.net.rpcUrl(i), 'tx_get', [hash], 2_000)
        return v.status === 'committed' ? v : undefined
      },
      timeoutMs,
    )
    const seen = { hash, height: t.height! }
    this.audit.sawCommitted(seen)
    return seen
  }

  /** The running fault's budget and trace (shared with the testnet, whose waits it bounds). */
  get budget(): FaultBudget {
    return this.net.budget
  }

  /**
   * Polls `check` until it returns a value (not undefined or false), within `timeoutMs` and the fault's budget;
   * the wait shows in the fault's trace.
   */
  waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, intervalMs = 200): Promise<T> {
    return this.budget.wait(what, timeoutMs, (ms) => waitFor(what, check, ms, intervalMs))
  }

  /**
   * Runs a fault within `budgetMs`: its waits are cut short at the end of the budget (the fault then heals and
   * fails). A failure carries the fault's trace, what it was waiting for, each validator's state and log tail.
   */
  async within(budgetMs: number, run: () => Promise<string>): Promise<string> {
    this.budget.begin(budgetMs)
    try {
      return await run()
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await this.report()}`, { cause: e })
    } finally {
      this.budget.end()
    }
  }

  /**
   * What a failure message needs: the running fault's steps and what it waits for, each validator's process and
   * RPC state, and the tail of each validator's log.
   */
  async report(lines = 12): Promise<string> {
    const waiting = this.budget.waitingFor
    return [
      `fault trace (${this.budget.elapsedMs} ms):\n${this.budget.steps || '(no step recorded)'}`,
      waiting.length > 0 ? `waiting for: ${waiting.join(' > ')}` : '',
      `validators now:\n${await this.net.describe()}`,
      this.logs(lines),
    ]
      .filter((x) => x !== '')
      .join('\n')
  }

  /** The validator address of validator i (from its `node_status`). */
  async validatorAddress(i: number): Promise<string> {
    const v = (await rpc<{ validator: string | null }>(this.net.rpcUrl(i), 'node_status')).validator
    if (v === null) throw new Error(`node${i} reports no validator address`)
    return v
  }

  /**
   * Ends any fault: removes every packet-filter rule, closes the delay relays, resumes paused validators and
   * restarts stopped or clock-shifted ones.
   */
  async heal(): Promise<void> {
    this.budget.mark('healing')
    await this.filter?.heal()
    await Promise.all(this.relays.splice(0).map((r) => r.close()))
    await this.net.restoreAll()
    this.budget.mark('healed')
  }

  /**
   * After a healed fault: waits until every validator reaches the height the highest had when healing, then
   * runs the audit on all of them. Resolves with the height agreed up to.
   */
  async settle(timeoutMs = 90_000): Promise<number> {
    const target = await this.net.maxHeight()
    await this.net.waitHeight(target, this.all, timeoutMs)
    return this.audit.check(this.all)
  }

  /** The last lines of every validator's log, for a failure message. */
  logs(lines = 12): string {
    return this.all.map((i) => `--- node${i} (${this.net.logFile(i)})\n${this.net.logTail(i, lines)}`).join('\n')
  }

  /** Stops everything, removes the hosts and releases the lock. */
  async destroy(): Promise<void> {
    try {
      await this.filter?.heal().catch(() => undefined)
      await Promise.all(this.relays.splice(0).map((r) => r.close()))
      await this.net.destroy()
      await this.host.destroy()
    } finally {
      releaseLock()
    }
  }
}
