import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { DelayRelay } from './delayRelay.js'

/** The latency fault's relay on loopback (no namespaces, no root): delay, order, accounting, and closing. */
describe('DelayRelay', () => {
  let echo: Server
  let echoPort = 0
  const serverSockets = new Set<Socket>()

  before(async () => {
    echo = createServer((s) => {
      serverSockets.add(s)
      s.on('close', () => serverSockets.delete(s))
      s.pipe(s)
    })
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()))
    echoPort = (echo.address() as { port: number }).port
  })

  after(async () => {
    for (const s of serverSockets) s.destroy()
    await new Promise<void>((r) => echo.close(() => r()))
  })

  const dial = (port: number) =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s))
      s.once('error', reject)
    })

  test('holds each chunk for the delay in each direction, keeps order, and counts bytes', async () => {
    const delayMs = 60
    const relay = await DelayRelay.start({ listenHost: '127.0.0.1', listenPort: 0, targetHost: '127.0.0.1', targetPort: echoPort, delayMs })
    const s = await dial(relay.port)
    try {
      let received = ''
      const messages = Array.from({ length: 20 }, (_, i) => `m${i};`)
      const expected = messages.join('')
      const done = new Promise<number>((resolve) => {
        s.on('data', (d) => {
          received += String(d)
          if (received.length >= expected.length) resolve(Date.now())
        })
      })
      const t0 = Date.now()
      for (const m of messages) s.write(m)
      const t1 = await done
      assert.equal(received, expected)
      // there and back: at least two delays (timers may fire a millisecond early)
      assert.ok(t1 - t0 >= 2 * delayMs - 2, `round trip took ${t1 - t0} ms`)
      assert.equal(relay.connections, 1)
      assert.equal(relay.bytes, 2 * expected.length)
    } finally {
      s.destroy()
      await relay.close()
    }
  })

  test('close() drops the relayed connections', async () => {
    const relay = await DelayRelay.start({ listenHost: '127.0.0.1', listenPort: 0, targetHost: '127.0.0.1', targetPort: echoPort, delayMs: 1 })
    const s = await dial(relay.port)
    const closed = new Promise<void>((r) => s.once('close', () => r()))
    s.on('error', () => {
      /* a reset is a close too */
    })
    await new Promise<void>((r) => {
      s.once('data', () => r())
      s.write('x')
    })
    await relay.close()
    await closed
    assert.ok(s.destroyed)
  })
})
