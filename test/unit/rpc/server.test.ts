import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { to0x } from '../../../crypto/bytes.js'
import { formatAddress } from '../../../crypto/address.js'
import { createTransfer } from '../../../ledger/transaction.js'
import WebSocket from 'ws'
import { APPLICATION_ERROR_CODES, type ApplicationReason } from '../../../rpc/errors.js'
import { Metrics } from '../../../rpc/metrics.js'
import { formatBlock } from '../../../rpc/format.js'
import { addressKey, RpcServer } from '../../../rpc/server.js'
import { TestBackend } from './testBackend.js'
import { aliceAddress, aliceSeed, bobAddress, httpRequest, ONE_ADDRESS, refusals, rpc, startHarness, waitFor, type Harness } from './harness.js'

const A = formatAddress(aliceAddress)
const B = formatAddress(bobAddress)
const call = (method: string, params?: unknown, id: unknown = 1) => ({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })
const transfer = (nonce: bigint, amount = 10n, chainId = 'tally-test') => createTransfer(aliceSeed, { chainId, to: bobAddress, amount, nonce })

describe('JSON-RPC server conformance', () => {
  let h: Harness
  before(async () => {
    h = await startHarness({ maxBatch: 5, maxBodyBytes: 4096, requestTimeoutMs: 200, corsOrigins: ['https://ok.example'] })
  })
  after(async () => {
    await h.close()
  })

  test('single calls answer with the echoed id (string, number, null)', async () => {
    for (const id of ['abc', 7, 1.5, null]) {
      const r = await rpc(h.url, call('ledger_getBalance', [A], id))
      assert.equal(r.status, 200)
      assert.deepEqual(r.json, { jsonrpc: '2.0', id, result: '1000000' })
    }
  })

  test('every method answers', async () => {
    const s = (await rpc(h.url, call('node_status'))).json.result
    assert.equal(s.chainId, 'tally-test')
    assert.equal(s.height, 0)
    assert.equal(s.blockHash, null)
    assert.equal(typeof s.catchingUp, 'boolean')
    assert.match(s.validator, /^0x[0-9a-f]{40}$/)
    assert.deepEqual((await rpc(h.url, call('ledger_getAccount', [A.toUpperCase().replace('0X', '0x')]))).json.result, {
      address: A,
      balance: '1000000',
      nonce: '0',
    })
    assert.equal((await rpc(h.url, call('ledger_getBalance', [B]))).json.result, '0')
    assert.equal((await rpc(h.url, call('chain_getBlock', []))).json.result, null)
    const t = transfer(0n)
    const sub = (await rpc(h.url, call('tx_submit', [to0x(t.bytes)]))).json
    assert.deepEqual(sub.result, { hash: to0x(t.hash) })
    assert.equal((await rpc(h.url, call('ledger_getNextNonce', [A]))).json.result, '1')
    assert.equal((await rpc(h.url, call('tx_get', [to0x(t.hash)]))).json.result.status, 'pending')
    h.backend.commitBlock()
    const got = (await rpc(h.url, call('tx_get', [to0x(t.hash)]))).json.result
    assert.deepEqual(got, { hash: to0x(t.hash), status: 'committed', height: 1, index: 0, ok: true })
    const block = (await rpc(h.url, call('chain_getBlock', { height: 1 }))).json.result
    assert.equal(block.height, 1)
    assert.match(block.hash, /^0x[0-9a-f]{64}$/)
    assert.equal(block.header.height, '1')
    assert.deepEqual(block.txs[0], { hash: to0x(t.hash), from: A, to: B, amount: '10', nonce: '0', raw: to0x(t.bytes), ok: true })
    assert.match(block.commit.signatures[0].validator, /^0x[0-9a-f]{40}$/)
    assert.deepEqual((await rpc(h.url, call('chain_getBlock', []))).json.result.height, 1)
    assert.equal((await rpc(h.url, call('chain_getBlock', [2]))).json.result, null)
    const vals = (await rpc(h.url, call('chain_getValidators'))).json.result
    assert.equal(vals.length, 1)
    assert.equal(vals[0].power, 10)
    assert.equal((await rpc(h.url, call('tx_get', [`0x${'00'.repeat(32)}`]))).json.result.status, 'unknown')
    assert.equal((await rpc(h.url, call('ledger_getAccount', [A]))).json.result.nonce, '1')
  })

  test('mempool rejections are application errors with data.reason', async () => {
    const next = BigInt((await rpc(h.url, call('ledger_getNextNonce', [A]))).json.result)
    const cases: [Uint8Array, ApplicationReason][] = [
      [transfer(next + 5n).bytes, 'bad_nonce'],
      [transfer(next, 10n ** 12n).bytes, 'insufficient_funds'],
      [transfer(next, 1n, 'other-chain').bytes, 'wrong_chain'],
      [new Uint8Array([1, 2, 3]), 'malformed'],
    ]
    const bad = transfer(next)
    const forged = new Uint8Array(bad.bytes)
    forged[forged.length - 1]! ^= 1
    cases.push([forged, 'invalid_signature'])
    for (const [bytes, reason] of cases) {
      const r = (await rpc(h.url, call('tx_submit', [to0x(bytes)]))).json
      assert.equal(r.error.data.reason, reason, reason)
      assert.equal(r.error.code, APPLICATION_ERROR_CODES[reason])
      assert.ok(r.error.code <= -32000 && r.error.code >= -32099)
    }
    assert.ok((await rpc(h.url, call('tx_submit', [to0x(bad.bytes)]))).json.result)
    assert.equal((await rpc(h.url, call('tx_submit', [to0x(bad.bytes)]))).json.error.data.reason, 'duplicate')
  })

  test('parse error: -32700 with a null id', async () => {
    for (const body of ['{', '{"jsonrpc":"2.0","method":"node_status","id":1', '', 'nul', '[1,']) {
      const r = await rpc(h.url, body)
      assert.equal(r.status, 200)
      assert.deepEqual(r.json.id, null)
      assert.equal(r.json.error.code, -32700)
    }
  })

  test('invalid requests: -32600', async () => {
    const bads: [unknown, unknown][] = [
      [1, null],
      ['x', null],
      [null, null],
      [{ jsonrpc: '1.0', method: 'node_status', id: 3 }, 3],
      [{ method: 'node_status', id: 4 }, 4],
      [{ jsonrpc: '2.0', method: 1, id: 5 }, 5],
      [{ jsonrpc: '2.0', method: 'node_status', params: 'x', id: 6 }, 6],
      [{ jsonrpc: '2.0', method: 'node_status', id: { a: 1 } }, null],
      [{ jsonrpc: '2.0', method: 'node_status', id: [1] }, null],
    ]
    for (const [body, id] of bads) {
      const r = await rpc(h.url, JSON.stringify(body))
      assert.equal(r.json.error.code, -32600, JSON.stringify(body))
      assert.equal(r.json.id, id)
    }
    const empty = await rpc(h.url, '[]')
    assert.equal(empty.json.error.code, -32600)
    assert.equal(empty.json.id, null)
  })

  test('unknown method -32601; bad params -32602 naming the parameter', async () => {
    const r = (await rpc(h.url, call('no_such', [], 'u'))).json
    assert.equal(r.error.code, -32601)
    assert.equal(r.id, 'u')
    const cases: [string, unknown, string][] = [
      ['ledger_getBalance', ['0x1234'], 'address'],
      ['ledger_getBalance', [], 'address'],
      ['ledger_getBalance', [42], 'address'],
      ['ledger_getBalance', { addr: A }, 'addr'],
      ['tx_get', ['0xzz'], 'hash'],
      ['tx_submit', ['abc'], 'signedTx'],
      ['chain_getBlock', [-1], 'height'],
      ['chain_getBlock', [1.5], 'height'],
      ['chain_subscribe', ['newBlocks'], ''],
    ]
    for (const [m, params, param] of cases) {
      const e = (await rpc(h.url, call(m, params))).json.error
      if (m === 'chain_subscribe') {
        assert.equal(e.data.reason, 'websocket_required')
        continue
      }
      assert.equal(e.code, -32602, `${m} ${JSON.stringify(params)}`)
      assert.equal(e.data.param, param)
      assert.ok(e.message.includes(param), e.message)
    }
    const tooMany = (await rpc(h.url, call('node_status', [1]))).json.error
    assert.equal(tooMany.code, -32602)
  })

  test('notifications get no answer; a batch of only notifications is HTTP 204', async () => {
    const n = await httpRequest(h.url, { body: JSON.stringify({ jsonrpc: '2.0', method: 'node_status' }) })
    assert.equal(n.status, 204)
    assert.equal(n.text, '')
    const unknown = await httpRequest(h.url, { body: JSON.stringify({ jsonrpc: '2.0', method: 'nope' }) })
    assert.equal(unknown.status, 204)
    const batch = await httpRequest(h.url, {
      body: JSON.stringify([
        { jsonrpc: '2.0', method: 'node_status' },
        { jsonrpc: '2.0', method: 'x', params: [] },
      ]),
    })
    assert.equal(batch.status, 204)
    assert.equal(batch.text, '')
  })

  test('mixed batch: valid, invalid, notifications, unknown methods', async () => {
    const r = await rpc(h.url, [call('node_status', [], 1), { jsonrpc: '2.0', method: 'node_status' }, 1, call('nope', [], 'two'), { foo: 'bar' }])
    assert.equal(r.status, 200)
    assert.equal(r.json.length, 4)
    const byId = (id: unknown) => r.json.filter((x: any) => x.id === id)
    assert.equal(byId(1)[0].result.chainId, 'tally-test')
    assert.equal(byId('two')[0].error.code, -32601)
    const nulls = byId(null)
    assert.equal(nulls.length, 2)
    for (const x of nulls) assert.equal(x.error.code, -32600)
  })

  test('a batch longer than maxBatch is one -32600', async () => {
    const r = await rpc(
      h.url,
      Array.from({ length: 6 }, (_, i) => call('node_status', [], i)),
    )
    assert.equal(r.json.error.code, -32600)
    assert.equal(r.json.id, null)
    assert.match(r.json.error.message, /limit of 5/)
  })

  test('oversized bodies get HTTP 413 (declared and streamed)', async () => {
    const before = (await refusals(h.metrics)).body_too_large ?? 0
    const big = JSON.stringify(call('node_status', ['x'.repeat(5000)]))
    const declared = await httpRequest(h.url, { body: big })
    assert.equal(declared.status, 413)
    // Chunked, no Content-Length: counted while streaming.
    const streamed = await new Promise<number>((resolve, reject) => {
      const u = new URL(h.url)
      const req = request(
        { host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, agent: false },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', () => {
        /* the server may close while we still write */
      })
      let sent = 0
      const pump = () => {
        while (sent < 1_000_000) {
          sent += 1000
          if (!req.write('x'.repeat(1000))) return void req.once('drain', pump)
        }
        req.end()
      }
      pump()
      setTimeout(() => reject(new Error('no answer to a streamed oversized body')), 5000).unref()
    })
    assert.equal(streamed, 413)
    assert.equal((await refusals(h.metrics)).body_too_large, before + 2, 'each oversized body counted')
    // The server still serves.
    assert.equal((await rpc(h.url, call('node_status'))).json.result.chainId, 'tally-test')
  })

  test('content type and HTTP methods', async () => {
    const r = await httpRequest(h.url, { body: JSON.stringify(call('node_status')), headers: { 'content-type': 'text/plain' } })
    assert.equal(r.status, 415)
    const ok = await httpRequest(h.url, { body: JSON.stringify(call('node_status')), headers: { 'content-type': 'application/json; charset=utf-8' } })
    assert.equal(ok.status, 200)
    assert.equal((await httpRequest(h.url, { method: 'GET' })).status, 405)
    assert.equal((await httpRequest(h.url, { method: 'GET', path: '/nowhere' })).status, 404)
  })

  test('CORS: allowed origins get headers, others do not', async () => {
    const pre = await httpRequest(h.url, { method: 'OPTIONS', headers: { origin: 'https://ok.example' } })
    assert.equal(pre.status, 204)
    assert.equal(pre.headers['access-control-allow-origin'], 'https://ok.example')
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/)
    const post = await httpRequest(h.url, { body: JSON.stringify(call('node_status')), headers: { origin: 'https://ok.example' } })
    assert.equal(post.headers['access-control-allow-origin'], 'https://ok.example')
    const other = await httpRequest(h.url, { body: JSON.stringify(call('node_status')), headers: { origin: 'https://evil.example' } })
    assert.equal(other.headers['access-control-allow-origin'], undefined)
  })

  test('health and metrics', async () => {
    const ok = await httpRequest(h.url, { method: 'GET', path: '/health' })
    assert.equal(ok.status, 200)
    assert.deepEqual(JSON.parse(ok.text), { healthy: true })
    h.backend.healthy = { healthy: false, reason: 'catching up' }
    const bad = await httpRequest(h.url, { method: 'GET', path: '/health' })
    assert.equal(bad.status, 503)
    assert.deepEqual(JSON.parse(bad.text), { healthy: false, reason: 'catching up' })
    h.backend.healthy = { healthy: true }
    h.metrics.height.set(12)
    const m = await httpRequest(h.url, { method: 'GET', path: '/metrics' })
    assert.equal(m.status, 200)
    assert.match(m.text, /^tally_height 12$/m)
    assert.match(m.text, /tally_rpc_requests_total\{method="ledger_getBalance",outcome="ok"\} \d+/)
    assert.match(m.text, /tally_rpc_requests_total\{method="unknown",outcome="method_not_found"\}/)
  })

  test('internal errors are -32603 without details; slow calls time out', async () => {
    h.backend.failStatus = true
    const e = (await rpc(h.url, call('node_status'))).json.error
    h.backend.failStatus = false
    assert.deepEqual(e, { code: -32603, message: 'internal error' })
    h.backend.delayMs = 3000
    const started = Date.now()
    const t = (await rpc(h.url, call('ledger_getBalance', [A]))).json.error
    h.backend.delayMs = 0
    assert.ok(Date.now() - started < 2500, 'answered before the method finished')
    assert.equal(t.data.reason, 'timeout')
    assert.equal(t.code, APPLICATION_ERROR_CODES.timeout)
  })
})

describe('RpcServer lifecycle', () => {
  test('port 0, stop detaches from the backend and frees the port', async () => {
    const h = await startHarness()
    assert.ok(h.server.port > 0)
    assert.equal(h.backend.listenerCount(), 2)
    await h.close()
    assert.equal(h.backend.listenerCount(), 0)
    await assert.rejects(httpRequest(h.url, { body: '{}' }))
  })
})

describe('RpcServer responses', () => {
  test('JSON-RPC answers are JSON with their exact length, on a connection kept open', async () => {
    const h = await startHarness()
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const sockets = new Set<unknown>()
      for (const body of [
        JSON.stringify(call('ledger_getBalance', [A], 'x')),
        JSON.stringify([call('ledger_getBalance', [A], 1), call('nope', [], 2)]),
        '{"broken',
      ]) {
        const r = await new Promise<{ headers: Record<string, unknown>; text: string; status: number }>((resolve, reject) => {
          const u = new URL(h.url)
          const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, agent }, (res) => {
            sockets.add(res.socket)
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => resolve({ headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), status: res.statusCode ?? 0 }))
          })
          req.on('error', reject)
          req.end(body)
        })
        assert.equal(r.status, 200)
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
        assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.text)))
        assert.equal(r.headers.connection, 'keep-alive')
        JSON.parse(r.text)
      }
      assert.equal(sockets.size, 1, 'every answer came on one connection')
    } finally {
      agent.destroy()
      await h.close()
    }
  })
})

describe('RpcServer bounds on what clients hold', () => {
  /** A raw connection to the server, and everything it received. */
  async function rawSocket(url: string): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
    const u = new URL(url)
    const socket = connect(Number(u.port), u.hostname)
    let text = ''
    let closed = false
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8')
    })
    socket.on('error', () => {
      /* the server may reset a connection it refuses */
    })
    socket.on('close', () => {
      closed = true
    })
    await new Promise<void>((resolve) => socket.once('connect', resolve))
    return { socket, received: () => text, closed: () => closed }
  }

  /** The head of a POST / whose body is a node_status call padded with spaces to `size` bytes; and the body. */
  function paddedCall(size: number): { head: string; body: string } {
    const json = JSON.stringify(call('node_status'))
    return {
      head: `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
      body: json + ' '.repeat(size - json.length),
    }
  }

  test('request bodies held at once are bounded: past the budget a request gets 503 until bodies are done', async () => {
    const h = await startHarness({ ...ONE_ADDRESS, maxBodyBytes: 64 * 1024, maxBodyBytesInFlight: 128 * 1024 })
    const sockets: Socket[] = []
    try {
      // two clients each send all but the last bytes of a 60,000-byte body, and stop
      const { head, body } = paddedCall(60_000)
      const slow = [await rawSocket(h.url), await rawSocket(h.url)]
      for (const s of slow) {
        sockets.push(s.socket)
        s.socket.write(head + body.slice(0, 59_000))
      }
      await waitFor(() => h.server.bodyBytesInFlight === 118_000, 5000, 'both bodies held')
      // a third would take the bodies held past 128 KiB: refused at once, told to retry
      const third = await rawSocket(h.url)
      sockets.push(third.socket)
      third.socket.write(head + body.slice(0, 20_000))
      await waitFor(() => third.received().includes('\r\n\r\n'), 5000, 'an answer to the third')
      assert.match(third.received(), /^HTTP\/1\.1 503 /)
      assert.match(third.received(), /retry-after: 1/i)
      assert.match(third.received(), /"reason":"busy","detail":"node"/)
      assert.equal(h.server.bodyBytesInFlight, 118_000)
      // so would a chunked body that declares no length, once its bytes arrive
      const chunked = await rawSocket(h.url)
      sockets.push(chunked.socket)
      const chunk = body.slice(0, 20_000)
      chunked.socket.write(
        `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`,
      )
      await waitFor(() => chunked.received().includes('\r\n\r\n'), 5000, 'an answer to the chunked one')
      assert.match(chunked.received(), /^HTTP\/1\.1 503 /)
      assert.match(chunked.received(), /"reason":"busy","detail":"node"/)
      assert.equal(h.server.bodyBytesInFlight, 118_000)
      assert.deepEqual(await refusals(h.metrics), { bodies_node: 2 }, 'each refused body counted')
      // the first finishes its body and is answered; what it held is given back
      const [first, second] = slow as [(typeof slow)[0], (typeof slow)[0]]
      first.socket.write(body.slice(59_000))
      await waitFor(() => first.received().includes('"chainId":"tally-test"'), 5000, 'the first answered')
      await waitFor(() => h.server.bodyBytesInFlight === 59_000, 5000, 'the first body given back')
      assert.equal((await rpc(h.url, call('node_status'))).json.result.chainId, 'tally-test')
      // a client that goes away mid-body gives back what it held
      second.socket.destroy()
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'the abandoned body given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      for (const s of sockets) s.destroy()
      await h.close()
    }
  })

  test('connections are bounded: past maxConnections a new one is closed, and served once one ends', async () => {
    const h = await startHarness({ maxConnections: 4 })
    const sockets: Socket[] = []
    try {
      const held = []
      for (let i = 0; i < 4; i++) {
        const s = await rawSocket(h.url)
        sockets.push(s.socket)
        held.push(s)
      }
      const fifth = await rawSocket(h.url)
      sockets.push(fifth.socket)
      await waitFor(() => fifth.closed(), 5000, 'the fifth connection closed')
      assert.equal(fifth.received(), '')
      assert.equal((await refusals(h.metrics)).connections, 1, 'the closed connection counted')
      // the held ones are still served
      const { head, body } = paddedCall(200)
      const first = held[0]!
      first.socket.write(head + body)
      await waitFor(() => first.received().includes('"chainId":"tally-test"'), 5000, 'a held connection served')
      // once one ends, a new connection is served
      first.socket.destroy()
      await waitFor(
        async () => {
          try {
            return (await rpc(h.url, call('node_status'))).json.result.chainId === 'tally-test'
          } catch {
            return false
          }
        },
        5000,
        'a new connection served',
      )
    } finally {
      for (const s of sockets) s.destroy()
      await h.close()
    }
  })

  test('connections per address are bounded: past the limit a new one gets 503, HTTP or WebSocket, and is logged', async () => {
    const lines: string[] = []
    const note = (_obj: object, msg?: string) => lines.push(msg ?? '')
    const backend = new TestBackend({})
    const metrics = new Metrics()
    const server = new RpcServer(
      { host: '127.0.0.1', port: 0, maxConnectionsPerAddress: 2 },
      { backend, metrics, logger: { debug: note, info: note, warn: note, error: note } },
    )
    await server.start()
    const sockets: Socket[] = []
    try {
      const held = []
      for (let i = 0; i < 2; i++) {
        const s = await rawSocket(server.url)
        sockets.push(s.socket)
        held.push(s)
      }
      // a third from the same address is answered 503 and closed
      const third = await rawSocket(server.url)
      sockets.push(third.socket)
      const { head, body } = paddedCall(200)
      third.socket.write(head + body)
      await waitFor(() => third.closed(), 5000, 'the third connection closed')
      assert.match(third.received(), /^HTTP\/1\.1 503 /)
      assert.match(third.received(), /"reason":"busy"/)
      assert.match(third.received(), /connections from this address/)
      assert.ok(
        lines.some((l) => l.includes('too many from one address')),
        `a log line (got ${JSON.stringify(lines)})`,
      )
      // a WebSocket upgrade is refused the same way
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`)
      const refused = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.once('open', () => resolve(101))
        ws.once('error', () => resolve(-1))
      })
      ws.terminate()
      assert.equal(refused, 503)
      assert.deepEqual(await refusals(metrics), { address_connections: 2 }, 'each refused connection counted')
      // the held ones are served; once one ends, a new connection is served
      const first = held[0]!
      first.socket.write(head + body)
      await waitFor(() => first.received().includes('"chainId":"tally-test"'), 5000, 'a held connection served')
      first.socket.destroy()
      await waitFor(
        async () => {
          try {
            return (await rpc(server.url, call('node_status'))).json.result.chainId === 'tally-test'
          } catch {
            return false
          }
        },
        5000,
        'a new connection served',
      )
    } finally {
      for (const s of sockets) s.destroy()
      await server.stop()
      backend.close()
    }
  })

  test('by default one address may hold a quarter of maxConnections, so a config that sets the total moves it', async () => {
    const h = await startHarness({ maxConnections: 8 })
    const sockets: Socket[] = []
    try {
      for (let i = 0; i < 2; i++) sockets.push((await rawSocket(h.url)).socket)
      const third = await rawSocket(h.url)
      sockets.push(third.socket)
      const { head, body } = paddedCall(200)
      third.socket.write(head + body)
      await waitFor(() => third.closed(), 5000, 'the third connection closed')
      assert.match(third.received(), /^HTTP\/1\.1 503 /)
      assert.match(third.received(), /at most 2 at once/)
    } finally {
      for (const s of sockets) s.destroy()
      await h.close()
    }
  })

  test('connections are counted per IPv4 address, and per /64 prefix for IPv6', () => {
    assert.equal(addressKey('127.0.0.1'), '127.0.0.1')
    assert.equal(addressKey('::ffff:10.0.0.7'), '10.0.0.7')
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
    assert.equal(addressKey('2001:0DB8:0:0:ffff::2'), '2001:db8:0:0::/64')
    assert.equal(addressKey('2001:db8:0:1::1'), '2001:db8:0:1::/64')
    assert.equal(addressKey('::1'), '0:0:0:0::/64')
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
    assert.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64')
  })
})

describe('RpcServer answers clients do not take', () => {
  test('answers held unsent are bounded: past the budget a request gets 503, and a stalled reader is closed', async () => {
    const h = await startHarness({ ...ONE_ADDRESS, maxResponseBytesInFlight: 24 << 20, responseStallMs: 300 })
    const sockets: Socket[] = []
    try {
      // ten blocks of ~2 MB of transaction hex each: a batch asking for all of them is answered with ~20 MB
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => call('chain_getBlock', [i + 1], i)))
      const u = new URL(h.url)
      // a client asks for it and never reads: far more than the kernel's buffers take stays in the node
      const stalled = connect(Number(u.port), u.hostname)
      sockets.push(stalled)
      stalled.on('error', () => {
        /* reset when the server gives up on it */
      })
      await new Promise<void>((resolve) => stalled.once('connect', resolve))
      stalled.pause()
      stalled.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`)
      await waitFor(() => stalled.readableLength > 0, 5000, 'the answer on its way to the stalled client')
      // meanwhile the same batch from a client that reads would take what the node holds past the budget
      const refused = await httpRequest(h.url, { body: batch })
      assert.equal(refused.status, 503, `answered ${refused.status} with ${refused.text.length} bytes while another ~20 MB answer is held`)
      assert.equal(JSON.parse(refused.text).error.data.reason, 'busy')
      assert.equal(JSON.parse(refused.text).error.data.detail, 'node')
      assert.match(String(refused.headers['retry-after']), /^1$/)
      assert.deepEqual(await refusals(h.metrics), { answers_node: 1 }, 'the refused answer counted')
      // the stalled client takes nothing of its answer: closed, and what it held given back
      await waitFor(
        async () => {
          const r = await httpRequest(h.url, { body: batch })
          return r.status === 200 && JSON.parse(r.text).length === 10
        },
        10_000,
        'a batch answered in full once the stalled client is closed',
      )
      await waitFor(() => h.server.responseBytesInFlight === 0, 5000, 'every answer taken and given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      for (const s of sockets) s.destroy()
      await h.close()
    }
  })
  test('small answers are sent while clients that do not read hold all the budget', async () => {
    const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
    const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => call('chain_getBlock', [i + 1], i)))
    const probe = await startHarness()
    for (let i = 0; i < 10; i++) probe.backend.commitBlock(bulk)
    const size = Buffer.byteLength((await httpRequest(probe.url, { body: batch })).text)
    await probe.close()
    // a budget the stalled client's answer takes all but 1,000 bytes of
    const h = await startHarness({ ...ONE_ADDRESS, maxResponseBytesInFlight: size + 1000, responseStallMs: 60_000 })
    const u = new URL(h.url)
    const stalled = connect(Number(u.port), u.hostname)
    try {
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      stalled.on('error', () => {
        /* reset when the server stops */
      })
      await new Promise<void>((resolve) => stalled.once('connect', resolve))
      stalled.pause()
      stalled.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`)
      await waitFor(() => stalled.readableLength > 0, 5000, 'the answer on its way to the stalled client')
      // twenty status calls: an answer of some kilobytes, more than the budget has left
      const small = await httpRequest(h.url, { body: JSON.stringify(Array.from({ length: 20 }, (_, i) => call('node_status', [], i))) })
      assert.equal(small.status, 200, `answered ${small.status}: ${small.text.slice(0, 80)}`)
      assert.equal(JSON.parse(small.text).length, 20)
      assert.ok(small.text.length > 1000)
    } finally {
      stalled.destroy()
      await h.close()
    }
  })

  test('a client that takes a large answer slowly, but steadily, gets all of it', async () => {
    const h = await startHarness({ responseStallMs: 1000 })
    const u = new URL(h.url)
    const socket = connect(Number(u.port), u.hostname)
    try {
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => call('chain_getBlock', [i + 1], i)))
      await new Promise<void>((resolve) => socket.once('connect', resolve))
      // ~20 MB read at ~3 MB/s, in bursts: several times responseStallMs in all, some progress within each
      let received = 0
      let windowBytes = 0
      const chunks: Buffer[] = []
      socket.on('data', (c: Buffer) => {
        chunks.push(c)
        received += c.length
        windowBytes += c.length
        if (windowBytes >= 150_000) socket.pause()
      })
      const pace = setInterval(() => {
        windowBytes = 0
        socket.resume()
      }, 50)
      let closed = false
      socket.on('close', () => {
        closed = true
      })
      socket.on('error', () => {
        /* reported as closed */
      })
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`)
      let expected = Number.POSITIVE_INFINITY
      const total = () => {
        if (expected === Number.POSITIVE_INFINITY && received > 2000) {
          const text = Buffer.concat(chunks).toString('latin1', 0, 2000)
          const m = /content-length: (\d+)\r\n/i.exec(text)
          if (m !== null) expected = text.indexOf('\r\n\r\n') + 4 + Number(m[1])
        }
        return expected
      }
      const started = Date.now()
      try {
        await waitFor(() => closed || received >= total(), 30_000, 'the whole answer')
      } finally {
        clearInterval(pace)
      }
      assert.equal(closed, false, `closed after ${received} bytes`)
      assert.ok(Date.now() - started > 3000, 'the answer took longer than the stall limit several times over')
      const text = Buffer.concat(chunks).toString('utf8')
      assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).length, 10)
      await waitFor(() => h.server.responseBytesInFlight === 0, 5000, 'the answer given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      socket.destroy()
      await h.close()
    }
  })
})

describe('RpcServer calls that read a whole block', () => {
  test('chain_getCommit and tx_get with a proof run a few at a time over all requests, as chain_getBlock does', async () => {
    // one address may hold every turn (as behind a proxy): the bound over all addresses
    const h = await startHarness({ ...ONE_ADDRESS, requestTimeoutMs: 10_000 })
    let running = 0
    let most = 0
    const release: (() => void)[] = []
    const held = async <T>(answer: T): Promise<T> => {
      running++
      most = Math.max(most, running)
      await new Promise<void>((resolve) => release.push(resolve))
      running--
      return answer
    }
    try {
      h.backend.commitBlock()
      const commit = await h.backend.getCommit(1)
      // each of these reads and decodes a whole stored block in a node (up to 32 MB), whatever the answer's size
      h.backend.getCommit = () => held(commit)
      Object.assign(h.backend, { proveTx: () => held({ lookup: { status: 'unknown' } }) })
      const batch = [
        ...Array.from({ length: 20 }, (_, i) => call('chain_getCommit', [1], i)),
        ...Array.from({ length: 20 }, (_, i) => call('tx_get', [to0x(new Uint8Array(32).fill(i)), { proof: true }], 20 + i)),
      ]
      const answer = rpc(h.url, batch)
      await waitFor(() => running >= 4, 5000, 'the first calls running')
      for (let answered = 0; answered < 40; answered++) {
        assert.ok(running <= 4, `${running} whole-block reads at once`)
        release.shift()?.()
        await waitFor(() => release.length > 0 || answered === 39, 5000, 'the next call running')
      }
      const { json } = await answer
      assert.equal(json.length, 40)
      assert.ok(json.every((a: { result?: unknown }) => a.result !== undefined))
      assert.equal(most, 4)
      // a plain tx_get is not held back by them
      assert.equal((await rpc(h.url, call('tx_get', [to0x(new Uint8Array(32))]))).json.result.status, 'unknown')
    } finally {
      while (release.length > 0) release.shift()!()
      await h.close()
    }
  })
})

describe('RpcServer calls that read a whole block, shared between client addresses', () => {
  /** Makes each getBlock wait until released; `reads` lists the release of each read as it starts. */
  function gateBlocks(h: Harness): (() => void)[] {
    const reads: (() => void)[] = []
    const getBlock = h.backend.getBlock.bind(h.backend)
    h.backend.getBlock = async (height) => {
      await new Promise<void>((resolve) => reads.push(resolve))
      return getBlock(height)
    }
    return reads
  }

  test("one address's many block reads do not keep another address's block waiting behind them", async () => {
    const h = await startHarness({ requestTimeoutMs: 10_000 })
    const reads = gateBlocks(h)
    let released = 0
    const releaseAll = () => {
      while (released < reads.length) reads[released++]!()
    }
    try {
      h.backend.commitBlock()
      // one address asks for many blocks at once over several connections
      const flood = Array.from({ length: 4 }, (_, r) =>
        rpc(
          h.url,
          Array.from({ length: 10 }, (_, i) => call('chain_getBlock', [1], r * 10 + i)),
        ),
      )
      await waitFor(() => reads.length >= 1, 5000, 'the first address reading')
      const other = rpc(h.url, call('chain_getBlock', [1], 'other'), '127.0.0.2')
      await waitFor(() => reads.length >= 2, 5000, 'a second read')
      // nothing released yet: the second read is the other address's, beside the first address's one
      assert.equal(reads.length, 2, `${reads.length} block reads at once, the first address holding all but one`)
      reads[1]!()
      assert.equal((await other).json.result?.height, 1)
      released = 2
      reads[0]!()
      while (released < 41) {
        await waitFor(() => reads.length > released, 5000, 'the next read')
        assert.ok(reads.length - released <= 1, 'one read at a time for one address')
        releaseAll()
      }
      for (const { json } of await Promise.all(flood)) assert.ok(json.every((a: { result?: { height: number } }) => a.result?.height === 1))
    } finally {
      releaseAll()
      await h.close()
    }
  })

  test('block reads waiting for a client that went away leave the queue', async () => {
    const h = await startHarness({ requestTimeoutMs: 10_000 })
    const reads = gateBlocks(h)
    try {
      h.backend.commitBlock()
      const first = rpc(h.url, call('chain_getBlock', [1], 'first'))
      await waitFor(() => reads.length === 1, 5000, 'the first read')
      // the same address asks for more, then goes before its turn
      const u = new URL(h.url)
      const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, agent: false })
      req.on('error', () => {})
      req.end(JSON.stringify(Array.from({ length: 20 }, (_, i) => call('chain_getBlock', [1], i))))
      await waitFor(() => h.server.heavyCallsWaiting === 20, 5000, 'the calls waiting')
      req.destroy()
      await waitFor(() => h.server.heavyCallsWaiting === 0, 5000, 'the calls of the client gone leave the queue')
      reads[0]!()
      assert.equal((await first).json.result?.height, 1)
      assert.equal(reads.length, 1, 'no read made for the client gone')
      assert.equal((await rpc(h.url, call('node_status'))).status, 200)
      await waitFor(() => h.server.resultBytesInFlight === 0 && h.server.addressesHoldingBytes === 0, 5000, 'all given back')
    } finally {
      for (const r of reads) r()
      await h.close()
    }
  })

  test('a request on a kept-alive connection, and a submission whose client went, are served as they are asked', async () => {
    const h = await startHarness({ requestTimeoutMs: 10_000 })
    const reads = gateBlocks(h)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      h.backend.commitBlock()
      const ask = (body: object) =>
        new Promise<{ json: { result?: { height?: number }; error?: unknown }; socket: unknown }>((resolve, reject) => {
          const u = new URL(h.url)
          const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, agent }, (res) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => resolve({ json: JSON.parse(Buffer.concat(chunks).toString('utf8')), socket: req.socket }))
          })
          req.on('error', reject)
          req.end(JSON.stringify(body))
        })
      // the connection's first request is answered: its response's end must not end the next one on it
      const first = await ask(call('node_status'))
      const second = ask(call('chain_getBlock', [1], 'kept-alive'))
      await waitFor(() => reads.length === 1, 5000, 'the read of the second request')
      reads[0]!()
      const got = await second
      assert.equal(got.json.result?.height, 1, JSON.stringify(got.json))
      assert.equal(got.socket, first.socket, 'the two requests went on one connection')
      // a submission whose client goes before its verdict is still admitted
      let admit: (() => void) | undefined
      const submitTx = h.backend.submitTx.bind(h.backend)
      h.backend.submitTx = async (bytes) => {
        await new Promise<void>((resolve) => {
          admit = resolve
        })
        return submitTx(bytes)
      }
      const t = transfer(0n)
      const u = new URL(h.url)
      const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, agent: false })
      req.on('error', () => {})
      req.end(JSON.stringify(call('tx_submit', [to0x(t.bytes)])))
      await waitFor(() => admit !== undefined, 5000, 'the submission reaches the node')
      req.destroy()
      admit!()
      await waitFor(() => h.backend.mempool.length === 1, 5000, 'the submission of the client gone admitted')
    } finally {
      agent.destroy()
      for (const r of reads) r()
      await h.close()
    }
  })
})

describe('RpcServer kept block answers', () => {
  test('a kept block answer is written as its bytes: the same answer over HTTP and WebSocket, budgets given back', async () => {
    const h = await startHarness({ ...ONE_ADDRESS })
    try {
      // a large block (its answer sent in slices) and a small one, with text that is not ASCII in their answers
      const bulk = Array.from({ length: 300 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (const txs of [bulk, [new Uint8Array(10)]]) {
        const b = h.backend.commitBlock(txs)
        h.backend.blocks[b.height - 1] = { ...b, results: b.txs.map((_, i) => ({ ok: false, error: `refusé ✓ \u{1f600} ${i}` })) }
      }
      const block = (height: number) => JSON.stringify(formatBlock(h.backend.blocks[height - 1]!))
      const expected = {
        one: `{"jsonrpc":"2.0","id":"x\u00e9","result":${block(1)}}`,
        batch: `[{"jsonrpc":"2.0","id":1,"result":${block(2)}},{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"method not found: nope"}},{"jsonrpc":"2.0","id":3,"result":${block(1)}},{"jsonrpc":"2.0","id":4,"result":null}]`,
      }
      const requests = {
        one: JSON.stringify(call('chain_getBlock', [1], 'x\u00e9')),
        batch: JSON.stringify([call('chain_getBlock', [2], 1), call('nope', [], 2), call('chain_getBlock', [1], 3), call('chain_getBlock', [9], 4)]),
      }
      assert.ok(Buffer.byteLength(expected.one) > 256 * 1024 && Buffer.byteLength(expected.one) > expected.one.length)
      const ws = new WebSocket(`${h.url.replace('http', 'ws')}/ws`)
      const messages: string[] = []
      ws.on('message', (data: Buffer) => messages.push(data.toString('utf8')))
      await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject))
      try {
        // the first asks make and keep the answers, the next ones are written from what is kept
        for (let round = 0; round < 2; round++) {
          for (const name of ['one', 'batch'] as const) {
            const r = await httpRequest(h.url, { body: requests[name] })
            assert.equal(r.status, 200)
            assert.equal(r.headers['content-length'], String(Buffer.byteLength(expected[name])))
            assert.ok(r.text === expected[name], `the ${name} HTTP answer differs (round ${round})`)
            ws.send(requests[name])
            await waitFor(() => messages.length > 0, 5000, 'the WebSocket answer')
            assert.ok(messages.shift() === expected[name], `the ${name} WebSocket answer differs (round ${round})`)
          }
        }
      } finally {
        ws.close()
      }
      await waitFor(
        () => h.server.resultBytesInFlight === 0 && h.server.responseBytesInFlight === 0 && h.server.addressesHoldingBytes === 0,
        5000,
        'every budget given back',
      )
    } finally {
      await h.close()
    }
  })
})

describe('RpcServer results of requests still running', () => {
  /** A harness whose blocks 1 and 2 are ~100 KB answers, and whose node_status waits until `open` is called. */
  async function heldHarness(options: Parameters<typeof startHarness>[0]) {
    const h = await startHarness(options)
    const bulk = Array.from({ length: 50 }, (_, i) => new Uint8Array(1000).fill(i))
    h.backend.commitBlock(bulk)
    h.backend.commitBlock(bulk)
    const blockBytes = JSON.stringify((await rpc(h.url, call('chain_getBlock', [1]))).json.result).length
    let holding = 0
    const waiting: (() => void)[] = []
    const status = h.backend.status.bind(h.backend)
    h.backend.status = async () => {
      holding++
      await new Promise<void>((resolve) => waiting.push(resolve))
      return status()
    }
    const open = () => {
      for (const w of waiting.splice(0)) w()
    }
    let blocksRead = 0
    const getBlock = h.backend.getBlock.bind(h.backend)
    h.backend.getBlock = async (height) => {
      const block = await getBlock(height)
      blocksRead++
      return block
    }
    return { h, blockBytes, holding: () => holding, blocksRead: () => blocksRead, open }
  }

  test('requests whose clients went still count their bodies while their calls run', async () => {
    const { h, holding, open } = await heldHarness({ ...ONE_ADDRESS, maxBodyBytes: 64 * 1024, maxBodyBytesInFlight: 128 * 1024 })
    try {
      const body = (i: number) => JSON.stringify(call('node_status', [], 'x'.repeat(50_000) + i))
      const u = new URL(h.url)
      // two clients each send a 50 KB request whose call runs on, and leave
      for (let i = 0; i < 2; i++) {
        const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, agent: false })
        req.on('error', () => {})
        req.end(body(i))
        await waitFor(() => holding() === i + 1, 5000, 'the call runs')
        req.destroy()
      }
      // their calls still run: a third request of that size would pass the 128 KB of bodies
      let settled: { status: number } | undefined
      const third = httpRequest(h.url, { body: body(2) }).then((r) => {
        settled = r
      })
      await waitFor(() => settled !== undefined || holding() === 3, 5000, 'the third request answered or running')
      assert.equal(settled?.status, 503, `${holding()} calls run for requests whose bodies pass maxBodyBytesInFlight`)
      open()
      await third
    } finally {
      open()
      await h.close()
    }
  })

  /** A batch of both blocks and a node_status call that is held: the blocks wait with it until it is answered. */
  const heldBatch = (id: number) => [call('chain_getBlock', [1], id), call('chain_getBlock', [2], id + 1), call('node_status', [], id + 2)]

  test('are bounded over every connection, HTTP and WebSocket: the blocks past the bound are busy', async () => {
    const { h, blockBytes, holding, blocksRead, open } = await heldHarness({ ...ONE_ADDRESS, maxResultBytesInFlight: 300_000, requestTimeoutMs: 10_000 })
    const ws = new WebSocket(`${h.url.replace('http', 'ws')}/ws`)
    try {
      assert.ok(blockBytes > 100_000 && blockBytes < 150_000, `a block answer of ${blockBytes} bytes`)
      const answers = Array.from({ length: 8 }, (_, i) => rpc(h.url, heldBatch(i * 10)))
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('error', reject)
      })
      const wsAnswer = new Promise<any>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)))))
      ws.send(JSON.stringify(heldBatch(100)))
      await waitFor(() => holding() === 9, 5000, 'nine requests held open')
      // each request's blocks are made (a few at a time), then kept or refused, while every request stays unanswered
      await waitFor(() => blocksRead() === 18, 5000, 'every block read')
      await waitFor(() => h.server.resultBytesInFlight === 2 * blockBytes, 5000, 'the bound filled')
      const lone = await rpc(h.url, call('chain_getBlock', [1], 'lone'))
      assert.equal(lone.status, 200)
      assert.equal(lone.json.id, 'lone')
      assert.equal(lone.json.error.data.reason, 'busy')
      assert.equal(lone.json.error.data.detail, 'node')
      assert.equal(lone.json.error.code, APPLICATION_ERROR_CODES.busy)
      open()
      const members = [...(await Promise.all(answers)).flatMap((a) => a.json), ...(await wsAnswer)]
      // the ids of block members end in 0 or 1, those of the held calls in 2
      assert.equal(members.length, 27)
      const blocks = members.filter((m) => m.id % 10 !== 2 && m.result !== undefined)
      assert.ok(blocks.length * blockBytes <= 300_000, `${blocks.length} blocks of ${blockBytes} bytes held at once`)
      const busy = members.filter((m) => m.error?.data?.reason === 'busy')
      assert.equal(busy.length, 18 - blocks.length)
      assert.ok(busy.every((m) => m.error.data.detail === 'node'))
      assert.equal(members.filter((m) => m.id % 10 === 2 && m.result?.chainId !== undefined).length, 9)
      assert.equal(h.server.resultBytesInFlight, 0)
      assert.equal(h.server.addressesHoldingBytes, 0)
      // nothing is held once they are answered: a batch of both blocks is answered in full
      assert.deepEqual(
        (await rpc(h.url, [call('chain_getBlock', [1], 1), call('chain_getBlock', [2], 2)])).json.map((m: any) => m.result.height),
        [1, 2],
      )
    } finally {
      open()
      ws.terminate()
      await h.close()
    }
  })

  test('one address holds at most its share of them: another address is served beside it', async () => {
    // a budget of 40 MiB: an address's share is what one request may carry, 32 MiB (more than a quarter of it)
    const h = await startHarness({ maxResultBytesInFlight: 40 << 20, requestTimeoutMs: 20_000 })
    let answers: Promise<unknown>[] = []
    let holding = 0
    const waiting: (() => void)[] = []
    const open = () => {
      for (const w of waiting.splice(0)) w()
    }
    try {
      // one block of ~4 MB of transaction hex, asked for again and again: eight fit a share of 32 MiB and nine do not,
      // ten fit the budget and eleven do not
      h.backend.commitBlock(Array.from({ length: 2000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff)))
      const blockBytes = JSON.stringify((await rpc(h.url, call('chain_getBlock', [1]))).json.result).length
      assert.ok(blockBytes > 3_820_000 && blockBytes < 4_190_000, `a block answer of ${blockBytes} bytes`)
      const status = h.backend.status.bind(h.backend)
      h.backend.status = async () => {
        holding++
        await new Promise<void>((resolve) => waiting.push(resolve))
        return status()
      }
      let blocksRead = 0
      const getBlock = h.backend.getBlock.bind(h.backend)
      h.backend.getBlock = async (height) => {
        const block = await getBlock(height)
        blocksRead++
        return block
      }
      // two batches from one address, held open by a node_status call each: 7 and 4 blocks (one request carries at
      // most 32 MiB); the budget would take 10 of them, its share 8
      const heldBatch = (id: number, blocks: number) => [
        ...Array.from({ length: blocks }, (_, i) => call('chain_getBlock', [1], id + i)),
        call('node_status', [], id + 99),
      ]
      const asked = [rpc(h.url, heldBatch(100, 7)), rpc(h.url, heldBatch(200, 4))]
      answers = asked
      await waitFor(() => holding === 2, 10_000, 'both requests held open')
      // every block of both batches is made (a few at a time), then kept or refused, before the other address asks
      await waitFor(() => blocksRead === 11, 20_000, 'every block read')
      await waitFor(() => h.server.resultBytesInFlight >= 8 * blockBytes, 20_000, 'the blocks held')
      const other = await rpc(h.url, call('chain_getBlock', [1], 'other'), '127.0.0.2')
      assert.equal(other.json.id, 'other')
      assert.equal(other.json.result?.height, 1, `the other address answered ${JSON.stringify(other.json).slice(0, 160)}`)
      assert.equal(h.server.resultBytesInFlight, 8 * blockBytes)
      open()
      const members = (await Promise.all(asked)).flatMap((a) => (Array.isArray(a.json) ? a.json : []))
      const busy = members.filter((m) => m.error?.data?.reason === 'busy')
      assert.ok(busy.every((m) => m.id % 100 !== 99 && m.error.code === APPLICATION_ERROR_CODES.busy))
      // the node had room (the other address was served): every refusal was for this address's share, and is counted
      // apart (the answer that carries them may itself be refused, for the answers this address holds)
      assert.ok(busy.every((m) => m.error.data.detail === 'share'))
      const counted = (await h.metrics.rpcRequests.get()).values.filter((v) => v.labels.method === 'chain_getBlock')
      assert.deepEqual(Object.fromEntries(counted.map((v) => [v.labels.outcome, v.value])), { ok: 10, busy_share: 3 })
      assert.match(await h.metrics.registry.metrics(), /^tally_rpc_requests_total\{method="chain_getBlock",outcome="busy_share"\} 3$/m)
      await waitFor(() => h.server.resultBytesInFlight === 0 && h.server.responseBytesInFlight === 0, 10_000, 'all given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      open()
      await Promise.allSettled(answers)
      await h.close()
    }
  })

  test('of one request of the largest size fit the share of an address holding nothing: a lone batch is served whole', async () => {
    // defaults: a quarter of 64 MiB is 16 MiB, less than the 32 MiB of results one request may carry
    const h = await startHarness()
    try {
      // ten blocks of ~2 MB of transaction hex each: ~20 MB of results in one batch
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => call('chain_getBlock', [i + 1], i)))
      const r = await httpRequest(h.url, { body: batch })
      const members = JSON.parse(r.text) as { id: number; result?: { height: number }; error?: { data: { reason: string } } }[]
      assert.deepEqual(
        members.map((m) => m.result?.height ?? m.error?.data.reason),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      )
      assert.ok(r.text.length > 16 << 20, `an answer of ${r.text.length} bytes`)
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      await h.close()
    }
  })

  test('are given back when the client is gone before its answer, HTTP or WebSocket', async () => {
    const { h, blockBytes, holding, open } = await heldHarness({ requestTimeoutMs: 500 })
    const u = new URL(h.url)
    try {
      // HTTP: the client goes, the held call never ends; its request times out and gives back what it held
      const body = JSON.stringify(heldBatch(1))
      const socket = connect(Number(u.port), u.hostname)
      socket.on('error', () => {})
      await new Promise<void>((resolve) => socket.once('connect', resolve))
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      await waitFor(() => h.server.resultBytesInFlight === 2 * blockBytes, 5000, 'both blocks held')
      socket.destroy()
      await waitFor(() => h.server.resultBytesInFlight === 0, 5000, 'the blocks given back')
      // the answer made for it once its request ended has no one to take it: not held either
      await waitFor(() => h.server.responseBytesInFlight === 0, 5000, 'the answer for the gone client given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
      // WebSocket: the same, the connection closed while its request runs
      const ws = new WebSocket(`${h.url.replace('http', 'ws')}/ws`)
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('error', reject)
      })
      ws.send(JSON.stringify(heldBatch(1)))
      await waitFor(() => holding() === 2 && h.server.resultBytesInFlight === 2 * blockBytes, 5000, 'both blocks held')
      ws.terminate()
      await waitFor(() => h.server.resultBytesInFlight === 0, 5000, 'the blocks given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      open()
      await h.close()
    }
  })
})

describe('RpcServer budgets shared between client addresses', () => {
  /**
   * Half of each budget per address: maxConnectionsPerAddress is half of maxConnections. Requests come from two
   * loopback addresses, 127.0.0.1 (the default) and 127.0.0.2.
   */
  const halves = { maxConnections: 8, maxConnectionsPerAddress: 4 }
  const OTHER = '127.0.0.2'

  /** A raw connection from `localAddress`, and everything it received. */
  async function rawFrom(url: string, localAddress?: string): Promise<{ socket: Socket; received: () => string }> {
    const u = new URL(url)
    const socket = connect({ port: Number(u.port), host: u.hostname, ...(localAddress === undefined ? {} : { localAddress }) })
    let text = ''
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8')
    })
    socket.on('error', () => {
      /* the server may reset a connection it refuses */
    })
    await new Promise<void>((resolve) => socket.once('connect', resolve))
    return { socket, received: () => text }
  }

  test('request bodies: one address holding its share leaves the rest to others, and is busy past it', async () => {
    const h = await startHarness({ ...halves, maxBodyBytes: 64 * 1024, maxBodyBytesInFlight: 128 * 1024, wsMaxMessageBytes: 16 * 1024 })
    const sockets: Socket[] = []
    try {
      const json = JSON.stringify(call('node_status'))
      const body = json + ' '.repeat(60_000 - json.length)
      const head = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
      // one address sends all but the last bytes of two bodies, each within its share, both together past it
      const first = await rawFrom(h.url)
      sockets.push(first.socket)
      first.socket.write(head + body.slice(0, 59_000))
      await waitFor(() => h.server.bodyBytesInFlight === 59_000, 5000, 'the first body held')
      const second = await rawFrom(h.url)
      sockets.push(second.socket)
      second.socket.write(head + body.slice(0, 59_000))
      await waitFor(() => h.server.bodyBytesInFlight === 118_000 || second.received().includes('\r\n\r\n'), 5000, 'the second held or answered')
      // another address sends a body that fits in what is left of the budget beside one share
      const other = await httpRequest(h.url, { body, localAddress: OTHER })
      assert.equal(other.status, 200, `the other address answered ${other.status}: ${other.text.slice(0, 120)}`)
      assert.equal(JSON.parse(other.text).result.chainId, 'tally-test')
      assert.match(second.received(), /^HTTP\/1\.1 503 /)
      assert.match(second.received(), /"reason":"busy","detail":"share"/)
      assert.match(second.received(), /retry-after: 1/i)
      assert.deepEqual(await refusals(h.metrics), { bodies_share: 1 }, 'the refused body counted')
      // what the first held is given back to its address when it goes away mid-body
      first.socket.destroy()
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'the abandoned body given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
      assert.equal((await rpc(h.url, call('node_status'))).json.result.chainId, 'tally-test')
    } finally {
      for (const s of sockets) s.destroy()
      await h.close()
    }
  })

  test('answers held for clients: one address past its share is busy, another is served beside it', async () => {
    const h = await startHarness({ ...halves, maxResponseBytesInFlight: 48 << 20, responseStallMs: 60_000 })
    const sockets: Socket[] = []
    try {
      // ten blocks of ~2 MB of transaction hex each: a batch asking for all of them is answered with ~20 MB
      const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
      for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
      const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => call('chain_getBlock', [i + 1], i)))
      const request = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`
      // one address asks for it twice and reads nothing: the second answer would take it past its share of 24 MiB
      const stalled: Socket[] = []
      for (let i = 0; i < 2; i++) {
        const s = await rawFrom(h.url)
        sockets.push(s.socket)
        stalled.push(s.socket)
        s.socket.pause()
        s.socket.write(request)
        await waitFor(() => s.socket.readableLength > 0, 10_000, 'an answer on its way to a stalled client')
      }
      // another address asks for the same: there is room for it beside one share
      const other = await httpRequest(h.url, { body: batch, localAddress: OTHER })
      assert.equal(other.status, 200, `the other address answered ${other.status}: ${other.text.slice(0, 120)}`)
      assert.equal(JSON.parse(other.text).length, 10)
      const second = String(stalled[1]!.read())
      assert.match(second, /^HTTP\/1\.1 503 /)
      assert.match(second, /"reason":"busy","detail":"share"/)
      assert.deepEqual(await refusals(h.metrics), { answers_share: 1 }, 'the refused answer counted')
      // the stalled client goes away: what it held is given back to its address too
      for (const s of stalled) s.destroy()
      await waitFor(() => h.server.responseBytesInFlight === 0, 5000, 'every answer given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      for (const s of sockets) s.destroy()
      await h.close()
    }
  })
})

describe('RpcServer share of the request bodies for one address', () => {
  test('is never less than one body of maxBodyBytes: one read in pieces is served from an address holding nothing', async () => {
    // a quarter of 128 KiB is 32 KiB, less than one body of 64 KiB
    const h = await startHarness({ maxBodyBytes: 64 * 1024, maxBodyBytesInFlight: 128 * 1024, wsMaxMessageBytes: 16 * 1024 })
    const u = new URL(h.url)
    const socket = connect(Number(u.port), u.hostname)
    let text = ''
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8')
    })
    socket.on('error', () => {})
    try {
      await new Promise<void>((resolve) => socket.once('connect', resolve))
      const json = JSON.stringify(call('node_status'))
      const body = json + ' '.repeat(60_000 - json.length)
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
      socket.write(body.slice(0, 30_000))
      await waitFor(() => h.server.bodyBytesInFlight === 30_000 || text !== '', 5000, 'half the body held')
      socket.write(body.slice(30_000))
      await waitFor(() => text.includes('\r\n\r\n{'), 5000, 'an answer')
      assert.match(text, /^HTTP\/1\.1 200 /, `answered ${text.slice(0, 200)}`)
      assert.match(text, /"chainId":"tally-test"/)
      await waitFor(() => h.server.bodyBytesInFlight === 0, 5000, 'the body given back')
      assert.equal(h.server.addressesHoldingBytes, 0)
    } finally {
      socket.destroy()
      await h.close()
    }
  })
})
