import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import WebSocket from 'ws'

/**
 * A JSON-RPC client over several endpoints of one network, used by the wallet and the load benchmark.
 *
 * Failover: a call goes to the endpoint that last answered; on a connection error, a timeout, an HTTP 5xx or an
 * answer that is not JSON-RPC it moves on to the next endpoint, and after a full round waits (exponential
 * back-off) before the next round, `retries` times. A JSON-RPC error answer (the node understood and said no) is
 * final and is never retried elsewhere. When every endpoint failed, the error names each one and why.
 */

/** Client settings. */
export interface RpcClientOptions {
  /** Endpoint base URLs (`http://host:port`), tried in order. */
  readonly endpoints: readonly string[]
  /** Time allowed for one HTTP exchange (default 5000 ms). */
  readonly timeoutMs?: number
  /** Extra rounds over all endpoints after the first fails (default 1). */
  readonly retries?: number
  /** Wait before the second round; doubles each round (default 200 ms). */
  readonly backoffMs?: number
  /** Largest answer read; a longer one counts as a failed exchange (default 64 MiB). */
  readonly maxResponseBytes?: number
}

/** A JSON-RPC error answer: its code, message, and `data.reason` (the stable reason code) when present. */
export class RpcError extends Error {
  override readonly name = 'RpcError'
  /** The stable reason (`data.reason`), e.g. `insufficient_funds`; undefined for standard errors. */
  readonly reason: string | undefined

  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
    readonly endpoint?: string,
  ) {
    super(message)
    const r = (data as { reason?: unknown } | undefined)?.reason
    this.reason = typeof r === 'string' ? r : undefined
  }
}

/** No endpoint answered: each one tried and why it failed. */
export class RpcUnreachableError extends Error {
  override readonly name = 'RpcUnreachableError'

  constructor(readonly attempts: readonly { endpoint: string; error: string }[]) {
    super(
      `no RPC endpoint answered: ${dedupe(attempts)
        .map((a) => `${a.endpoint} (${a.error})`)
        .join(', ')}`,
    )
  }
}

function dedupe(attempts: readonly { endpoint: string; error: string }[]): { endpoint: string; error: string }[] {
  const last = new Map<string, string>()
  for (const a of attempts) last.set(a.endpoint, a.error)
  return [...last].map(([endpoint, error]) => ({ endpoint, error }))
}

/** `node_status` as the client returns it. */
export interface StatusView {
  chainId: string
  moniker: string
  nodeId: string
  height: number
  blockHash: string | null
  blockTime: string | null
  validator: string | null
  peers: number
  catchingUp: boolean
}

/** `tx_get` as the client returns it. */
export interface TxView {
  hash: string
  status: 'pending' | 'committed' | 'rejected' | 'unknown'
  height?: number
  index?: number
  ok?: boolean
  error?: string
  /** Why a `rejected` transaction left the mempool. */
  reason?: string
}

/** A `chain_getValidators` entry. */
export interface ValidatorView {
  address: string
  publicKey: string
  power: number
  peerId: string
  name: string
}

/** A commit certificate as `chain_getBlock` and `chain_getCommit` show it. */
export interface CommitView {
  height: number
  round: number
  blockHash: string
  signatures: { validator: string; signature: string }[]
  lastCommit: Omit<CommitView, 'lastCommit'> | null
}

/** A governance action as the RPC shows it. */
export type ActionView =
  | { type: 'add'; publicKey: string; address: string; power: number; peerId: string; name: string }
  | { type: 'remove'; address: string }
  | { type: 'power'; address: string; power: number }

/** `chain_getPendingChanges` (docs/rpc.md). */
export interface PendingChangesView {
  height: number
  totalPower: number
  voteExpiryHeights: number
  scheduled: { fromHeight: number; validators: ValidatorView[] } | null
  changes: {
    id: string
    action: ActionView
    votes: { address: string; height: number; countsUntil: number }[]
    power: number
    totalPower: number
    passes: boolean
    forced: boolean
  }[]
}

/** One call of a batch. */
export interface BatchCall {
  readonly method: string
  readonly params?: unknown[] | Record<string, unknown>
}

/** One answer of a batch, in call order. */
export type BatchAnswer = { ok: true; result: unknown } | { ok: false; error: RpcError }

type Attempt = { kind: 'answer'; value: unknown } | { kind: 'unreachable'; error: string }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Why an HTTP exchange failed, for the error that names each endpoint tried: the system error code when there is one. */
function describe(e: unknown): string {
  const err = e as { code?: unknown; message?: string } | null
  return typeof err?.code === 'string' ? err.code : (err?.message ?? String(e))
}

/**
 * Deepest nesting of brackets an answer may have. The deepest answer is a batch of commits: batch, answer, result,
 * commit, last commit, signatures, signature (7). `JSON.parse` takes about 0.7 s and 50 bytes of memory per byte of an
 * answer that is only brackets nested a million deep (42 s and 3 GB for 64 MiB), so nesting is bounded before parsing.
 */
export const MAX_JSON_DEPTH = 64

/** True when `text` (JSON or not) nests arrays and objects deeper than `max`: a linear scan that skips strings. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // on to the closing quote (one after an even run of backslashes): most of an answer is hex in strings
      for (;;) {
        const j = text.indexOf('"', i + 1)
        if (j === -1) return false
        let k = j - 1
        while (text.charCodeAt(k) === 0x5c) k--
        i = j
        if ((j - 1 - k) % 2 === 0) break
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** An HTTP exchange's outcome: the status and the body's text, or why there is none. */
type Exchange = { ok: true; status: number; text: string } | { ok: false; error: string }

/**
 * POSTs JSON text with Node's HTTP client over its keep-alive connection pool (one per protocol, shared by every
 * client in the process; an idle pooled connection does not hold the process open). The whole exchange, answer
 * included, gets `timeoutMs`, and reading stops past `maxBytes` (an endpoint must not make the client buffer
 * without end).
 */
function postJson(url: URL, text: string, timeoutMs: number, maxBytes: number): Promise<Exchange> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (x: Exchange) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(x)
    }
    const payload = Buffer.from(text, 'utf8')
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': payload.length } }, (res) => {
      const tooLarge = () => {
        req.destroy()
        finish({ ok: false, error: `answer larger than ${maxBytes} bytes` })
      }
      if (Number(res.headers['content-length'] ?? Number.NaN) > maxBytes) return tooLarge()
      const chunks: Buffer[] = []
      let total = 0
      res.on('data', (c: Buffer) => {
        total += c.length
        if (total > maxBytes) tooLarge()
        else chunks.push(c)
      })
      res.on('end', () => finish({ ok: true, status: res.statusCode ?? 0, text: Buffer.concat(chunks, total).toString('utf8') }))
      res.on('error', (e) => finish({ ok: false, error: describe(e) }))
      res.on('close', () => {
        if (!res.complete) finish({ ok: false, error: 'answer cut off' })
      })
    })
    const timer = setTimeout(() => {
      finish({ ok: false, error: `timed out after ${timeoutMs} ms` })
      req.destroy()
    }, timeoutMs)
    req.on('error', (e) => finish({ ok: false, error: describe(e) }))
    req.end(payload)
  })
}

/** The JSON-RPC client. */
export class RpcClient {
  private readonly endpoints: string[]
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly backoffMs: number
  private readonly maxResponseBytes: number
  /** Each endpoint's `POST /` URL, parsed once. */
  private readonly urls = new Map<string, URL>()
  private preferred = 0
  private nextId = 1

  constructor(options: RpcClientOptions) {
    const endpoints = options.endpoints
      .map((e) => e.trim())
      .filter((e) => e.length > 0)
      .map((e) => e.replace(/\/+$/, ''))
    if (endpoints.length === 0) throw new RangeError('RpcClient: at least one endpoint is required')
    for (const e of endpoints) {
      let u: URL
      try {
        u = new URL(e)
      } catch {
        throw new RangeError(`RpcClient: not a URL: ${e}`)
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RangeError(`RpcClient: not an http(s) URL: ${e}`)
      this.urls.set(e, new URL(`${e}/`))
    }
    this.endpoints = endpoints
    this.timeoutMs = options.timeoutMs ?? 5000
    this.retries = options.retries ?? 1
    this.backoffMs = options.backoffMs ?? 200
    this.maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024
  }

  /** The endpoint the next call goes to first. */
  get endpoint(): string {
    return this.endpoints[this.preferred]!
  }

  /** Calls one method; resolves with its result or rejects with RpcError / RpcUnreachableError. */
  async call<T = unknown>(method: string, params: unknown[] | Record<string, unknown> = []): Promise<T> {
    const id = this.nextId++
    const { value, endpoint } = await this.exchange({ jsonrpc: '2.0', id, method, params })
    return this.unwrap(value, id, endpoint) as T
  }

  /** Sends calls as one JSON-RPC batch; answers come back in call order. */
  async batch(calls: readonly BatchCall[]): Promise<BatchAnswer[]> {
    if (calls.length === 0) return []
    const first = this.nextId
    this.nextId += calls.length
    const body = calls.map((c, i) => ({ jsonrpc: '2.0', id: first + i, method: c.method, params: c.params ?? [] }))
    const { value, endpoint } = await this.exchange(body)
    if (!Array.isArray(value)) {
      // The whole batch was refused (e.g. too long): the same error for every call.
      const e = this.toError(value, endpoint)
      return calls.map(() => ({ ok: false as const, error: e }))
    }
    const byId = new Map<unknown, unknown>()
    for (const r of value) byId.set((r as { id?: unknown })?.id, r)
    return calls.map((_, i) => {
      const r = byId.get(first + i)
      if (r === undefined) return { ok: false as const, error: new RpcError(-32603, 'no answer for this call in the batch', undefined, endpoint) }
      try {
        return { ok: true as const, result: this.unwrap(r, first + i, endpoint) }
      } catch (e) {
        return { ok: false as const, error: e as RpcError }
      }
    })
  }

  private unwrap(value: unknown, id: number, endpoint: string): unknown {
    const r = value as { id?: unknown; result?: unknown; error?: unknown }
    if (r === null || typeof r !== 'object') throw new RpcError(-32603, 'not a JSON-RPC response', undefined, endpoint)
    if (r.error !== undefined) throw this.toError(r, endpoint)
    if (r.id !== id) throw new RpcError(-32603, `response id ${JSON.stringify(r.id)} does not match request id ${id}`, undefined, endpoint)
    if (!('result' in r)) throw new RpcError(-32603, 'response has neither result nor error', undefined, endpoint)
    return r.result
  }

  private toError(value: unknown, endpoint: string): RpcError {
    const e = (value as { error?: { code?: unknown; message?: unknown; data?: unknown } } | null)?.error
    if (e === undefined || e === null || typeof e !== 'object') return new RpcError(-32603, 'not a JSON-RPC response', undefined, endpoint)
    return new RpcError(typeof e.code === 'number' ? e.code : -32603, typeof e.message === 'string' ? e.message : 'error', e.data, endpoint)
  }

  /** Posts a body, failing over between endpoints; returns the parsed JSON answer and who gave it. */
  private async exchange(body: unknown): Promise<{ value: unknown; endpoint: string }> {
    const text = JSON.stringify(body)
    const attempts: { endpoint: string; error: string }[] = []
    for (let round = 0; round <= this.retries; round++) {
      if (round > 0) await sleep(this.backoffMs * 2 ** (round - 1))
      for (let k = 0; k < this.endpoints.length; k++) {
        const i = (this.preferred + k) % this.endpoints.length
        const endpoint = this.endpoints[i]!
        const a = await this.post(endpoint, text)
        if (a.kind === 'answer') {
          this.preferred = i
          return { value: a.value, endpoint }
        }
        attempts.push({ endpoint, error: a.error })
      }
    }
    throw new RpcUnreachableError(attempts)
  }

  private async post(endpoint: string, text: string): Promise<Attempt> {
    const x = await postJson(this.urls.get(endpoint)!, text, this.timeoutMs, this.maxResponseBytes)
    if (!x.ok) return { kind: 'unreachable', error: x.error }
    if (x.status >= 500) return { kind: 'unreachable', error: `HTTP ${x.status}` }
    if (nestsDeeperThan(x.text, MAX_JSON_DEPTH)) return { kind: 'unreachable', error: `HTTP ${x.status} with a body nested deeper than ${MAX_JSON_DEPTH}` }
    let value: unknown
    try {
      value = JSON.parse(x.text)
    } catch {
      return { kind: 'unreachable', error: `HTTP ${x.status} with a body that is not JSON` }
    }
    if (x.status !== 200) {
      // 4xx with a JSON-RPC error (413, 415…): the request is at fault, not the endpoint; report it as the answer.
      const e = (value as { error?: unknown } | null)?.error
      return e !== undefined ? { kind: 'answer', value } : { kind: 'unreachable', error: `HTTP ${x.status}` }
    }
    return { kind: 'answer', value }
  }

  /** `node_status`. */
  status(): Promise<StatusView> {
    return this.call<StatusView>('node_status')
  }

  /** `ledger_getAccount`: balance and next committed nonce, as bigints. */
  async getAccount(address: string): Promise<{ address: string; balance: bigint; nonce: bigint }> {
    const r = await this.call<{ address: string; balance: string; nonce: string }>('ledger_getAccount', [address])
    return { address: r.address, balance: BigInt(r.balance), nonce: BigInt(r.nonce) }
  }

  /** `ledger_getBalance`. */
  async getBalance(address: string): Promise<bigint> {
    return BigInt(await this.call<string>('ledger_getBalance', [address]))
  }

  /** `ledger_getNextNonce`: the nonce to sign next, counting the sender's pending transactions. */
  async getNextNonce(address: string): Promise<bigint> {
    return BigInt(await this.call<string>('ledger_getNextNonce', [address]))
  }

  /** `tx_submit`: the hash once admitted; RpcError with `reason` when refused. */
  async submitTx(signedTxHex: string): Promise<string> {
    return (await this.call<{ hash: string }>('tx_submit', [signedTxHex])).hash
  }

  /** `tx_get`. */
  getTx(hash: string): Promise<TxView> {
    return this.call<TxView>('tx_get', [hash])
  }

  /** `chain_getBlock` (latest when height is undefined); null past the tip. */
  getBlock(height?: number): Promise<Record<string, unknown> | null> {
    return this.call('chain_getBlock', height === undefined ? [] : [height])
  }

  /** `chain_getValidators`: the set in force at `height` (the next height's when undefined). */
  getValidators(height?: number): Promise<ValidatorView[]> {
    return this.call('chain_getValidators', height === undefined ? [] : [height])
  }

  /** `chain_getCommit`: a committed header and its commit certificate; null past the tip. */
  getCommit(height: number): Promise<{ height: number; hash: string; header: Record<string, unknown>; commit: CommitView } | null> {
    return this.call('chain_getCommit', [height])
  }

  /** `chain_getPendingChanges`: the governance changes waiting for votes. */
  getPendingChanges(): Promise<PendingChangesView> {
    return this.call('chain_getPendingChanges')
  }

  /**
   * Waits until a transaction is committed and returns its `tx_get` view. Subscribes over WebSocket
   * (`chain_subscribe ["tx", hash]`) on the current endpoint and polls `tx_get` every `pollMs` alongside,
   * so it works when WebSocket is unavailable. Rejects with a timeout error after `timeoutMs`.
   */
  async waitForTx(hash: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<TxView> {
    const timeoutMs = options.timeoutMs ?? 60_000
    const pollMs = options.pollMs ?? 500
    const deadline = Date.now() + timeoutMs
    const ac = new AbortController()
    const ws = this.subscribeTx(hash, ac.signal)
    try {
      for (;;) {
        const t = await this.getTx(hash)
        if (t.status === 'committed') return t
        if (t.status === 'rejected') {
          throw new RpcError(
            -32000,
            `transaction ${hash} was rejected: ${t.error ?? 'rejected'}${t.reason ? ` (${t.reason})` : ''}`,
            { reason: t.error ?? 'rejected' },
            this.endpoint,
          )
        }
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`transaction ${hash} was not committed within ${timeoutMs} ms (last status: ${t.status})`)
        const notified = await Promise.race([ws, sleep(Math.min(pollMs, left)).then(() => undefined)])
        if (notified !== undefined) return notified
      }
    } finally {
      ac.abort()
    }
  }

  /** Resolves with the commit notification for `hash`, or never (on any WebSocket trouble) until aborted. */
  private subscribeTx(hash: string, signal: AbortSignal): Promise<TxView | undefined> {
    return new Promise((resolve) => {
      let ws: WebSocket
      try {
        ws = new WebSocket(`${this.endpoint.replace(/^http/, 'ws')}/ws`, { handshakeTimeout: this.timeoutMs })
      } catch {
        return
      }
      const close = () => ws.terminate()
      signal.addEventListener('abort', close, { once: true })
      ws.on('error', () => {
        /* polling carries on */
      })
      ws.on('open', () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribe', params: ['tx', hash] })))
      ws.on('message', (data) => {
        let m: { method?: string; params?: { result?: TxView } }
        const text = String(data)
        if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return
        try {
          m = JSON.parse(text) as typeof m
        } catch {
          return
        }
        if (m.method === 'chain_subscription' && m.params?.result?.status === 'committed') {
          resolve(m.params.result)
          close()
        }
      })
    })
  }
}
