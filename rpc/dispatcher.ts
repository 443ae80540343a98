import { StandardErrorCode, applicationError, type JsonRpcError } from './errors.js'
import { ok } from '../crypto/result.js'
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
}

/** A method's parameter: its name (for named params and error messages) and its parser. */
export interface ParamSpec {
  readonly name: string
  readonly optional?: boolean
  parse(value: unknown): Parsed<unknown>
}

/** A method's outcome: a JSON-ready result or a JSON-RPC error. */
export type MethodOutcome = { ok: true; result: unknown } | { ok: false; error: JsonRpcError }

/** A method: its parameters and its handler, which receives the parsed values in declaration order. */
export interface MethodSpec {
  readonly params: readonly ParamSpec[]
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

const isValidId = (id: unknown): id is JsonRpcId => id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))

/** Runs JSON-RPC requests against a method table. */
export class Dispatcher {
  private readonly methods: Map<string, MethodSpec>

  constructor(
    private readonly options: DispatcherOptions,
    private readonly deps: DispatcherDependencies,
  ) {
    this.methods = new Map(Object.entries(deps.methods))
  }

  /** The method names served. */
  methodNames(): string[] {
    return [...this.methods.keys()]
  }

  /**
   * Handles a request body (text). Returns the response value (an object or a non-empty array) or undefined
   * when nothing is to be sent (notifications only).
   */
  async handleText(text: string, context: CallContext): Promise<JsonRpcResponse | JsonRpcResponse[] | undefined> {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      this.count('invalid', 'parse_error')
      return errorResponse(null, StandardErrorCode.parseError, 'parse error: the body is not valid JSON')
    }
    return this.handleValue(value, context)
  }

  /** Handles a parsed request value: a request object or a batch. */
  async handleValue(value: unknown, context: CallContext): Promise<JsonRpcResponse | JsonRpcResponse[] | undefined> {
    if (!Array.isArray(value)) return this.handleOne(value, context)
    if (value.length === 0) {
      this.count('invalid', 'invalid_request')
      return errorResponse(null, StandardErrorCode.invalidRequest, 'invalid request: empty batch')
    }
    if (value.length > this.options.maxBatch) {
      this.count('invalid', 'invalid_request')
      return errorResponse(null, StandardErrorCode.invalidRequest, `invalid request: batch of ${value.length} exceeds the limit of ${this.options.maxBatch}`)
    }
    // Members are started in order and run together: a batch of submissions reaches the node's signature
    // verification as one batch instead of one round trip per member. Admission still completes in nonce order
    // (verdicts come back in request order, and the mempool holds a nonce that arrives early).
    const out = (await Promise.all(value.map((member) => this.handleOne(member, context)))).filter((r): r is JsonRpcResponse => r !== undefined)
    return out.length === 0 ? undefined : out
  }

  private async handleOne(req: unknown, context: CallContext): Promise<JsonRpcResponse | undefined> {
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      this.count('invalid', 'invalid_request')
      return errorResponse(null, StandardErrorCode.invalidRequest, 'invalid request: expected a request object')
    }
    const r = req as Record<string, unknown>
    const hasId = Object.hasOwn(r, 'id')
    if (hasId && !isValidId(r.id)) {
      this.count('invalid', 'invalid_request')
      return errorResponse(null, StandardErrorCode.invalidRequest, 'invalid request: id must be a string, a number or null')
    }
    const id = hasId ? (r.id as JsonRpcId) : null
    if (r.jsonrpc !== '2.0') {
      this.count('invalid', 'invalid_request')
      return errorResponse(id, StandardErrorCode.invalidRequest, 'invalid request: jsonrpc must be "2.0"')
    }
    if (typeof r.method !== 'string') {
      this.count('invalid', 'invalid_request')
      return errorResponse(id, StandardErrorCode.invalidRequest, 'invalid request: method must be a string')
    }
    const params = r.params
    if (params !== undefined && (typeof params !== 'object' || params === null)) {
      this.count('invalid', 'invalid_request')
      return errorResponse(id, StandardErrorCode.invalidRequest, 'invalid request: params must be an array or an object')
    }
    const response = await this.call(r.method, params as unknown[] | Record<string, unknown> | undefined, id, context)
    return hasId ? response : undefined
  }

  private async call(name: string, params: unknown[] | Record<string, unknown> | undefined, id: JsonRpcId, context: CallContext): Promise<JsonRpcResponse> {
    const method = this.methods.get(name)
    if (method === undefined) {
      this.count('unknown', 'method_not_found')
      return errorResponse(id, StandardErrorCode.methodNotFound, `method not found: ${name.slice(0, 100)}`)
    }
    const args = resolveParams(method.params, params)
    if (!args.ok) {
      this.count(name, 'invalid_params')
      return errorResponse(
        id,
        StandardErrorCode.invalidParams,
        `invalid params: ${args.error.reason}`,
        args.error.param === undefined ? undefined : { param: args.error.param },
      )
    }
    let timer: NodeJS.Timeout | undefined
    try {
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.options.requestTimeoutMs)
      })
      const outcome = await Promise.race([Promise.resolve().then(() => method.handler(args.value, context)), deadline])
      if (outcome === 'timeout') {
        this.count(name, 'timeout')
        const e = applicationError('timeout', `${name} did not answer within ${this.options.requestTimeoutMs} ms`)
        return { jsonrpc: '2.0', id, error: e }
      }
      // A result the transport could not serialize (a stray bigint…) is the node's bug: an internal error.
      if (outcome.ok) JSON.stringify(outcome.result)
      this.count(name, outcome.ok ? 'ok' : 'error')
      return outcome.ok ? { jsonrpc: '2.0', id, result: outcome.result } : { jsonrpc: '2.0', id, error: outcome.error }
    } catch (e) {
      this.count(name, 'internal_error')
      this.deps.logger?.error({ err: e, method: name }, 'rpc method failed')
      return errorResponse(id, StandardErrorCode.internalError, 'internal error')
    } finally {
      clearTimeout(timer)
    }
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
