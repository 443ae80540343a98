import './polyfill.js'
import { EventEmitter } from 'node:events'
import { mkdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { addressFromPublicKey } from '../crypto/address.js'
import { bytesEqual, toHex } from '../crypto/bytes.js'
import { decodeCanonical, encodeCanonical } from '../crypto/canonical.js'
import { keyPairFromSeed } from '../crypto/ed25519.js'
import { sha256 } from '../crypto/hash.js'
import {
  SafetyGuard, createValidatorSet, decodeCommitCertificate, findValidator, decodeSignedProposal, decodeSignedVote, encodeSignedProposal, encodeSignedVote, type ConsensusParams, type Evidence,
  type ValidatorSet,
} from '../consensus/index.js'
import { genesisHash, genesisState } from '../genesis/genesis.js'
import { blockHash } from '../ledger/block.js'
import { LedgerState } from '../ledger/ledgerState.js'
import { txSignBytes, type Transaction } from '../ledger/transaction.js'
import { VerifiedTxCache } from '../ledger/verifiedTxCache.js'
import type { BlockInfo, DomainValue, RpcBackend, TxCommittedEvent, TxLookup } from '../rpc/backend.js'
import { Metrics } from '../rpc/metrics.js'
import { RpcServer } from '../rpc/server.js'
import { BlockSync } from './blockSync.js'
import { ChainStore } from './chainStore.js'
import { ConsensusHost, type CommittedBlock } from './consensusHost.js'
import { HomeFiles, loadHome, toMultiaddr, type NodeHome } from './home.js'
import { componentLogger, createLogger, type Logger } from './logger.js'
import { Mempool, type AddResult } from './mempool.js'
import {
  decodeConsensusGossip, decodeStoredBlock, decodeTxFetchRequest, decodeTxFetchResponse, encodeTxFetchRequest,
  encodeTxFetchResponse, maxConsensusMessageBytes,
} from './messages.js'
import { DirectStreams } from './directStreams.js'
import { P2p } from './p2p.js'
import { peerIdOf } from './peerId.js'
import { LevelKvStore } from './store/levelKvStore.js'
import { Timers } from './timers.js'
import { TxGossip } from './txGossip.js'
import { MAX_DEFAULT_VERIFY_WORKERS, VerifyPool } from './verifyPool.js'
import { Wal } from './wal.js'
import { FileSafetyStore } from './safetyFile.js'

/**
 * The composition root: the one place that constructs the node. It opens the stores, builds the mempool, p2p,
 * consensus host, block sync and RPC, starts them in dependency order and stops them in reverse.
 */

/** Direct-stream protocol of signed proposals and votes (node/directStreams.ts). */
export const CONSENSUS_PROTOCOL = '/tally/consensus/1'
export const TX_FETCH_PROTOCOL = '/tally/txs/1'
const GENESIS_KEY = new Uint8Array([0x4d, 0x67, 0x65, 0x6e]) // 'Mgen'
const MAX_EVIDENCE = 1000
const MAX_REJECTED = 100_000

function consensusParamsOf(home: NodeHome): ConsensusParams {
  const t = home.genesis.params.timeouts
  return {
    timeoutProposeMs: t.proposeMs, timeoutProposeDeltaMs: t.proposeDeltaMs,
    timeoutPrevoteMs: t.prevoteMs, timeoutPrevoteDeltaMs: t.prevoteDeltaMs,
    timeoutPrecommitMs: t.precommitMs, timeoutPrecommitDeltaMs: t.precommitDeltaMs,
    maxRoundsAhead: 10, maxHeightsAhead: 2,
  }
}

function evidenceView(e: Evidence): DomainValue {
  if (e.kind === 'conflictingVotes') {
    return {
      kind: e.kind, validator: e.first.validator, height: e.first.height, round: e.first.round, type: e.first.type,
      first: { valueId: e.first.valueId, signature: e.first.signature }, second: { valueId: e.second.valueId, signature: e.second.signature },
    }
  }
  return {
    kind: e.kind, validator: e.first.proposer, height: e.first.height, round: e.first.round, type: 'proposal',
    first: { valueId: e.first.valueId, signature: e.first.signature }, second: { valueId: e.second.valueId, signature: e.second.signature },
  }
}

function encodeEvidence(e: Evidence): Uint8Array {
  return e.kind === 'conflictingVotes'
    ? encodeCanonical([1, encodeSignedVote(e.first), encodeSignedVote(e.second)])
    : encodeCanonical([2, encodeSignedProposal(e.first), encodeSignedProposal(e.second)])
}

/** A running Tally node. */
export class TallyNode {
  private readonly events = new EventEmitter()
  private readonly rejected = new Map<string, { error: string; reason: string }>()
  private evidence: DomainValue[] = []
  private evidenceBytes: Uint8Array[] = []
  private readonly stopFns: (() => Promise<void> | void)[] = []
  private stopping: Promise<void> | undefined
  private fatalHandler: (e: Error) => void = () => {}
  /** Built after the node, over its backend. */
  private rpc: RpcServer | undefined

  private constructor(
    readonly home: NodeHome,
    readonly logger: Logger,
    private readonly validatorSet: ValidatorSet,
    private readonly parts: {
      kv: LevelKvStore; chain: ChainStore; ledger: LedgerState; mempool: Mempool; p2p: P2p; txGossip: TxGossip<AddResult>
      host: ConsensusHost; sync: BlockSync; metrics: Metrics; timers: Timers<'propose' | 'prevote' | 'precommit'>; wal: Wal; guard: SafetyGuard | null
    },
  ) {
    this.events.setMaxListeners(0)
  }

  /** The RPC URL this node serves. */
  get rpcUrl(): string {
    return this.rpc!.url
  }

  /** Called when the node hits a broken invariant and stops. */
  onFatal(handler: (e: Error) => void): void {
    this.fatalHandler = handler
  }

  /** Opens the home, wires every component and starts them in dependency order. */
  static async start(homeDir: string, options: { logger?: Logger } = {}): Promise<TallyNode> {
    const home = loadHome(homeDir)
    const { config, genesis } = home
    const logger = options.logger ?? createLogger({ level: config.logLevel, base: { moniker: config.moniker } })
    const vs = createValidatorSet(genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power })))
    if (!vs.ok) throw new Error(`genesis validator set: ${vs.error.reason}`)
    const validatorSet = vs.value
    const params = consensusParamsOf(home)
    const limits = { maxBytes: genesis.params.block.maxBytes, maxTxs: genesis.params.block.maxTxs }

    // storage: the chain database, initialised with the genesis state on first start
    mkdirSync(join(home.dir, HomeFiles.data), { recursive: true })
    const kv = await LevelKvStore.open(join(home.dir, HomeFiles.chain))
    const gHash = genesisHash(genesis)
    const storedGenesis = await kv.get(GENESIS_KEY)
    let ledger: LedgerState
    if (storedGenesis === undefined) {
      ledger = await genesisState(genesis, kv)
      await kv.write([{ type: 'put', key: GENESIS_KEY, value: gHash }])
      logger.info({ chainId: genesis.chainId, genesisHash: toHex(gHash) }, 'initialised the genesis state')
    } else {
      if (!bytesEqual(storedGenesis, gHash)) {
        await kv.close()
        throw new Error(`${join(home.dir, HomeFiles.chain)} belongs to another genesis; move it away to start this chain`)
      }
      ledger = await LedgerState.open(kv)
    }
    const chain = new ChainStore(kv)
    const verified = new VerifiedTxCache()
    const metrics = new Metrics({ defaultMetrics: true })

    // this node's keys: the validator key signs through the guard; the node key is the libp2p identity
    let guard: SafetyGuard | null = null
    let safetyStore: FileSafetyStore | undefined
    if (home.validatorSeed !== undefined) {
      const address = addressFromPublicKey(keyPairFromSeed(home.validatorSeed).publicKey)
      if (validatorSet.validators.some((v) => bytesEqual(v.address, address))) {
        guard = new SafetyGuard({ chainId: genesis.chainId, secretKey: home.validatorSeed }, { store: safetyStore = new FileSafetyStore(join(home.dir, HomeFiles.validatorState)) })
      } else {
        logger.warn('the validator key in this home is not in the genesis validator set: running as a non-validator')
      }
    }

    // A validator's libp2p identity is bound to it by the genesis: its node key must be the peer id listed there.
    if (guard !== null) {
      const listed = genesis.validators.find((v) => bytesEqual(v.address, guard!.address))!.peerId
      const own = peerIdOf(keyPairFromSeed(home.nodeSeed).publicKey)
      if (listed !== own) {
        safetyStore?.close()
        await kv.close()
        throw new Error(`${join(home.dir, HomeFiles.nodeKey)} is peer ${own}, but the genesis lists this validator as ${listed}`)
      }
    }

    let node: TallyNode | undefined
    const verifyPool = new VerifyPool({ workers: config.mempool.verifyWorkers ?? Math.max(1, Math.min(MAX_DEFAULT_VERIFY_WORKERS, availableParallelism() - 1)) }, componentLogger(logger, 'mempool'))
    const verifySignature = (tx: Transaction) => verifyPool.verify(tx.from, txSignBytes(tx), tx.signature)
    const mempool = new Mempool(
      { chainId: genesis.chainId, maxTxs: config.mempool.maxTxs, maxBytes: config.mempool.maxBytes, maxFuturePerSender: config.mempool.maxFuturePerSender },
      {
        accounts: ledger, verifiedSignatures: verified, logger: componentLogger(logger, 'mempool'),
        verifySignature,
        onRemoved: (hash, removal) => node?.onMempoolRemoved(hash, removal),
      },
    )

    const peerIds = genesis.validators.map((v) => v.peerId)
    const p2p = new P2p({
      seed: home.nodeSeed,
      listen: [toMultiaddr(config.p2p.listen)],
      peers: config.p2p.peers.map((p) => ({ peerId: p.peerId, multiaddr: toMultiaddr(p.address) })),
      allow: [...peerIds, ...config.p2p.allowedPeerIds],
      maxResponseBytes: limits.maxBytes + 512 * 1024,
    }, { logger: componentLogger(logger, 'p2p') })
    const direct = new DirectStreams(p2p, componentLogger(logger, 'p2p'), { maxMessageBytes: Math.max(1024 * 1024, maxConsensusMessageBytes(limits.maxTxs)) })
    const txGossip = new TxGossip<AddResult>({}, { gossip: direct, admit: (tx) => mempool.add(tx), logger: componentLogger(logger, 'txgossip') })
    const wal = new Wal({ path: join(home.dir, HomeFiles.wal) }, { logger: componentLogger(logger, 'wal') })
    mkdirSync(dirname(join(home.dir, HomeFiles.wal)), { recursive: true })

    let host: ConsensusHost | undefined
    let sync: BlockSync | undefined
    const timers = new Timers<'propose' | 'prevote' | 'precommit'>({}, {
      onTimeout: (t) => host?.onTimeoutElapsed({ height: Number(t.height), round: t.round, kind: t.kind }),
    })
    const peerOfAddress = new Map(genesis.validators.map((v) => [toHex(v.address), v.peerId]))

    const fetchTxs = async (hashes: readonly Uint8Array[], proposer: Uint8Array): Promise<(Uint8Array | undefined)[]> => {
      const out: (Uint8Array | undefined)[] = new Array(hashes.length).fill(undefined)
      const first = peerOfAddress.get(toHex(proposer))
      const order = [...(first ? [first] : []), ...p2p.peers().filter((p) => p !== first)]
      for (const peer of order) {
        const missing = out.map((t, i) => (t === undefined ? i : -1)).filter((i) => i >= 0)
        if (missing.length === 0) break
        const r = await p2p.request(peer, TX_FETCH_PROTOCOL, encodeTxFetchRequest(missing.map((i) => hashes[i]!)), { timeoutMs: 3_000, maxResponseBytes: limits.maxBytes + 65536 })
        if (!r.ok) continue
        const txs = decodeTxFetchResponse(r.data, missing.length, limits.maxBytes + 65536)
        if (!txs) continue
        missing.forEach((i, k) => { if (txs[k]!.byteLength > 0) out[i] = txs[k] })
      }
      return out
    }

    host = new ConsensusHost({
      chainId: genesis.chainId, params, validatorSet, block: limits,
      emptyBlockIntervalMs: genesis.params.emptyBlockIntervalMs, commitMs: genesis.params.timeouts.commitMs,
      genesisTimeMs: genesis.genesisTimeMs, maxClockDriftMs: 5_000,
    }, {
      ledger, kv, chain, mempool, verified, wal, guard,
      logger: componentLogger(logger, 'consensus'),
      now: () => Date.now(),
      scheduleTimeout: (t, ms) => timers.schedule({ height: BigInt(t.height), round: t.round, kind: t.kind }, ms),
      cancelTimeoutsBelow: (h) => timers.cancelBelow(BigInt(h)),
      broadcast: (bytes) => {
        // queued transactions go out first, so peers usually hold a proposal's transactions when it arrives
        txGossip.flush()
        void direct.publish(CONSENSUS_PROTOCOL, bytes)
      },
      fetchTxs,
      verifySignature,
      requestBlock: (h) => sync?.request(h),
      onCommitted: (b) => node?.onCommitted(b),
      onEvidence: (e) => void node?.onEvidence(e),
      onFatal: (e) => node?.fatal(e),
    })
    sync = new BlockSync({ intervalMs: 1_000, stuckMs: 2 * (params.timeoutProposeMs + params.timeoutPrevoteMs + params.timeoutPrecommitMs), window: 8, limits }, {
      p2p, chain, logger: componentLogger(logger, 'sync'),
      tipHeight: () => host!.tip?.height ?? 0,
      heightStartedAtMs: () => host!.heightStartedAtMs,
      now: () => Date.now(),
      apply: (h, stored, cert) => host!.applySyncedBlock(h, stored, cert),
    })

    node = new TallyNode(home, logger, validatorSet, { kv, chain, ledger, mempool, p2p, txGossip, host, sync, metrics, timers, wal, guard })
    const rpc = new RpcServer({
      host: config.rpc.host, port: config.rpc.port, maxBodyBytes: config.rpc.maxBodyBytes, maxBatch: config.rpc.maxBatch,
      requestTimeoutMs: config.rpc.requestTimeoutMs, corsOrigins: [...config.rpc.corsOrigins],
    }, { backend: node.backend, metrics, logger: componentLogger(logger, 'rpc') })
    node.rpc = rpc
    await node.loadEvidence()

    // start in dependency order; stop in reverse
    node.stopFns.push(() => kv.close())
    node.stopFns.push(() => safetyStore?.close())
    node.stopFns.push(() => verifyPool.stop())
    await p2p.start()
    node.stopFns.push(() => p2p.stop())
    p2p.on('peer:connect', () => metrics.peers.set(p2p.peerCount))
    p2p.on('peer:disconnect', () => metrics.peers.set(p2p.peerCount))
    await p2p.handle(TX_FETCH_PROTOCOL, (req) => {
      const hashes = decodeTxFetchRequest(req, limits.maxTxs)
      if (hashes === undefined) throw new Error('malformed transaction fetch request')
      return encodeTxFetchResponse(hashes.map((h) => mempool.get(h)?.bytes ?? host!.findTransaction(h) ?? new Uint8Array(0)))
    })
    await direct.subscribe(CONSENSUS_PROTOCOL, (data, from) => {
      const m = decodeConsensusGossip(data, limits.maxTxs)
      if (!m.ok) return 'reject'
      const height = m.value.kind === 'proposal' ? m.value.message.proposal.height : m.value.vote.height
      // Signatures are checked once, by the core; here only what costs nothing: the signer is a validator.
      const signer = m.value.kind === 'proposal' ? m.value.message.proposal.proposer : m.value.vote.validator
      if (findValidator(validatorSet, signer) === undefined) return 'reject'
      // the sender works on `height`, so it holds height - 1 (a claim block sync checks like any tip it is told)
      sync!.notePeerTip(from, height - 1)
      const current = host!.height
      if (height < current || height > current + 2) return 'ignore'
      if (m.value.kind === 'proposal') host!.onProposalMessage(m.value.message)
      else host!.onVote(m.value.vote)
      return 'accept'
    })
    await txGossip.start()
    node.stopFns.push(() => direct.stop())
    node.stopFns.push(() => txGossip.stop())
    await wal.start()
    node.stopFns.push(() => wal.stop())
    node.stopFns.push(() => timers.stop())
    await host.start()
    node.stopFns.push(() => host!.stop())
    // A height that lasts well beyond the empty-block wait is stuck: its messages go out again every second.
    const resendAfterMs = Math.max(2_000, genesis.params.emptyBlockIntervalMs + 1_000)
    const resend = setInterval(() => host!.rebroadcast(resendAfterMs), 1_000)
    node.stopFns.push(() => clearInterval(resend))
    await sync.start()
    node.stopFns.push(() => sync!.stop())
    await rpc.start()
    node.stopFns.push(() => rpc.stop())
    metrics.height.set(host.tip?.height ?? 0)
    logger.info({
      chainId: genesis.chainId, height: host.tip?.height ?? 0, peerId: p2p.peerId, rpc: rpc.url,
      validator: guard ? toHex(guard.address) : null, p2p: p2p.addresses(),
    }, 'node started')
    return node
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

  // ---- events from the host ---------------------------------------------------------------------------------

  private async onCommitted(b: CommittedBlock): Promise<void> {
    const { mempool, metrics, host } = this.parts
    const okCount = b.receipts.filter((r) => r.ok).length
    metrics.height.set(b.height)
    metrics.round.set(b.round)
    metrics.txsCommitted.inc({ outcome: 'ok' }, okCount)
    if (b.receipts.length > okCount) metrics.txsCommitted.inc({ outcome: 'failed' }, b.receipts.length - okCount)
    metrics.blockExecutionDuration.observe(b.executionMs / 1000)
    const duration = Date.now() - (host.heightStartedAtMs || Date.now())
    metrics.consensusStepDuration.observe({ step: 'height' }, duration / 1000)
    this.logger.info({ height: b.height, txs: b.txHashes.length, round: b.round, durationMs: duration, hash: toHex(b.hash) }, 'committed block')
    const info = this.blockInfo(b.height, b.hash, b.block, b.lastCommit, b.certificate, b.receipts)
    this.events.emit('block', info)
    b.txHashes.forEach((hash, index) => {
      const r = b.receipts[index]!
      const e: TxCommittedEvent = r.ok ? { hash, height: b.height, index, ok: true } : { hash, height: b.height, index, ok: false, error: r.code }
      this.events.emit('tx', e)
    })
    await mempool.update(b.txHashes, b.touched)
    metrics.mempoolSize.set(mempool.size)
    metrics.mempoolBytes.set(mempool.bytes)
  }

  private onMempoolRemoved(hash: Uint8Array, removal: { code: string; reason: string }): void {
    if (removal.code === 'committed') return
    if (this.rejected.size >= MAX_REJECTED) this.rejected.delete(this.rejected.keys().next().value!)
    this.rejected.set(toHex(hash), { error: removal.code, reason: removal.reason })
    this.logger.info({ tx: toHex(hash), code: removal.code }, `transaction dropped from the mempool: ${removal.reason}`)
  }

  private async loadEvidence(): Promise<void> {
    this.evidenceBytes = await this.parts.chain.loadEvidence()
    this.evidence = this.evidenceBytes.map((b) => {
      const e = decodeCanonical(b, 4096)
      if (!e.ok || !Array.isArray(e.value)) throw new Error('stored evidence is corrupt')
      const [kind, x, y] = e.value as [number, Uint8Array, Uint8Array]
      if (kind === 1) {
        const first = decodeSignedVote(x), second = decodeSignedVote(y)
        if (!first.ok || !second.ok) throw new Error('stored evidence is corrupt')
        return evidenceView({ kind: 'conflictingVotes', first: first.value, second: second.value })
      }
      const first = decodeSignedProposal(x), second = decodeSignedProposal(y)
      if (!first.ok || !second.ok) throw new Error('stored evidence is corrupt')
      return evidenceView({ kind: 'conflictingProposals', first: first.value, second: second.value })
    })
  }

  private async onEvidence(e: Evidence): Promise<void> {
    const bytes = encodeEvidence(e)
    const id = toHex(sha256(bytes))
    if (this.evidenceBytes.some((b) => toHex(sha256(b)) === id)) return
    this.logger.warn({ kind: e.kind, validator: toHex(e.kind === 'conflictingVotes' ? e.first.validator : e.first.proposer), height: e.first.height, round: e.first.round }, 'equivocation evidence')
    this.evidenceBytes.push(bytes)
    this.evidence.push(evidenceView(e))
    if (this.evidenceBytes.length > MAX_EVIDENCE) {
      this.evidenceBytes.shift()
      this.evidence.shift()
    }
    await this.parts.kv.write([this.parts.chain.evidenceOp(this.evidenceBytes)])
  }

  // ---- the RPC backend --------------------------------------------------------------------------------------

  private blockInfo(height: number, hash: Uint8Array, block: CommittedBlock['block'], lastCommit: CommittedBlock['lastCommit'], certificate: CommittedBlock['certificate'], receipts?: readonly { ok: boolean; code?: string }[]): BlockInfo {
    const h = block.header
    const cert = (c: NonNullable<CommittedBlock['lastCommit']>) => ({ height: c.height, round: c.round, blockHash: c.valueId, signatures: c.signatures.map((s) => ({ validator: s.validator, signature: s.signature })) })
    return {
      height, hash,
      header: {
        chainId: h.chainId, height: h.height, time: h.time, previousBlockHash: h.previousBlockHash, txRoot: h.txRoot, stateRoot: h.stateRoot,
        proposer: h.proposer, validatorSetHash: h.validatorSetHash, lastCommitHash: h.lastCommitHash,
      },
      txs: block.txs,
      ...(receipts ? { results: receipts.map((r) => (r.ok ? { ok: true } : { ok: false, error: r.code! })) } : {}),
      commit: { ...cert(certificate), lastCommit: lastCommit === null ? null : cert(lastCommit) },
    }
  }

  /** What the RPC server serves: this node's state, mempool, chain and events. */
  readonly backend: RpcBackend = {
    status: () => {
      const { host, p2p, sync, guard } = this.parts
      const tip = host.tip
      return {
        chainId: this.home.genesis.chainId, moniker: this.home.config.moniker, nodeId: p2p.peerId,
        height: tip?.height ?? 0, blockHash: tip?.blockHash ?? null, blockTime: tip?.blockTime ?? null,
        validator: guard?.address ?? null, peers: p2p.peerCount, catchingUp: sync.catchingUp,
      }
    },
    getAccount: (address) => this.parts.ledger.getAccount(address),
    getNextNonce: (address) => this.parts.mempool.pendingNonce(address),
    submitTx: async (bytes) => {
      const r = await this.parts.txGossip.submit(bytes)
      this.parts.metrics.mempoolSize.set(this.parts.mempool.size)
      this.parts.metrics.mempoolBytes.set(this.parts.mempool.bytes)
      return r.ok ? { ok: true, hash: r.hash } : { ok: false, code: r.code, reason: r.reason }
    },
    getTx: async (hash): Promise<TxLookup> => {
      const loc = await this.parts.chain.txLocation(hash)
      if (loc) return loc.ok ? { status: 'committed', height: loc.height, index: loc.index, ok: true } : { status: 'committed', height: loc.height, index: loc.index, ok: false, error: loc.code ?? 'failed' }
      if (this.parts.mempool.has(hash)) return { status: 'pending' }
      const r = this.rejected.get(toHex(hash))
      if (r) return { status: 'rejected', error: r.error, reason: r.reason }
      return { status: 'unknown' }
    },
    getBlock: async (height) => {
      const tip = this.parts.host.tip?.height ?? 0
      const h = height ?? tip
      if (h < 1 || h > tip) return null
      const [bytes, certBytes] = await Promise.all([this.parts.chain.blockBytes(h), this.parts.chain.certificateBytes(h)])
      if (bytes === undefined || certBytes === undefined) return null
      const s = decodeStoredBlock(bytes, { maxBytes: this.home.genesis.params.block.maxBytes, maxTxs: this.home.genesis.params.block.maxTxs })
      const c = decodeCommitCertificate(certBytes)
      if (!s.ok || !c.ok) throw new Error(`stored block ${h} is corrupt`)
      const receipts = (await this.parts.chain.txLocations(s.value.block.txs.map((t) => sha256(t))))
        .map((loc) => (loc ? { ok: loc.ok, ...(loc.code ? { code: loc.code } : {}) } : { ok: true }))
      return this.blockInfo(h, blockHash(s.value.block.header), s.value.block, s.value.lastCommit, c.value, receipts)
    },
    getValidators: () => this.home.genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power, peerId: v.peerId })),
    health: () => {
      if (this.parts.sync.catchingUp) return { healthy: false, reason: 'catching up' }
      if (this.parts.p2p.peerCount === 0 && this.validatorSet.validators.length > 1) return { healthy: false, reason: 'no peers' }
      return { healthy: true }
    },
    getEvidence: () => this.evidence,
    onNewBlock: (listener) => {
      this.events.on('block', listener)
      return () => this.events.off('block', listener)
    },
    onTxCommitted: (listener) => {
      this.events.on('tx', listener)
      return () => this.events.off('tx', listener)
    },
  }
}
