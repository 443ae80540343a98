import type { CommitCertificate } from '../../consensus/index.js'
import type { Result } from '../../crypto/result.js'
import type { CheckedBlock, SyncedBlockFault } from '../host/consensusHost.js'
import type { Logger } from '../logger.js'
import type { RequestHandler, RequestResult } from '../p2p/p2p.js'
import type { ChainStore } from '../storage/chainStore.js'
import type { StoredBlock } from '../storage/storedBlock.js'
import {
  decodeBlockResponse,
  decodeHeightRequest,
  decodeTipResponse,
  encodeBlockResponse,
  encodeHeightRequest,
  encodeTipResponse,
} from './blockSyncMessages.js'

/**
 * Block sync: a node that is behind (after downtime, or started with an empty data/) fetches blocks with their
 * commit certificates from peers and hands each to the consensus host, which applies it. It also serves its own
 * blocks and tip to peers.
 *
 * It trusts signatures, not peers:
 *  - a peer's tip counts only with the certificate that decided it, verified against the validator set, so a peer
 *    that claims to be far ahead cannot make this node chase it or report itself catching up;
 *  - a fetched block counts only once its certificate verifies for it at that height and the host's checks pass
 *    (it extends the tip, the certificate it carries for the previous height is valid and the one its header names,
 *    its transactions are the ones the header commits to). A peer whose response fails any of this is penalized and
 *    the next peer is asked at once, so one liar can neither stall sync nor be asked first again and again.
 *
 * Tips are polled (one stream per peer) when there is a reason: a peer not polled yet, a peer seen sending messages of
 * a height beyond this node's next, consensus stuck here for `stuckMs`, a height decided but not held, or `pollMs`
 * since the last poll. Every `intervalMs` it checks and syncs when a verified tip is at least two heights ahead, or one
 * ahead while stuck or wanting that height (a missed decision). `catchingUp` is true while a verified tip is two or
 * more heights ahead.
 */

export const STATUS_PROTOCOL = '/tally/status/1'
export const BLOCK_PROTOCOL = '/tally/block/1'

/** Penalty for a block or tip response that is malformed or fails verification (two strikes disconnect a peer). */
const BAD_RESPONSE_PENALTY = 25

export interface BlockSyncOptions {
  readonly intervalMs: number
  /** Longest time between two polls of the peers' tips when nothing else calls for one (default 10 × intervalMs). */
  readonly pollMs?: number
  readonly stuckMs: number
  /** Blocks fetched ahead of the one being applied. */
  readonly window: number
  readonly limits: { readonly maxBytes: number; readonly maxTxs: number }
}

/** What block sync needs of the p2p layer ({@link P2p} provides it; simulations a transport of their own). */
export interface SyncTransport {
  peers(): string[]
  request(peer: string, protocol: string, request: Uint8Array, options: { timeoutMs: number; maxResponseBytes: number }): Promise<RequestResult>
  handle(protocol: string, handler: RequestHandler): Promise<void>
  penalize(peer: string, points: number, reason: string): void
}

export interface BlockSyncDependencies {
  readonly p2p: SyncTransport
  readonly chain: ChainStore
  readonly logger: Logger
  readonly tipHeight: () => number
  readonly heightStartedAtMs: () => number
  readonly now: () => number
  /** Arms the periodic check; returns a function that disarms it. */
  readonly every: (ms: number, f: () => void) => () => void
  /** True when the certificate decides some block at its height under the validator set (a verified tip). */
  readonly verifyTip: (certificate: CommitCertificate) => boolean
  /**
   * Whether the certificate decides this block at this height, checked on arrival before the block is kept; undefined
   * when this node cannot tell yet (a height whose validator set depends on blocks not applied yet).
   */
  readonly verifyCertified: (height: number, stored: StoredBlock, certificate: CommitCertificate) => boolean | undefined
  /** The host's checks of a block that is to be the next height (consensus/host `checkSyncedBlock`). */
  readonly check: (height: number, stored: StoredBlock, certificate: CommitCertificate) => Promise<Result<CheckedBlock, SyncedBlockFault>>
  /** Applies a checked block; resolves true once it is committed. */
  readonly apply: (block: CheckedBlock) => Promise<boolean>
}

interface Fetched {
  readonly stored: StoredBlock
  readonly certificate: CommitCertificate
  readonly peer: string
}

export class BlockSync {
  private disarm: (() => void) | undefined
  private running = false
  private stopped = false
  /** Verified tips of peers. */
  private readonly peerTips = new Map<string, number>()
  /** Peers seen working beyond this node's next height, to poll at the next check. */
  private readonly seenAhead = new Set<string>()
  private readonly wanted = new Set<number>()
  private lastPollAt = -Infinity
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

  async start(): Promise<void> {
    await this.d.p2p.handle(STATUS_PROTOCOL, async () => {
      const tip = this.d.tipHeight()
      return encodeTipResponse(tip, tip > 0 ? await this.d.chain.certificateBytes(tip) : undefined)
    })
    await this.d.p2p.handle(BLOCK_PROTOCOL, async (req) => {
      const height = decodeHeightRequest(req)
      if (height === undefined || height < 1) return encodeBlockResponse(undefined, undefined)
      return encodeBlockResponse(await this.d.chain.blockBytes(height), await this.d.chain.certificateBytes(height))
    })
    this.disarm = this.d.every(this.o.intervalMs, () => void this.tick())
    void this.tick()
  }

  stop(): void {
    this.stopped = true
    this.disarm?.()
  }

  /** A peer sent a valid consensus message of `height`: if that is beyond this node's next height, poll it soon. */
  notePeerHeight(peer: string, height: number): void {
    if (height > this.d.tipHeight() + 1) this.seenAhead.add(peer)
  }

  /** Fetches a height this node saw decided but does not hold. */
  request(height: number): void {
    this.wanted.add(height)
    void this.tick()
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return
    this.running = true
    try {
      const stuck = this.d.now() - this.d.heightStartedAtMs() > this.o.stuckMs
      const unknown = this.d.p2p.peers().some((p) => !this.peerTips.has(p))
      if (stuck || unknown || this.seenAhead.size > 0 || this.wanted.size > 0 || this.d.now() - this.lastPollAt >= (this.o.pollMs ?? 10 * this.o.intervalMs)) {
        await this.pollTips()
      }
      const tip = this.d.tipHeight()
      const best = this.bestPeerHeight
      const wantedNext = this.wanted.has(tip + 1)
      if (best >= tip + 2 || (best >= tip + 1 && (stuck || wantedNext))) await this.syncTo(best)
      for (const h of [...this.wanted]) if (h <= this.d.tipHeight()) this.wanted.delete(h)
    } catch (e) {
      this.d.logger.warn({ err: (e as Error).message }, 'block sync round failed')
    } finally {
      this.running = false
    }
  }

  private async pollTips(): Promise<void> {
    this.lastPollAt = this.d.now()
    this.polls++
    this.seenAhead.clear()
    const peers = this.d.p2p.peers()
    for (const id of [...this.peerTips.keys()]) if (!peers.includes(id)) this.peerTips.delete(id)
    await Promise.all(
      peers.map(async (peer) => {
        const r = await this.d.p2p.request(peer, STATUS_PROTOCOL, encodeHeightRequest(0), { timeoutMs: 2_000, maxResponseBytes: 64 * 1024 })
        if (!r.ok) return
        const t = decodeTipResponse(r.value)
        if (t === undefined) {
          this.d.p2p.penalize(peer, BAD_RESPONSE_PENALTY, 'malformed tip response')
          return
        }
        if (t.certificate !== null && !this.d.verifyTip(t.certificate)) {
          this.d.logger.warn({ peer, height: t.height }, 'a peer claimed a tip its certificate does not prove')
          this.d.p2p.penalize(peer, BAD_RESPONSE_PENALTY, 'unproven tip')
          return
        }
        this.peerTips.set(peer, t.height)
      }),
    )
  }

  /**
   * Fetches the block of `height` with its certificate from the peers whose verified tip holds it, starting at a
   * peer chosen by the height (to spread the load) and moving on at once past any that fails, penalizing a peer that
   * answers with something that is not that certified block. `skip` names peers already found wrong for this height.
   */
  private async fetch(height: number, skip: ReadonlySet<string> = new Set()): Promise<Fetched | undefined> {
    const candidates = [...this.peerTips.entries()]
      .filter(([p, h]) => h >= height && !skip.has(p))
      .map(([p]) => p)
      .sort()
    for (let k = 0; k < candidates.length; k++) {
      const peer = candidates[(height + k) % candidates.length]!
      const r = await this.d.p2p.request(peer, BLOCK_PROTOCOL, encodeHeightRequest(height), {
        timeoutMs: 10_000,
        maxResponseBytes: this.o.limits.maxBytes + 256 * 1024,
      })
      if (!r.ok) continue
      const d = decodeBlockResponse(r.value, this.o.limits)
      const fault = !d.ok
        ? `malformed block response: ${d.error.reason}`
        : d.value === null
          ? `no block ${height} although its tip is above it`
          : this.d.verifyCertified(height, d.value.stored, d.value.certificate) === false
            ? `block ${height} without a valid certificate for it`
            : undefined
      if (fault !== undefined || !d.ok || d.value === null) {
        this.d.logger.warn({ peer, height, reason: fault }, 'bad block from a peer')
        this.d.p2p.penalize(peer, BAD_RESPONSE_PENALTY, fault ?? 'bad block response')
        continue
      }
      return { ...d.value, peer }
    }
    return undefined
  }

  private async syncTo(target: number): Promise<void> {
    const started = this.d.now()
    let lastLog = started
    let applied = 0
    let appliedTxs = 0
    const inflight = new Map<number, Promise<Fetched | undefined>>()
    let next = this.d.tipHeight() + 1
    while (!this.stopped && this.d.tipHeight() < target) {
      const h = this.d.tipHeight() + 1
      next = Math.max(next, h)
      while (next <= target && next < h + this.o.window) {
        if (!inflight.has(next)) inflight.set(next, this.fetch(next))
        next++
      }
      const wrong = new Set<string>()
      let got = await (inflight.get(h) ?? this.fetch(h))
      inflight.delete(h)
      let checked: CheckedBlock | undefined
      while (got !== undefined) {
        if (this.d.tipHeight() >= h) break // consensus got there first
        const c = await this.d.check(h, got.stored, got.certificate)
        if (c.ok) {
          checked = c.value
          break
        }
        if (c.error.code === 'not_next') break
        // certified, yet not the block that extends this chain (its carried commit or body was tampered with)
        this.d.logger.warn({ peer: got.peer, height: h, reason: c.error.reason }, 'a synced block was refused')
        this.d.p2p.penalize(got.peer, BAD_RESPONSE_PENALTY, `bad block ${h}: ${c.error.reason}`)
        wrong.add(got.peer)
        got = await this.fetch(h, wrong)
      }
      if (this.d.tipHeight() >= h) continue
      if (checked === undefined) {
        this.d.logger.warn({ height: h }, 'no peer served the block; will retry')
        return
      }
      if (!(await this.d.apply(checked))) {
        if (this.d.tipHeight() >= h) continue
        this.d.logger.warn({ height: h }, 'a synced block could not be applied; will retry')
        return
      }
      applied++
      appliedTxs += checked.txs.length
      const now = this.d.now()
      if (now - lastLog >= 2_000 || this.d.tipHeight() >= target) {
        const seconds = Math.max(0.001, (now - started) / 1000)
        const rate = applied / seconds
        const left = target - this.d.tipHeight()
        this.d.logger.info(
          {
            height: this.d.tipHeight(),
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
