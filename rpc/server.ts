import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { type Duplex, Readable } from 'node:stream'
import Koa from 'koa'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import { err, ok, type Result } from '../crypto/result.js'
import type { RpcBackend } from './backend.js'
import {
  type Answer,
  answerBytes,
  budgetBusy,
  type BudgetRefusal,
  ByteBudget,
  DEFAULT_MAX_HEAVY_CALLS,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_MAX_RESULT_BYTES_IN_FLIGHT,
  Dispatcher,
  type CallContext,
} from './dispatcher.js'
import { applicationError, type JsonRpcError, StandardErrorCode } from './errors.js'
import { silentLogger, type RpcLogger } from './logger.js'
import { createMethods } from './methods.js'
import type { Metrics, RpcRefusal } from './metrics.js'
import { SubscriptionHub, type SubscriberSession, type Subscription } from './subscriptions.js'

/**
 * The node's JSON-RPC 2.0 server: koa on one HTTP server for `POST /` (JSON-RPC), `GET /health` and
 * `GET /metrics`, and a `ws` WebSocket endpoint on `/ws` (JSON-RPC plus chain_subscribe/chain_unsubscribe).
 *
 * Every input is bounded: body size (413, counted while streaming), the bodies held at once over all requests
 * (503; WebSocket messages, whole or being received, count with them), batch length, time per call, connections
 * (HTTP and WebSocket together, WebSocket ones apart, and those of one client address), WebSocket message size,
 * subscriptions per connection, each connection's send queue (a subscriber that does not read is closed rather than
 * allowed to grow memory or slow the node), the answers held for clients that do not take them (a connection that
 * stalls is closed), the results held by requests still running, and WebSocket peers that answer no ping (closed).
 * One client address may hold a share of each byte budget, as of the connections.
 * Nothing a client sends can throw out of a handler: bad JSON and bad requests become JSON-RPC errors.
 */

/** Server settings. Every field has a default (DEFAULT_RPC_SERVER_OPTIONS; `maxConnectionsPerAddress`, its own). */
export interface RpcServerOptions {
  /** Interface to listen on. */
  readonly host: string
  /** Port; 0 picks a free one (read it from `port` after `start`). */
  readonly port: number
  /** Largest request body in bytes; larger ones get HTTP 413. */
  readonly maxBodyBytes: number
  /** Most members in a batch. */
  readonly maxBatch: number
  /** Most time a call may take before it is answered with a `timeout` error. */
  readonly requestTimeoutMs: number
  /** Origins allowed by CORS (`*` for any); empty sends no CORS headers. */
  readonly corsOrigins: readonly string[]
  /** Largest WebSocket message in bytes (larger ones close the connection with 1009). */
  readonly wsMaxMessageBytes: number
  /** Most subscriptions one WebSocket connection may hold. */
  readonly wsMaxSubscriptions: number
  /** A connection whose unsent data exceeds this many bytes is dropped as too slow. */
  readonly wsMaxBufferedBytes: number
  /** Most WebSocket connections at once. */
  readonly wsMaxConnections: number
  /**
   * A WebSocket message must be whole this long after its first bytes arrived (after the previous message finished,
   * for one that follows it at once); a connection whose message is not is closed (1008), and what it held given back.
   */
  readonly wsMessageTimeoutMs: number
  /** Most connections at once, HTTP and WebSocket together; the server closes further ones as they are accepted. */
  readonly maxConnections: number
  /**
   * Most connections at once from one client address ({@link addressKey}: an IPv4 address, or an IPv6 /64), HTTP and
   * WebSocket together, loopback included; a further one is answered HTTP 503 (`busy`) on its first request, or
   * closed after a second if it sends none, so that one client cannot take every slot of `maxConnections`. Unset, a
   * quarter of `maxConnections` (128 of 512): a reverse proxy's clients all come from its address. Its part of
   * `maxConnections` is also the share of `maxBodyBytesInFlight`, `maxResponseBytesInFlight` and
   * `maxResultBytesInFlight` one address may hold (past it, what the whole budget answers), so that one client cannot
   * keep a budget full. An address holding nothing of a budget is bounded by the whole budget only; its share of the
   * request bodies is at least one body (`maxBodyBytes`) or WebSocket message (`wsMaxMessageBytes`) of the largest, and
   * its share of the results at least what one request may carry (32 MiB).
   */
  readonly maxConnectionsPerAddress?: number
  /**
   * Most request-body bytes held at once over all requests, from the first byte read until the request is answered:
   * HTTP bodies, WebSocket messages being received (fragments, a frame half read) and those waiting or running. An
   * HTTP request that would take them past it gets HTTP 503 (`busy`) and is not read further; a whole WebSocket
   * message, `busy`; a WebSocket connection whose message being received would, is closed (1013).
   */
  readonly maxBodyBytesInFlight: number
  /**
   * Most bytes of answers held at once over all requests, HTTP and WebSocket, from when an answer is made until the
   * client has taken it; an answer that would take them past it is replaced by `busy` (over HTTP, a 503).
   */
  readonly maxResponseBytesInFlight: number
  /**
   * Most bytes of results held at once by requests still running, HTTP and WebSocket: each call's result counts from
   * when it is made until its request is answered (a batch's members wait for the whole batch). A call whose result
   * would take them past it is answered `busy` (its id echoed; in a batch, that member only).
   */
  readonly maxResultBytesInFlight: number
  /**
   * A connection that takes none of a large answer's bytes for this long is closed, and what it held given back; over
   * WebSocket, one that takes none of the bytes it was sent (within a message being written, too) for this long while
   * a large answer waits.
   */
  readonly responseStallMs: number
  /**
   * Every WebSocket connection is pinged this often; one that has not answered the previous ping is closed, unless it
   * is still taking what was queued before that ping.
   */
  readonly wsPingIntervalMs: number
}

/** Defaults for every option. */
export const DEFAULT_RPC_SERVER_OPTIONS: RpcServerOptions = Object.freeze({
  host: '127.0.0.1',
  port: 8545,
  maxBodyBytes: 1 << 20,
  maxBatch: 100,
  requestTimeoutMs: 10_000,
  corsOrigins: [],
  wsMaxMessageBytes: 1 << 20,
  wsMaxSubscriptions: 32,
  wsMaxBufferedBytes: 4 << 20,
  wsMaxConnections: 256,
  wsMessageTimeoutMs: 30_000,
  maxConnections: 512,
  maxBodyBytesInFlight: 64 << 20,
  maxResponseBytesInFlight: 64 << 20,
  maxResultBytesInFlight: DEFAULT_MAX_RESULT_BYTES_IN_FLIGHT,
  responseStallMs: 10_000,
  wsPingIntervalMs: 30_000,
})

/** What the server needs. */
export interface RpcServerDependencies {
  readonly backend: RpcBackend
  readonly metrics: Metrics
  readonly logger?: RpcLogger
}

/** Most WebSocket messages a connection may have waiting for processing before it is dropped. */
const WS_MAX_QUEUED_MESSAGES = 64
/** Room over a WebSocket message's payload for the heads of its frames (2-14 bytes each) while it is received. */
const WS_FRAME_HEADS_BYTES = 1024
/** How long a closing WebSocket gets for its close handshake before the socket is destroyed. */
const WS_CLOSE_GRACE_MS = 1000

/**
 * Why a request body was not read: it is over the limit (HTTP 413), the bodies held at once would pass their budget
 * (503), or the request stream failed or was aborted (400).
 */
const BODY_ERROR_CODES = ['too_large', 'busy', 'stream_failed'] as const

/** The HTTP status each body failure is answered with. */
const BODY_ERROR_STATUS: Readonly<Record<(typeof BODY_ERROR_CODES)[number], number>> = Object.freeze({
  too_large: 413,
  busy: 503,
  stream_failed: 400,
})

/** The private fields of a `ws` receiver that tell how much of a message it holds (`ws` keeps no public count). */
interface WsReceiverState {
  /** Bytes received and not yet parsed: the frame being read, and any after it. */
  readonly _bufferedBytes?: unknown
  /** Payload bytes of the finished fragments of the message being assembled (no compression is offered). */
  readonly _messageLength?: unknown
  /** Chunks written to the receiver while it was busy, not yet taken in. */
  readonly writableLength?: unknown
}

/**
 * Bytes `ws` holds of the messages a connection is receiving and has not delivered yet: a message in fragments, a
 * frame half read. The unit tests pin this to the installed `ws` (test/unit/rpc/websocket.test.ts, "messages being
 * received").
 */
function receivingBytes(ws: WebSocket): number {
  const r = (ws as unknown as { _receiver?: WsReceiverState })._receiver
  if (r === undefined) return 0
  const n = (v: unknown) => (typeof v === 'number' ? v : 0)
  return n(r._bufferedBytes) + n(r._messageLength) + n(r.writableLength)
}

/** How often, at most, refused connections are logged (with their count since the last line). */
const DROP_LOG_INTERVAL_MS = 10_000

/** How long a connection refused for its address may take to send its first request before it is closed. */
const REFUSED_GRACE_MS = 1000

/**
 * What connections are counted under for `maxConnectionsPerAddress`: an IPv4 address as it is (an IPv4-mapped IPv6
 * address as its IPv4 address), an IPv6 address by its /64 prefix, the share one host usually gets.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped !== null) return mapped[1]!
  if (!address.includes(':')) return address
  const bare = address.split('%')[0]!
  // an embedded IPv4 address (the last group) stands for two groups
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0)
  const halves = bare.split('::')
  const left = halves[0] === '' ? [] : halves[0]!.split(':')
  const right = halves.length < 2 || halves[1] === '' ? [] : halves[1]!.split(':')
  const zeros = halves.length < 2 ? [] : Array<string>(Math.max(0, 8 - width(left) - width(right))).fill('0')
  const groups = [...left, ...zeros, ...right].slice(0, 4).map((g) => (g.includes('.') ? g : Number.parseInt(g, 16).toString(16)))
  return `${groups.join(':')}::/64`
}

/**
 * The address key of a connection's client ({@link addressKey}); the address is read when the connection is accepted,
 * and the socket keeps it.
 */
function keyOf(socket: Duplex): string {
  return addressKey((socket as Partial<Socket>).remoteAddress ?? '')
}

/** The body of the 503 a connection refused for its address (`maxConnectionsPerAddress`) is answered with. */
function tooManyFromAddress(limit: number): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: applicationError('busy', `too many connections from this address: at most ${limit} at once; close one, or use fewer`),
  })
}

/** A body read's failure: its code and the reason the client is told; for `busy`, which bound of the budget refused. */
interface BodyError {
  readonly code: (typeof BODY_ERROR_CODES)[number]
  readonly reason: string
  readonly refusal?: BudgetRefusal
}

/** The body's text and its size in bytes, or why it was not read. */
type BodyResult = Result<{ readonly text: string; readonly bytes: number }, BodyError>

/**
 * Reads a request body up to `limit` bytes, counting while streaming and taking each chunk's bytes from `budget` under
 * the client's address key; stops reading (and buffering) past either. On success the caller gives the body's bytes
 * back (under the same key) once it is done with the request; on failure they are given back here.
 */
function readBody(req: IncomingMessage, limit: number, budget: ByteBudget, address: string): Promise<BodyResult> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.resolve(err({ code: 'too_large', reason: `body larger than ${limit} bytes` }))
  }
  const busy = (refusal: BudgetRefusal): BodyError => ({ code: 'busy', reason: budgetBusy(refusal, 'request bodies').message, refusal })
  const refused = declared === undefined ? undefined : budget.refusal(Number(declared), address)
  if (refused !== undefined) return Promise.resolve(err(busy(refused)))
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (r: BodyResult) => {
      if (done) return
      done = true
      if (!r.ok) budget.give(size, address)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
      req.off('close', onClose)
      resolve(r)
    }
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit) {
        req.pause()
        finish(err({ code: 'too_large', reason: `body larger than ${limit} bytes` }))
      } else {
        const refusal = budget.claim(chunk.length, address)
        if (refusal !== undefined) {
          req.pause()
          finish(err(busy(refusal)))
          return
        }
        size += chunk.length
        chunks.push(chunk)
      }
    }
    const onEnd = () => finish(ok({ text: Buffer.concat(chunks, size).toString('utf8'), bytes: size }))
    const onError = () => finish(err({ code: 'stream_failed', reason: 'request stream failed' }))
    const onAborted = () => finish(err({ code: 'stream_failed', reason: 'request aborted' }))
    // closed before its end by any other path (a timeout's destroy): what it held is given back all the same
    const onClose = () => finish(err({ code: 'stream_failed', reason: 'request closed before its end' }))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
    req.on('close', onClose)
  })
}

/** The Content-Type of every JSON answer, as koa's `ctx.type = 'application/json'` spells it, set without its look-up. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

const jsonError = (code: number, message: string) => JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } })

/**
 * Answers of at most this many bytes are not counted against `maxResponseBytesInFlight` (a connection holds one or a
 * few: HTTP reads no further request while an answer waits, a WebSocket send queue is bounded); larger ones are
 * counted, and over HTTP sent in slices of this size, each written out on its own, so that a client taking them slowly
 * shows its progress.
 */
const ANSWER_SLICE_BYTES = 64 * 1024

/** The slices of an answer, views of its bytes (its pieces one after the other; a slice ends within one piece). */
function* slices(pieces: readonly Buffer[]): Generator<Buffer> {
  for (const bytes of pieces) {
    for (let i = 0; i < bytes.length; i += ANSWER_SLICE_BYTES) yield bytes.subarray(i, i + ANSWER_SLICE_BYTES)
  }
}

/** The bytes of an answer's pieces together. */
const byteLength = (pieces: readonly Buffer[]): number => pieces.reduce((n, p) => n + p.length, 0)

/**
 * The answers made instead of one that would take the answers held for clients past `maxResponseBytesInFlight`, or
 * its client address past its share of them.
 */
const ANSWERS_BUSY: Readonly<Record<BudgetRefusal, string>> = Object.freeze({
  node: JSON.stringify({ jsonrpc: '2.0', id: null, error: budgetBusy('node', 'answers on their way to clients') }),
  share: JSON.stringify({ jsonrpc: '2.0', id: null, error: budgetBusy('share', 'answers on their way to clients') }),
})

/** What a WebSocket message is answered with (or its connection closed with) past the request budget or its share. */
const WS_REQUESTS_BUSY: Readonly<Record<BudgetRefusal, JsonRpcError>> = Object.freeze({
  node: budgetBusy('node', 'requests'),
  share: budgetBusy('share', 'requests'),
})

/** One WebSocket connection. */
class WsSession implements SubscriberSession {
  readonly afterResponse: (() => void)[] = []
  readonly subscriptions = new Map<string, Subscription>()
  private closed = false
  /** Bytes counted in the request budget for the messages `ws` is receiving here ({@link receivingBytes}). */
  receiving = 0
  /** When the message being received started ({@link receiving} above 0), undefined while none is. */
  receivingSince: number | undefined
  /** Checks that the message being received is whole within `wsMessageTimeoutMs`. */
  receivingTimer: NodeJS.Timeout | undefined
  /** Whether the peer answered the last ping (or none was sent yet). */
  answeredPing = true
  /** {@link progress} when the last ping was sent or last found unanswered. */
  private progressAtPing = ''
  private queue: Promise<void> = Promise.resolve()
  private queued = 0
  /** Bytes handed to the connection to send; less `bufferedAmount`, what the client has taken. */
  private handed = 0
  private takenAtCheck = 0
  private pendingAtCheck: number | undefined
  private stallTimer: NodeJS.Timeout | undefined
  /** The give-backs of the answers not yet written out, each counted in `answers`. */
  private readonly held = new Set<() => void>()
  /** Aborted once the connection is closed: its request's calls waiting for a heavy turn leave the queue. */
  private readonly gone = new AbortController()

  constructor(
    readonly ws: WebSocket,
    /** The connection's socket: how much of a message being written the client has taken ({@link pendingWrite}). */
    private readonly socket: Duplex,
    private readonly maxBufferedBytes: number,
    private readonly answers: ByteBudget,
    /** The client's address key: what this connection holds of the budgets counts against its share. */
    readonly address: string,
    private readonly stallMs: number,
    private readonly onDrop: (session: WsSession, reason: string) => void,
    private readonly onWorkError: (err: unknown) => void,
    /** Counts an answer the budget refused. */
    private readonly onRefused: (reason: RpcRefusal) => void,
  ) {}

  get isClosed(): boolean {
    return this.closed
  }

  send(message: object): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return false
    return this.sendText(JSON.stringify(message))
  }

  /** Sends a message that is already JSON text; false when the connection is closed or was dropped as too slow. */
  sendText(text: string): boolean {
    if (!this.writable()) return false
    this.handed += text.length
    this.ws.send(text)
    return true
  }

  /**
   * Sends an answer, its bytes counted in `answers` until they are written out (one that would pass the budget is
   * replaced by `busy`). While an answer waits, a connection that takes none of the bytes it was sent for `stallMs`
   * (within the message being written, too: one large answer may take the client many periods) is dropped, as one
   * whose send queue outgrows `maxBufferedBytes` is.
   */
  sendAnswer(answer: Answer): boolean {
    if (!this.writable()) return false
    if (typeof answer === 'string' && answer.length <= ANSWER_SLICE_BYTES / 3) return this.sendText(answer)
    const pieces = answerBytes(answer)
    const bytes = byteLength(pieces)
    if (bytes <= ANSWER_SLICE_BYTES) {
      if (typeof answer === 'string') return this.sendText(answer)
      this.handed += bytes
      this.ws.send(Buffer.concat(pieces), { binary: false })
      return true
    }
    const refused = this.answers.claim(bytes, this.address)
    if (refused !== undefined) {
      this.onRefused(`answers_${refused}`)
      return this.sendText(ANSWERS_BUSY[refused])
    }
    const giveBack = () => {
      if (this.held.delete(giveBack)) this.answers.give(bytes, this.address)
    }
    this.held.add(giveBack)
    this.handed += bytes
    // one frame, as any answer: a result's kept bytes are copied in, not encoded again
    this.ws.send(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, bytes), { binary: false }, giveBack)
    this.watchStall()
    return true
  }

  /** Checks every `stallMs`, while answers wait, that the client took some of what it was sent. */
  private watchStall(): void {
    if (this.stallTimer !== undefined) return
    this.takenAtCheck = this.handed - this.ws.bufferedAmount
    this.pendingAtCheck = this.pendingWrite()
    this.stallTimer = setInterval(() => {
      if (this.held.size === 0 || this.closed) {
        clearInterval(this.stallTimer)
        this.stallTimer = undefined
        return
      }
      // a message leaves the send queue only once written out whole: within one, what is left of the write shows
      // the client taking it
      const taken = this.handed - this.ws.bufferedAmount
      const pending = this.pendingWrite()
      if (taken <= this.takenAtCheck && pending === this.pendingAtCheck) this.drop(1008, `took none of its answer in ${this.stallMs} ms`)
      this.takenAtCheck = Math.max(taken, this.takenAtCheck)
      this.pendingAtCheck = pending
    }, this.stallMs)
    this.stallTimer.unref()
  }

  /** A mark that changes whenever the client takes any of what it was sent. */
  private progress(): string {
    return `${this.handed - this.ws.bufferedAmount}/${this.pendingWrite()}`
  }

  /** Sends a ping, to be answered before the next one. */
  ping(): void {
    this.answeredPing = false
    try {
      this.ws.ping()
    } catch {
      // closing
    }
    this.progressAtPing = this.progress()
  }

  /**
   * Whether the unanswered ping may still wait behind what was queued before it, which the client is taking: it
   * took some of it since the ping was sent or last checked. A ping is written after the messages queued before it.
   */
  pingWaitsBehindProgress(): boolean {
    if (this.ws.bufferedAmount === 0) return false
    const now = this.progress()
    const moved = now !== this.progressAtPing
    this.progressAtPing = now
    return moved
  }

  /**
   * Bytes of the write under way on the socket that the client has not taken yet (the count Node's own socket timeout
   * watches), undefined where the socket does not tell.
   */
  private pendingWrite(): number | undefined {
    const size = (this.socket as { _handle?: { writeQueueSize?: unknown } })._handle?.writeQueueSize
    return typeof size === 'number' ? size : undefined
  }

  notify(subscription: string, result: Uint8Array): boolean {
    if (!this.writable()) return false
    // one text message in three frames, so that the result's bytes go out as they are, shared by every subscription
    const head = `{"jsonrpc":"2.0","method":"chain_subscription","params":{"subscription":${JSON.stringify(subscription)},"result":`
    this.handed += head.length + result.length + 2
    this.ws.send(head, { binary: false, fin: false })
    this.ws.send(result, { binary: false, fin: false })
    this.ws.send('}}', { binary: false, fin: true })
    return true
  }

  /** True when a message may be queued: the connection is open, its send queue within bounds (else it is dropped). */
  private writable(): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return false
    if (this.ws.bufferedAmount > this.maxBufferedBytes) {
      this.drop(1008, `send queue over ${this.maxBufferedBytes} bytes: the client does not read fast enough`)
      return false
    }
    return true
  }

  /** Runs `work` after the connection's earlier messages; false when too many are waiting. */
  enqueue(work: () => Promise<void>): boolean {
    if (this.queued >= WS_MAX_QUEUED_MESSAGES) return false
    this.queued++
    this.queue = this.queue
      .then(work)
      .catch((err: unknown) => this.onWorkError(err))
      .finally(() => {
        this.queued--
      })
    return true
  }

  /** Closes the connection with a reason and destroys it if the close handshake does not finish soon. */
  drop(code: number, reason: string): void {
    if (this.closed) return
    this.markClosed()
    this.onDrop(this, reason)
    try {
      this.ws.close(code, reason.slice(0, 120))
    } catch {
      // already closing
    }
    setTimeout(() => this.ws.terminate(), WS_CLOSE_GRACE_MS).unref()
  }

  /** Aborted once the connection is closed ({@link CallContext.signal}). */
  get signal(): AbortSignal {
    return this.gone.signal
  }

  /**
   * Marks the connection closed; what its answers held is given back (a dropped one is destroyed within a second),
   * and its request's calls still waiting for a heavy turn leave the queue.
   */
  markClosed(): void {
    this.closed = true
    this.gone.abort()
    clearTimeout(this.receivingTimer)
    this.receivingTimer = undefined
    clearInterval(this.stallTimer)
    this.stallTimer = undefined
    for (const giveBack of [...this.held]) giveBack()
  }
}

/** The JSON-RPC server. */
export class RpcServer {
  private readonly options: RpcServerOptions
  private readonly logger: RpcLogger
  private readonly hub: SubscriptionHub
  private readonly dispatcher: Dispatcher
  private readonly app: Koa
  private readonly wss: WebSocketServer
  private readonly sessions = new Set<WsSession>()
  private http: Server | undefined
  private pingTimer: NodeJS.Timeout | undefined
  private boundPort = 0
  private readonly bodyBudget: ByteBudget
  private readonly answerBudget: ByteBudget
  private droppedConnections = 0
  private dropLoggedAt = Number.NEGATIVE_INFINITY
  /** Open connections per client address ({@link addressKey}). */
  private readonly perAddress = new Map<string, number>()
  /** Connections refused for their address: answered 503 on their first request. */
  private readonly refused = new WeakSet<Duplex>()
  private refusedConnections = 0
  /** `maxConnectionsPerAddress`, or its default. */
  private readonly perAddressLimit: number
  private refusedLoggedAt = Number.NEGATIVE_INFINITY

  constructor(
    options: Partial<RpcServerOptions>,
    private readonly deps: RpcServerDependencies,
  ) {
    this.options = { ...DEFAULT_RPC_SERVER_OPTIONS, ...options }
    this.perAddressLimit = this.options.maxConnectionsPerAddress ?? Math.max(1, Math.floor(this.options.maxConnections / 4))
    // an address may hold the part of each byte budget that it may hold of the connections, and at least `atLeast`
    const ratio = Math.min(1, this.perAddressLimit / this.options.maxConnections)
    const share = (budget: number, atLeast = 0) => Math.min(budget, Math.max(atLeast, Math.floor(budget * ratio)))
    // one body or WebSocket message of the largest size, read in pieces, fits the share of an address holding nothing
    const oneRequest = Math.max(this.options.maxBodyBytes, this.options.wsMaxMessageBytes + WS_FRAME_HEADS_BYTES)
    this.bodyBudget = new ByteBudget(this.options.maxBodyBytesInFlight, share(this.options.maxBodyBytesInFlight, oneRequest))
    this.answerBudget = new ByteBudget(this.options.maxResponseBytesInFlight, share(this.options.maxResponseBytesInFlight))
    this.logger = deps.logger ?? silentLogger
    this.hub = new SubscriptionHub({ maxSubscriptionsPerSession: this.options.wsMaxSubscriptions }, { backend: deps.backend, logger: this.logger })
    this.dispatcher = new Dispatcher(
      {
        maxBatch: this.options.maxBatch,
        requestTimeoutMs: this.options.requestTimeoutMs,
        maxResultBytesInFlight: this.options.maxResultBytesInFlight,
        // the results one request may carry fit the share of an address holding nothing
        maxResultBytesPerAddress: share(this.options.maxResultBytesInFlight, DEFAULT_MAX_RESPONSE_BYTES),
        // one address formats at most its share of the blocks the node formats at once, and at least one
        maxHeavyCallsPerAddress: share(DEFAULT_MAX_HEAVY_CALLS, 1),
      },
      { methods: createMethods({ backend: deps.backend, hub: this.hub }), metrics: deps.metrics, logger: this.logger },
    )
    this.app = new Koa()
    this.app.silent = true
    this.app.on('error', (err: unknown) => this.logger.warn({ err }, 'rpc http error'))
    this.app.use((ctx) => this.handleHttp(ctx))
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.options.wsMaxMessageBytes })
  }

  /** The bound port (after `start`). */
  get port(): number {
    return this.boundPort
  }

  /** Request-body bytes held now (see `maxBodyBytesInFlight`). */
  get bodyBytesInFlight(): number {
    return this.bodyBudget.held
  }

  /** Bytes of answers made and not yet taken by their clients (see `maxResponseBytesInFlight`). */
  get responseBytesInFlight(): number {
    return this.answerBudget.held
  }

  /** Calls of heavy methods (whole-block reads) waiting for a turn, over all addresses. */
  get heavyCallsWaiting(): number {
    return this.dispatcher.heavyWaiting.calls
  }

  /** Bytes of results held by requests still running (see `maxResultBytesInFlight`). */
  get resultBytesInFlight(): number {
    return this.dispatcher.resultBytesInFlight
  }

  /**
   * Entries kept for client addresses holding bytes of the three budgets above (one per address and budget it holds
   * some of): none once nothing is held.
   */
  get addressesHoldingBytes(): number {
    return this.bodyBudget.keys + this.answerBudget.keys + this.dispatcher.addressesHoldingResults
  }

  /** Open WebSocket connections. */
  get connectionCount(): number {
    return this.sessions.size
  }

  /** `http://host:port` of the running server. */
  get url(): string {
    const h = this.listenHost.includes(':') ? `[${this.listenHost}]` : this.listenHost
    return `http://${h}:${this.boundPort}`
  }

  /** The host to listen on: config.json writes an IPv6 address in brackets (`[::1]`), which listen() takes bare. */
  private get listenHost(): string {
    return this.options.host.replace(/^\[(.*)\]$/, '$1')
  }

  /** Listens; resolves once bound. */
  async start(): Promise<void> {
    if (this.http !== undefined) throw new Error('RpcServer already started')
    const callback = this.app.callback()
    const http = createServer((req, res) => {
      if (!this.refused.has(req.socket)) return void callback(req, res)
      const body = tooManyFromAddress(this.perAddressLimit)
      res.writeHead(503, { 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), Connection: 'close' })
      res.end(body)
    })
    http.maxConnections = this.options.maxConnections
    http.on('drop', () => this.connectionDropped())
    // before the HTTP server takes the connection on: it is counted under its address, or marked refused
    http.prependListener('connection', (socket: Socket) => this.onAccepted(socket))
    http.headersTimeout = 10_000
    http.requestTimeout = Math.max(30_000, this.options.requestTimeoutMs * 2)
    http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head))
    http.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      else socket.destroy()
    })
    this.http = http
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e)
      http.once('error', onError)
      http.listen(this.options.port, this.listenHost, () => {
        http.off('error', onError)
        resolve()
      })
    })
    http.on('error', (err) => this.logger.error({ err }, 'rpc server error'))
    this.boundPort = (http.address() as AddressInfo).port
    this.hub.start()
    this.pingTimer = setInterval(() => this.pingAll(), this.options.wsPingIntervalMs)
    this.pingTimer.unref()
    this.logger.info({ url: this.url }, 'rpc server listening')
  }

  /** Stops: closes every WebSocket (1001), stops listening, ends HTTP connections. */
  async stop(): Promise<void> {
    const http = this.http
    if (http === undefined) return
    this.http = undefined
    clearInterval(this.pingTimer)
    this.hub.stop()
    const closing = [...this.sessions].map(
      (s) =>
        new Promise<void>((resolve) => {
          s.markClosed()
          if (s.ws.readyState === s.ws.CLOSED) return resolve()
          s.ws.once('close', () => resolve())
          try {
            s.ws.close(1001, 'server shutting down')
          } catch {
            // already closing
          }
          setTimeout(() => {
            s.ws.terminate()
            resolve()
          }, WS_CLOSE_GRACE_MS).unref()
        }),
    )
    await Promise.all(closing)
    this.sessions.clear()
    await new Promise<void>((resolve) => this.wss.close(() => resolve()))
    await new Promise<void>((resolve) => {
      http.close(() => resolve())
      http.closeAllConnections()
    })
    this.logger.info({}, 'rpc server stopped')
  }

  private allowedOrigin(origin: string | undefined): string | undefined {
    if (origin === undefined || origin === '') return undefined
    if (this.options.corsOrigins.includes('*')) return '*'
    return this.options.corsOrigins.includes(origin) ? origin : undefined
  }

  private async handleHttp(ctx: Koa.Context): Promise<void> {
    const origin = this.allowedOrigin(ctx.get('Origin') || undefined)
    if (origin !== undefined) {
      ctx.set('Access-Control-Allow-Origin', origin)
      ctx.vary('Origin')
    }
    const path = ctx.path
    if (ctx.method === 'OPTIONS' && (path === '/' || path === '/health' || path === '/metrics')) {
      if (origin !== undefined) {
        ctx.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
        ctx.set('Access-Control-Allow-Headers', 'Content-Type')
        ctx.set('Access-Control-Max-Age', '600')
      }
      ctx.status = 204
      return
    }
    if (path === '/') {
      if (ctx.method !== 'POST') {
        ctx.set('Allow', 'POST, OPTIONS')
        ctx.status = 405
        ctx.type = 'application/json'
        ctx.body = jsonError(StandardErrorCode.invalidRequest, 'JSON-RPC requests are POST /')
        return
      }
      return this.handleRpc(ctx)
    }
    if (path === '/health' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return this.handleHealth(ctx)
    if (path === '/metrics' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.type = this.deps.metrics.registry.contentType
      ctx.body = await this.deps.metrics.registry.metrics()
      return
    }
    ctx.status = 404
    ctx.type = 'application/json'
    ctx.body = JSON.stringify({ error: 'not found', paths: ['POST /', 'GET /health', 'GET /metrics', 'GET /ws (WebSocket)'] })
  }

  private async handleRpc(ctx: Koa.Context): Promise<void> {
    const type = (ctx.get('Content-Type') || '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/json') {
      ctx.set('Connection', 'close')
      ctx.status = 415
      ctx.type = 'application/json'
      ctx.body = jsonError(StandardErrorCode.invalidRequest, 'Content-Type must be application/json')
      return
    }
    const address = keyOf(ctx.req.socket)
    const body = await readBody(ctx.req, this.options.maxBodyBytes, this.bodyBudget, address)
    if (!body.ok) {
      if (body.error.code === 'too_large') this.deps.metrics.countRpcRefusal('body_too_large')
      else if (body.error.code === 'busy' && body.error.refusal !== undefined) this.deps.metrics.countRpcRefusal(`bodies_${body.error.refusal}`)
      ctx.set('Connection', 'close')
      ctx.status = BODY_ERROR_STATUS[body.error.code]
      ctx.type = 'application/json'
      if (body.error.code === 'busy') {
        ctx.set('Retry-After', '1')
        const detail = body.error.refusal === undefined ? undefined : { detail: body.error.refusal }
        ctx.body = JSON.stringify({ jsonrpc: '2.0', id: null, error: applicationError('busy', body.error.reason, detail) })
      } else {
        ctx.body = jsonError(StandardErrorCode.invalidRequest, body.error.reason)
      }
      return
    }
    let response: Answer | undefined
    // a client gone before its answer (its connection closed): its calls waiting for a heavy turn leave the queue
    const gone = new AbortController()
    const onClose = () => gone.abort()
    ctx.res.once('close', onClose)
    if (ctx.res.destroyed || ctx.req.socket.destroyed) gone.abort()
    try {
      response = await this.dispatcher.handleAnswer(body.value.text, { transport: 'http', address, signal: gone.signal })
    } finally {
      ctx.res.off('close', onClose)
      this.bodyBudget.give(body.value.bytes, address)
    }
    if (response === undefined) {
      ctx.status = 204
      return
    }
    ctx.status = 200
    ctx.set('Content-Type', JSON_CONTENT_TYPE)
    if (typeof response === 'string' && response.length <= ANSWER_SLICE_BYTES / 3) {
      ctx.body = response
      return
    }
    const pieces = answerBytes(response)
    const bytes = byteLength(pieces)
    if (bytes <= ANSWER_SLICE_BYTES) {
      ctx.body = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)
      return
    }
    const refused = this.answerBudget.claim(bytes, address)
    if (refused !== undefined) {
      this.deps.metrics.countRpcRefusal(`answers_${refused}`)
      ctx.status = 503
      ctx.set('Retry-After', '1')
      ctx.body = ANSWERS_BUSY[refused]
      return
    }
    this.holdResponse(ctx.res, bytes, address)
    ctx.body = Readable.from(slices(pieces))
    ctx.length = bytes
  }

  /**
   * Counts an answer's bytes (taken from the budget by the caller) as held until the client has taken them (the
   * response finished, or its connection closed); a connection that takes none of them for `responseStallMs` is
   * destroyed.
   */
  private holdResponse(res: ServerResponse, bytes: number, address: string): void {
    const socket = res.socket
    // the bytes the socket has written out: each slice's write completes on its own as the client takes it
    const flushed = () => (socket === null ? 0 : socket.bytesWritten - socket.writableLength)
    let flushedAtCheck = flushed()
    const stall = setInterval(() => {
      const now = flushed()
      if (now === flushedAtCheck) socket?.destroy()
      flushedAtCheck = now
    }, this.options.responseStallMs)
    stall.unref()
    let held = true
    const giveBack = () => {
      if (!held) return
      held = false
      clearInterval(stall)
      this.answerBudget.give(bytes, address)
    }
    res.once('finish', giveBack)
    res.once('close', giveBack)
    // a client gone before its answer was made: its response will not close again, and no one takes the bytes
    if (res.destroyed || socket === null || socket.destroyed) giveBack()
  }

  /** A connection closed as it was accepted, past `maxConnections`: logged at most every 10 s, with the count. */
  private connectionDropped(): void {
    this.deps.metrics.countRpcRefusal('connections')
    this.droppedConnections++
    const now = Date.now()
    if (now - this.dropLoggedAt < DROP_LOG_INTERVAL_MS) return
    this.dropLoggedAt = now
    this.logger.warn({ dropped: this.droppedConnections, maxConnections: this.options.maxConnections }, 'rpc connections refused: at the limit')
    this.droppedConnections = 0
  }

  /**
   * Counts an accepted connection under its address until it closes; past `maxConnectionsPerAddress` it is marked
   * refused instead (answered 503 on its first request, closed after {@link REFUSED_GRACE_MS} if it sends none).
   */
  private onAccepted(socket: Socket): void {
    const address = socket.remoteAddress
    if (address === undefined) return
    const key = addressKey(address)
    const open = this.perAddress.get(key) ?? 0
    if (open >= this.perAddressLimit) {
      this.refused.add(socket)
      const timer = setTimeout(() => socket.destroy(), REFUSED_GRACE_MS)
      timer.unref()
      socket.once('close', () => clearTimeout(timer))
      this.connectionRefused(key)
      return
    }
    this.perAddress.set(key, open + 1)
    socket.once('close', () => {
      const left = (this.perAddress.get(key) ?? 1) - 1
      if (left > 0) this.perAddress.set(key, left)
      else this.perAddress.delete(key)
    })
  }

  /** A connection refused for its address: logged at most every 10 s, with the count and the latest address. */
  private connectionRefused(address: string): void {
    this.deps.metrics.countRpcRefusal('address_connections')
    this.refusedConnections++
    const now = Date.now()
    if (now - this.refusedLoggedAt < DROP_LOG_INTERVAL_MS) return
    this.refusedLoggedAt = now
    this.logger.warn(
      { refused: this.refusedConnections, address, maxConnectionsPerAddress: this.perAddressLimit },
      'rpc connections refused: too many from one address',
    )
    this.refusedConnections = 0
  }

  private async handleHealth(ctx: Koa.Context): Promise<void> {
    ctx.type = 'application/json'
    try {
      const h = await this.deps.backend.health()
      ctx.status = h.healthy ? 200 : 503
      ctx.body = JSON.stringify(h.healthy ? { healthy: true } : { healthy: false, reason: h.reason })
    } catch (err) {
      this.logger.error({ err }, 'health check failed')
      ctx.status = 503
      ctx.body = JSON.stringify({ healthy: false, reason: 'health check failed' })
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    if (this.refused.has(socket)) {
      const body = tooManyFromAddress(this.perAddressLimit)
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: ${JSON_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
      return
    }
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/ws' || this.http === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    if (this.sessions.size >= this.options.wsMaxConnections) {
      this.deps.metrics.countRpcRefusal('ws_connections')
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, socket))
  }

  private onConnection(ws: WebSocket, socket: Duplex): void {
    const session = new WsSession(
      ws,
      socket,
      this.options.wsMaxBufferedBytes,
      this.answerBudget,
      keyOf(socket),
      this.options.responseStallMs,
      (s, reason) => {
        this.logger.warn({ reason }, 'dropping websocket client')
        this.forget(s)
      },
      (err) => this.logger.error({ err }, 'websocket request failed'),
      (reason) => this.deps.metrics.countRpcRefusal(reason),
    )
    this.sessions.add(session)
    this.deps.metrics.wsConnections.set(this.sessions.size)
    const context: CallContext = { transport: 'ws', session, address: session.address, signal: session.signal }
    ws.on('error', (err) => {
      // a message past wsMaxMessageBytes: `ws` closes the connection (1009), as HTTP answers such a body 413
      if ((err as { code?: unknown }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.deps.metrics.countRpcRefusal('body_too_large')
      this.logger.debug({ err }, 'websocket error')
    })
    ws.on('pong', () => {
      session.answeredPing = true
    })
    ws.on('close', () => {
      session.markClosed()
      this.bodyBudget.give(session.receiving, session.address)
      session.receiving = 0
      this.forget(session)
    })
    // after ws has taken in each chunk (its listener came first): what it holds of messages not yet whole is counted
    socket.on('data', () => {
      const refused = this.countReceiving(session)
      if (refused === undefined) return
      this.deps.metrics.countRpcRefusal(`bodies_${refused}`)
      ws.pause()
      session.drop(1013, WS_REQUESTS_BUSY[refused].message)
    })
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // the message is whole: what was counted for its assembly is given back before it is counted as held, and the
      // clock of a message after it starts afresh. `ws` still counts the chunk it is parsing until it is done with it,
      // so all of it is given back here; the bytes of a message after it are counted once that chunk is done (the
      // socket's 'data' listener below runs after that of `ws`).
      session.receivingSince = undefined
      this.bodyBudget.give(session.receiving, session.address)
      session.receiving = 0
      if (session.isClosed) return
      const bytes = isBinary ? null : Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
      const text = bytes === null ? null : bytes.toString('utf8')
      // a message waiting or running holds its text: it counts against the same budget as HTTP bodies
      const held = bytes === null ? 0 : bytes.length
      const refused = this.bodyBudget.claim(held, session.address)
      if (refused !== undefined) {
        this.deps.metrics.countRpcRefusal(`bodies_${refused}`)
        session.sendText(JSON.stringify({ jsonrpc: '2.0', id: null, error: WS_REQUESTS_BUSY[refused] }))
        return
      }
      const accepted = session.enqueue(async () => {
        try {
          if (session.isClosed) return
          const response =
            text === null ? jsonError(StandardErrorCode.invalidRequest, 'send JSON-RPC as text frames') : await this.dispatcher.handleAnswer(text, context)
          if (response !== undefined) session.sendAnswer(response)
          const after = session.afterResponse.splice(0)
          for (const f of after) f()
        } finally {
          this.bodyBudget.give(held, session.address)
        }
      })
      if (!accepted) {
        this.deps.metrics.countRpcRefusal('ws_queue')
        this.bodyBudget.give(held, session.address)
        session.drop(1008, `more than ${WS_MAX_QUEUED_MESSAGES} requests waiting`)
      }
    })
  }

  /**
   * Brings what the request budget counts for the messages a connection is receiving to what `ws` holds of them;
   * undefined once done, or why the budget refused the bytes (the count is not raised then).
   */
  private countReceiving(session: WsSession): BudgetRefusal | undefined {
    const now = receivingBytes(session.ws)
    if (now <= session.receiving) {
      this.bodyBudget.give(session.receiving - now, session.address)
      session.receiving = now
    } else {
      const refused = this.bodyBudget.claim(now - session.receiving, session.address)
      if (refused !== undefined) return refused
      session.receiving = now
    }
    if (now === 0) session.receivingSince = undefined
    else if (session.receivingSince === undefined) {
      session.receivingSince = Date.now()
      this.watchReceiving(session, this.options.wsMessageTimeoutMs)
    }
    return undefined
  }

  /** Closes the connection (1008) if the message it is receiving is not whole `wsMessageTimeoutMs` after it started. */
  private watchReceiving(session: WsSession, inMs: number): void {
    if (session.receivingTimer !== undefined || session.isClosed) return
    session.receivingTimer = setTimeout(() => {
      session.receivingTimer = undefined
      const since = session.receivingSince
      if (since === undefined || session.isClosed) return
      const left = since + this.options.wsMessageTimeoutMs - Date.now()
      if (left > 0) return this.watchReceiving(session, left)
      session.ws.pause()
      session.drop(1008, `a message not whole within ${this.options.wsMessageTimeoutMs} ms`)
    }, inMs)
    session.receivingTimer.unref()
  }

  /**
   * Pings every WebSocket connection; one that did not answer the previous ping (a peer gone without closing, or one
   * that does not read, or one stuck in the middle of a frame) is destroyed, and its slot freed, unless that ping may
   * still wait behind what the connection is taking (a large answer read at the client's pace).
   */
  private pingAll(): void {
    for (const session of [...this.sessions]) {
      if (!session.answeredPing) {
        if (session.pingWaitsBehindProgress()) continue
        this.logger.warn({ reason: 'no answer to a ping' }, 'dropping websocket client')
        session.markClosed()
        this.forget(session)
        session.ws.terminate()
        continue
      }
      session.ping()
    }
  }

  private forget(session: WsSession): void {
    if (!this.sessions.delete(session)) return
    this.hub.removeSession(session)
    this.deps.metrics.wsConnections.set(this.sessions.size)
  }
}
