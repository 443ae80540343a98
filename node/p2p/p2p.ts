import './polyfill.js'
import { concatBytes } from '../../crypto/bytes.js'
import { err, ok, type Result } from '../../crypto/result.js'
import { lookup } from 'node:dns/promises'
import { EventEmitter } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Connection, Libp2p, MultiaddrConnection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Logger } from '../logger.js'
import { InboundGuard, type InboundGuardStats } from './inboundGuard.js'
import { ipKey, ipKeyOfMultiaddr } from './ipKey.js'
import { libp2pPrivateKeyFromSeed } from './peerId.js'
import { DISCONNECT_SCORE } from './scoring.js'
import { cheapFraming, fewerWindowUpdates } from './framing.js'
import { ThrottledLog } from './throttledLog.js'

/**
 * The node's peer-to-peer layer: libp2p over TCP with Noise and Yamux, an allow-list connection gater (only the
 * genesis validators and configured peers), limits on unauthenticated inbound sockets that keep room for known
 * peers ({@link InboundGuard}), static peers redialed with exponential back-off, per-peer penalty scores that
 * disconnect misbehaving peers, bounded request/response, and the streams {@link DirectStreams} uses to send
 * proposals, votes and transactions one hop to every peer. See docs/p2p.md.
 */

/** A peer to keep connected: its peer id and the address to dial (without the `/p2p/` suffix, or with it). */
export interface StaticPeer {
  readonly peerId: string
  readonly multiaddr: string
}

/** A message handler's verdict: `accept` (new to this node), `ignore` (stale, no penalty), `reject` (penalizes the sender). */
export type GossipVerdict = 'accept' | 'ignore' | 'reject'

/** Handles one message (already within its protocol's size bound) from the peer that sent it. */
export type GossipHandler = (data: Uint8Array, from: string) => GossipVerdict | Promise<GossipVerdict>

/** Answers one request with a response; throwing sends the peer an error (its message, bounded). */
export type RequestHandler = (request: Uint8Array, from: string) => Uint8Array | Promise<Uint8Array>

/**
 * Every reason a request can fail:
 *  - `not_allowed`: the peer is not on the allow-list;
 *  - `unreachable`: no connection or stream could be opened (includes unsupported protocols);
 *  - `timeout`: no complete response within timeoutMs;
 *  - `too_large`: the request or the response exceeds its bound;
 *  - `remote_error`: the peer's handler failed; reason carries its message;
 *  - `protocol`: the response was not a well-formed frame.
 */
export const REQUEST_FAILURE_CODES = ['not_allowed', 'unreachable', 'timeout', 'too_large', 'remote_error', 'protocol'] as const

/** A code from {@link REQUEST_FAILURE_CODES}. */
export type RequestFailureCode = (typeof REQUEST_FAILURE_CODES)[number]

/** Why a request failed: its code and the facts (the peer's message for `remote_error`). */
export interface RequestError {
  readonly code: RequestFailureCode
  readonly reason: string
}

/** The outcome of {@link P2p.request}: the response bytes, or a coded failure. */
export type RequestResult = Result<Uint8Array, RequestError>

/** Options of {@link P2p}. */
export interface P2pOptions {
  /** The node's 32-byte Ed25519 seed: a validator passes its consensus key, so its peer id is that key's. */
  readonly seed: Uint8Array
  /** Listen addresses, e.g. `/ip4/127.0.0.1/tcp/26656` (port 0 picks a free port). */
  readonly listen: readonly string[]
  /** Peers dialed at start and redialed when lost. */
  readonly peers?: readonly StaticPeer[]
  /**
   * Peer ids admitted in either direction (genesis validators and configured non-validator peers). Static peers
   * are always admitted. Nobody else connects to this node or is dialed by it.
   */
  readonly allow: readonly string[]
  /** Redial back-off: first delay and cap, in ms (defaults 250 and 10,000). */
  readonly redialMinMs?: number
  readonly redialMaxMs?: number
  /** Penalty for a malformed request (default 10). */
  readonly rejectPenalty?: number
  /** A peer whose penalty score reaches this is disconnected (default 50). */
  readonly disconnectThreshold?: number
  /** How long a disconnected misbehaving peer is refused before it may connect again (default 10,000 ms). */
  readonly banMs?: number
  /** Penalty points forgiven per second, so occasional faults never add up to a ban (default 1). */
  readonly penaltyDecayPerSecond?: number
  /** Default request timeout and bounds (defaults 5,000 ms, 1 MiB request, 16 MiB response). */
  readonly requestTimeoutMs?: number
  readonly maxRequestBytes?: number
  readonly maxResponseBytes?: number
  /**
   * A response the requester has not read within this many ms is dropped with its stream (default 10,000: no
   * requester here waits longer for one).
   */
  readonly responseWriteTimeoutMs?: number
  /**
   * Bytes of responses one peer may have on their way at once, over all its streams and connections (default 64 MiB);
   * past it a request is answered with an error. A peer that asks and never reads holds no more than this.
   */
  readonly maxResponseBytesInFlight?: number
  /**
   * An inbound socket that has not completed Noise and Yamux within this many ms is closed (default 3,000;
   * 500 to 60,000). Short, because every pending socket holds a slot; raise it only for links with very high
   * latency.
   */
  readonly inboundUpgradeTimeoutMs?: number
  /** Unauthenticated inbound sockets one address (IPv4, or IPv6 /64) may hold (default 4; 1 to 1,024). */
  readonly maxPendingInboundPerIp?: number
  /** Unauthenticated inbound sockets all addresses together may hold (default 64; 1 to 65,536). */
  readonly maxPendingInbound?: number
  /** New inbound sockets per second one address may open, bursts of twice that (default 5; 1 to 1,000). */
  readonly inboundPerIpPerSecond?: number
  /** Connections one admitted peer may hold, both directions together (default 3; 1 to 64). */
  readonly maxConnectionsPerPeer?: number
}

/** Bounds of the numeric {@link P2pOptions} that limit inbound connections: [min, max, default]. */
export const P2P_INBOUND_LIMITS = {
  inboundUpgradeTimeoutMs: [500, 60_000, 3_000],
  maxPendingInboundPerIp: [1, 1_024, 4],
  maxPendingInbound: [1, 65_536, 64],
  inboundPerIpPerSecond: [1, 1_000, 5],
  maxConnectionsPerPeer: [1, 64, 3],
} as const satisfies Record<string, readonly [number, number, number]>

/** Misbehaviour is logged once per peer or address per this window. */
const REPORT_WINDOW_MS = 60_000

/** Dependencies of {@link P2p}. */
export interface P2pDependencies {
  readonly logger: Logger
}

/** Events of {@link P2p}: `peer:connect` / `peer:disconnect` carry the peer id string. */
export interface P2pEvents {
  'peer:connect': [peerId: string]
  'peer:disconnect': [peerId: string]
  /** A peer's penalty score crossed the threshold and it was disconnected. */
  'peer:banned': [peerId: string, reason: string]
}

/** Options of one request. */
export interface RequestOptions {
  readonly timeoutMs?: number
  readonly maxResponseBytes?: number
}

/** Options of a request handler. */
export interface HandleOptions {
  /** Largest request accepted (default the node's maxRequestBytes). */
  readonly maxRequestBytes?: number
  /** Concurrent inbound streams per connection (default 16: twice block sync's window of parallel requests). */
  readonly maxInboundStreams?: number
}

const FRAME_HEADER = 4
const STATUS_OK = 0
const STATUS_ERROR = 1
const MAX_ERROR_REASON = 512

interface PenaltyState {
  score: number
  updatedAt: number
}

interface RedialState {
  readonly peer: StaticPeer
  readonly addr: Multiaddr
  delayMs: number
  timer?: NodeJS.Timeout
  dialing: boolean
}

/** The peer-to-peer layer of a node. Construct, `start()`, use, `stop()`. */
export class P2p extends EventEmitter<P2pEvents> {
  private readonly opts: Required<Omit<P2pOptions, 'peers'>> & { peers: readonly StaticPeer[] }
  private readonly log: Logger
  private readonly allowed = new Set<string>()
  private readonly banned = new Map<string, number>()
  /** Bytes of responses being written to each peer ({@link P2pOptions.maxResponseBytesInFlight}). */
  private readonly responding = new Map<string, number>()
  private busyCount = 0
  private readonly penalties = new Map<string, PenaltyState>()
  private readonly redials = new Map<string, RedialState>()
  private readonly connected = new Set<string>()
  /** Inbound connections of admitted peers between Noise and the end of the upgrade, per peer. */
  private readonly upgrading = new Map<string, Set<MultiaddrConnection>>()
  private readonly guard: InboundGuard
  private readonly reports = new ThrottledLog({ windowMs: REPORT_WINDOW_MS, maxKeys: 1024 })
  private node?: Libp2p
  private running = false
  /** This node's peer id string. */
  readonly peerId: string

  constructor(options: P2pOptions, dependencies: P2pDependencies) {
    super()
    this.log = dependencies.logger
    this.opts = {
      seed: options.seed,
      listen: options.listen,
      peers: options.peers ?? [],
      allow: options.allow,
      redialMinMs: options.redialMinMs ?? 250,
      redialMaxMs: options.redialMaxMs ?? 10_000,
      rejectPenalty: options.rejectPenalty ?? 10,
      disconnectThreshold: options.disconnectThreshold ?? DISCONNECT_SCORE,
      banMs: options.banMs ?? 10_000,
      penaltyDecayPerSecond: options.penaltyDecayPerSecond ?? 1,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      maxRequestBytes: options.maxRequestBytes ?? 1024 * 1024,
      maxResponseBytes: options.maxResponseBytes ?? 16 * 1024 * 1024,
      responseWriteTimeoutMs: options.responseWriteTimeoutMs ?? 10_000,
      maxResponseBytesInFlight: options.maxResponseBytesInFlight ?? 64 * 1024 * 1024,
      inboundUpgradeTimeoutMs: bounded(options, 'inboundUpgradeTimeoutMs'),
      maxPendingInboundPerIp: bounded(options, 'maxPendingInboundPerIp'),
      maxPendingInbound: bounded(options, 'maxPendingInbound'),
      inboundPerIpPerSecond: bounded(options, 'inboundPerIpPerSecond'),
      maxConnectionsPerPeer: bounded(options, 'maxConnectionsPerPeer'),
    }
    this.guard = new InboundGuard(
      {
        maxPendingPerIp: this.opts.maxPendingInboundPerIp,
        maxPending: this.opts.maxPendingInbound,
        perIpPerSecond: this.opts.inboundPerIpPerSecond,
        logWindowMs: REPORT_WINDOW_MS,
      },
      { logger: this.log },
    )
    const key = libp2pPrivateKeyFromSeed(options.seed)
    this.privateKey = key
    this.peerId = peerIdFromPrivateKey(key).toString()
    for (const id of this.parseAllowed(options.allow)) this.allowed.add(id)
    for (const p of this.opts.peers) this.allowed.add(peerIdFromString(p.peerId).toString())
  }

  /**
   * The admitted peer ids as libp2p spells them. The list follows governance, whose votes check a peer id's form only
   * (ledger/governance.ts PEER_ID_RE): a vote for an add with a peer id that is no libp2p peer id is left out here,
   * never thrown on, or one validator's vote would stop every node that commits it, and keep it from starting again.
   */
  private parseAllowed(peerIds: readonly string[]): string[] {
    const out: string[] = []
    for (const id of peerIds) {
      try {
        out.push(peerIdFromString(id).toString())
      } catch (e) {
        this.log.warn({ peer: id, err: (e as Error).message }, 'not a libp2p peer id: not admitted')
      }
    }
    return out
  }

  private readonly privateKey: ReturnType<typeof libp2pPrivateKeyFromSeed>

  /** Starts listening and dials the static peers. */
  async start(): Promise<void> {
    if (this.running) return
    const gater = {
      denyDialPeer: (peer: PeerId) => !this.isAdmitted(peer.toString()),
      // before a byte is read: only the remote address is known (InboundGuard)
      denyInboundConnection: (maConn: MultiaddrConnection) => !this.guard.open(maConn),
      denyInboundEncryptedConnection: (peer: PeerId, maConn: MultiaddrConnection) => this.refuseInbound(peer.toString(), maConn),
      denyOutboundEncryptedConnection: (peer: PeerId) => !this.isAdmitted(peer.toString()),
      denyInboundUpgradedConnection: (peer: PeerId, maConn: MultiaddrConnection) => {
        this.upgrading.get(peer.toString())?.delete(maConn)
        return !this.isAdmitted(peer.toString())
      },
      denyOutboundUpgradedConnection: (peer: PeerId) => !this.isAdmitted(peer.toString()),
    }
    this.node = await createLibp2p({
      privateKey: this.privateKey,
      addresses: { listen: [...this.opts.listen] },
      transports: [tcp()],
      connectionEncrypters: [(components) => cheapFraming(noise()(components))],
      // every protocol caps its own inbound streams per connection (16 at most); this bounds the streams a peer
      // may open before naming a protocol
      streamMuxers: [() => fewerWindowUpdates(yamux({ maxInboundStreams: 256 })())],
      connectionGater: gater,
      connectionManager: {
        maxConnections: Math.max(64, this.allowed.size * 4),
        // a socket that has not authenticated by then is closed, freeing its slot
        inboundUpgradeTimeout: this.opts.inboundUpgradeTimeoutMs,
        // pending sockets and connection rates are limited per address by the gater (InboundGuard), which exempts
        // known peers' addresses; libp2p's global counters cannot tell them apart, so they must never refuse
        maxIncomingPendingConnections: Number.MAX_SAFE_INTEGER,
        inboundConnectionThreshold: Number.MAX_SAFE_INTEGER,
        reconnectRetries: 0,
      },
      // a busy connection can miss a ping deadline; dropping it would cost more than the stall (docs/p2p.md)
      connectionMonitor: { abortConnectionOnPingFailure: false },
      services: {
        identify: identify(),
      },
    })
    const node = this.node
    node.addEventListener('peer:connect', (evt) => this.onPeerConnect(evt.detail.toString()))
    node.addEventListener('peer:disconnect', (evt) => this.onPeerDisconnect(evt.detail.toString()))
    this.running = true
    for (const peer of this.opts.peers) this.addStaticPeer(peer)
    this.log.info({ peerId: this.peerId, listen: this.addresses() }, 'p2p started')
  }

  /**
   * Adds a static peer after start (it joins the allow-list and is dialed and kept connected). Used when
   * addresses are only known after listening, e.g. tests on port 0.
   */
  addStaticPeer(peer: StaticPeer): void {
    const id = peerIdFromString(peer.peerId).toString()
    if (id === this.peerId) return
    this.allowed.add(id)
    if (!this.running || this.redials.has(id)) return
    let addr = multiaddr(peer.multiaddr)
    this.exemptStaticAddress(id, addr)
    if (addr.getComponents().every((c) => c.name !== 'p2p')) addr = addr.encapsulate(`/p2p/${id}`)
    this.redials.set(id, { peer: { peerId: id, multiaddr: peer.multiaddr }, addr, delayMs: this.opts.redialMinMs, dialing: false })
    this.dialSoon(id, 0)
  }

  /**
   * Replaces the peers admitted besides the static ones (the validator sets follow governance: added validators are
   * admitted, removed ones refused). A connected peer that is no longer admitted is disconnected at once, and the
   * address it connected from loses its exemption from the limits on unauthenticated sockets.
   */
  setAllowed(peerIds: readonly string[]): void {
    const next = new Set<string>()
    for (const id of this.parseAllowed(peerIds)) next.add(id)
    for (const p of this.opts.peers) next.add(peerIdFromString(p.peerId).toString())
    for (const id of this.redials.keys()) next.add(id)
    const dropped = [...this.allowed].filter((id) => !next.has(id))
    this.allowed.clear()
    for (const id of next) this.allowed.add(id)
    for (const id of dropped) {
      // the address it connected from counts like any other again
      this.guard.setExempt(`seen:${id}`, [])
      if (!this.connected.has(id)) continue
      this.log.info({ peer: id }, 'peer no longer admitted: disconnecting')
      void this.node?.hangUp(peerIdFromString(id)).catch((e: Error) => this.log.debug({ err: e.message }, 'hang up failed'))
    }
  }

  /** Closes every connection and stops libp2p. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const r of this.redials.values()) if (r.timer !== undefined) clearTimeout(r.timer)
    this.redials.clear()
    await this.node?.stop()
    this.connected.clear()
    this.log.info('p2p stopped')
  }

  /** The addresses this node listens on, each ending in `/p2p/<peer id>`. */
  addresses(): string[] {
    return (this.node?.getMultiaddrs() ?? []).map((a) => a.toString())
  }

  /** Peer ids of the admitted peers currently connected. */
  peers(): string[] {
    return [...this.connected].sort()
  }

  /** Number of admitted peers currently connected (for health and metrics). */
  get peerCount(): number {
    return this.connected.size
  }

  /** Requests answered `busy` for the responses their peer had not read yet (for logs, metrics and tests). */
  get busyAnswers(): number {
    return this.busyCount
  }

  /** Counters of inbound sockets admitted and refused before authentication (for logs, metrics and tests). */
  get inboundStats(): Readonly<InboundGuardStats> {
    return this.guard.stats
  }

  /**
   * Serves a request/response protocol (e.g. `/tally/blocks/1`): one length-prefixed request and one
   * length-prefixed response per stream. Call after start.
   */
  async handle(protocol: string, handler: RequestHandler, options: HandleOptions = {}): Promise<void> {
    const maxRequest = options.maxRequestBytes ?? this.opts.maxRequestBytes
    await this.requireNode().handle(
      protocol,
      (stream: Stream, connection: Connection) => {
        void this.serve(stream, connection.remotePeer.toString(), handler, maxRequest)
      },
      { maxInboundStreams: options.maxInboundStreams ?? 16 },
    )
  }

  /** Serves inbound streams of a long-lived protocol (see {@link DirectStreams}). Call after start. */
  async serveStreams(protocol: string, onStream: (stream: Stream, from: string) => void, maxInboundStreams: number): Promise<void> {
    await this.requireNode().handle(
      protocol,
      (stream: Stream, connection: Connection) => {
        onStream(stream, connection.remotePeer.toString())
      },
      { maxInboundStreams },
    )
  }

  /** Opens a stream of a protocol to an admitted peer (over its existing connection when there is one). */
  async openStream(peerId: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    if (!this.isAdmitted(peerId)) throw new Error(`peer ${peerId} is not admitted`)
    return this.requireNode().dialProtocol(peerIdFromString(peerId), protocol, { signal })
  }

  /** Sends one request to a peer and waits for its response, with a deadline and a bounded response size. */
  async request(peerId: string, protocol: string, req: Uint8Array, options: RequestOptions = {}): Promise<RequestResult> {
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs
    const maxResponse = options.maxResponseBytes ?? this.opts.maxResponseBytes
    const fail = (code: RequestFailureCode, reason: string) => err<RequestError>({ code, reason })
    if (!this.isAdmitted(peerId)) return fail('not_allowed', `peer ${peerId} is not admitted`)
    if (req.byteLength > this.opts.maxRequestBytes) {
      return fail('too_large', `request of ${req.byteLength} bytes exceeds ${this.opts.maxRequestBytes}`)
    }
    const signal = AbortSignal.timeout(timeoutMs)
    let stream: Stream
    try {
      stream = await this.requireNode().dialProtocol(peerIdFromString(peerId), protocol, { signal })
    } catch (e) {
      if (signal.aborted) return fail('timeout', `no stream within ${timeoutMs} ms`)
      return fail('unreachable', (e as Error).message)
    }
    try {
      const reading = readFrame(stream, maxResponse + 1, signal)
      await writeFrame(stream, [req])
      const frame = await reading
      if (!frame.ok) {
        stream.abort(new Error(frame.error.reason))
        if (frame.error.code === 'too_large') return fail('too_large', `response ${frame.error.reason}`)
        if (signal.aborted) return fail('timeout', `no response within ${timeoutMs} ms`)
        return fail('protocol', frame.error.reason)
      }
      await stream.close().catch(() => undefined)
      const body = frame.value
      if (body.byteLength < 1) return fail('protocol', 'empty response frame')
      if (body[0] === STATUS_OK) return ok(body.subarray(1))
      if (body[0] === STATUS_ERROR) {
        const reason = new TextDecoder().decode(body.subarray(1, 1 + MAX_ERROR_REASON))
        return fail('remote_error', reason)
      }
      return fail('protocol', `unknown response status ${body[0]}`)
    } catch (e) {
      stream.abort(e as Error)
      if (signal.aborted) return fail('timeout', `no response within ${timeoutMs} ms`)
      return fail('unreachable', (e as Error).message)
    }
  }

  /** Bytes of responses on their way to a peer, not yet taken by its stream ({@link P2pOptions.maxResponseBytesInFlight}). */
  responseBytesInFlight(peerId: string): number {
    return this.responding.get(peerId) ?? 0
  }

  /**
   * Adds penalty points to a peer (for invalid data it sent, reported by any component). At the threshold the
   * peer is disconnected and refused for banMs; static peers are redialed after that (a validator that sent bad
   * data may have had a bug since fixed).
   */
  penalize(peerId: string, points: number, reason: string): void {
    // a banned peer is being disconnected: what it sent meanwhile adds nothing (and no log line)
    if (peerId === this.peerId || !this.running || this.isBanned(peerId)) return
    const now = Date.now()
    const state = this.penalties.get(peerId) ?? { score: 0, updatedAt: now }
    // forgiven a second at a time: faults within one second add up whole (two 25-point faults reach 50); a score
    // forgiven whole starts its seconds afresh, as does one whose time is ahead of the clock (set back)
    const seconds = Math.max(0, Math.floor((now - state.updatedAt) / 1000))
    const left = state.score - seconds * this.opts.penaltyDecayPerSecond
    if (left <= 0 || now < state.updatedAt) {
      state.score = Math.max(0, left) + points
      state.updatedAt = now
    } else {
      state.score = left + points
      state.updatedAt += seconds * 1000
    }
    this.penalties.set(peerId, state)
    this.log.debug({ peer: peerId, points, score: state.score, reason }, 'peer penalized')
    if (state.score >= this.opts.disconnectThreshold) this.ban(peerId, reason)
  }

  /** A peer's current penalty score (0 for a well-behaved peer). */
  penaltyOf(peerId: string): number {
    const s = this.penalties.get(peerId)
    if (s === undefined) return 0
    return Math.max(0, s.score - Math.max(0, Math.floor((Date.now() - s.updatedAt) / 1000)) * this.opts.penaltyDecayPerSecond)
  }

  private ban(peerId: string, reason: string): void {
    this.banned.set(peerId, Date.now() + this.opts.banMs)
    this.penalties.delete(peerId)
    this.guard.setExempt(`seen:${peerId}`, [])
    this.log.warn({ peer: peerId, reason, banMs: this.opts.banMs }, 'disconnecting misbehaving peer')
    this.emit('peer:banned', peerId, reason)
    void this.node?.hangUp(peerIdFromString(peerId)).catch((e: Error) => this.log.debug({ err: e.message }, 'hang up failed'))
    const r = this.redials.get(peerId)
    if (r !== undefined) {
      r.delayMs = this.opts.redialMinMs
      this.dialSoon(peerId, this.opts.banMs)
    }
  }

  /** True while a misbehaving peer is refused (messages already in flight from it are dropped unread). */
  isBanned(peerId: string): boolean {
    const until = this.banned.get(peerId)
    if (until === undefined) return false
    if (Date.now() >= until) {
      this.banned.delete(peerId)
      this.log.info({ peer: peerId }, 'ban over: peer re-admitted')
      return false
    }
    return true
  }

  private isAdmitted(peerId: string): boolean {
    return this.allowed.has(peerId) && !this.isBanned(peerId)
  }

  /**
   * The inbound gate once Noise has proved the remote's identity: refuses peers that are not admitted (their
   * address pays for the handshake) and admitted peers already holding maxConnectionsPerPeer connections
   * (penalized: an honest node needs at most one per direction, plus one not yet noticed dead). An admitted
   * peer's address becomes exempt from the limits on unauthenticated sockets.
   */
  private refuseInbound(peerId: string, maConn: MultiaddrConnection): boolean {
    const address = maConn.remoteAddr.toString()
    if (!this.isAdmitted(peerId)) {
      this.guard.refusedPeer(maConn)
      if (this.allowed.has(peerId)) {
        if (this.reports.note(`banned:${peerId}`) !== undefined) this.log.debug({ peer: peerId, address }, 'refused banned peer')
        return true
      }
      const report = this.reports.note(`outsider:${peerId}`)
      if (report !== undefined) {
        this.log.warn({ peer: peerId, address, suppressed: report.suppressed, windowMs: REPORT_WINDOW_MS }, 'refused peer outside the allow-list')
      }
      return true
    }
    this.guard.settle(maConn)
    const key = ipKeyOfMultiaddr(maConn.remoteAddr)
    if (key !== undefined) this.guard.setExempt(`seen:${peerId}`, [key])
    const upgrading = this.upgrading.get(peerId) ?? new Set<MultiaddrConnection>()
    const held = (this.node?.getConnections(peerIdFromString(peerId)).filter((c) => c.status === 'open').length ?? 0) + upgrading.size
    if (held >= this.opts.maxConnectionsPerPeer) {
      const report = this.reports.note(`connections:${peerId}`)
      if (report !== undefined) {
        this.log.warn(
          { peer: peerId, address, held, max: this.opts.maxConnectionsPerPeer, suppressed: report.suppressed },
          'refused a connection beyond the per-peer limit',
        )
      }
      this.penalize(peerId, this.opts.rejectPenalty, `more than ${this.opts.maxConnectionsPerPeer} connections`)
      return true
    }
    upgrading.add(maConn)
    this.upgrading.set(peerId, upgrading)
    maConn.addEventListener(
      'close',
      () => {
        upgrading.delete(maConn)
        if (upgrading.size === 0 && this.upgrading.get(peerId) === upgrading) this.upgrading.delete(peerId)
      },
      { once: true },
    )
    return false
  }

  /** Makes a static peer's address exempt from the limits on unauthenticated sockets (DNS names are resolved). */
  private exemptStaticAddress(peerId: string, addr: Multiaddr): void {
    const key = ipKeyOfMultiaddr(addr)
    if (key !== undefined) {
      this.guard.setExempt(`static:${peerId}`, [key])
      return
    }
    const host = addr.getComponents().find((c) => c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6')?.value
    if (host === undefined) return
    lookup(host, { all: true }).then(
      (found) => {
        if (!this.running) return
        this.guard.setExempt(
          `static:${peerId}`,
          found.map((f) => ipKey(f.address)).filter((k): k is string => k !== undefined),
        )
      },
      (e: Error) => this.log.debug({ peer: peerId, host, err: e.message }, 'static peer address did not resolve'),
    )
  }

  private requireNode(): Libp2p {
    if (!this.running || this.node === undefined) throw new Error('p2p: not started')
    return this.node
  }

  private onPeerConnect(peerId: string): void {
    if (!this.allowed.has(peerId) || this.connected.has(peerId)) return
    this.connected.add(peerId)
    const r = this.redials.get(peerId)
    if (r !== undefined) r.delayMs = this.opts.redialMinMs
    this.log.info({ peer: peerId, peers: this.connected.size }, 'peer connected')
    this.emit('peer:connect', peerId)
  }

  private onPeerDisconnect(peerId: string): void {
    if (!this.connected.delete(peerId)) return
    this.log.info({ peer: peerId, peers: this.connected.size }, 'peer disconnected')
    this.emit('peer:disconnect', peerId)
    if (this.redials.has(peerId)) this.dialSoon(peerId, this.isBanned(peerId) ? this.opts.banMs : this.opts.redialMinMs)
  }

  private dialSoon(peerId: string, delayMs: number): void {
    const r = this.redials.get(peerId)
    if (r === undefined || !this.running) return
    if (r.timer !== undefined) clearTimeout(r.timer)
    r.timer = setTimeout(() => {
      r.timer = undefined
      void this.dial(r)
    }, delayMs)
    r.timer.unref()
  }

  private async dial(r: RedialState): Promise<void> {
    const id = r.peer.peerId
    if (!this.running || r.dialing || this.connected.has(id)) return
    if (this.isBanned(id)) {
      this.dialSoon(id, Math.max(0, (this.banned.get(id) ?? 0) - Date.now()))
      return
    }
    // a name may resolve elsewhere now
    if (ipKeyOfMultiaddr(r.addr) === undefined) this.exemptStaticAddress(id, r.addr)
    r.dialing = true
    try {
      await this.node!.dial(r.addr, { signal: AbortSignal.timeout(5_000) })
      r.delayMs = this.opts.redialMinMs
    } catch (e) {
      this.log.debug({ peer: id, err: (e as Error).message, retryMs: r.delayMs }, 'dial failed')
      const delay = r.delayMs
      r.delayMs = Math.min(this.opts.redialMaxMs, r.delayMs * 2)
      this.dialSoon(id, delay)
    } finally {
      r.dialing = false
    }
  }

  private async serve(stream: Stream, from: string, handler: RequestHandler, maxRequest: number): Promise<void> {
    const signal = AbortSignal.timeout(this.opts.requestTimeoutMs)
    try {
      const frame = await readFrame(stream, maxRequest, signal)
      if (!frame.ok) {
        stream.abort(new Error(frame.error.reason))
        if (frame.error.code !== 'aborted') this.penalize(from, this.opts.rejectPenalty, `bad request on ${stream.protocol}: ${frame.error.reason}`)
        return
      }
      let status = STATUS_OK
      let body: Uint8Array
      // a peer holding half its budget unread is refused before its request is served: else each request of a peer
      // that keeps the budget nearly full would cost a response (blocks read from disk and encoded) thrown away
      const held = this.responding.get(from) ?? 0
      if (held >= this.opts.maxResponseBytesInFlight / 2) {
        this.busyCount++
        status = STATUS_ERROR
        body = errorReason(`busy: ${held} bytes of responses to this peer are not read yet`)
      } else {
        try {
          body = await handler(frame.value, from)
        } catch (e) {
          status = STATUS_ERROR
          body = errorReason((e as Error).message ?? e)
        }
      }
      const inFlight = this.responding.get(from) ?? 0
      if (status === STATUS_OK && inFlight + body.byteLength > this.opts.maxResponseBytesInFlight) {
        this.busyCount++
        status = STATUS_ERROR
        body = errorReason(`busy: ${inFlight} bytes of responses to this peer are not read yet`)
      }
      this.responding.set(from, inFlight + body.byteLength)
      const writeDeadline = AbortSignal.timeout(this.opts.responseWriteTimeoutMs)
      try {
        await writeFrame(stream, [Uint8Array.of(status), body], writeDeadline)
        // the response is held here until the stream has handed all of it to the muxer, which sends no more than the
        // peer makes room for by reading: a peer that reads part of it and stops holds it no longer than the deadline
        await stream.close({ signal: writeDeadline })
      } finally {
        const left = (this.responding.get(from) ?? 0) - body.byteLength
        if (left > 0) this.responding.set(from, left)
        else this.responding.delete(from)
      }
    } catch (e) {
      stream.abort(e as Error)
      this.log.debug({ peer: from, protocol: stream.protocol, err: (e as Error).message }, 'request stream failed')
    }
  }
}

/** Why a frame could not be read: it exceeds its bound, the deadline or the stream cut it short, or it is not one frame. */
const FRAME_ERROR_CODES = ['too_large', 'aborted', 'malformed'] as const

/** A failed frame read: its code and the facts. */
interface FrameError {
  readonly code: (typeof FRAME_ERROR_CODES)[number]
  readonly reason: string
}

/** The bytes of one frame, or why there are none. */
type FrameResult = Result<Uint8Array, FrameError>

/**
 * Writes one frame of the parts' bytes: u32 big-endian length, then the parts. Resolves once the stream has taken
 * them; throws if the stream closes, or `signal` aborts, first.
 */
async function writeFrame(stream: Stream, parts: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
  let length = 0
  for (const p of parts) length += p.byteLength
  const header = new Uint8Array(FRAME_HEADER)
  new DataView(header.buffer).setUint32(0, length)
  // what send refuses to take at once it buffers, asking the writer to wait for the drain before more
  let more = stream.send(header)
  for (const p of parts) more = stream.send(p) && more
  if (!more) await stream.onDrain(signal === undefined ? {} : { signal })
}

/** The bytes of an error response's reason, bounded. */
function errorReason(message: unknown): Uint8Array {
  return new TextEncoder().encode(String(message).slice(0, MAX_ERROR_REASON))
}

/** Reads exactly one frame of at most maxBytes from the stream. */
async function readFrame(stream: Stream, maxBytes: number, signal: AbortSignal): Promise<FrameResult> {
  const chunks: Uint8Array[] = []
  let have = 0
  let need = -1
  const onAbort = () => stream.abort(new Error('deadline passed'))
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const chunk of stream) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
      chunks.push(bytes)
      have += bytes.byteLength
      if (need < 0 && have >= FRAME_HEADER) {
        const head = concatBytes(...chunks)
        need = new DataView(head.buffer, head.byteOffset, FRAME_HEADER).getUint32(0)
        if (need > maxBytes) return err({ code: 'too_large', reason: `frame of ${need} bytes exceeds ${maxBytes}` })
        chunks.length = 0
        chunks.push(head)
      }
      if (need >= 0 && have >= FRAME_HEADER + need) {
        if (have > FRAME_HEADER + need) return err({ code: 'malformed', reason: 'bytes after the frame' })
        return ok(concatBytes(...chunks).subarray(FRAME_HEADER))
      }
    }
    if (signal.aborted) return err({ code: 'aborted', reason: 'deadline passed' })
    return err({ code: 'malformed', reason: `stream ended after ${have} bytes of a frame` })
  } catch (e) {
    if (signal.aborted) return err({ code: 'aborted', reason: 'deadline passed' })
    return err({ code: 'aborted', reason: (e as Error).message })
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** An inbound-limit option, checked against {@link P2P_INBOUND_LIMITS}: an integer within bounds, or the default. */
function bounded(options: P2pOptions, name: keyof typeof P2P_INBOUND_LIMITS): number {
  const [min, max, fallback] = P2P_INBOUND_LIMITS[name]
  const v = options[name]
  if (v === undefined) return fallback
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`p2p option ${name} must be an integer from ${min} to ${max}, got ${v}`)
  return v
}
