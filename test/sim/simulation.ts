import { addressFromPublicKey, bytesEqual, compareBytes, encodeCanonical, keyPairFromSeed, sha256, toHex, type KeyPair } from '../../crypto/index.js'
import { createValidatorSet, proposerOf, timeoutDuration, type ConsensusParams, type Evidence, type Validator } from '../../consensus/index.js'
import { DEFAULT_PARAMS, type Genesis } from '../../genesis/genesis.js'
import { peerIdOf } from '../../node/p2p/peerId.js'
import { Rng } from '../helpers/random.js'
import { Attacks, type AttackStats, type Behaviour, type ForgeKind } from './byzantine.js'
import { Checker, type SimObservation, type Violation } from './checker.js'
import { Clients, type ClientOptions } from './clients.js'
import type { Coverage } from './coverage.js'
import { Governors, describeChange, plannedRosters, type MembershipOptions, type NodeIdentity, type SetChange } from './governors.js'
import { LockAdversary, type LockAdversaryOptions } from './lockAdversary.js'
import { Scheduler } from './scheduler.js'
import type { SimLogLine } from './simLogger.js'
import { SimNetwork, type NetworkOptions, type NetworkStats, type Route } from './simNetwork.js'
import { SimValidator, type CrashPlan, type HostSettings, type SimContext } from './simNode.js'

export type { Behaviour, ForgeKind } from './byzantine.js'
export type { MembershipOptions, SetChange } from './governors.js'
export type { CrashPlan, SentMessage } from './simNode.js'
export type { NetworkOptions, Partition, Route, RouteInfo } from './simNetwork.js'

/**
 * A deterministic simulation of N validators, each a real consensus host (simNode.ts) over in-memory stores, on a
 * simulated network (simNetwork.ts) in virtual time (scheduler.ts), with wallets submitting signed transfers
 * (clients.ts), Byzantine validators that are real hosts behind an attacking network layer (byzantine.ts), an
 * adversary that steers honest validators into different locks (lockAdversary.ts), and honest validators that lose
 * power at chosen store operations and restart from what their disk kept. Nodes beyond the genesis set follow the
 * chain as full nodes, and the honest validators' operators change the set by governance votes (governors.ts). The
 * checker (checker.ts) holds every run to agreement, validity, safe signing and membership against the set in force
 * at each height, bounded resources and, after GST, liveness. Same options (seed included), same run: event for event.
 */

/** Options of one simulation. */
export interface SimOptions {
  readonly seed: number
  /** Validators of the genesis set: nodes 0 to validators - 1. */
  readonly validators: number
  /** Voting powers of the genesis validators (default all 1). */
  readonly powers?: readonly number[]
  /** Nodes outside the genesis set (following the chain as full nodes, with validator keys of their own), numbered after the validators. */
  readonly joiners?: number
  /** Changes of the validator set the honest validators vote for. */
  readonly membership?: MembershipOptions
  /** Byzantine nodes: index → behaviours. Everyone else is honest. */
  readonly byzantine?: Readonly<Record<number, readonly Behaviour[]>>
  /**
   * Heights the run must reach: every honest node commits every height up to this one (or, once a plan of set changes
   * is in force, a few heights past it) at which it is a validator.
   */
  readonly heights: number
  readonly params?: ConsensusParams
  readonly network?: Partial<NetworkOptions>
  readonly host?: Partial<HostSettings>
  /** Crash plans of validators (honest ones restart from their disk). */
  readonly crashes?: Readonly<Record<number, readonly CrashPlan[]>>
  /** Clock offsets of validators, in ms. */
  readonly skews?: Readonly<Record<number, number>>
  /** Wallets (default 4 accounts submitting every 0.3-1.5 s, with transaction gossip); false: none. */
  readonly clients?: false | ({ readonly accounts: number } & Partial<ClientOptions>)
  /** Scenario hook deciding the fate of messages. */
  readonly route?: Route
  /** Scenario hook receiving signatures, locks, commits, rounds, crashes. */
  readonly observe?: (o: SimObservation) => void
  /** The lock-targeting adversary. */
  readonly lockAdversary?: LockAdversaryOptions
  /** Groups the `splitBrain` colluders serve different blocks to. */
  readonly collusionGroups?: readonly (readonly number[])[]
  /** What `forgedBlock` validators forge (default: any kind, drawn per block). */
  readonly forgeKinds?: readonly ForgeKind[]
  /** Per-validator windows in which its transaction fetches fail (it cannot get a block's transactions). */
  readonly fetchBlackouts?: readonly { readonly node: number; readonly start: number; readonly end: number }[]
  /** Check liveness at the end (default: when Byzantine validators hold less than a third of the power of every planned set). */
  readonly checkLiveness?: boolean
  /** Extra virtual time allowed after GST (and after the last restart) for deciding all heights. */
  readonly livenessSlackMs?: number
  /** Receives every node's log lines (for tracing one seed). */
  readonly trace?: (node: number, time: number, line: SimLogLine) => void
}

/** The outcome of a run. */
export interface SimResult {
  readonly seed: number
  readonly violations: readonly Violation[]
  readonly coverage: Coverage
  /** Per node, height → committed block hash (hex). */
  readonly commits: readonly ReadonlyMap<number, string>[]
  /** Evidence reported by honest validators. */
  readonly evidence: readonly Evidence[]
  readonly honest: readonly number[]
  readonly endTime: number
  readonly events: number
  readonly network: NetworkStats
  /** Warnings and errors logged per node, by message. */
  readonly logs: readonly Record<string, number>[]
  readonly submitted: number
  /** What the Byzantine validators did. */
  readonly attacks: AttackStats
  /** Rounds the lock adversary split. */
  readonly splitRounds: number
  /** The validator sets the chain had, each with the height from which it was in force: node index → power. */
  readonly sets: readonly { readonly fromHeight: number; readonly members: ReadonlyMap<number, number> }[]
  /** Per height, the nodes whose precommits the certificate of its first commit carries. */
  readonly certificateSigners: ReadonlyMap<number, readonly number[]>
  /** The planned set changes that came into force, with the first height of each. */
  readonly setChanges: readonly { readonly change: SetChange; readonly fromHeight: number }[]
}

/** Consensus timeouts of simulated networks: short, so runs are quick in virtual time. */
export const simConsensusParams: ConsensusParams = {
  timeoutProposeMs: 1000,
  timeoutProposeDeltaMs: 250,
  timeoutPrevoteMs: 500,
  timeoutPrevoteDeltaMs: 125,
  timeoutPrecommitMs: 500,
  timeoutPrecommitDeltaMs: 125,
  maxRoundsAhead: 10,
  maxHeightsAhead: 2,
}

/** Host settings of simulated networks. */
export const simHostSettings: HostSettings = {
  block: { maxTxs: 64, maxBytes: 64 * 1024 },
  emptyBlockIntervalMs: 100,
  commitMs: 0,
  maxClockDriftMs: 500,
  walMaxBytes: 64 * 1024,
  maxQueue: 1_000,
  mempoolMaxTxs: 2_000,
  diskMs: 1,
  epochMs: 1_700_000_000_000,
}

export const SIM_CHAIN_ID = 'tally-sim'

/** Keys of simulated validators and wallets: a fixed pool, so the process-wide key caches of crypto/ stay warm. */
const VALIDATOR_POOL = 40
const WALLET_POOL = 16
const pool = new Map<string, KeyPair>()

function pooledKey(kind: 'validator' | 'wallet', j: number): KeyPair {
  const id = `${kind}/${j}`
  let k = pool.get(id)
  if (k === undefined) {
    k = keyPairFromSeed(sha256(encodeCanonical([`tally-sim-${kind}`, j])))
    pool.set(id, k)
  }
  return k
}

/** `count` distinct pool slots drawn from the seed. */
function slots(seed: number, salt: number, count: number, size: number): number[] {
  if (count > size) throw new RangeError(`at most ${size} keys of this kind`)
  const rng = new Rng(seed ^ salt)
  const order = [...Array(size).keys()]
  for (let i = size - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order.slice(0, count)
}

/** The validators of a simulation in node order (keys drawn from the pool by the seed). */
export function simValidators(seed: number, validators: number, powers?: readonly number[]): (Validator & { secretKey: Uint8Array })[] {
  return slots(seed, 0x7a1, validators, VALIDATOR_POOL).map((j, i) => {
    const keys = pooledKey('validator', j)
    return { address: addressFromPublicKey(keys.publicKey), publicKey: keys.publicKey, power: powers?.[i] ?? 1, secretKey: keys.secretKey }
  })
}

/** The wallet keys of a simulation. */
function simWallets(seed: number, count: number): KeyPair[] {
  return slots(seed, 0x3a11e7, count, WALLET_POOL).map((j) => pooledKey('wallet', j))
}

/** The node index of the proposer of (height, round) in a simulation. */
export function simProposer(seed: number, validators: number, height: number, round: number, powers?: readonly number[]): number {
  const list = simValidators(seed, validators, powers)
  const set = createValidatorSet(list)
  if (!set.ok) throw new Error(set.error.reason)
  const p = proposerOf(set.value, height, round)
  return list.findIndex((v) => bytesEqual(v.address, p.address))
}

/** The virtual time one round lasts at `round` when every timeout expires. */
export function roundDuration(params: ConsensusParams, round: number): number {
  return timeoutDuration(params, 'propose', round) + timeoutDuration(params, 'prevote', round) + timeoutDuration(params, 'precommit', round)
}

/** Runs one simulation to completion (all heights committed by every honest validator, or the deadline). */
export async function runSimulation(options: SimOptions): Promise<SimResult> {
  return new Simulation(options).run()
}

/** The peer id and name of node `index` as a member of a set: genesis validators are `v<i>`, others the libp2p id of their key. */
function identityOf(index: number, validators: number, keys: { publicKey: Uint8Array; secretKey: Uint8Array; address: Uint8Array }): NodeIdentity {
  return { ...keys, peerId: index < validators ? `v${index}` : peerIdOf(keys.publicKey), name: `v${index}` }
}

class Simulation {
  private readonly rng: Rng
  private readonly sched = new Scheduler()
  private readonly params: ConsensusParams
  private readonly settings: HostSettings
  private readonly net: NetworkOptions
  private readonly genesis: Genesis
  private readonly checker: Checker
  private readonly network: SimNetwork
  private readonly nodes: SimValidator[] = []
  private readonly clients: Clients | undefined
  private readonly governors: Governors | undefined
  private readonly honest: number[]
  private readonly f: number
  private readonly fairSets: boolean
  private lastRestart = 0
  private readonly attacks: Attacks
  private readonly lockAdversary: LockAdversary | undefined

  constructor(private readonly o: SimOptions) {
    this.rng = new Rng(o.seed)
    this.params = o.params ?? simConsensusParams
    this.settings = { ...simHostSettings, ...o.host }
    this.net = { gst: 0, minDelay: 1, preGstMaxDelay: 1500, delta: 100, loss: 0, duplicate: 0, partitions: [], ...o.network }
    const total = o.validators + (o.joiners ?? 0)
    const list = simValidators(o.seed, total, o.powers)
    const identities = list.map((v, i) => identityOf(i, o.validators, v))
    const set = createValidatorSet(list.slice(0, o.validators))
    if (!set.ok) throw new Error(set.error.reason)
    const byzantine = o.byzantine ?? {}
    this.honest = list.map((_, i) => i).filter((i) => (byzantine[i] ?? []).length === 0)
    const clientCount = o.clients === false ? 0 : (o.clients?.accounts ?? 4)
    const accounts = simWallets(o.seed, clientCount)
    const T0 = this.settings.epochMs
    this.genesis = {
      chainId: SIM_CHAIN_ID,
      genesisTime: new Date(T0 - 1000).toISOString(),
      genesisTimeMs: T0 - 1000,
      validators: list
        .slice(0, o.validators)
        .map((v, i) => ({ name: identities[i]!.name, publicKey: v.publicKey, address: v.address, power: v.power, peerId: identities[i]!.peerId })),
      balances: accounts
        .map((k) => ({ address: addressFromPublicKey(k.publicKey), amount: 1_000_000_000_000n }))
        .sort((a, b) => compareBytes(a.address, b.address)),
      params: DEFAULT_PARAMS,
    }
    // the sets the plan goes through: f is that of the largest; liveness needs every one to hold less than a third Byzantine
    const genesisRoster = this.genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power, peerId: v.peerId, name: v.name }))
    const planned = plannedRosters(genesisRoster, o.membership?.changes ?? [], identities)
    if ('error' in planned) throw new Error(`membership plan: ${planned.error}`)
    const byzantineAddresses = new Set(
      Object.keys(byzantine)
        .filter((i) => (byzantine[Number(i)] ?? []).length > 0)
        .map((i) => toHex(list[Number(i)]!.address)),
    )
    this.fairSets = planned.rosters.every((r) => {
      let bad = 0
      let all = 0
      for (const m of r) {
        all += m.power
        if (byzantineAddresses.has(toHex(m.address))) bad += m.power
      }
      return 3 * bad < all
    })
    this.f = Math.max(...planned.rosters.map((r) => Math.floor((r.length - 1) / 3)))
    const maxProposalBytes = 2048 + this.settings.block.maxTxs * 34 + total * 100
    this.checker = new Checker(
      SIM_CHAIN_ID,
      list.map((v) => v.address),
      this.honest,
      this.genesis,
      {
        maxQueue: this.settings.maxQueue,
        walMaxBytes: this.settings.walMaxBytes,
        mempoolMaxTxs: this.settings.mempoolMaxTxs,
        maxRoundsAhead: this.params.maxRoundsAhead,
        maxHeightsAhead: this.params.maxHeightsAhead,
        walBytesPerRound: 6 * 256 + (2 * maxProposalBytes) / total + 256,
      },
      () => this.sched.now,
      o.observe,
    )
    const routes: Route[] = []
    if (o.route !== undefined) routes.push(o.route)
    const blackouts = o.fetchBlackouts ?? []
    if (blackouts.length > 0) {
      routes.push((m) =>
        m.channel === 'request' && m.protocol === '/tally/txs/1' && blackouts.some((b) => b.node === m.from && m.time >= b.start && m.time < b.end)
          ? 'drop'
          : undefined,
      )
    }
    const checker = this.checker
    const honestSet = new Set(this.honest)
    this.lockAdversary =
      o.lockAdversary === undefined
        ? undefined
        : new LockAdversary(o.lockAdversary, {
            rng: new Rng(o.seed ^ 0x10c4),
            sched: this.sched,
            gst: this.net.gst,
            validators: o.validators,
            f: Math.floor((o.validators - 1) / 3),
            honest: this.honest.filter((i) => i < o.validators),
            byzantine: Object.keys(byzantine).map(Number),
            maxTxs: this.settings.block.maxTxs,
            params: this.params,
            addressOf: (i) => list[i]!.address,
            honestAt: o.membership === undefined ? undefined : (h) => [...checker.membersAt(h)].filter((i) => honestSet.has(i)).sort((a, b) => a - b),
            fAt: o.membership === undefined ? undefined : (h) => Math.floor((checker.membersAt(h).size - 1) / 3),
          })
    const lockAdversary = this.lockAdversary
    if (lockAdversary !== undefined) routes.push(lockAdversary.route)
    this.network = new SimNetwork(
      this.net,
      this.sched,
      this.rng,
      this.nodes,
      {
        onVerdict: (to, from, verdict) => this.checker.verdict(to, from, verdict),
        onPenalty: (by, peer, _points, reason) => this.checker.penalty(by, peer, reason),
      },
      this.settings.block.maxTxs,
      routes,
    )
    const ctx: SimContext = {
      sched: this.sched,
      rng: this.rng,
      network: this.network,
      checker: this.checker,
      genesis: this.genesis,
      chainId: SIM_CHAIN_ID,
      params: this.params,
      settings: this.settings,
      trace: o.trace,
    }
    this.attacks = new Attacks({
      sched: this.sched,
      rng: new Rng(o.seed ^ 0xbad),
      network: this.network,
      nodes: this.nodes,
      setAt: (h) => checker.setAt(h),
      chainId: SIM_CHAIN_ID,
      params: this.params,
      settings: this.settings,
      honest: this.honest,
      collusionGroups: o.collusionGroups ?? [],
      lockAdversary,
      secretKeys: list.map((v) => v.secretKey),
      addresses: list.map((v) => v.address),
      gst: this.net.gst,
      forgeKinds: o.forgeKinds,
    })
    const attacks = this.attacks
    lockAdversary?.setStateView((i) => this.nodes[i]?.host?.consensusState)
    list.forEach((v, i) => {
      const behaviours = byzantine[i] ?? []
      const plans = [...(o.crashes?.[i] ?? [])]
      const hooks = behaviours.length === 0 ? {} : attacks.hooksFor(i, behaviours, plans)
      for (const p of plans) if (p.atMs !== undefined && p.downMs !== undefined) this.lastRestart = Math.max(this.lastRestart, p.atMs + p.downMs)
      this.nodes.push(new SimValidator(ctx, i, identities[i]!.peerId, v.secretKey, v.address, behaviours.length === 0, o.skews?.[i] ?? 0, plans, hooks))
    })
    if (clientCount > 0 && o.clients !== false) {
      const c = o.clients ?? { accounts: clientCount }
      this.clients = new Clients(this.sched, new Rng(o.seed ^ 0xc11e), SIM_CHAIN_ID, this.nodes, this.network, accounts, {
        intervalMs: c.intervalMs ?? [300, 1500],
        txGossip: c.txGossip ?? true,
        maxPending: c.maxPending,
        untilMs: c.untilMs,
      })
    }
    if (o.membership !== undefined && o.membership.changes.length > 0) {
      this.governors = new Governors(o.membership, {
        sched: this.sched,
        rng: new Rng(o.seed ^ 0x90e),
        chainId: SIM_CHAIN_ID,
        nodes: this.nodes,
        network: this.network,
        identities,
        honest: honestSet,
        checker,
      })
    }
    attacks.start()
    // a halted run stops: every node's power goes off, so work that never waits on an event ends at its next store
    // operation
    this.sched.whenHalted(() => {
      for (const n of this.nodes) n.shutdown()
    })
  }

  /** The height the run must reach: the option, or a few heights past the last planned set change once it is in force. */
  private get target(): number | undefined {
    if (this.governors === undefined) return this.o.heights
    const settled = this.governors.settledHeight
    return settled === undefined ? undefined : Math.max(this.o.heights, settled)
  }

  private done(): boolean {
    const h = this.target
    if (h === undefined) return false
    return this.honest.every((i) => {
      const last = this.checker.lastMembership(i, h)
      return last === 0 || this.checker.commits[i]!.has(last)
    })
  }

  /** Heights the liveness bound allows for: the target, and per planned change as many as a change may take after GST. */
  private get heightsAllowed(): number {
    const changes = this.o.membership?.changes.length ?? 0
    const most = this.o.validators + (this.o.joiners ?? 0)
    return this.o.heights + changes * (most + 4) + (changes > 0 ? (this.o.membership?.afterHeight ?? 1) + (this.o.membership?.settleHeights ?? 2) : 0)
  }

  /** How long after GST (or the last restart) every height may take: rounds grow longer, so it depends on the round reached. */
  private livenessBound(): number {
    const f = this.f
    let round = 0
    for (const i of this.honest) round = Math.max(round, this.nodes[i]!.host?.round ?? 0)
    const later = roundDuration(this.params, f + 2)
    return (f + 3) * roundDuration(this.params, round + f + 3) + this.heightsAllowed * (f + 2) * later + (this.o.livenessSlackMs ?? 10_000)
  }

  async run(): Promise<SimResult> {
    await this.checker.start()
    for (const n of this.nodes) if (this.o.byzantine?.[n.index]?.includes('silent') !== true) n.boot()
    this.clients?.start()
    this.governors?.start()
    const done = () => {
      this.observe()
      return this.done()
    }
    // until GST (the network may keep every height from deciding), then a bound that depends on the round reached
    await this.sched.run(done, this.net.gst)
    let deadline = this.net.gst + this.livenessBound()
    for (;;) {
      if (this.done() || this.sched.halted !== undefined) break
      await this.sched.run(done, deadline)
      if (this.done() || this.sched.halted !== undefined) break
      const restart = Math.max(this.lastRestart, this.checker.lastRestartTime)
      if (restart > this.net.gst && restart + this.livenessBound() > deadline && this.sched.now <= deadline) {
        deadline = restart + this.livenessBound()
        continue
      }
      break
    }
    await this.checker.flush()
    for (const e of this.sched.errors) this.checker.violation('error', `event failed: ${e.stack ?? e.message}`)
    if (this.sched.halted !== undefined) {
      const heights = this.honest.map((i) => `v${i}: ${Math.max(0, ...this.checker.commits[i]!.keys())}`).join(', ')
      this.checker.violation('bound', `the run was halted: ${this.sched.halted} (heights committed: ${heights})`)
    } else if ((this.o.checkLiveness ?? this.fairSets) && !this.done()) {
      const g = this.governors
      if (g !== undefined && !g.complete) {
        const next = this.o.membership!.changes[g.applied.length]!
        this.checker.violation(
          'liveness',
          `set change ${g.applied.length} (${describeChange(next)}) was not in force by ${deadline} ms (the run ended at ${this.sched.now} ms)`,
        )
      }
      this.checker.finish(this.target ?? this.checker.referenceHeight, deadline, this.sched.now)
    }
    for (const n of this.nodes) n.shutdown()
    const coverage = this.checker.coverage
    const sets = this.checker.sets.map((e) => ({
      fromHeight: e.fromHeight,
      members: new Map([...e.members.values()].map((m) => [this.checker.nodeOf(m.address)!, m.power])),
    }))
    coverage.setChanges = sets.filter((e, k) => k > 0 && e.fromHeight <= coverage.heights).length
    coverage.setChangesPlanned = this.o.membership?.changes.length ?? 0
    return {
      seed: this.o.seed,
      violations: this.checker.violations,
      coverage,
      commits: this.checker.commits,
      evidence: this.checker.evidence,
      honest: this.honest,
      endTime: this.sched.now,
      events: this.sched.events,
      network: this.network.stats,
      logs: this.nodes.map((n) => n.stats.log),
      submitted: this.clients?.submitted ?? 0,
      attacks: this.attacks.stats,
      splitRounds: this.lockAdversary?.splits ?? 0,
      sets,
      certificateSigners: this.checker.certificateSigners,
      setChanges: this.governors?.applied ?? [],
    }
  }

  /** After each event: the running honest nodes' bounds, verdicts and locks. */
  private observe(): void {
    const views = []
    for (const i of this.honest) {
      const v = this.nodes[i]!.view()
      if (v !== undefined) views.push(v)
    }
    this.checker.afterEvent(views, this.nodes.length)
  }
}
