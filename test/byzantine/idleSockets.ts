import { connect, type Socket } from 'node:net'

/**
 * Idle TCP connections against listeners: `count` connections to each port from 127.0.0.2 that never send a byte,
 * each replaced by a new one as soon as the listener closes it. They hold whatever a listener reserves for
 * connections that have not finished their handshake.
 */
export class IdleSockets {
  private readonly sockets = new Set<Socket>()
  private stopped = false
  /** Connections opened so far. */
  opened = 0

  constructor(ports: readonly number[], count: number) {
    for (const port of ports) for (let k = 0; k < count; k++) this.open(port)
  }

  /** Connections currently established. */
  get established(): number {
    let n = 0
    for (const s of this.sockets) if (!s.connecting && !s.destroyed) n++
    return n
  }

  private open(port: number): void {
    if (this.stopped) return
    const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
    this.opened++
    this.sockets.add(s)
    s.on('error', () => undefined)
    s.on('close', () => {
      this.sockets.delete(s)
      // at once, give or take a tick: a listener that closes idle connections meets a new one straight away
      if (!this.stopped) setTimeout(() => this.open(port), 10).unref()
    })
  }

  /** Closes every connection and opens no more. */
  stop(): void {
    this.stopped = true
    for (const s of this.sockets) s.destroy()
  }
}
