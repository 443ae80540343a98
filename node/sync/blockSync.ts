import type { CommitCertificate } from '../../consensus/index.js'
import type { ChainStore } from '../storage/chainStore.js'
import type { Logger } from '../logger.js'
import type { StoredBlock } from '../storage/storedBlock.js'
import { decodeBlockResponse, decodeHeightRequest, encodeBlockResponse, encodeHeightRequest } from './blockSyncMessages.js'
import type { P2p } from '../p2p/p2p.js'

/**
 * Block sync: a node that is behind (after downtime, or started with an empty data/) fetches blocks with their
 * commit certificates from peers, and hands each to the consensus host, which verifies the certificate against the
 * validator set, executes the block and commits it. It also serves its own blocks and tip to peers.
 *
 * It learns its peers' tips mostly for free: a consensus message for height h from a peer means that peer has
 * committed h - 1 ({@link BlockSync.notePeerTip}). It asks its peers for their tips (one stream each) only when it has
 * a reason: a peer it knows no tip of, consensus stuck here for `stuckMs`, a height it saw decided but does not
 * hold, or `pollMs` since the last poll. Every `intervalMs` it checks, and syncs when a peer is at least two heights
 * ahead, or one ahead while stuck or wanting that height (a missed decision).
 */

export const STATUS_PROTOCOL = '/tally/status/1'
export const BLOCK_PROTOCOL = '/tally/block/1'

export interface BlockSyncOptions {
  readonly intervalMs: number
  /** Longest time between two polls of the peers' tips when nothing else calls for one (default 10 × intervalMs). */
  readonly pollMs?: number
  readonly stuckMs: number
  /** Blocks fetched ahead of the one being applied. */
  readonly window: number
  readonly limits: { readonly maxBytes: number; readonly maxTxs: number }
}

export interface BlockSyncDependencies {
  readonly p2p: P2p
  readonly chain: ChainStore
  readonly logger: Logger
  readonly tipHeight: () => number
  readonly heightStartedAtMs: () => number
  readonly now: () => number
  readonly apply: (height: number, stored: StoredBlock, certificate: CommitCertificate) => Promise<boolean>
}

export class BlockSync {
  private timer: NodeJS.Timeout | undefined
  private running = false
  private stopped = false
  private syncing = false
  private readonly peerTips = new Map<string, number>()
  private readonly wanted = new Set<number>()
  private lastPollAt = -Infinity
  /** Tip polls made, for tests and metrics. */
  polls = 0

  constructor(private readonly o: BlockSyncOptions, private readonly d: BlockSyncDependencies) {}

  /** True while this node is two or more blocks behind the best peer it knows. */
  get catchingUp(): boolean {
    return this.syncing
  }

  /** The best tip height peers reported. */
  get bestPeerHeight(): number {
    let best = 0
    for (const h of this.peerTips.values()) best = Math.max(best, h)
    return best
  }

  async start(): Promise<void> {
    await this.d.p2p.handle(STATUS_PROTOCOL, () => encodeHeightRequest(this.d.tipHeight()))
    await this.d.p2p.handle(BLOCK_PROTOCOL, async (req) => {
      const height = decodeHeightRequest(req)
      if (height === undefined || height < 1) return encodeBlockResponse(undefined, undefined)
      return encodeBlockResponse(await this.d.chain.blockBytes(height), await this.d.chain.certificateBytes(height))
    })
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs)
    void this.tick()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
  }

  /** Records that `peer` holds at least `height` (it sent a consensus message for `height` + 1). */
  notePeerTip(peer: string, height: number): void {
    if (height > (this.peerTips.get(peer) ?? -1)) this.peerTips.set(peer, height)
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
      if (stuck || unknown || this.wanted.size > 0 || this.d.now() - this.lastPollAt >= (this.o.pollMs ?? 10 * this.o.intervalMs)) {
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
      this.syncing = false
    }
  }

  private async pollTips(): Promise<void> {
    this.lastPollAt = this.d.now()
    this.polls++
    const peers = this.d.p2p.peers()
    for (const id of [...this.peerTips.keys()]) if (!peers.includes(id)) this.peerTips.delete(id)
    await Promise.all(peers.map(async (peer) => {
      const r = await this.d.p2p.request(peer, STATUS_PROTOCOL, encodeHeightRequest(0), { timeoutMs: 2_000, maxResponseBytes: 64 })
      const h = r.ok ? decodeHeightRequest(r.data) : undefined
      if (h !== undefined) this.peerTips.set(peer, h)
    }))
  }

  private async fetch(height: number): Promise<{ stored: StoredBlock; certificate: CommitCertificate } | undefined> {
    const candidates = [...this.peerTips.entries()].filter(([, h]) => h >= height).map(([p]) => p)
    // rotate the starting peer by height so load spreads
    for (let k = 0; k < candidates.length; k++) {
      const peer = candidates[(height + k) % candidates.length]!
      const r = await this.d.p2p.request(peer, BLOCK_PROTOCOL, encodeHeightRequest(height), {
        timeoutMs: 10_000, maxResponseBytes: this.o.limits.maxBytes + 256 * 1024,
      })
      if (!r.ok) continue
      const d = decodeBlockResponse(r.data, this.o.limits)
      if (!d.ok) {
        this.d.p2p.penalize(peer, 10, `bad block response: ${d.error.reason}`)
        continue
      }
      if (d.value !== null) return d.value
    }
    return undefined
  }

  private async syncTo(target: number): Promise<void> {
    const from = this.d.tipHeight() + 1
    this.syncing = target >= from + 1
    const started = this.d.now()
    let lastLog = started
    let applied = 0
    const inflight = new Map<number, Promise<{ stored: StoredBlock; certificate: CommitCertificate } | undefined>>()
    let next = from
    while (!this.stopped && this.d.tipHeight() < target) {
      const h = this.d.tipHeight() + 1
      next = Math.max(next, h)
      while (next <= target && next < h + this.o.window) {
        if (!inflight.has(next)) inflight.set(next, this.fetch(next))
        next++
      }
      const got = await (inflight.get(h) ?? this.fetch(h))
      inflight.delete(h)
      if (got === undefined) {
        this.d.logger.warn({ height: h }, 'no peer served the block; will retry')
        return
      }
      if (this.d.tipHeight() >= h) continue // consensus got there first
      const ok = await this.d.apply(h, got.stored, got.certificate)
      if (!ok) {
        if (this.d.tipHeight() >= h) continue
        this.d.logger.warn({ height: h }, 'a synced block was refused; will retry')
        return
      }
      applied++
      const now = this.d.now()
      if (now - lastLog >= 2_000 || this.d.tipHeight() >= target) {
        const rate = applied / Math.max(0.001, (now - started) / 1000)
        this.d.logger.info({ height: this.d.tipHeight(), target, blocksPerSecond: Math.round(rate * 10) / 10 }, 'block sync progress')
        lastLog = now
      }
    }
  }
}
