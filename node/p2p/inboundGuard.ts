import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../logger.js'
import { ipKeyOfMultiaddr } from './ipKey.js'
import { ThrottledLog } from './throttledLog.js'

/**
 * Admission of inbound sockets before they are authenticated. Until the Noise handshake completes, a socket is
 * only an address, so every limit here is per address ({@link ipKey}: an IPv4 address or an IPv6 /64):
 * - at most `maxPendingPerIp` unauthenticated sockets per address and `maxPending` in all, so an outsider holding
 *   idle sockets uses up its own budget, not the slots peers need;
 * - at most `perIpPerSecond` new sockets per address (a token bucket holding two seconds' worth), so refused
 *   sockets cannot be re-opened in a tight loop; an address whose peer completed Noise and was then refused
 *   (not on the allow-list) loses two seconds' worth on top, because a handshake costs this node real work;
 * - addresses marked exempt (the configured static peers' addresses, and the last addresses admitted peers
 *   connected from) bypass all of it: outsiders cannot lock a known peer out, whatever they hold. They are held only
 *   to `maxPendingPerExemptIp` unauthenticated sockets each (64 by default, far above what honest peers on one host
 *   need at once): an admitted validator that turns Byzantine cannot hold this node's file descriptors with sockets
 *   that never start Noise.
 * Refusals are logged at warn once per address per window ({@link ThrottledLog}). See docs/p2p.md.
 */

/** Options of {@link InboundGuard}. */
export interface InboundGuardOptions {
  /** Unauthenticated inbound sockets one non-exempt address may hold at once. */
  readonly maxPendingPerIp: number
  /** Unauthenticated inbound sockets all non-exempt addresses together may hold at once. */
  readonly maxPending: number
  /** New inbound sockets per second one non-exempt address may open (sustained; bursts of twice that). */
  readonly perIpPerSecond: number
  /** Window of the once-per-address log lines, in ms. */
  readonly logWindowMs: number
  /** Unauthenticated inbound sockets one exempt address may hold at once (default {@link MAX_PENDING_PER_EXEMPT_IP}). */
  readonly maxPendingPerExemptIp?: number
}

/** Default of {@link InboundGuardOptions.maxPendingPerExemptIp}. */
export const MAX_PENDING_PER_EXEMPT_IP = 64

/** Dependencies of {@link InboundGuard}. */
export interface InboundGuardDependencies {
  readonly logger: Logger
  /** The clock (default `Date.now`). */
  readonly now?: () => number
}

/** What the guard needs of an inbound socket (libp2p's MultiaddrConnection has it). */
export interface InboundSocket {
  readonly remoteAddr: Multiaddr
  readonly status: string
  addEventListener(type: 'close', listener: () => void, options?: { once?: boolean }): void
}

/** Why a socket was refused before authentication. */
export type InboundRefusal = 'address_pending' | 'pending' | 'address_rate' | 'no_address'

/** Counters of {@link InboundGuard}, for logs and tests. */
export interface InboundGuardStats {
  admitted: number
  exempt: number
  refused: Record<InboundRefusal, number>
  refusedPeers: number
}

interface AddressState {
  pending: number
  tokens: number
  at: number
}

/** Addresses tracked at once; beyond this, sockets from new non-exempt addresses are refused until entries expire. */
const MAX_TRACKED_ADDRESSES = 65_536

/** See the module comment. */
export class InboundGuard {
  private readonly log: Logger
  private readonly now: () => number
  private readonly reports: ThrottledLog
  private readonly exemptBySource = new Map<string, ReadonlySet<string>>()
  private exemptKeys = new Set<string>()
  private readonly addresses = new Map<string, AddressState>()
  private readonly pendingSockets = new Map<InboundSocket, string>()
  /** Unauthenticated sockets of exempt addresses, and how many each such address holds. */
  private readonly exemptSockets = new Map<InboundSocket, string>()
  private readonly exemptPending = new Map<string, number>()
  private pendingTotal = 0
  private lastSweep = 0
  readonly stats: InboundGuardStats = {
    admitted: 0,
    exempt: 0,
    refusedPeers: 0,
    refused: { address_pending: 0, pending: 0, address_rate: 0, no_address: 0 },
  }

  constructor(
    private readonly options: InboundGuardOptions,
    dependencies: InboundGuardDependencies,
  ) {
    this.log = dependencies.logger
    this.now = dependencies.now ?? Date.now
    this.reports = new ThrottledLog({ windowMs: options.logWindowMs, maxKeys: 1024 }, { now: this.now })
  }

  /** Sets the addresses (ip keys) one source makes exempt, replacing that source's earlier ones; none removes it. */
  setExempt(source: string, keys: Iterable<string>): void {
    const set = new Set(keys)
    const before = this.exemptBySource.get(source)
    if (before !== undefined && before.size === set.size && [...set].every((k) => before.has(k))) return
    if (set.size === 0) this.exemptBySource.delete(source)
    else this.exemptBySource.set(source, set)
    this.exemptKeys = new Set([...this.exemptBySource.values()].flatMap((s) => [...s]))
  }

  /** Whether sockets from this address bypass the limits. */
  isExempt(addr: Multiaddr): boolean {
    const key = ipKeyOfMultiaddr(addr)
    return key !== undefined && this.exemptKeys.has(key)
  }

  /** Unauthenticated sockets from non-exempt addresses held now. */
  get pending(): number {
    return this.pendingTotal
  }

  /**
   * Decides on a new inbound socket before any byte of it is read: true admits it (it then counts as pending until
   * it is authenticated or closed), false refuses it.
   */
  open(socket: InboundSocket): boolean {
    if (socket.status !== 'open') return false
    const key = ipKeyOfMultiaddr(socket.remoteAddr)
    if (key !== undefined && this.exemptKeys.has(key)) {
      const held = this.exemptPending.get(key) ?? 0
      if (held >= (this.options.maxPendingPerExemptIp ?? MAX_PENDING_PER_EXEMPT_IP)) return this.refuse('address_pending', key)
      this.exemptPending.set(key, held + 1)
      this.exemptSockets.set(socket, key)
      socket.addEventListener('close', () => this.settle(socket), { once: true })
      this.stats.exempt++
      return true
    }
    if (key === undefined) return this.refuse('no_address', socket.remoteAddr.toString())
    const now = this.now()
    this.sweep(now, false)
    const burst = 2 * this.options.perIpPerSecond
    let state = this.addresses.get(key)
    if (state === undefined) {
      if (this.addresses.size >= MAX_TRACKED_ADDRESSES) this.sweep(now, true)
      if (this.addresses.size >= MAX_TRACKED_ADDRESSES) return this.refuse('pending', key)
      state = { pending: 0, tokens: burst, at: now }
      this.addresses.set(key, state)
    } else {
      state.tokens = Math.min(burst, state.tokens + ((now - state.at) / 1000) * this.options.perIpPerSecond)
      state.at = now
    }
    if (state.tokens < 1) return this.refuse('address_rate', key)
    state.tokens -= 1
    if (state.pending >= this.options.maxPendingPerIp) return this.refuse('address_pending', key)
    if (this.pendingTotal >= this.options.maxPending) return this.refuse('pending', key)
    state.pending++
    this.pendingTotal++
    this.pendingSockets.set(socket, key)
    socket.addEventListener('close', () => this.settle(socket), { once: true })
    this.stats.admitted++
    return true
  }

  /** The socket completed Noise: it no longer counts as pending. */
  settle(socket: InboundSocket): void {
    const exempt = this.exemptSockets.get(socket)
    if (exempt !== undefined) {
      this.exemptSockets.delete(socket)
      const left = (this.exemptPending.get(exempt) ?? 1) - 1
      if (left > 0) this.exemptPending.set(exempt, left)
      else this.exemptPending.delete(exempt)
      return
    }
    const key = this.pendingSockets.get(socket)
    if (key === undefined) return
    this.pendingSockets.delete(socket)
    this.pendingTotal--
    const state = this.addresses.get(key)
    if (state !== undefined) state.pending--
  }

  /**
   * The socket's peer completed Noise but is not admitted: it no longer counts as pending, and its address pays
   * for the handshake (two seconds' worth of its rate), unless it is exempt.
   */
  refusedPeer(socket: InboundSocket): void {
    this.settle(socket)
    this.stats.refusedPeers++
    const key = ipKeyOfMultiaddr(socket.remoteAddr)
    if (key === undefined || this.exemptKeys.has(key)) return
    const state = this.addresses.get(key)
    if (state !== undefined) state.tokens = Math.max(-2 * this.options.perIpPerSecond, state.tokens - 2 * this.options.perIpPerSecond)
  }

  private refuse(reason: InboundRefusal, key: string): false {
    this.stats.refused[reason]++
    const report = this.reports.note(key)
    if (report !== undefined) {
      this.log.warn(
        {
          address: report.key,
          reason,
          suppressed: report.suppressed,
          pending: this.pendingTotal,
          windowMs: this.options.logWindowMs,
        },
        report.key === '*' ? 'refusing inbound connections from many addresses' : 'refusing inbound connections from an address',
      )
    }
    return false
  }

  /** Forgets addresses with nothing pending and a full bucket (at most once a second unless forced). */
  private sweep(now: number, force: boolean): void {
    if (!force && now - this.lastSweep < 1000) return
    this.lastSweep = now
    const burst = 2 * this.options.perIpPerSecond
    for (const [k, s] of this.addresses) {
      if (s.pending === 0 && s.tokens + ((now - s.at) / 1000) * this.options.perIpPerSecond >= burst) this.addresses.delete(k)
    }
  }
}
