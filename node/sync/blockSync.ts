import type { CommitCertificate } from '../../consensus/index.js'
import { bytesEqual } from '../../crypto/bytes.js'
import type { Result } from '../../crypto/result.js'
import type { DecodeResult } from '../../crypto/decodeError.js'
import type { CheckedBlock, SyncedBlockFault } from '../host/consensusHost.js'
import type { Logger } from '../logger.js'
import type { RequestHandler, RequestResult } from '../p2p/p2p.js'
import { DISCONNECT_SCORE } from '../p2p/scoring.js'
import type { ChainStore } from '../storage/chainStore.js'
import type { StoredBlock } from '../storage/storedBlock.js'
import {
  MAX_RANGE_RESPONSE_BYTES,
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
  maxRangeResponseBytes,
  type ServedBlock,
} from './blockSyncMessages.js'

/**
 * Block sync: a node that is behind (after downtime, or started with an empty data/) fetches blocks with their
 * commit certificates from peers and hands each to the consensus host, which applies it. It also serves its own
 * blocks and tip to peers.
 *
 * It trusts signatures, not peers:
 *  - a peer's tip counts only with the certificate that decided it, verified against the validator set, so a peer
 *    that claims to be far ahead cannot make this node chase it or report itself catching up. A tip beyond the
 *    validator sets this node knows, signed by too few of them to tell (the set changed since), counts once the peer
 *    also serves the next height with a certificate this node verifies: a liar can lead a node that is behind anyway
 *    no further than the true tip;
 *  - a fetched block counts only once its certificate verifies for it at that height and the host's checks pass
 *    (it extends the tip, the certificate it carries for the previous height is valid and the one its header names,
 *    its transactions are the ones the header commits to). A peer whose response fails any of this is penalized
 *    and the next peer is asked at once, so one liar can neither stall sync nor be asked first again and again; of
 *    a range it served, the blocks before the first wrong one are kept (each stands on its own certificate). A block
 *    fetched for a height the chain reached without it (consensus got there first) is compared with the block
 *    committed there, and a peer that served another is penalized all the same. A block whose certificate does not
 *    verify, or a certified one that fails the host's checks or differs from the block committed there, disconnects
 *    its peer at once: its server checked the same before storing the block, so no honest peer serves one.
 *
 * Blocks are fetched ahead of the one being applied, by ranges (`/tally/blocks/1`: up to `range.blocks` consecutive
 * heights in one response of about `range.bytes`, so a short block costs no stream of its own), from the peers in
 * turn to spread the load, with at most `range.inFlight` requests out and `range.aheadBytes` of blocks held or
 * asked for at once. A peer that does not serve ranges is asked for single heights (`/tally/block/1`, still served).
 * A block is applied with `hold` when the next height's block is already at hand: the host may then write the heights
 * applied back to back in one synced write, and each sync round ends by having it commit what it holds.
 *
 * Tips are polled (one stream per peer) when there is a reason: a peer not polled yet (at once when it connects),
 * consensus stuck here for `stuckMs`, the next height wanted (decided here but not held), a sync round that just moved
 * the tip (the peers kept deciding meanwhile), or `pollMs` since the last poll. A peer whose verified consensus
 * messages are of a height beyond this node's next is polled alone, once per height it so claims: a validator may
 * sign messages of any height, and its claims must not make this node poll every peer at every check. A peer working
 * at a height committed the one below it, so one whose tip answer does not reach that is penalized. A height wanted
 * beyond the next (its messages were dropped, their validator set not known yet) starts no poll: its sender is polled
 * as above, and the height is fetched as soon as it is the next and a verified tip holds it. Every `intervalMs`, and at
 * once after such a round or when the next height is wanted, it checks and syncs when a verified tip is at least two
 * heights ahead, or one ahead while stuck, wanting that height or right after such a round. `catchingUp` is true while
 * a verified tip is two or more heights ahead.
 */

export const STATUS_PROTOCOL = '/tally/status/1'
export const BLOCK_PROTOCOL = '/tally/block/1'
export const BLOCKS_PROTOCOL = '/tally/blocks/1'

/**
 * Penalty for a block or tip response that is malformed, a tip its certificate does not prove, or no block below a
 * tip the peer claimed anew (two strikes disconnect a peer).
 */
const BAD_RESPONSE_PENALTY = 25
/**
 * Penalty for an answer that proves its peer malicious: a tip certificate that fails against a validator set this node
 * knows, a certificate that does not decide that block at that height (a forged signature, another height's block or
 * certificate), a certified block whose body is not the one its header commits to (it does not link by hash to this
 * chain, or its carried last commit, transactions or evidence differ), or another block than the one committed at that
 * height. A node serves only blocks and certificates it checked all of this for before it stored them, so no honest
 * peer serves one: it is disconnected at once.
 */
const FORGED_ANSWER_PENALTY = DISCONNECT_SCORE
/**
 * Penalty for a tip answer below the height a peer's own consensus messages showed it had committed (a peer restarted
 * with its `data/` deleted could, in a rare race, answer so honestly: one such answer never disconnects it).
 */
const UNFOUNDED_CLAIM_PENALTY = 10
/** How long a peer has to answer a tip poll (and, for a tip this node cannot judge, the request that proves it). */
const TIP_TIMEOUT_MS = 2_000
/**
 * Default of {@link BlockSyncOptions.serveBytesPerSecond}: bytes of blocks served to one peer per second, on average,
 * by range and single-height requests together; a peer may take twice that at once. A request costs its sender a few
 * bytes and this node a read of up to 8 MiB of blocks and their encoding (~10 ms of CPU), so a peer that resets each
 * request's stream as soon as it is sent could keep this node reading at no cost to itself; past its budget, a peer's
 * next request waits until it is paid back. A node catching up takes a few MiB a second (resync of a loaded chain:
 * ~5-10 MB a second from all its peers together).
 */
export const SERVE_BYTES_PER_SECOND = 32 * 1024 * 1024
/**
 * Requests for blocks of one peer waiting or being served at once. A node syncing from this one has up to 4 ranges out
 * to it, or, asking one height per request, up to 4 × `window` (8) single heights, and a proof of a tip; beyond the
 * bound a request is answered busy, an error its sender counts against no one ({@link BlockSync.serveInTurn}).
 */
const MAX_WAITING_REQUESTS = 64
/** How long a peer that let a block request time out is asked after the others ({@link BlockSync.stalled}). */
const STALL_MEMORY_MS = 60_000
/** Range requests served at once per peer (a syncing node has `range.inFlight` out, 3 by default, and a retry). */
const RANGE_STREAMS_PER_PEER = 4

/**
 * What a tip certificate proves: that the chain reached its height (`proven`: it verifies against the validator set
 * of its height, or is signed by more than a third of the latest set this node knows), nothing (`invalid`: malformed,
 * or a signature that does not verify), or nothing this node can tell (`unknown`: a height beyond the sets it knows,
 * signed by a third or less of the latest of them; after validator-set changes that it has not synced through yet,
 * an honest tip looks like this, and so does a certificate signed by keys it has never seen).
 */
export type TipVerdict = 'proven' | 'invalid' | 'unknown'

export interface BlockSyncOptions {
  readonly intervalMs: number
  /** Longest time between two polls of the peers' tips when nothing else calls for one (default 10 × intervalMs). */
  readonly pollMs?: number
  readonly stuckMs: number
  /** Single-height requests out at once to a peer that does not serve ranges. */
  readonly window: number
  readonly limits: { readonly maxBytes: number; readonly maxTxs: number }
  /**
   * Range requests: most heights per request (default 32, at most 64), the byte budget a response is asked to keep
   * to beyond its first block (default 1 MiB: a response crosses the connection's flow control in a few windows, well
   * within the request deadlines even on a busy node), requests out at once (default 3), and the most bytes of blocks
   * fetched ahead or asked for (default 4 × bytes; the block being waited for is always asked for).
   */
  readonly range?: { readonly blocks?: number; readonly bytes?: number; readonly inFlight?: number; readonly aheadBytes?: number }
  /** Bytes of blocks served to one peer per second on average (default {@link SERVE_BYTES_PER_SECOND}). */
  readonly serveBytesPerSecond?: number
}

/** What block sync needs of the p2p layer ({@link P2p} provides it; simulations a transport of their own). */
export interface SyncTransport {
  peers(): string[]
  request(peer: string, protocol: string, request: Uint8Array, options: { timeoutMs: number; maxResponseBytes: number }): Promise<RequestResult>
  handle(protocol: string, handler: RequestHandler, options?: { readonly maxInboundStreams?: number }): Promise<void>
  penalize(peer: string, points: number, reason: string): void
}

export interface BlockSyncDependencies {
  readonly p2p: SyncTransport
  readonly chain: ChainStore
  readonly logger: Logger
  /** The committed tip's height (served to peers, and the height their tips are compared with). */
  readonly tipHeight: () => number
  /**
   * The height blocks are applied up to: the tip, or beyond it the heights `apply` took with `hold` and has not
   * committed yet (default: the tip).
   */
  readonly appliedHeight?: () => number
  readonly heightStartedAtMs: () => number
  readonly now: () => number
  /** Arms the periodic check; returns a function that disarms it. */
  readonly every: (ms: number, f: () => void) => () => void
  /** Resolves after `ms` (on the clock of {@link now}): how long blocks served to a peer past its budget wait. */
  readonly sleep: (ms: number) => Promise<void>
  /** What a peer's tip certificate proves ({@link TipVerdict}). */
  readonly verifyTip: (certificate: CommitCertificate) => TipVerdict
  /**
   * Whether the certificate decides this block at this height, checked on arrival before the block is kept; undefined
   * when this node cannot tell yet (a height whose validator set depends on blocks not applied yet).
   */
  readonly verifyCertified: (height: number, stored: StoredBlock, certificate: CommitCertificate) => boolean | undefined
  /**
   * The host's checks of a block that is to be the next height (consensus/host `checkSyncedBlock`); `storedBytes` are
   * the bytes `stored` was strictly decoded from.
   */
  readonly check: (
    height: number,
    stored: StoredBlock,
    certificate: CommitCertificate,
    storedBytes: Uint8Array,
  ) => Promise<Result<CheckedBlock, SyncedBlockFault>>
  /**
   * Applies a checked block; resolves true once it is committed. With `hold` (the next height's block is at hand and
   * is applied next), the host may instead resolve once the block is applied and commit it with the heights after it,
   * in one write: by the next block applied without `hold`, or by `settle`.
   */
  readonly apply: (block: CheckedBlock, hold: boolean) => Promise<boolean>
  /** Commits what `apply` took with `hold` and has not committed yet. */
  readonly settle?: () => Promise<void>
}

interface Fetched extends ServedBlock {
  readonly peer: string
}

/**
 * What a fetch delivers for one height: the block; `again` when it is to be asked for anew (a response that ended
 * before it, within its byte budget or at a wrong block); undefined when no peer served it.
 */
type Delivery = Fetched | 'again' | undefined

/** A height asked for: what arrives for it, and the bytes it holds once delivered (with its block). */
interface Slot {
  readonly delivery: Promise<Delivery>
  bytes: number
  ready: boolean
}

export class BlockSync {
  private disarm: (() => void) | undefined
  private running = false
  private started = false
  private stopped = false
  /** Verified tips of peers. */
  private readonly peerTips = new Map<string, number>()
  /**
   * Peers whose tip is kept though this node could not judge its certificate, because the peer proved the next height
   * ({@link provesNext}). A poll that such a peer leaves unanswered, or whose proof it does not give in time, drops the
   * tip: it counts only while the peer keeps proving it, so a liar cannot hold this node catching up by proving one
   * height once and then letting every request time out.
   */
  private readonly unjudged = new Set<string>()
  /**
   * Peers polled since they connected, whatever came of it: a peer that is not yet asks for a poll of every peer at the
   * next check. One whose poll failed is not polled again before the next poll of all: a peer that never answers must
   * not make every check poll every peer.
   */
  private readonly polled = new Set<string>()
  /**
   * Peers that let a block request time out, with when: asked after the others for `STALL_MEMORY_MS`, or until they
   * serve a block, so that a peer that stalls every request does not cost the height being waited for a timeout at
   * each of its turns.
   */
  private readonly stalled = new Map<string, number>()
  /**
   * Peers that answered "no block" for a height below their polled tip, since that poll. A certificate proves the chain
   * reached a tip, not that the peer still holds its blocks: an honest peer restarted with its `data/` deleted answers
   * so until it has synced again. The first such answer only drops the peer's tip (it is polled again); one that comes
   * again after a later poll, where the peer claimed that tip anew, is penalized. Peer to the poll count of its first.
   */
  private readonly unserved = new Map<string, number>()
  /** Peers that do not serve ranges: asked for single heights. */
  private readonly singles = new Set<string>()
  /**
   * Per peer, the highest height its verified consensus messages were of, beyond this node's next height when they
   * came: it works at that height, so it committed the one below.
   */
  private readonly claimed = new Map<string, number>()
  /** Claims not checked yet, by peer: each such peer is polled once, at the next check. */
  private readonly unchecked = new Map<string, number>()
  /** Heights to fetch as soon as a verified tip holds them and they are next (see {@link request}). */
  private readonly wanted = new Set<number>()
  /** Of those, the heights decided here: polled for at every check until held. */
  private readonly decided = new Set<number>()
  private lastPollAt = -Infinity
  /** Set when a sync round moved the tip: the peers kept deciding meanwhile, and are looked at again at once. */
  private resynced = false
  /** Set when a height was wanted during a round: another round follows at once. */
  private rerun = false
  /** Per peer, what is left of its budget of bytes served (negative: owed) and when it was last topped up. */
  private readonly served = new Map<string, { bytes: number; at: number }>()
  /** Per peer with requests for blocks being served: the last one's end, and how many wait or run. */
  private readonly serving = new Map<string, { last: Promise<void>; waiting: number }>()
  /** Turns the first peer asked from one request to the next, to spread the load. */
  private turn = 0
  /** Tip polls made, for tests and metrics. */
  polls = 0

  constructor(
    private readonly o: BlockSyncOptions,
    private readonly d: BlockSyncDependencies,
  ) {}

  /** True while a peer's verified tip is two or more blocks above this node's. */
  get catchingUp(): boolean {
    return this.bestPeerHeight >= this.d.tipHeight() + 2
  }

  /** The best verified tip height of the connected peers. */
  get bestPeerHeight(): number {
    let best = 0
    for (const h of this.peerTips.values()) best = Math.max(best, h)
    return best
  }

  private get rangeBlocks(): number {
    return Math.max(1, Math.min(this.o.range?.blocks ?? 32, 64))
  }

  private get rangeBytes(): number {
    return Math.max(0, Math.min(this.o.range?.bytes ?? 1024 * 1024, MAX_RANGE_RESPONSE_BYTES))
  }

  async start(): Promise<void> {
    await this.d.p2p.handle(STATUS_PROTOCOL, async () => {
      const tip = this.d.tipHeight()
      return encodeTipResponse(tip, tip > 0 ? await this.d.chain.certificateBytes(tip) : undefined)
    })
    await this.d.p2p.handle(BLOCK_PROTOCOL, async (req, from) => {
      const height = decodeHeightRequest(req)
      if (height === undefined || height < 1) return encodeBlockResponse(undefined, undefined)
      return this.serveInTurn(from, async () => encodeBlockResponse(await this.d.chain.blockBytes(height), await this.d.chain.certificateBytes(height)))
    })
    // a range response holds up to MAX_RANGE_RESPONSE_BYTES and a block: few at once per peer bound what one costs
    await this.d.p2p.handle(BLOCKS_PROTOCOL, (req, from) => this.serveInTurn(from, () => this.serveRange(req)), {
      maxInboundStreams: RANGE_STREAMS_PER_PEER,
    })
    this.disarm = this.d.every(this.o.intervalMs, () => void this.tick())
    this.started = true
    void this.tick()
  }

  stop(): void {
    this.stopped = true
    this.disarm?.()
  }

  /**
   * A peer connected: its tip is asked for now rather than at the next periodic check, so a node that starts behind
   * (restarted, or with its `data/` wiped) begins to catch up as soon as a peer is there. A peer that connects during
   * a sync round is polled alone and joins the round's fetches once its tip is verified. Before {@link start}, nothing:
   * the start polls every connected peer.
   */
  peerConnected(peer: string): void {
    // what the peer claimed over an earlier connection binds it no more (it may have restarted with no blocks)
    this.claimed.delete(peer)
    this.unchecked.delete(peer)
    this.polled.delete(peer)
    if (!this.started || this.stopped || this.peerTips.has(peer)) return
    if (this.running) void this.pollPeer(peer)
    else void this.tick()
  }

  /**
   * A peer sent a verified consensus message of `height`: if that is beyond this node's next height and beyond what
   * the peer claimed so far, and its verified tip does not show it already, the peer is polled at the next check.
   */
  notePeerHeight(peer: string, height: number): void {
    if (height <= this.d.tipHeight() + 1 || height <= (this.claimed.get(peer) ?? 0)) return
    this.claimed.set(peer, height)
    if ((this.peerTips.get(peer) ?? -1) >= height - 1) return
    this.unchecked.set(peer, height)
  }

  /**
   * Fetches a height this node's consensus cannot decide on its own. The next height is one it saw decided (2f+1
   * precommits) but does not hold: the peers that decided it hold it, and they are polled at every check until one
   * serves it. A height beyond the next is one whose messages it had to drop (their validator set not known yet): it
   * starts no poll (the peer that sent them is polled once, {@link notePeerHeight}), and is fetched without waiting to
   * be stuck once it is the next height and a verified tip holds it. A height already wanted starts nothing new.
   */
  request(height: number): void {
    const tip = this.d.tipHeight()
    if (height <= tip) return
    this.wanted.add(height)
    if (height > tip + 1 || this.decided.has(height)) return
    this.decided.add(height)
    if (this.running) this.rerun = true
    else void this.tick()
  }

  private get serveRate(): number {
    return this.o.serveBytesPerSecond ?? SERVE_BYTES_PER_SECOND
  }

  /**
   * Serves one request of `peer` for blocks once its earlier ones are served (one at a time per peer) and it owes no
   * bytes ({@link SERVE_BYTES_PER_SECOND}), and charges the answer's bytes to it. Past {@link MAX_WAITING_REQUESTS}
   * waiting, a request is answered busy at once (the p2p layer's error answer, which its sender takes for no fault and
   * no missing block): a peer that resets each stream as soon as its request is sent frees its stream slot while the
   * request is still being served, so the streams a peer may hold open do not bound how many of its requests wait.
   */
  private async serveInTurn(peer: string, make: () => Promise<Uint8Array>): Promise<Uint8Array> {
    let line = this.serving.get(peer)
    if (line === undefined) {
      line = { last: Promise.resolve(), waiting: 0 }
      this.serving.set(peer, line)
    }
    if (line.waiting >= MAX_WAITING_REQUESTS) throw new Error(`busy: ${line.waiting} requests of this peer for blocks wait already`)
    line.waiting++
    const turn = line.last.then(async () => {
      const owed = -this.topUp(peer).bytes
      if (owed > 0) await this.d.sleep(Math.ceil((owed / this.serveRate) * 1000))
      const answer = await make()
      this.topUp(peer).bytes -= answer.byteLength
      return answer
    })
    const l = line
    l.last = turn.then(
      () => undefined,
      () => undefined,
    )
    try {
      return await turn
    } finally {
      if (--l.waiting === 0 && this.serving.get(peer) === l) this.serving.delete(peer)
    }
  }

  /** A peer's budget, topped up for the time since it was last (at most twice a second's worth). */
  private topUp(peer: string): { bytes: number; at: number } {
    const now = this.d.now()
    const rate = this.serveRate
    const full = 2 * rate
    let b = this.served.get(peer)
    if (b === undefined) {
      // forgotten once it holds a full budget: kept for peers that took blocks lately only
      for (const [id, x] of this.served) if (x.bytes + (Math.max(0, now - x.at) / 1000) * rate >= full) this.served.delete(id)
      b = { bytes: full, at: now }
      this.served.set(peer, b)
    }
    b.bytes = Math.min(full, b.bytes + (Math.max(0, now - b.at) / 1000) * rate)
    b.at = now
    return b
  }

  /**
   * Answers a range request with the blocks this node holds from its first height on: up to its count, and beyond the
   * first block only while they fit the request's byte budget (clamped to MAX_RANGE_RESPONSE_BYTES); none for a
   * request that does not decode.
   */
  private async serveRange(req: Uint8Array): Promise<Uint8Array> {
    const r = decodeRangeRequest(req)
    const items: { stored: Uint8Array; certificate: Uint8Array }[] = []
    if (r === undefined) return encodeRangeResponse(items)
    const budget = Math.min(r.maxBytes, MAX_RANGE_RESPONSE_BYTES)
    const last = Math.min(r.from + r.count - 1, this.d.tipHeight())
    let bytes = 0
    for (let h = r.from; h <= last; h++) {
      const [stored, certificate] = await Promise.all([this.d.chain.blockBytes(h), this.d.chain.certificateBytes(h)])
      if (stored === undefined || certificate === undefined) break
      bytes += stored.byteLength + certificate.byteLength
      if (items.length > 0 && bytes > budget) break
      items.push({ stored, certificate })
    }
    return encodeRangeResponse(items)
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return
    this.running = true
    const resynced = this.resynced
    this.resynced = false
    try {
      const stuck = this.d.now() - this.d.heightStartedAtMs() > this.o.stuckMs
      const unknown = this.d.p2p.peers().some((p) => !this.polled.has(p))
      if (stuck || unknown || resynced || this.decided.size > 0 || this.d.now() - this.lastPollAt >= (this.o.pollMs ?? 10 * this.o.intervalMs)) {
        await this.pollTips()
      } else if (this.unchecked.size > 0) {
        await this.pollClaimants()
      }
      const tip = this.d.tipHeight()
      const best = this.bestPeerHeight
      const wantedNext = this.wanted.has(tip + 1)
      // Right after a round that moved the tip, a height one ahead is fetched too: its messages went by while this node
      // was behind (beyond the heights it admits, or whose validator sets it knew), and consensus here would wait for
      // them until stuck.
      if (best >= tip + 2 || (best >= tip + 1 && (stuck || wantedNext || resynced))) {
        await this.syncTo(best)
        this.resynced = this.d.tipHeight() > tip
      }
      for (const h of [...this.wanted]) {
        if (h > this.d.tipHeight()) continue
        this.wanted.delete(h)
        this.decided.delete(h)
      }
    } catch (e) {
      this.d.logger.warn({ err: (e as Error).message }, 'block sync round failed')
    } finally {
      this.running = false
      if ((this.resynced || this.rerun) && !this.stopped) {
        this.rerun = false
        void this.tick()
      }
    }
  }

  private async pollTips(): Promise<void> {
    this.lastPollAt = this.d.now()
    this.polls++
    const claims = new Map(this.unchecked)
    this.unchecked.clear()
    const peers = this.d.p2p.peers()
    for (const id of [...this.peerTips.keys()]) if (!peers.includes(id)) this.peerTips.delete(id)
    for (const id of [...this.unserved.keys()]) if (!peers.includes(id)) this.unserved.delete(id)
    for (const id of [...this.claimed.keys()]) if (!peers.includes(id)) this.claimed.delete(id)
    for (const id of [...this.unjudged]) if (!peers.includes(id)) this.unjudged.delete(id)
    for (const id of [...this.polled]) if (!peers.includes(id)) this.polled.delete(id)
    for (const [id, at] of [...this.stalled]) if (!peers.includes(id) || this.d.now() - at >= STALL_MEMORY_MS) this.stalled.delete(id)
    // a peer found not to serve ranges is tried again after each poll (the failure may have been passing)
    this.singles.clear()
    await Promise.all(peers.map((peer) => this.pollPeer(peer, claims.get(peer))))
  }

  /** Polls the peers whose claims are not checked yet, each alone (the other peers' tips are not asked). */
  private async pollClaimants(): Promise<void> {
    const claims = [...this.unchecked]
    this.unchecked.clear()
    const peers = this.d.p2p.peers()
    await Promise.all(claims.filter(([peer]) => peers.includes(peer)).map(([peer, claim]) => this.pollPeer(peer, claim)))
  }

  /**
   * Asks one peer for its tip and keeps it once its certificate verifies; a malformed or unproven answer is penalized.
   * A tip this node cannot judge (`unknown`) counts once the peer proves it is ahead ({@link provesNext}), and for as
   * long as every later poll of the peer proves it again in time ({@link unjudged}). With
   * `claim`, the height of the peer's consensus messages that asked for the poll: a tip below the height under it is
   * penalized.
   */
  private async pollPeer(peer: string, claim?: number): Promise<void> {
    this.polled.add(peer)
    const deadline = this.d.now() + TIP_TIMEOUT_MS
    const r = await this.d.p2p.request(peer, STATUS_PROTOCOL, encodeHeightRequest(0), { timeoutMs: TIP_TIMEOUT_MS, maxResponseBytes: 64 * 1024 })
    if (!r.ok) return this.dropUnjudged(peer)
    const t = decodeTipResponse(r.value)
    if (t === undefined) {
      this.d.p2p.penalize(peer, BAD_RESPONSE_PENALTY, 'malformed tip response')
      return
    }
    const verdict = t.certificate === null ? 'proven' : this.d.verifyTip(t.certificate)
    const proven = verdict === 'unknown' ? await this.provesNext(peer, deadline) : verdict === 'proven'
    if (proven === undefined) return this.dropUnjudged(peer)
    if (!proven) {
      // a tip kept from an earlier poll may have been one this node could not judge: it is followed no longer
      this.peerTips.delete(peer)
      this.unjudged.delete(peer)
      // a certificate that fails against a set this node knows is forged (a node keeps only certificates it verified);
      // a tip it cannot judge whose peer does not serve the next height certified may be a fault of the moment
      const points = verdict === 'invalid' ? FORGED_ANSWER_PENALTY : BAD_RESPONSE_PENALTY
      this.d.logger.warn({ peer, height: t.height, points }, 'a peer claimed a tip its certificate does not prove')
      this.d.p2p.penalize(peer, points, verdict === 'invalid' ? 'forged tip certificate' : 'unproven tip')
      return
    }
    this.peerTips.set(peer, t.height)
    if (verdict === 'unknown') this.unjudged.add(peer)
    else this.unjudged.delete(peer)
    if (claim !== undefined && t.height < claim - 1) {
      this.d.logger.warn({ peer, height: t.height, claim }, 'a peer sent consensus messages of a height its tip does not reach')
      this.d.p2p.penalize(peer, UNFOUNDED_CLAIM_PENALTY, `tip ${t.height} below its messages of height ${claim}`)
    }
  }

  /** A poll the peer did not answer in time: a tip kept on its proofs alone ({@link unjudged}) counts no longer. */
  private dropUnjudged(peer: string): void {
    if (!this.unjudged.delete(peer)) return
    this.peerTips.delete(peer)
    this.d.logger.debug({ peer }, 'a peer stopped proving a tip this node cannot judge: it is followed no longer')
  }

  /**
   * Whether a peer whose tip this node cannot judge is ahead of it: it serves the next height with a certificate that
   * verifies against the validator set of that height, which this node knows. Its tip is then followed: the blocks
   * sync fetches are each checked as they are applied, and applying them moves the sets this node knows forward until
   * tips verify again. A liar gains one request per poll, and is found out as soon as this node holds the true tip.
   * Undefined when the peer did not answer by the poll's deadline, which the tip request shares (a poll waits for
   * every peer, so a peer that stalls delays it no longer than a slow tip answer would).
   */
  private async provesNext(peer: string, deadline: number): Promise<boolean | undefined> {
    const next = this.d.tipHeight() + 1
    const timeoutMs = deadline - this.d.now()
    if (timeoutMs <= 0) return undefined
    const d = await this.askHeight(peer, next, timeoutMs)
    if (d === undefined) return undefined
    return d.ok && d.value !== null && this.d.verifyCertified(next, d.value.stored, d.value.certificate) === true
  }

  /**
   * Fetches the blocks of heights `from` to `from + count - 1` (as many of the first as one response carries) with
   * their certificates, from the peers whose verified tip holds `from`, starting at the next peer in turn (to spread
   * the load) and moving on at once past any that fails or lies. `skip` names peers already found wrong for
   * `from`. Empty when no peer served `from`.
   */
  private async fetchRange(from: number, count: number, skip: ReadonlySet<string> = new Set()): Promise<Fetched[]> {
    const holders = [...this.peerTips.entries()]
      .filter(([p, h]) => h >= from && !skip.has(p))
      .map(([p]) => p)
      .sort()
    const first = this.turn++
    const turned = holders.map((_, k) => holders[(first + k) % holders.length]!)
    // in turn, the peers that let a request time out lately after the others
    const candidates = [...turned.filter((p) => !this.isStalled(p)), ...turned.filter((p) => this.isStalled(p))]
    for (let k = 0; k < candidates.length; k++) {
      const peer = candidates[k]!
      const upTo = Math.min(count, (this.peerTips.get(peer) ?? from) - from + 1)
      if (upTo < 1) continue
      if (!this.singles.has(peer)) {
        const got = await this.requestRange(peer, from, upTo)
        if (got !== 'no_ranges') {
          if (got.length > 0) return got
          continue
        }
        this.singles.add(peer)
      }
      const got = await this.requestSingles(peer, from, Math.min(upTo, Math.max(1, this.o.window)))
      if (got.length > 0) return got
    }
    return []
  }

  /**
   * One range request to `peer`: the certified blocks it served from `from` on, up to the first that is not one (the
   * peer is penalized for it); `no_ranges` when the peer does not serve ranges.
   */
  private async requestRange(peer: string, from: number, count: number): Promise<Fetched[] | 'no_ranges'> {
    const request = { from, count, maxBytes: this.rangeBytes }
    const r = await this.d.p2p.request(peer, BLOCKS_PROTOCOL, encodeRangeRequest(request), {
      timeoutMs: 10_000,
      maxResponseBytes: maxRangeResponseBytes(count, request.maxBytes, this.o.limits),
    })
    if (!r.ok) {
      if (r.error.code === 'timeout') this.stalled.set(peer, this.d.now())
      return r.error.code === 'unreachable' && this.d.p2p.peers().includes(peer) ? 'no_ranges' : []
    }
    const d = decodeRangeResponse(r.value, request, this.o.limits)
    if (!d.ok) return this.fault(peer, from, `malformed block response: ${d.error.reason}`, [])
    if (d.value.length === 0) return this.noBlock(peer, from)
    this.unserved.delete(peer)
    this.stalled.delete(peer)
    const out: Fetched[] = []
    for (const b of d.value) {
      const height = from + out.length
      if (this.d.verifyCertified(height, b.stored, b.certificate) === false)
        return this.fault(peer, height, `block ${height} without a valid certificate for it`, out, FORGED_ANSWER_PENALTY)
      out.push({ ...b, peer })
    }
    return out
  }

  /** Up to `count` blocks from `from` on, asked of `peer` one height per request (`/tally/block/1`), all at once. */
  private async requestSingles(peer: string, from: number, count: number): Promise<Fetched[]> {
    const got = await Promise.all(Array.from({ length: count }, (_, i) => this.requestSingle(peer, from + i)))
    const out: Fetched[] = []
    for (const b of got) {
      if (b === undefined) break
      out.push(b)
    }
    return out
  }

  private async requestSingle(peer: string, height: number): Promise<Fetched | undefined> {
    const d = await this.askHeight(peer, height, 10_000)
    if (d === undefined) return undefined
    if (!d.ok) {
      this.fault(peer, height, `malformed block response: ${d.error.reason}`, [])
      return undefined
    }
    if (d.value === null) {
      this.noBlock(peer, height)
      return undefined
    }
    if (this.d.verifyCertified(height, d.value.stored, d.value.certificate) === false) {
      this.fault(peer, height, `block ${height} without a valid certificate for it`, [], FORGED_ANSWER_PENALTY)
      return undefined
    }
    this.unserved.delete(peer)
    this.stalled.delete(peer)
    return { ...d.value, peer }
  }

  /**
   * One height asked of `peer` (`/tally/block/1`), its answer decoded; undefined when it did not answer (one that let
   * the request time out is {@link stalled}).
   */
  private async askHeight(peer: string, height: number, timeoutMs: number): Promise<DecodeResult<ServedBlock | null> | undefined> {
    const r = await this.d.p2p.request(peer, BLOCK_PROTOCOL, encodeHeightRequest(height), {
      timeoutMs,
      maxResponseBytes: this.o.limits.maxBytes + 256 * 1024,
    })
    if (r.ok) return decodeBlockResponse(r.value, this.o.limits)
    if (r.error.code === 'timeout') this.stalled.set(peer, this.d.now())
    return undefined
  }

  /**
   * A block fetched for a height this node committed meanwhile (consensus got there first, from its WAL or its
   * peers): not needed, yet a peer that served another block than the one committed at that height, or a
   * certificate that does not decide it, lied all the same and is penalized.
   */
  private async checkSkipped(height: number, b: Fetched): Promise<void> {
    try {
      const held = await this.d.chain.blockBytes(height)
      if (held === undefined) return
      if (!bytesEqual(held, b.storedBytes)) this.fault(b.peer, height, `block ${height} is not the block committed at that height`, [], FORGED_ANSWER_PENALTY)
      else if (this.d.verifyCertified(height, b.stored, b.certificate) === false)
        this.fault(b.peer, height, `block ${height} without a valid certificate for it`, [], FORGED_ANSWER_PENALTY)
    } catch (e) {
      this.d.logger.debug({ height, err: (e as Error).message }, 'could not compare a skipped block with the chain')
    }
  }

  /** Whether a peer let a block request time out within {@link STALL_MEMORY_MS} and served none since. */
  private isStalled(peer: string): boolean {
    const at = this.stalled.get(peer)
    return at !== undefined && this.d.now() - at < STALL_MEMORY_MS
  }

  /** A peer whose polled tip is at or above `height` served no block there: see {@link unserved}. */
  private noBlock(peer: string, height: number): Fetched[] {
    const since = this.unserved.get(peer)
    if (since !== undefined && since < this.polls) return this.fault(peer, height, `no block ${height} although its tip is above it`, [])
    if (since === undefined) this.unserved.set(peer, this.polls)
    this.peerTips.delete(peer)
    this.unjudged.delete(peer)
    // polled again at the next check
    this.polled.delete(peer)
    this.d.logger.debug({ peer, height }, 'a peer holds no block below its tip: polling its tip again')
    return []
  }

  /**
   * Penalizes a peer for an answer that is not the certified block it claims to hold (`points`: by default a fault an
   * honest peer could commit, {@link FORGED_ANSWER_PENALTY} for proof of malice); returns what it served before.
   */
  private fault(peer: string, height: number, reason: string, before: Fetched[], points = BAD_RESPONSE_PENALTY): Fetched[] {
    this.d.logger.warn({ peer, height, reason, points }, 'bad block from a peer')
    this.d.p2p.penalize(peer, points, reason)
    return before
  }

  /** The height blocks are applied up to (beyond the tip while applied heights wait to be committed together). */
  private applied(): number {
    return this.d.appliedHeight?.() ?? this.d.tipHeight()
  }

  private async syncTo(target: number): Promise<void> {
    try {
      await this.applyUpTo(target)
    } finally {
      // what was applied with `hold` is committed before the round ends, whatever ended it
      await this.d.settle?.()
    }
  }

  private async applyUpTo(target: number): Promise<void> {
    const started = this.d.now()
    let lastLog = started
    let applied = 0
    let appliedTxs = 0
    const bytes = this.rangeBytes
    const ahead = new FetchAhead(
      { target, blocks: this.rangeBlocks, bytes, inFlight: Math.max(1, this.o.range?.inFlight ?? 3), aheadBytes: this.o.range?.aheadBytes ?? 4 * bytes },
      (from, count) => this.fetchRange(from, count),
      (height, b) => void this.checkSkipped(height, b),
    )
    while (!this.stopped && this.applied() < target) {
      const h = this.applied() + 1
      const wrong = new Set<string>()
      let got = await ahead.take(h)
      let checked: CheckedBlock | undefined
      while (got !== undefined) {
        if (this.applied() >= h) break // consensus got there first (checked below)
        const c = await this.d.check(h, got.stored, got.certificate, got.storedBytes)
        if (c.ok) {
          checked = c.value
          break
        }
        if (c.error.code === 'not_next') break
        // certified, yet not the block that extends this chain (its carried commit or body was tampered with), or a
        // certificate that does not decide it: proof of malice, as the host's checks are those its server passed
        this.d.logger.warn({ peer: got.peer, height: h, reason: c.error.reason, points: FORGED_ANSWER_PENALTY }, 'a synced block was refused')
        this.d.p2p.penalize(got.peer, FORGED_ANSWER_PENALTY, `bad block ${h}: ${c.error.reason}`)
        wrong.add(got.peer)
        got = (await this.fetchRange(h, 1, wrong))[0]
      }
      if (this.applied() >= h) {
        if (got !== undefined) void this.checkSkipped(h, got)
        continue
      }
      if (checked === undefined) {
        this.d.logger.warn({ height: h }, 'no peer served the block; will retry')
        return
      }
      // the next block at hand: this height's write may wait for it and go with it
      const hold = h < target && ahead.ready(h + 1)
      if (!(await this.d.apply(checked, hold))) {
        if (this.applied() >= h) continue
        this.d.logger.warn({ height: h }, 'a synced block could not be applied; will retry')
        return
      }
      applied++
      appliedTxs += checked.txs.length
      const now = this.d.now()
      if (now - lastLog >= 2_000 || this.applied() >= target) {
        const seconds = Math.max(0.001, (now - started) / 1000)
        const rate = applied / seconds
        const left = target - this.applied()
        this.d.logger.info(
          {
            height: this.applied(),
            target,
            blocksPerSecond: Math.round(rate * 10) / 10,
            txPerSecond: Math.round(appliedTxs / seconds),
            etaSeconds: rate > 0 ? Math.round(left / rate) : null,
          },
          'block sync progress',
        )
        lastLog = now
      }
    }
  }
}

/**
 * The blocks of one sync round fetched ahead of the one being applied. Heights are asked for by ranges of consecutive
 * heights not asked for yet, from the lowest up, sized to fit a response's budget (`bytes`) by the blocks seen so far
 * and to spread a short way to go over `inFlight` requests,
 * with at most `inFlight` requests out beyond the one for the height waited for, and only while the bytes held and
 * asked for stay within `aheadBytes`; a height a response ended before is asked for again. Memory stays bounded by
 * about `aheadBytes` plus a response's budget and one block, whatever the blocks' sizes.
 */
class FetchAhead {
  private readonly slots = new Map<number, Slot>()
  private inFlight = 0
  /** Bytes of the blocks delivered and not taken yet. */
  private held = 0
  /** Bytes per block, by what arrived so far (sizes the next ranges). */
  private bytesPerBlock = 0

  constructor(
    private readonly o: { readonly target: number; readonly blocks: number; readonly bytes: number; readonly inFlight: number; readonly aheadBytes: number },
    private readonly fetchRange: (from: number, count: number) => Promise<Fetched[]>,
    /** Gets each block fetched for a height below the one taken: the chain got there without it. */
    private readonly skipped: (height: number, b: Fetched) => void,
  ) {}

  /** True when the block of `height` has arrived and waits to be taken. */
  ready(height: number): boolean {
    return this.slots.get(height)?.ready === true
  }

  /** The block of `height` (the next to apply), or undefined when no peer served it; what is below it is dropped. */
  async take(height: number): Promise<Fetched | undefined> {
    for (const [h, s] of this.slots) {
      if (h >= height) continue
      this.held -= s.bytes
      this.slots.delete(h)
      void s.delivery.then((d) => {
        if (d !== undefined && d !== 'again') this.skipped(h, d)
      })
    }
    for (;;) {
      this.ask(height)
      const got = await this.slots.get(height)!.delivery
      if (got === 'again') continue
      const s = this.slots.get(height)
      if (s !== undefined) this.held -= s.bytes
      this.slots.delete(height)
      return got
    }
  }

  /**
   * Asks for ranges of heights not asked for yet from `height` up: `height` itself always, the next ones while fewer
   * than `inFlight` requests are out, within `inFlight` ranges of `height` and within the byte bound.
   */
  private ask(height: number): void {
    const { blocks, bytes, inFlight, aheadBytes } = this.o
    // a short way to go is spread over `inFlight` requests (so over as many peers) rather than asked of one
    const share = Math.ceil((this.o.target - height + 1) / inFlight)
    const fit = this.bytesPerBlock > 0 ? Math.floor(bytes / this.bytesPerBlock) : blocks
    const perRange = Math.max(1, Math.min(blocks, fit, share))
    for (let from = height; from <= this.o.target && from < height + inFlight * blocks; ) {
      if (this.slots.has(from)) {
        from++
        continue
      }
      if (from > height && (this.inFlight >= inFlight || this.held + (this.inFlight + 1) * bytes > aheadBytes)) return
      let count = 1
      while (count < perRange && from + count <= this.o.target && !this.slots.has(from + count)) count++
      this.request(from, count)
      from += count
    }
  }

  private request(from: number, count: number): void {
    const resolvers: ((d: Delivery) => void)[] = []
    const mine: Slot[] = []
    for (let i = 0; i < count; i++) {
      const slot: Slot = { delivery: new Promise<Delivery>((resolve) => resolvers.push(resolve)), bytes: 0, ready: false }
      this.slots.set(from + i, slot)
      mine.push(slot)
    }
    this.inFlight++
    void this.fetchRange(from, count).then(
      (blocks) => this.deliver(from, mine, resolvers, blocks),
      () => this.deliver(from, mine, resolvers, []),
    )
  }

  private deliver(from: number, mine: readonly Slot[], resolvers: readonly ((d: Delivery) => void)[], blocks: readonly Fetched[]): void {
    this.inFlight--
    for (let i = 0; i < mine.length; i++) {
      const b = blocks[i]
      const slot = mine[i]!
      if (b === undefined) {
        // not served: asked for anew (or, for the first, given up on until the next round)
        if (this.slots.get(from + i) === slot) this.slots.delete(from + i)
        resolvers[i]!(i === 0 ? undefined : 'again')
        continue
      }
      if (this.slots.get(from + i) === slot) {
        slot.bytes = b.storedBytes.byteLength
        slot.ready = true
        this.held += slot.bytes
        this.bytesPerBlock = this.bytesPerBlock === 0 ? slot.bytes : (this.bytesPerBlock * 7 + slot.bytes) / 8
      }
      resolvers[i]!(b)
    }
  }
}
