import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A TCP relay that holds every chunk for a fixed delay before passing it on, in each direction: added latency
 * without the kernel's netem queueing discipline (not every kernel has it). Order within a connection is kept
 * (every chunk waits the same delay, and timers of one duration fire in the order they were set). A connection
 * whose far end lags more than `maxBufferedBytes` behind is closed, so a stalled peer cannot grow memory.
 */
export class DelayRelay {
  /** Bytes passed on, both directions together. */
  bytes = 0
  /** Connections accepted so far. */
  connections = 0
  private readonly sockets = new Set<Socket>()

  private constructor(private readonly server: Server) {}

  /** The port it listens on (the one asked for, or the one the system chose for port 0). */
  get port(): number {
    const a = this.server.address()
    return typeof a === 'object' && a !== null ? a.port : 0
  }

  /** Listens on `listenHost:listenPort` and relays each connection to `targetHost:targetPort`. */
  static start(o: {
    listenHost: string
    listenPort: number
    targetHost: string
    targetPort: number
    delayMs: number
    maxBufferedBytes?: number
  }): Promise<DelayRelay> {
    const maxBuffered = o.maxBufferedBytes ?? 16 * 2 ** 20
    let relay: DelayRelay
    const server = createServer((inbound) => {
      relay.connections++
      const outbound = connect(o.targetPort, o.targetHost)
      for (const s of [inbound, outbound]) {
        relay.sockets.add(s)
        s.setNoDelay(true)
        s.on('close', () => relay.sockets.delete(s))
        s.on('error', () => {
          /* the close handler below ends the pair */
        })
      }
      const pipe = (from: Socket, to: Socket) => {
        from.on('data', (chunk: Buffer) => {
          setTimeout(() => {
            if (to.destroyed) return
            relay.bytes += chunk.length
            to.write(chunk)
            if (to.writableLength > maxBuffered) to.destroy()
          }, o.delayMs)
        })
        from.on('end', () => setTimeout(() => to.end(), o.delayMs))
        from.on('close', () => setTimeout(() => to.destroy(), o.delayMs))
      }
      pipe(inbound, outbound)
      pipe(outbound, inbound)
    })
    relay = new DelayRelay(server)
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.listenPort, o.listenHost, () => resolve(relay))
    })
  }

  /** Stops listening and closes every relayed connection (their ends see the connection drop). */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
