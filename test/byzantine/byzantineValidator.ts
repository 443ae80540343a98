import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { addressFromPublicKey } from '../../crypto/address.js'
import { bytesEqual, bytesKey, toHex } from '../../crypto/bytes.js'
import { keyPairFromSeed, sign } from '../../crypto/ed25519.js'
import {
  commitHash,
  createValidatorSet,
  findValidator,
  isTwoThirds,
  proposalSignBytes,
  proposerOf,
  voteSignBytes,
  type SignedProposal,
  type SignedVote,
  type ValidatorSet,
  type VoteType,
} from '../../consensus/index.js'
import type { Genesis } from '../../genesis/genesis.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../ledger/block.js'
import type { DecodedTransaction } from '../../ledger/transaction.js'
import { HomeFiles, loadGenesis, loadHome, toMultiaddr } from '../../node/cli/home.js'
import { createLogger, type Logger } from '../../node/logger.js'
import { DirectStreams } from '../../node/p2p/directStreams.js'
import { P2p } from '../../node/p2p/p2p.js'
import { BLOCK_PROTOCOL, STATUS_PROTOCOL } from '../../node/sync/blockSync.js'
import { decodeHeightRequest, encodeBlockResponse, encodeTipResponse } from '../../node/sync/blockSyncMessages.js'
import { CONSENSUS_PROTOCOL } from '../../node/sync/consensusGossip.js'
import { decodeConsensusGossip, encodeProposalMessage, encodeVoteMessage, type ProposalMessage } from '../../node/sync/consensusMessages.js'
import { TX_FETCH_PROTOCOL } from '../../node/sync/txFetch.js'
import { decodeTxFetchRequest, encodeTxFetchResponse } from '../../node/sync/txFetchMessages.js'
import { ChainFollower, type FollowedBlock } from './chainFollower.js'

/**
 * A Byzantine insider: it joins a testnet of real `tallyd` validators with one validator's own keys (its consensus
 * key and its libp2p node key, which the genesis lists), so the honest validators admit it like any validator, and
 * it speaks the wire protocols through the project's own classes (P2p, DirectStreams, the message encoders).
 *
 * By default it behaves well enough to stand in for an honest validator: it follows the chain from honest peers
 * ({@link ChainFollower}), proposes valid empty blocks in its rounds, votes so that it completes the quorums of
 * the honest validators (it prevotes the first proposal or prevote it sees in a round, precommits on a polka or
 * after the first honest precommit, never signing two different votes for one step), and serves its blocks, tip and
 * transactions. Tests then change single behaviours ({@link Behaviour}) or send whatever the protocol lets a
 * validator send ({@link ByzantineValidator.send}, the `sign*` methods, which bypass every safety check).
 */

/** Rounds of a height for which the attacker signs its proposals in advance (honest nodes keep 10 rounds ahead). */
const ROUNDS_AHEAD = 10
const TX_BATCH_PROTOCOL = '/tally/tx-batches/1'

/** What the attacker puts in a block it proposes, and to whom it sends the proposal. */
export interface BlockPlan {
  /** Transactions of the block, in order (served on `/tally/txs/1` to validators that lack them). */
  readonly txs: readonly DecodedTransaction[]
  /** Peer ids the proposal goes to (default: every connected peer). */
  readonly to?: readonly string[]
}

/**
 * Decides the block of a height where the attacker proposes in some of the first rounds (`rounds`, ascending; 0 among
 * them when it proposes first at that height); undefined: propose nothing at that height.
 */
export type BlockPlanner = (height: number, rounds: readonly number[]) => BlockPlan | undefined | Promise<BlockPlan | undefined>

/** The attacker's switchable behaviours. */
export interface Behaviour {
  /** Vote to complete honest quorums (default true); false: never vote on its own. */
  vote: boolean
  /** The block plan of each height it proposes (default: an empty block to every peer); null: never propose. */
  plan: BlockPlanner | null
  /** The tip it claims on `/tally/status/1` (default: the followed tip). */
  status?: (from: string) => number
  /** Its answer on `/tally/block/1` (default: the followed block as honest peers served it). */
  block?: (height: number, from: string) => Uint8Array
}

/** A proposal the attacker sent. */
export interface SentProposal {
  readonly height: number
  readonly rounds: readonly number[]
  readonly header: BlockHeader
  readonly valueId: Uint8Array
  readonly txs: readonly DecodedTransaction[]
  readonly to: readonly string[] | 'all'
}

/** The default block plan: an empty block, sent to every peer. */
export const emptyBlocks: BlockPlanner = () => ({ txs: [] })

export class ByzantineValidator {
  readonly behaviour: Behaviour = { vote: true, plan: emptyBlocks }
  /** Votes it signed, by `height/round/type`, so its default behaviour never equivocates. */
  private readonly signed = new Map<string, SignedVote>()
  /** Honest votes seen, by `height/round/type`, voter hex → value key. */
  private readonly seen = new Map<string, Map<string, string>>()
  /** Every other validator's first prevote seen, by height, then `round/voter hex` → value key (recent heights). */
  private readonly prevotes = new Map<number, Map<string, string>>()
  private readonly ownProposals = new Map<number, ProposalMessage[]>()
  private readonly proposalTargets = new Map<number, readonly string[] | undefined>()
  private readonly knownTxs = new Map<string, Uint8Array>()
  private readonly timers: NodeJS.Timeout[] = []
  private resends = 0
  private stopped = false
  /** Proposals it sent, oldest first. */
  readonly sent: SentProposal[] = []
  /** Problems of the attacker itself (a harness bug, never an attack outcome): a test asserts it stays empty. */
  readonly errors: string[] = []
  /** Disconnections per peer id, counted from start. */
  readonly disconnects = new Map<string, number>()

  private constructor(
    readonly genesis: Genesis,
    readonly validatorSet: ValidatorSet,
    private readonly secretKey: Uint8Array,
    readonly address: Uint8Array,
    readonly p2p: P2p,
    readonly direct: DirectStreams,
    readonly follower: ChainFollower,
    readonly log: Logger,
    private readonly logStream: WriteStream,
  ) {}

  /** Back to the default behaviours: cooperative votes, empty blocks to everyone, truthful sync answers. */
  behaveHonestly(): void {
    this.behaviour.vote = true
    this.behaviour.plan = emptyBlocks
    delete this.behaviour.status
    delete this.behaviour.block
  }

  /**
   * Starts the attacker with the keys and listen address of the validator home `homeDir`, logging to `logPath`.
   * It dials the home's configured peers (the other validators) and serves the validator protocols.
   */
  static async start(homeDir: string, logPath: string): Promise<ByzantineValidator> {
    const home = loadHome(homeDir)
    const { config } = home
    const genesis = loadGenesis(join(homeDir, HomeFiles.genesis))
    if (home.validatorSeed === undefined) throw new Error(`${homeDir} has no validator key`)
    const vs = createValidatorSet(genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power })))
    if (!vs.ok) throw new Error(vs.error.reason)
    const logStream = createWriteStream(logPath, { flags: 'a' })
    const log = createLogger({ level: 'info', base: { moniker: 'attacker' }, destination: logStream })
    const p2p = new P2p(
      {
        seed: home.nodeSeed,
        listen: [toMultiaddr(config.p2p.listen)],
        peers: config.p2p.peers.map((p) => ({ peerId: p.peerId, multiaddr: toMultiaddr(p.address) })),
        allow: genesis.validators.map((v) => v.peerId),
        maxResponseBytes: genesis.params.block.maxBytes + 512 * 1024,
        redialMaxMs: 1_000,
      },
      { logger: log.child({ component: 'p2p' }) },
    )
    // Its own sends may exceed what honest nodes accept (oversized attacks): the bound here is only the encoder's.
    const direct = new DirectStreams(p2p, log.child({ component: 'direct' }), { maxMessageBytes: 8 * 1024 * 1024 })
    const honest = () => p2p.peers()
    const follower = await ChainFollower.create({ genesis, validatorSet: vs.value, sources: honest }, p2p)
    const address = addressFromPublicKey(keyPairFromSeed(home.validatorSeed).publicKey)
    const v = new ByzantineValidator(genesis, vs.value, home.validatorSeed, address, p2p, direct, follower, log, logStream)
    await v.wire()
    return v
  }

  private async wire(): Promise<void> {
    const { p2p, direct, follower } = this
    p2p.on('peer:disconnect', (peer) => this.disconnects.set(peer, (this.disconnects.get(peer) ?? 0) + 1))
    await p2p.start()
    // the tip with the certificate that proves it; a lying height travels with the real tip's certificate, the best
    // an attacker can do, since no certificate of a height the chain never reached exists
    await p2p.handle(STATUS_PROTOCOL, (_req, from) => {
      const tip = follower.tip
      return encodeTipResponse(this.behaviour.status?.(from) ?? follower.height, tip?.certificateBytes)
    })
    await p2p.handle(BLOCK_PROTOCOL, (req, from) => {
      const height = decodeHeightRequest(req) ?? 0
      if (this.behaviour.block) return this.behaviour.block(height, from)
      return this.honestBlockResponse(height)
    })
    await p2p.handle(TX_FETCH_PROTOCOL, (req) => {
      const hashes = decodeTxFetchRequest(req, this.genesis.params.block.maxTxs) ?? []
      return encodeTxFetchResponse(hashes.map((h) => this.knownTxs.get(bytesKey(h)) ?? new Uint8Array(0)))
    })
    await direct.subscribe(CONSENSUS_PROTOCOL, (data, from) => {
      this.onConsensus(data, from)
      return 'accept'
    })
    await direct.subscribe(TX_BATCH_PROTOCOL, () => 'ignore')
    follower.onBlock((b) => this.onFollowed(b))
    const follow = () => {
      if (!this.stopped) follower.catchUp().catch((e: Error) => this.fail(`following the chain: ${e.message}`))
    }
    this.timers.push(setInterval(follow, 100))
    this.timers.push(setInterval(() => this.resend(), 1_000))
  }

  /** Peer id of validator `i` of the genesis (its `node{i}` entry). */
  peerIdOf(i: number): string {
    const v = this.genesis.validators.find((x) => x.name === `node${i}`)
    if (v === undefined) throw new Error(`no validator node${i}`)
    return v.peerId
  }

  get peerId(): string {
    return this.p2p.peerId
  }

  /** The honest block response for a height: the followed block, or "none". */
  honestBlockResponse(height: number): Uint8Array {
    const b = this.follower.block(height)
    return encodeBlockResponse(b?.storedBytes, b?.certificateBytes)
  }

  /** True when the attacker proposes at (height, round). */
  isProposer(height: number, round: number): boolean {
    return bytesEqual(proposerOf(this.validatorSet, height, round).address, this.address)
  }

  /** Makes transactions available to peers on `/tally/txs/1` (as a proposer serves its block's transactions). */
  serveTxs(txs: readonly DecodedTransaction[]): void {
    for (const t of txs) this.knownTxs.set(bytesKey(t.hash), t.bytes)
  }

  /** Sends consensus-protocol bytes to the given peers (default every connected peer); counts what was queued. */
  send(bytes: Uint8Array, to?: readonly string[]): number {
    let n = 0
    for (const peer of to ?? this.p2p.peers()) if (this.direct.sendTo(peer, CONSENSUS_PROTOCOL, bytes)) n++
    return n
  }

  /** Signs a vote with the validator key, with no safety check (conflicting votes included). */
  signVote(type: VoteType, height: number, round: number, valueId: Uint8Array | null): SignedVote {
    const vote = { type, height, round, valueId, validator: this.address }
    return { ...vote, signature: sign(this.secretKey, voteSignBytes(this.genesis.chainId, vote)) }
  }

  /** Signs a proposal with the validator key, for any round (its own or not). */
  signProposal(height: number, round: number, valueId: Uint8Array, polRound = -1): SignedProposal {
    const p = { height, round, valueId, polRound, proposer: this.address }
    return { ...p, signature: sign(this.secretKey, proposalSignBytes(this.genesis.chainId, p)) }
  }

  /**
   * The header an honest proposer would build at the followed tip for these transactions (state root included,
   * computed on the followed state with signature checks, as honest validators compute it).
   */
  async buildHeader(txs: readonly DecodedTransaction[]): Promise<BlockHeader> {
    const tip = this.follower.tip
    const height = this.follower.height + 1
    const { stateRoot } = await this.follower.execute(txs)
    return {
      chainId: this.genesis.chainId,
      height,
      time: Math.max(Date.now(), (tip?.stored.block.header.time ?? 0) + 1),
      previousBlockHash: tip?.hash ?? ZERO_HASH,
      txRoot: txRoot(txs.map((t) => t.hash)),
      stateRoot,
      proposer: this.address,
      validatorSetHash: this.validatorSet.hash,
      nextValidatorSetHash: this.validatorSet.hash,
      evidenceRoot: txRoot([]),
      lastCommitHash: tip === undefined ? ZERO_HASH : commitHash(tip.certificate),
    }
  }

  /** Stops its timers and p2p. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    this.direct.stop()
    await this.p2p.stop()
    await new Promise<void>((r) => this.logStream.end(() => r()))
  }

  private fail(message: string): void {
    if (this.errors.length < 20) this.errors.push(message)
    this.log.error({ err: message }, 'attacker error')
  }

  // ---- following and proposing -----------------------------------------------------------------------------

  private onFollowed(b: FollowedBlock): void {
    for (const key of [...this.signed.keys()]) if (Number(key.split('/')[0]) <= b.height) this.signed.delete(key)
    for (const key of [...this.seen.keys()]) if (Number(key.split('/')[0]) <= b.height) this.seen.delete(key)
    for (const h of [...this.ownProposals.keys()]) if (h <= b.height) this.ownProposals.delete(h)
    if (b.height === this.follower.height) void this.propose(b.height + 1).catch((e: Error) => this.fail(`proposing at ${b.height + 1}: ${e.message}`))
  }

  private async propose(height: number): Promise<void> {
    const plan = this.behaviour.plan
    if (plan === null || this.ownProposals.has(height)) return
    const rounds: number[] = []
    for (let r = 0; r < ROUNDS_AHEAD; r++) if (this.isProposer(height, r)) rounds.push(r)
    if (rounds.length === 0) return
    this.ownProposals.set(height, [])
    const chosen = await plan(height, rounds)
    if (chosen === undefined || this.stopped || this.follower.height !== height - 1) return
    this.serveTxs(chosen.txs)
    const header = await this.buildHeader(chosen.txs)
    if (this.stopped || this.follower.height !== height - 1) return
    const valueId = blockHash(header)
    const messages = rounds.map((round) => ({
      proposal: this.signProposal(height, round, valueId),
      header,
      txHashes: chosen.txs.map((t) => t.hash),
      evidence: [],
      lastCommit: this.follower.tip?.certificate ?? null,
    }))
    this.ownProposals.set(height, messages)
    this.proposalTargets.set(height, chosen.to)
    this.sent.push({ height, rounds, header, valueId, txs: chosen.txs, to: chosen.to ?? 'all' })
    this.log.info({ height, rounds, block: toHex(valueId), txs: chosen.txs.length, to: chosen.to ?? 'all' }, 'proposing')
    for (const m of messages) {
      this.send(encodeProposalMessage(m), chosen.to)
      if (this.behaviour.vote) this.castVote('prevote', height, m.proposal.round, valueId)
    }
  }

  /** Gossip repair: its proposals and votes of unfinished heights go out again every second. */
  private resend(): void {
    if (this.stopped) return
    this.resends++
    const tip = this.follower.height
    for (const [h, messages] of this.ownProposals) {
      if (h <= tip) continue
      for (const m of messages) this.send(encodeProposalMessage(m, this.resends), this.proposalTargets.get(h))
    }
    for (const v of this.signed.values()) if (v.height > tip) this.send(encodeVoteMessage(v, this.resends))
  }

  // ---- voting -------------------------------------------------------------------------------------------

  private onConsensus(data: Uint8Array, from: string): void {
    if (this.stopped) return
    const m = decodeConsensusGossip(data, this.genesis.params.block.maxTxs)
    if (!m.ok) {
      this.fail(`honest peer ${from} sent an undecodable consensus message: ${m.error.reason}`)
      return
    }
    if (m.value.kind === 'evidence') return
    const tip = this.follower.height
    const height = m.value.kind === 'proposal' ? m.value.message.proposal.height : m.value.vote.height
    if (height > tip + 1) void this.follower.catchUp().catch((e: Error) => this.fail(`following the chain: ${e.message}`))
    if (m.value.kind === 'vote') this.notePrevote(m.value.vote)
    if (height <= tip || height > tip + 3 || !this.behaviour.vote) return
    if (m.value.kind === 'proposal') {
      const p = m.value.message.proposal
      if (bytesEqual(p.proposer, this.address) || !bytesEqual(proposerOf(this.validatorSet, p.height, p.round).address, p.proposer)) return
      this.castVote('prevote', p.height, p.round, p.valueId)
      return
    }
    const v = m.value.vote
    if (bytesEqual(v.validator, this.address) || findValidator(this.validatorSet, v.validator) === undefined) return
    const key = `${v.height}/${v.round}/${v.type}`
    let votes = this.seen.get(key)
    if (votes === undefined) {
      votes = new Map()
      this.seen.set(key, votes)
    }
    if (!votes.has(toHex(v.validator))) votes.set(toHex(v.validator), v.valueId === null ? 'nil' : toHex(v.valueId))
    this.castVote(v.type, v.height, v.round, v.valueId)
    if (v.type === 'prevote') this.precommitOnPolka(v.height, v.round)
  }

  private notePrevote(v: SignedVote): void {
    if (v.type !== 'prevote' || bytesEqual(v.validator, this.address) || v.height < this.follower.height - 5) return
    let byHeight = this.prevotes.get(v.height)
    if (byHeight === undefined) {
      byHeight = new Map()
      this.prevotes.set(v.height, byHeight)
      for (const h of [...this.prevotes.keys()]) if (h < v.height - 100) this.prevotes.delete(h)
    }
    const key = `${v.round}/${toHex(v.validator)}`
    if (!byHeight.has(key)) byHeight.set(key, v.valueId === null ? 'nil' : toHex(v.valueId))
  }

  /**
   * Which validators prevoted the decided block, in the round that decided it, at each of `heights` (blocks the
   * follower holds): by validator name (`node{i}`), the heights where it did. A validator that stops validating
   * proposals (it prevotes nil, or nothing) still sees blocks decided by the others, and shows up here.
   */
  prevotedDecided(heights: readonly number[]): Map<string, number[]> {
    const out = new Map<string, number[]>(this.genesis.validators.map((v) => [v.name, []]))
    for (const h of heights) {
      const b = this.follower.block(h)
      if (b === undefined) continue
      for (const v of this.genesis.validators) {
        if (this.prevotes.get(h)?.get(`${b.certificate.round}/${toHex(v.address)}`) === toHex(b.hash)) out.get(v.name)!.push(h)
      }
    }
    return out
  }

  /** Signs and sends a vote unless it already voted in this step (the default behaviour never equivocates). */
  private castVote(type: VoteType, height: number, round: number, valueId: Uint8Array | null): void {
    const key = `${height}/${round}/${type}`
    if (this.signed.has(key)) return
    const vote = this.signVote(type, height, round, valueId)
    this.signed.set(key, vote)
    this.send(encodeVoteMessage(vote))
    if (type === 'prevote') this.precommitOnPolka(height, round)
  }

  /** Precommits a value (or nil) once more than two thirds prevoted it in this round, its own prevote included. */
  private precommitOnPolka(height: number, round: number): void {
    const own = this.signed.get(`${height}/${round}/prevote`)
    const tally = new Map<string, bigint>()
    const count = (value: string, power: number) => tally.set(value, (tally.get(value) ?? 0n) + BigInt(power))
    for (const [voter, value] of this.seen.get(`${height}/${round}/prevote`) ?? []) {
      const validator = this.validatorSet.validators[this.validatorSet.indexByAddress[voter]!]!
      count(value, validator.power)
    }
    if (own) count(own.valueId === null ? 'nil' : toHex(own.valueId), findValidator(this.validatorSet, this.address)!.power)
    for (const [value, power] of tally) {
      if (!isTwoThirds(this.validatorSet, power)) continue
      const valueId = value === 'nil' ? null : Uint8Array.from(Buffer.from(value, 'hex'))
      this.castVote('precommit', height, round, valueId)
      return
    }
  }
}
