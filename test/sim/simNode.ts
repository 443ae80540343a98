import { bytesEqual } from '../../crypto/index.js'
import { SafetyGuard, decodeCommitCertificate, type ConsensusParams } from '../../consensus/index.js'
import { genesisState, type Genesis } from '../../genesis/genesis.js'
import { blockHash } from '../../ledger/block.js'
import { memberOf } from '../../ledger/governance.js'
import { LedgerState, ROOT_STORE_KEY } from '../../ledger/ledgerState.js'
import { txHash } from '../../ledger/transaction.js'
import { VerifiedTxCache } from '../../ledger/verifiedTxCache.js'
import { ConsensusHost, type CommittedBlock } from '../../node/host/consensusHost.js'
import { EvidencePool } from '../../node/host/evidencePool.js'
import * as wiring from '../../node/host/hostWiring.js'
import { loadValidatorSets } from '../../node/host/validatorSets.js'
import { Timers } from '../../node/host/timers.js'
import type { Logger } from '../../node/logger.js'
import { Mempool } from '../../node/mempool/mempool.js'
import { governanceCheck } from '../../node/mempool/nodeMempool.js'
import type { GossipVerdict, RequestHandler } from '../../node/p2p/p2p.js'
import { ChainStore } from '../../node/storage/chainStore.js'
import { decodeStoredBlock } from '../../node/storage/storedBlock.js'
import { StagedKvStore } from '../../node/storage/stagedKvStore.js'
import { BlockSync, type SyncTransport } from '../../node/sync/blockSync.js'
import { consensusGossipHandler } from '../../node/sync/consensusGossip.js'
import { TxFetch } from '../../node/sync/txFetch.js'
import type { Rng } from '../helpers/random.js'
import { CheckedGuard } from './checkedGuard.js'
import type { Checker, NodeView } from './checker.js'
import type { Scheduler } from './scheduler.js'
import { DiskRate, DurableState, Power, SimConsensusLog, SimKvStore, SimSafetyStore, type CutPhase, type StoreOp } from './simDisk.js'
import { simLogger, type SimLogLine } from './simLogger.js'
import type { NetNode, NetPeer, SimNetwork } from './simNetwork.js'

/**
 * One simulated node: a real {@link ConsensusHost} with the real mempool (inline signature checks, governance votes
 * judged against the committed state), ledger state and chain store over an in-memory database, an in-memory WAL and
 * safety record (simDisk.ts), the real block sync and transaction fetch, and the real admission of consensus gossip,
 * wired as node/node.ts wires them, with virtual time for every clock, sleep, timer and periodic task. Every node holds
 * a validator key; whether it is a validator at a height is the chain's business (the host takes each height's set
 * from its ledger), so a node outside the genesis set follows the chain as a full node until governance adds it, and
 * a removed one follows it as a full node again. A crash cuts the power of the running incarnation; a restart builds a
 * new one over what its disk kept.
 */

/** The host settings of a simulated network (node/node.ts takes them from the genesis and config). */
export interface HostSettings {
  readonly block: { readonly maxTxs: number; readonly maxBytes: number }
  readonly emptyBlockIntervalMs: number
  readonly commitMs: number
  readonly maxClockDriftMs: number
  readonly walMaxBytes: number
  readonly maxQueue: number
  readonly mempoolMaxTxs: number
  /** Virtual time of a disk write, sync or save. */
  readonly diskMs: number
  /** Base of every node's clock: virtual time 0 is this wall-clock time. */
  readonly epochMs: number
}

/** Everything a simulated validator shares with the others. */
export interface SimContext {
  readonly sched: Scheduler
  readonly rng: Rng
  readonly network: SimNetwork
  readonly checker: Checker
  readonly genesis: Genesis
  readonly chainId: string
  readonly params: ConsensusParams
  readonly settings: HostSettings
  /** Receives every log line of every node when tracing a run. */
  readonly trace?: (node: number, time: number, line: SimLogLine) => void
}

/** When a validator loses power, and whether and how it comes back. */
export interface CrashPlan {
  /** Cut at this virtual time… */
  readonly atMs?: number
  /** …or at the nth (from 1, over the node's lifetime) store operation of this kind, before or after it takes effect. */
  readonly atOp?: { readonly op: StoreOp; readonly phase: CutPhase; readonly nth: number }
  /** Restart this long after the cut; absent: the node stays down. */
  readonly downMs?: number
  /** …or right after the node sent one of its own messages for which this is true. */
  readonly afterSend?: (m: SentMessage) => boolean
  /**
   * Restart with `data/` deleted (the chain database), so the node syncs back; its WAL and guard record stay beside
   * `data/`, and the WAL's records of the height it was voting at are replayed when the chain reaches it again.
   */
  readonly wipe?: boolean
}

/** One of a node's own messages, as it leaves. */
export interface SentMessage {
  readonly type: 'proposal' | 'prevote' | 'precommit'
  readonly height: number
  readonly round: number
  readonly value: Uint8Array | null
}

/** What a Byzantine layer may change in a validator's wiring. */
export interface NodeHooks {
  /** The host's outgoing consensus gossip (an honest node sends it to everyone). */
  broadcast?(self: SimValidator, bytes: Uint8Array): void
  /** Replaces a request handler before it is served. */
  wrapHandler?(self: SimValidator, protocol: string, handler: RequestHandler): RequestHandler
  /** Transaction bytes served beyond the mempool and the host's blocks. */
  lookup?(hash: Uint8Array): Uint8Array | undefined
  /** A client's transaction this node admitted: whom to gossip it to (default everyone). */
  gossipTargets?(self: SimValidator): number[]
}

/** Counts of the node's log lines above debug, by message (and reason, when there is one). */
export interface NodeStats {
  readonly log: Record<string, number>
}

/** One running incarnation of a validator. */
export class Incarnation implements NetPeer {
  readonly handlers = new Map<string, RequestHandler>()
  readonly inboxes = new Map<number, { queue: Uint8Array[]; busy: boolean }>()
  ready = false
  host: ConsensusHost | undefined
  mempool: Mempool | undefined
  ledger: LedgerState | undefined
  chain: ChainStore | undefined
  wal: SimConsensusLog | undefined
  sync: BlockSync | undefined
  timers: Timers | undefined
  transport: SyncTransport | undefined
  gossip: ((bytes: Uint8Array, from: string) => Promise<GossipVerdict>) | undefined

  constructor(readonly power: Power) {}

  readonly onGossip = (bytes: Uint8Array, from: string): Promise<GossipVerdict> =>
    this.gossip === undefined ? Promise.resolve('ignore') : this.gossip(bytes, from)

  readonly admitTx = (bytes: Uint8Array): Promise<unknown> => (this.mempool === undefined ? Promise.resolve(undefined) : this.mempool.add(bytes))

  /** Stops the components (the power is already off: this only keeps a dead host from queueing more work). */
  halt(): void {
    this.host?.stop()
    this.sync?.stop()
    this.timers?.stop()
  }
}

export class SimValidator implements NetNode {
  readonly durable = new DurableState()
  inc: Incarnation | undefined
  readonly stats: NodeStats = { log: {} }
  private readonly ops = new Map<StoreOp, number>()
  private readonly plans: CrashPlan[]
  private bootCount = 0
  readonly logger: Logger

  constructor(
    private readonly ctx: SimContext,
    readonly index: number,
    readonly id: string,
    readonly secretKey: Uint8Array,
    readonly address: Uint8Array,
    readonly honest: boolean,
    /** Clock offset of this node, in ms. */
    readonly skewMs: number,
    plans: readonly CrashPlan[],
    readonly hooks: NodeHooks = {},
  ) {
    this.plans = [...plans]
    for (const p of this.plans) {
      if (p.atMs !== undefined) ctx.sched.at(p.atMs, null, () => this.cut(p))
    }
    this.logger = simLogger((line) => this.onLog(line))
  }

  private onLog(line: SimLogLine): void {
    if (line.level !== 'debug' && line.level !== 'trace') {
      const reason = line.fields.reason
      const key = typeof reason === 'string' ? `${line.message} (${reason})` : line.message
      this.stats.log[key] = (this.stats.log[key] ?? 0) + 1
    }
    this.ctx.trace?.(this.index, this.ctx.sched.now, line)
  }

  /** This node's clock. */
  now(): number {
    return this.ctx.settings.epochMs + this.ctx.sched.now + this.skewMs
  }

  peer(): NetPeer | undefined {
    const inc = this.inc
    return inc?.ready && inc.power.alive ? inc : undefined
  }

  /** The running host, if any. */
  get host(): ConsensusHost | undefined {
    const inc = this.inc
    return inc?.power.alive ? inc.host : undefined
  }

  /** What the checker looks at after each event, while the host runs. */
  view(): NodeView | undefined {
    const inc = this.inc
    const host = inc?.host
    if (inc === undefined || !inc.power.alive || host === undefined || inc.mempool === undefined || inc.wal === undefined) return undefined
    const state = host.consensusState
    if (state.step === 'idle') return undefined
    return {
      index: this.index,
      height: host.height,
      round: host.round,
      state,
      queueLength: host.queueLength,
      candidateCount: host.candidateCount,
      walBytes: inc.wal.sizeBytes,
      mempoolSize: inc.mempool.size,
    }
  }

  /** The crash plan's decision at a store operation. */
  private plan(op: StoreOp, phase: CutPhase): boolean {
    if (phase === 'before') this.ops.set(op, (this.ops.get(op) ?? 0) + 1)
    const n = this.ops.get(op) ?? 0
    const i = this.plans.findIndex((p) => p.atOp !== undefined && p.atOp.op === op && p.atOp.phase === phase && p.atOp.nth === n)
    if (i < 0) return false
    const [p] = this.plans.splice(i, 1)
    this.pendingRestart = p
    return true
  }

  private pendingRestart: CrashPlan | undefined

  /** Cuts the power now (a timed crash plan, or the simulation's decision). */
  cut(plan: CrashPlan = {}): void {
    const inc = this.inc
    if (inc === undefined || !inc.power.alive) return
    this.pendingRestart = plan
    inc.power.cut()
  }

  /** Turns the node off at the end of a run (not a crash). */
  shutdown(): void {
    this.stopped = true
    this.inc?.power.cut()
  }

  private stopped = false

  private onCut(inc: Incarnation): void {
    inc.halt()
    if (this.stopped) return
    this.ctx.checker.crash(this.index)
    const plan = this.pendingRestart
    this.pendingRestart = undefined
    if (plan?.downMs === undefined) return
    this.ctx.sched.after(plan.downMs, null, () => {
      if (plan.wipe === true) this.durable.wipeData()
      this.ctx.checker.restart(this.index)
      this.boot()
    })
  }

  /** Starts a new incarnation over the disk. */
  boot(): void {
    const power = new Power(
      (op, phase) => this.plan(op, phase),
      () => this.onCut(inc),
    )
    const inc = new Incarnation(power)
    this.inc = inc
    this.bootCount++
    this.start(inc).catch((e: Error) => {
      if (!power.alive) return
      if (this.honest) this.ctx.checker.violation('error', `validator ${this.index} failed to start: ${e.stack ?? e.message}`, this.index)
      power.cut()
    })
  }

  private async start(inc: Incarnation): Promise<void> {
    const { ctx } = this
    const { sched, settings, checker, chainId } = ctx
    const power = inc.power
    const disk = { durable: this.durable, power, scheduler: sched, latencyMs: settings.diskMs, rate: new DiskRate() }
    const logger = this.logger
    // as a node's: synced heights applied back to back share one write
    const kv = new StagedKvStore(new SimKvStore(disk))
    const ledger = (await kv.get(ROOT_STORE_KEY)) === undefined ? await genesisState(ctx.genesis, kv) : await LedgerState.open(kv)
    const chain = new ChainStore(kv)
    await this.recoverCommit(chain, ledger)
    const sets = await loadValidatorSets(chain, kv, ledger)
    const evidence = await EvidencePool.load({ chain, logger })
    const verified = new VerifiedTxCache()
    const tipAtStart = (await chain.tip())?.height ?? 0
    const late: { host?: ConsensusHost; sync?: BlockSync } = {}
    const ledgerTip = () => late.host?.tip?.height ?? tipAtStart
    const mempool = new Mempool(
      { chainId, maxTxs: settings.mempoolMaxTxs },
      {
        accounts: ledger,
        verifiedSignatures: verified,
        logger,
        checkGovernance: governanceCheck(ledger, ledgerTip, ctx.genesis),
      },
    )
    const wal = new SimConsensusLog(disk)
    const store = new SimSafetyStore(disk)
    const guardOptions = { chainId, secretKey: this.secretKey }
    const guard = this.honest
      ? new CheckedGuard(
          guardOptions,
          { store },
          {
            request: (req) => {
              if (power.alive) checker.signRequest(this.index, req, late.host?.consensusState)
            },
            result: (req, r) => {
              if (power.alive) checker.signResult(this.index, req, r)
            },
          },
          chainId,
        )
      : new SafetyGuard(guardOptions, { store })
    const timers = new Timers<'propose' | 'prevote' | 'precommit'>(
      { clock: sched.timerClock(power) },
      {
        onTimeout: (t) => late.host?.onTimeoutElapsed({ height: Number(t.height), round: t.round, kind: t.kind }),
      },
    )
    const base = ctx.network.transport(this.index, power, inc.handlers)
    const transport: SyncTransport = {
      ...base,
      handle: async (protocol, handler) => {
        inc.handlers.set(protocol, this.hooks.wrapHandler?.(this, protocol, handler) ?? handler)
      },
    }
    const limits = settings.block
    const txFetch = new TxFetch(
      { maxTxs: limits.maxTxs, maxResponseBytes: limits.maxBytes + 65536 },
      {
        p2p: transport,
        peerOfAddress: (a) => memberOf(sets.rosterAt(ledgerTip() + 1), a)?.peerId,
        logger,
      },
    )
    const host = new ConsensusHost(
      {
        chainId,
        params: ctx.params,
        block: limits,
        governance: ctx.genesis.params.governance,
        evidence: ctx.genesis.params.evidence,
        emptyBlockIntervalMs: settings.emptyBlockIntervalMs,
        commitMs: settings.commitMs,
        genesisTimeMs: ctx.genesis.genesisTimeMs,
        maxClockDriftMs: settings.maxClockDriftMs,
        walMaxBytes: settings.walMaxBytes,
        maxQueue: settings.maxQueue,
        // a Byzantine validator signs outside its host: its host would take that for another process of its key
        stopOnForeignSignature: this.honest,
      },
      {
        ledger,
        sets,
        evidence,
        kv,
        chain,
        mempool,
        verified,
        wal,
        guard,
        logger,
        now: () => this.now(),
        sleep: (ms) => sched.sleep(ms, power),
        ...wiring.hostTimeouts(timers),
        broadcast: (bytes) => {
          if (power.alive) this.outgoing(bytes)
        },
        fetchTxs: (hashes, proposer) => txFetch.fetch(hashes, proposer),
        requestBlock: (h) => late.sync?.request(h),
        onCommitted: async (b: CommittedBlock) => {
          if (!power.alive) return
          // the ledger's root is this height's, or a later one's when synced heights were written together: a height
          // below the applied tip is held to its header's root, which the host checked its execution against
          checker.committed(this.index, b, host.appliedTip?.height === b.height ? ledger.root() : b.block.header.stateRoot, host.round)
          await mempool.update(b.txHashes, b.touched, !b.ledgerAhead)
        },
        onEvidence: (e) => {
          if (power.alive) checker.evidenceReported(this.index, e)
        },
        onFatal: (e) => {
          if (!power.alive) return
          checker.fatal(this.index, e)
          power.cut()
        },
      },
    )
    late.host = host
    const sync = new BlockSync(wiring.blockSyncOptions(ctx.params, limits), {
      p2p: transport,
      chain,
      logger,
      now: () => this.now(),
      every: (ms, f) => sched.every(ms, power, f),
      sleep: (ms) => sched.sleep(ms, power),
      ...wiring.blockSyncHostDependencies(host),
      apply: async (b, hold) => {
        const applied = await host.applySyncedBlock(b, hold)
        if (applied && power.alive && this.honest) checker.coverage.syncedBlocks++
        return applied
      },
    })
    late.sync = sync
    Object.assign(inc, { host, mempool, ledger, chain, wal, sync, timers, transport })
    await txFetch.start((h) => mempool.get(h)?.bytes ?? host.findTransaction(h) ?? this.hooks.lookup?.(h))
    inc.gossip = consensusGossipHandler({
      ...wiring.consensusGossipHostDependencies(host, sync, { chainId, maxTxs: limits.maxTxs }),
      now: () => this.now(),
      logger,
    })
    inc.ready = true
    await host.start()
    if (!power.alive) return
    const stuckAfterMs = wiring.resendAfterMs(settings.emptyBlockIntervalMs)
    sched.every(wiring.RESEND_CHECK_MS, power, () => host.rebroadcast(stuckAfterMs))
    await sync.start()
  }

  /**
   * A crash between a commit batch and the host's report of it leaves heights durable but unreported (one, or several
   * synced heights written together): the restarted node reports them from its chain store, so the checker holds them
   * to agreement and equal state roots like any commit (the ledger's root is the tip's; a height below it is held to
   * its header's).
   */
  private async recoverCommit(chain: ChainStore, ledger: LedgerState): Promise<void> {
    const tip = await chain.tip()
    if (tip === undefined) return
    const reported = this.ctx.checker.commits[this.index]!
    let from = tip.height
    while (from >= 1 && !reported.has(from)) from--
    for (let height = from + 1; height <= tip.height; height++) {
      const [blockBytes, certBytes] = await Promise.all([chain.blockBytes(height), chain.certificateBytes(height)])
      const stored = blockBytes === undefined ? undefined : decodeStoredBlock(blockBytes, this.ctx.settings.block)
      const cert = certBytes === undefined ? undefined : decodeCommitCertificate(certBytes)
      if (stored?.ok !== true || cert?.ok !== true) throw new Error(`the chain store's height ${height} has no readable block or certificate`)
      const block = stored.value.block
      const txHashes = block.txs.map((t) => txHash(t))
      const root = height === tip.height ? ledger.root() : block.header.stateRoot
      this.ctx.checker.committed(
        this.index,
        {
          height,
          hash: blockHash(block.header),
          round: cert.value.round,
          block,
          lastCommit: stored.value.lastCommit,
          certificate: cert.value,
          txHashes,
          receipts: txHashes.map(() => ({ ok: true })),
          touched: [],
          executionMs: 0,
          ledgerAhead: false,
        },
        root,
        cert.value.round,
      )
    }
  }

  /**
   * The host's outgoing gossip: an honest node sends it to every peer and its signatures count as released; a Byzantine
   * node's layer decides. A crash plan may cut the power right after a message goes out.
   */
  private outgoing(bytes: Uint8Array): void {
    const d = this.ctx.network.decode(bytes)
    let sent: SentMessage | undefined
    if (d !== undefined) {
      if (d.kind === 'vote') {
        const v = d.vote
        if (bytesEqual(v.validator, this.address)) sent = { type: v.type, height: v.height, round: v.round, value: v.valueId }
      } else if (d.kind === 'proposal') {
        const p = d.message.proposal
        if (bytesEqual(p.proposer, this.address)) sent = { type: 'proposal', height: p.height, round: p.round, value: p.valueId }
      }
    }
    if (sent !== undefined) this.ctx.checker.released(this.index, sent, this.honest)
    if (this.hooks.broadcast !== undefined) this.hooks.broadcast(this, bytes)
    else this.ctx.network.broadcast(this.index, bytes)
    if (sent === undefined) return
    const i = this.plans.findIndex((p) => p.afterSend?.(sent) === true)
    if (i >= 0) this.cut(this.plans.splice(i, 1)[0])
  }

  /** How many times this node booted. */
  get boots(): number {
    return this.bootCount
  }
}
