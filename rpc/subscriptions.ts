import { randomBytes } from 'node:crypto'
import { toHex } from '../crypto/bytes.js'
import type { BlockInfo, RpcBackend, TxCommittedEvent, Unsubscribe } from './backend.js'
import { applicationError } from './errors.js'
import { formatNewBlock, formatTxLookup } from './format.js'
import type { MethodOutcome } from './dispatcher.js'
import type { RpcLogger } from './logger.js'

/**
 * Subscriptions of WebSocket sessions to the node's events (`newBlocks`, and `tx` for one hash).
 * Each event is formatted and serialized once and handed to every subscribed session, which never blocks: a session
 * whose send queue is full drops itself. A `tx` subscription fires once, when the transaction is committed
 * (immediately when it already is), and is then removed.
 */

/** A WebSocket session as the hub sees it. */
export interface SubscriberSession {
  /** Queues a message; returns false when the session is closed or was dropped for being slow. */
  send(message: object): boolean
  /**
   * Queues a `chain_subscription` notification whose result is JSON text already encoded as UTF-8; false as `send`.
   * The bytes are shared by every subscription an event reaches: they are neither copied nor modified.
   */
  notify(subscription: string, result: Uint8Array): boolean
  /** Callbacks to run once the response to the current call has been sent (so notifications follow it). */
  readonly afterResponse: (() => void)[]
  /** Subscription id → subscription. */
  readonly subscriptions: Map<string, Subscription>
}

/** One subscription. */
export type Subscription = { readonly kind: 'newBlocks' } | { readonly kind: 'tx'; readonly hash: Uint8Array; fired: boolean }

/** Hub limits. */
export interface SubscriptionHubOptions {
  readonly maxSubscriptionsPerSession: number
}

/** Hub dependencies. */
export interface SubscriptionHubDependencies {
  readonly backend: RpcBackend
  readonly logger?: RpcLogger
}

/** Routes node events to subscribed sessions. */
export class SubscriptionHub {
  private readonly blockSubscribers = new Map<SubscriberSession, Set<string>>()
  /** Tx hash (hex) → session → subscription ids. */
  private readonly txSubscribers = new Map<string, Map<SubscriberSession, Set<string>>>()
  private unsubscribers: Unsubscribe[] = []

  constructor(
    private readonly options: SubscriptionHubOptions,
    private readonly deps: SubscriptionHubDependencies,
  ) {}

  /** Starts listening to the backend's events. */
  start(): void {
    if (this.unsubscribers.length > 0) return
    // Listeners run on the node's commit path: whatever goes wrong here is logged, never thrown into the node.
    const guard =
      <T>(f: (x: T) => void) =>
      (x: T) => {
        try {
          f(x)
        } catch (err) {
          this.deps.logger?.error({ err }, 'subscription fan-out failed')
        }
      }
    this.unsubscribers = [
      this.deps.backend.onNewBlock(guard((b: BlockInfo) => this.onNewBlock(b))),
      this.deps.backend.onTxCommitted(guard((e: TxCommittedEvent) => this.onTxCommitted(e))),
    ]
  }

  /** Stops listening. */
  stop(): void {
    for (const u of this.unsubscribers) u()
    this.unsubscribers = []
    this.blockSubscribers.clear()
    this.txSubscribers.clear()
  }

  /** `chain_subscribe`: returns the new subscription id. */
  subscribe(session: SubscriberSession, topic: 'newBlocks' | 'tx', hash?: Uint8Array): MethodOutcome {
    if (session.subscriptions.size >= this.options.maxSubscriptionsPerSession) {
      return {
        ok: false,
        error: applicationError('too_many_subscriptions', `at most ${this.options.maxSubscriptionsPerSession} subscriptions per connection`),
      }
    }
    const id = `0x${randomBytes(8).toString('hex')}`
    if (topic === 'newBlocks') {
      session.subscriptions.set(id, { kind: 'newBlocks' })
      let ids = this.blockSubscribers.get(session)
      if (ids === undefined) {
        ids = new Set()
        this.blockSubscribers.set(session, ids)
      }
      ids.add(id)
      return { ok: true, result: id }
    }
    const txHash = hash!
    const sub: Subscription = { kind: 'tx', hash: txHash, fired: false }
    session.subscriptions.set(id, sub)
    const key = toHex(txHash)
    let sessions = this.txSubscribers.get(key)
    if (sessions === undefined) {
      sessions = new Map()
      this.txSubscribers.set(key, sessions)
    }
    let ids = sessions.get(session)
    if (ids === undefined) {
      ids = new Set()
      sessions.set(session, ids)
    }
    ids.add(id)
    // Already committed? Then notify right after the subscription id has been sent.
    session.afterResponse.push(() => {
      void Promise.resolve()
        .then(() => this.deps.backend.getTx(txHash))
        .then((t) => {
          if (t.status !== 'committed' || sub.fired || !session.subscriptions.has(id)) return
          this.fireTx(session, id, formatTxLookup(txHash, t))
        })
        .catch((err: unknown) => this.deps.logger?.warn({ err }, 'tx subscription look-up failed'))
    })
    return { ok: true, result: id }
  }

  /** `chain_unsubscribe`: true when the id was one of the session's subscriptions. */
  unsubscribe(session: SubscriberSession, id: string): boolean {
    const sub = session.subscriptions.get(id)
    if (sub === undefined) return false
    session.subscriptions.delete(id)
    if (sub.kind === 'newBlocks') {
      const ids = this.blockSubscribers.get(session)
      ids?.delete(id)
      if (ids !== undefined && ids.size === 0) this.blockSubscribers.delete(session)
    } else {
      this.forgetTx(session, toHex(sub.hash), id)
    }
    return true
  }

  /** Drops every subscription of a closed session. */
  removeSession(session: SubscriberSession): void {
    for (const id of [...session.subscriptions.keys()]) this.unsubscribe(session, id)
  }

  /** Number of sessions subscribed to new blocks (for tests and metrics). */
  blockSubscriberCount(): number {
    return this.blockSubscribers.size
  }

  private forgetTx(session: SubscriberSession, key: string, id: string): void {
    const sessions = this.txSubscribers.get(key)
    const ids = sessions?.get(session)
    ids?.delete(id)
    if (ids !== undefined && ids.size === 0) sessions!.delete(session)
    if (sessions !== undefined && sessions.size === 0) this.txSubscribers.delete(key)
  }

  private fireTx(session: SubscriberSession, id: string, result: object): void {
    const sub = session.subscriptions.get(id)
    if (sub === undefined || sub.kind !== 'tx' || sub.fired) return
    sub.fired = true
    session.send({ jsonrpc: '2.0', method: 'chain_subscription', params: { subscription: id, result } })
    this.unsubscribe(session, id)
  }

  private onNewBlock(block: BlockInfo): void {
    if (this.blockSubscribers.size === 0) return
    // serialized once for all subscriptions: a block's notification can be megabytes (a hash per transaction), and
    // this runs on the node's commit path
    let result: Uint8Array
    try {
      result = Buffer.from(JSON.stringify(formatNewBlock(block)))
    } catch (err) {
      this.deps.logger?.error({ err }, 'could not format a new block')
      return
    }
    for (const [session, ids] of [...this.blockSubscribers]) {
      for (const id of [...ids]) {
        if (!session.notify(id, result)) break
      }
    }
  }

  private onTxCommitted(event: TxCommittedEvent): void {
    if (this.txSubscribers.size === 0) return
    const key = toHex(event.hash)
    const sessions = this.txSubscribers.get(key)
    if (sessions === undefined) return
    const result = formatTxLookup(event.hash, {
      status: 'committed',
      height: event.height,
      index: event.index,
      ok: event.ok,
      ...(event.error === undefined ? {} : { error: event.error }),
    })
    for (const [session, ids] of [...sessions]) for (const id of [...ids]) this.fireTx(session, id, result)
  }
}
