import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Socket } from 'node:net'
import WebSocket from 'ws'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { formatAddress } from '../../../crypto/address.js'
import { aliceAddress, aliceSeed, bobAddress, httpRequest, ONE_ADDRESS, refusals, startHarness, waitFor, type Harness } from './harness.js'

/** A WebSocket client that records every message, for assertions. */
class Client {
  readonly messages: any[] = []
  private nextId = 1
  closed = false
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.messages.push(JSON.parse(String(d))))
    ws.on('close', () => {
      this.closed = true
    })
  }
  /** Connects, from `localAddress` (127.0.0.2, …) if given. */
  static async open(url: string, localAddress?: string): Promise<Client> {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, localAddress === undefined ? {} : { localAddress })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return new Client(ws)
  }
  async call(method: string, params: unknown[] = []): Promise<any> {
    const id = this.nextId++
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
    let found: any
    await waitFor(
      () => {
        found = this.messages.find((m) => m.id === id)
        return found !== undefined
      },
      5000,
      `answer to ${method}`,
    )
    return found
  }
  notifications(sub: string): any[] {
    return this.messages.filter((m) => m.method === 'chain_subscription' && m.params.subscription === sub).map((m) => m.params.result)
  }
  close(): void {
    this.ws.terminate()
  }
}

/** A masked client text frame (RFC 6455 §5.2), for the raw socket client that never reads. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff])
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))
  return Buffer.concat([head, mask, body])
}

describe('WebSocket subscriptions', () => {
  let h: Harness
  before(async () => {
    h = await startHarness({ wsMaxSubscriptions: 3, wsMaxMessageBytes: 2048, wsMaxBufferedBytes: 256 * 1024 })
  })
  after(async () => {
    await h.close()
  })

  test('JSON-RPC over WebSocket, newBlocks notifications, unsubscribe', async () => {
    const c = await Client.open(h.url)
    assert.equal((await c.call('node_status')).result.chainId, 'tally-test')
    const sub = (await c.call('chain_subscribe', ['newBlocks'])).result
    assert.match(sub, /^0x[0-9a-f]{16}$/)
    h.backend.commitBlock()
    h.backend.commitBlock()
    await waitFor(() => c.notifications(sub).length === 2, 5000, 'two block notifications')
    const [b1, b2] = c.notifications(sub)
    assert.equal(b2.height, b1.height + 1)
    assert.match(b1.hash, /^0x[0-9a-f]{64}$/)
    assert.deepEqual((await c.call('chain_unsubscribe', [sub])).result, true)
    assert.deepEqual((await c.call('chain_unsubscribe', [sub])).result, false)
    h.backend.commitBlock()
    await c.call('node_status') // answered after the block event: any notification would have come first
    assert.equal(c.notifications(sub).length, 2)
    c.close()
  })

  test('tx subscription fires once on commit, and at once for a committed tx', async () => {
    const c = await Client.open(h.url)
    const nonce = BigInt((await c.call('ledger_getNextNonce', [formatAddress(aliceAddress)])).result)
    const t = createTransfer(aliceSeed, { chainId: 'tally-test', to: bobAddress, amount: 5n, nonce })
    assert.ok((await c.call('tx_submit', [to0x(t.bytes)])).result)
    const sub = (await c.call('chain_subscribe', ['tx', to0x(t.hash)])).result
    const height = h.backend.commitBlock().height
    await waitFor(() => c.notifications(sub).length === 1, 5000, 'tx notification')
    assert.deepEqual(c.notifications(sub)[0], { hash: to0x(t.hash), status: 'committed', height, index: 0, ok: true })
    assert.deepEqual((await c.call('chain_unsubscribe', [sub])).result, false, 'a fired tx subscription is gone')
    const again = (await c.call('chain_subscribe', ['tx', to0x(t.hash)])).result
    await waitFor(() => c.notifications(again).length === 1, 5000, 'immediate notification for a committed tx')
    const bad = await c.call('chain_subscribe', ['tx'])
    assert.equal(bad.error.code, -32602)
    assert.equal((await c.call('chain_subscribe', ['blocks'])).error.data.param, 'topic')
    c.close()
  })

  test('limits: subscriptions per connection and message size', async () => {
    const c = await Client.open(h.url)
    for (let i = 0; i < 3; i++) assert.ok((await c.call('chain_subscribe', ['newBlocks'])).result)
    assert.equal((await c.call('chain_subscribe', ['newBlocks'])).error.data.reason, 'too_many_subscriptions')
    c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'node_status', params: ['x'.repeat(4000)] }))
    await waitFor(() => c.closed, 5000, 'close on an oversized message')
    const d = await Client.open(h.url)
    assert.equal((await d.call('node_status')).result.chainId, 'tally-test')
    d.ws.send('{not json')
    await waitFor(() => d.messages.some((m) => m.error?.code === -32700), 5000, 'parse error over ws')
    d.close()
  })

  test('a subscriber that does not read is dropped; the others keep receiving', async () => {
    const good = await Client.open(h.url)
    const goodSub = (await good.call('chain_subscribe', ['newBlocks'])).result
    const before = good.notifications(goodSub).length

    // A raw client: handshake, subscribe, then never read.
    const u = new URL(h.url)
    const raw: Socket = connect(Number(u.port), u.hostname)
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()))
    raw.write(
      `GET /ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    let got = ''
    raw.on('data', (d: Buffer) => {
      got += d.toString('latin1')
    })
    await waitFor(() => got.includes('101 Switching Protocols'), 5000, 'upgrade')
    raw.write(textFrame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribe', params: ['newBlocks'] })))
    await waitFor(() => got.includes('"result"'), 5000, 'raw subscription answer')
    raw.pause()
    let rawClosed = false
    raw.on('close', () => {
      rawClosed = true
    })
    raw.on('error', () => {
      /* reset by the server */
    })
    assert.equal(h.server.connectionCount, 2)

    const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(100).fill(i & 0xff))
    // ~68 KB per notification: keep committing until the kernel buffers toward the silent client are full and
    // its send queue passes the limit (bounded: 1500 blocks is ~100 MB, far past any loopback buffering).
    let blocks = 0
    while (h.server.connectionCount === 2 && blocks < 1500) {
      h.backend.commitBlock(bulk)
      blocks++
      await new Promise((r) => setImmediate(r))
    }
    assert.equal(h.server.connectionCount, 1, 'the slow client was dropped')
    for (let i = 0; i < 5; i++, blocks++) h.backend.commitBlock(bulk)
    await waitFor(() => good.notifications(goodSub).length === before + blocks, 10_000, 'every block at the good client')
    const heights = good
      .notifications(goodSub)
      .slice(before)
      .map((b) => b.height)
    for (let i = 1; i < heights.length; i++) assert.equal(heights[i], heights[i - 1] + 1)
    raw.resume()
    await waitFor(() => rawClosed, 10_000, 'the slow client socket to close')
    good.close()
  })
})

describe('WebSocket requests held at once', () => {
  test('count against the request-body budget: past it a message is answered busy at once, and given back when done', async () => {
    const h = await startHarness({ ...ONE_ADDRESS, maxBodyBytesInFlight: 64 * 1024 })
    const c = await Client.open(h.url)
    try {
      h.backend.delayMs = 1000
      const padded = (id: number) => {
        const json = JSON.stringify({ jsonrpc: '2.0', id, method: 'ledger_getBalance', params: [formatAddress(aliceAddress)] })
        return json + ' '.repeat(30_000 - json.length)
      }
      // the first runs (slowly), the second waits behind it; both are held
      c.ws.send(padded(1))
      c.ws.send(padded(2))
      await waitFor(() => h.server.bodyBytesInFlight === 60_000, 5000, 'two messages held')
      // a third would pass 64 KiB: answered busy before the two, and not held
      c.ws.send(padded(3))
      await waitFor(() => c.messages.length > 0, 5000, 'an answer')
      assert.equal(c.messages[0].id, null)
      assert.equal(c.messages[0].error.data.reason, 'busy')
      assert.equal(c.messages[0].error.data.detail, 'node')
      assert.equal(h.server.bodyBytesInFlight, 60_000)
      assert.deepEqual(await refusals(h.metrics), { bodies_node: 1 }, 'the refused message counted')
      await waitFor(() => c.messages.length === 3, 10_000, 'the two answered')
      assert.deepEqual(
        c.messages.slice(1).map((m) => [m.id, m.result]),
        [
          [1, '1000000'],
          [2, '1000000'],
        ],
      )
      assert.equal(h.server.bodyBytesInFlight, 0)
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      h.backend.delayMs = 0
      c.close()
      await h.close()
    }
  })
})

describe('WebSocket requests held at once by one address', () => {
  test('count against its share of the request-body budget: past it busy, while another address is served', async () => {
    // half of each budget per address: a share of 40 KiB of the 80 KiB (more than one message of the largest)
    const sizes = { maxBodyBytes: 32 * 1024, wsMaxMessageBytes: 32 * 1024 }
    const h = await startHarness({ ...sizes, maxConnections: 8, maxConnectionsPerAddress: 4, maxBodyBytesInFlight: 80 * 1024 })
    const a = await Client.open(h.url)
    const a2 = await Client.open(h.url)
    const b = await Client.open(h.url, '127.0.0.2')
    let a2ClosedWith: number | undefined
    let a2Reason = ''
    a2.ws.on('close', (code, reason) => {
      a2ClosedWith = code
      a2Reason = reason.toString('utf8')
    })
    try {
      h.backend.delayMs = 1000
      const padded = (id: number) => {
        const json = JSON.stringify({ jsonrpc: '2.0', id, method: 'ledger_getBalance', params: [formatAddress(aliceAddress)] })
        return json + ' '.repeat(30_000 - json.length)
      }
      a.ws.send(padded(1))
      await waitFor(() => h.server.bodyBytesInFlight === 30_000, 5000, 'the first message held')
      // another message from the same address would take it past its share: answered busy at once, not held (or,
      // counted while still being received, its connection closed 1013, as past the whole budget)
      a2.ws.send(padded(2))
      await waitFor(() => a2.messages.length > 0 || a2.closed || h.server.bodyBytesInFlight === 60_000, 5000, 'the second refused or held')
      // one from another address fits beside the first share
      b.ws.send(padded(3))
      await waitFor(() => b.messages.length > 0, 10_000, 'an answer to the other address')
      assert.equal(b.messages[0].id, 3, `the other address answered ${JSON.stringify(b.messages[0]).slice(0, 160)}`)
      assert.equal(b.messages[0].result, '1000000')
      if (a2.closed) assert.deepEqual([a2ClosedWith, /\bshare\b/.test(a2Reason)], [1013, true], `closed: ${a2Reason}`)
      else assert.deepEqual([a2.messages[0]?.id, a2.messages[0]?.error?.data.reason, a2.messages[0]?.error?.data.detail], [null, 'busy', 'share'])
      await waitFor(() => a.messages.length > 0, 10_000, 'the first answered')
      assert.deepEqual([a.messages[0].id, a.messages[0].result], [1, '1000000'])
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'every message given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      h.backend.delayMs = 0
      a.close()
      a2.close()
      b.close()
      await h.close()
    }
  })
})

describe('WebSocket messages once whole', () => {
  test('count once against the request-body budget: one of more than half the budget is served', async () => {
    const h = await startHarness({ ...ONE_ADDRESS, maxBodyBytesInFlight: 64 * 1024 })
    const c = await Client.open(h.url)
    try {
      const json = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_status' })
      c.ws.send(json + ' '.repeat(40_000 - json.length))
      await waitFor(() => c.messages.length > 0, 5000, 'an answer')
      assert.equal(c.messages[0].result?.chainId, 'tally-test', `answered ${JSON.stringify(c.messages[0]).slice(0, 160)}`)
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'nothing held once answered')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      c.close()
      await h.close()
    }
  })
})

describe('newBlocks fan-out on the commit path', () => {
  test('a block is serialized once, however many subscriptions wait for it, and each gets it whole', async () => {
    const h = await startHarness({ wsMaxSubscriptions: 32 })
    const clients: Client[] = []
    try {
      const subs: [Client, string][] = []
      for (let c = 0; c < 4; c++) {
        const client = await Client.open(h.url)
        clients.push(client)
        for (let i = 0; i < 32; i++) subs.push([client, (await client.call('chain_subscribe', ['newBlocks'])).result])
      }
      // 2,000 transactions: a notification of ~140 KB, which 128 subscriptions would make ~18 MB of JSON each block
      const txs = Array.from({ length: 2000 }, (_, i) => new Uint8Array(40).fill(i & 0xff))
      const stringify = JSON.stringify
      let serialized = 0
      JSON.stringify = ((...args: Parameters<typeof stringify>) => {
        const text = stringify(...args)
        serialized += text?.length ?? 0
        return text
      }) as typeof JSON.stringify
      let block: { height: number }
      try {
        block = h.backend.commitBlock(txs)
      } finally {
        JSON.stringify = stringify
      }
      await waitFor(() => subs.every(([c, id]) => c.notifications(id).length === 1), 10_000, 'every subscription notified')
      const first = subs[0]!
      const one = JSON.stringify(first[0].notifications(first[1])[0])
      assert.ok(one.length > 100_000, `a large notification (${one.length} bytes)`)
      assert.ok(serialized < 2 * one.length, `the commit path serialized ${serialized} bytes for a ${one.length}-byte notification`)
      for (const [c, id] of subs) {
        const [n] = c.notifications(id)
        assert.equal(n.height, block.height)
        assert.equal(JSON.stringify(n), one)
      }
    } finally {
      for (const c of clients) c.close()
      await h.close()
    }
  })
})

describe('WebSocket answers clients do not take', () => {
  test('count against the answers held for clients; a connection that takes none of its answer is closed', async () => {
    const h = await startHarness({ ...ONE_ADDRESS, maxResponseBytesInFlight: 24 << 20, responseStallMs: 300 })
    const u = new URL(h.url)
    const raw: Socket = connect(Number(u.port), u.hostname)
    try {
      // ten blocks of ~2 MB of transaction hex each: a batch asking for all of them is answered with ~20 MB
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'chain_getBlock', params: [i + 1] })))
      raw.on('error', () => {
        /* reset by the server */
      })
      await new Promise<void>((resolve) => raw.once('connect', () => resolve()))
      raw.write(
        `GET /ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      let got = ''
      const onData = (d: Buffer) => {
        got += d.toString('latin1')
      }
      raw.on('data', onData)
      await waitFor(() => got.includes('101 Switching Protocols'), 5000, 'upgrade')
      raw.off('data', onData)
      raw.pause()
      // the client asks for the blocks and never reads its answer
      raw.write(textFrame(batch))
      await waitFor(() => raw.readableLength > 0, 5000, 'the answer on its way to the silent client')
      const refused = await httpRequest(h.url, { body: batch })
      assert.equal(refused.status, 503, `answered ${refused.status} with ${refused.text.length} bytes while another ~20 MB answer is held`)
      assert.equal(JSON.parse(refused.text).error.data.reason, 'busy')
      await waitFor(() => h.server.connectionCount === 0, 10_000, 'the silent client closed')
      const served = await httpRequest(h.url, { body: batch })
      assert.equal(served.status, 200)
      assert.equal(JSON.parse(served.text).length, 10)
      await waitFor(() => h.server.responseBytesInFlight === 0, 5000, 'every answer taken and given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      raw.destroy()
      await h.close()
    }
  })
})

describe('WebSocket connections that do not answer', () => {
  test('a connection that answers no ping is closed; one that does stays', async () => {
    const h = await startHarness({ wsPingIntervalMs: 100 })
    const u = new URL(h.url)
    const raw: Socket = connect(Number(u.port), u.hostname)
    let rawClosed = false
    raw.on('close', () => {
      rawClosed = true
    })
    raw.on('error', () => {
      /* reset by the server */
    })
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()))
    const good = await Client.open(h.url)
    try {
      let pings = 0
      good.ws.on('ping', () => pings++)
      // a peer gone without a word (or one that never reads): upgraded, then silent
      raw.write(
        `GET /ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      let got = ''
      raw.on('data', (d: Buffer) => {
        got += d.toString('latin1')
      })
      await waitFor(() => got.includes('101 Switching Protocols'), 5000, 'upgrade')
      await waitFor(() => h.server.connectionCount === 2, 5000, 'both connected')
      await waitFor(() => rawClosed && h.server.connectionCount === 1, 5000, 'the silent connection closed')
      await waitFor(() => pings >= 3, 5000, 'pings at the answering client')
      assert.equal(good.closed, false)
      assert.equal((await good.call('node_status')).result.chainId, 'tally-test')
    } finally {
      raw.destroy()
      good.close()
      await h.close()
    }
  })
})

describe('WebSocket answers clients take slowly', () => {
  test('a client that takes a large answer steadily, slower than in one stall period, gets it whole', async () => {
    // a stall period far shorter than the answer takes at the client's pace, which never pauses longer than 50 ms
    const options = { responseStallMs: 1000, wsMaxBufferedBytes: 4 << 20 }
    const h = await startHarness(options)
    const u = new URL(h.url)
    const raw: Socket = connect(Number(u.port), u.hostname)
    let closed = false
    raw.on('close', () => {
      closed = true
    })
    raw.on('error', () => {
      /* reset by the server */
    })
    try {
      // ten blocks of ~2 MB of transaction hex each: a batch asking for all of them is answered with ~20 MB
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'chain_getBlock', params: [i + 1] })))
      await new Promise<void>((resolve) => raw.once('connect', () => resolve()))
      raw.write(
        `GET /ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      let head = Buffer.alloc(0)
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d])
      }
      raw.on('data', onData)
      await waitFor(() => head.includes('\r\n\r\n'), 5000, 'upgrade')
      raw.off('data', onData)
      raw.pause()
      assert.ok(head.toString('latin1').startsWith('HTTP/1.1 101'))
      raw.write(textFrame(batch))
      // the answer's frame: 0x81, 127, a 64-bit length (RFC 6455 §5.2)
      let received = head.length - (head.indexOf('\r\n\r\n') + 4)
      let expected = Number.POSITIVE_INFINITY
      const first: Buffer[] = [head.subarray(head.indexOf('\r\n\r\n') + 4)]
      const deadline = Date.now() + 60_000
      while (!closed && received < expected && Date.now() < deadline) {
        const chunk: Buffer | null = raw.read(Math.min(256 * 1024, Math.max(1, raw.readableLength)))
        if (chunk !== null) {
          received += chunk.length
          if (expected === Number.POSITIVE_INFINITY) {
            first.push(chunk)
            const start = Buffer.concat(first)
            if (start.length >= 10) {
              assert.equal(start[1], 127, 'a frame of more than 64 KiB')
              expected = 10 + Number(start.readBigUInt64BE(2))
            }
          }
        }
        // the client's pace: 256 KiB at most every 50 ms, about 5 MB/s
        await new Promise<void>((resolve) => setTimeout(resolve, 50))
      }
      assert.equal(closed, false, `the server closed a client that took ${received} of ${expected} bytes steadily`)
      assert.equal(received, expected)
    } finally {
      raw.destroy()
      await h.close()
    }
  })
})

describe('WebSocket pings behind a large answer', () => {
  test('a client that answers pings and takes a large answer steadily is not closed for a ping it has not reached', async () => {
    // pinged far more often than the answer takes at the client's pace
    const options = { wsPingIntervalMs: 1000, wsMaxBufferedBytes: 4 << 20 }
    const h = await startHarness(options)
    const u = new URL(h.url)
    // a link to the client that carries about 5 MB/s towards it
    const links: Socket[] = []
    const proxy = createServer((client) => {
      const upstream = connect(Number(u.port), u.hostname)
      links.push(client, upstream)
      client.pipe(upstream)
      upstream.pause()
      const pace = setInterval(() => {
        const chunk: Buffer | null = upstream.read(Math.min(256 * 1024, Math.max(1, upstream.readableLength)))
        if (chunk !== null) client.write(chunk)
      }, 50)
      const end = () => {
        clearInterval(pace)
        client.destroy()
        upstream.destroy()
      }
      upstream.on('close', end)
      client.on('close', end)
      upstream.on('error', end)
      client.on('error', end)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()))
    const port = (proxy.address() as { port: number }).port
    let c: Client | undefined
    try {
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      c = await Client.open(`http://127.0.0.1:${port}`)
      c.ws.send(JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'chain_getBlock', params: [i + 1] }))))
      const client = c
      await waitFor(() => client.closed || client.messages.length > 0, 60_000, 'the answer or a close')
      assert.equal(client.closed, false, 'the server closed a client that answers pings while it took its answer')
      assert.equal(client.messages[0].length, 10)
    } finally {
      c?.close()
      for (const s of links) s.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
      await h.close()
    }
  })
})

describe('WebSocket messages being received', () => {
  test('count against the request-body budget; past it the connection is closed (1013) and gives back what it held', async () => {
    const h = await startHarness({ ...ONE_ADDRESS, maxBodyBytesInFlight: 256 * 1024 })
    const a = await Client.open(h.url)
    const b = await Client.open(h.url)
    let bClosedWith: number | undefined
    let bReason = ''
    b.ws.on('close', (code, reason) => {
      bClosedWith = code
      bReason = reason.toString('utf8')
    })
    try {
      // a message in fragments, not finished: ws assembles it, and the node holds its bytes
      for (let i = 0; i < 3; i++) a.ws.send(' '.repeat(50_000), { fin: false })
      await waitFor(() => h.server.bodyBytesInFlight === 150_000, 5000, 'the fragments received counted as held')
      // another client's message would take the bytes held past the budget: that connection is closed
      b.ws.send(' '.repeat(60_000), { fin: false })
      b.ws.send(' '.repeat(60_000), { fin: false })
      await waitFor(() => b.closed, 5000, 'the connection past the budget closed')
      assert.equal(bClosedWith, 1013)
      assert.match(bReason, /^the node holds as many requests as it takes/)
      assert.deepEqual(await refusals(h.metrics), { bodies_node: 1 }, 'the refused message counted')
      await waitFor(() => h.server.bodyBytesInFlight === 150_000, 5000, 'what the closed one held given back')
      // the first finishes its message and is answered; nothing is held after
      a.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'node_status' }), { fin: true })
      await waitFor(() => a.messages.some((m) => m.id === 7), 5000, 'the finished message answered')
      assert.equal(a.messages.find((m) => m.id === 7).result.chainId, 'tally-test')
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'nothing held once answered')
      assert.equal(h.server.addressesHoldingBytes, 0)
      // a connection closed mid-message gives back what it held
      a.ws.send(' '.repeat(50_000), { fin: false })
      await waitFor(() => h.server.bodyBytesInFlight === 50_000, 5000, 'a new fragment counted')
      a.close()
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'the abandoned message given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      a.close()
      b.close()
      await h.close()
    }
  })
})

describe('WebSocket frames half received', () => {
  test('count against the request-body budget as their bytes arrive, and are given back once answered', async () => {
    const h = await startHarness()
    const u = new URL(h.url)
    const raw: Socket = connect(Number(u.port), u.hostname)
    raw.on('error', () => {
      /* reset by the server */
    })
    try {
      await new Promise<void>((resolve) => raw.once('connect', () => resolve()))
      raw.write(
        `GET /ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      let got = ''
      raw.on('data', (d: Buffer) => {
        got += d.toString('latin1')
      })
      await waitFor(() => got.includes('101 Switching Protocols'), 5000, 'upgrade')
      const json = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'node_status' })
      const frame = textFrame(' '.repeat(40_000 - json.length) + json)
      raw.write(frame.subarray(0, 20_000))
      // the frame's head (2 bytes, a 16-bit length, the 4-byte mask) is read; the payload received is held
      await waitFor(() => h.server.bodyBytesInFlight === 20_000 - 8, 5000, 'the half frame counted')
      raw.write(frame.subarray(20_000))
      await waitFor(() => got.includes('"id":3,"result"'), 5000, 'the whole frame answered')
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'nothing held once answered')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      raw.destroy()
      await h.close()
    }
  })
})

describe('WebSocket messages that do not finish', () => {
  test('a message not whole within wsMessageTimeoutMs closes its connection (1008); one that finishes is answered', async () => {
    const h = await startHarness({ wsMessageTimeoutMs: 400 })
    const slow = await Client.open(h.url)
    const steady = await Client.open(h.url)
    let slowClosedWith: number | undefined
    slow.ws.on('close', (code) => {
      slowClosedWith = code
    })
    try {
      slow.ws.send(' '.repeat(1000), { fin: false })
      // the other client sends messages one after another for longer than the limit, each whole in time
      const started = Date.now()
      let id = 0
      while (Date.now() - started < 800) {
        steady.ws.send(' '.repeat(500), { fin: false })
        await new Promise((r) => setTimeout(r, 50))
        steady.ws.send(JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'node_status' }), { fin: true })
        await waitFor(() => steady.messages.some((m) => m.id === id), 5000, `answer ${id}`)
      }
      await waitFor(() => slow.closed, 5000, 'the unfinished message closed its connection')
      assert.equal(slowClosedWith, 1008)
      assert.equal(steady.closed, false)
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'what it held given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      slow.close()
      steady.close()
      await h.close()
    }
  })
})
