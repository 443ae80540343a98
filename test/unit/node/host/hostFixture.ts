import {
  addressFromPublicKey,
  bytesEqual,
  compareBytes,
  encodeCanonical,
  keyPairFromSeed,
  sha256,
  sign,
  toHex,
  type KeyPair,
} from '../../../../crypto/index.js'
import {
  buildCommitCertificate,
  commitHash,
  createValidatorSet,
  decodeEvidence,
  encodeEvidence,
  evidenceHash,
  evidenceOffender,
  proposalSignBytes,
  proposerOf,
  voteSignBytes,
  type CommitCertificate,
  type ConsensusParams,
  type SignedProposal,
  type SignedVote,
  type ValidatorSet,
  type VoteType,
} from '../../../../consensus/index.js'
import { DEFAULT_PARAMS, genesisState, type Genesis } from '../../../../genesis/genesis.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../../../ledger/block.js'
import { LedgerState, ROOT_STORE_KEY } from '../../../../ledger/ledgerState.js'
import { MemoryKvStore, type KvEntry, type KvOp, type KvStore } from '../../../../ledger/store.js'
import { createTransfer, type DecodedTransaction } from '../../../../ledger/transaction.js'
import { VerifiedTxCache } from '../../../../ledger/verifiedTxCache.js'
import { ConsensusHost, type CommittedBlock, type ConsensusHostOptions } from '../../../../node/host/consensusHost.js'
import { EvidencePool } from '../../../../node/host/evidencePool.js'
import { hostTimeouts } from '../../../../node/host/hostWiring.js'
import { Timers } from '../../../../node/host/timers.js'
import { consensusSet, loadValidatorSets, type ValidatorSets } from '../../../../node/host/validatorSets.js'
import { Mempool } from '../../../../node/mempool/mempool.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import { StagedKvStore } from '../../../../node/storage/stagedKvStore.js'
import type { StoredBlock } from '../../../../node/storage/storedBlock.js'
import type { ConsensusLog } from '../../../../node/storage/wal.js'
import { decodeConsensusGossip, type ConsensusGossip, type ProposalMessage } from '../../../../node/sync/consensusMessages.js'
import { CheckedGuard } from '../../../sim/checkedGuard.js'
import type { SignRequest } from '../../../sim/checker.js'
import { Scheduler, settle } from '../../../sim/scheduler.js'
import { DurableState, Power, SimConsensusLog, SimKvStore, SimSafetyStore, type CutPhase, type DiskOptions, type StoreOp } from '../../../sim/simDisk.js'
import { simConsensusParams } from '../../../sim/simulation.js'
import { simLogger, type SimLogLine } from '../../../sim/simLogger.js'

/**
 * A consensus host as node/node.ts wires it, over the simulator's in-memory disk (test/sim/simDisk.ts) and on its
 * virtual clock (test/sim/scheduler.ts), for unit tests of the host alone: the real ledger, chain store, mempool,
 * evidence pool, timers and safety guard, with every broadcast, commit, log line, transaction fetch and signing request
 * recorded. Nothing runs on the wall clock: a test moves virtual time with {@link HostWorld.until} or
 * {@link HostWorld.advance}, and a "crash" is a power cut of one incarnation followed by a new host over the same
 * durable state. The other validators of a network are only keys: a test signs their proposals and votes itself.
 */

export const CHAIN_ID = 'tally-host-test'
/** Wall-clock time at virtual time 0. */
export const EPOCH_MS = 1_700_000_000_000
/** Block limits of the test hosts (small, so decoding bounds stay cheap). */
export const BLOCK_LIMITS = { maxTxs: 64, maxBytes: 64 * 1024 } as const
/** Every wallet starts with this balance. */
export const WALLET_BALANCE = 1_000_000_000n

/** A validator of the test network with its key. */
export interface TestValidator {
  readonly address: Uint8Array
  readonly publicKey: Uint8Array
  readonly secretKey: Uint8Array
  readonly power: number
}

/** A proposed block built outside any host, with the message its proposer gossips. */
export interface TestBlock {
  readonly hash: Uint8Array
  readonly header: BlockHeader
  readonly txs: readonly DecodedTransaction[]
  readonly stored: StoredBlock
  readonly message: ProposalMessage
}

/** One of the host's broadcasts, decoded, with the virtual time it left and how much of the WAL was durable then. */
export interface Sent {
  readonly time: number
  readonly gossip: ConsensusGossip
  readonly walSynced: number
}

/** A signing request the host made of its guard, with how many WAL records it had written by then. */
export interface GuardRequest {
  readonly req: SignRequest
  readonly walWritten: number
  result?: { ok: true } | { ok: false; code: string; reason: string }
}

function key(kind: string, i: number): KeyPair {
  return keyPairFromSeed(sha256(encodeCanonical(['tally-host-unit', kind, i])))
}

/**
 * A WAL over the simulator's in-memory log that counts what was written and what is durable (the records written
 * before a `sync` began are durable once it resolves), and can hold syncs back to stage a slow disk.
 */
export class ObservedLog implements ConsensusLog {
  /** Records written by this incarnation. */
  written = 0
  /** Records of this incarnation known durable. */
  synced = 0
  private held: { promise: Promise<void>; release: () => void } | undefined

  constructor(private readonly inner: SimConsensusLog) {}

  get sizeBytes(): number {
    return this.inner.sizeBytes
  }

  write(record: Uint8Array): void {
    this.inner.write(record)
    this.written++
  }

  async sync(): Promise<void> {
    const upTo = this.written
    if (this.held !== undefined) await this.held.promise
    await this.inner.sync()
    this.synced = Math.max(this.synced, upTo)
  }

  replay(): Promise<Uint8Array[]> {
    return this.inner.replay()
  }

  reset(initial?: readonly Uint8Array[]): Promise<void> {
    return this.inner.reset(initial)
  }

  /** Holds every sync until {@link releaseSyncs}. */
  holdSyncs(): void {
    if (this.held !== undefined) return
    let release!: () => void
    const promise = new Promise<void>((resolve) => {
      release = resolve
    })
    this.held = { promise, release }
  }

  releaseSyncs(): void {
    const h = this.held
    this.held = undefined
    h?.release()
  }
}

/** How to boot one incarnation of a host. */
export interface BootOptions {
  /** Index of the validator this host signs as; null for a node that follows consensus without signing. */
  readonly self: number | null
  /** The disk; a new, empty one by default (pass an earlier incarnation's to restart over it). */
  readonly durable?: DurableState
  /** Host options replacing the fixture's. */
  readonly host?: Partial<ConsensusHostOptions>
  /** Where the power goes off: called before and after every store operation. */
  readonly cutAt?: (op: StoreOp, phase: CutPhase) => boolean
  /** Answers the host's transaction fetches (default: nothing is found). */
  readonly fetchTxs?: (hashes: readonly Uint8Array[]) => (Uint8Array | undefined)[]
  /** Hold WAL syncs from the start (release with `wal.releaseSyncs()`). */
  readonly holdWalSyncs?: boolean
  /** Start the host (default true); a test of a refused start calls `host.start()` itself. */
  readonly start?: boolean
  /** Virtual milliseconds each read, write or sync takes once the host has started (default: none). */
  readonly diskMs?: number
  /** Read and write the disk through a {@link StagedKvStore}, as a node does (synced heights may share a write). */
  readonly stagedWrites?: boolean
  /** Virtual milliseconds each block execution takes, as a large block over a large state does (default: none). */
  readonly executeMs?: number
}

/** One running incarnation of a host and everything it did. */
export class TestHost {
  readonly sent: Sent[] = []
  readonly committed: CommittedBlock[] = []
  readonly logs: SimLogLine[] = []
  readonly fatal: Error[] = []
  readonly fetches: Uint8Array[][] = []
  readonly requestedBlocks: number[] = []
  readonly guardRequests: GuardRequest[] = []
  /** Tip heights read from the chain store while `onCommitted` ran, by committed height. */
  readonly durableTipAtCommit = new Map<number, number | undefined>()
  host!: ConsensusHost
  ledger!: LedgerState
  /** The host's store (its chain and state), for tests that set up what it holds. */
  kv!: KvStore
  chain!: ChainStore
  mempool!: Mempool
  /** The signatures this incarnation counts as verified (the mempool's and execution's cache). */
  verified!: VerifiedTxCache
  sets!: ValidatorSets
  wal!: ObservedLog
  guard: CheckedGuard | null = null
  timers!: Timers<'propose' | 'prevote' | 'precommit'>

  constructor(
    readonly world: HostWorld,
    readonly self: number | null,
    readonly durable: DurableState,
    readonly power: Power,
  ) {}

  /** The decoded votes this host broadcast, optionally only its own. */
  votes(o: { own?: boolean } = {}): SignedVote[] {
    const out: SignedVote[] = []
    for (const s of this.sent) {
      if (s.gossip.kind !== 'vote') continue
      if (o.own === true && (this.self === null || !bytesEqual(s.gossip.vote.validator, this.world.validators[this.self]!.address))) continue
      out.push(s.gossip.vote)
    }
    return out
  }

  /** The decoded proposals this host broadcast. */
  proposals(): ProposalMessage[] {
    return this.sent.flatMap((s) => (s.gossip.kind === 'proposal' ? [s.gossip.message] : []))
  }

  /**
   * What the host broadcast from index `from` of {@link sent} on, as sorted lines `type height/round v<index> <value>`
   * (value: the first 8 hex digits of its id, or nil), for comparing sets of messages.
   */
  summary(from = 0): string[] {
    const index = (address: Uint8Array) => this.world.validators.findIndex((v) => bytesEqual(v.address, address))
    return this.sent
      .slice(from)
      .map(({ gossip: g }) => {
        if (g.kind === 'vote') return `${g.vote.type} ${g.vote.height}/${g.vote.round} v${index(g.vote.validator)} ${hexOrNil(g.vote.valueId).slice(0, 8)}`
        if (g.kind === 'proposal') {
          const p = g.message.proposal
          return `proposal ${p.height}/${p.round} v${index(p.proposer)} ${toHex(p.valueId).slice(0, 8)}`
        }
        return 'evidence'
      })
      .sort()
  }

  /** Log lines with this message (and at this level). */
  logged(message: string, level?: SimLogLine['level']): SimLogLine[] {
    return this.logs.filter((l) => l.message === message && (level === undefined || l.level === level))
  }

  /**
   * Cuts the power: the incarnation stops where it is, and only what reached its disk survives. Its stores never answer
   * again; read what it left through {@link durable}.
   */
  crash(): void {
    this.power.cut()
  }

  /** Stops the host and its timers with the power on (its stores stay readable). */
  stop(): void {
    this.host.stop()
    this.timers.stop()
  }
}

/** A test network: its keys, genesis and virtual clock, and the hosts booted on it. */
export class HostWorld {
  readonly sched = new Scheduler()
  readonly validators: readonly TestValidator[]
  readonly wallets: readonly KeyPair[]
  readonly genesis: Genesis
  readonly set: ValidatorSet
  readonly params: ConsensusParams

  constructor(o: { validators?: number; wallets?: number; params?: Partial<ConsensusParams> } = {}) {
    this.validators = Array.from({ length: o.validators ?? 1 }, (_, i) => {
      const k = key('validator', i)
      return { address: addressFromPublicKey(k.publicKey), publicKey: k.publicKey, secretKey: k.secretKey, power: 1 }
    })
    this.wallets = Array.from({ length: o.wallets ?? 2 }, (_, i) => key('wallet', i))
    this.params = { ...simConsensusParams, ...o.params }
    this.genesis = {
      chainId: CHAIN_ID,
      genesisTime: new Date(EPOCH_MS - 1000).toISOString(),
      genesisTimeMs: EPOCH_MS - 1000,
      validators: this.validators.map((v, i) => ({ name: `v${i}`, publicKey: v.publicKey, address: v.address, power: v.power, peerId: `v${i}` })),
      balances: this.wallets
        .map((k) => ({ address: addressFromPublicKey(k.publicKey), amount: WALLET_BALANCE }))
        .sort((a, b) => compareBytes(a.address, b.address)),
      params: DEFAULT_PARAMS,
    }
    const set = createValidatorSet(this.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power })))
    if (!set.ok) throw new Error(set.error.reason)
    this.set = set.value
  }

  /** This network's wall clock. */
  now(): number {
    return EPOCH_MS + this.sched.now
  }

  /**
   * Lets the work in flight settle (the host's work between two events is microtasks over in-memory stores), then runs
   * virtual time until `condition` holds; fails after `withinMs` of virtual time or when nothing is left to run.
   */
  async until(condition: () => boolean, what: string, withinMs = 30_000): Promise<void> {
    await settle()
    if (condition()) return
    await this.sched.run(condition, this.sched.now + withinMs)
    if (!condition()) throw new Error(`virtual time ${this.sched.now} ms: still waiting for ${what}`)
  }

  /** Runs every event of the next `ms` of virtual time (and lets their work settle); the clock then reads now + ms. */
  async advance(ms: number): Promise<void> {
    await settle()
    const until = this.sched.now + ms
    let reached = false
    this.sched.at(until, null, () => {
      reached = true
    })
    await this.sched.run(() => reached, until)
  }

  /** The index of the proposer of (height, round). */
  proposerOf(height: number, round: number): number {
    const p = proposerOf(this.set, height, round)
    return this.validators.findIndex((v) => bytesEqual(v.address, p.address))
  }

  /** A validator index that does not propose (height, round). */
  nonProposer(height: number, round: number): number {
    const p = this.proposerOf(height, round)
    return p === 0 ? 1 : 0
  }

  vote(i: number, type: VoteType, height: number, round: number, valueId: Uint8Array | null): SignedVote {
    const body = { type, height, round, valueId, validator: this.validators[i]!.address }
    return { ...body, signature: sign(this.validators[i]!.secretKey, voteSignBytes(CHAIN_ID, body)) }
  }

  proposal(i: number, height: number, round: number, valueId: Uint8Array, polRound = -1): SignedProposal {
    const body = { height, round, valueId, polRound, proposer: this.validators[i]!.address }
    return { ...body, signature: sign(this.validators[i]!.secretKey, proposalSignBytes(CHAIN_ID, body)) }
  }

  /** Evidence that validator `i` prevoted two values at (height, round), encoded. */
  equivocation(i: number, height: number, round: number): Uint8Array {
    const first = this.vote(i, 'prevote', height, round, sha256(encodeCanonical(['first', height, round])))
    const second = this.vote(i, 'prevote', height, round, sha256(encodeCanonical(['second', height, round])))
    return encodeEvidence({ kind: 'conflictingVotes', first, second })
  }

  /** A commit certificate for (height, round, value) signed by the given validators. */
  certificate(height: number, round: number, valueId: Uint8Array, signers: readonly number[]): CommitCertificate {
    return buildCommitCertificate(
      height,
      round,
      valueId,
      signers.map((i) => this.vote(i, 'precommit', height, round, valueId)),
    )
  }

  /** A signed transfer from wallet `from` to wallet `to`. */
  transfer(from: number, nonce: bigint, amount = 10n, to = (from + 1) % this.wallets.length): DecodedTransaction {
    return createTransfer(this.wallets[from]!.secretKey, {
      chainId: CHAIN_ID,
      to: addressFromPublicKey(this.wallets[to]!.publicKey),
      amount,
      nonce,
    })
  }

  /**
   * A block of height 1 proposed by validator `proposer` in `round`, executed on the genesis state as an honest
   * proposer executes it (its state root is the one execution gives, even when a transfer fails), unless `stateRoot`
   * says otherwise. Its time is now unless given.
   */
  async block1(o: { proposer: number; round?: number; txs?: readonly DecodedTransaction[]; time?: number; stateRoot?: Uint8Array }): Promise<TestBlock> {
    const txs = o.txs ?? []
    const ledger = await genesisState(this.genesis, new MemoryKvStore())
    const result = await ledger.execute(txs, { chainId: CHAIN_ID, block: { height: 1, governance: this.genesis.params.governance, offenders: [] } })
    const header: BlockHeader = {
      chainId: CHAIN_ID,
      height: 1,
      time: o.time ?? this.now(),
      previousBlockHash: ZERO_HASH,
      txRoot: txRoot(txs.map((t) => t.hash)),
      stateRoot: o.stateRoot ?? result.stateRoot,
      proposer: this.validators[o.proposer]!.address,
      validatorSetHash: consensusSet(ledger.rosterAt(1)).hash,
      nextValidatorSetHash: consensusSet(ledger.rosterAt(2)).hash,
      lastCommitHash: ZERO_HASH,
      evidenceRoot: txRoot([]),
    }
    const hash = blockHash(header)
    const stored: StoredBlock = { block: { header, txs: txs.map((t) => t.bytes), evidence: [] }, lastCommit: null }
    const message: ProposalMessage = {
      proposal: this.proposal(o.proposer, 1, o.round ?? 0, hash),
      header,
      txHashes: txs.map((t) => t.hash),
      evidence: [],
      lastCommit: null,
    }
    return { hash, header, txs, stored, message }
  }

  /**
   * A chain of certified blocks from height 1 to `heights`, as block sync serves it: each block carries the previous
   * height's certificate, its transactions are `txs(height)` (default none), and every block is certified by `signers`
   * in round 0, a millisecond after the one before. `evidence(height)` is the evidence a block carries (default none),
   * its offenders convicted as execution convicts them. The certificate a block carries of the height before is
   * signed by `lastCommitSigners` (default `signers`): another quorum than the one served with that height.
   */
  async chain(
    heights: number,
    o: {
      txs?: (height: number) => readonly DecodedTransaction[]
      evidence?: (height: number) => readonly Uint8Array[]
      signers?: readonly number[]
      lastCommitSigners?: readonly number[]
    } = {},
  ): Promise<{ height: number; hash: Uint8Array; stored: StoredBlock; certificate: CommitCertificate }[]> {
    const signers = o.signers ?? [1, 2, 3]
    const carried = (prev: { height: number; hash: Uint8Array; certificate: CommitCertificate } | undefined): CommitCertificate | null =>
      prev === undefined ? null : o.lastCommitSigners === undefined ? prev.certificate : this.certificate(prev.height, 0, prev.hash, o.lastCommitSigners)
    const store = new MemoryKvStore()
    const ledger = await genesisState(this.genesis, store)
    const out: { height: number; hash: Uint8Array; stored: StoredBlock; certificate: CommitCertificate }[] = []
    for (let height = 1; height <= heights; height++) {
      const txs = o.txs?.(height) ?? []
      const evidence = o.evidence?.(height) ?? []
      const offenders: Uint8Array[] = []
      for (const bytes of evidence) {
        const d = decodeEvidence(bytes)
        if (!d.ok) throw new Error(`bad test evidence: ${d.error.reason}`)
        const offender = evidenceOffender(d.value)
        if (!offenders.some((x) => bytesEqual(x, offender))) offenders.push(offender)
      }
      const prev = out[height - 2]
      const lastCommit = carried(prev)
      const result = await ledger.execute(txs, { chainId: CHAIN_ID, block: { height, governance: this.genesis.params.governance, offenders } })
      const header: BlockHeader = {
        chainId: CHAIN_ID,
        height,
        time: this.genesis.genesisTimeMs + height,
        previousBlockHash: prev?.hash ?? ZERO_HASH,
        txRoot: txRoot(txs.map((t) => t.hash)),
        stateRoot: result.stateRoot,
        // the proposer of the set in force at the height (a chain may change it by governance votes)
        proposer: proposerOf(consensusSet(ledger.rosterAt(height)), height, 0).address,
        validatorSetHash: consensusSet(ledger.rosterAt(height)).hash,
        nextValidatorSetHash: consensusSet(ledger.rosterAt(height + 1)).hash,
        lastCommitHash: lastCommit === null ? ZERO_HASH : commitHash(lastCommit),
        evidenceRoot: txRoot(evidence.map(evidenceHash)),
      }
      await store.write(result.ops)
      ledger.commit(result)
      const hash = blockHash(header)
      const stored: StoredBlock = { block: { header, txs: txs.map((t) => t.bytes), evidence: [...evidence] }, lastCommit }
      out.push({ height, hash, stored, certificate: this.certificate(height, 0, hash, signers) })
    }
    return out
  }

  /** Boots a host over a disk (a new one unless given) and, by default, starts it. */
  async boot(o: BootOptions): Promise<TestHost> {
    const durable = o.durable ?? new DurableState()
    const plan = o.cutAt ?? (() => false)
    let t: TestHost | undefined
    const power = new Power(plan, () => {
      t?.host?.stop()
      t?.timers?.stop()
    })
    t = new TestHost(this, o.self, durable, power)
    const th = t
    const { sched, genesis } = this
    const disk: DiskOptions & { latencyMs: number } = { durable, power, scheduler: sched, latencyMs: 0 }
    const logger = simLogger((line) => th.logs.push(line))
    const slow = o.diskMs === undefined ? undefined : new SlowReadStore(new SimKvStore(disk), sched, power)
    const base = slow ?? new SimKvStore(disk)
    const kv = o.stagedWrites === true ? new StagedKvStore(base) : base
    const ledger = (await kv.get(ROOT_STORE_KEY)) === undefined ? await genesisState(genesis, kv) : await LedgerState.open(kv)
    const executeMs = o.executeMs
    if (executeMs !== undefined) {
      const execute = ledger.execute.bind(ledger)
      ledger.execute = async (txs, ctx) => {
        await sched.sleep(executeMs, power)
        return execute(txs, ctx)
      }
    }
    const chain = new ChainStore(kv)
    const sets = await loadValidatorSets(chain, kv, ledger)
    const evidence = await EvidencePool.load({ chain, logger })
    const verified = new VerifiedTxCache()
    const mempool = new Mempool({ chainId: CHAIN_ID, maxTxs: 2_000 }, { accounts: ledger, verifiedSignatures: verified, logger })
    const wal = new ObservedLog(new SimConsensusLog(disk))
    if (o.holdWalSyncs === true) wal.holdSyncs()
    const guard =
      o.self === null
        ? null
        : new CheckedGuard(
            { chainId: CHAIN_ID, secretKey: this.validators[o.self]!.secretKey },
            { store: new SimSafetyStore(disk) },
            {
              request: (req) => {
                th.guardRequests.push({ req, walWritten: wal.written })
              },
              result: (req, r) => {
                const g = th.guardRequests.findLast((x) => x.req === req)
                if (g !== undefined) g.result = r.ok ? { ok: true } : { ok: false, code: r.code, reason: r.reason }
              },
            },
            CHAIN_ID,
          )
    const timers = new Timers<'propose' | 'prevote' | 'precommit'>(
      { clock: sched.timerClock(power) },
      {
        onTimeout: (v) => th.host.onTimeoutElapsed({ height: Number(v.height), round: v.round, kind: v.kind }),
      },
    )
    const host = new ConsensusHost(
      {
        chainId: CHAIN_ID,
        params: this.params,
        block: BLOCK_LIMITS,
        governance: genesis.params.governance,
        evidence: genesis.params.evidence,
        emptyBlockIntervalMs: 100,
        commitMs: 0,
        genesisTimeMs: genesis.genesisTimeMs,
        maxClockDriftMs: 500,
        walMaxBytes: 1 << 20,
        maxQueue: 1_000,
        retryMs: 500,
        ...o.host,
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
        ...hostTimeouts(timers),
        broadcast: (bytes) => {
          if (!power.alive) return
          const d = decodeConsensusGossip(bytes, BLOCK_LIMITS.maxTxs)
          if (!d.ok) throw new Error(`the host broadcast bytes that do not decode: ${d.error.reason}`)
          th.sent.push({ time: sched.now, gossip: d.value, walSynced: wal.synced })
        },
        fetchTxs: async (hashes) => {
          th.fetches.push([...hashes])
          return o.fetchTxs?.(hashes) ?? hashes.map(() => undefined)
        },
        requestBlock: (h) => {
          th.requestedBlocks.push(h)
        },
        onCommitted: async (b) => {
          if (!power.alive) return
          th.committed.push(b)
          th.durableTipAtCommit.set(b.height, (await new ChainStore(durable.kv).tip())?.height)
          await mempool.update(b.txHashes, b.touched, !b.ledgerAhead)
        },
        onFatal: (e) => {
          th.fatal.push(e)
          power.cut()
        },
      },
    )
    Object.assign(th, { host, ledger, kv, chain, mempool, verified, sets, wal, guard, timers })
    if (o.start !== false) await host.start()
    // from here on the scheduler runs (tests wait in virtual time), so the disk may take some of it
    if (slow !== undefined) {
      slow.readMs = o.diskMs ?? 0
      disk.latencyMs = o.diskMs ?? 0
    }
    return th
  }
}

/** Hex of a value id (or 'nil'), for assertion messages. */
export function hexOrNil(valueId: Uint8Array | null): string {
  return valueId === null ? 'nil' : toHex(valueId)
}

/** A store whose reads take `readMs` of virtual time, so that several reads and a write can interleave. */
class SlowReadStore implements KvStore {
  readMs = 0

  constructor(
    private readonly base: KvStore,
    private readonly sched: Scheduler,
    private readonly power: Power,
  ) {}

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.readMs > 0 ? this.sched.sleep(this.readMs, this.power).then(() => this.base.get(key)) : this.base.get(key)
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.readMs > 0 ? this.sched.sleep(this.readMs, this.power).then(() => this.base.getMany(keys)) : this.base.getMany(keys)
  }

  write(ops: readonly KvOp[]): Promise<void> {
    return this.base.write(ops)
  }

  readPrefix(prefix: Uint8Array): Promise<KvEntry[]> {
    return this.readMs > 0 ? this.sched.sleep(this.readMs, this.power).then(() => this.base.readPrefix(prefix)) : this.base.readPrefix(prefix)
  }
}
