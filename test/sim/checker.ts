import { bytesEqual, toHex, verifyRemembered } from '../../crypto/index.js'
import {
  commitHash,
  createValidatorSet,
  proposalSignBytes,
  proposerOf,
  voteSignBytes,
  type CommitCertificate,
  type ConsensusState,
  type Evidence,
  type Proposal,
  type ValidatorSet,
  type Vote,
} from '../../consensus/index.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../ledger/block.js'
import type { LedgerState } from '../../ledger/ledgerState.js'
import { MemoryKvStore } from '../../ledger/store.js'
import { decodeTransaction, type DecodedTransaction } from '../../ledger/transaction.js'
import { genesisState } from '../../genesis/genesis.js'
import type { Genesis } from '../../genesis/genesis.js'
import type { CommittedBlock } from '../../node/host/consensusHost.js'
import type { Coverage } from './coverage.js'
import { emptyCoverage } from './coverage.js'

/**
 * The invariants every simulated run is held to, checked as the run goes, with their own arithmetic and their own
 * signature checks (never the core's, so a broken core cannot vouch for itself):
 *  - agreement: no two honest nodes commit different blocks at a height;
 *  - validity: every committed block passes the block-validity rule on a reference replica that re-executes it with
 *    every signature checked (all transfers and governance votes apply, the header's state root is the result, its
 *    validator set hashes are those of the sets the replica's own state schedules for that height and the next), its
 *    certificate proves it with more than two thirds of that height's set, and every honest node's state root after
 *    the height equals the header's;
 *  - membership: the set in force at each height is the one the reference replica's state schedules (governance votes
 *    change it two heights after the block that completes a change); an honest node signs only at heights at which it
 *    is in the set, and holds votes only of members of its height's set;
 *  - signing (checked on every signature an honest guard is asked for, against the host's consensus state at that
 *    moment): a prevote for a value needs a valid proposal of it from the round's proposer, the polka its valid round
 *    names, and no lock on another value unless a polka for this one arose since (L22, L28); a precommit for a value
 *    needs a polka for it in that round (L36); a proposal comes from the round's proposer and re-proposes the valid
 *    value when there is one (L14-L16); no two different signatures for one (validator, height, round, type), across
 *    restarts; a guard that never restarted never refuses;
 *  - honest validators agree on every value's validity (a block time ahead of a clock or transactions not yet fetched
 *    only delay a verdict);
 *  - bounded resources: the host's queue, candidate store and WAL, the mempool;
 *  - no honest validator stops on a broken invariant, is blamed by equivocation evidence, or is penalized by another;
 *  - liveness (at the end): every honest node commits every height up to the last one at which it is a validator by
 *    the deadline (a removed validator is not expected to decide later heights, a node never in a set nothing).
 * The lock an honest validator holds is taken from what it released: its last precommit for a value at the height.
 * Every check that needs the set of a height waits until the reference replica knows it (from the state after the
 * block two heights below).
 */

/** What a violation is about. */
export type ViolationKind =
  | 'agreement'
  | 'validity'
  | 'stateRoot'
  | 'certificate'
  | 'doubleSign'
  | 'lock'
  | 'polka'
  | 'proposal'
  | 'guardRefusal'
  | 'validityDisagreement'
  | 'bound'
  | 'fatal'
  | 'evidence'
  | 'penalty'
  | 'liveness'
  | 'membership'
  | 'error'

/** A broken property. */
export interface Violation {
  readonly kind: ViolationKind
  readonly node?: number
  readonly height?: number
  readonly time: number
  readonly detail: string
}

/** Bounds the run is held to. */
export interface Bounds {
  readonly maxQueue: number
  readonly walMaxBytes: number
  readonly mempoolMaxTxs: number
  readonly maxRoundsAhead: number
  readonly maxHeightsAhead: number
  /** Largest WAL record a round may add per validator (a generous bound on votes and proposals). */
  readonly walBytesPerRound: number
}

/** What the checker observes of a running honest validator after each event. */
export interface NodeView {
  readonly index: number
  readonly height: number
  readonly round: number
  readonly state: ConsensusState
  readonly queueLength: number
  readonly candidateCount: number
  readonly walBytes: number
  readonly mempoolSize: number
}

/** A lock as released: the precommit for a value at (height, round). */
interface Lock {
  readonly round: number
  readonly value: Uint8Array
}

/** A signing request as the guard sees it. */
export type SignRequest = { readonly kind: 'vote'; readonly vote: Vote } | { readonly kind: 'proposal'; readonly proposal: Proposal }

/** Something worth recording for scenario traces. */
export type SimObservation =
  | {
      readonly kind: 'sign'
      readonly node: number
      readonly time: number
      readonly type: 'prevote' | 'precommit' | 'proposal'
      readonly height: number
      readonly round: number
      readonly value: string | null
      readonly polRound: number
    }
  | { readonly kind: 'lock'; readonly node: number; readonly time: number; readonly height: number; readonly round: number; readonly value: string }
  | {
      readonly kind: 'commit'
      readonly node: number
      readonly time: number
      readonly height: number
      readonly round: number
      readonly value: string
      readonly roundBefore: number
    }
  | { readonly kind: 'round'; readonly node: number; readonly time: number; readonly height: number; readonly from: number; readonly to: number }
  | { readonly kind: 'crash' | 'restart'; readonly node: number; readonly time: number }
  | {
      readonly kind: 'broadcast'
      readonly node: number
      readonly time: number
      readonly type: 'prevote' | 'precommit' | 'proposal'
      readonly height: number
      readonly round: number
      readonly value: string | null
    }

interface Reference {
  readonly hash: Uint8Array
  readonly stateRoot: Uint8Array
  readonly time: number
  readonly node: number
}

/** A member of a set as the checker counts it: its node and power. */
interface Member {
  readonly index: number
  readonly address: Uint8Array
  readonly publicKey: Uint8Array
  readonly power: number
}

/** A validator set and the height from which it is in force, as the reference replica's state schedules it. */
export interface SetEntry {
  readonly fromHeight: number
  readonly set: ValidatorSet
  /** By hex address. */
  readonly members: ReadonlyMap<string, Member>
  /** Node indexes of the members. */
  readonly nodes: ReadonlySet<number>
}

export class Checker {
  readonly violations: Violation[] = []
  readonly coverage: Coverage = emptyCoverage()
  readonly evidence: Evidence[] = []
  /** Per node, height → committed block hash (hex). */
  readonly commits: Map<number, string>[]
  /** Every simulated node by hex address, members of a set or not. */
  private readonly nodeByAddress = new Map<string, number>()
  /** The sets by the height from which each is in force, ascending; exact up to {@link knownThrough}. */
  private readonly setEntries: SetEntry[] = []
  private knownThrough = 0
  /** Checks waiting for the set of their height. */
  private deferred: { readonly height: number; readonly run: (entry: SetEntry) => void }[] = []
  /** Signers (node indexes) of the certificate of the first commit of each height. */
  readonly certificateSigners = new Map<number, readonly number[]>()
  private readonly honest: ReadonlySet<number>
  private readonly reported = new Set<string>()
  private readonly signatures = new Map<string, string>()
  private readonly locks: Map<number, Lock[]>[]
  private readonly unlocks = new Set<string>()
  private readonly verdicts = new Map<number, Map<string, { valid: Set<number>; invalid: Set<number> }>>()
  private readonly lastRound: { height: number; round: number; state?: ConsensusState }[]
  private readonly references = new Map<number, Reference>()
  private refLedger: LedgerState | undefined
  private refKv = new MemoryKvStore()
  private refTail: Promise<unknown> = Promise.resolve()
  private refPrev: { hash: Uint8Array; time: number; height: number }
  private readonly restarted = new Set<number>()
  /** Most rounds reached by an honest validator per height, for the WAL bound. */
  private maxRound = 0

  constructor(
    private readonly chainId: string,
    /** Every node's address, in node order: the genesis validators, then the nodes that start outside the set. */
    addresses: readonly Uint8Array[],
    honest: readonly number[],
    private readonly genesis: Genesis,
    private readonly bounds: Bounds,
    private readonly now: () => number,
    private readonly observe?: (o: SimObservation) => void,
  ) {
    // the reference replica applies no convictions (ledger/governance.ts `removeOffenders`)
    if (genesis.params.governance.removeOffenders) throw new Error('the checker does not convict offenders: removeOffenders must be off')
    addresses.forEach((a, index) => {
      this.nodeByAddress.set(toHex(a), index)
    })
    this.honest = new Set(honest)
    this.commits = addresses.map(() => new Map())
    this.locks = addresses.map(() => new Map())
    this.lastRound = addresses.map(() => ({ height: 0, round: 0 }))
    this.refPrev = { hash: ZERO_HASH, time: genesis.genesisTimeMs, height: 0 }
  }

  /** Opens the reference replica at the genesis state, which knows the sets of heights 1 and 2. */
  async start(): Promise<void> {
    this.refLedger = await genesisState(this.genesis, this.refKv)
    this.learnSets(0)
  }

  // ---- validator sets by height --------------------------------------------------------------------------------

  /**
   * Takes the sets of heights `tip + 1` and `tip + 2` from the reference replica's state after block `tip`. The set of
   * `tip + 1` was known from the block before and must not have changed.
   */
  private learnSets(tip: number): void {
    const ledger = this.refLedger!
    for (const h of [tip + 1, tip + 2]) {
      const members = ledger.rosterAt(h).map((m) => ({ address: m.address, publicKey: m.publicKey, power: m.power }))
      const made = createValidatorSet(members)
      if (!made.ok) {
        this.violation('membership', `the set scheduled for height ${h} is not a valid set: ${made.error.reason}`, undefined, h)
        continue
      }
      const set = made.value
      if (h <= this.knownThrough) {
        if (!bytesEqual(this.entryAt(h).set.hash, set.hash))
          this.violation('membership', `the set of height ${h} changed after it was scheduled (at block ${tip})`, undefined, h)
        continue
      }
      const last = this.setEntries.at(-1)
      if (last === undefined || !bytesEqual(last.set.hash, set.hash)) {
        const byAddress = new Map<string, Member>()
        const nodes = new Set<number>()
        for (const v of set.validators) {
          const index = this.nodeByAddress.get(toHex(v.address))
          if (index === undefined) {
            this.violation('membership', `the set of height ${h} holds ${toHex(v.address).slice(0, 8)}, which is no simulated node`, undefined, h)
            continue
          }
          byAddress.set(toHex(v.address), { index, address: v.address, publicKey: v.publicKey, power: v.power })
          nodes.add(index)
        }
        this.setEntries.push({ fromHeight: h, set, members: byAddress, nodes })
      }
      this.knownThrough = h
    }
    const ready = this.deferred.filter((d) => d.height <= this.knownThrough)
    if (ready.length === 0) return
    this.deferred = this.deferred.filter((d) => d.height > this.knownThrough)
    for (const d of ready) d.run(this.entryAt(d.height))
  }

  /** The entry in force at `height` (the latest known beyond {@link knownThrough}). */
  private entryAt(height: number): SetEntry {
    let found = this.setEntries[0]!
    for (const e of this.setEntries) {
      if (e.fromHeight > height) break
      found = e
    }
    return found
  }

  /** Runs `check` with the set of `height` now, or as soon as the reference replica knows it. */
  private withSet(height: number, check: (entry: SetEntry) => void): void {
    if (height <= this.knownThrough) check(this.entryAt(height))
    else this.deferred.push({ height, run: check })
  }

  /**
   * The validator set in force at `height` as far as the reference replica knows it (exact up to two heights above
   * the highest block it executed, the latest known beyond): what the simulation's adversaries aim at.
   */
  setAt(height: number): ValidatorSet {
    return this.entryAt(height).set
  }

  /** The index of the simulated node with this address, if any. */
  nodeOf(address: Uint8Array): number | undefined {
    return this.nodeByAddress.get(toHex(address))
  }

  /** The node indexes in the set of `height` (as {@link setAt}). */
  membersAt(height: number): ReadonlySet<number> {
    return this.entryAt(height).nodes
  }

  /** The sets the chain has had so far, oldest first, with the height from which each is in force. */
  get sets(): readonly SetEntry[] {
    return this.setEntries
  }

  /** The highest height whose set is known exactly. */
  get setsKnownThrough(): number {
    return this.knownThrough
  }

  /** The reference replica's committed state (the chain as honest nodes committed it), once started. */
  get reference(): LedgerState | undefined {
    return this.refLedger
  }

  /** The highest height the reference replica executed. */
  get referenceHeight(): number {
    return this.refPrev.height
  }

  /**
   * The last height up to `height` at which `node` is in the set (0 if none): the heights it must decide. A node that
   * joins later must sync every height below its first; a removed one decides nothing after its last.
   */
  lastMembership(node: number, height: number): number {
    let last = 0
    for (let k = 0; k < this.setEntries.length; k++) {
      const e = this.setEntries[k]!
      if (e.fromHeight > height) break
      const end = Math.min(height, (this.setEntries[k + 1]?.fromHeight ?? Number.POSITIVE_INFINITY) - 1)
      if (e.nodes.has(node)) last = end
    }
    return last
  }

  isHonest(node: number): boolean {
    return this.honest.has(node)
  }

  violation(kind: ViolationKind, detail: string, node?: number, height?: number): void {
    const key = `${kind}/${node ?? ''}/${height ?? ''}/${detail}`
    if (this.reported.has(key)) return
    this.reported.add(key)
    this.violations.push({ kind, node, height, time: this.now(), detail })
  }

  // ---- independent arithmetic ------------------------------------------------------------------------------

  private twoThirds(entry: SetEntry, power: bigint): boolean {
    return power * 3n > entry.set.totalPower * 2n
  }

  /**
   * More than two thirds of the power of the set of the state's height (`entry`) in prevotes for `value` in `round`
   * that the state holds, from distinct members, signatures checked here.
   */
  private polka(entry: SetEntry, state: ConsensusState, round: number, value: Uint8Array): boolean {
    const rs = state.rounds[round]
    if (rs === undefined) return false
    let power = 0n
    for (const [key, list] of Object.entries(rs.prevotes.votes)) {
      const v = entry.members.get(key)
      if (v === undefined) continue
      const vote = list.find(
        (x) =>
          x.valueId !== null &&
          bytesEqual(x.valueId, value) &&
          x.height === state.height &&
          x.round === round &&
          x.type === 'prevote' &&
          bytesEqual(x.validator, v.address),
      )
      if (vote === undefined) continue
      if (!verifyRemembered(v.publicKey, voteSignBytes(this.chainId, vote), vote.signature)) continue
      power += BigInt(v.power)
    }
    return this.twoThirds(entry, power)
  }

  /** True when the state holds a proposal of `value` in `round` signed by that round's proposer. */
  private proposalOf(entry: SetEntry, state: ConsensusState, round: number, value: Uint8Array): { polRound: number }[] {
    const rs = state.rounds[round]
    if (rs === undefined) return []
    const proposer = proposerOf(entry.set, state.height, round)
    return rs.proposals.filter(
      (p) =>
        p.round === round &&
        p.height === state.height &&
        bytesEqual(p.valueId, value) &&
        bytesEqual(p.proposer, proposer.address) &&
        verifyRemembered(proposer.publicKey, proposalSignBytes(this.chainId, p), p.signature),
    )
  }

  /** The lock a validator released before `round` at `height`: its last precommit for a value in an earlier round. */
  private lockBefore(node: number, height: number, round: number): Lock | undefined {
    let best: Lock | undefined
    for (const l of this.locks[node]!.get(height) ?? []) if (l.round < round && (best === undefined || l.round > best.round)) best = l
    return best
  }

  // ---- signing -----------------------------------------------------------------------------------------------

  /**
   * An honest guard is asked to sign. `state` is the host's consensus state at that moment (after the step that asked;
   * states are immutable, so the check can wait for the set of the height).
   */
  signRequest(node: number, req: SignRequest, state: ConsensusState | undefined): void {
    if (state === undefined) return
    const m = req.kind === 'proposal' ? req.proposal : req.vote
    if (req.kind === 'proposal') {
      const p = req.proposal
      this.observe?.({
        kind: 'sign',
        node,
        time: this.now(),
        type: 'proposal',
        height: p.height,
        round: p.round,
        value: toHex(p.valueId),
        polRound: p.polRound,
      })
    } else {
      const v = req.vote
      this.observe?.({
        kind: 'sign',
        node,
        time: this.now(),
        type: v.type,
        height: v.height,
        round: v.round,
        value: v.valueId === null ? null : toHex(v.valueId),
        polRound: -1,
      })
    }
    const time = this.now()
    this.withSet(m.height, (entry) => this.checkSigning(entry, node, req, state, time))
  }

  private checkSigning(entry: SetEntry, node: number, req: SignRequest, state: ConsensusState, time: number): void {
    const m = req.kind === 'proposal' ? req.proposal : req.vote
    const type = req.kind === 'proposal' ? 'proposal' : req.vote.type
    if (!entry.nodes.has(node)) {
      this.violation(
        'membership',
        `validator ${node} signs a ${type} at ${m.height}/${m.round} (t=${time} ms), but it is not in the set of height ${m.height}`,
        node,
        m.height,
      )
      return
    }
    if (req.kind === 'proposal') {
      const p = req.proposal
      if (!bytesEqual(proposerOf(entry.set, p.height, p.round).address, p.proposer)) {
        this.violation('proposal', `validator ${node} signs a proposal for ${p.height}/${p.round}, whose proposer it is not`, node, p.height)
      }
      if (p.height !== state.height) return
      if (p.polRound === -1) {
        if (state.validRound !== -1)
          this.violation(
            'proposal',
            `validator ${node} proposes a fresh value in ${p.height}/${p.round} although its valid value is from round ${state.validRound} (L15)`,
            node,
            p.height,
          )
      } else if (
        state.validValue === null ||
        !bytesEqual(state.validValue, p.valueId) ||
        state.validRound !== p.polRound ||
        !this.polka(entry, state, p.polRound, p.valueId)
      ) {
        this.violation(
          'proposal',
          `validator ${node} re-proposes ${short(p.valueId)} with valid round ${p.polRound} in ${p.height}/${p.round}, not its valid value with a polka (L16)`,
          node,
          p.height,
        )
      }
      return
    }
    const v = req.vote
    if (v.valueId === null || v.height !== state.height) return
    const value = v.valueId
    const where = `${v.height}/${v.round}`
    if (state.validity[toHex(value)] !== 'valid') {
      this.violation(
        v.type === 'prevote' ? 'lock' : 'polka',
        `validator ${node} ${v.type}s ${short(value)} in ${where}, which it has not found valid`,
        node,
        v.height,
      )
    }
    const proposals = this.proposalOf(entry, state, v.round, value)
    if (proposals.length === 0) {
      this.violation(
        v.type === 'prevote' ? 'lock' : 'polka',
        `validator ${node} ${v.type}s ${short(value)} in ${where} without a proposal of it from the round's proposer`,
        node,
        v.height,
      )
      return
    }
    if (v.type === 'precommit') {
      // L36: a precommit for a value needs 2f+1 prevotes for it in the same round
      if (!this.polka(entry, state, v.round, value))
        this.violation('polka', `validator ${node} precommits ${short(value)} in ${where} without 2f+1 prevotes for it (L36)`, node, v.height)
      return
    }
    // L22/L28: a proposal whose valid round names a polka; a lock on another value yields only to a newer polka
    const justified = proposals.filter((p) => p.polRound === -1 || this.polka(entry, state, p.polRound, value))
    if (justified.length === 0) {
      this.violation(
        'lock',
        `validator ${node} prevotes ${short(value)} in ${where} on a proposal whose valid round ${proposals[0]!.polRound} has no polka for it (L28)`,
        node,
        v.height,
      )
      return
    }
    const lock = this.lockBefore(node, v.height, v.round)
    if (lock === undefined || bytesEqual(lock.value, value)) return
    let newer = false
    for (let q = lock.round; q < v.round && !newer; q++) newer = this.polka(entry, state, q, value)
    if (!newer) {
      this.violation(
        'lock',
        `validator ${node} prevotes ${short(value)} in ${where} while locked on ${short(lock.value)} since round ${lock.round}, with no polka for it since (L22/L28)`,
        node,
        v.height,
      )
      return
    }
    const key = `${node}/${where}`
    if (!this.unlocks.has(key)) {
      this.unlocks.add(key)
      this.coverage.l28Unlocks++
    }
  }

  /** An honest guard answered. */
  signResult(node: number, req: SignRequest, result: { ok: true; signBytes: Uint8Array } | { ok: false; code: string; reason: string }): void {
    const m = req.kind === 'vote' ? req.vote : req.proposal
    const type = req.kind === 'vote' ? req.vote.type : 'proposal'
    if (!result.ok) {
      if (!this.restarted.has(node)) {
        this.violation(
          'guardRefusal',
          `the guard of validator ${node}, which never restarted, refused a ${type} at ${m.height}/${m.round}: ${result.reason}`,
          node,
          m.height,
        )
      }
      return
    }
    const key = `${node}/${m.height}/${m.round}/${type}`
    const bytes = toHex(result.signBytes)
    const before = this.signatures.get(key)
    if (before === undefined) this.signatures.set(key, bytes)
    else if (before !== bytes) this.violation('doubleSign', `validator ${node} signed two different ${type}s at ${m.height}/${m.round}`, node, m.height)
  }

  /** A validator broadcast one of its own messages: an honest one's signature is out, and a precommit for a value is a lock. */
  released(node: number, m: { type: 'prevote' | 'precommit' | 'proposal'; height: number; round: number; value: Uint8Array | null }, honest: boolean): void {
    this.observe?.({
      kind: 'broadcast',
      node,
      time: this.now(),
      type: m.type,
      height: m.height,
      round: m.round,
      value: m.value === null ? null : toHex(m.value),
    })
    if (!honest || m.type !== 'precommit' || m.value === null) return
    const byHeight = this.locks[node]!
    let list = byHeight.get(m.height)
    if (list === undefined) {
      list = []
      byHeight.set(m.height, list)
      for (const h of byHeight.keys()) if (h < m.height - 2) byHeight.delete(h)
    }
    if (list.some((l) => l.round === m.round)) return
    const before = this.lockBefore(node, m.height, m.round)
    list.push({ round: m.round, value: m.value })
    this.observe?.({ kind: 'lock', node, time: this.now(), height: m.height, round: m.round, value: toHex(m.value) })
    if (before !== undefined && !bytesEqual(before.value, m.value)) this.coverage.relocks++
    // diverging locks: another honest validator still at this height holds a lock on another value
    for (const j of this.honest) {
      if (j === node || this.lastRound[j]!.height !== m.height) continue
      const other = this.lockBefore(j, m.height, Number.MAX_SAFE_INTEGER)
      if (other !== undefined && !bytesEqual(other.value, m.value)) this.coverage.divergingLockHeights.add(m.height)
    }
  }

  /** Virtual time of the last restart. */
  lastRestartTime = 0

  /** Notes a restart (its guard may then refuse replayed requests). */
  restart(node: number): void {
    this.restarted.add(node)
    this.lastRestartTime = this.now()
    this.coverage.restarts++
    this.observe?.({ kind: 'restart', node, time: this.now() })
  }

  crash(node: number): void {
    this.coverage.crashes++
    this.observe?.({ kind: 'crash', node, time: this.now() })
  }

  // ---- after each event ---------------------------------------------------------------------------------------

  /** Checks the running honest validators' bounds and verdicts after an event. */
  afterEvent(views: readonly NodeView[], n: number): void {
    const b = this.bounds
    for (const v of views) {
      const last = this.lastRound[v.index]!
      const changed = last.state !== v.state
      if (changed) {
        if (v.height === last.height && v.round !== last.round)
          this.observe?.({ kind: 'round', node: v.index, time: this.now(), height: v.height, from: last.round, to: v.round })
        this.lastRound[v.index] = { height: v.height, round: v.round, state: v.state }
        if (v.round > this.coverage.maxRound) this.coverage.maxRound = v.round
        if (v.round > this.maxRound) this.maxRound = v.round
        this.noteVerdicts(v)
        this.noteVoters(v)
      }
      if (v.queueLength > b.maxQueue + 64)
        this.violation('bound', `validator ${v.index}'s host queue holds ${v.queueLength} inputs (bound ${b.maxQueue})`, v.index, v.height)
      const slots = v.round + 1 + b.maxRoundsAhead + b.maxHeightsAhead * (b.maxRoundsAhead + 1)
      if (v.candidateCount > 2 * slots + 2)
        this.violation('bound', `validator ${v.index} holds ${v.candidateCount} candidate blocks in round ${v.round}`, v.index, v.height)
      const walBound = b.walMaxBytes + (1 + b.maxHeightsAhead) * (this.maxRound + 2 + b.maxRoundsAhead) * n * b.walBytesPerRound
      if (v.walBytes > walBound) this.violation('bound', `validator ${v.index}'s WAL holds ${v.walBytes} bytes (bound ${walBound})`, v.index, v.height)
      if (v.mempoolSize > b.mempoolMaxTxs) this.violation('bound', `validator ${v.index}'s mempool holds ${v.mempoolSize} transactions`, v.index, v.height)
    }
  }

  /** The votes an honest node holds for its current round are all from members of its height's set (never counted otherwise). */
  private noteVoters(v: NodeView): void {
    const state = v.state
    if (state.step === 'idle' || state.height > this.knownThrough) return
    const rs = state.rounds[state.round]
    if (rs === undefined) return
    const entry = this.entryAt(state.height)
    for (const votes of [rs.prevotes.votes, rs.precommits.votes]) {
      for (const key in votes) {
        if (entry.members.has(key)) continue
        const who = this.nodeByAddress.get(key)
        this.violation(
          'membership',
          `validator ${v.index} holds a vote of ${who === undefined ? key.slice(0, 8) : `node ${who}`} at ${state.height}/${state.round}, which is not in the set of that height`,
          v.index,
          state.height,
        )
      }
    }
  }

  private noteVerdicts(v: NodeView): void {
    const state = v.state
    if (state.step === 'idle') return
    let byValue = this.verdicts.get(state.height)
    for (const [value, verdict] of Object.entries(state.validity)) {
      if (verdict === 'pending') continue
      if (byValue === undefined) {
        byValue = new Map()
        this.verdicts.set(state.height, byValue)
        for (const h of this.verdicts.keys()) if (h < state.height - 3) this.verdicts.delete(h)
      }
      let e = byValue.get(value)
      if (e === undefined) {
        e = { valid: new Set(), invalid: new Set() }
        byValue.set(value, e)
      }
      const mine = verdict === 'valid' ? e.valid : e.invalid
      if (mine.has(v.index)) continue
      mine.add(v.index)
      if (verdict === 'invalid') this.coverage.invalidVerdicts++
      if (e.valid.size > 0 && e.invalid.size > 0) {
        this.violation(
          'validityDisagreement',
          `at height ${state.height}, validators ${[...e.valid].join(',')} found ${value.slice(0, 8)} valid and ${[...e.invalid].join(',')} invalid`,
          v.index,
          state.height,
        )
      }
    }
  }

  // ---- commits ------------------------------------------------------------------------------------------------

  /**
   * An honest validator committed a block (its batch is durable) and its ledger's root is `root`. The first commit of
   * a height is re-executed on the reference replica; every later one must be the same block with the same root.
   */
  committed(node: number, b: CommittedBlock, root: Uint8Array, roundBefore: number): void {
    const hex = toHex(b.hash)
    this.commits[node]!.set(b.height, hex)
    this.observe?.({ kind: 'commit', node, time: this.now(), height: b.height, round: b.round, value: hex, roundBefore })
    if (!this.honest.has(node)) return
    if (!bytesEqual(b.block.header.stateRoot, root)) {
      this.violation(
        'stateRoot',
        `validator ${node}'s state root after height ${b.height} is ${short(root)}, its header says ${short(b.block.header.stateRoot)}`,
        node,
        b.height,
      )
    }
    if (b.receipts.some((r) => !r.ok)) this.violation('validity', `validator ${node} committed block ${b.height} with a failed transfer`, node, b.height)
    const ref = this.references.get(b.height)
    if (ref !== undefined) {
      if (!bytesEqual(ref.hash, b.hash)) {
        this.violation(
          'agreement',
          `validators ${ref.node} and ${node} committed ${short(ref.hash)} and ${short(b.hash)} at height ${b.height}`,
          node,
          b.height,
        )
      } else if (!bytesEqual(ref.stateRoot, root)) {
        this.violation('stateRoot', `validators ${ref.node} and ${node} hold different state roots after height ${b.height}`, node, b.height)
      }
      return
    }
    this.references.set(b.height, { hash: b.hash, stateRoot: root, time: this.now(), node })
    this.certificateSigners.set(
      b.height,
      b.certificate.signatures.map((x) => this.nodeByAddress.get(toHex(x.validator)) ?? -1),
    )
    this.coverage.heights = Math.max(this.coverage.heights, b.height)
    this.coverage.txsCommitted += b.block.txs.length
    this.refTail = this.refTail
      .then(() => this.reexecute(node, b))
      .catch((e: Error) => this.violation('error', `reference replica: ${e.message}`, node, b.height))
  }

  /** The block-validity rule, checked independently on the reference replica. */
  private async reexecute(node: number, b: CommittedBlock): Promise<void> {
    const h = b.height
    const fail = (detail: string) => this.violation('validity', `block ${h} committed by validator ${node}: ${detail}`, node, h)
    if (this.refPrev.height !== h - 1) return // the reference stopped at an earlier broken height
    const header: BlockHeader = b.block.header
    if (!bytesEqual(blockHash(header), b.hash)) return fail("its hash is not its header's")
    if (header.chainId !== this.chainId || header.height !== h) return fail('wrong chain or height')
    if (!bytesEqual(header.previousBlockHash, this.refPrev.hash)) return fail('it does not extend the previous block')
    if (header.time <= this.refPrev.time) return fail("its time is not after its parent's")
    // the state after block h - 1 scheduled the sets of h and h + 1
    const entry = this.entryAt(h)
    if (!bytesEqual(header.validatorSetHash, entry.set.hash)) return fail('its validator set hash is not that of the set scheduled for its height')
    if (!bytesEqual(header.nextValidatorSetHash, this.entryAt(h + 1).set.hash))
      return fail('its next validator set hash is not that of the set scheduled for the next height')
    if (!entry.members.has(toHex(header.proposer))) return fail('its proposer is not a validator of its height')
    if (h === 1) {
      if (b.lastCommit !== null || !bytesEqual(header.lastCommitHash, ZERO_HASH)) return fail('height 1 carries a last commit')
    } else if (
      b.lastCommit === null ||
      !this.certifies(this.entryAt(h - 1), b.lastCommit, h - 1, this.refPrev.hash) ||
      !bytesEqual(commitHash(b.lastCommit), header.lastCommitHash)
    ) {
      return fail('its last commit does not prove the previous block')
    }
    if (!this.certifies(entry, b.certificate, h, b.hash))
      this.violation('certificate', `the certificate validator ${node} committed height ${h} with does not prove it with the set of that height`, node, h)
    const txs: DecodedTransaction[] = []
    for (const bytes of b.block.txs) {
      const d = decodeTransaction(bytes)
      if (!d.ok) return fail('a transaction does not decode')
      txs.push(d.value)
    }
    if (!bytesEqual(txRoot(txs.map((t) => t.hash)), header.txRoot)) return fail('its transactions are not the ones its header commits to')
    if (new Set(txs.map((t) => toHex(t.hash))).size !== txs.length) return fail('a transaction appears twice')
    const ledger = this.refLedger!
    const result = await ledger.execute(txs, { chainId: this.chainId, block: { height: h, governance: this.genesis.params.governance } })
    const failed = result.receipts.findIndex((r) => !r.ok)
    if (failed >= 0) return fail(`transfer ${failed} does not apply (${(result.receipts[failed] as { code: string }).code})`)
    if (!bytesEqual(result.stateRoot, header.stateRoot)) return fail('its state root is not the result of its transfers')
    await this.refKv.write(result.ops)
    ledger.commit(result)
    this.refPrev = { hash: b.hash, time: header.time, height: h }
    this.learnSets(h)
  }

  /** Independent certificate check: distinct members of the height's set, valid precommit signatures, more than two thirds. */
  private certifies(entry: SetEntry, cert: CommitCertificate, height: number, hash: Uint8Array): boolean {
    if (cert.height !== height || !bytesEqual(cert.valueId, hash)) return false
    const seen = new Set<string>()
    let power = 0n
    for (const s of cert.signatures) {
      const key = toHex(s.validator)
      const v = entry.members.get(key)
      if (v === undefined || seen.has(key)) return false
      seen.add(key)
      const vote = { type: 'precommit' as const, height, round: cert.round, valueId: hash }
      if (!verifyRemembered(v.publicKey, voteSignBytes(this.chainId, vote), s.signature)) return false
      power += BigInt(v.power)
    }
    return this.twoThirds(entry, power)
  }

  /** Waits for the reference replica to catch up with the commits reported so far. */
  async flush(): Promise<void> {
    await this.refTail
  }

  // ---- other observations -------------------------------------------------------------------------------------

  fatal(node: number, e: Error): void {
    if (this.honest.has(node)) this.violation('fatal', `validator ${node} stopped: ${e.message}`, node)
  }

  evidenceReported(node: number, e: Evidence): void {
    if (!this.honest.has(node)) return
    this.evidence.push(e)
    this.coverage.evidence++
    const signer = e.kind === 'conflictingVotes' ? e.first.validator : e.first.proposer
    const culprit = this.nodeByAddress.get(toHex(signer))
    if (culprit !== undefined && this.honest.has(culprit)) {
      this.violation(
        'evidence',
        `validator ${node} reports ${e.kind} by honest validator ${culprit} at ${e.first.height}/${e.first.round}`,
        node,
        e.first.height,
      )
    }
  }

  penalty(by: number, peer: number, reason: string): void {
    if (this.honest.has(by)) this.coverage.penalties++
    if (this.honest.has(by) && this.honest.has(peer)) this.violation('penalty', `validator ${by} penalized honest validator ${peer}: ${reason}`, by)
  }

  verdict(to: number, from: number, verdict: string): void {
    if (verdict !== 'reject' || !this.honest.has(to)) return
    this.coverage.refused++
    if (this.honest.has(from)) this.violation('penalty', `validator ${to} refused a consensus message from honest validator ${from}`, to)
  }

  /** Liveness at the end: every honest node committed every height up to its last as a validator, up to `heights`. */
  finish(heights: number, deadline: number, endTime: number): void {
    for (const i of this.honest) {
      const commits = this.commits[i]!
      const last = this.lastMembership(i, heights)
      for (let h = 1; h <= last; h++) {
        if (!commits.has(h)) {
          this.violation('liveness', `validator ${i} did not commit height ${h} by ${deadline} ms (the run ended at ${endTime} ms)`, i, h)
          break
        }
      }
    }
  }
}

function short(b: Uint8Array): string {
  return toHex(b).slice(0, 8)
}
