import './p2p/polyfill.js'
import { EventEmitter } from 'node:events'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { toHex } from '../crypto/bytes.js'
import type { Genesis } from '../genesis/genesis.js'
import { memberOf } from '../ledger/governance.js'
import { signedBytesOfDecoded, type DecodedTransaction } from '../ledger/transaction.js'
import { VerifiedTxCache } from '../ledger/verifiedTxCache.js'
import { Metrics } from '../rpc/metrics.js'
import { RpcServer } from '../rpc/server.js'
import { HomeFiles, loadHome, toMultiaddr, walPath, type NodeHome } from './cli/home.js'
import { ConsensusHost, type CommittedBlock } from './host/consensusHost.js'
import { consensusParamsOf } from './host/consensusParams.js'
import { reportCommitted } from './commitReport.js'
import { EvidencePool } from './host/evidencePool.js'
import * as wiring from './host/hostWiring.js'
import { loadSigner } from './host/signer.js'
import { Timers, type TimeoutValue } from './host/timers.js'
import { loadValidatorSets } from './host/validatorSets.js'
import { maxWalBlockBytes } from './host/walEntry.js'
import { componentLogger, createLogger, type Logger } from './logger.js'
import { applyMemorySettings } from './memorySettings.js'
import type { AddResult } from './mempool/mempool.js'
import { nodeMempool } from './mempool/nodeMempool.js'
import { RejectedTxs } from './mempool/rejectedTxs.js'
import { MAX_DEFAULT_VERIFY_WORKERS, VerifyPool } from './mempool/verifyPool.js'
import { admittedPeers } from './p2p/admittedPeers.js'
import { DirectStreams } from './p2p/directStreams.js'
import { P2p } from './p2p/p2p.js'
import { NodeBackend } from './rpcBackend.js'
import type { ChainTip } from './storage/chainStore.js'
import { openChain } from './storage/openChain.js'
import { Wal } from './storage/wal.js'
import { BlockSync } from './sync/blockSync.js'
import { CONSENSUS_PROTOCOL, consensusGossipHandler } from './sync/consensusGossip.js'
import { maxConsensusMessageBytes } from './sync/consensusMessages.js'
import { TxFetch } from './sync/txFetch.js'
import { TxGossip } from './sync/txGossip.js'

/**
 * The composition root: the one place that constructs the node. It opens the stores, builds the mempool, p2p,
 * consensus host, block sync and RPC, starts them in dependency order and stops them in reverse. Calls that run
 * against the order of construction (a timer firing into the host, the host asking block sync for a block, a commit
 * reaching RPC subscribers) go through the node's {@link NodeEvents}.
 */

/** What components built early tell components built later. */
interface NodeEvents {
  timeout: [TimeoutValue<'propose' | 'prevote' | 'precommit'>]
  blockWanted: [height: number]
  committed: [CommittedBlock]
}

/**
 * How long before its height's proposer may propose (the pacing interval after the height started) a node sends the
 * transactions it held back since then: time for the batch to reach the proposer and pass its admission.
 */
const TX_HOLD_LEAD_MS = 15

/** How much of its mempool a node sends a peer that connects: a bound, so that reconnecting costs no flood. */
const PENDING_FOR_NEW_PEER = { maxTxs: 20_000, maxBytes: 4 * 1024 * 1024 }

/** A running Tally node. */
export class TallyNode {
  private readonly stopFns: (() => Promise<void> | void)[] = []
  private readonly events = new EventEmitter<NodeEvents>()
  private stopping: Promise<void> | undefined
  private fatalHandler: (e: Error) => void = () => {}
  private rpc: RpcServer | undefined
  /** The committed tip: read from the chain at start, then set by each commit before anything else hears of it. */
  private tip: ChainTip | undefined
  private tipAtMs = Date.now()

  private constructor(
    private home: NodeHome,
    readonly logger: Logger,
  ) {}

  /** The RPC URL this node serves. */
  get rpcUrl(): string {
    return this.rpc!.url
  }

  /** Called when the node hits a broken invariant and stops. */
  onFatal(handler: (e: Error) => void): void {
    this.fatalHandler = handler
  }

  /**
   * Opens the home, wires every component and starts them in dependency order. With `processWide` (one node per
   * process, as `tallyd start` runs it) it also applies the config's process-wide settings (`memory`).
   */
  static async start(homeDir: string, options: { logger?: Logger; allowMissingSafetyRecord?: boolean; processWide?: boolean } = {}): Promise<TallyNode> {
    const home = loadHome(homeDir)
    const { config, genesis } = home
    if (options.processWide === true) applyMemorySettings(config.memory)
    const logger = options.logger ?? createLogger({ level: config.logLevel, base: { moniker: config.moniker } })
    const node = new TallyNode(home, logger)
    try {
      await node.wire(options.allowMissingSafetyRecord === true)
    } catch (e) {
      await node.stop()
      throw e
    }
    logger.info({ chainId: genesis.chainId }, 'node started')
    return node
  }

  /** Constructs the components and starts each, registering its stop before the next starts. */
  private async wire(allowMissingSafetyRecord: boolean): Promise<void> {
    const { logger, events } = this
    const { config } = this.home
    const log = (component: string) => componentLogger(logger, component)
    const tipHeight = () => this.tip?.height ?? 0

    // stores and keys
    const {
      kv: db,
      staged: kv,
      ledger,
      chain,
    } = await openChain(join(this.home.dir, HomeFiles.chain), this.home.genesis, logger, {
      blockCacheBytes: config.storage.blockCacheBytes,
    })
    // a home's genesis holds no balances: they are read from its file only to seed or check the database
    const genesis: Genesis = { ...this.home.genesis, balances: [] }
    const home = this.home
    const params = consensusParamsOf(genesis)
    const limits = { maxBytes: genesis.params.block.maxBytes, maxTxs: genesis.params.block.maxTxs }
    this.stopFns.push(() => db.close())
    this.tip = await chain.tip()
    const signer = loadSigner(home, logger)
    this.stopFns.push(() => signer.close())
    const guard = signer.guard
    const evidence = await EvidencePool.load({ chain, logger: log('consensus') })
    const sets = await loadValidatorSets(chain, kv, ledger)
    const wal = new Wal(
      { path: walPath(home.dir), maxRecordBytes: Math.max(maxWalBlockBytes(limits), maxConsensusMessageBytes(limits.maxTxs) + 64) },
      { logger: log('wal') },
    )
    const metrics = new Metrics({ defaultMetrics: true })

    // transactions
    const verified = new VerifiedTxCache()
    const verifyPool = new VerifyPool(
      { workers: config.mempool.verifyWorkers ?? Math.max(1, Math.min(MAX_DEFAULT_VERIFY_WORKERS, availableParallelism() - 1)) },
      log('mempool'),
    )
    this.stopFns.push(() => verifyPool.stop())
    const verifySignature = (d: DecodedTransaction) => verifyPool.verify(d.tx.from, signedBytesOfDecoded(d), d.tx.signature)
    const rejected = new RejectedTxs()
    const mempool = nodeMempool(config.mempool, genesis, { ledger, verified, verifySignature, tipHeight, rejected, logger: log('mempool') })

    // network
    const admitted = () => admittedPeers(tipHeight(), (h) => sets.rosterAt(h), ledger.governance(), config.p2p.allowedPeerIds)
    const p2p = new P2p(
      {
        seed: home.nodeSeed,
        listen: [toMultiaddr(config.p2p.listen)],
        peers: config.p2p.peers.map((p) => ({ peerId: p.peerId, multiaddr: toMultiaddr(p.address) })),
        allow: admitted(),
        inboundUpgradeTimeoutMs: config.p2p.inboundUpgradeTimeoutMs,
        maxResponseBytes: limits.maxBytes + 512 * 1024,
      },
      { logger: log('p2p') },
    )
    const direct = new DirectStreams(p2p, log('p2p'), { maxMessageBytes: Math.max(1024 * 1024, maxConsensusMessageBytes(limits.maxTxs)) })
    const txGossip = new TxGossip<AddResult>(
      {},
      {
        gossip: direct,
        admit: (tx) => mempool.add(tx),
        holdUntil: () => this.txHoldUntil(host),
        logger: log('txgossip'),
      },
    )
    metrics.trackTxGossip(txGossip)
    const timers = new Timers<'propose' | 'prevote' | 'precommit'>({}, { onTimeout: (t) => events.emit('timeout', t) })
    this.stopFns.push(() => timers.stop())
    const txFetch = new TxFetch(
      { maxTxs: limits.maxTxs, maxResponseBytes: limits.maxBytes + 65536 },
      {
        p2p,
        peerOfAddress: (a) => memberOf(sets.rosterAt(tipHeight() + 1), a)?.peerId,
        logger: log('sync'),
      },
    )

    // consensus
    const host = new ConsensusHost(
      {
        chainId: genesis.chainId,
        params,
        block: limits,
        governance: genesis.params.governance,
        evidence: genesis.params.evidence,
        emptyBlockIntervalMs: genesis.params.emptyBlockIntervalMs,
        commitMs: genesis.params.timeouts.commitMs,
        minBlockIntervalMs: config.consensus.minBlockIntervalMs,
        genesisTimeMs: genesis.genesisTimeMs,
        maxClockDriftMs: 5_000,
        allowMissingSafetyRecord,
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
        verifySignature,
        logger: log('consensus'),
        now: () => Date.now(),
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        ...wiring.hostTimeouts(timers),
        broadcast: (bytes) => {
          // queued transactions go out first, so peers usually hold a proposal's transactions when it arrives
          txGossip.flush()
          void direct.publish(CONSENSUS_PROTOCOL, bytes)
        },
        fetchTxs: (hashes, proposer) => txFetch.fetch(hashes, proposer),
        requestBlock: (h) => events.emit('blockWanted', h),
        onCommitted: async (b) => {
          this.tip = { height: b.height, blockHash: b.hash, blockTime: b.block.header.time }
          const now = Date.now()
          reportCommitted(b, now - this.tipAtMs, metrics, logger)
          this.tipAtMs = now
          txGossip.rearm()
          events.emit('committed', b)
          await mempool.update(b.txHashes, b.touched, !b.ledgerAhead)
          metrics.mempoolSize.set(mempool.size)
          metrics.mempoolBytes.set(mempool.bytes)
        },
        onValidatorSetsChanged: () => p2p.setAllowed(admitted()),
        onGovernanceChanged: () => p2p.setAllowed(admitted()),
        onFatal: (e) => this.fatal(e),
      },
    )
    events.on('timeout', (t) => host.onTimeoutElapsed({ height: Number(t.height), round: t.round, kind: t.kind }))
    const sync = new BlockSync(wiring.blockSyncOptions(params, limits), {
      p2p,
      chain,
      logger: log('sync'),
      now: () => Date.now(),
      every: (ms, f) => {
        const t = setInterval(f, ms)
        return () => clearInterval(t)
      },
      // a wait for a peer's budget of blocks served does not hold the process open
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
      ...wiring.blockSyncHostDependencies(host),
    })
    events.on('blockWanted', (h) => sync.request(h))

    // RPC
    const backend = new NodeBackend({
      genesis,
      moniker: config.moniker,
      chain,
      tip: () => this.tip,
      getAccount: (a) => ledger.getAccount(a),
      proveAccount: (a) => host.readCommitted(() => ledger.proveAccount(a)),
      nextNonce: (a) => mempool.pendingNonce(a),
      submit: async (bytes) => {
        const r = await txGossip.submit(bytes)
        metrics.mempoolSize.set(mempool.size)
        metrics.mempoolBytes.set(mempool.bytes)
        return r
      },
      pending: (h) => mempool.has(h),
      rejected: (h) => rejected.get(h),
      peerId: p2p.peerId,
      peerCount: () => p2p.peerCount,
      catchingUp: () => sync.catchingUp,
      validator: guard?.address ?? null,
      evidence: () => evidence.views(),
      rosterAt: (h) => sets.rosterAt(h),
      governance: () => ledger.governance(),
      submitEvidence: (bytes) => host.submitEvidence(bytes),
    })
    events.on('committed', (b) => backend.publishCommitted(b))
    const rpc = new RpcServer(
      {
        host: config.rpc.host,
        port: config.rpc.port,
        maxBodyBytes: config.rpc.maxBodyBytes,
        maxBatch: config.rpc.maxBatch,
        requestTimeoutMs: config.rpc.requestTimeoutMs,
        maxConnections: config.rpc.maxConnections,
        maxBodyBytesInFlight: config.rpc.maxBodyBytesInFlight,
        corsOrigins: [...config.rpc.corsOrigins],
        ...(config.rpc.maxConnectionsPerAddress === undefined ? {} : { maxConnectionsPerAddress: config.rpc.maxConnectionsPerAddress }),
        ...(config.rpc.maxResponseBytesInFlight === undefined ? {} : { maxResponseBytesInFlight: config.rpc.maxResponseBytesInFlight }),
        ...(config.rpc.maxResultBytesInFlight === undefined ? {} : { maxResultBytesInFlight: config.rpc.maxResultBytesInFlight }),
        ...(config.rpc.responseStallMs === undefined ? {} : { responseStallMs: config.rpc.responseStallMs }),
        ...(config.rpc.wsPingIntervalMs === undefined ? {} : { wsPingIntervalMs: config.rpc.wsPingIntervalMs }),
        ...(config.rpc.wsMessageTimeoutMs === undefined ? {} : { wsMessageTimeoutMs: config.rpc.wsMessageTimeoutMs }),
      },
      { backend, metrics, logger: log('rpc') },
    )
    this.rpc = rpc

    // start in dependency order; each stop is registered once its component started
    await p2p.start()
    this.stopFns.push(() => p2p.stop())
    p2p.on('peer:connect', (peer) => {
      metrics.peers.set(p2p.peerCount)
      sync.peerConnected(peer)
      // what this node holds pending, in nonce order per sender: it may have been admitted while no peer was there
      txGossip.sendPending(peer, (since) => {
        const { txs, mark } = mempool.pendingForPeer(since, PENDING_FOR_NEW_PEER)
        return { txs: txs.map((t) => t.bytes), mark }
      })
    })
    p2p.on('peer:disconnect', () => metrics.peers.set(p2p.peerCount))
    await txFetch.start((h) => mempool.get(h)?.bytes ?? host.findTransaction(h))
    await direct.subscribe(
      CONSENSUS_PROTOCOL,
      consensusGossipHandler({
        ...wiring.consensusGossipHostDependencies(host, sync, { chainId: genesis.chainId, maxTxs: limits.maxTxs }),
        logger: log('consensus'),
      }),
    )
    this.stopFns.push(() => direct.stop())
    await txGossip.start()
    this.stopFns.push(() => txGossip.stop())
    await wal.start()
    this.stopFns.push(() => wal.stop())
    await host.start()
    this.stopFns.push(() => host.stop())
    const stuckAfterMs = wiring.resendAfterMs(genesis.params.emptyBlockIntervalMs)
    const resend = setInterval(() => host.rebroadcast(stuckAfterMs), wiring.RESEND_CHECK_MS)
    this.stopFns.push(() => clearInterval(resend))
    await sync.start()
    this.stopFns.push(() => sync.stop())
    await rpc.start()
    this.stopFns.push(() => rpc.stop())
    metrics.height.set(tipHeight())
    logger.info(
      {
        height: tipHeight(),
        peerId: p2p.peerId,
        rpc: rpc.url,
        validator: guard ? toHex(guard.address) : null,
        p2p: p2p.addresses(),
      },
      'node components started',
    )
  }

  /** Stops every component in reverse order of start. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const fn of this.stopFns.reverse()) {
        try {
          await fn()
        } catch (e) {
          this.logger.warn({ err: (e as Error).message }, 'error while stopping')
        }
      }
      this.logger.info('node stopped')
    })()
    return this.stopping
  }

  /**
   * Until when transaction gossip holds its batches (see TxGossipDependencies.holdUntil): early in a height, until
   * shortly before the proposer may propose; once this node is past the propose step of its round, as long as the
   * gossip allows (the batch goes out when the next height starts, `rearm`); otherwise, and with pacing off, not at all.
   */
  private txHoldUntil(host: { readonly pastPropose: boolean }): number {
    const pacing = this.home.config.consensus.minBlockIntervalMs
    if (pacing === 0) return Number.NaN
    const point = this.tipAtMs + pacing - TX_HOLD_LEAD_MS
    if (Date.now() < point) return point
    return host.pastPropose ? Number.POSITIVE_INFINITY : Number.NaN
  }

  /**
   * The process's last resort for an error nothing in the node handled (`tallyd start` passes it uncaught exceptions
   * and unhandled rejections): logged as fatal with its stack, then handled as a broken invariant, which stops the
   * node. State on disk stays consistent: every write the node reported done is durable, and the rest is redone
   * from the WAL and the peers at the next start.
   */
  unexpected(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e))
    this.logger.fatal({ err: err.message, stack: err.stack }, 'unexpected error: stopping the node')
    this.fatalHandler(err)
  }

  private fatal(e: Error): void {
    this.logger.fatal({ err: e.message, stack: e.stack }, 'consensus failure: stopping the node')
    this.fatalHandler(e)
  }
}
