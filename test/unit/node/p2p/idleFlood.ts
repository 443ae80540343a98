import net from 'node:net'

/**
 * Test helper: an outsider that keeps `sockets` plain TCP connections open to a port without ever starting the
 * Noise handshake, re-opening each one shortly after the node closes it, the way an attacker keeps a node's
 * pending-upgrade slots full. Linux routes all of 127.0.0.0/8 locally, so `from` (e.g. 127.0.0.2) makes the
 * flood come from an address other than the nodes' 127.0.0.1.
 */
export interface IdleFlood {
  /** Sockets that reached `connect` so far. */
  readonly connects: number
  /** How long each socket closed by the node had been open, in ms. */
  readonly lifetimes: readonly number[]
  /** Connect times of the sockets open now. */
  openSince(): number[]
  /** Closes every socket and stops re-opening them. */
  stop(): void
}

/** Options of {@link idleFlood}. */
export interface IdleFloodOptions {
  readonly port: number
  readonly host?: string
  /** Source address of the sockets (default 127.0.0.2). */
  readonly from?: string
  /** Sockets kept open at once. */
  readonly sockets: number
  /** Pause before a closed socket is re-opened, so the flood paces itself (default 25 ms). */
  readonly reopenMs?: number
}

/** Starts an idle-socket flood against a port; see {@link IdleFlood}. */
export function idleFlood(options: IdleFloodOptions): IdleFlood {
  const all = new Set<net.Socket>()
  const open = new Map<net.Socket, number>()
  const lifetimes: number[] = []
  const timers = new Set<NodeJS.Timeout>()
  let connects = 0
  let stopped = false
  const openOne = (): void => {
    if (stopped) return
    const socket = net.connect({ host: options.host ?? '127.0.0.1', port: options.port, localAddress: options.from ?? '127.0.0.2' })
    all.add(socket)
    socket.on('connect', () => {
      connects++
      open.set(socket, Date.now())
    })
    socket.on('data', () => undefined)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      const since = open.get(socket)
      open.delete(socket)
      all.delete(socket)
      if (stopped) return
      if (since !== undefined) lifetimes.push(Date.now() - since)
      const t = setTimeout(() => {
        timers.delete(t)
        openOne()
      }, options.reopenMs ?? 25)
      timers.add(t)
    })
  }
  for (let i = 0; i < options.sockets; i++) openOne()
  return {
    get connects() {
      return connects
    },
    lifetimes,
    openSince: () => [...open.values()],
    stop: () => {
      stopped = true
      for (const t of timers) clearTimeout(t)
      for (const s of all) s.destroy()
      all.clear()
      open.clear()
    },
  }
}
