import './p2p/polyfill.js'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { toHex } from '../crypto/bytes.js'
import type { ConsensusParams } from '../consensus/index.js'
import type { Genesis } from '../genesis/genesis.js'
import { castVote, memberOf } from '../ledger/governance.js'
import { senderAddress, signedBytesOf, type AnyTransaction } from '../ledger/transaction.js'
import { VerifiedTxCache } from '../ledger/verifiedTxCache.js'
import { Metrics } from '../rpc/metrics.js'
import { RpcServer } from '../rpc/server.js'
import { HomeFiles, loadHome, toMultiaddr, walPath, type NodeHome } from './cli/home.js'
import { ConsensusHost, type CommittedBlock } from './host/consensusHost.js'
import { loadValidatorSets } from './host/validatorSets.js'
import { EvidencePool } from './host/evidencePool.js'
import { loadSigner } from './host/signer.js'
import { maxWalBlockBytes } from './host/walEntry.js'
import { Timers } from './host/timers.js'
import { componentLogger, createLogger, type Logger } from './logger.js'
import { Mempool, type AddResult } from './mempool/mempool.js'
import { RejectedTxs } from './mempool/rejectedTxs.js'
import { MAX_DEFAULT_VERIFY_WORKERS, VerifyPool } from './mempool/verifyPool.js'
import { DirectStreams } from './p2p/directStreams.js'
import { P2p } from './p2p/p2p.js'
import { NodeBackend } from './rpcBackend.js'
import { openChain } from './storage/openChain.js'
import { Wal } from './storage/wal.js'
import { BlockSync } from './sync/blockSync.js'
import { CONSENSUS_PROTOCOL, consensusGossipHandler } from './sync/consensusGossip.js'
import { maxConsensusMessageBytes } from './sync/consensusMessages.js'
import { TxFetch } from './sync/txFetch.js'
import { TxGossip } from './sync/txGossip.js'

/**
 * The composition root: the one place that constructs the node. It opens the stores, builds the mempool, p2p,
 * consensus host, block sync and RPC, starts them in dependency order and stops them in reverse.
 */

function consensusParamsOf(home: NodeHome): ConsensusParams {
  const t = home.genesis.params.timeouts
  return {
    timeoutProposeMs: t.proposeMs, timeoutProposeDeltaMs: t.proposeDeltaMs,
    timeoutPrevoteMs: t.prevoteMs, timeoutPrevoteDeltaMs: t.prevoteDeltaMs,
    timeoutPrecommitMs: t.precommitMs, timeoutPrecommitDeltaMs: t.precommitDeltaMs,
    maxRoundsAhead: 10, maxHeightsAhead: 2,
  }
}

/** How much of its mempool a node sends a peer that connects: a bound, so that reconnecting costs no flood. */
const PENDING_FOR_NEW_PEER = { maxTxs: 20_000, maxBytes: 4 * 1024 * 1024 }

/** A running Tally node. */
export class TallyNode {
  private readonly stopFns: (() => Promise<void> | void)[] = []
  private stopping: Promise<void> | undefined
  private fatalHandler: (e: Error) => void = () => {}
  private rpc: RpcServer | undefined

  private constructor(private home: NodeHome, readonly logger: Logger) {}

  /** The RPC URL this node serves. */
  get rpcUrl(): string {
    return this.rpc!.url
  }

  /** Called when the node hits a broken invariant and stops. */
  onFatal(handler: (e: Error) => void): void {
    this.fatalHandler = handler
  }

  /** Opens the home, wires every component and starts them in dependency order. */
  static async start(homeDir: string, options: { logger?: Logger; allowMissingSafetyRecord?: boolean } = {}): Promise<TallyNode> {
    const home = loadHome(homeDir)
    const { config, genesis } = home
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
    let { home } = this
    const { logger } = this
    const { config } = home
    const log = (component: string) => componentLogger(logger, component)
    const params = consensusParamsOf(home)
    const limits = { maxBytes: home.genesis.params.block.maxBytes, maxTxs: home.genesis.params.block.maxTxs }

    const { kv, ledger, chain } = await openChain(join(home.dir, HomeFiles.chain), home.genesis, logger)
    // the balances only seed a new database: a million of them would otherwise stay in memory for the node's life
    const genesis: Genesis = { ...home.genesis, balances: [] }
    home = this.home = { ...home, genesis }
    this.stopFns.push(() => kv.close())
    const signer = loadSigner(home, logger)
    this.stopFns.push(() => signer.close())
    const guard = signer.guard
    const verified = new VerifiedTxCache()
    const metrics = new Metrics({ defaultMetrics: true })
    const evidence = await EvidencePool.load({ chain, logger: log('consensus') })
    const sets = await loadValidatorSets(chain, kv, ledger)
    // The host and block sync refer to each other through these late-bound calls (sync applies blocks through the
    // host; the host asks sync for blocks it saw decided but cannot rebuild).
    const late: { host?: ConsensusHost; sync?: BlockSync; backend?: NodeBackend } = {}
    const tipAtStart = (await chain.tip())?.height ?? 0
    const ledgerTip = () => late.host?.tip?.height ?? tipAtStart
    const rejected = new RejectedTxs()

    const verifyPool = new VerifyPool({ workers: config.mempool.verifyWorkers ?? Math.max(1, Math.min(MAX_DEFAULT_VERIFY_WORKERS, availableParallelism() - 1)) }, log('mempool'))
    this.stopFns.push(() => verifyPool.stop())
    const verifySignature = (tx: AnyTransaction) => verifyPool.verify(tx.from, signedBytesOf(tx), tx.signature)
    const mempool = new Mempool(
      {
        chainId: genesis.chainId, maxTxs: config.mempool.maxTxs, maxBytes: config.mempool.maxBytes, maxFuturePerSender: config.mempool.maxFuturePerSender,
        maxTxsPerSender: config.mempool.maxTxsPerSender, maxBytesPerSender: config.mempool.maxBytesPerSender,
        gappedSharePercent: config.mempool.gappedSharePercent, gappedExpiryHeights: config.mempool.gappedExpiryHeights,
      },
      {
        accounts: ledger, verifiedSignatures: verified, logger: log('mempool'), verifySignature,
        checkGovernance: (tx) => {
          const state = ledger.governance()
          if (state === undefined) return { code: 'not_validator', reason: 'no governance state' }
          const r = castVote(state, ledgerTip() + 1, senderAddress(tx), tx.action, genesis.params.governance)
          return r.ok ? undefined : r.error
        },
        onRemoved: (hash, removal) => {
          if (removal.code === 'committed') return
          rejected.add(hash, removal.code, removal.reason)
          // evictions and expiries come in floods under abuse; one line each at info would drown the log
          const level = removal.code === 'evicted' || removal.code === 'expired' ? 'debug' : 'info'
          logger[level]({ tx: toHex(hash), code: removal.code }, `transaction dropped from the mempool: ${removal.reason}`)
        },
      },
    )

    // admitted: the validators of the sets in force next and after (they follow governance), and configured peers
    // Admitted: the validators of the sets in force next and after (they follow governance), a validator whose addition
    // is pending (so it can sync before the vote completes), and configured peers.
    const admittedPeers = () => {
      const tip = ledgerTip()
      const pending = (ledger.governance()?.pending ?? []).flatMap((p) => (p.action.type === 'add' ? [p.action.peerId] : []))
      return [...new Set([...sets.rosterAt(tip + 1), ...sets.rosterAt(tip + 2)].map((m) => m.peerId)), ...pending, ...config.p2p.allowedPeerIds]
    }
    const p2p = new P2p({
      seed: home.nodeSeed,
      listen: [toMultiaddr(config.p2p.listen)],
      peers: config.p2p.peers.map((p) => ({ peerId: p.peerId, multiaddr: toMultiaddr(p.address) })),
      allow: admittedPeers(),
      inboundUpgradeTimeoutMs: config.p2p.inboundUpgradeTimeoutMs,
      maxResponseBytes: limits.maxBytes + 512 * 1024,
    }, { logger: log('p2p') })
    const direct = new DirectStreams(p2p, log('p2p'), { maxMessageBytes: Math.max(1024 * 1024, maxConsensusMessageBytes(limits.maxTxs)) })
    const txGossip = new TxGossip<AddResult>({}, { gossip: direct, admit: (tx) => mempool.add(tx), logger: log('txgossip') })
    const wal = new Wal({ path: walPath(home.dir), maxRecordBytes: Math.max(maxWalBlockBytes(limits), maxConsensusMessageBytes(limits.maxTxs) + 64) }, { logger: log('wal') })

    const timers = new Timers<'propose' | 'prevote' | 'precommit'>({}, {
      onTimeout: (t) => late.host?.onTimeoutElapsed({ height: Number(t.height), round: t.round, kind: t.kind }),
    })
    this.stopFns.push(() => timers.stop())
    const txFetch = new TxFetch({ maxTxs: limits.maxTxs, maxResponseBytes: limits.maxBytes + 65536 }, {
      p2p, peerOfAddress: (a) => memberOf(sets.rosterAt(ledgerTip() + 1), a)?.peerId, logger: log('sync'),
      lookup: (h) => mempool.get(h)?.bytes ?? late.host?.findTransaction(h),
    })
    const host = new ConsensusHost({
      chainId: genesis.chainId, params, block: limits, governance: genesis.params.governance, evidence: genesis.params.evidence,
      emptyBlockIntervalMs: genesis.params.emptyBlockIntervalMs, commitMs: genesis.params.timeouts.commitMs,
      genesisTimeMs: genesis.genesisTimeMs, maxClockDriftMs: 5_000, allowMissingSafetyRecord,
    }, {
      ledger, sets, evidence, kv, chain, mempool, verified, wal, guard,
      logger: log('consensus'),
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      scheduleTimeout: (t, ms) => timers.schedule({ height: BigInt(t.height), round: t.round, kind: t.kind }, ms),
      cancelTimeoutsBelow: (h) => timers.cancelBelow(BigInt(h)),
      broadcast: (bytes) => {
        // queued transactions go out first, so peers usually hold a proposal's transactions when it arrives
        txGossip.flush()
        void direct.publish(CONSENSUS_PROTOCOL, bytes)
      },
      fetchTxs: (hashes, proposer) => txFetch.fetch(hashes, proposer),
      verifySignature,
      requestBlock: (h) => late.sync?.request(h),
      onCommitted: (b) => this.onCommitted(b, { host: late.host!, mempool, metrics, backend: late.backend! }),
      onValidatorSetsChanged: () => p2p.setAllowed(admittedPeers()),
      onGovernanceChanged: () => p2p.setAllowed(admittedPeers()),
      onFatal: (e) => this.fatal(e),
    })
    late.host = host
    const sync = new BlockSync({ intervalMs: 1_000, stuckMs: 2 * (params.timeoutProposeMs + params.timeoutPrevoteMs + params.timeoutPrecommitMs), window: 8, limits }, {
      p2p, chain, logger: log('sync'),
      tipHeight: () => host.tip?.height ?? 0,
      heightStartedAtMs: () => host.heightStartedAtMs,
      now: () => Date.now(),
      every: (ms, f) => {
        const t = setInterval(f, ms)
        return () => clearInterval(t)
      },
      verifyTip: (cert) => host.verifyTip(cert),
      verifyCertified: (h, stored, cert) => host.verifyBlockCertificate(h, stored, cert),
      check: (h, stored, cert) => host.checkSyncedBlock(h, stored, cert),
      apply: (b) => host.applySyncedBlock(b),
    })
    late.sync = sync
    const backend = new NodeBackend({
      genesis, moniker: config.moniker, chain,
      tip: () => host.tip,
      getAccount: (a) => ledger.getAccount(a),
      proveAccount: (a) => ledger.proveAccount(a),
      nextNonce: (a) => mempool.pendingNonce(a),
      submit: async (bytes) => {
        const r = await txGossip.submit(bytes)
        metrics.mempoolSize.set(mempool.size)
        metrics.mempoolBytes.set(mempool.bytes)
        return r.ok ? { ok: true, hash: r.hash } : { ok: false, code: r.code, reason: r.reason }
      },
      pending: (h) => mempool.has(h),
      rejected: (h) => rejected.get(h),
      peerId: p2p.peerId, peerCount: () => p2p.peerCount, catchingUp: () => sync.catchingUp,
      validator: guard?.address ?? null,
      evidence: () => evidence.views(),
      rosterAt: (h) => sets.rosterAt(h),
      governance: () => ledger.governance(),
    })
    late.backend = backend
    const rpc = new RpcServer({
      host: config.rpc.host, port: config.rpc.port, maxBodyBytes: config.rpc.maxBodyBytes, maxBatch: config.rpc.maxBatch,
      requestTimeoutMs: config.rpc.requestTimeoutMs, corsOrigins: [...config.rpc.corsOrigins],
    }, { backend, metrics, logger: log('rpc') })
    this.rpc = rpc

    // start in dependency order; each stop is registered once its component started
    await p2p.start()
    this.stopFns.push(() => p2p.stop())
    p2p.on('peer:connect', (peer) => {
      metrics.peers.set(p2p.peerCount)
      // what this node holds pending, in nonce order per sender: it may have been admitted while no peer was there
      txGossip.sendPending(peer, mempool.reap(PENDING_FOR_NEW_PEER).map((t) => t.bytes))
    })
    p2p.on('peer:disconnect', () => metrics.peers.set(p2p.peerCount))
    await txFetch.start()
    await direct.subscribe(CONSENSUS_PROTOCOL, consensusGossipHandler({
      chainId: genesis.chainId, validatorSet: (h) => sets.at(h), maxTxs: limits.maxTxs, height: () => host.height,
      status: (m) => host.messageStatus(m),
      notePeerHeight: (peer, h) => sync.notePeerHeight(peer, h),
      onProposal: (m) => host.onProposalMessage(m),
      onVote: (v) => host.onVote(v),
      onEvidence: (bytes) => host.admitEvidence(bytes),
      logger: log('consensus'),
    }))
    this.stopFns.push(() => direct.stop())
    await txGossip.start()
    this.stopFns.push(() => txGossip.stop())
    await wal.start()
    this.stopFns.push(() => wal.stop())
    await host.start()
    this.stopFns.push(() => host.stop())
    // A height that lasts well beyond the empty-block wait is stuck: its messages go out again every second.
    const resendAfterMs = Math.max(2_000, genesis.params.emptyBlockIntervalMs + 1_000)
    const resend = setInterval(() => host.rebroadcast(resendAfterMs), 1_000)
    this.stopFns.push(() => clearInterval(resend))
    await sync.start()
    this.stopFns.push(() => sync.stop())
    await rpc.start()
    this.stopFns.push(() => rpc.stop())
    metrics.height.set(host.tip?.height ?? 0)
    logger.info({
      height: host.tip?.height ?? 0, peerId: p2p.peerId, rpc: rpc.url,
      validator: guard ? toHex(guard.address) : null, p2p: p2p.addresses(),
    }, 'node components started')
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

  private fatal(e: Error): void {
    this.logger.fatal({ err: e.message, stack: e.stack }, 'consensus failure: stopping the node')
    this.fatalHandler(e)
  }

  /** After a block is durable: metrics, the log line, RPC subscribers, then the mempool catches up. */
  private async onCommitted(b: CommittedBlock, c: { host: ConsensusHost; mempool: Mempool; metrics: Metrics; backend: NodeBackend }): Promise<void> {
    const okCount = b.receipts.filter((r) => r.ok).length
    c.metrics.height.set(b.height)
    c.metrics.round.set(b.round)
    c.metrics.txsCommitted.inc({ outcome: 'ok' }, okCount)
    if (b.receipts.length > okCount) c.metrics.txsCommitted.inc({ outcome: 'failed' }, b.receipts.length - okCount)
    c.metrics.blockExecutionDuration.observe(b.executionMs / 1000)
    const duration = Date.now() - (c.host.heightStartedAtMs || Date.now())
    c.metrics.consensusStepDuration.observe({ step: 'height' }, duration / 1000)
    this.logger.info({ height: b.height, txs: b.txHashes.length, round: b.round, durationMs: duration, hash: toHex(b.hash) }, 'committed block')
    c.backend.publishCommitted(b)
    await c.mempool.update(b.txHashes, b.touched)
    c.metrics.mempoolSize.set(c.mempool.size)
    c.metrics.mempoolBytes.set(c.mempool.bytes)
  }
}
