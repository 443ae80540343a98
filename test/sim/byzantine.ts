import { bytesEqual, bytesKey, encodeCanonical, keyPairFromSeed, sha256, sign, toHex } from '../../crypto/index.js'
import {
  MAX_COMMIT_BYTES,
  encodeCommitCertificate,
  encodeSignedProposal,
  proposalSignBytes,
  proposerOf,
  voteSignBytes,
  type ConsensusParams,
  type Proposal,
  type SignedProposal,
  type SignedVote,
  type ValidatorSet,
  type Vote,
} from '../../consensus/index.js'
import { blockHash, encodeBlockHeader, txRoot, type BlockHeader } from '../../ledger/block.js'
import { DEFAULT_GOVERNANCE_PARAMS } from '../../ledger/governance.js'
import { decodeTransaction, encodeTransaction, type DecodedTransaction } from '../../ledger/transaction.js'
import type { RequestHandler } from '../../node/p2p/p2p.js'
import { decodeStoredBlock, encodeStoredBlock } from '../../node/storage/storedBlock.js'
import { BLOCKS_PROTOCOL, BLOCK_PROTOCOL, STATUS_PROTOCOL } from '../../node/sync/blockSync.js'
import {
  decodeBlockResponse,
  decodeHeightRequest,
  decodeRangeRequest,
  decodeRangeResponse,
  decodeTipResponse,
  encodeBlockResponse,
  encodeHeightRequest,
  encodeRangeRequest,
  encodeRangeResponse,
  encodeTipResponse,
} from '../../node/sync/blockSyncMessages.js'
import { encodeProposalMessage, encodeVoteMessage, maxConsensusMessageBytes, type ProposalMessage } from '../../node/sync/consensusMessages.js'
import { TX_FETCH_PROTOCOL } from '../../node/sync/txFetch.js'
import { decodeTxFetchRequest, encodeTxFetchResponse } from '../../node/sync/txFetchMessages.js'
import type { Rng } from '../helpers/random.js'
import type { LockAdversary } from './lockAdversary.js'
import type { Scheduler } from './scheduler.js'
import type { SimNetwork } from './simNetwork.js'
import type { CrashPlan, HostSettings, NodeHooks, SimValidator } from './simNode.js'

/**
 * Byzantine validators. Each is a real consensus host (it follows the chain, executes blocks, builds proposals through
 * its own mempool and ledger) behind a layer that attacks the honest hosts with real bytes: it rewrites, splits,
 * withholds or adds to what its host sends, lies in its sync and fetch answers, and floods. Messages it signs itself
 * are signed with its key outside any guard. Behaviours:
 *  - `crash`: stops for good at a random moment before GST; `silent`: never runs;
 *  - `equivocate`: two proposals (two valid blocks) and two votes per step, to overlapping subsets of its peers;
 *  - `junk`: random and bit-flipped bytes, votes and proposals with bad signatures in honest validators' names, forged
 *    precommit quorums for random values, proposals out of turn, for far heights and rounds, whose header is not their
 *    value, votes from outside the validator set;
 *  - `oversized`: messages over the size bound, proposals with more transactions than a block may hold;
 *  - `forgedBlock`: as proposer, a block with a transfer that must not apply (a bad signature, a replay of a committed
 *    transfer, a skipped nonce) and the state root an honest executor computes for it, serving the forged transfer;
 *  - `withhold`: its proposals, votes and gossiped transactions reach only some peers;
 *  - `lyingSync`: tips it cannot prove, certified blocks with their body or carried commit tampered with, blocks of
 *    another height, ranges with one such block among true ones or shifted by a height, wrong or garbage transactions
 *    on fetch;
 *  - `voteFlood`: repeated votes, nil votes for later rounds and heights, many per second;
 *  - `slotFlood`: votes for more values per step than the core keeps for a validator, a different few to each peer;
 *  - `lockAttack`: the Byzantine side of the lock adversary (lockAdversary.ts): targeted prevotes and precommits,
 *    votes for real conflicting values, and as proposer false valid rounds, out-of-turn and withheld proposals;
 *  - `splitBrain` (crafted scenarios): colluders serve each group of honest validators its own block, as proposer and
 *    voter;
 *  - `linger` (set changes): once removed from the validator set, keeps signing prevotes and precommits for the values
 *    proposed at its height, nil and random values, and proposals of its own, as if it were still a validator.
 */
export type Behaviour =
  | 'crash'
  | 'silent'
  | 'equivocate'
  | 'junk'
  | 'oversized'
  | 'forgedBlock'
  | 'withhold'
  | 'lyingSync'
  | 'voteFlood'
  | 'lockAttack'
  | 'splitBrain'
  | 'slotFlood'
  | 'linger'

/** The behaviours randomized runs draw from. */
export const BYZANTINE_REPERTOIRE: readonly Behaviour[] = [
  'crash',
  'silent',
  'equivocate',
  'junk',
  'oversized',
  'forgedBlock',
  'withhold',
  'lyingSync',
  'voteFlood',
  'slotFlood',
]

/** What the Byzantine layer works with. */
export interface AttackContext {
  readonly sched: Scheduler
  readonly rng: Rng
  readonly network: SimNetwork
  readonly nodes: readonly SimValidator[]
  /** The validator set in force at a height, as far as the chain is known. */
  readonly setAt: (height: number) => ValidatorSet
  readonly chainId: string
  readonly params: ConsensusParams
  readonly settings: HostSettings
  readonly gst: number
  readonly honest: readonly number[]
  readonly collusionGroups: readonly (readonly number[])[]
  readonly lockAdversary: LockAdversary | undefined
  readonly secretKeys: readonly Uint8Array[]
  readonly addresses: readonly Uint8Array[]
  /** The transfers `forgedBlock` forges (default: any of them, drawn per block). */
  readonly forgeKinds?: readonly ForgeKind[]
}

/** What makes a forged block invalid: a transfer with a bad signature, a replayed committed one, a skipped nonce. */
export type ForgeKind = 'badSignature' | 'replay' | 'skippedNonce'

/** Counters of what the Byzantine validators did. */
export interface AttackStats {
  equivocations: number
  forgedBlocks: number
  junk: number
  lies: number
  floods: number
  lockVotes: number
  falseValidRounds: number
  withheld: number
  /** Votes and proposals signed by removed validators. */
  lingering: number
}

export class Attacks {
  readonly stats: AttackStats = { equivocations: 0, forgedBlocks: 0, junk: 0, lies: 0, floods: 0, lockVotes: 0, falseValidRounds: 0, withheld: 0, lingering: 0 }
  private readonly behaviours = new Map<number, ReadonlySet<Behaviour>>()
  /** Every proposal message seen on the network, by value (hex), and the values proposed per height/round. */
  private readonly proposals = new Map<string, ProposalMessage>()
  private readonly byRound = new Map<string, string[]>()
  private readonly forgedTxs = new Map<string, Uint8Array>()
  private readonly lastVotes = new Map<number, Uint8Array[]>()
  private readonly lockRounds = new Set<string>()
  private readonly outsider = keyPairFromSeed(sha256(encodeCanonical(['tally-sim-outsider'])))

  constructor(private readonly ctx: AttackContext) {
    ctx.network.addTap((_from, bytes) => this.tap(bytes))
  }

  private get maxTxs(): number {
    return this.ctx.settings.block.maxTxs
  }

  /** The hooks of a Byzantine validator; a `crash` plan is added to `plans`. */
  hooksFor(node: number, behaviours: readonly Behaviour[], plans: CrashPlan[]): NodeHooks {
    const b = new Set(behaviours)
    this.behaviours.set(node, b)
    if (b.has('crash') && plans.length === 0) plans.push({ atMs: this.ctx.rng.int(Math.max(1, this.ctx.gst + 3_000)) })
    return {
      broadcast: (self, bytes) => this.outgoing(self, b, bytes),
      wrapHandler: b.has('lyingSync') ? (_self, protocol, handler) => this.liar(protocol, handler) : undefined,
      lookup: (h) => this.forgedTxs.get(bytesKey(h)),
      gossipTargets: b.has('withhold') ? (self) => this.subset(self.index) : undefined,
    }
  }

  /** Starts the periodic attacks (floods and junk). */
  start(): void {
    for (const [node, b] of this.behaviours) {
      if (b.has('voteFlood')) this.ctx.sched.every(150 + this.ctx.rng.int(100), null, () => this.flood(node))
      if (b.has('junk')) this.ctx.sched.every(300 + this.ctx.rng.int(200), null, () => this.junkNow(node))
      if (b.has('oversized')) this.ctx.sched.every(700 + this.ctx.rng.int(300), null, () => this.oversized(node))
      if (b.has('linger')) this.ctx.sched.every(200 + this.ctx.rng.int(100), null, () => this.linger(node))
    }
  }

  // ---- what the network carries --------------------------------------------------------------------------------

  private tap(bytes: Uint8Array): void {
    // proposals are canonical [1, …] arrays of 7: a cheap test before decoding
    if (bytes[0] !== 0x97 || bytes[1] !== 0x01) return
    const d = this.ctx.network.decode(bytes)
    if (d === undefined || d.kind !== 'proposal') return
    const m = d.message
    const p = m.proposal
    const key = toHex(p.valueId)
    const first = !this.proposals.has(key)
    if (first) this.proposals.set(key, m)
    const rk = `${p.height}/${p.round}`
    let list = this.byRound.get(rk)
    if (list === undefined) {
      list = []
      this.byRound.set(rk, list)
    }
    if (!list.includes(key)) list.push(key)
    if (bytesEqual(proposerOf(this.ctx.setAt(p.height), p.height, p.round).address, p.proposer)) this.lockVotes(p)
  }

  /** Values proposed at a height in rounds below `round` (hex). */
  private earlierValues(height: number, round: number): string[] {
    const out: string[] = []
    for (let r = 0; r < round; r++) for (const v of this.byRound.get(`${height}/${r}`) ?? []) if (!out.includes(v)) out.push(v)
    return out
  }

  // ---- signing and sending -------------------------------------------------------------------------------------

  private signVote(node: number, vote: Omit<Vote, 'validator'>): SignedVote {
    const v = { ...vote, validator: this.ctx.addresses[node]! }
    return { ...v, signature: sign(this.ctx.secretKeys[node]!, voteSignBytes(this.ctx.chainId, v)) }
  }

  private signProposal(node: number, p: Omit<Proposal, 'proposer'>): SignedProposal {
    const full = { ...p, proposer: this.ctx.addresses[node]! }
    return { ...full, signature: sign(this.ctx.secretKeys[node]!, proposalSignBytes(this.ctx.chainId, full)) }
  }

  private peers(node: number): number[] {
    return this.ctx.nodes.map((n) => n.index).filter((i) => i !== node)
  }

  /** A random non-empty subset of the peers. */
  private subset(node: number): number[] {
    const peers = this.peers(node)
    const out = peers.filter(() => this.ctx.rng.chance(0.5))
    return out.length > 0 ? out : [this.ctx.rng.pick(peers)]
  }

  /** Two subsets covering every peer, overlapping in at least one when there are two or more peers. */
  private overlappingHalves(node: number): [number[], number[]] {
    const peers = this.peers(node)
    const a: number[] = []
    const b: number[] = []
    for (const p of peers) (this.ctx.rng.chance(0.5) ? a : b).push(p)
    if (a.length === 0) a.push(b.pop()!)
    if (b.length === 0) b.push(a.pop()!)
    if (peers.length >= 3) {
      const both = this.ctx.rng.pick(peers)
      if (!a.includes(both)) a.push(both)
      if (!b.includes(both)) b.push(both)
    }
    return [a, b]
  }

  private sendTo(from: number, targets: readonly number[], bytes: Uint8Array): void {
    for (const to of targets) if (to !== from) this.ctx.network.send(from, to, bytes)
  }

  private running(node: number): SimValidator | undefined {
    const n = this.ctx.nodes[node]!
    return n.host === undefined ? undefined : n
  }

  // ---- the host's outgoing gossip ----------------------------------------------------------------------------------

  private outgoing(self: SimValidator, b: ReadonlySet<Behaviour>, bytes: Uint8Array): void {
    const node = self.index
    const m = this.ctx.network.decode(bytes)
    if (m === undefined) {
      this.ctx.network.broadcast(node, bytes)
      return
    }
    const own = m.kind === 'vote' ? bytesEqual(m.vote.validator, self.address) : m.kind === 'proposal' && bytesEqual(m.message.proposal.proposer, self.address)
    if (m.kind === 'vote' && own) {
      const list = this.lastVotes.get(node) ?? []
      list.push(bytes)
      if (list.length > 4) list.shift()
      this.lastVotes.set(node, list)
    }
    if (b.has('splitBrain')) {
      if (m.kind === 'proposal' && own) this.splitBrain(node, m.message)
      return
    }
    if (b.has('lockAttack') && this.ctx.lockAdversary !== undefined) {
      if (this.lockOutgoing(node, m.kind === 'proposal' ? m.message : undefined, m.kind === 'vote' ? m.vote : undefined, own)) return
      this.ctx.network.broadcast(node, bytes)
      return
    }
    let sent = false
    if (m.kind === 'proposal' && own) {
      const msg = m.message
      if (b.has('forgedBlock') && msg.proposal.polRound === -1 && this.ctx.rng.chance(0.8)) {
        sent = true
        void this.forge(node, msg).then((forged) => {
          if (!forged) this.ctx.network.broadcast(node, bytes)
        })
      } else if (b.has('equivocate') && this.ctx.rng.chance(0.8)) {
        sent = true
        this.equivocateProposal(node, msg)
      } else if (b.has('withhold') && this.ctx.rng.chance(0.7)) {
        sent = true
        this.stats.withheld++
        this.sendTo(node, this.ctx.rng.chance(0.3) ? [] : this.subset(node), bytes)
      }
    } else if (m.kind === 'vote' && own) {
      if (b.has('slotFlood')) {
        sent = true
        this.slotFlood(node, m.vote)
      } else if (b.has('equivocate') && this.ctx.rng.chance(0.7)) {
        sent = true
        this.equivocateVote(node, m.vote)
      } else if (b.has('withhold') && this.ctx.rng.chance(0.5)) {
        sent = true
        this.stats.withheld++
        this.sendTo(node, this.subset(node), bytes)
      }
    }
    if (!sent) this.ctx.network.broadcast(node, bytes)
    if (b.has('junk') && this.ctx.rng.chance(0.3)) this.junkNow(node)
  }

  // ---- equivocation ------------------------------------------------------------------------------------------------

  /** A second valid block: the same transactions at a later time. */
  private variant(msg: ProposalMessage, shift: number): { header: BlockHeader; value: Uint8Array } {
    const header = { ...msg.header, time: msg.header.time + shift }
    return { header, value: blockHash(header) }
  }

  private equivocateProposal(node: number, msg: ProposalMessage): void {
    const p = msg.proposal
    const other = this.variant(msg, 1 + this.ctx.rng.int(5))
    const second = this.signProposal(node, { height: p.height, round: p.round, valueId: other.value, polRound: -1 })
    const [a, b] = this.overlappingHalves(node)
    this.sendTo(node, a, encodeProposalMessage(msg))
    this.sendTo(node, b, encodeProposalMessage({ ...msg, proposal: second, header: other.header }))
    this.stats.equivocations++
  }

  private equivocateVote(node: number, vote: SignedVote): void {
    const others = [...(this.byRound.get(`${vote.height}/${vote.round}`) ?? []), ...this.earlierValues(vote.height, vote.round)].filter(
      (v) => vote.valueId === null || v !== toHex(vote.valueId),
    )
    const value =
      vote.valueId !== null && this.ctx.rng.chance(0.5)
        ? null
        : others.length > 0
          ? this.proposals.get(this.ctx.rng.pick(others))!.proposal.valueId
          : this.ctx.rng.bytes(32)
    const second = this.signVote(node, { type: vote.type, height: vote.height, round: vote.round, valueId: value })
    const [a, b] = this.overlappingHalves(node)
    this.sendTo(node, a, encodeVoteMessage(vote))
    this.sendTo(node, b, encodeVoteMessage(second))
    this.stats.equivocations++
  }

  // ---- forged transfers ----------------------------------------------------------------------------------------------

  /**
   * Replaces the host's proposal by one whose block holds a transfer that must not apply, with the state root an
   * honest executor computes for it (the failing transfer changes nothing), so only the transfer rule rejects it.
   * False when nothing could be forged (the original is sent instead).
   */
  private async forge(node: number, msg: ProposalMessage): Promise<boolean> {
    const n = this.running(node)
    const inc = n?.inc
    if (inc?.host === undefined || inc.mempool === undefined || inc.ledger === undefined || inc.chain === undefined) return false
    const host = inc.host
    const txs: DecodedTransaction[] = []
    for (const h of msg.txHashes) {
      const t = inc.mempool.get(h) ?? decodeOrUndefined(host.findTransaction(h))
      if (t === undefined) return false
      txs.push(t)
    }
    const kind = this.ctx.rng.pick(this.ctx.forgeKinds ?? (['badSignature', 'replay', 'skippedNonce'] as const))
    let forged: DecodedTransaction[] | undefined
    if (kind === 'badSignature' && txs.length > 0) {
      const i = this.ctx.rng.int(txs.length)
      const t = txs[i]!
      if (t.tx.kind === 'governance') return false
      const tx = { ...t.tx, amount: t.tx.amount + 1n }
      const bytes = encodeTransaction(tx)
      const d = decodeTransaction(bytes)
      if (d.ok) forged = [...txs.slice(0, i), d.value, ...txs.slice(i + 1)]
    } else if (kind === 'replay' && host.tip !== undefined) {
      const stored = await inc.chain.blockBytes(host.tip.height)
      const s = stored === undefined ? undefined : decodeStoredBlock(stored, this.ctx.settings.block)
      const old = s?.ok === true && s.value.block.txs.length > 0 ? decodeOrUndefined(s.value.block.txs[0]!) : undefined
      if (old !== undefined && !txs.some((t) => bytesEqual(t.hash, old.hash))) forged = [old, ...txs]
    } else if (kind === 'skippedNonce') {
      // a later nonce of a sender without the earlier one it needs
      const pending = inc.mempool.reap({ maxTxs: 10_000, maxBytes: 1 << 24 })
      const bySender = new Map<string, DecodedTransaction[]>()
      for (const t of pending) bySender.set(toHex(t.tx.from), [...(bySender.get(toHex(t.tx.from)) ?? []), t])
      const run = [...bySender.values()].find((ts) => ts.length >= 2)
      if (run !== undefined) {
        const skipped = run[0]!.hash
        const later = run[1]!
        forged = [...txs.filter((t) => !bytesEqual(t.hash, skipped) && !bytesEqual(t.hash, later.hash)), later]
      }
    }
    if (forged === undefined || forged.length > this.maxTxs) return false
    const result = await inc.ledger.execute(forged, { chainId: this.ctx.chainId, block: { height: msg.header.height, governance: DEFAULT_GOVERNANCE_PARAMS } })
    if (result.receipts.every((r) => r.ok)) return false
    const header: BlockHeader = { ...msg.header, txRoot: txRoot(forged.map((t) => t.hash)), stateRoot: result.stateRoot }
    const value = blockHash(header)
    for (const t of forged) this.forgedTxs.set(bytesKey(t.hash), t.bytes)
    const p = msg.proposal
    const proposal = this.signProposal(node, { height: p.height, round: p.round, valueId: value, polRound: -1 })
    if (this.running(node) === undefined) return true
    this.ctx.network.broadcast(
      node,
      encodeProposalMessage({ proposal, header, txHashes: forged.map((t) => t.hash), evidence: msg.evidence, lastCommit: msg.lastCommit }),
    )
    this.stats.forgedBlocks++
    return true
  }

  // ---- junk and oversized messages -------------------------------------------------------------------------------

  /** The height and round the node's host works on. */
  private position(node: number): { height: number; round: number } | undefined {
    const host = this.running(node)?.host
    if (host === undefined || host.consensusState.step === 'idle') return undefined
    return { height: host.height, round: host.round }
  }

  private junkNow(node: number): void {
    const at = this.position(node)
    if (at === undefined) return
    const { rng } = this.ctx
    const { height, round } = at
    const out: Uint8Array[] = []
    out.push(rng.bytes(rng.int(300)))
    const last = this.lastVotes.get(node)?.at(-1)
    if (last !== undefined) {
      const flipped = new Uint8Array(last)
      flipped[rng.int(flipped.length)]! ^= 1 << rng.int(8)
      out.push(flipped)
    }
    // a quorum of forged precommits (bad signatures in every validator's name) for a random value
    const bogus = rng.bytes(32)
    for (const address of this.ctx.addresses) {
      out.push(encodeVoteMessage({ type: 'precommit', height, round, valueId: bogus, validator: address, signature: rng.bytes(64) }))
      out.push(encodeVoteMessage({ type: 'prevote', height, round, valueId: bogus, validator: address, signature: rng.bytes(64) }))
    }
    const seen = this.byRound.get(`${height}/${round}`)?.[0]
    const msg = seen === undefined ? undefined : this.proposals.get(seen)
    if (msg !== undefined) {
      // the real proposer's proposal with a bad signature, for another value
      out.push(encodeProposalMessage({ ...msg, proposal: { ...msg.proposal, valueId: rng.bytes(32), signature: rng.bytes(64) } }))
      // a proposal signed by this node for rounds it does not propose, and for far heights and rounds
      for (const [h, r] of [
        [height, round + 1 + rng.int(3)],
        [height + 1000, 0],
        [height, round + 1000],
        [height + 1, this.ctx.params.maxRoundsAhead + 2],
      ] as const) {
        if (bytesEqual(proposerOf(this.ctx.setAt(h), h, r).address, this.ctx.addresses[node]!) && h === height) continue
        const header = h > 1 ? { ...msg.header, height: h, previousBlockHash: sha256(rng.bytes(8)), lastCommitHash: sha256(rng.bytes(8)) } : msg.header
        const p = this.signProposal(node, { height: h, round: r, valueId: blockHash(header), polRound: -1 })
        out.push(encodeProposalMessage({ ...msg, proposal: p, header }))
      }
      // a proposal whose header is not its value, from a round this node does propose, if any is near
      for (let r = round; r <= round + this.ctx.params.maxRoundsAhead; r++) {
        if (!bytesEqual(proposerOf(this.ctx.setAt(height), height, r).address, this.ctx.addresses[node]!)) continue
        const p = this.signProposal(node, { height, round: r, valueId: rng.bytes(32), polRound: -1 })
        out.push(encodeProposalMessage({ ...msg, proposal: p }))
        break
      }
    }
    // a vote from outside the validator set
    const outsiderVote = { type: 'prevote' as const, height, round, valueId: null, validator: sha256(this.outsider.publicKey).subarray(0, 20) }
    out.push(encodeVoteMessage({ ...outsiderVote, signature: sign(this.outsider.secretKey, voteSignBytes(this.ctx.chainId, outsiderVote)) }))
    for (const to of this.peers(node)) for (const bytes of out) this.ctx.network.send(node, to, bytes)
    this.stats.junk += out.length
  }

  private oversized(node: number): void {
    const at = this.position(node)
    if (at === undefined) return
    const seen = this.byRound.get(`${at.height}/${at.round}`)?.[0] ?? [...this.proposals.keys()].at(-1)
    const msg = seen === undefined ? undefined : this.proposals.get(seen)
    if (msg === undefined) return
    const { rng } = this.ctx
    const out: Uint8Array[] = []
    // more transaction hashes than a block may hold
    const hashes = Array.from({ length: this.maxTxs + 1 + rng.int(10) }, () => rng.bytes(32))
    out.push(encodeProposalMessage({ ...msg, txHashes: hashes }))
    // a well-formed message past the size bound: an oversized carried commit
    const big = encodeCanonical([1, encodeSignedProposal(msg.proposal), encodeBlockHeader(msg.header), [...msg.txHashes], rng.bytes(MAX_COMMIT_BYTES + 100), 0])
    if (big.byteLength > maxConsensusMessageBytes(this.maxTxs)) out.push(big)
    out.push(rng.bytes(maxConsensusMessageBytes(this.maxTxs) + 1))
    for (const to of this.peers(node)) for (const bytes of out) this.ctx.network.send(node, to, bytes)
    this.stats.junk += out.length
  }

  // ---- vote floods -------------------------------------------------------------------------------------------

  /**
   * Repeats of its own votes, and nil votes for later rounds of this height and for the next heights: the host's queue,
   * WAL and future-height buffer must stay bounded. Nil is one more value per step at most, so with an equivocation
   * this validator still votes for no more values per step than the core counts (see `slotFlood`).
   */
  private flood(node: number): void {
    const at = this.position(node)
    if (at === undefined) return
    const { rng } = this.ctx
    const { height, round } = at
    const ahead = this.ctx.params.maxRoundsAhead
    const out: Uint8Array[] = []
    for (const bytes of this.lastVotes.get(node) ?? []) for (let k = 0; k < 3; k++) out.push(bytes)
    for (const type of ['prevote', 'precommit'] as const) {
      out.push(encodeVoteMessage(this.signVote(node, { type, height, round: round + 1 + rng.int(ahead), valueId: null })))
      out.push(encodeVoteMessage(this.signVote(node, { type, height: height + 1 + rng.int(2), round: rng.int(ahead + 1), valueId: null })))
    }
    for (const to of this.peers(node)) for (const bytes of out) this.ctx.network.send(node, to, bytes)
    this.stats.floods += out.length
  }

  /**
   * Votes for four or more values per step, a different three to each peer before its real vote: the core keeps at
   * most three votes of one validator per step for values nobody else voted for (MAX_VOTES_PER_VALIDATOR), so without
   * its rule for supported values a peer could never count the vote that completed another peer's polka.
   */
  private slotFlood(node: number, vote: SignedVote): void {
    const { rng } = this.ctx
    for (const to of this.peers(node)) {
      for (let k = 0; k < 3; k++) {
        this.ctx.network.send(
          node,
          to,
          encodeVoteMessage(this.signVote(node, { type: vote.type, height: vote.height, round: vote.round, valueId: rng.bytes(32) })),
        )
      }
    }
    this.ctx.network.broadcast(node, encodeVoteMessage(vote))
    this.stats.floods++
  }

  // ---- a removed validator that keeps voting ----------------------------------------------------------------------

  private readonly wasMember = new Set<number>()

  /**
   * Once out of the set (at the height its own host, a full node now, works on), a validator that was in it signs what
   * a member would: a prevote and a precommit for each value proposed in the round, for nil and for a random value,
   * and the round's proposal as its own. Honest admissions must refuse all of it; it must never count.
   */
  private linger(node: number): void {
    const at = this.position(node)
    if (at === undefined) return
    const address = this.ctx.addresses[node]!
    const member = this.ctx.setAt(at.height).validators.some((v) => bytesEqual(v.address, address))
    if (member) this.wasMember.add(node)
    if (member || !this.wasMember.has(node)) return
    const { height, round } = at
    const values = (this.byRound.get(`${height}/${round}`) ?? []).map((v) => this.proposals.get(v)!)
    const out: Uint8Array[] = []
    for (const valueId of [...values.map((m) => m.proposal.valueId), null, this.ctx.rng.bytes(32)]) {
      for (const type of ['prevote', 'precommit'] as const) out.push(encodeVoteMessage(this.signVote(node, { type, height, round, valueId })))
    }
    const seen = values[0]
    if (seen !== undefined) {
      const proposal = this.signProposal(node, { height, round, valueId: seen.proposal.valueId, polRound: -1 })
      out.push(encodeProposalMessage({ ...seen, proposal }))
    }
    for (const to of this.peers(node)) for (const bytes of out) this.ctx.network.send(node, to, bytes)
    this.stats.lingering += out.length
  }

  // ---- lying sync and fetch --------------------------------------------------------------------------------------

  private liar(protocol: string, real: RequestHandler): RequestHandler {
    const { rng } = this.ctx
    const limits = this.ctx.settings.block
    return async (req, from) => {
      if (rng.chance(0.35)) return real(req, from)
      this.stats.lies++
      const pick = rng.int(4)
      if (protocol === STATUS_PROTOCOL) {
        const t = decodeTipResponse(await real(req, from))
        if (t === undefined || t.certificate === null || pick === 0) return rng.bytes(1 + rng.int(64))
        if (pick === 1) return encodeTipResponse(t.height + 5, encodeCommitCertificate(t.certificate)) // the certificate is of another height
        const forged = { ...t.certificate, height: t.height + 3 }
        return encodeTipResponse(t.height + 3, encodeCommitCertificate(forged)) // a certificate that does not verify
      }
      if (protocol === BLOCK_PROTOCOL) {
        const height = decodeHeightRequest(req)
        if (height === undefined) return real(req, from)
        if (pick === 0) return rng.chance(0.5) ? rng.bytes(1 + rng.int(200)) : encodeBlockResponse(undefined, undefined)
        if (pick === 1 && height > 1) return real(encodeHeightRequest(height - 1), from)
        const r = decodeBlockResponse(await real(req, from), limits)
        if (!r.ok || r.value === null) return real(req, from)
        const { stored, certificate } = r.value
        const block = stored.block
        const tampered =
          pick === 2 && block.txs.length > 0 ? { block: { ...block, txs: block.txs.slice(1) }, lastCommit: stored.lastCommit } : { block, lastCommit: null }
        return encodeBlockResponse(encodeStoredBlock(tampered), encodeCommitCertificate(certificate))
      }
      if (protocol === BLOCKS_PROTOCOL) {
        const r = decodeRangeRequest(req)
        if (r === undefined) return real(req, from)
        if (pick === 0) return rng.chance(0.5) ? rng.bytes(1 + rng.int(200)) : encodeRangeResponse([])
        if (pick === 1 && r.from > 1) return real(encodeRangeRequest({ ...r, from: r.from - 1 }), from)
        const d = decodeRangeResponse(await real(req, from), r, limits)
        if (!d.ok || d.value.length === 0) return real(req, from)
        // one block of the range tampered with (its body cut, or its carried commit dropped), the others true
        const at = rng.int(d.value.length)
        return encodeRangeResponse(
          d.value.map((b, i) => {
            const block = b.stored.block
            const stored =
              i !== at
                ? b.storedBytes
                : encodeStoredBlock(
                    pick === 2 && block.txs.length > 0
                      ? { block: { ...block, txs: block.txs.slice(1) }, lastCommit: b.stored.lastCommit }
                      : { block, lastCommit: null },
                  )
            return { stored, certificate: encodeCommitCertificate(b.certificate) }
          }),
        )
      }
      if (protocol === TX_FETCH_PROTOCOL) {
        const hashes = decodeTxFetchRequest(req, limits.maxTxs)
        if (hashes === undefined || pick === 0) return rng.bytes(1 + rng.int(100))
        const any = [...this.forgedTxs.values()]
        return encodeTxFetchResponse(hashes.map(() => (any.length > 0 && pick === 1 ? rng.pick(any) : rng.bytes(rng.int(120)))))
      }
      return real(req, from)
    }
  }

  // ---- split brain (crafted scenarios) -------------------------------------------------------------------------

  private splitBrain(node: number, msg: ProposalMessage): void {
    const p = msg.proposal
    const colluders = [...this.behaviours].filter(([, b]) => b.has('splitBrain')).map(([i]) => i)
    this.ctx.collusionGroups.forEach((group, g) => {
      const { header, value } = this.variant(msg, 1 + g)
      const proposal = this.signProposal(node, { height: p.height, round: p.round, valueId: value, polRound: -1 })
      this.sendTo(node, group, encodeProposalMessage({ ...msg, proposal, header }))
      for (const c of colluders) {
        for (const type of ['prevote', 'precommit'] as const) {
          this.sendTo(c, group, encodeVoteMessage(this.signVote(c, { type, height: p.height, round: p.round, valueId: value })))
        }
      }
    })
  }

  // ---- the lock adversary's Byzantine side -------------------------------------------------------------------------

  /**
   * A Byzantine validator's own message under the lock adversary: true when it was handled (dropped or replaced).
   * Its votes of split rounds are the adversary's (sent when the round's proposal shows up); as proposer it may
   * re-propose an older value with a false valid round, propose out of turn, or withhold its proposal.
   */
  private lockOutgoing(node: number, msg: ProposalMessage | undefined, vote: SignedVote | undefined, own: boolean): boolean {
    const adversary = this.ctx.lockAdversary!
    if (!own) return false
    if (vote !== undefined) return adversary.known(vote.height, vote.round)?.split === true
    if (msg === undefined || !adversary.active || adversary.o.byzantineProposals === false) return false
    const p = msg.proposal
    const { rng } = this.ctx
    const roll = rng.float()
    if (roll < 0.35) {
      // re-propose an older value of this height with a valid round that may have no polka
      const older = this.earlierValues(p.height, p.round).filter((v) => v !== toHex(p.valueId))
      if (older.length > 0 && p.round > 0) {
        const old = this.proposals.get(rng.pick(older))!
        const polRound = rng.int(p.round)
        const proposal = this.signProposal(node, { height: p.height, round: p.round, valueId: old.proposal.valueId, polRound })
        this.ctx.network.broadcast(node, encodeProposalMessage({ ...old, proposal }))
        this.stats.falseValidRounds++
        return true
      }
    } else if (roll < 0.5) {
      // out of turn: the same block proposed for the next rounds too (the admission refuses them)
      for (let r = p.round + 1; r <= p.round + 2; r++) {
        if (bytesEqual(proposerOf(this.ctx.setAt(p.height), p.height, r).address, this.ctx.addresses[node]!)) continue
        const proposal = this.signProposal(node, { height: p.height, round: r, valueId: p.valueId, polRound: -1 })
        this.sendTo(node, this.peers(node), encodeProposalMessage({ ...msg, proposal }))
      }
      return false
    } else if (roll < 0.65) {
      this.sendTo(node, this.subset(node), encodeProposalMessage(msg))
      return true
    }
    return false
  }

  /** The round's proposal showed up: the Byzantine validators vote as the adversary's plan for the round says. */
  private lockVotes(p: SignedProposal): void {
    const adversary = this.ctx.lockAdversary
    if (adversary === undefined || !adversary.active) return
    const key = `${p.height}/${p.round}`
    if (this.lockRounds.has(key)) return
    this.lockRounds.add(key)
    const plan = adversary.plan(p.height, p.round, p.valueId)
    if (!plan.split) return
    const attackers = [...this.behaviours].filter(([i, b]) => b.has('lockAttack') && this.running(i) !== undefined).map(([i]) => i)
    const others = this.earlierValues(p.height, p.round).filter((v) => v !== toHex(p.valueId))
    for (const z of attackers) {
      const audience = [...plan.audience]
      const rest = this.peers(z).filter((i) => !plan.audience.has(i))
      const conflicting = others.length > 0 && this.ctx.rng.chance(0.4) ? this.proposals.get(this.ctx.rng.pick(others))!.proposal.valueId : null
      for (const type of ['prevote', 'precommit'] as const) {
        this.sendTo(z, audience, encodeVoteMessage(this.signVote(z, { type, height: p.height, round: p.round, valueId: p.valueId })))
        this.sendTo(z, rest, encodeVoteMessage(this.signVote(z, { type, height: p.height, round: p.round, valueId: type === 'prevote' ? conflicting : null })))
      }
      this.stats.lockVotes++
    }
  }
}

function decodeOrUndefined(bytes: Uint8Array | undefined): DecodedTransaction | undefined {
  if (bytes === undefined) return undefined
  const d = decodeTransaction(bytes)
  return d.ok ? d.value : undefined
}
