import type { GossipVerdict, RequestHandler, RequestResult } from '../../node/p2p/p2p.js'
import type { SyncTransport } from '../../node/sync/blockSync.js'
import { decodeConsensusGossip, type ConsensusGossip } from '../../node/sync/consensusMessages.js'
import type { Rng } from '../helpers/random.js'
import type { Owner, Scheduler } from './scheduler.js'

/**
 * The simulated network in place of libp2p. Consensus gossip travels one hop, as on the node's direct streams: the
 * bytes a host broadcasts go to every other validator and are handed, one message at a time per sending peer, to the
 * receiver's real admission handler (`consensusGossipHandler`), whose verdict is recorded. Requests (block sync, tip
 * polls, transaction fetch) go through a {@link SyncTransport} with delays, losses and timeouts in virtual time.
 * Before GST messages are delayed at random, lost, duplicated and cut by partitions; from GST on every message between
 * running validators arrives within `delta`, and one sent before GST that is not lost arrives by GST + delta. A
 * scenario's route hook and the adversary may override the delay of any message.
 */

/** A partition: during [start, end) messages between different groups are lost. */
export interface Partition {
  readonly start: number
  readonly end: number
  readonly groups: readonly (readonly number[])[]
}

/** The network model. Times in virtual milliseconds. */
export interface NetworkOptions {
  /** Global stabilization time. */
  readonly gst: number
  readonly minDelay: number
  /** Largest delay before GST. */
  readonly preGstMaxDelay: number
  /** Bound on the delay after GST. */
  readonly delta: number
  /** Probability that a message sent before GST is lost. */
  readonly loss: number
  /** Probability that a message is delivered twice. */
  readonly duplicate: number
  readonly partitions: readonly Partition[]
}

/** What travels: consensus gossip, transaction gossip, or one leg of a request. */
export type Channel = 'consensus' | 'txs' | 'request' | 'response'

/** A message on its way, as a route hook sees it. */
export interface RouteInfo {
  readonly from: number
  readonly to: number
  readonly time: number
  readonly channel: Channel
  /** The request protocol, for requests and responses. */
  readonly protocol?: string
  /** The decoded consensus message, or undefined (other channels, undecodable bytes). */
  readonly message: ConsensusGossip | undefined
}

/** A routing decision: drop, a delay in ms, or undefined for the network's own choice. */
export type RouteDecision = 'drop' | number | undefined

/** A hook deciding the fate of messages. */
export type Route = (info: RouteInfo) => RouteDecision

/** A sending peer's messages waiting for the receiver's handler, which takes them one at a time. */
interface Inbox {
  readonly queue: Uint8Array[]
  busy: boolean
}

/** What the network needs of a running incarnation of a node. */
export interface NetPeer {
  readonly power: Owner
  /** The admission of consensus gossip. */
  readonly onGossip: (bytes: Uint8Array, from: string) => Promise<GossipVerdict>
  /** Request handlers by protocol. */
  readonly handlers: Map<string, RequestHandler>
  /** Admits a gossiped transaction. */
  readonly admitTx: (bytes: Uint8Array) => Promise<unknown>
  /** Per sending node, its messages waiting for the handler. */
  readonly inboxes: Map<number, Inbox>
}

/** What the network knows of a node. */
export interface NetNode {
  readonly index: number
  readonly id: string
  /** The running incarnation, if the node is up. */
  peer(): NetPeer | undefined
}

/** Counters of one run. */
export interface NetworkStats {
  sent: number
  delivered: number
  dropped: number
  requests: number
  /** Verdicts of the admission handlers. */
  readonly verdicts: Record<GossipVerdict, number>
}

/** The observer of penalties and verdicts (the simulation's checker). */
export interface NetworkObserver {
  onVerdict(to: number, from: number, verdict: GossipVerdict): void
  onPenalty(by: number, peer: number, points: number, reason: string): void
}

export class SimNetwork {
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, requests: 0, verdicts: { accept: 0, ignore: 0, reject: 0 } }
  private readonly indexById = new Map<string, number>()
  private decodeNeeded: boolean
  private readonly taps: ((from: number, bytes: Uint8Array) => void)[] = []

  constructor(
    private readonly o: NetworkOptions,
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly nodes: readonly NetNode[],
    private readonly observer: NetworkObserver,
    private readonly maxTxs: number,
    private readonly routes: readonly Route[],
  ) {
    this.decodeNeeded = routes.length > 0
  }

  /** The index of a node by its peer id (the node list is filled after the network is built). */
  indexOf(id: string): number | undefined {
    if (this.indexById.size !== this.nodes.length) for (const n of this.nodes) this.indexById.set(n.id, n.index)
    return this.indexById.get(id)
  }

  /** True when the network stabilized. */
  get afterGst(): boolean {
    return this.sched.now >= this.o.gst
  }

  private partitioned(from: number, to: number): boolean {
    const now = this.sched.now
    for (const p of this.o.partitions) {
      if (now < p.start || now >= p.end) continue
      const gf = p.groups.findIndex((g) => g.includes(from))
      const gt = p.groups.findIndex((g) => g.includes(to))
      if (gf !== gt) return true
    }
    return false
  }

  /** The delay of one message, or undefined when it is lost. */
  private delay(info: RouteInfo): number | undefined {
    for (const route of this.routes) {
      const d = route(info)
      if (d === 'drop') return undefined
      if (typeof d === 'number') return Math.max(0, d)
    }
    const now = this.sched.now
    const { gst, minDelay, preGstMaxDelay, delta, loss } = this.o
    if (now < gst) {
      if (this.partitioned(info.from, info.to)) return undefined
      if (loss > 0 && this.rng.chance(loss)) return undefined
      const d = minDelay + this.rng.int(Math.max(1, preGstMaxDelay - minDelay + 1))
      // sent before GST and not lost: arrives by GST + delta
      return Math.min(d, gst + delta - now)
    }
    return minDelay + this.rng.int(Math.max(1, delta - minDelay + 1))
  }

  private recent: { bytes: Uint8Array; message: ConsensusGossip | undefined }[] = []

  /**
   * Decodes consensus gossip bytes for the simulator's own eyes (routes, the adversary, the checker), remembering the
   * last few by identity: a broadcast is one byte array sent over every link, decoded once.
   */
  decode(bytes: Uint8Array): ConsensusGossip | undefined {
    for (const r of this.recent) if (r.bytes === bytes) return r.message
    const message = decoded(bytes, this.maxTxs)
    this.recent.unshift({ bytes, message })
    if (this.recent.length > 4) this.recent.pop()
    return message
  }

  private route(from: number, to: number, channel: Channel, bytes: Uint8Array | undefined, protocol?: string): number[] {
    const message = this.decodeNeeded && channel === 'consensus' && bytes !== undefined ? this.decode(bytes) : undefined
    const info: RouteInfo = { from, to, time: this.sched.now, channel, protocol, message }
    const first = this.delay(info)
    if (first === undefined) {
      this.stats.dropped++
      return []
    }
    if (this.o.duplicate > 0 && this.sched.now < this.o.gst && this.rng.chance(this.o.duplicate)) {
      const again = this.delay(info)
      if (again !== undefined) return [first, again]
    }
    return [first]
  }

  /** Adds an observer of every broadcast (the adversary watches the network). */
  addTap(tap: (from: number, bytes: Uint8Array) => void): void {
    this.taps.push(tap)
  }

  /** Sends consensus gossip bytes from one node to every other. */
  broadcast(from: number, bytes: Uint8Array): void {
    for (const tap of this.taps) tap(from, bytes)
    for (const n of this.nodes) if (n.index !== from) this.send(from, n.index, bytes)
  }

  /** Sends consensus gossip bytes over one link. */
  send(from: number, to: number, bytes: Uint8Array): void {
    const target = this.nodes[to]!.peer()
    this.stats.sent++
    if (target === undefined) {
      this.stats.dropped++
      return
    }
    for (const d of this.route(from, to, 'consensus', bytes)) {
      this.sched.after(d, target.power, () => this.arrive(target, from, to, bytes))
    }
  }

  private arrive(target: NetPeer, from: number, to: number, bytes: Uint8Array): void {
    let inbox = target.inboxes.get(from)
    if (inbox === undefined) {
      inbox = { queue: [], busy: false }
      target.inboxes.set(from, inbox)
    }
    inbox.queue.push(bytes)
    if (!inbox.busy) void this.pump(target, inbox, from, to)
  }

  /** Hands a link's messages to the receiver's admission one at a time, waiting for each verdict (stream back-pressure). */
  private async pump(target: NetPeer, inbox: Inbox, from: number, to: number): Promise<void> {
    inbox.busy = true
    const fromId = this.nodes[from]!.id
    while (inbox.queue.length > 0 && target.power.alive) {
      const bytes = inbox.queue.shift()!
      this.stats.delivered++
      const verdict = await target.onGossip(bytes, fromId)
      if (!target.power.alive) break
      this.stats.verdicts[verdict]++
      this.observer.onVerdict(to, from, verdict)
    }
    inbox.busy = false
  }

  /** Sends transaction wire bytes (one gossip batch) from one node to another's mempool. */
  sendTxs(from: number, to: number, txs: readonly Uint8Array[]): void {
    const target = this.nodes[to]!.peer()
    if (target === undefined || txs.length === 0) return
    for (const d of this.route(from, to, 'txs', undefined)) {
      this.sched.after(d, target.power, () => {
        void (async () => {
          for (const tx of txs) {
            if (!target.power.alive) return
            await target.admitTx(tx)
          }
        })()
      })
    }
  }

  /** The request/response transport of one incarnation of a node. */
  transport(self: number, power: Owner, handlers: Map<string, RequestHandler>): SyncTransport {
    return {
      peers: () => this.nodes.filter((n) => n.index !== self && n.peer() !== undefined).map((n) => n.id),
      handle: async (protocol, handler) => {
        handlers.set(protocol, handler)
      },
      penalize: (peer, points, reason) => {
        const i = this.indexOf(peer)
        if (i !== undefined) this.observer.onPenalty(self, i, points, reason)
      },
      request: (peer, protocol, request, options) => this.request(self, power, peer, protocol, request, options),
    }
  }

  private request(
    self: number,
    power: Owner,
    peerId: string,
    protocol: string,
    request: Uint8Array,
    options: { timeoutMs: number; maxResponseBytes: number },
  ): Promise<RequestResult> {
    this.stats.requests++
    return new Promise<RequestResult>((resolve) => {
      let settled = false
      const finish = (r: RequestResult) => {
        if (settled) return
        settled = true
        resolve(r)
      }
      const to = this.indexOf(peerId)
      const target = to === undefined ? undefined : this.nodes[to]!.peer()
      if (to === undefined || target === undefined) {
        this.sched.after(1, power, () => finish({ ok: false, error: { code: 'unreachable', reason: `${peerId} is not connected` } }))
        return
      }
      this.sched.after(options.timeoutMs, power, () => finish({ ok: false, error: { code: 'timeout', reason: `no response within ${options.timeoutMs} ms` } }))
      const there = this.route(self, to, 'request', undefined, protocol)[0]
      if (there === undefined) return
      this.sched.after(there, target.power, () => {
        const handler = target.handlers.get(protocol)
        const respond = (r: RequestResult) => {
          const back = this.route(to, self, 'response', undefined, protocol)[0]
          if (back !== undefined) this.sched.after(back, power, () => finish(r))
        }
        if (handler === undefined) {
          respond({ ok: false, error: { code: 'unreachable', reason: `${peerId} does not serve ${protocol}` } })
          return
        }
        void (async () => {
          let response: Uint8Array
          try {
            response = await handler(request, this.nodes[self]!.id)
          } catch (e) {
            if (target.power.alive) respond({ ok: false, error: { code: 'remote_error', reason: (e as Error).message } })
            return
          }
          if (!target.power.alive) return
          if (response.byteLength > options.maxResponseBytes)
            respond({ ok: false, error: { code: 'too_large', reason: `response of ${response.byteLength} bytes` } })
          else respond({ ok: true, value: response })
        })()
      })
    })
  }
}

function decoded(bytes: Uint8Array, maxTxs: number): ConsensusGossip | undefined {
  const d = decodeConsensusGossip(bytes, maxTxs)
  return d.ok ? d.value : undefined
}
