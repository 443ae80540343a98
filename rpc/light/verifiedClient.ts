import { parseAddress } from '../../crypto/address.js'
import { fromHex, to0x } from '../../crypto/bytes.js'
import { HASH_LENGTH } from '../../crypto/hash.js'
import { RpcClient, RpcError, RpcUnreachableError } from '../client.js'
import { ConflictingHeadersError, FailedVerificationError, TrustError, UnconfirmedHeaderError } from './errors.js'
import { decodeEvidence } from '../../consensus/index.js'
import { evidenceView, formatBlockTx, formatDomain } from '../format.js'
import { formatCommitCertificate, formatHeader, type LightBlock } from './lightBlock.js'
import type { LightClient, Witnesses } from './lightClient.js'
import { checkAccountAnswer, checkBlockAnswer, checkTxAnswer } from './proofs.js'
import { RpcLightProvider } from './rpcProvider.js'
import type { TrustedBlock } from './verifier.js'

/**
 * Verified look-ups over several endpoints: every answer comes with its proof (docs/rpc.md, "Proofs"), the proof is
 * checked against the header that comes with it, and the header by the light client against the validator sets it
 * trusts. An endpoint whose answer fails any of it is reported (`onRejected`), dropped for the rest of the client's
 * life, and the next endpoint is asked, exactly as for an endpoint that does not answer; so one honest endpoint among
 * the listed ones is enough for a true answer, and no endpoint can make the client show a false one.
 *
 * A header the light client verifies by skipping (on the word of more than a third of a trusted set) is compared with
 * every other endpoint's header at its height, all asked at once, each within the light client's witness deadline
 * (but those that did not answer in this look-up). Another header there that verifies too is a fork, and the look-up
 * stops with {@link ConflictingHeadersError}, even when other endpoints confirm the header (they may serve the same
 * fork); with no conflict, a header one of them confirms is trusted. When none confirms it (each unreachable, slow,
 * without the block, or lying), the light client verifies it height by height instead (`onUnconfirmed` is told),
 * and beyond its bound the answer counts as unverified and the next endpoint is asked. With one endpoint there is
 * nothing to compare with, and the header is trusted on the signatures alone.
 *
 * A negative answer (a transaction not committed) has no proof: the client asks every endpoint before it settles on
 * one, and says it is unverified.
 */

/** Client settings. */
export interface VerifiedRpcOptions {
  /** Endpoint base URLs, tried in order. */
  readonly endpoints: readonly string[]
  /** Time allowed for one HTTP exchange (default 5000 ms). */
  readonly timeoutMs?: number
  /** Extra rounds over the endpoints that did not answer (default 1). */
  readonly retries?: number
  /** Wait before the second round; doubles each round (default 200 ms). */
  readonly backoffMs?: number
  /**
   * Time allowed for one endpoint's verified answer, the light client's fetches from it included (default 30 s): past
   * it the endpoint counts as unreachable, so that one answering each request just within `timeoutMs` (a bisection
   * towards a forged header can take dozens of requests) cannot hold the look-up for minutes.
   */
  readonly answerTimeoutMs?: number
}

/** What the client works with. */
export interface VerifiedRpcDependencies {
  readonly light: LightClient
  /** Told of every endpoint whose answer failed verification, as it happens. */
  readonly onRejected?: (e: FailedVerificationError) => void
  /** Told when no other endpoint confirmed a header verified by skipping, which is then verified height by height. */
  readonly onUnconfirmed?: (e: UnconfirmedHeaderError) => void
}

/** Where an answer was verified: the height of the trusted block that proves it, and that block's hash. */
export interface Verified {
  readonly verifiedHeight: number
  readonly blockHash: string
}

/** A verified account. */
export interface VerifiedAccount extends Verified {
  readonly address: string
  readonly balance: bigint
  readonly nonce: bigint
}

/** A verified balance. */
export interface VerifiedBalance extends Verified {
  readonly address: string
  readonly balance: bigint
}

/** A transaction proven committed, at `height` (= `verifiedHeight`), position `index`. */
export interface VerifiedCommittedTx extends Verified {
  readonly hash: string
  readonly status: 'committed'
  readonly height: number
  readonly index: number
  readonly ok: true
}

/**
 * A verified block, as `chain_getBlock` shows one (docs/rpc.md) but made by the client from what it verified: the
 * header, the certificate the light client checked, and each transaction and piece of evidence decoded from the bytes
 * that hash to the header's roots (every transaction `ok`: a committed block holds only transactions that applied).
 */
export interface VerifiedBlock extends Verified {
  readonly height: number
  readonly hash: string
  readonly header: Record<string, unknown>
  readonly txs: readonly Record<string, unknown>[]
  readonly commit: Record<string, unknown>
  readonly evidence: readonly unknown[]
}

/** A transaction no endpoint proved committed: the first endpoint's word on it, unverified. */
export interface UnprovenTx {
  readonly hash: string
  readonly status: 'pending' | 'rejected' | 'unknown'
  readonly error?: string
  readonly reason?: string
}

/** No endpoint gave an answer that verifies: each one and why. */
export class NoVerifiedAnswerError extends Error {
  override readonly name = 'NoVerifiedAnswerError'

  constructor(readonly attempts: readonly { endpoint: string; error: string }[]) {
    super(`no RPC endpoint gave a verified answer: ${attempts.map((a) => `${a.endpoint} (${a.error})`).join(', ')}`)
  }
}

/** Where an attempt's answer and what verifies it come from: one endpoint, and the others as witnesses. */
interface Source {
  readonly client: RpcClient
  readonly provider: RpcLightProvider
  readonly witnesses: Witnesses | undefined
}

type Attempt<T> =
  | { readonly kind: 'answer'; readonly value: T | undefined }
  | { readonly kind: 'failed'; readonly error: string; readonly unreachable: boolean }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** An answer from further below the trusted blocks than the light client can verify: the endpoint's, not the client's. */
class StaleAnswerError extends Error {
  constructor(
    readonly endpoint: string,
    readonly reason: string,
  ) {
    super(`${endpoint} answered from a height too old to verify: ${reason}`)
  }
}

/** The verifying client. */
export class VerifiedRpc {
  private readonly clients: RpcClient[]
  private readonly retries: number
  private readonly backoffMs: number
  private readonly timeoutMs: number
  private readonly answerTimeoutMs: number
  private readonly rejected = new Set<string>()
  private preferred = 0

  constructor(
    options: VerifiedRpcOptions,
    private readonly deps: VerifiedRpcDependencies,
  ) {
    this.timeoutMs = options.timeoutMs ?? 5000
    this.answerTimeoutMs = options.answerTimeoutMs ?? 30_000
    this.retries = options.retries ?? 1
    this.backoffMs = options.backoffMs ?? 200
    this.clients = options.endpoints.map((e) => new RpcClient({ endpoints: [e], timeoutMs: this.timeoutMs, retries: 0 }))
    if (this.clients.length === 0) throw new RangeError('VerifiedRpc: at least one endpoint is required')
  }

  /** The endpoints whose answers failed verification so far. */
  get rejectedEndpoints(): readonly string[] {
    return [...this.rejected]
  }

  /** `ledger_getAccount` with its proof, verified. */
  async account(address: string): Promise<VerifiedAccount> {
    const a = parseAddress(address)
    if (a === undefined) throw new RangeError(`not an address: ${address}`)
    return this.required(
      await this.query(async (source) => {
        const c = checkAccountAnswer(a, await source.client.call('ledger_getAccount', [address, { proof: true }]), true)
        if (!c.ok) throw new FailedVerificationError(source.client.endpoint, c.error.reason)
        const t = await this.trust(c.value.block, source)
        return { address, balance: c.value.account.balance, nonce: c.value.account.nonce, ...verifiedAt(t) }
      }),
    )
  }

  /** `ledger_getBalance` with its proof, verified. */
  async balance(address: string): Promise<VerifiedBalance> {
    const a = parseAddress(address)
    if (a === undefined) throw new RangeError(`not an address: ${address}`)
    return this.required(
      await this.query(async (source) => {
        const c = checkAccountAnswer(a, await source.client.call('ledger_getBalance', [address, { proof: true }]), false)
        if (!c.ok) throw new FailedVerificationError(source.client.endpoint, c.error.reason)
        const t = await this.trust(c.value.block, source)
        return { address, balance: c.value.account.balance, ...verifiedAt(t) }
      }),
    )
  }

  /**
   * `tx_get` with its proof. A committed transaction is verified; an answer that it is not committed is checked with
   * the other endpoints, and the first such answer is returned (unverified) only when none proves it committed.
   * `startWith` names the endpoint to ask first.
   */
  async tx(hash: string, startWith?: string): Promise<VerifiedCommittedTx | UnprovenTx> {
    const h = fromHex(hash, HASH_LENGTH)
    if (h === undefined) throw new RangeError(`not a hash: ${hash}`)
    let unproven: UnprovenTx | undefined
    const proven = await this.query(async (source) => {
      const c = checkTxAnswer(h, await source.client.call('tx_get', [hash, { proof: true }]))
      if (!c.ok) throw new FailedVerificationError(source.client.endpoint, c.error.reason)
      const v = c.value
      if (v.status !== 'committed') {
        unproven ??= v
        return undefined
      }
      const t = await this.trust(v.block, source)
      return { hash: v.hash, status: 'committed' as const, height: v.height, index: v.index, ok: true as const, ...verifiedAt(t) }
    }, startWith)
    return proven ?? unproven!
  }

  /**
   * `chain_getBlock` of `height` (the latest of the endpoint asked, when undefined), verified: its header by the light
   * client, its transactions and evidence against the header's roots. Undefined when no endpoint has the block.
   */
  async block(height?: number): Promise<VerifiedBlock | undefined> {
    if (height !== undefined && (!Number.isSafeInteger(height) || height < 1)) throw new RangeError(`not a height: ${height}`)
    return this.query(async (source) => {
      const answer = await source.client.call('chain_getBlock', height === undefined ? [] : [height])
      if (answer === null) return undefined
      const c = checkBlockAnswer(answer, height)
      if (!c.ok) throw new FailedVerificationError(source.client.endpoint, c.error.reason)
      const t = await this.trust(c.value.block, source)
      // shown, so checked: a header trusted before, or by the hash chain, was trusted without it
      await this.deps.light.checkCertificate(c.value.block, source.provider)
      const { header, hash, commit } = c.value.block
      return {
        height: header.height,
        hash: to0x(hash),
        header: formatHeader(header),
        txs: c.value.txs.map((raw) => ({ ...formatBlockTx(raw), ok: true })),
        commit: formatCommitCertificate(commit),
        evidence: c.value.evidence.map((raw) => {
          const e = decodeEvidence(raw)
          if (!e.ok) throw new Error('checked evidence does not decode')
          return formatDomain(evidenceView(raw, e.value, header.height))
        }),
        ...verifiedAt(t),
      }
    })
  }

  /**
   * Waits until the transaction is proven committed: waits for an endpoint to say so (a WebSocket subscription with
   * polling, `RpcClient.waitForTx`, over the endpoints not rejected), then asks for the proof, that endpoint first.
   * A `rejected` answer ends the wait with that endpoint's reason (RpcError), as without verification.
   */
  async waitForTx(hash: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<VerifiedCommittedTx> {
    const timeoutMs = options.timeoutMs ?? 60_000
    const pollMs = options.pollMs ?? 500
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const live = this.clients.map((c) => c.endpoint).filter((e) => !this.rejected.has(e))
      if (live.length === 0) throw new NoVerifiedAnswerError([...this.rejected].map((endpoint) => ({ endpoint, error: 'fails verification' })))
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`transaction ${hash} was not proven committed within ${timeoutMs} ms`)
      const waiter = new RpcClient({ endpoints: live, timeoutMs: this.timeoutMs, retries: this.retries, backoffMs: this.backoffMs })
      await waiter.waitForTx(hash, { timeoutMs: left, pollMs })
      const v = await this.tx(hash, waiter.endpoint)
      if (v.status === 'committed') return v
      // the one that said so could not prove it (or lied and is rejected now): wait on
      await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())))
    }
  }

  /**
   * The light client's verification of an answer's block. Below the latest trusted block, a trust error says the answer
   * is too old to verify (an endpoint far behind, or replaying an old answer), not that the client has no starting
   * point: that endpoint fails and the next is asked, rather than the whole look-up stopping.
   */
  private async trust(block: LightBlock, source: Source): Promise<TrustedBlock> {
    const latest = this.deps.light.latest().height
    try {
      return await this.deps.light.verify(block, source.provider, source.witnesses)
    } catch (e) {
      if (e instanceof TrustError && block.header.height < latest) throw new StaleAnswerError(source.provider.name, e.message)
      throw e
    }
  }

  /** Records an endpoint whose answer failed verification: never asked for an answer again. */
  private reject(e: FailedVerificationError): void {
    if (this.rejected.has(e.endpoint)) return
    this.rejected.add(e.endpoint)
    this.deps.onRejected?.(e)
  }

  /**
   * The endpoints that check a header `client` served: the others in list order after it but those that did not
   * answer in this look-up, those whose answers failed verification last (a conflict names the first witness that
   * holds one, and a header of theirs that conflicts is verified before it counts).
   */
  private witnessesOf(client: RpcClient, unanswered: ReadonlySet<string>): RpcClient[] {
    const i = this.clients.indexOf(client)
    const others = [...this.clients.slice(i + 1), ...this.clients.slice(0, i)].filter((c) => !unanswered.has(c.endpoint))
    return [...others.filter((c) => !this.rejected.has(c.endpoint)), ...others.filter((c) => this.rejected.has(c.endpoint))]
  }

  private required<T>(value: T | undefined): T {
    if (value === undefined) throw new Error('no endpoint answered')
    return value
  }

  /**
   * Asks the endpoints in turn (from the preferred one, or `startWith`) until one gives an answer that verifies. `ask`
   * returns undefined for an answer that is fine but proves nothing (the next endpoint is asked; if none proves more,
   * the result is undefined). Endpoints that did not answer are asked again in later rounds; rejected ones never.
   */
  private async query<T>(ask: (source: Source) => Promise<T | undefined>, startWith?: string): Promise<T | undefined> {
    const failures: { endpoint: string; error: string }[] = []
    let answered = false
    let retry = new Set(this.clients.map((c) => c.endpoint))
    // endpoints that did not answer in this look-up: not asked as witnesses, where they would time out again
    const unanswered = new Set<string>()
    const first =
      startWith === undefined
        ? this.preferred
        : Math.max(
            0,
            this.clients.findIndex((c) => c.endpoint === startWith),
          )
    for (let round = 0; round <= this.retries && retry.size > 0; round++) {
      if (round > 0) await sleep(this.backoffMs * 2 ** (round - 1))
      const again = new Set<string>()
      for (let k = 0; k < this.clients.length; k++) {
        const i = (first + k) % this.clients.length
        const client = this.clients[i]!
        if (this.rejected.has(client.endpoint) || !retry.has(client.endpoint)) continue
        const a = await this.attempt(client, ask, unanswered)
        if (a.kind === 'answer') {
          if (a.value !== undefined) {
            this.preferred = i
            return a.value
          }
          answered = true
          continue
        }
        failures.push({ endpoint: client.endpoint, error: a.error })
        if (a.unreachable) {
          again.add(client.endpoint)
          unanswered.add(client.endpoint)
        }
      }
      retry = again
    }
    if (answered) return undefined
    if (failures.length > 0 && failures.every((f) => !this.rejected.has(f.endpoint)) && failures.every((f) => f.error.startsWith('unreachable: '))) {
      throw new RpcUnreachableError(failures.map((f) => ({ endpoint: f.endpoint, error: f.error.slice('unreachable: '.length) })))
    }
    throw new NoVerifiedAnswerError(dedupe(failures))
  }

  private async attempt<T>(client: RpcClient, ask: (source: Source) => Promise<T | undefined>, unanswered: ReadonlySet<string>): Promise<Attempt<T>> {
    const late = `no verified answer within ${this.answerTimeoutMs} ms`
    const deadline = Date.now() + this.answerTimeoutMs
    let timer: NodeJS.Timeout | undefined
    try {
      // past the deadline the providers ask no more, and the attempt does not wait for the request under way
      const provider = new RpcLightProvider(client, { deadline, late })
      const witnesses: Witnesses | undefined =
        this.clients.length === 1
          ? undefined
          : {
              providers: this.witnessesOf(client, unanswered).map((w) => new RpcLightProvider(w, { deadline, late })),
              onLie: (e) => this.reject(e),
              ...(this.deps.onUnconfirmed === undefined ? {} : { onUnconfirmed: this.deps.onUnconfirmed }),
            }
      const answer = ask({ client, provider, witnesses })
      answer.catch(() => {})
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RpcUnreachableError([{ endpoint: client.endpoint, error: late }])), this.answerTimeoutMs)
      })
      return { kind: 'answer', value: await Promise.race([answer, expired]) }
    } catch (e) {
      if (e instanceof FailedVerificationError) {
        this.reject(e)
        return { kind: 'failed', error: `fails verification: ${e.reason}`, unreachable: false }
      }
      // a fork stops the look-up: no endpoint can settle which side is the chain
      if (e instanceof ConflictingHeadersError) throw e
      // the witnesses may answer in the next round; the endpoint that served the header is no liar for it
      if (e instanceof UnconfirmedHeaderError) return { kind: 'failed', error: `unconfirmed: ${e.message}`, unreachable: true }
      if (e instanceof StaleAnswerError) return { kind: 'failed', error: `stale: ${e.reason}`, unreachable: false }
      if (e instanceof RpcUnreachableError) {
        return { kind: 'failed', error: `unreachable: ${e.attempts.at(-1)?.error ?? 'no answer'}`, unreachable: true }
      }
      if (e instanceof RpcError) return { kind: 'failed', error: `${e.message}${e.reason === undefined ? ` (code ${e.code})` : ''}`, unreachable: false }
      throw e
    } finally {
      clearTimeout(timer)
    }
  }
}

function verifiedAt(t: TrustedBlock): Verified {
  return { verifiedHeight: t.height, blockHash: to0x(t.hash!) }
}

function dedupe(attempts: readonly { endpoint: string; error: string }[]): { endpoint: string; error: string }[] {
  const last = new Map<string, string>()
  for (const a of attempts) last.set(a.endpoint, a.error)
  return [...last].map(([endpoint, error]) => ({ endpoint, error }))
}
