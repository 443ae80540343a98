import { bytesEqual, bytesKey, toHex } from '../../crypto/bytes.js'
import {
  commitHash, decodeCommitCertificate, heightMessages, encodeCommitCertificate, initialConsensusState, step, verifyCommit, type CommitCertificate, type ConsensusEffect,
  type ConsensusInput, type ConsensusParams, type ConsensusState, type Evidence, type SafetyGuard, type SignedVote, type Timeout, type ValidatorSet,
} from '../../consensus/index.js'
import { ZERO_HASH, blockHash, txRoot, type Block, type BlockHeader } from '../../ledger/block.js'
import type { ExecutionResult, LedgerState } from '../../ledger/ledgerState.js'
import type { KvStore } from '../../ledger/store.js'
import { decodeTransaction, type DecodedTransaction, type Transaction } from '../../ledger/transaction.js'
import type { VerifiedTxCache } from '../../ledger/verifiedTxCache.js'
import type { ChainStore, ChainTip } from '../storage/chainStore.js'
import type { Logger } from '../logger.js'
import type { Mempool } from '../mempool/mempool.js'
import { encodeStoredBlock, type StoredBlock } from '../storage/storedBlock.js'
import { encodeProposalMessage, encodeVoteMessage, type ProposalMessage } from '../sync/consensusMessages.js'
import { decodeWalEntry, encodeWalEntry, type WalEntry } from './walEntry.js'
import type { Wal } from '../storage/wal.js'

/**
 * The consensus host: the only interpreter of the core's effects, and the one place where blocks are committed.
 *
 * It feeds the core one input at a time from a single queue (CometBFT's receive routine): gossip, its own signed
 * messages, timeouts, block verdicts, and blocks from sync all pass through it, so the core, the ledger's committed
 * state and the chain store change in one order. Every input of the current height is appended to the WAL before
 * it reaches the core, and the WAL is flushed to disk before the safety guard signs, so a restarted validator
 * replays exactly the inputs that led to every signature it gave (its lock included).
 */

export interface ConsensusHostOptions {
  readonly chainId: string
  readonly params: ConsensusParams
  readonly validatorSet: ValidatorSet
  readonly block: { readonly maxTxs: number; readonly maxBytes: number }
  /** How long a proposer with an empty mempool waits for transactions before proposing an empty block. */
  readonly emptyBlockIntervalMs: number
  /** Pause after a commit before the next height starts (0: none). */
  readonly commitMs: number
  /** Genesis time in ms: the first block's time must be later. */
  readonly genesisTimeMs: number
  /** How far ahead of this node's clock a proposed block's time may be. */
  readonly maxClockDriftMs: number
  /**
   * The WAL is started afresh after a commit once it holds this many bytes (default 4 MiB). Replay skips records of
   * committed heights, so the log only needs bounding, not a reset at every height (two fsyncs and a rename each).
   */
  readonly walMaxBytes?: number
}

/** What a committed block looks like to listeners (RPC events, metrics, logs). */
export interface CommittedBlock {
  readonly height: number
  readonly hash: Uint8Array
  readonly round: number
  readonly block: Block
  readonly lastCommit: CommitCertificate | null
  readonly certificate: CommitCertificate
  readonly txHashes: readonly Uint8Array[]
  readonly receipts: readonly { ok: boolean; code?: string }[]
  /** Addresses whose accounts the block changed (the mempool re-reads only these). */
  readonly touched: readonly Uint8Array[]
  readonly executionMs: number
}

export interface ConsensusHostDependencies {
  readonly ledger: LedgerState
  readonly kv: KvStore
  readonly chain: ChainStore
  readonly mempool: Mempool
  readonly verified: VerifiedTxCache
  readonly wal: Wal
  /** Null on a node that is not a validator: it follows consensus but never signs. */
  readonly guard: SafetyGuard | null
  readonly logger: Logger
  /** Wall clock in ms (block times, durations). */
  readonly now: () => number
  /** Arms a timer; when it fires, the caller hands the timeout back through `onTimeoutElapsed`. */
  readonly scheduleTimeout: (timeout: Timeout, ms: number) => void
  readonly cancelTimeoutsBelow: (height: number) => void
  readonly broadcast: (bytes: Uint8Array) => void
  /** Resolves transactions missing from the mempool (from the proposer or other peers), in order; undefined for any not found. */
  readonly fetchTxs: (hashes: readonly Uint8Array[], preferredProposer: Uint8Array) => Promise<(Uint8Array | undefined)[]>
  /**
   * Verifies a transaction's signature off the event loop (the mempool's verifier). Fetched transactions go through
   * it before execution, which then finds them in `verified`; without it, execution verifies them inline.
   */
  readonly verifySignature?: (tx: Transaction) => Promise<boolean>
  /** Asks block sync for a block this node saw decided but does not hold. */
  readonly requestBlock: (height: number) => void
  /** Called after a block is durable; the next height starts once it resolves (the mempool catches up first). */
  readonly onCommitted: (block: CommittedBlock) => void | Promise<void>
  readonly onEvidence: (evidence: Evidence) => void
  /** Called when the host hits a broken invariant: the node must stop rather than go on. */
  readonly onFatal: (error: Error) => void
}

interface Candidate {
  readonly header: BlockHeader
  readonly hash: Uint8Array
  readonly txHashes: readonly Uint8Array[]
  readonly lastCommit: CommitCertificate | null
  /** Present once the transactions are resolved. */
  txs?: DecodedTransaction[]
  /** Present once executed. */
  result?: ExecutionResult
  executionMs?: number
  /** The in-flight or finished validation. */
  verdict?: Promise<boolean>
  /** Transaction bytes by hash (bytesKey), built on the first fetch a peer makes. */
  byHash?: Map<string, Uint8Array>
}

type QueueItem =
  | { readonly kind: 'input'; readonly input: ConsensusInput; readonly log?: WalEntry }
  | { readonly kind: 'proposalMessage'; readonly message: ProposalMessage; readonly replay?: boolean }
  | { readonly kind: 'synced'; readonly height: number; readonly stored: StoredBlock; readonly certificate: CommitCertificate; readonly done: (ok: boolean) => void }

/** Most candidate blocks held for one height (an honest network needs one per round). */
const MAX_CANDIDATES = 32

export class ConsensusHost {
  private state: ConsensusState
  private tipValue: ChainTip | undefined
  private lastCommitValue: CommitCertificate | null = null
  private readonly candidates = new Map<string, Candidate>()
  private readonly queue: QueueItem[] = []
  private draining = false
  private replaying = false
  private stopped = false
  private heightStartedAt = 0
  private resends = 0

  constructor(private readonly o: ConsensusHostOptions, private readonly d: ConsensusHostDependencies) {
    this.state = initialConsensusState({ chainId: o.chainId, params: o.params, address: d.guard?.address ?? null })
  }

  /** The committed tip (undefined before the first block). */
  get tip(): ChainTip | undefined {
    return this.tipValue
  }

  /** The height consensus is working on. */
  get height(): number {
    return this.state.height
  }

  get round(): number {
    return this.state.round
  }

  /** When the current height started (ms), for sync's "stuck" test. */
  get heightStartedAtMs(): number {
    return this.heightStartedAt
  }

  /**
   * Loads the tip, replays the WAL of the current height through the core, and starts consensus.
   * Effects of the replay are carried out (timers re-armed, own messages re-broadcast); the guard returns the
   * stored signature for an identical request and refuses anything that conflicts.
   */
  async start(): Promise<void> {
    this.tipValue = await this.d.chain.tip()
    const tipHeight = this.tipValue?.height ?? 0
    if (tipHeight > 0) this.lastCommitValue = await this.loadCertificate(tipHeight)
    const records = await this.d.wal.replay()
    this.heightStartedAt = this.d.now()
    this.replaying = true
    this.enqueueFront({ kind: 'input', input: { type: 'startHeight', height: tipHeight + 1, validatorSet: this.o.validatorSet } })
    let replayed = 0
    for (const r of records) {
      const e = decodeWalEntry(r, this.o.block.maxTxs)
      if (!e.ok) throw new Error(`consensus WAL is corrupt: ${e.error.reason}`)
      if (e.value.height !== tipHeight + 1) continue
      replayed++
      if (e.value.entry.kind === 'proposal') this.queue.push({ kind: 'proposalMessage', message: e.value.entry.message, replay: true })
      else this.queue.push({ kind: 'input', input: e.value.entry.input })
    }
    await this.drain()
    this.replaying = false
    if (this.queue.length > 0) void this.drain()
    if (replayed > 0) this.d.logger.info({ height: tipHeight + 1, records: replayed }, 'replayed the consensus WAL')
  }

  stop(): void {
    this.stopped = true
  }

  /** A proposal (with block parts) from gossip. */
  onProposalMessage(message: ProposalMessage): void {
    this.enqueue({ kind: 'proposalMessage', message })
  }

  /**
   * Re-broadcasts the proposals (with their block parts) and votes the core holds for the current height, of the
   * latest rounds, when the height has run longer than `afterMs`. Gossip is fire-and-forget: a peer that was down
   * or not yet connected when a message went out would otherwise never see it, and validators stranded in different
   * rounds without a quorum, or behind a lock only one of them saw, would wait for each other forever (CometBFT's
   * reactor re-gossips votes for the same reason).
   */
  rebroadcast(afterMs: number): void {
    if (this.stopped || this.d.now() - this.heightStartedAt < afterMs) return
    this.resends++
    for (const m of heightMessages(this.state)) {
      if (m.kind === 'vote') {
        if (m.vote.round >= this.state.round - 8) this.d.broadcast(encodeVoteMessage(m.vote, this.resends))
        continue
      }
      if (m.proposal.round < this.state.round - 8) continue
      const c = this.candidates.get(toHex(m.proposal.valueId))
      if (c) this.d.broadcast(encodeProposalMessage({ proposal: m.proposal, header: c.header, txHashes: c.txHashes, lastCommit: c.lastCommit }, this.resends))
    }
  }

  /** A timeout the core asked for has elapsed. */
  onTimeoutElapsed(timeout: Timeout): void {
    const input: ConsensusInput = { type: 'timeoutElapsed', timeout }
    this.enqueue({ kind: 'input', input, log: { kind: 'input', input } })
  }

  /** A vote from gossip. */
  onVote(vote: SignedVote): void {
    this.enqueue({ kind: 'input', input: { type: 'vote', vote }, log: { kind: 'input', input: { type: 'vote', vote } } })
  }

  /**
   * A block from block sync, with the certificate that decided it. Applied only if it is the next height;
   * resolves true when it was committed.
   */
  applySyncedBlock(height: number, stored: StoredBlock, certificate: CommitCertificate): Promise<boolean> {
    return new Promise((resolve) => this.enqueue({ kind: 'synced', height, stored, certificate, done: resolve }))
  }

  private enqueue(item: QueueItem): void {
    if (this.stopped) return
    this.queue.push(item)
    if (!this.draining && !this.replaying) void this.drain()
  }

  private enqueueFront(item: QueueItem): void {
    if (this.stopped) return
    this.queue.unshift(item)
    if (!this.draining && !this.replaying) void this.drain()
  }

  private async drain(): Promise<void> {
    if (this.draining) return
    this.draining = true
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const item = this.queue.shift()!
        await this.handle(item)
      }
    } catch (e) {
      this.stopped = true
      this.d.onFatal(e as Error)
    } finally {
      this.draining = false
    }
  }

  private async handle(item: QueueItem): Promise<void> {
    switch (item.kind) {
      case 'input':
        // Replayed WAL records carry no `log`; live inputs are logged even while a replay is running.
        if (item.log && this.inputHeight(item.input) === this.state.height) this.log(item.log)
        return this.feed(item.input)
      case 'proposalMessage':
        return this.handleProposalMessage(item.message, item.replay === true)
      case 'synced':
        return item.done(await this.handleSynced(item.height, item.stored, item.certificate))
    }
  }

  private inputHeight(input: ConsensusInput): number {
    switch (input.type) {
      case 'vote':
        return input.vote.height
      case 'proposal':
        return input.proposal.height
      case 'timeoutElapsed':
        return input.timeout.height
      case 'commitCertificate':
        return input.certificate.height
      case 'startHeight':
      case 'valueReady':
      case 'valueValidated':
        return input.height
    }
  }

  private log(entry: WalEntry): void {
    try {
      this.d.wal.write(encodeWalEntry(entry))
    } catch (e) {
      this.d.onFatal(new Error(`consensus WAL append failed: ${(e as Error).message}`))
    }
  }

  /** Waits until every logged input is on disk: called before the guard signs anything. */
  private async flushWal(): Promise<void> {
    await this.d.wal.sync()
  }

  private async feed(input: ConsensusInput): Promise<void> {
    const { state, effects } = step(this.state, input)
    this.state = state
    for (const effect of effects) await this.run(effect)
  }

  private async run(e: ConsensusEffect): Promise<void> {
    switch (e.type) {
      case 'signProposal': {
        if (!this.d.guard) return
        // the WAL sync and the guard's save run together; the signature is used only once both are durable
        const [, r] = await Promise.all([this.flushWal(), this.d.guard.signProposalAsync(e.proposal)])
        if (!r.ok) {
          this.d.logger.warn({ height: e.proposal.height, round: e.proposal.round, code: r.code }, `guard refused a proposal: ${r.reason}`)
          return
        }
        this.enqueueFront({ kind: 'input', input: { type: 'proposal', proposal: r.value } })
        return
      }
      case 'signVote': {
        if (!this.d.guard) return
        const [, r] = await Promise.all([this.flushWal(), this.d.guard.signVoteAsync(e.vote)])
        if (!r.ok) {
          this.d.logger.warn({ height: e.vote.height, round: e.vote.round, type: e.vote.type, code: r.code }, `guard refused a vote: ${r.reason}`)
          return
        }
        this.enqueueFront({ kind: 'input', input: { type: 'vote', vote: r.value }, log: { kind: 'input', input: { type: 'vote', vote: r.value } } })
        return
      }
      case 'broadcastProposal': {
        const c = this.candidates.get(toHex(e.proposal.valueId))
        if (!c) {
          this.d.logger.error({ height: e.proposal.height, round: e.proposal.round }, 'own proposal has no block')
          return
        }
        const message: ProposalMessage = { proposal: e.proposal, header: c.header, txHashes: c.txHashes, lastCommit: c.lastCommit }
        if (!this.replaying) this.log({ kind: 'proposal', message })
        this.d.broadcast(encodeProposalMessage(message))
        return
      }
      case 'broadcastVote':
        this.d.broadcast(encodeVoteMessage(e.vote))
        return
      case 'scheduleTimeout':
        this.d.scheduleTimeout(e.timeout, e.durationMs)
        return
      case 'getValue':
        void this.buildValue(e.height, e.round)
        return
      case 'validateValue':
        void this.validateValue(e.height, e.round, e.valueId, e.proposer)
        return
      case 'decide':
        return this.commitDecided(e.height, e.round, e.valueId, e.certificate)
      case 'evidence':
        this.d.onEvidence(e.evidence)
        return
    }
  }

  // ---- proposals ------------------------------------------------------------------------------------------

  private async handleProposalMessage(m: ProposalMessage, replay: boolean): Promise<void> {
    const p = m.proposal
    if (p.height !== this.state.height && p.height !== this.state.height + 1) return
    const hash = blockHash(m.header)
    if (!bytesEqual(hash, p.valueId)) {
      this.d.logger.debug({ height: p.height, round: p.round }, 'dropped a proposal whose header does not hash to its value')
      return
    }
    // Block parts are kept for this height and the next (the core buffers a next-height proposal until then).
    const id = toHex(hash)
    if (!this.candidates.has(id)) {
      if (this.candidates.size >= MAX_CANDIDATES) return
      this.candidates.set(id, { header: m.header, hash, txHashes: m.txHashes, lastCommit: m.lastCommit })
    }
    if (p.height === this.state.height && !replay) this.log({ kind: 'proposal', message: m })
    await this.feed({ type: 'proposal', proposal: p })
  }

  private async buildValue(height: number, round: number): Promise<void> {
    try {
      let txs = await this.reapOrWait(height, round)
      if (this.stopped || this.state.height !== height || this.state.round !== round) return
      const tip = this.tipValue
      const t0 = this.d.now()
      let result = await this.d.ledger.execute(txs, { chainId: this.o.chainId, verified: this.d.verified })
      if (result.receipts.some((r) => !r.ok)) {
        // A reaped transaction that does not apply to the committed state leaves the mempool with its reason
        // (so it is reported rejected, not retried forever); the block keeps the ones that apply.
        txs.forEach((t, i) => {
          const r = result.receipts[i]!
          if (!r.ok) this.d.mempool.reject(t.hash, r.code, `failed execution at height ${height}: ${r.code}`)
        })
        txs = txs.filter((_, i) => result.receipts[i]!.ok)
        result = await this.d.ledger.execute(txs, { chainId: this.o.chainId, verified: this.d.verified })
      }
      const txHashes = txs.map((t) => t.hash)
      const header: BlockHeader = {
        chainId: this.o.chainId,
        height,
        time: Math.max(this.d.now(), (tip?.blockTime ?? this.o.genesisTimeMs) + 1),
        previousBlockHash: tip?.blockHash ?? ZERO_HASH,
        txRoot: txRoot(txHashes),
        stateRoot: result.stateRoot,
        proposer: this.d.guard!.address,
        validatorSetHash: this.o.validatorSet.hash,
        lastCommitHash: this.lastCommitValue === null ? ZERO_HASH : commitHash(this.lastCommitValue),
      }
      const hash = blockHash(header)
      const candidate: Candidate = { header, hash, txHashes, lastCommit: this.lastCommitValue, txs, result, executionMs: this.d.now() - t0 }
      candidate.verdict = Promise.resolve(true)
      this.candidates.set(toHex(hash), candidate)
      const input: ConsensusInput = { type: 'valueReady', height, round, valueId: hash }
      this.enqueue({ kind: 'input', input, log: { kind: 'input', input } })
    } catch (e) {
      this.d.onFatal(new Error(`building the block for height ${height} failed: ${(e as Error).message}`))
    }
  }

  /**
   * Reaps executable transactions; when there are none, waits for some up to the empty-block interval after the
   * last block (bounded by half the propose timeout, so peers do not time out on this proposer), then proposes
   * what there is, possibly an empty block. Transactions present at once are proposed at once: no idle wait.
   */
  private async reapOrWait(height: number, round: number): Promise<DecodedTransaction[]> {
    const limits = { maxTxs: this.o.block.maxTxs, maxBytes: this.o.block.maxBytes }
    const wait = Math.min(this.o.emptyBlockIntervalMs, Math.floor(this.o.params.timeoutProposeMs / 2))
    const deadline = Math.min(this.d.now() + wait, Math.max((this.tipValue?.blockTime ?? 0) + wait, this.d.now()))
    for (;;) {
      const txs = this.d.mempool.reap(limits)
      if (txs.length > 0 || this.d.now() >= deadline || this.stopped || this.state.height !== height || this.state.round !== round) return txs
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  private async validateValue(height: number, round: number, valueId: Uint8Array, proposer: Uint8Array): Promise<void> {
    const c = this.candidates.get(toHex(valueId))
    let valid = false
    if (c) {
      c.verdict ??= this.checkCandidate(c, proposer)
      valid = await c.verdict
    } else {
      this.d.logger.debug({ height, round }, 'no block parts for a proposed value: prevoting nil')
    }
    if (this.stopped || this.state.height !== height) return
    const input: ConsensusInput = { type: 'valueValidated', height, round, valueId, valid }
    this.enqueue({ kind: 'input', input, log: { kind: 'input', input } })
  }

  /** Checks a proposed block against this node's chain and re-executes it (the state root must match). */
  private async checkCandidate(c: Candidate, proposer: Uint8Array): Promise<boolean> {
    const h = c.header
    const tip = this.tipValue
    const reject = (reason: string) => {
      this.d.logger.warn({ height: h.height, reason }, 'rejected a proposed block')
      return false
    }
    if (h.chainId !== this.o.chainId) return reject('wrong chain id')
    if (h.height !== (tip?.height ?? 0) + 1) return reject('wrong height')
    if (!bytesEqual(h.previousBlockHash, tip?.blockHash ?? ZERO_HASH)) return reject('wrong previous block hash')
    if (!bytesEqual(h.validatorSetHash, this.o.validatorSet.hash)) return reject('wrong validator set hash')
    if (!bytesEqual(h.proposer, proposer)) return reject('header names another proposer')
    if (h.time <= (tip?.blockTime ?? this.o.genesisTimeMs)) return reject('block time does not increase')
    if (h.time > this.d.now() + this.o.maxClockDriftMs) return reject('block time is in the future')
    if (h.height === 1) {
      if (c.lastCommit !== null || !bytesEqual(h.lastCommitHash, ZERO_HASH)) return reject('height 1 carries a last commit')
    } else {
      if (c.lastCommit === null) return reject('missing last commit')
      const v = verifyCommit(this.o.validatorSet, this.o.chainId, h.height - 1, tip!.blockHash, c.lastCommit)
      if (!v.ok) return reject(`last commit: ${v.error.reason}`)
      if (!bytesEqual(commitHash(c.lastCommit), h.lastCommitHash)) return reject('last commit hash mismatch')
    }
    if (c.txHashes.length > this.o.block.maxTxs) return reject('too many transactions')
    if (!bytesEqual(txRoot(c.txHashes), h.txRoot)) return reject('transaction root mismatch')
    const seen = new Set<string>()
    for (const x of c.txHashes) {
      const k = bytesKey(x)
      if (seen.has(k)) return reject('duplicate transaction')
      seen.add(k)
    }
    const txs = await this.resolveTransactions(c.txHashes, proposer)
    if (txs === undefined) return reject('transactions unavailable')
    let bytes = 0
    for (const t of txs) bytes += t.bytes.byteLength
    if (bytes > this.o.block.maxBytes) return reject('block too large')
    if (this.tipValue !== tip) return false // the chain moved on while resolving: this candidate is stale
    const t0 = this.d.now()
    const result = await this.d.ledger.execute(txs, { chainId: this.o.chainId, verified: this.d.verified })
    if (!bytesEqual(result.stateRoot, h.stateRoot)) return reject('state root mismatch')
    c.txs = txs
    c.result = result
    c.executionMs = this.d.now() - t0
    return true
  }

  private async resolveTransactions(hashes: readonly Uint8Array[], proposer: Uint8Array): Promise<DecodedTransaction[] | undefined> {
    const out: (DecodedTransaction | undefined)[] = hashes.map((h) => this.d.mempool.get(h))
    const missing: number[] = []
    out.forEach((t, i) => { if (t === undefined) missing.push(i) })
    if (missing.length === 0) return out as DecodedTransaction[]
    const fetched = await this.d.fetchTxs(missing.map((i) => hashes[i]!), proposer)
    const decoded: DecodedTransaction[] = []
    for (let k = 0; k < missing.length; k++) {
      const bytes = fetched[k]
      if (bytes === undefined) return undefined
      const d = decodeTransaction(bytes)
      if (!d.ok || !bytesEqual(d.value.hash, hashes[missing[k]!]!)) return undefined
      out[missing[k]!] = d.value
      decoded.push(d.value)
    }
    const verifySignature = this.d.verifySignature
    if (verifySignature !== undefined) {
      await Promise.all(decoded.map(async (d) => { if (await verifySignature(d.tx)) this.d.verified.add(d.hash) }))
    }
    return out as DecodedTransaction[]
  }

  // ---- commit -------------------------------------------------------------------------------------------

  private async commitDecided(height: number, round: number, valueId: Uint8Array, certificate: CommitCertificate): Promise<void> {
    const c = this.candidates.get(toHex(valueId))
    if (c && !c.result) {
      c.verdict ??= this.checkCandidate(c, c.header.proposer)
      await c.verdict
    }
    if (c?.result) {
      await this.commit(height, round, c, certificate)
      return
    }
    // More than two thirds certified a block this node cannot rebuild (it never saw the proposal, or could not get
    // its transactions). Block sync fetches it with its certificate and executes it; a state root that then
    // disagrees with the certified header is the real divergence, and stops the node.
    this.d.logger.info({ height, block: toHex(valueId) }, 'decided a block this node cannot rebuild: fetching it from peers')
    this.d.requestBlock(height)
  }

  /** A transaction of a block this node is working on (served to peers that miss it). */
  findTransaction(hash: Uint8Array): Uint8Array | undefined {
    const id = bytesKey(hash)
    for (const c of this.candidates.values()) {
      if (!c.txs) continue
      c.byHash ??= new Map(c.txs.map((t) => [bytesKey(t.hash), t.bytes]))
      const bytes = c.byHash.get(id)
      if (bytes !== undefined) return bytes
    }
    return undefined
  }

  private async handleSynced(height: number, stored: StoredBlock, certificate: CommitCertificate): Promise<boolean> {
    const tip = this.tipValue
    if (height !== (tip?.height ?? 0) + 1) return false
    const header = stored.block.header
    const hash = blockHash(header)
    const v = verifyCommit(this.o.validatorSet, this.o.chainId, height, hash, certificate)
    if (!v.ok) {
      this.d.logger.warn({ height, reason: v.error.reason }, 'synced block has a bad certificate')
      return false
    }
    if (header.height !== height || header.chainId !== this.o.chainId || !bytesEqual(header.previousBlockHash, tip?.blockHash ?? ZERO_HASH)) {
      this.d.logger.warn({ height }, 'synced block does not extend this chain')
      return false
    }
    const txs: DecodedTransaction[] = []
    for (const bytes of stored.block.txs) {
      const d = decodeTransaction(bytes)
      if (!d.ok) return false
      txs.push(d.value)
    }
    const txHashes = txs.map((t) => t.hash)
    if (!bytesEqual(txRoot(txHashes), header.txRoot)) return false
    const t0 = this.d.now()
    // Certified by more than two thirds of the power: the signatures of its transactions need no second check.
    const result = await this.d.ledger.execute(txs, { chainId: this.o.chainId, trustSignatures: true })
    if (!bytesEqual(result.stateRoot, header.stateRoot)) {
      throw new Error(`state root mismatch at certified height ${height}: this node's state diverged from the chain`)
    }
    const c: Candidate = { header, hash, txHashes, lastCommit: stored.lastCommit, txs, result, executionMs: this.d.now() - t0 }
    await this.commit(height, certificate.round, c, certificate)
    return true
  }

  private async commit(height: number, round: number, c: Candidate, certificate: CommitCertificate): Promise<void> {
    const result = c.result!
    const block: Block = { header: c.header, txs: c.txs!.map((t) => t.bytes) }
    const stored = encodeStoredBlock({ block, lastCommit: c.lastCommit })
    const receipts = result.receipts.map((r) => (r.ok ? { ok: true } : { ok: false, code: r.code }))
    const ops = [
      ...result.ops,
      ...this.d.chain.commitOps({
        height, blockHash: c.hash, blockTime: c.header.time, blockBytes: stored,
        certificateBytes: encodeCommitCertificate(certificate), txHashes: c.txHashes, receipts,
      }),
    ]
    await this.d.kv.write(ops)
    this.d.ledger.commit(result)
    this.tipValue = { height, blockHash: c.hash, blockTime: c.header.time }
    this.lastCommitValue = certificate
    for (const [id, candidate] of this.candidates) if (candidate.header.height <= height) this.candidates.delete(id)
    this.d.cancelTimeoutsBelow(height + 1)
    if (this.d.wal.sizeBytes >= (this.o.walMaxBytes ?? 4 * 1024 * 1024)) await this.d.wal.reset()
    await this.d.onCommitted({
      height, hash: c.hash, round, block, lastCommit: c.lastCommit, certificate, txHashes: c.txHashes, receipts,
      touched: result.changed.map((c) => c.address), executionMs: c.executionMs ?? 0,
    })
    this.heightStartedAt = this.d.now()
    const next: QueueItem = { kind: 'input', input: { type: 'startHeight', height: height + 1, validatorSet: this.o.validatorSet } }
    if (this.o.commitMs > 0 && !this.replaying) await new Promise((r) => setTimeout(r, this.o.commitMs))
    this.enqueueFront(next)
  }

  private async loadCertificate(height: number): Promise<CommitCertificate | null> {
    const bytes = await this.d.chain.certificateBytes(height)
    if (bytes === undefined) throw new Error(`chain store has no certificate for its tip ${height}`)
    const c = decodeCommitCertificate(bytes)
    if (!c.ok) throw new Error(`chain store certificate at ${height} is corrupt: ${c.error.reason}`)
    return c.value
  }
}
