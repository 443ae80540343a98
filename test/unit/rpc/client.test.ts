import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { formatAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { RpcClient, RpcError, RpcUnreachableError } from '../../../rpc/client.js'
import { aliceAddress, aliceSeed, bobAddress, startHarness, type Harness } from './harness.js'

/** A port with nothing listening: bind, note the port, close. */
async function deadEndpoint(): Promise<string> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return `http://127.0.0.1:${port}`
}

/** A server that accepts connections and never answers. */
async function silentEndpoint(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const s: Server = createServer((sock) => {
    sockets.add(sock)
    sock.on('error', () => {})
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy()
        s.close(() => r())
      }),
  }
}

const countCalls = (h: Harness) => h.metrics.rpcRequests.get().then((m) => m.values.reduce((s, v) => s + v.value, 0))

describe('RpcClient', () => {
  let h1: Harness
  let h2: Harness
  before(async () => {
    h1 = await startHarness()
    h2 = await startHarness()
  })
  after(async () => {
    await h1.close()
    await h2.close()
  })

  test('typed helpers', async () => {
    const c = new RpcClient({ endpoints: [h1.url] })
    const a = formatAddress(aliceAddress)
    assert.equal((await c.status()).chainId, 'tally-test')
    assert.equal(await c.getBalance(a), 1_000_000n)
    assert.deepEqual(await c.getAccount(a), { address: a, balance: 1_000_000n, nonce: 0n })
    const t = createTransfer(aliceSeed, { chainId: 'tally-test', to: bobAddress, amount: 3n, nonce: await c.getNextNonce(a) })
    assert.equal(await c.submitTx(to0x(t.bytes)), to0x(t.hash))
    assert.equal(await c.getNextNonce(a), 1n)
    const waiting = c.waitForTx(to0x(t.hash), { timeoutMs: 5000, pollMs: 2000 })
    setImmediate(() => h1.backend.commitBlock())
    const done = await waiting
    assert.equal(done.status, 'committed')
    assert.equal(done.height, 1)
    assert.equal((await c.getBlock(1))?.height, 1)
    assert.equal((await c.getValidators()).length, 1)
    const answers = await c.batch([{ method: 'node_status' }, { method: 'nope' }, { method: 'ledger_getBalance', params: [a] }])
    assert.equal(answers[0]!.ok, true)
    assert.equal(answers[1]!.ok, false)
    assert.equal(!answers[1]!.ok && answers[1]!.error.code, -32601)
    assert.deepEqual(answers[2], { ok: true, result: '999997' })
  })

  test('a dead first endpoint: the second answers, and is kept for the next call', async () => {
    const dead = await deadEndpoint()
    const c = new RpcClient({ endpoints: [dead, h2.url], timeoutMs: 2000, retries: 0 })
    assert.equal((await c.status()).chainId, 'tally-test')
    assert.equal(c.endpoint, h2.url)
  })

  test('a silent endpoint times out and the next answers', async () => {
    const silent = await silentEndpoint()
    try {
      const c = new RpcClient({ endpoints: [silent.url, h1.url], timeoutMs: 300, retries: 0 })
      const started = Date.now()
      assert.equal((await c.status()).chainId, 'tally-test')
      assert.ok(Date.now() - started >= 250)
    } finally {
      await silent.close()
    }
  })

  test('all endpoints dead: one error naming every endpoint tried', async () => {
    const d1 = await deadEndpoint()
    const silent = await silentEndpoint()
    try {
      const c = new RpcClient({ endpoints: [d1, silent.url], timeoutMs: 200, retries: 1, backoffMs: 10 })
      await assert.rejects(c.status(), (e: unknown) => {
        assert.ok(e instanceof RpcUnreachableError)
        assert.ok(e.message.includes(d1), e.message)
        assert.ok(e.message.includes(silent.url), e.message)
        assert.match(e.message, /ECONNREFUSED/)
        assert.match(e.message, /timed out/)
        assert.equal(e.attempts.length, 4, 'two rounds over two endpoints')
        return true
      })
    } finally {
      await silent.close()
    }
  })

  test('application errors are final: no failover', async () => {
    const before2 = await countCalls(h2)
    const c = new RpcClient({ endpoints: [h1.url, h2.url] })
    const bad = createTransfer(aliceSeed, {
      chainId: 'tally-test',
      to: bobAddress,
      amount: 10n ** 15n,
      nonce: await c.getNextNonce(formatAddress(aliceAddress)),
    })
    await assert.rejects(c.submitTx(to0x(bad.bytes)), (e: unknown) => {
      assert.ok(e instanceof RpcError)
      assert.equal(e.reason, 'insufficient_funds')
      assert.equal(e.code, -32003)
      assert.equal(e.endpoint, h1.url)
      return true
    })
    await assert.rejects(c.call('no_such_method'), (e: unknown) => e instanceof RpcError && e.code === -32601)
    assert.equal(await countCalls(h2), before2, 'the second endpoint was never asked')
  })

  test('rejects endpoints that are not http URLs', () => {
    assert.throws(() => new RpcClient({ endpoints: [] }), RangeError)
    assert.throws(() => new RpcClient({ endpoints: ['ftp://x'] }), RangeError)
    assert.throws(() => new RpcClient({ endpoints: ['not a url'] }), RangeError)
  })
})

test('an answer larger than maxResponseBytes is a failed exchange: the next endpoint answers', async () => {
  const h = await startHarness()
  // a chunked answer with no length: it must be cut off while streaming, not buffered whole
  const flood = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let sent = 0
    const pump = () => {
      while (sent < 64 && res.write(chunk)) sent++
      if (sent < 64) res.once('drain', pump)
      else res.end('{}')
    }
    pump()
  })
  await new Promise<void>((r) => flood.listen(0, '127.0.0.1', () => r()))
  const floodUrl = `http://127.0.0.1:${(flood.address() as { port: number }).port}`
  try {
    const c = new RpcClient({ endpoints: [floodUrl, h.url], maxResponseBytes: 1024 * 1024, retries: 0 })
    assert.equal((await c.status()).chainId, 'tally-test')
    assert.equal(c.endpoint, h.url)
    const only = new RpcClient({ endpoints: [floodUrl], maxResponseBytes: 1024 * 1024, retries: 0 })
    await assert.rejects(only.status(), (e: unknown) => e instanceof RpcUnreachableError && /answer larger than 1048576 bytes/.test(e.message))
  } finally {
    flood.closeAllConnections()
    await new Promise<void>((r) => flood.close(() => r()))
    await h.close()
  }
})

test('calls reuse one kept-alive connection; an answer cut off mid-body is a failed exchange', async () => {
  let connections = 0
  let cut = false
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const { id } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number }
      const body = JSON.stringify({ jsonrpc: '2.0', id, result: { chainId: 'kept' } })
      if (cut) {
        // promise the whole answer, send half of it, then drop the connection
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.write(body.slice(0, 10), () => res.destroy())
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  server.on('connection', () => connections++)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  try {
    const c = new RpcClient({ endpoints: [url], retries: 0 })
    for (let i = 0; i < 5; i++) assert.equal((await c.call<{ chainId: string }>('node_status')).chainId, 'kept')
    assert.equal(connections, 1)
    cut = true
    await assert.rejects(c.status(), (e: unknown) => e instanceof RpcUnreachableError && /ECONNRESET|answer cut off/.test(e.message))
  } finally {
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  }
})
