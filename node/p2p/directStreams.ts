import type { Stream } from '@libp2p/interface'
import { LengthPrefixedDecoder, lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Logger } from '../logger.js'
import { nonEmptyVarintDecoder } from './framing.js'
import type { GossipHandler } from './p2p.js'

/**
 * Direct one-hop broadcast between connected peers: per protocol, one long-lived outbound stream to each admitted
 * peer carries length-prefixed messages (a varint length, then the bytes), in the order they were sent.
 *
 * This is how transactions travel between validators. Every validator keeps a connection to every other (static
 * genesis peers), so a message a node sends reaches each peer in one hop and is never relayed: each peer receives
 * and checks every message once (gossipsub's relaying would deliver every batch once per peer in a full mesh).
 *
 * Bounds: an incoming message above `maxMessageBytes` ends the stream and penalizes the sender; a handler's `reject`
 * penalizes it too, and so does a flood of messages the handler ignores (beyond `ignoredPerSecond`). Reading waits for the handler, so a slow receiver slows its sender down (stream back-pressure)
 * instead of buffering without limit. Outgoing messages queue per peer up to `maxQueuedBytes`; beyond that, or when
 * the peer's stream fails, messages to that peer are dropped (counted and logged): a receiver that missed
 * transactions fetches them when a proposal names them.
 */

/** What {@link DirectStreams} needs from the p2p layer ({@link P2p} provides it). */
export interface StreamHost {
  /** Connected admitted peers. */
  peers(): string[]
  /** Serves inbound streams of a protocol. */
  serveStreams(protocol: string, onStream: (stream: Stream, from: string) => void, maxInboundStreams: number): Promise<void>
  /** Opens a stream of a protocol to a connected admitted peer. */
  openStream(peerId: string, protocol: string, signal: AbortSignal): Promise<Stream>
  /** Adds penalty points to a peer that sent invalid data. */
  penalize(peerId: string, points: number, reason: string): void
  /** True while a peer is banned: its stream is closed and what it still holds is not read. */
  isBanned?(peerId: string): boolean
  on(event: 'peer:disconnect', listener: (peerId: string) => void): unknown
}

/** Options of {@link DirectStreams}. */
export interface DirectStreamsOptions {
  /** Largest message, in bytes, either way (default 1 MiB). */
  readonly maxMessageBytes?: number
  /** Most bytes queued for one peer before further messages to it are dropped (default 16 MiB). */
  readonly maxQueuedBytes?: number
  /** Deadline for opening a stream, in ms (default 5,000). */
  readonly openTimeoutMs?: number
  /** Penalty points for an invalid message (default 10). */
  readonly rejectPenalty?: number
  /**
   * Messages a peer may send per second, over all its streams, that the handler ignores (stale, repeated, useless) before
   * each further one costs it a penalty point (default 500, with bursts of 2,000): an honest peer's repairs and late
   * messages stay far below, a flood of valid but useless messages gets its sender disconnected.
   */
  readonly ignoredPerSecond?: number
}

/** Counters for metrics and tests. */
export interface DirectStreamsStats {
  sent: number
  received: number
  dropped: number
  rejected: number
}

/** Most bytes of queued messages written to a stream at once (one Noise frame's worth). */
const COALESCE_BYTES = 64 * 1024

/** Room in the read buffer beyond one message: a resumed stream hands over what it held while paused (at most 4 MiB). */
const READ_SLACK_BYTES = 4 * 1024 * 1024 + 16

interface Outbound {
  readonly protocol: string
  readonly peer: string
  queue: Uint8Array[]
  queuedBytes: number
  writing: boolean
  stream?: LengthPrefixedStream<Stream>
}

/** Direct per-peer message streams over the p2p layer. Register protocols with `subscribe`, send with `publish`. */
export class DirectStreams {
  private readonly maxMessageBytes: number
  private readonly maxQueuedBytes: number
  private readonly openTimeoutMs: number
  private readonly rejectPenalty: number
  private readonly ignoredPerSecond: number
  private readonly outbound = new Map<string, Outbound>()
  /**
   * Each peer's budget of ignored messages, shared by all its streams and connections (a peer that opened a fresh
   * stream for each burst would otherwise never run out): keyed by admitted peer ids, so bounded by them.
   */
  private readonly ignoredBudget = new Map<string, { tokens: number; refilledAt: number }>()
  private stopped = false
  readonly stats: DirectStreamsStats = { sent: 0, received: 0, dropped: 0, rejected: 0 }

  constructor(
    private readonly host: StreamHost,
    private readonly log: Logger,
    options: DirectStreamsOptions = {},
  ) {
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024
    this.maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024
    this.openTimeoutMs = options.openTimeoutMs ?? 5_000
    this.rejectPenalty = options.rejectPenalty ?? 10
    this.ignoredPerSecond = options.ignoredPerSecond ?? 500
    host.on('peer:disconnect', (peer) => {
      for (const [key, o] of this.outbound) if (o.peer === peer) this.close(key, o)
    })
  }

  /** Handles every message of `protocol` from any peer. Call after the p2p layer started. */
  async subscribe(protocol: string, handler: GossipHandler): Promise<void> {
    await this.host.serveStreams(protocol, (stream, from) => void this.read(stream, from, handler), 4)
  }

  /** Sends a message to every connected peer; returns how many peers it was queued for. */
  async publish(protocol: string, data: Uint8Array): Promise<number> {
    let n = 0
    for (const peer of this.host.peers()) if (this.sendTo(peer, protocol, data)) n++
    return n
  }

  /** Queues a message for one peer; false when it was dropped (queue full or stopped). */
  sendTo(peer: string, protocol: string, data: Uint8Array): boolean {
    if (data.byteLength > this.maxMessageBytes || data.byteLength === 0) {
      throw new RangeError(`direct message of ${data.byteLength} bytes: 1 to ${this.maxMessageBytes} are sent`)
    }
    if (this.stopped) return false
    const key = `${protocol} ${peer}`
    let o = this.outbound.get(key)
    if (o === undefined) {
      o = { protocol, peer, queue: [], queuedBytes: 0, writing: false }
      this.outbound.set(key, o)
    }
    if (o.queuedBytes + data.byteLength > this.maxQueuedBytes) {
      this.stats.dropped++
      this.log.debug({ peer, protocol, queuedBytes: o.queuedBytes }, 'direct stream queue full: message dropped')
      return false
    }
    o.queue.push(data)
    o.queuedBytes += data.byteLength
    if (!o.writing) void this.write(key, o)
    return true
  }

  /** Closes every outbound stream and drops what is queued. */
  stop(): void {
    this.stopped = true
    for (const [key, o] of this.outbound) this.close(key, o)
  }

  private async write(key: string, o: Outbound): Promise<void> {
    o.writing = true
    try {
      if (o.stream === undefined) {
        const stream = await this.host.openStream(o.peer, o.protocol, AbortSignal.timeout(this.openTimeoutMs))
        if (this.outbound.get(key) !== o) {
          stream.abort(new Error('closed while opening'))
          return
        }
        o.stream = lpStream(stream, { maxDataLength: this.maxMessageBytes })
      }
      // The messages queued meanwhile go out together, up to COALESCE_BYTES a write (at least one message): the
      // muxer and Noise then frame, encrypt and send them once, where a write per message paid each of those costs
      // per message. Writes stay small enough for back-pressure to hold a fast sender between them.
      while (o.queue.length > 0) {
        let n = 0
        let bytes = 0
        while (n < o.queue.length && (n === 0 || bytes + o.queue[n]!.byteLength <= COALESCE_BYTES)) bytes += o.queue[n++]!.byteLength
        const batch = o.queue.splice(0, n)
        o.queuedBytes -= bytes
        await o.stream.writeV(batch)
        this.stats.sent += n
      }
    } catch (e) {
      this.log.debug({ peer: o.peer, protocol: o.protocol, err: (e as Error).message, dropped: o.queue.length }, 'direct stream failed')
      this.stats.dropped += o.queue.length
      this.close(key, o)
    } finally {
      o.writing = false
    }
  }

  private close(key: string, o: Outbound): void {
    if (this.outbound.get(key) === o) this.outbound.delete(key)
    o.queue = []
    o.queuedBytes = 0
    o.stream?.unwrap().abort(new Error('closed'))
    o.stream = undefined
  }

  /**
   * Reads length-prefixed messages and hands them to the handler one at a time. While more than two messages' worth
   * of bytes wait for the handler, the stream is paused, so the sender is held back by the muxer's flow control.
   */
  private read(stream: Stream, from: string, handler: GossipHandler): void {
    const decoder = new LengthPrefixedDecoder({
      maxDataLength: this.maxMessageBytes,
      maxBufferSize: this.maxMessageBytes + READ_SLACK_BYTES,
      lengthDecoder: nonEmptyVarintDecoder,
    })
    const pending: Uint8Array[] = []
    let pendingBytes = 0
    let delivering = false
    // a token bucket of ignored messages per peer: refills at ignoredPerSecond, holds four seconds' worth
    const burst = 4 * this.ignoredPerSecond
    let budget = this.ignoredBudget.get(from)
    if (budget === undefined) {
      budget = { tokens: burst, refilledAt: Date.now() }
      this.ignoredBudget.set(from, budget)
    }
    const b = budget
    const ignored = () => {
      const now = Date.now()
      b.tokens = Math.min(burst, b.tokens + ((now - b.refilledAt) / 1000) * this.ignoredPerSecond)
      b.refilledAt = now
      if (b.tokens >= 1) b.tokens -= 1
      else this.host.penalize(from, 1, `too many useless messages on ${stream.protocol}`)
    }
    const deliver = async () => {
      delivering = true
      while (pending.length > 0 && !this.stopped) {
        if (this.host.isBanned?.(from) === true) {
          // banned while its messages queued here: the rest is dropped unread, and the stream closed
          pending.length = 0
          pendingBytes = 0
          stream.abort(new Error('peer banned'))
          break
        }
        const data = pending.shift()!
        pendingBytes -= data.byteLength
        if (stream.readStatus === 'paused' && pendingBytes <= this.maxMessageBytes) stream.resume()
        this.stats.received++
        try {
          const verdict = await handler(data, from)
          if (verdict === 'reject') {
            this.stats.rejected++
            this.host.penalize(from, this.rejectPenalty, `invalid message on ${stream.protocol}`)
          } else if (verdict === 'ignore') {
            ignored()
          }
        } catch (e) {
          // a failing handler is our bug, not the peer's
          this.log.error({ protocol: stream.protocol, err: (e as Error).message }, 'direct stream handler failed')
        }
      }
      delivering = false
    }
    stream.addEventListener('message', (evt) => {
      try {
        for (const frame of decoder.decode(evt.data)) {
          pending.push(frame.subarray())
          pendingBytes += frame.byteLength
        }
      } catch (e) {
        this.host.penalize(from, this.rejectPenalty, `oversized or empty message on ${stream.protocol}`)
        this.log.debug({ peer: from, protocol: stream.protocol, err: (e as Error).message }, 'direct stream: bad frame')
        pending.length = 0
        stream.abort(e as Error)
        return
      }
      if (pendingBytes > 2 * this.maxMessageBytes && stream.readStatus === 'readable') stream.pause()
      if (!delivering) void deliver()
    })
  }
}
