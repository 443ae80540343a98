import { bytesEqual, bytesKey, toHex } from '../../crypto/bytes.js'
import { err, ok, type Result } from '../../crypto/result.js'
import {
  certificateEquivocations,
  commitHash,
  decodeCommitCertificate,
  decodeEvidence,
  encodeCommitCertificate,
  evidenceHash,
  evidenceHeight,
  evidenceOffender,
  findValidator,
  initialConsensusState,
  messageStatus,
  repairMessages,
  step,
  verifyCommit,
  verifyCommitTrusting,
  verifyEvidence,
  type CommitCertificate,
  type ConsensusEffect,
  type ConsensusInput,
  type ConsensusParams,
  type ConsensusState,
  type Evidence,
  type MessageStatus,
  type SafetyGuard,
  type SignedProposal,
  type SignedVote,
  type Timeout,
  type ValidatorSet,
} from '../../consensus/index.js'
import { ZERO_HASH, blockHash, txRoot, type Block, type BlockHeader } from '../../ledger/block.js'
import type { ExecutionContext } from '../../ledger/applyBlock.js'
import {
  blockTimeWait,
  checkBlockBody,
  checkBlockEvidence,
  checkBlockExecution,
  checkBlockReceipts,
  checkBlockHeader,
  type BlockFault,
  type BlockParent,
} from '../../ledger/blockValidity.js'
import { rosterAt, type GovernanceParams } from '../../ledger/governance.js'
import type { AccountEntry, DeferredExecution, ExecutionResult, LedgerState } from '../../ledger/ledgerState.js'
import type { Receipt } from '../../ledger/receipt.js'
import type { KvStore } from '../../ledger/store.js'
import { decodeTransaction, txHash, type DecodedTransaction } from '../../ledger/transaction.js'
import type { VerifiedTxCache } from '../../ledger/verifiedTxCache.js'
import type { Logger } from '../logger.js'
import type { Mempool } from '../mempool/mempool.js'
import type { ChainStore, ChainTip } from '../storage/chainStore.js'
import { CommitGate } from './commitGate.js'
import { StagedKvStore } from '../storage/stagedKvStore.js'
import { encodeStoredBlock, type StoredBlock } from '../storage/storedBlock.js'
import type { ConsensusLog } from '../storage/wal.js'
import { encodeEvidenceMessage, encodeProposalMessage, encodeVoteMessage, type ProposalMessage } from '../sync/consensusMessages.js'
import type { TipVerdict } from '../sync/blockSync.js'
import { CandidateStore, type Candidate, type Verdict } from './candidates.js'
import type { EvidencePool } from './evidencePool.js'
import type { ValidatorSets } from './validatorSets.js'
import { decodeWalEntry, encodeWalEntry, type WalEntry } from './walEntry.js'

/**
 * The consensus host: the only interpreter of the core's effects, and the one place where blocks are committed.
 *
 * It feeds the core one input at a time from a single queue (CometBFT's receive routine): gossip, its own signed
 * messages, timeouts, block verdicts, and blocks from sync all pass through it, so the core, the ledger's committed
 * state and the chain store change in one order. Invariants:
 *  - only authenticated input is stored or logged: the admission (node/sync/consensusGossip.ts) verifies a message's
 *    signature and, for a proposal, that its signer proposes that round, before the host keeps its block parts;
 *  - every input of the current or a later height that the core will use is appended to the WAL before the core
 *    sees it, and the WAL is flushed to disk before the safety guard signs, so a restarted validator replays exactly
 *    the inputs that led to every signature it gave (its lock included, even one built from early next-height votes);
 *    repeated messages are neither logged nor fed;
 *  - gossip waits when the queue is full (back-pressure), so a flood slows its sender instead of growing memory;
 *  - a block is judged by the one validity rule (ledger/blockValidity.ts); what cannot be judged yet (transactions
 *    not fetched, a block time ahead of this clock, a chain that moved meanwhile) is retried, never judged invalid;
 *  - execution and commit never interleave on the ledger's single-version state (one lock);
 *  - a height is reported committed only once its batch is durable.
 */

export interface ConsensusHostOptions {
  readonly chainId: string
  readonly params: ConsensusParams
  readonly block: { readonly maxTxs: number; readonly maxBytes: number }
  /** Validator-set governance parameters, passed to every block's execution. */
  readonly governance: GovernanceParams
  /** Evidence in blocks: most items per block and how old an equivocation may be. */
  readonly evidence: { readonly maxPerBlock: number; readonly maxAgeHeights: number }
  /** How long a proposer with an empty mempool waits for transactions before proposing an empty block. */
  readonly emptyBlockIntervalMs: number
  /** Pause after a commit before the next height starts (0: none). */
  readonly commitMs: number
  /**
   * Pacing of this node's round-0 proposals: it proposes no sooner than this long after its height started, unless
   * the mempool already holds a full block (default 0: at once). Below saturation heights otherwise follow one
   * another as fast as the machine runs them, each carrying a few transactions, and the cost every height has
   * whatever it carries takes the CPU the load left free; a height under load takes longer than this anyway.
   */
  readonly minBlockIntervalMs?: number
  /** Genesis time in ms: the first block's time must be later. */
  readonly genesisTimeMs: number
  /** How far ahead of this node's clock a proposed block's time may be before it waits. */
  readonly maxClockDriftMs: number
  /**
   * The WAL is started afresh after a commit once it holds this many bytes (default 4 MiB). Replay skips records of
   * committed heights, so the log only needs bounding, not a reset at every height (two fsyncs and a rename each).
   */
  readonly walMaxBytes?: number
  /** Inputs queued before gossip waits for room (default 10,000). */
  readonly maxQueue?: number
  /** Delay before a block that could not be judged yet is tried again (default 500 ms). */
  readonly retryMs?: number
  /**
   * Start a validator whose safety record is missing although its WAL or chain shows it signed before (the operator
   * vouches that it will not sign again what it signed then). Off by default.
   */
  readonly allowMissingSafetyRecord?: boolean
  /**
   * Stop when a certificate this node commits carries a precommit of its own key that it did not sign: another process
   * signs as this validator (default true). A simulated Byzantine validator, which signs outside its host, turns it off.
   */
  readonly stopOnForeignSignature?: boolean
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
  /**
   * Whether the ledger's committed state is already a later height's: a synced run's heights before its last, which
   * are committed together and reported one by one.
   */
  readonly ledgerAhead: boolean
}

export interface ConsensusHostDependencies {
  readonly ledger: LedgerState
  /** The validator sets by height; the host keeps it up to date as blocks commit. */
  readonly sets: ValidatorSets
  /** Evidence waiting for a block, and the committed evidence index. */
  readonly evidence: EvidencePool
  readonly kv: KvStore
  readonly chain: ChainStore
  readonly mempool: Mempool
  readonly verified: VerifiedTxCache
  readonly wal: ConsensusLog
  /** Null on a node that is not a validator: it follows consensus but never signs. */
  readonly guard: SafetyGuard | null
  readonly logger: Logger
  /** Wall clock in ms (block times, durations). */
  readonly now: () => number
  /** Resolves after `ms` on the same clock. */
  readonly sleep: (ms: number) => Promise<void>
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
  readonly verifySignature?: (d: DecodedTransaction) => Promise<boolean>
  /** Asks block sync for a block this node saw decided but does not hold. */
  readonly requestBlock: (height: number) => void
  /** Called after a block is durable; the next height starts once it resolves (the mempool catches up first). */
  readonly onCommitted: (block: CommittedBlock) => void | Promise<void>
  /** Called after a commit that scheduled a new validator set (the p2p layer follows the sets). */
  readonly onValidatorSetsChanged?: () => void
  /** Called after a commit that changed the governance state (votes, pending changes). */
  readonly onGovernanceChanged?: () => void
  /** Called when the host hits a broken invariant: the node must stop rather than go on. */
  readonly onFatal: (error: Error) => void
  /** Observes the equivocation evidence this node's core reports (it goes to the evidence pool in any case). */
  readonly onEvidence?: (evidence: Evidence) => void
}

/** Why a block from sync is refused before it is applied (the peer that served it is at fault). */
export interface SyncedBlockFault {
  readonly code: 'not_next' | 'certificate' | 'header' | 'transactions'
  readonly reason: string
}

/** A block from sync, checked and ready to apply. */
export interface CheckedBlock {
  readonly height: number
  readonly hash: Uint8Array
  readonly stored: StoredBlock
  /** The canonical encoding of `stored` when block sync decoded it from these bytes: stored as they are. */
  readonly storedBytes?: Uint8Array | undefined
  readonly txs: readonly DecodedTransaction[]
  readonly certificate: CommitCertificate
  /** The validators its evidence convicts. */
  readonly offenders: readonly Uint8Array[]
  /** The tip it was checked on top of: applied on that same tip, the checks need not run again. */
  readonly checkedOn?: ChainTip | undefined
}

type Judgement = Verdict | { readonly retryMs: number; readonly reason: string }

/** Why a block is judged later when no peer served all its transactions. */
const TXS_UNAVAILABLE = 'transactions unavailable'

/**
 * The wait before the `attempt`th retry (from 0) of a block whose transactions no peer served: `retryMs` four times,
 * then doubling up to eight times it. A proposer may name transactions nobody has, and each attempt asks the proposer,
 * then every peer, for all that are missing; a block whose transactions come late is usually proposed again in a later
 * round, whose judgement starts at `retryMs` again.
 */
function unavailableRetryMs(retryMs: number, attempt: number): number {
  return attempt < 4 ? retryMs : retryMs * Math.min(8, 2 ** (attempt - 3))
}

type QueueItem =
  | { readonly kind: 'input'; readonly input: ConsensusInput; readonly log: boolean }
  | { readonly kind: 'proposal'; readonly message: ProposalMessage; readonly log: boolean }
  | { readonly kind: 'synced'; readonly block: CheckedBlock; readonly hold: boolean; readonly done: (ok: boolean) => void }
  | { readonly kind: 'flush'; readonly done: () => void }

/** A queued consensus message: an input or a proposal, from a peer or from this node's own log. */
type MessageItem = Extract<QueueItem, { kind: 'input' | 'proposal' }>

/** The slot a proposal or vote fills (see ConsensusHost.queuedSlots), and its signature. */
interface QueueSlot {
  readonly slot: string
  readonly signature: string
}

/**
 * What the host makes of a piece of evidence (`ConsensusHost.admitEvidence`): `new` (kept), `known` (held, or
 * committed), `ahead` (of a height above the one this node decides: not judged, nothing kept), `expired` (older than
 * the evidence window: no block may carry it), or why it is invalid.
 */
export type EvidenceAdmission = 'new' | 'known' | 'ahead' | 'expired' | { readonly invalid: string }

/** What the host tells a client that submits evidence: {@link EvidenceAdmission}, an expiry with its explanation. */
export type EvidenceSubmission = Exclude<EvidenceAdmission, 'expired'> | { readonly expired: string }

/** Messages of one slot that may wait in the queue at once: its message and one conflicting with it (evidence). */
const MAX_QUEUED_PER_SLOT = 2

/** The slot a peer's proposal or vote fills, and its signature; undefined for any other item. */
function queueSlot(item: QueueItem | { kind: 'vote'; vote: SignedVote } | { kind: 'proposal'; proposal: SignedProposal }): QueueSlot | undefined {
  const v = item.kind === 'vote' ? item.vote : item.kind === 'input' && item.input.type === 'vote' ? item.input.vote : undefined
  if (v !== undefined) return { slot: `v/${bytesKey(v.validator)}/${v.height}/${v.round}/${v.type}`, signature: bytesKey(v.signature) }
  if (item.kind !== 'proposal') return undefined
  const p = 'message' in item ? item.message.proposal : item.proposal
  return { slot: `p/${p.height}/${p.round}`, signature: bytesKey(p.signature) }
}

/** A proposal of (height, round) being judged, and the propose timeouts of that round held while its block executes. */
interface Judging {
  readonly height: number
  readonly round: number
  candidate: Candidate | undefined
  readonly held: Timeout[]
}

/** A block whose height is applied and written (or staged to be), and reported once its write is on disk. */
interface AppliedBlock extends Omit<CommittedBlock, 'ledgerAhead'> {
  /** A new validator set was scheduled by it (for height + 2), of this many members. */
  readonly scheduled: boolean
  readonly rosterSize: number
  readonly governanceChanged: boolean
}

/** Most synced heights, and most store ops, staged for one write. */
const MAX_STAGED_HEIGHTS = 32
const MAX_STAGED_OPS = 64_000

/**
 * A WAL record of a height above the current one, kept to carry it over a WAL reset; one read back from the WAL at
 * start keeps its entry too, to be replayed when the chain reaches its height (a node whose data/ was wiped syncs
 * back to the height it was voting at, and must recover its lock there).
 */
interface FutureRecord {
  readonly height: number
  readonly record: Uint8Array
  entry?: WalEntry
}

export class ConsensusHost {
  private state: ConsensusState
  /** The tip blocks are applied on: the durable tip, or beyond it the last synced height staged. */
  private tipValue: ChainTip | undefined
  /** The tip on disk and reported. */
  private durableTip: ChainTip | undefined
  /** Synced heights applied and staged for the next write, oldest first: reported once that write is on disk. */
  private staged: AppliedBlock[] = []
  private lastCommitValue: CommitCertificate | null = null
  /** The precommit signatures this process made, by height (the heights not committed yet and the tip). */
  private readonly ownPrecommits = new Map<number, Uint8Array[]>()
  /**
   * The highest height at which a precommit of this validator's key may stand that this process did not make: its
   * safety record's height at start (what earlier processes on this home signed), or 0 when the validator never
   * signed. Undefined while nothing is checked: not a validator, the check turned off, or started without its record
   * ({@link fromFirstPrecommit}).
   */
  private signedBefore: number | undefined
  /** Started without its record, as the operator allowed: {@link signedBefore} is set at this process's first precommit. */
  private fromFirstPrecommit = false
  private readonly candidates = new CandidateStore()
  private readonly queue: QueueItem[] = []
  private readonly roomWaiters: (() => void)[] = []
  private futureRecords: FutureRecord[] = []
  /**
   * Messages from peers for a height this node still has WAL records of to replay (it crashed while voting there and
   * is catching up to it). They wait here until that height starts and its records have gone through the core, so
   * the core first rebuilds what this node did at that height, its lock included, and only then meets what was said
   * since: fed in arrival order, messages of a later round would move it past the round it locked in before its
   * record of that round came back, and it would vote as if it had never locked. Bounded by `maxQueue`; beyond it
   * messages are dropped, as peers repeat theirs.
   */
  private heldForReplay: MessageItem[] = []
  /**
   * The peers' messages queued or held, by the slot they fill (a proposal's height and round; a vote's signer, height,
   * round and type), by signature. A copy of one of them, or a message for a slot that already has
   * {@link MAX_QUEUED_PER_SLOT}, is not queued: while the queue is held up (a synced write, a WAL sync, a block's
   * transactions being fetched) the core cannot tell them known yet, and copies of one large proposal would each be
   * kept, up to `maxQueue` of them.
   */
  private readonly queuedSlots = new Map<string, Set<string>>()
  /**
   * The proposals being judged, one entry per (height, round) that {@link validateValue} works on, with the propose
   * timeouts of that round that fired while its block executed: they reach the core after the verdict.
   */
  private readonly judgements: Judging[] = []
  private ledgerTail: Promise<unknown> = Promise.resolve()
  private readonly gate = new CommitGate()
  /** Resolved when the tree of the synced heights staged so far is updated and written (flushStaged). */
  private treeSettled: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined
  private draining = false
  private replaying = false
  private stopped = false
  private heightStartedAt = 0
  private resends = 0

  constructor(
    private readonly o: ConsensusHostOptions,
    private readonly d: ConsensusHostDependencies,
  ) {
    this.state = initialConsensusState({ chainId: o.chainId, params: o.params, address: d.guard?.address ?? null })
  }

  /** The committed tip (undefined before the first block): on disk and reported. */
  get tip(): ChainTip | undefined {
    return this.durableTip
  }

  /**
   * Runs a read of the committed state that takes several store reads (an account proof) with no commit landing
   * between them: the ledger's root and the store agree throughout.
   */
  async readCommitted<T>(f: () => Promise<T>): Promise<T> {
    for (;;) {
      // inside a run of synced heights staged together the tree waits for the run's end (handleSynced)
      const r = await this.gate.read(async () => (this.d.ledger.treePending ? undefined : { value: await f() }))
      if (r !== undefined) return r.value
      if (this.stopped) throw new Error('the node is stopping')
      await (this.treeSettled?.promise ?? new Promise<void>((resolve) => setImmediate(resolve)))
    }
  }

  /**
   * The tip blocks are applied on: the committed tip, or beyond it the synced blocks applied and staged for the next
   * write (block sync applies the next height on it).
   */
  get appliedTip(): ChainTip | undefined {
    return this.tipValue
  }

  /** The height consensus is working on. */
  get height(): number {
    return this.state.height
  }

  get round(): number {
    return this.state.round
  }

  /**
   * True once the core has left the propose step of its round (it prevoted, precommitted or decided): a transaction
   * that arrives now can only make a later block.
   */
  get pastPropose(): boolean {
    const step = this.state.step
    return step === 'prevote' || step === 'precommit' || step === 'decided'
  }

  /** When the current height started (ms), for sync's "stuck" test. */
  get heightStartedAtMs(): number {
    return this.heightStartedAt
  }

  /** Inputs waiting in the queue. */
  get queueLength(): number {
    return this.queue.length
  }

  /** Proposed blocks held for this and later heights (bounded per height and round; pruned at commit). */
  get candidateCount(): number {
    return this.candidates.size
  }

  /** The core's state (a value: read it, never change it). */
  get consensusState(): ConsensusState {
    return this.state
  }

  /**
   * Loads the tip, replays the WAL of the current height (and the early records of later heights) through the core,
   * and starts consensus. Effects of the replay are carried out (timers re-armed, own messages re-broadcast); the
   * guard returns the stored signature for an identical request and refuses anything that conflicts.
   */
  async start(): Promise<void> {
    this.tipValue = await this.d.chain.tip()
    this.durableTip = this.tipValue
    const tipHeight = this.tipValue?.height ?? 0
    if (tipHeight > 0) this.lastCommitValue = await this.loadCertificate(tipHeight)
    const entries: { height: number; entry: WalEntry; record: Uint8Array }[] = []
    for (const r of await this.d.wal.replay()) {
      const e = decodeWalEntry(r, this.o.block)
      if (!e.ok) throw new Error(`consensus WAL is corrupt: ${e.error.reason}`)
      if (e.value.height > tipHeight) entries.push({ ...e.value, record: r })
    }
    await this.checkSafetyRecord(
      entries.map((e) => e.entry),
      tipHeight,
    )
    const guard = this.d.guard
    if (guard !== null && this.o.stopOnForeignSignature !== false) {
      if (guard.record !== undefined) this.signedBefore = guard.record.height
      else if (this.o.allowMissingSafetyRecord === true) this.fromFirstPrecommit = true
      else this.signedBefore = 0
    }
    for (const { height, entry } of entries) if (entry.kind === 'block') this.restoreBlock(height, entry.round, entry.block)
    this.futureRecords = entries
      .filter((e) => e.height > tipHeight + 1)
      .map(({ height, record, entry }) => ({ height, record, ...(entry.kind === 'block' ? {} : { entry }) }))
    this.heightStartedAt = this.d.now()
    this.replaying = true
    this.queue.unshift({ kind: 'input', input: { type: 'startHeight', height: tipHeight + 1, validatorSet: this.d.sets.at(tipHeight + 1) }, log: false })
    for (const { height, entry } of entries) if (height === tipHeight + 1 && entry.kind !== 'block') this.queue.push(replayItem(entry))
    const last = this.lastSignedAt(tipHeight + 1)
    if (last !== undefined) this.queue.push(last)
    await this.drain()
    this.replaying = false
    if (this.queue.length > 0) void this.drain()
    if (entries.length > 0) this.d.logger.info({ height: tipHeight + 1, records: entries.length }, 'replayed the consensus WAL')
  }

  /**
   * What to feed the core right after it starts `height`: the WAL records of that height read back at start (a node
   * that synced up to the height it was voting at before a crash), then this validator's last signed message if it is
   * of that height (its WAL record may not have reached the disk: the guard's record always did).
   */
  private replayFor(height: number): QueueItem[] {
    const items: QueueItem[] = []
    for (const r of this.futureRecords) {
      if (r.height !== height || r.entry === undefined || r.entry.kind === 'block') continue
      items.push(replayItem(r.entry))
      r.entry = undefined
    }
    const last = this.lastSignedAt(height)
    if (last !== undefined) items.push(last)
    return items
  }

  private lastSignedAt(height: number): QueueItem | undefined {
    const last = this.d.guard?.lastSigned()
    if (last?.kind === 'vote' && last.vote.height === height) return { kind: 'input', input: { type: 'vote', vote: last.vote }, log: true }
    if (last?.kind === 'proposal' && last.proposal.height === height) return { kind: 'input', input: { type: 'proposal', proposal: last.proposal }, log: false }
    return undefined
  }

  /**
   * A block logged whole before a crash: its candidate gets its transactions back (they may be in no mempool now).
   * Their signatures count as verified: this node logs a block only once it built it from its mempool or judged it
   * valid, either way after verifying every signature in it (the WAL holds only input this node authenticated), and a
   * transaction's hash covers its signature. So judging the block again on the way back, as the replay does, does not
   * verify them a second time.
   */
  private restoreBlock(height: number, round: number, stored: StoredBlock): void {
    const txs: DecodedTransaction[] = []
    for (const bytes of stored.block.txs) {
      const d = decodeTransaction(bytes)
      if (!d.ok) throw new Error(`consensus WAL holds a block with a malformed transaction: ${d.error.reason}`)
      txs.push(d.value)
    }
    for (const t of txs) this.d.verified.add(t.hash)
    const header = stored.block.header
    const c = this.candidates.add(height, round, {
      header,
      hash: blockHash(header),
      txHashes: txs.map(hashOf),
      evidence: stored.block.evidence,
      lastCommit: stored.lastCommit,
    })
    if (c !== undefined) c.txs ??= txs
  }

  /** Logs a block whole (see walEntry.ts): before this node proposes it or reports it valid, so before it votes for it. */
  private logBlock(c: Candidate, round: number): void {
    this.log(
      { kind: 'block', round, block: { block: { header: c.header, txs: c.txs!.map(txBytes), evidence: c.evidence }, lastCommit: c.lastCommit } },
      c.header.height,
    )
  }

  /** The validator set in force at `height` once it is known (up to the tip + 2: later blocks may still change it). */
  validatorSetAt(height: number): ValidatorSet | undefined {
    return height >= 1 && height <= (this.tipValue?.height ?? 0) + 2 ? this.d.sets.at(height) : undefined
  }

  stop(): void {
    this.stopped = true
    this.heldForReplay = []
    this.queuedSlots.clear()
    this.releaseWaiters()
  }

  /** Once stopped, nothing waits on the host: gossip waiting for room goes on, and synced blocks are refused. */
  private releaseWaiters(): void {
    for (const wake of this.roomWaiters.splice(0)) wake()
    for (const item of this.queue.splice(0)) settleUnhandled(item)
    this.treeSettled?.resolve() // a reader waiting for the staged heights' tree: it finds the host stopped
  }

  /**
   * What the core would do with a signed message, short of its signature: `new`, `known` (already held) or `drop`
   * (stale, outside the window, not from the round's proposer). The admission asks before spending a signature check.
   */
  messageStatus(m: { kind: 'vote'; vote: SignedVote } | { kind: 'proposal'; proposal: SignedProposal }): MessageStatus {
    if (this.state.step === 'idle') return 'drop'
    if (this.alreadyQueued(queueSlot(m))) return 'drop'
    const status = messageStatus(this.state, m)
    // a block its proposer's slot has no room for is never kept, nor fed to the core, which would keep asking for it
    if (status !== 'drop' && m.kind === 'proposal' && !this.candidates.hasRoom(m.proposal.height, m.proposal.round, m.proposal.valueId)) return 'drop'
    // a proposal the core holds is passed on only for its block's parts, which a restart may have lost: held, a copy
    // adds nothing
    if (status === 'known' && m.kind === 'proposal' && this.candidates.get(m.proposal.valueId) !== undefined) return 'drop'
    return status
  }

  /** Whether a copy of this peer's message is queued or held, or its slot has no room ({@link queuedSlots}). */
  private alreadyQueued(key: QueueSlot | undefined): boolean {
    const queued = key === undefined ? undefined : this.queuedSlots.get(key.slot)
    return queued !== undefined && (queued.has(key!.signature) || queued.size >= MAX_QUEUED_PER_SLOT)
  }

  /** The item has left the queue and is not held: copies of it may be queued again. */
  private release(item: QueueItem): void {
    // only a peer's messages are counted (this node's own records, replayed from its WAL, are not)
    if ((item.kind !== 'input' && item.kind !== 'proposal') || !item.log) return
    const key = queueSlot(item)
    if (key === undefined) return
    const queued = this.queuedSlots.get(key.slot)
    queued?.delete(key.signature)
    if (queued?.size === 0) this.queuedSlots.delete(key.slot)
  }

  /**
   * A proposal with its block parts from gossip, whose signature and proposer the admission verified. Resolves once
   * it is queued; it waits while the queue is full.
   */
  onProposalMessage(message: ProposalMessage): Promise<void> {
    return this.enqueueGossip({ kind: 'proposal', message, log: true })
  }

  /** A vote from gossip whose signature the admission verified. Resolves once queued (waits while the queue is full). */
  onVote(vote: SignedVote): Promise<void> {
    return this.enqueueGossip({ kind: 'input', input: { type: 'vote', vote }, log: true })
  }

  /**
   * A timeout the core asked for has elapsed. A propose timeout whose round's proposal arrived and is executing waits
   * for the verdict: the timeout bounds the wait for a proposal, not its judgement (the paper's `valid(v)` takes no
   * time), so such a block is prevoted by its verdict and not nil, which would have every validator execute a large
   * block once in vain and then again in the next round. The wait is bounded by executing one block within the block
   * limits; a block that cannot be judged yet (transactions missing, time ahead) holds nothing back.
   */
  onTimeoutElapsed(timeout: Timeout): void {
    if (timeout.kind === 'propose') {
      const j = this.judgements.find((x) => x.height === timeout.height && x.round === timeout.round && x.candidate?.executing === true)
      if (j !== undefined) {
        j.held.push(timeout)
        return
      }
    }
    this.enqueue({ kind: 'input', input: { type: 'timeoutElapsed', timeout }, log: true })
  }

  /** Hands the timeouts held for a judgement to the core, after whatever verdict went before them. */
  private releaseTimeouts(j: Judging): void {
    for (const timeout of j.held.splice(0)) this.enqueue({ kind: 'input', input: { type: 'timeoutElapsed', timeout }, log: true })
  }

  /**
   * Re-broadcasts what peers may have missed, when the height has run longer than `afterMs`: this validator's own
   * proposals and votes of the current and previous round, what brought it to its round (the previous round's
   * precommits, the current round's messages), and the proposal and polka behind its valid value (`repairMessages`).
   * Gossip is fire-and-forget: a peer that was down or not yet connected when a message went out would otherwise never
   * see it, and validators stranded in different rounds, or behind a lock or a precommit only some of them saw, would
   * wait for each other forever. Bounded by O(n) messages whatever the round.
   */
  rebroadcast(afterMs: number): void {
    if (this.stopped || this.state.step === 'idle' || this.d.now() - this.heightStartedAt < afterMs) return
    this.resends++
    for (const m of repairMessages(this.state)) {
      if (m.kind === 'vote') {
        this.d.broadcast(encodeVoteMessage(m.vote, this.resends))
        continue
      }
      const c = this.candidates.get(m.proposal.valueId)
      if (c)
        this.d.broadcast(
          encodeProposalMessage({ proposal: m.proposal, header: c.header, txHashes: c.txHashes, evidence: c.evidence, lastCommit: c.lastCommit }, this.resends),
        )
    }
  }

  /**
   * Checks a block from sync against this node's chain before it is applied: the certificate decides this block at
   * the next height (verified against the validator set), the header extends the tip under the block-validity rule,
   * the carried previous-height certificate is valid and is the one the header names, and the transactions decode and
   * are the ones the header commits to. A failure is the serving peer's fault, never this node's. `storedBytes`, when
   * given, must be the bytes `stored` was strictly decoded from (so its canonical encoding): the block is then stored
   * as those bytes instead of being encoded again.
   */
  async checkSyncedBlock(
    height: number,
    stored: StoredBlock,
    certificate: CommitCertificate,
    storedBytes?: Uint8Array,
  ): Promise<Result<CheckedBlock, SyncedBlockFault>> {
    const fail = (code: SyncedBlockFault['code'], reason: string) => err<SyncedBlockFault>({ code, reason })
    const parent = this.parent()
    if (height !== parent.height) return fail('not_next', `height ${height} is not the next (${parent.height})`)
    const header = stored.block.header
    const hash = blockHash(header)
    const v = verifyCommit(this.d.sets.at(height), this.o.chainId, height, hash, certificate)
    if (!v.ok) return fail('certificate', v.error.reason)
    const txs: DecodedTransaction[] = []
    for (const bytes of stored.block.txs) {
      const d = decodeTransaction(bytes)
      if (!d.ok) return fail('transactions', `a transaction does not decode: ${d.error.reason}`)
      txs.push(d.value)
    }
    const h = checkBlockHeader(header, txs.map(hashOf), parent, this.verifiedLastCommitHash(stored.lastCommit))
    if (!h.ok) return fail('header', `${h.error.code}: ${h.error.reason}`)
    const body = checkBlockBody(txs, parent)
    if (!body.ok) return fail('transactions', body.error.reason)
    const evidence = await this.checkEvidence(header, stored.block.evidence, parent)
    if (!evidence.ok) return fail('header', evidence.error.reason)
    return ok({ height, hash, stored, storedBytes, txs, certificate, offenders: evidence.value, checkedOn: this.tipValue })
  }

  /**
   * Evidence from a peer: kept (and later proposed) when it proves an equivocation of a validator at a height this node
   * has reached, no older than the evidence window, and not committed yet: `new`. `known` when this node holds it or
   * other evidence of the same equivocation already, or the chain committed it. Evidence this node cannot judge is
   * told apart after the cheap checks only (it decodes), before any signature is checked: `ahead` when its height is
   * above the one this node decides (the set of that height may not be known here; nothing of it is kept), `expired`
   * when it is older than the evidence window (no block may carry it any more, whether or not it verifies). Anything
   * that does not decode or verify is invalid. A peer that sends evidence ahead or expired may be honest (late, or
   * ahead of this node): the gossip ignores it without penalty.
   */
  async admitEvidence(bytes: Uint8Array): Promise<EvidenceAdmission> {
    const r = this.judgeEvidence(bytes)
    return 'verdict' in r ? r.verdict : this.admitVerifiable(bytes, r.evidence, r.at)
  }

  /**
   * Evidence a client submits (`evidence_submit`, e.g. from a light client that found a fork): admitted as evidence
   * from a peer ({@link admitEvidence}) and, when new to the pool, broadcast to the peers as the evidence this node's
   * core finds is, so that the next proposers, whichever node holds it, put it in a block. A full node does the same.
   * Expired evidence is `known` when the chain committed it, else answered with why: its height, the window and the
   * height this node decides.
   */
  async submitEvidence(bytes: Uint8Array): Promise<EvidenceSubmission> {
    const r = this.judgeEvidence(bytes)
    if ('verdict' in r) {
      if (r.verdict !== 'expired') return r.verdict
      if ((await this.d.evidence.committedAt(evidenceHash(bytes))) !== undefined) return 'known'
      return {
        expired:
          `evidence of height ${r.at} is older than the evidence window: this node decides height ${r.decides}, and a ` +
          `block carries evidence at most ${this.o.evidence.maxAgeHeights} heights below its own`,
      }
    }
    const verdict = await this.admitVerifiable(bytes, r.evidence, r.at)
    if (verdict === 'new') this.d.broadcast(encodeEvidenceMessage(bytes))
    return verdict
  }

  /**
   * The checks of evidence that need no signature: a verdict, or the decoded evidence of a height this node can judge
   * (within the window). The window is checked before the pool: evidence held but no longer committable is expired.
   */
  private judgeEvidence(bytes: Uint8Array): { verdict: EvidenceAdmission; at?: number; decides: number } | { evidence: Evidence; at: number } {
    const decides = this.state.height
    const d = decodeEvidence(bytes)
    if (!d.ok) return { verdict: { invalid: d.error.reason }, decides }
    const at = evidenceHeight(d.value)
    if (at > decides) return { verdict: 'ahead', at, decides }
    if (decides - at > this.o.evidence.maxAgeHeights) return { verdict: 'expired', at, decides }
    // another pair of the same equivocation proves nothing more: known before its two signatures are checked
    if (this.d.evidence.has(bytes) || this.d.evidence.provesAlready(d.value)) return { verdict: 'known', at, decides }
    return { evidence: d.value, at }
  }

  /** Evidence within the window, not held: verified against the set of its height, then kept unless committed. */
  private async admitVerifiable(bytes: Uint8Array, evidence: Evidence, at: number): Promise<'new' | 'known' | { readonly invalid: string }> {
    const v = verifyEvidence(evidence, this.o.chainId, this.d.sets.at(at))
    if (!v.ok) return { invalid: v.error.reason }
    if ((await this.d.evidence.committedAt(evidenceHash(bytes))) !== undefined) return 'known'
    return this.d.evidence.add(evidence) === undefined ? 'known' : 'new'
  }

  /**
   * What a peer's tip certificate proves: fully verified against the set of its height when this node knows it (up
   * to two heights above its tip), else by more than a third of the latest set it knows (skipping verification: with
   * fewer faulty than that, an honest validator signed, so the height exists). Signed by a third or less of that set
   * (the set changed since, or the signers are unknown), it proves nothing either way: `unknown`.
   */
  verifyTip(certificate: CommitCertificate): TipVerdict {
    const known = (this.tipValue?.height ?? 0) + 2
    if (certificate.height <= known)
      return verifyCommit(this.d.sets.at(certificate.height), this.o.chainId, certificate.height, certificate.valueId, certificate).ok ? 'proven' : 'invalid'
    const trusted = verifyCommitTrusting(this.d.sets.at(known), this.o.chainId, certificate)
    return trusted.ok ? 'proven' : trusted.error.code === 'insufficient_power' ? 'unknown' : 'invalid'
  }

  /**
   * Whether a certificate decides this block at this height; undefined when this node cannot tell yet (the set of that
   * height is not known before the blocks below it are applied: {@link checkSyncedBlock} decides then).
   */
  verifyBlockCertificate(height: number, stored: StoredBlock, certificate: CommitCertificate): boolean | undefined {
    if (height > (this.tipValue?.height ?? 0) + 2) return undefined
    return verifyCommit(this.d.sets.at(height), this.o.chainId, height, blockHash(stored.block.header), certificate).ok
  }

  /**
   * Applies a block from sync that {@link checkSyncedBlock} accepted, if it is still the next height; resolves true
   * once committed. Certified blocks hold only transfers that applied, so a failure to execute it, or a state root that
   * differs, means this replica's state diverged: the node stops.
   *
   * With `hold` (block sync has the next height's block at hand), a node whose store stages writes
   * ({@link StagedKvStore}) may instead stage the height's write for the next one, so that heights applied back to
   * back share one synced write; it then resolves true once the height is applied (the {@link appliedTip}), and the
   * height is committed and reported, in order, once that write is on disk: with the next synced block not held, at
   * {@link flushSyncedBlocks}, or before anything else the host handles.
   */
  applySyncedBlock(block: CheckedBlock, hold = false): Promise<boolean> {
    return new Promise((resolve) => this.enqueue({ kind: 'synced', block, hold, done: resolve }))
  }

  /** Commits the synced heights staged by {@link applySyncedBlock}; resolves once they are on disk and reported. */
  flushSyncedBlocks(): Promise<void> {
    return new Promise((resolve) => this.enqueue({ kind: 'flush', done: resolve }))
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

  // ---- the queue -----------------------------------------------------------------------------------------------

  private enqueue(item: QueueItem): void {
    if (this.stopped) {
      settleUnhandled(item)
      return
    }
    this.queue.push(item)
    if (!this.draining && !this.replaying) void this.drain()
  }

  private enqueueFront(item: QueueItem): void {
    if (this.stopped) return
    this.queue.unshift(item)
    if (!this.draining && !this.replaying) void this.drain()
  }

  private async enqueueGossip(item: MessageItem): Promise<void> {
    const max = this.o.maxQueue ?? 10_000
    while (this.queue.length >= max && !this.stopped) await new Promise<void>((resolve) => this.roomWaiters.push(resolve))
    const key = queueSlot(item)
    if (key !== undefined) {
      if (this.alreadyQueued(key)) return
      const queued = this.queuedSlots.get(key.slot)
      if (queued === undefined) this.queuedSlots.set(key.slot, new Set([key.signature]))
      else queued.add(key.signature)
    }
    this.enqueue(item)
  }

  private async drain(): Promise<void> {
    if (this.draining) return
    this.draining = true
    const max = this.o.maxQueue ?? 10_000
    try {
      while (this.queue.length > 0 && !this.stopped) {
        // staged synced heights are committed before anything but the next synced block is handled
        if (this.staged.length > 0 && this.queue[0]!.kind !== 'synced') {
          await this.flushStaged()
          continue
        }
        const item = this.queue.shift()!
        await this.handle(item)
        if (this.roomWaiters.length > 0 && this.queue.length < max / 2) for (const wake of this.roomWaiters.splice(0)) wake()
      }
    } catch (e) {
      this.fatal(e as Error)
    } finally {
      this.draining = false
      for (const wake of this.roomWaiters.splice(0)) wake()
    }
  }

  private async handle(item: QueueItem): Promise<void> {
    if (this.holdForReplay(item)) return
    this.release(item)
    switch (item.kind) {
      case 'input':
        return this.handleInput(item.input, item.log)
      case 'proposal':
        return this.handleProposal(item.message, item.log)
      case 'synced': {
        let applied = false
        try {
          applied = await this.handleSynced(item.block, item.hold)
        } finally {
          item.done(applied)
        }
        return
      }
      case 'flush':
        // anything staged was flushed before this item came up
        item.done()
        return
    }
  }

  /** Holds a peer's message of a later height that still has WAL records to replay ({@link heldForReplay}). */
  private holdForReplay(item: QueueItem): boolean {
    if ((item.kind !== 'input' && item.kind !== 'proposal') || !item.log) return false
    const height = this.messageHeight(item)
    if (height <= this.state.height || !this.futureRecords.some((r) => r.height === height && r.entry !== undefined)) return false
    if (this.heldForReplay.length < (this.o.maxQueue ?? 10_000)) this.heldForReplay.push(item)
    else {
      this.release(item)
      this.d.logger.debug({ height }, 'dropped a message held for the replay of its height: too many held')
    }
    return true
  }

  /** The height a queued consensus message is of. */
  private messageHeight(item: MessageItem): number {
    return item.kind === 'proposal' ? item.message.proposal.height : this.inputHeight(item.input)
  }

  private async handleInput(input: ConsensusInput, log: boolean): Promise<void> {
    if (input.type === 'vote') {
      // a repeated or useless vote is neither logged nor fed (a flood of copies costs no disk and no step)
      if (messageStatus(this.state, { kind: 'vote', vote: input.vote }) !== 'new') return
      if (log) this.log({ kind: 'input', input }, input.vote.height)
    } else if (
      log &&
      this.inputHeight(input) === this.state.height &&
      input.type !== 'startHeight' &&
      input.type !== 'proposal' &&
      input.type !== 'commitCertificate'
    ) {
      this.log({ kind: 'input', input }, this.state.height)
    }
    await this.feed(input)
  }

  private async handleProposal(m: ProposalMessage, log: boolean): Promise<void> {
    const p = m.proposal
    const status = messageStatus(this.state, { kind: 'proposal', proposal: p })
    if (status === 'drop') return
    // Block parts are kept for this height and the next ones (the core buffers a later-height proposal until then);
    // also for a proposal the core already holds, whose parts this node may have lost in a restart.
    const c = this.candidates.add(p.height, p.round, {
      header: m.header,
      hash: p.valueId,
      txHashes: m.txHashes,
      evidence: m.evidence,
      lastCommit: m.lastCommit,
    })
    if (c === undefined) {
      this.d.logger.warn(
        { height: p.height, round: p.round, proposer: toHex(p.proposer) },
        'dropped a proposal: its proposer already has two blocks in this round',
      )
      return
    }
    if (status === 'known') return
    if (log) this.log({ kind: 'proposal', message: m }, p.height)
    await this.feed({ type: 'proposal', proposal: p })
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

  /** Appends a record (not waiting for the disk: {@link flushWal} does, before any signature). */
  private log(entry: WalEntry, height: number): void {
    try {
      const record = encodeWalEntry(entry)
      this.d.wal.write(record)
      if (height > this.state.height) this.futureRecords.push({ height, record })
    } catch (e) {
      this.fatal(new Error(`consensus WAL append failed: ${(e as Error).message}`))
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
          this.d.logger[this.expectedRefusal(r.error.code, e.proposal.height) ? 'debug' : 'warn'](
            { height: e.proposal.height, round: e.proposal.round, code: r.error.code },
            `guard refused a proposal: ${r.error.reason}`,
          )
          return
        }
        this.enqueueFront({ kind: 'input', input: { type: 'proposal', proposal: r.value }, log: false })
        return
      }
      case 'signVote': {
        if (!this.d.guard) return
        const [, r] = await Promise.all([this.flushWal(), this.d.guard.signVoteAsync(e.vote)])
        if (!r.ok) {
          const level = this.expectedRefusal(r.error.code, e.vote.height) ? 'debug' : 'warn'
          this.d.logger[level]({ height: e.vote.height, round: e.vote.round, type: e.vote.type, code: r.error.code }, `guard refused a vote: ${r.error.reason}`)
          return
        }
        if (r.value.type === 'precommit') this.notePrecommit(r.value)
        this.enqueueFront({ kind: 'input', input: { type: 'vote', vote: r.value }, log: true })
        return
      }
      case 'broadcastProposal': {
        const c = this.candidates.get(e.proposal.valueId)
        if (!c) {
          this.d.logger.error({ height: e.proposal.height, round: e.proposal.round }, 'own proposal has no block')
          return
        }
        const message: ProposalMessage = { proposal: e.proposal, header: c.header, txHashes: c.txHashes, evidence: c.evidence, lastCommit: c.lastCommit }
        this.candidates.add(e.proposal.height, e.proposal.round, c)
        this.log({ kind: 'proposal', message }, e.proposal.height)
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
        // a validator whose chain is behind what it signed (a wiped data/ syncing back) cannot sign a proposal there
        if (this.behindSafetyRecord(e.height)) return
        void this.buildValue(e.height, e.round)
        return
      case 'validateValue':
        void this.validateValue(e.height, e.round, e.valueId)
        return
      case 'decide':
        return this.commitDecided(e.height, e.round, e.valueId, e.certificate)
      case 'evidence':
        return this.noteEvidence(e.evidence)
    }
  }

  /** Equivocation evidence this node found: to the pool, and to its peers when new to the pool. */
  private noteEvidence(evidence: Evidence): void {
    this.d.onEvidence?.(evidence)
    const bytes = this.d.evidence.add(evidence)
    if (bytes !== undefined) this.d.broadcast(encodeEvidenceMessage(bytes))
  }

  /** Notes a precommit this process signed, to tell its own from another process's in certificates. */
  private notePrecommit(vote: SignedVote): void {
    // Allowed to start without its record, this validator vouched that it had signed nothing above the chain's tip
    // then. Its first precommit here is above that tip: a precommit needs 2f+1 prevotes of its height, which only a
    // height the others are voting at gets (a nil prevote of a height it is still catching up to needs none).
    if (this.fromFirstPrecommit) {
      this.fromFirstPrecommit = false
      this.signedBefore = vote.height - 1
    }
    if (this.signedBefore === undefined) return
    const list = this.ownPrecommits.get(vote.height)
    if (list === undefined) this.ownPrecommits.set(vote.height, [vote.signature])
    else list.push(vote.signature)
  }

  /**
   * Throws when `certificate` carries a precommit of this validator's key above {@link signedBefore} that this process
   * did not sign: another process signs as this validator, and each more signature of either risks an equivocation. The
   * certificate's signatures were verified (it decides a block this node commits, or is that block's carried one).
   */
  private checkForeignSignature(certificate: CommitCertificate | null): void {
    const guard = this.d.guard
    if (guard === null || this.signedBefore === undefined || certificate === null || certificate.height <= this.signedBefore) return
    const s = certificate.signatures.find((x) => bytesEqual(x.validator, guard.address))
    if (s === undefined || this.ownPrecommits.get(certificate.height)?.some((own) => bytesEqual(own, s.signature)) === true) return
    throw new Error(
      `another process signs as this validator: the certificate of height ${certificate.height} carries a precommit of its key (round ${certificate.round}) that this node did not sign, above its safety record (height ${this.signedBefore}). Stop the other process and copy its validator_state.json here before starting this node again; if no other process runs (this record was restored from an old copy), see "Lost validator_state.json" in docs/operations.md`,
    )
  }

  /** True when this validator already signed at a height above `height` (its chain is catching up to its record). */
  private behindSafetyRecord(height: number): boolean {
    const record = this.d.guard?.record
    return record !== undefined && record.height > height
  }

  /**
   * A refusal that is expected, not a warning: replaying the WAL re-asks for messages the guard already passed (a
   * prevote after its precommit), and a validator catching up to its safety record is refused below it.
   */
  private expectedRefusal(code: string, height: number): boolean {
    return code === 'regression' && (this.replaying || this.behindSafetyRecord(height))
  }

  private fatal(e: Error): void {
    if (this.stopped) return
    this.stopped = true
    this.releaseWaiters()
    this.d.onFatal(e)
  }

  // ---- the ledger ------------------------------------------------------------------------------------------

  /** Runs `f` alone on the ledger: execution and commit never interleave on its single-version state. */
  private withLedger<T>(f: () => Promise<T>): Promise<T> {
    const run = this.ledgerTail.then(f, f)
    this.ledgerTail = run.catch(() => undefined)
    return run
  }

  /** What the next block must extend. */
  private parent(): BlockParent {
    const tip = this.tipValue
    const height = (tip?.height ?? 0) + 1
    const set = this.d.sets.at(height)
    return {
      chainId: this.o.chainId,
      height,
      previousBlockHash: tip?.blockHash ?? ZERO_HASH,
      previousBlockTime: tip?.blockTime ?? this.o.genesisTimeMs,
      validatorSetHash: set.hash,
      nextValidatorSetHash: this.d.sets.at(height + 1).hash,
      isValidator: (address) => findValidator(set, address) !== undefined,
      maxTxs: this.o.block.maxTxs,
      maxBytes: this.o.block.maxBytes,
      maxEvidence: this.o.evidence.maxPerBlock,
    }
  }

  /** The hash of a carried previous-height certificate that verifies against the tip, else null. */
  private verifiedLastCommitHash(lastCommit: CommitCertificate | null): Uint8Array | null {
    const tip = this.tipValue
    if (lastCommit === null || tip === undefined) return null
    return verifyCommit(this.d.sets.at(tip.height), this.o.chainId, tip.height, tip.blockHash, lastCommit).ok ? commitHash(lastCommit) : null
  }

  /**
   * The evidence rule for a block of the next height: the structural half (ledger/blockValidity.ts) and each item:
   * valid equivocation evidence against the set of its height, at most `maxAgeHeights` old, never committed before.
   * Returns the offenders, in item order, without repeats.
   */
  private async checkEvidence(header: BlockHeader, items: readonly Uint8Array[], parent: BlockParent): Promise<Result<Uint8Array[], BlockFault>> {
    const { fault, offenders } = await this.evidenceItems(items, parent.height)
    const r = checkBlockEvidence(header, items.map(evidenceHash), parent, fault)
    return r.ok ? ok(offenders) : r
  }

  /** The first item of `items` that a block of `height` may not carry, if any, and the validators they convict. */
  private async evidenceItems(items: readonly Uint8Array[], height: number): Promise<{ fault?: string; offenders: Uint8Array[] }> {
    const offenders: Uint8Array[] = []
    for (let i = 0; i < items.length; i++) {
      const bytes = items[i]!
      const d = decodeEvidence(bytes)
      if (!d.ok) return { fault: `evidence ${i}: ${d.error.reason}`, offenders }
      const at = evidenceHeight(d.value)
      if (at >= height || height - at > this.o.evidence.maxAgeHeights) return { fault: `evidence ${i} of height ${at} is outside the window`, offenders }
      if (!verifyEvidence(d.value, this.o.chainId, this.d.sets.at(at)).ok) return { fault: `evidence ${i} does not verify`, offenders }
      // committed below this height: a block at this height or above, already written here, is this very block
      // (a copy from sync checked while this node commits it) and never a fault of the peer that sent it
      const committedAt = await this.d.evidence.committedAt(evidenceHash(bytes))
      if (committedAt !== undefined && committedAt < height) return { fault: `evidence ${i} was committed before`, offenders }
      const offender = evidenceOffender(d.value)
      if (!offenders.some((o) => bytesEqual(o, offender))) offenders.push(offender)
    }
    return { offenders }
  }

  /** The execution context of a block of `height` convicting `offenders`. */
  private blockContext(height: number, offenders: readonly Uint8Array[]): ExecutionContext {
    return { chainId: this.o.chainId, verified: this.d.verified, block: { height, governance: this.o.governance, offenders } }
  }

  // ---- proposing -------------------------------------------------------------------------------------------

  private async buildValue(height: number, round: number): Promise<void> {
    try {
      let txs = await this.reapOrWait(height, round)
      if (this.stopped || this.state.height !== height || this.state.round !== round) return
      const evidence = await this.d.evidence.forBlock(height, this.o.evidence.maxPerBlock, this.o.evidence.maxAgeHeights)
      const built = await this.withLedger(async () => {
        const tip = this.tipValue
        // (staged synced heights, whose tree may wait, stand above the height consensus works on)
        if ((tip?.height ?? 0) + 1 !== height || this.d.ledger.treePending) return undefined
        const parent = this.parent()
        // a pending item the block may not carry (the chain moved past it) is left out
        const items: Uint8Array[] = []
        for (const e of evidence) if ((await this.evidenceItems([...items, e], height)).fault === undefined) items.push(e)
        const { offenders } = await this.evidenceItems(items, height)
        const t0 = this.d.now()
        let result = await this.d.ledger.execute(txs, this.blockContext(height, offenders))
        if (result.receipts.some(failed)) {
          // A reaped transaction that does not apply to the committed state leaves the mempool with its reason
          // (so it is reported rejected, not retried forever); the block keeps the ones that apply.
          txs.forEach((t, i) => {
            const r = result.receipts[i]!
            if (!r.ok) this.d.mempool.reject(t.hash, r.code, `failed execution at height ${height}: ${r.code}`)
          })
          txs = txs.filter((_, i) => result.receipts[i]!.ok)
          result = await this.d.ledger.execute(txs, this.blockContext(height, offenders))
        }
        return { tip, parent, items, result, executionMs: this.d.now() - t0 }
      })
      if (built === undefined || this.stopped || this.state.height !== height) return
      const { tip, parent, items, result, executionMs } = built
      const txHashes = txs.map(hashOf)
      const header: BlockHeader = {
        chainId: this.o.chainId,
        height,
        time: Math.max(this.d.now(), parent.previousBlockTime + 1),
        previousBlockHash: tip?.blockHash ?? ZERO_HASH,
        txRoot: txRoot(txHashes),
        stateRoot: result.stateRoot,
        proposer: this.d.guard!.address,
        validatorSetHash: parent.validatorSetHash,
        nextValidatorSetHash: parent.nextValidatorSetHash,
        lastCommitHash: this.lastCommitValue === null ? ZERO_HASH : commitHash(this.lastCommitValue),
        evidenceRoot: txRoot(items.map(evidenceHash)),
      }
      const hash = blockHash(header)
      const candidate: Candidate = {
        header,
        hash,
        txHashes,
        evidence: items,
        lastCommit: this.lastCommitValue,
        txs,
        result,
        executionMs,
        verdict: 'valid',
      }
      if (this.candidates.add(height, round, candidate) === undefined) return
      this.logBlock(candidate, round)
      this.enqueue({ kind: 'input', input: { type: 'valueReady', height, round, valueId: hash }, log: true })
    } catch (e) {
      this.fatal(new Error(`building the block for height ${height} failed: ${(e as Error).message}`))
    }
  }

  /**
   * Reaps executable transactions; when there are none, waits for some up to the empty-block interval after the
   * last block, then proposes what there is, possibly an empty block. In round 0 it first waits out the pacing
   * interval ({@link ConsensusHostOptions.minBlockIntervalMs}) from the height's start, unless the mempool holds a
   * full block. Both waits are bounded by half the propose timeout, so peers do not time out on this proposer.
   */
  private async reapOrWait(height: number, round: number): Promise<DecodedTransaction[]> {
    const limits = { maxTxs: this.o.block.maxTxs, maxBytes: this.o.block.maxBytes }
    const now = this.d.now()
    const most = Math.floor(this.o.params.timeoutProposeMs / 2)
    const wait = Math.min(this.o.emptyBlockIntervalMs, most)
    const deadline = Math.min(now + wait, Math.max((this.tipValue?.blockTime ?? 0) + wait, now))
    const paced = round === 0 ? Math.min(this.heightStartedAt + (this.o.minBlockIntervalMs ?? 0), now + most) : now
    // One timer per moment waited for (the pacing moment, then the deadline); the mempool's changes wake the loop in
    // between, so a transaction that ends the wait is proposed as it arrives, not at the next tick of a poll.
    let timerAt = -1
    let timer: Promise<void> = Promise.resolve()
    for (;;) {
      const done = this.stopped || this.state.height !== height || this.state.round !== round
      const t = this.d.now()
      if (done || t >= paced || this.d.mempool.size >= limits.maxTxs || this.d.mempool.bytes >= limits.maxBytes) {
        const txs = this.d.mempool.reap(limits)
        if (done || txs.length > 0 || t >= deadline) return txs
      }
      const at = t < paced ? paced : deadline
      if (at !== timerAt) {
        timerAt = at
        timer = this.d.sleep(at - t)
      }
      await Promise.race([timer, this.d.mempool.changed()])
    }
  }

  // ---- validating ------------------------------------------------------------------------------------------

  /**
   * Judges a proposed block and reports the verdict to the core. A block that cannot be judged yet is tried again
   * while its height lasts: the core keeps it pending (and prevotes nil when its propose timeout fires), and a later
   * round's re-proposal of the same value finds it valid once the transactions arrived or the clock caught up. A
   * propose timeout of this round that fires while the block executes waits for the verdict ({@link onTimeoutElapsed}).
   */
  private async validateValue(height: number, round: number, valueId: Uint8Array): Promise<void> {
    const judging: Judging = { height, round, candidate: undefined, held: [] }
    this.judgements.push(judging)
    try {
      let lastReason: string | undefined
      let unavailable = 0
      for (;;) {
        if (this.stopped || this.state.height !== height) return
        const c = this.candidates.get(valueId)
        if (c === undefined) {
          this.d.logger.warn({ height, round, block: toHex(valueId) }, 'a proposed value has no block parts')
          return
        }
        judging.candidate = c
        const j = await this.judge(c, false)
        if (this.stopped || this.state.height !== height) return
        if (j === 'valid' || j === 'invalid') {
          if (j === 'valid') this.logBlock(c, round)
          this.enqueue({ kind: 'input', input: { type: 'valueValidated', height, round, valueId, valid: j === 'valid' }, log: true })
          return
        }
        this.releaseTimeouts(judging)
        if (j.reason !== lastReason)
          this.d.logger.info({ height, round, block: toHex(valueId), reason: j.reason }, 'cannot judge a proposed block yet: will retry')
        lastReason = j.reason
        if (j.reason === TXS_UNAVAILABLE) await this.untilTxsPending(c, unavailableRetryMs(j.retryMs, unavailable++))
        else await this.d.sleep(j.retryMs)
      }
    } catch (e) {
      this.fatal(new Error(`validating a block at height ${height} failed: ${(e as Error).message}`))
    } finally {
      this.judgements.splice(this.judgements.indexOf(judging), 1)
      this.releaseTimeouts(judging)
    }
  }

  /**
   * Waits `ms`, or less when every transaction of `c` reaches the mempool meanwhile (gossip brings them): the fetches
   * back off, the judgement of a block whose transactions arrived does not. Each mempool change resumes the scan at
   * the first transaction still missing, so a block's hashes are looked up about once each over the whole wait.
   */
  private async untilTxsPending(c: Candidate, ms: number): Promise<void> {
    let elapsed = false
    const timer = this.d.sleep(ms).then(() => {
      elapsed = true
    })
    let i = 0
    while (!elapsed && !this.stopped) {
      while (i < c.txHashes.length && this.d.mempool.get(c.txHashes[i]!) !== undefined) i++
      if (i === c.txHashes.length) return
      await Promise.race([timer, this.d.mempool.changed()])
    }
  }

  /** One judgement of a candidate, shared by concurrent callers; a permanent verdict is kept on the candidate. */
  private judge(c: Candidate, decided: boolean): Promise<Judgement> {
    if (c.verdict !== undefined) return Promise.resolve(c.verdict)
    c.judging ??= this.judgeOnce(c, decided).finally(() => {
      c.judging = undefined
    })
    return c.judging
  }

  private async judgeOnce(c: Candidate, decided: boolean): Promise<Judgement> {
    const retryMs = this.o.retryMs ?? 500
    const invalid = (f: BlockFault): Verdict => {
      this.d.logger.warn(
        { height: c.header.height, block: toHex(c.hash), proposer: toHex(c.header.proposer), code: f.code, reason: f.reason },
        'rejected a proposed block',
      )
      c.verdict = 'invalid'
      return 'invalid'
    }
    const tip = this.tipValue
    const parent = this.parent()
    if (c.header.height !== parent.height) return { retryMs, reason: 'not the height this node works on' }
    const h = checkBlockHeader(c.header, c.txHashes, parent, this.verifiedLastCommitHash(c.lastCommit))
    if (!h.ok) return invalid(h.error)
    // transactions first: fetching them overlaps the wait for a block time ahead of this clock
    if (c.txs === undefined) {
      const txs = await this.resolveTransactions(c.txHashes, c.header.proposer)
      if (txs === 'malformed') return invalid({ code: 'tx_failed', reason: 'a transaction of the block does not decode' })
      if (txs === undefined) return { retryMs, reason: TXS_UNAVAILABLE }
      c.txs = txs
    }
    if (!decided) {
      // a decided block's time was accepted by the honest validators that certified it, whatever this clock says
      const wait = blockTimeWait(c.header, this.d.now(), this.o.maxClockDriftMs)
      if (wait > 0) return { retryMs: Math.min(wait, 1_000), reason: 'block time is ahead of this clock' }
    }
    const txs = c.txs
    const body = checkBlockBody(txs, parent)
    if (!body.ok) return invalid(body.error)
    const evidence = await this.checkEvidence(c.header, c.evidence, parent)
    if (!evidence.ok) return invalid(evidence.error)
    c.executing = true
    try {
      return await this.withLedger(async () => {
        if (this.tipValue !== tip) return { retryMs: 0, reason: 'the chain moved on' }
        // a run of synced heights is being applied (handleSynced): the tree waits for its end
        if (this.d.ledger.treePending) return { retryMs, reason: 'synced heights are being applied' }
        const t0 = this.d.now()
        const result = await this.d.ledger.execute(txs, this.blockContext(parent.height, evidence.value))
        const e = checkBlockExecution(c.header, result)
        if (!e.ok) return invalid(e.error)
        c.result = result
        c.executionMs = this.d.now() - t0
        c.verdict = 'valid'
        return 'valid'
      })
    } finally {
      c.executing = false
    }
  }

  /**
   * The block's transactions from the mempool, fetching what is missing. Undefined when some cannot be had yet;
   * `malformed` when a fetched one has the right hash but is not a transaction (the block is invalid).
   */
  private async resolveTransactions(hashes: readonly Uint8Array[], proposer: Uint8Array): Promise<DecodedTransaction[] | undefined | 'malformed'> {
    const out: (DecodedTransaction | undefined)[] = []
    const missing: number[] = []
    for (let i = 0; i < hashes.length; i++) {
      const t = this.d.mempool.get(hashes[i]!)
      if (t === undefined) missing.push(i)
      out.push(t)
    }
    if (missing.length === 0) return out as DecodedTransaction[]
    const fetched = await this.d.fetchTxs(
      missing.map((i) => hashes[i]!),
      proposer,
    )
    const decoded: DecodedTransaction[] = []
    for (let k = 0; k < missing.length; k++) {
      const bytes = fetched[k]
      if (bytes === undefined) return undefined
      // bytes of another hash are not what the block names (another peer may have those); bytes of its hash that are
      // no transaction are what it names: it can never apply
      if (!bytesEqual(txHash(bytes), hashes[missing[k]!]!)) return undefined
      const d = decodeTransaction(bytes)
      if (!d.ok) return 'malformed'
      out[missing[k]!] = d.value
      decoded.push(d.value)
    }
    const verifySignature = this.d.verifySignature
    if (verifySignature !== undefined) {
      await Promise.all(
        decoded.map(async (d) => {
          if (await verifySignature(d)) this.d.verified.add(d.hash)
        }),
      )
    }
    return out as DecodedTransaction[]
  }

  // ---- committing ------------------------------------------------------------------------------------------

  private async commitDecided(height: number, round: number, valueId: Uint8Array, certificate: CommitCertificate): Promise<void> {
    const c = this.candidates.get(valueId)
    if (c !== undefined) await this.judge(c, true)
    if (c?.result !== undefined) {
      await this.commit(height, round, c, certificate)
      return
    }
    // More than two thirds certified a block this node cannot rebuild (it never saw the proposal, or could not get
    // its transactions). Block sync fetches it with its certificate and applies it.
    this.d.logger.info({ height, block: toHex(valueId) }, 'decided a block this node cannot rebuild: fetching it from peers')
    this.d.requestBlock(height)
  }

  private async handleSynced(b: CheckedBlock, hold: boolean): Promise<boolean> {
    if (this.state.step === 'idle') return false
    // checked on another tip (or none), it is checked again on this one
    const again =
      b.checkedOn !== undefined && b.checkedOn === this.tipValue ? ok(b) : await this.checkSyncedBlock(b.height, b.stored, b.certificate, b.storedBytes)
    if (!again.ok) return false
    // a validator that precommitted otherwise to this node than in the certificate is convicted by it
    for (const e of certificateEquivocations(this.state, b.certificate)) this.noteEvidence(e)
    const header = b.stored.block.header
    const store = this.d.kv
    const staging = store instanceof StagedKvStore ? store : undefined
    // With the next height at hand, this one's write is staged to go with it: heights applied back to back share one
    // synced write. Their tree waits too: it is updated once for the run, at its end, and the root checked against the
    // run's last header (flushStaged), instead of rewriting the same upper nodes at every height.
    const held = hold && staging !== undefined && this.staged.length + 1 < MAX_STAGED_HEIGHTS && staging.stagedOps < MAX_STAGED_OPS
    const deferred = staging !== undefined && (held || this.d.ledger.treePending)
    const executed = await this.withLedger(async (): Promise<{ result: ExecutionResult | DeferredExecution; executionMs: number } | undefined> => {
      if ((this.tipValue?.height ?? 0) + 1 !== b.height) return undefined
      const t0 = this.d.now()
      // Certified by more than two thirds of the power: every transfer in it applied on the honest replicas, so its
      // signatures need no second check; anything else than success and the header's root is this node's divergence.
      const ctx = { ...this.blockContext(b.height, again.value.offenders), verified: undefined, trustSignatures: true }
      const result = deferred ? await this.d.ledger.executeDeferred(b.txs, ctx) : await this.d.ledger.execute(b.txs, ctx)
      const e = 'deferred' in result ? checkBlockReceipts(result.receipts) : checkBlockExecution(header, result)
      if (!e.ok) throw new Error(`certified block ${b.height} does not execute here (${e.error.reason}): this node's state diverged from the chain`)
      return { result, executionMs: this.d.now() - t0 }
    })
    if (executed === undefined) return false
    const c: Candidate = {
      header,
      hash: b.hash,
      txHashes: b.txs.map(hashOf),
      evidence: b.stored.block.evidence,
      lastCommit: b.stored.lastCommit,
      txs: [...b.txs],
      executionMs: executed.executionMs,
      verdict: 'valid',
    }
    await this.commit(b.height, b.certificate.round, c, b.certificate, b.storedBytes, deferred ? staging : undefined, executed.result)
    // the last height of a run: its tree, then the run's one write
    if (deferred && !held) await this.flushStaged()
    return true
  }

  /**
   * Commits a decided block; `storedBytes`, when given, are its stored block's canonical encoding. With `stage` (a
   * synced block with the next one at hand), its write is staged for the next one instead: the block is applied (the
   * ledger, the validator sets, the evidence pool and {@link tipValue} move on) but neither reported nor the next
   * height started until that write is on disk.
   */
  private async commit(
    height: number,
    round: number,
    c: Candidate,
    certificate: CommitCertificate,
    storedBytes?: Uint8Array,
    stage?: StagedKvStore,
    result: ExecutionResult | DeferredExecution = c.result!,
  ): Promise<void> {
    this.checkForeignSignature(certificate)
    this.checkForeignSignature(c.lastCommit)
    for (const h of this.ownPrecommits.keys()) if (h < height) this.ownPrecommits.delete(h)
    const block: Block = { header: c.header, txs: c.txs!.map(txBytes), evidence: c.evidence }
    const receipts = result.receipts.map(receiptRecord)
    // the set this block schedules for height + 2 joins the history in the same batch
    const scheduled = result.governance === undefined ? undefined : rosterAt(result.governance, height + 2)
    const history = this.d.sets.all.map((e) => ({ fromHeight: e.fromHeight, roster: e.roster }))
    const setsChanged = scheduled !== undefined && this.d.sets.wouldRecord(height + 2, scheduled)
    await this.withLedger(async () => {
      const stored = storedBytes ?? encodeStoredBlock({ block, lastCommit: c.lastCommit })
      const ops = [
        // (a deferred block's accounts are stored with its run's tree, flushStaged)
        ...('deferred' in result ? [] : result.ops),
        ...this.d.chain.commitOps({
          height,
          blockHash: c.hash,
          blockTime: c.header.time,
          blockBytes: stored,
          certificateBytes: encodeCommitCertificate(certificate),
          txHashes: c.txHashes,
          receipts,
        }),
        ...this.d.evidence.commitOps(height, c.evidence),
        ...(setsChanged ? [this.d.chain.validatorSetsOp([...history, { fromHeight: height + 2, roster: scheduled }])] : []),
      ]
      // a store that stages writes carries the heights staged before this one in this same batch; readers of the
      // committed state never see the store and the ledger's root disagree
      await this.gate.commit(async () => {
        if (stage !== undefined) stage.stage(ops)
        else await this.d.kv.write(ops)
        if ('deferred' in result) {
          this.d.ledger.commitDeferred(result)
          if (this.d.ledger.treePending && this.treeSettled === undefined) {
            let resolve!: () => void
            const promise = new Promise<void>((r) => {
              resolve = r
            })
            this.treeSettled = { promise, resolve }
          }
        } else this.d.ledger.commit(result)
      })
      if (setsChanged) this.d.sets.record(height + 2, scheduled)
      this.tipValue = { height, blockHash: c.hash, blockTime: c.header.time }
      this.lastCommitValue = certificate
      this.d.evidence.onCommitted(height, c.evidence, this.o.evidence.maxAgeHeights)
    })
    this.staged.push({
      height,
      round,
      hash: c.hash,
      block,
      lastCommit: c.lastCommit,
      certificate,
      txHashes: c.txHashes,
      receipts,
      touched: result.changed.map(entryAddress),
      executionMs: c.executionMs ?? 0,
      scheduled: setsChanged,
      governanceChanged: result.governanceBytes !== undefined,
      rosterSize: scheduled?.length ?? 0,
    })
    if (stage === undefined) await this.reportCommitted()
  }

  /**
   * Writes the synced heights staged so far with their tree, updated once for all of them (one synced write), then
   * reports them and starts the next height. A root other than the last staged header's is this node's divergence:
   * it stops, nothing of the run written.
   */
  private async flushStaged(): Promise<void> {
    await this.withLedger(async () => {
      const first = this.staged[0]
      const last = this.staged[this.staged.length - 1]
      if (first === undefined || last === undefined) return
      const settled = await this.d.ledger.settleTree()
      if (!bytesEqual(settled.root, last.block.header.stateRoot)) {
        throw new Error(
          `certified blocks ${first.height}-${last.height} do not execute here (the state root after them is not block ${last.height}'s): this node's state diverged from the chain`,
        )
      }
      await this.gate.commit(async () => {
        await this.d.kv.write(settled.ops)
        this.d.ledger.commitTree(settled)
      })
      this.treeSettled?.resolve()
      this.treeSettled = undefined
    })
    await this.reportCommitted()
  }

  /**
   * Reports the heights written since the last report, in order (their write is on disk), then starts the height
   * after the last: what this node recorded of that height before a crash is replayed after its start, and the WAL
   * records of the heights in between are dropped (those heights are decided).
   */
  private async reportCommitted(): Promise<void> {
    const heights = this.staged.splice(0)
    const last = heights[heights.length - 1]
    if (last === undefined) return
    for (const b of heights) {
      this.durableTip = { height: b.height, blockHash: b.hash, blockTime: b.block.header.time }
      this.candidates.prune(b.height)
      this.d.cancelTimeoutsBelow(b.height + 1)
      this.futureRecords = this.futureRecords.filter((r) => r.height > b.height)
    }
    if (this.d.wal.sizeBytes >= (this.o.walMaxBytes ?? 4 * 1024 * 1024)) await this.d.wal.reset(this.futureRecords.map((r) => r.record))
    const replay = this.replayFor(last.height + 1)
    this.futureRecords = this.futureRecords.filter((r) => r.height > last.height + 1)
    // what peers said of the new height while its records waited goes in after them; of later heights it waits on
    const next = last.height + 1
    for (const i of this.heldForReplay) {
      const h = this.messageHeight(i)
      if (h === next) replay.push(i)
      else if (h < next) this.release(i)
    }
    this.heldForReplay = this.heldForReplay.filter((i) => this.messageHeight(i) > next)
    for (const b of heights) {
      const { scheduled, rosterSize, governanceChanged, ...committed } = b
      await this.d.onCommitted({ ...committed, ledgerAhead: b !== last })
      if (scheduled) {
        this.d.logger.info({ fromHeight: b.height + 2, validators: rosterSize }, 'a new validator set is scheduled')
        this.d.onValidatorSetsChanged?.()
      } else if (governanceChanged) {
        this.d.onGovernanceChanged?.()
      }
    }
    this.heightStartedAt = this.d.now()
    if (this.o.commitMs > 0 && !this.replaying) await this.d.sleep(this.o.commitMs)
    // the new height starts first, then what this node recorded of it before a crash, then anything else queued
    for (const item of replay.reverse()) this.enqueueFront(item)
    this.enqueueFront({ kind: 'input', input: { type: 'startHeight', height: last.height + 1, validatorSet: this.d.sets.at(last.height + 1) }, log: false })
  }

  // ---- start-up --------------------------------------------------------------------------------------------

  /**
   * A validator must never sign without the record of what it signed last. When `validator_state.json` is missing
   * but the WAL holds messages this validator signed, or one of the latest certificates carries its signature, the
   * record was lost, not never written: starting afresh could sign a second, conflicting vote. Refused unless the
   * operator explicitly allows it.
   */
  private async checkSafetyRecord(entries: readonly WalEntry[], tipHeight: number): Promise<void> {
    const guard = this.d.guard
    if (guard === null || guard.record !== undefined || this.o.allowMissingSafetyRecord === true) return
    const mine = (a: Uint8Array) => bytesEqual(a, guard.address)
    const inWal = entries.some((e) =>
      e.kind === 'proposal' ? mine(e.message.proposal.proposer) : e.kind === 'input' && e.input.type === 'vote' && mine(e.input.vote.validator),
    )
    let inChain = false
    for (let h = tipHeight; h >= 1 && h > tipHeight - 10 && !inChain; h--) {
      const cert = h === tipHeight ? this.lastCommitValue : await this.loadCertificate(h)
      inChain = cert?.signatures.some((s) => mine(s.validator)) === true
    }
    if (inWal || inChain) {
      throw new Error(
        `the safety record (validator_state.json) is missing, but this validator signed before (${inWal ? 'its WAL holds its messages' : 'recent certificates carry its signature'}): restore the record, or start with --allow-missing-validator-state if it cannot have signed above the chain's tip`,
      )
    }
  }

  private async loadCertificate(height: number): Promise<CommitCertificate> {
    const bytes = await this.d.chain.certificateBytes(height)
    if (bytes === undefined) throw new Error(`chain store has no certificate for height ${height}`)
    const c = decodeCommitCertificate(bytes)
    if (!c.ok) throw new Error(`chain store certificate at ${height} is corrupt: ${c.error.reason}`)
    return c.value
  }
}

// Callbacks of a block's hot paths, made once (ledger/smt.ts, byKey).
const hashOf = (t: DecodedTransaction): Uint8Array => t.hash
const txBytes = (t: DecodedTransaction): Uint8Array => t.bytes
const failed = (r: Receipt): boolean => !r.ok
const receiptRecord = (r: Receipt): { ok: boolean; code?: string } => (r.ok ? { ok: true } : { ok: false, code: r.code })
const entryAddress = (e: AccountEntry): Uint8Array => e.address

/** Answers a queue item that will never be handled (the host stopped): a synced block is not applied. */
function settleUnhandled(item: QueueItem): void {
  if (item.kind === 'synced') item.done(false)
  else if (item.kind === 'flush') item.done()
}

/** The queue item that replays a WAL entry (never logged again). */
function replayItem(entry: Exclude<WalEntry, { kind: 'block' }>): QueueItem {
  return entry.kind === 'proposal' ? { kind: 'proposal', message: entry.message, log: false } : { kind: 'input', input: entry.input, log: false }
}
