import { StandardErrorCode, applicationError, type JsonRpcError } from './errors.js'
import { ok } from '../crypto/result.js'
import { DeadlineQueue, type Deadline } from './deadlineQueue.js'
import { invalidParam, type Parsed } from './format.js'
import type { Metrics } from './metrics.js'
import type { RpcLogger } from './logger.js'

/**
 * JSON-RPC 2.0 processing independent of the transport: parse, validate the request objects, resolve and
 * bound parameters, run the method under a deadline, and build responses exactly as the specification says
 * (batches, notifications without answers, ids echoed, standard error codes, internal errors without details).
 */

/** Where a call came from; WebSocket calls carry their session (subscriptions live there). */
export interface CallContext {
  readonly transport: 'http' | 'ws'
  readonly session?: unknown
  /**
   * The client's address key (the server's `addressKey`): the results its requests hold count against its share of
   * `maxResultBytesInFlight` ({@link DispatcherOptions.maxResultBytesPerAddress}). Unset, only the whole budget bounds.
   */
  readonly address?: string
  /**
   * Aborted when the client is gone (its connection closed): calls of its request still waiting for a heavy turn
   * ({@link MethodSpec.heavy}) leave the queue; calls already running are waited for (their answers unread), so that
   * what the request holds stays counted until they are done.
   */
  readonly signal?: AbortSignal
}

/** A method's parameter: its name (for named params and error messages) and its parser. */
export interface ParamSpec {
  readonly name: string
  readonly optional?: boolean
  parse(value: unknown): Parsed<unknown>
}

/**
 * A method's outcome: a JSON-ready result, a result already serialized (`json`, JSON text spliced into the answer as
 * it is: a method that keeps its answer serialized, or bounds its size while making it; or `utf8`, the UTF-8 bytes of
 * such text, `chars` its length as a string, spliced into the answer's bytes without being encoded again), or a
 * JSON-RPC error.
 */
export type MethodOutcome =
  | { ok: true; result: unknown }
  | { ok: true; json: string }
  | { ok: true; utf8: Uint8Array; chars: number }
  | { ok: false; error: JsonRpcError }

/**
 * An answer as JSON text, or in pieces (an answer that splices in a result's UTF-8 bytes): its text is the pieces one
 * after the other, each piece JSON text or UTF-8 bytes of it.
 */
export type Answer = string | readonly (string | Uint8Array)[]

/** An answer's JSON text. */
export function answerText(answer: Answer): string {
  if (typeof answer === 'string') return answer
  return answer.map((p) => (typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('utf8'))).join('')
}

/** An answer's UTF-8 bytes, piece by piece (a piece of bytes viewed as it is, a piece of text encoded). */
export function answerBytes(answer: Answer): Buffer[] {
  if (typeof answer === 'string') return [Buffer.from(answer)]
  return answer.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
}

/** Calls of heavy methods ({@link MethodSpec.heavy}) running at once unless the options say otherwise. */
export const DEFAULT_MAX_HEAVY_CALLS = 4

/** The bytes of results one request's answer carries at most unless the options say otherwise (32 MiB). */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024

/**
 * The bytes of results requests still running may hold at once over all requests unless the options say otherwise
 * (64 MiB, the order of the answers the server holds for clients).
 */
export const DEFAULT_MAX_RESULT_BYTES_IN_FLIGHT = 64 * 1024 * 1024

/**
 * Why a {@link ByteBudget} refuses bytes: `node` when they would take the bytes held over all keys past the budget,
 * `share` when the budget has room for them but their key's share of it does not.
 */
export type BudgetRefusal = 'node' | 'share'

/**
 * The `busy` error of a refusal by a {@link ByteBudget} whose keys are client addresses: `data.detail` is the
 * {@link BudgetRefusal}, so that a client, and the metrics, tell the node's whole budget full from its address's share
 * full. `what` names the budget's bytes ("request bodies"); `suffix` ends the message (", or ask for less").
 */
export function budgetBusy(refusal: BudgetRefusal, what: string, suffix = ''): JsonRpcError {
  const message =
    refusal === 'share'
      ? `this client address holds its share of the ${what}; retry once it holds less${suffix}`
      : `the node holds as many ${what} as it takes; retry shortly${suffix}`
  return applicationError('busy', message, { detail: refusal })
}

/**
 * Bytes that may be held at once over all clients (request bodies, results of requests still running, or answers not
 * yet taken): a holder takes its bytes as it comes to hold them and gives them back when done. Bytes taken under a key
 * (a client address) count against that key's share too, so that one client cannot take the whole budget: a take that
 * would carry its key past `share` is refused, unless the key holds nothing (one request's worth, which the budget
 * alone bounds, is never refused for its key). A key is forgotten once it holds nothing.
 */
export class ByteBudget {
  /** The bytes taken and not given back. */
  held = 0
  /** The bytes each key holds; only keys that hold some. */
  private readonly byKey = new Map<string, number>()

  constructor(
    private readonly limit: number,
    private readonly share = limit,
  ) {}

  /** Takes `bytes`, under `key` if given, if they fit; false, taking nothing, if they would pass the limit or share. */
  take(bytes: number, key?: string): boolean {
    return this.claim(bytes, key) === undefined
  }

  /** Takes `bytes` as {@link take} does: undefined once taken, or why they are refused (nothing taken then). */
  claim(bytes: number, key?: string): BudgetRefusal | undefined {
    const refused = this.refusal(bytes, key)
    if (refused !== undefined) return refused
    if (key !== undefined && bytes > 0) this.byKey.set(key, (this.byKey.get(key) ?? 0) + bytes)
    this.held += bytes
    return undefined
  }

  /**
   * Why {@link take} would refuse `bytes` under `key` now, undefined if it would take them. The whole budget is asked
   * first: `share` only when the node has room for them, so a key whose share is the whole budget is never told
   * `share`.
   */
  refusal(bytes: number, key?: string): BudgetRefusal | undefined {
    if (this.held + bytes > this.limit) return 'node'
    if (key === undefined || bytes <= 0) return undefined
    const mine = this.byKey.get(key) ?? 0
    return mine > 0 && mine + bytes > this.share ? 'share' : undefined
  }

  /** Gives back bytes taken before, under the same key. */
  give(bytes: number, key?: string): void {
    this.held -= bytes
    if (key === undefined || bytes <= 0) return
    const left = (this.byKey.get(key) ?? 0) - bytes
    if (left > 0) this.byKey.set(key, left)
    else this.byKey.delete(key)
  }

  /** The bytes that may still be taken, under `key` if given. */
  free(key?: string): number {
    const all = this.limit - this.held
    const mine = key === undefined ? 0 : (this.byKey.get(key) ?? 0)
    return mine === 0 ? all : Math.min(all, this.share - mine)
  }

  /** How many keys hold bytes. */
  get keys(): number {
    return this.byKey.size
  }
}

/** A method: its parameters and its handler, which receives the parsed values in declaration order. */
export interface MethodSpec {
  readonly params: readonly ParamSpec[]
  /**
   * Its answer can be megabytes (a whole block), or its work reads one whatever the answer's size: at most
   * `maxHeavyCalls` such calls run at once over all requests, so that many clients asking at once, or one batch of
   * many, do not make the node hold all those blocks together. A function decides by the parsed arguments.
   */
  readonly heavy?: boolean | ((args: readonly unknown[]) => boolean)
  handler(args: readonly unknown[], context: CallContext): MethodOutcome | Promise<MethodOutcome>
}

/** A JSON-RPC id: string, number or null. */
export type JsonRpcId = string | number | null

/** A response object. */
export type JsonRpcResponse = { jsonrpc: '2.0'; id: JsonRpcId; result: unknown } | { jsonrpc: '2.0'; id: JsonRpcId; error: JsonRpcError }

/** Dispatcher limits. */
export interface DispatcherOptions {
  /** Most members of a batch. */
  readonly maxBatch: number
  /** Most time one call may take before it is answered with a `timeout` error. */
  readonly requestTimeoutMs: number
  /**
   * Most bytes of results one request's answer carries (default 32 MiB): a batch member whose result would take the
   * answer past it gets a `response_too_large` error instead.
   */
  readonly maxResponseBytes?: number
  /** Most calls of heavy methods ({@link MethodSpec.heavy}) running at once (default 4); the others wait their turn. */
  readonly maxHeavyCalls?: number
  /**
   * Most of the `maxHeavyCalls` turns the requests of one client address ({@link CallContext.address}; calls without
   * one count as one address) may hold at once (default: all of them). Waiting calls are served round-robin over the
   * addresses that have some, each address's in the order they came.
   */
  readonly maxHeavyCallsPerAddress?: number
  /**
   * Most bytes of results held at once over all requests still running (default 64 MiB): each call's result counts
   * from when it is made until its request's answer is handed back (a batch's members wait for the whole batch). A
   * call whose result would pass it gets a `busy` error instead, so that many batches at once cannot make the node
   * hold each one's `maxResponseBytes`.
   */
  readonly maxResultBytesInFlight?: number
  /**
   * Most of `maxResultBytesInFlight` the requests of one client address ({@link CallContext.address}) may hold at once
   * (default: all of it); past it a call is answered `busy` as past the whole budget, unless the address holds none,
   * with `data.detail` `share` instead of `node` ({@link budgetBusy}), and counted as outcome `busy_share`.
   */
  readonly maxResultBytesPerAddress?: number
}

/** Dispatcher dependencies. */
export interface DispatcherDependencies {
  readonly methods: Readonly<Record<string, MethodSpec>>
  readonly metrics?: Metrics
  readonly logger?: RpcLogger
}

const errorResponse = (id: JsonRpcId, code: number, message: string, data?: unknown): JsonRpcResponse => ({
  jsonrpc: '2.0',
  id,
  error: data === undefined ? { code, message } : { code, message, data },
})

/** A response as JSON text. */
const serialize = (response: JsonRpcResponse): string => JSON.stringify(response)

const isValidId = (id: unknown): id is JsonRpcId => id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))

/**
 * The bytes of results a request's answer may still carry ({@link DispatcherOptions.maxResponseBytes}), and those it
 * holds of the budget over all requests ({@link DispatcherOptions.maxResultBytesInFlight}) until it is answered.
 */
interface ResponseBudget {
  left: number
  held: number
  /** The client address the results are held under ({@link CallContext.address}). */
  readonly address: string | undefined
  /** The request is answered and what it held given back: a call that ends later counts nothing. */
  ended: boolean
}

/** What a call's deadline resolves to when it passes first. */
const TIMED_OUT = Symbol('timed out')
/** What a call's deadline resolves to when its request ended first (its client gone, or another call failed). */
const ABANDONED = Symbol('abandoned')
type Expired = typeof TIMED_OUT | typeof ABANDONED

/**
 * The deadline of one request's calls. A batch's members start together, so one deadline, started when the first
 * call waits on it and finished when the request is answered, bounds every member of the request as one per call
 * would.
 */
class RequestDeadline {
  private deadline: Deadline | undefined
  private expiry: Promise<typeof TIMED_OUT> | undefined
  private ending: Promise<typeof ABANDONED> | undefined
  private end: (() => void) | undefined
  private readonly onAbort = () => this.end?.()

  constructor(
    private readonly queue: DeadlineQueue,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Whichever settles first: the work, or the deadline. A call that runs is waited for (or timed out) even when its
   * client is gone, so that what its request holds (its body's bytes) stays counted until its calls are done.
   */
  race<T>(work: Promise<T>): Promise<T | typeof TIMED_OUT> {
    this.expiry ??= new Promise((resolve) => {
      this.deadline = this.queue.start(() => resolve(TIMED_OUT))
    })
    return Promise.race([work, this.expiry])
  }

  /** For a call still waiting to run: whichever settles first, the wait, the deadline, or the request's end. */
  raceWaiting<T>(wait: Promise<T>): Promise<T | Expired> {
    this.ending ??= new Promise((resolve) => {
      this.end = () => resolve(ABANDONED)
      if (this.signal?.aborted === true) resolve(ABANDONED)
      else this.signal?.addEventListener('abort', this.onAbort, { once: true })
    })
    return Promise.race([this.race(wait), this.ending])
  }

  /** The request is answered or failed: calls of it still waiting to run leave their queue. */
  clear(): void {
    this.deadline?.done()
    this.signal?.removeEventListener('abort', this.onAbort)
    this.end?.()
  }
}

/** A call waiting for a heavy turn, in its address's queue. */
interface HeavyWaiter {
  readonly key: string
  /** Waiting in its queue, given its turn, or gone (its request's deadline passed, or the request ended). */
  state: 'waiting' | 'granted' | 'gone'
  readonly grant: () => void
}

/** The waiting calls of one address, in the order they came; `live` counts those still waiting. */
interface HeavyQueue {
  items: HeavyWaiter[]
  live: number
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function'

/** Runs JSON-RPC requests against a method table. */
export class Dispatcher {
  private readonly methods: Map<string, MethodSpec>
  private readonly deadlines: DeadlineQueue
  private heavyRunning = 0
  /** Heavy turns held per address key; only keys that hold some. */
  private readonly heavyRunningBy = new Map<string, number>()
  /** Waiting heavy calls per address key, only keys with some; the map's order is the round-robin order. */
  private readonly heavyQueues = new Map<string, HeavyQueue>()
  private readonly results: ByteBudget

  constructor(
    private readonly options: DispatcherOptions,
    private readonly deps: DispatcherDependencies,
  ) {
    this.methods = new Map(Object.entries(deps.methods))
    this.deadlines = new DeadlineQueue(options.requestTimeoutMs)
    const results = options.maxResultBytesInFlight ?? DEFAULT_MAX_RESULT_BYTES_IN_FLIGHT
    this.results = new ByteBudget(results, options.maxResultBytesPerAddress ?? results)
  }

  /** Bytes of results held now by requests still running ({@link DispatcherOptions.maxResultBytesInFlight}). */
  get resultBytesInFlight(): number {
    return this.results.held
  }

  /** How many client addresses hold results of requests still running. */
  get addressesHoldingResults(): number {
    return this.results.keys
  }

  /** The method names served. */
  methodNames(): string[] {
    return [...this.methods.keys()]
  }

  /**
   * Handles a request body (text). Returns the response as JSON text (an object or a non-empty array) or
   * undefined when nothing is to be sent (notifications only).
   */
  async handleText(text: string, context: CallContext): Promise<string | undefined> {
    const answer = await this.handleAnswer(text, context)
    return answer === undefined ? undefined : answerText(answer)
  }

  /**
   * Handles a request body (text), as `handleText`, the response as an {@link Answer}: a result kept as UTF-8 bytes
   * ({@link MethodOutcome}) is one of its pieces, for the transport to write out without encoding it again.
   */
  async handleAnswer(text: string, context: CallContext): Promise<Answer | undefined> {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      this.count('invalid', 'parse_error')
      return serialize(errorResponse(null, StandardErrorCode.parseError, 'parse error: the body is not valid JSON'))
    }
    return this.handleValue(value, context)
  }

  /** Handles a parsed request value (a request object or a batch); the response as an {@link Answer}. */
  async handleValue(value: unknown, context: CallContext): Promise<Answer | undefined> {
    if (!Array.isArray(value)) {
      const deadline = new RequestDeadline(this.deadlines, context.signal)
      const budget = this.budget(context)
      try {
        return await this.handleOne(value, context, deadline, budget)
      } finally {
        deadline.clear()
        this.release(budget)
      }
    }
    if (value.length === 0) {
      this.count('invalid', 'invalid_request')
      return serialize(errorResponse(null, StandardErrorCode.invalidRequest, 'invalid request: empty batch'))
    }
    if (value.length > this.options.maxBatch) {
      this.count('invalid', 'invalid_request')
      return serialize(
        errorResponse(null, StandardErrorCode.invalidRequest, `invalid request: batch of ${value.length} exceeds the limit of ${this.options.maxBatch}`),
      )
    }
    // Members are started in order and run together: a batch of submissions reaches the node's signature
    // verification as one batch instead of one round trip per member. Admission still completes in nonce order
    // (verdicts come back in request order, and the mempool holds a nonce that arrives early).
    const deadline = new RequestDeadline(this.deadlines, context.signal)
    const budget = this.budget(context)
    let members: (Answer | undefined)[]
    try {
      members = await Promise.all(value.map((member) => this.handleOne(member, context, deadline, budget)))
    } finally {
      deadline.clear()
      this.release(budget)
    }
    const out = members.filter((r): r is Answer => r !== undefined)
    if (out.length === 0) return undefined
    if (out.every((r) => typeof r === 'string')) return `[${out.join(',')}]`
    const pieces: (string | Uint8Array)[] = ['[']
    for (const [i, r] of out.entries()) {
      if (i > 0) pieces.push(',')
      if (typeof r === 'string') pieces.push(r)
      else pieces.push(...r)
    }
    pieces.push(']')
    return pieces
  }

  /** The bytes of results one request's answer may still carry. */
  private budget(context: CallContext): ResponseBudget {
    return { left: this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, held: 0, address: context.address, ended: false }
  }

  /**
   * The request is answered (its answer handed to the transport, which counts it among the answers it holds) or
   * abandoned by an error: the results it held are given back, whichever way it ended.
   */
  private release(budget: ResponseBudget): void {
    budget.ended = true
    this.results.give(budget.held, budget.address)
    budget.held = 0
  }

  private async handleOne(req: unknown, context: CallContext, deadline: RequestDeadline, budget: ResponseBudget): Promise<Answer | undefined> {
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      this.count('invalid', 'invalid_request')
      return serialize(errorResponse(null, StandardErrorCode.invalidRequest, 'invalid request: expected a request object'))
    }
    const r = req as Record<string, unknown>
    const hasId = Object.hasOwn(r, 'id')
    if (hasId && !isValidId(r.id)) {
      this.count('invalid', 'invalid_request')
      return serialize(errorResponse(null, StandardErrorCode.invalidRequest, 'invalid request: id must be a string, a number or null'))
    }
    const id = hasId ? (r.id as JsonRpcId) : null
    if (r.jsonrpc !== '2.0') {
      this.count('invalid', 'invalid_request')
      return serialize(errorResponse(id, StandardErrorCode.invalidRequest, 'invalid request: jsonrpc must be "2.0"'))
    }
    if (typeof r.method !== 'string') {
      this.count('invalid', 'invalid_request')
      return serialize(errorResponse(id, StandardErrorCode.invalidRequest, 'invalid request: method must be a string'))
    }
    const params = r.params
    if (params !== undefined && (typeof params !== 'object' || params === null)) {
      this.count('invalid', 'invalid_request')
      return serialize(errorResponse(id, StandardErrorCode.invalidRequest, 'invalid request: params must be an array or an object'))
    }
    const response = await this.call(r.method, params as unknown[] | Record<string, unknown> | undefined, id, context, deadline, budget)
    return hasId ? response : undefined
  }

  /** Runs one call; its response as an {@link Answer}. */
  private async call(
    name: string,
    params: unknown[] | Record<string, unknown> | undefined,
    id: JsonRpcId,
    context: CallContext,
    deadline: RequestDeadline,
    budget: ResponseBudget,
  ): Promise<Answer> {
    const method = this.methods.get(name)
    if (method === undefined) {
      this.count('unknown', 'method_not_found')
      return serialize(errorResponse(id, StandardErrorCode.methodNotFound, `method not found: ${name.slice(0, 100)}`))
    }
    const args = resolveParams(method.params, params)
    if (!args.ok) {
      this.count(name, 'invalid_params')
      return serialize(
        errorResponse(
          id,
          StandardErrorCode.invalidParams,
          `invalid params: ${args.error.reason}`,
          args.error.param === undefined ? undefined : { param: args.error.param },
        ),
      )
    }
    try {
      const heavy = typeof method.heavy === 'function' ? method.heavy(args.value) : method.heavy === true
      const running = heavy ? (await this.runHeavy(method, args.value, context, deadline)).running : method.handler(args.value, context)
      const outcome = isThenable(running) ? await deadline.race(Promise.resolve(running)) : running
      if (outcome === ABANDONED) {
        // no one reads this answer: the client is gone, or the request failed
        this.count(name, 'abandoned')
        return serialize(errorResponse(id, StandardErrorCode.internalError, 'abandoned'))
      }
      if (outcome === TIMED_OUT) {
        this.count(name, 'timeout')
        const e = applicationError('timeout', `${name} did not answer within ${this.options.requestTimeoutMs} ms`)
        return serialize({ jsonrpc: '2.0', id, error: e })
      }
      if (!outcome.ok) {
        this.count(name, 'error')
        return serialize({ jsonrpc: '2.0', id, error: outcome.error })
      }
      // A result that cannot be serialized (a stray bigint…) is the node's bug: an internal error. The result is
      // serialized once, here, and spliced into its response; its length as a string is what the budgets count.
      const result = 'utf8' in outcome ? outcome.utf8 : 'json' in outcome ? outcome.json : JSON.stringify(outcome.result)
      const size = 'utf8' in outcome ? outcome.chars : result?.length
      if (result !== undefined && size !== undefined && size > budget.left) {
        this.count(name, 'error')
        const limit = this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
        const e = applicationError('response_too_large', `the answer would carry more than ${limit} bytes of results: ask for less in one request`)
        return serialize({ jsonrpc: '2.0', id, error: e })
      }
      if (result !== undefined && size !== undefined && !budget.ended) {
        const refused = this.results.claim(size, budget.address)
        if (refused !== undefined) {
          // past the address's share, counted apart: one client holding its share is not the node out of room
          this.count(name, refused === 'share' ? 'busy_share' : 'error')
          const e = budgetBusy(refused, 'results of requests still running', ', or ask for less')
          return serialize({ jsonrpc: '2.0', id, error: e })
        }
        budget.held += size
        budget.left -= size
      }
      this.count(name, 'ok')
      if (result === undefined) return serialize({ jsonrpc: '2.0', id, result: 'result' in outcome ? outcome.result : undefined })
      const head = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":`
      return typeof result === 'string' ? `${head}${result}}` : [head, result, '}']
    } catch (e) {
      this.count(name, 'internal_error')
      this.deps.logger?.error({ err: e, method: name }, 'rpc method failed')
      return serialize(errorResponse(id, StandardErrorCode.internalError, 'internal error'))
    }
  }

  /**
   * A heavy call, once its turn comes: the turn is held until the handler is done, even past the deadline (its answer
   * is still being made); a call whose deadline passes, or whose request ends, while it waits leaves its queue.
   */
  private async runHeavy(
    method: MethodSpec,
    args: readonly unknown[],
    context: CallContext,
    deadline: RequestDeadline,
  ): Promise<{ readonly running: Promise<MethodOutcome> | Expired }> {
    const key = context.address ?? ''
    const waiting = this.heavyTurn(key)
    if (waiting !== undefined) {
      const { waiter, turn } = waiting
      const waited = await deadline.raceWaiting(turn)
      if (waited === TIMED_OUT || waited === ABANDONED) {
        // a turn given in the same tick as the deadline passed is passed on
        if (waiter.state === 'granted') this.endHeavyTurn(key)
        else this.leaveHeavyQueue(waiter)
        return { running: waited }
      }
    }
    try {
      return { running: Promise.resolve(method.handler(args, context)).finally(() => this.endHeavyTurn(key)) }
    } catch (e) {
      this.endHeavyTurn(key)
      throw e
    }
  }

  /** Most heavy turns held at once over all addresses. */
  private get heavyLimit(): number {
    return this.options.maxHeavyCalls ?? DEFAULT_MAX_HEAVY_CALLS
  }

  /** Most heavy turns one address holds at once. */
  private get heavyShare(): number {
    return Math.max(1, Math.min(this.heavyLimit, this.options.maxHeavyCallsPerAddress ?? this.heavyLimit))
  }

  /**
   * Takes a heavy turn for `key` at once (undefined), or queues a waiter whose `turn` resolves once it has one. A call
   * is queued only when every turn is held or its address holds its share: after each change no waiting call could
   * take a free turn, so a call that finds one goes ahead of no one.
   */
  private heavyTurn(key: string): { readonly waiter: HeavyWaiter; readonly turn: Promise<void> } | undefined {
    const held = this.heavyRunningBy.get(key) ?? 0
    if (this.heavyRunning < this.heavyLimit && held < this.heavyShare) {
      this.heavyRunning++
      this.heavyRunningBy.set(key, held + 1)
      return undefined
    }
    let grant = () => {}
    const turn = new Promise<void>((resolve) => {
      grant = resolve
    })
    const waiter: HeavyWaiter = { key, state: 'waiting', grant }
    const queue = this.heavyQueues.get(key)
    if (queue === undefined) this.heavyQueues.set(key, { items: [waiter], live: 1 })
    else {
      queue.items.push(waiter)
      queue.live++
    }
    return { waiter, turn }
  }

  /** A waiting call leaves its queue (its deadline passed or its request ended); an emptied queue is forgotten. */
  private leaveHeavyQueue(waiter: HeavyWaiter): void {
    if (waiter.state !== 'waiting') return
    waiter.state = 'gone'
    const queue = this.heavyQueues.get(waiter.key)
    if (queue === undefined) return
    queue.live--
    if (queue.live === 0) this.heavyQueues.delete(waiter.key)
    // the calls gone are dropped once they outnumber those waiting: the queue holds at most twice its waiting calls
    else if (queue.items.length > 2 * queue.live) queue.items = queue.items.filter((w) => w.state === 'waiting')
  }

  /** A heavy call of `key` is done: its turn goes to the next waiting call, round-robin over the addresses. */
  private endHeavyTurn(key: string): void {
    this.heavyRunning--
    const held = (this.heavyRunningBy.get(key) ?? 1) - 1
    if (held === 0) this.heavyRunningBy.delete(key)
    else this.heavyRunningBy.set(key, held)
    this.grantHeavyTurns()
  }

  /**
   * Gives free turns to waiting calls: each to the address holding the fewest turns (below its share), the first in
   * round-robin order among those, which then goes to the back of the round.
   */
  private grantHeavyTurns(): void {
    while (this.heavyRunning < this.heavyLimit) {
      let pick: string | undefined
      let fewest = this.heavyShare
      for (const key of this.heavyQueues.keys()) {
        const held = this.heavyRunningBy.get(key) ?? 0
        if (held < fewest) {
          pick = key
          fewest = held
          if (held === 0) break
        }
      }
      if (pick === undefined) return
      const queue = this.heavyQueues.get(pick)!
      let next = queue.items.shift()
      while (next !== undefined && next.state !== 'waiting') next = queue.items.shift()
      this.heavyQueues.delete(pick)
      // a queue in the map has a call waiting (`live` > 0), so `next` is one
      if (next === undefined) continue
      if (--queue.live > 0) this.heavyQueues.set(pick, queue)
      next.state = 'granted'
      this.heavyRunning++
      this.heavyRunningBy.set(pick, fewest + 1)
      next.grant()
    }
  }

  /** Heavy calls waiting for a turn, and the addresses they wait under (their queues). */
  get heavyWaiting(): { readonly calls: number; readonly addresses: number } {
    let calls = 0
    for (const q of this.heavyQueues.values()) calls += q.live
    return { calls, addresses: this.heavyQueues.size }
  }

  private count(method: string, outcome: string): void {
    this.deps.metrics?.countRpcCall(method, outcome)
  }
}

/** The parsed arguments in declaration order, or which parameter is wrong and why. */
type Resolved = Parsed<unknown[]>

/** Maps positional or named params onto the method's parameter list and parses each. */
function resolveParams(specs: readonly ParamSpec[], params: unknown[] | Record<string, unknown> | undefined): Resolved {
  let raw: unknown[]
  if (params === undefined) {
    raw = []
  } else if (Array.isArray(params)) {
    if (params.length > specs.length) {
      return invalidParam(`expected at most ${specs.length} parameter(s), got ${params.length}`)
    }
    raw = params
  } else {
    const names = new Set(specs.map((s) => s.name))
    for (const k of Object.keys(params)) {
      if (!names.has(k)) return invalidParam(`unknown parameter ${JSON.stringify(k.slice(0, 64))}`, k.slice(0, 64))
    }
    raw = specs.map((s) => (Object.hasOwn(params, s.name) ? params[s.name] : undefined))
  }
  const out: unknown[] = []
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!
    const v = raw[i]
    if (v === undefined || (v === null && spec.optional === true)) {
      if (spec.optional === true) {
        out.push(undefined)
        continue
      }
      return invalidParam(`${spec.name}: missing`, spec.name)
    }
    const p = spec.parse(v)
    if (!p.ok) return invalidParam(`${spec.name}: ${p.error.reason}`, spec.name)
    out.push(p.value)
  }
  return ok(out)
}
