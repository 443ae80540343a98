import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { formatAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { Rng } from '../../helpers/random.js'
import WebSocket from 'ws'
import { aliceAddress, aliceSeed, bobAddress, startHarness, waitFor } from './harness.js'

const METHODS = [
  'node_status',
  'ledger_getBalance',
  'ledger_getAccount',
  'ledger_getNextNonce',
  'tx_submit',
  'tx_get',
  'chain_getBlock',
  'chain_getValidators',
  'chain_getCommit',
  'chain_getPendingChanges',
  'chain_getEvidence',
  'evidence_submit',
  'chain_subscribe',
  'chain_unsubscribe',
  'rpc.discover',
  'nope',
  '',
]

function randomJson(rng: Rng, depth: number): unknown {
  const k = rng.int(depth > 3 ? 6 : 9)
  switch (k) {
    case 0:
      return null
    case 1:
      return rng.chance(0.5)
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 7])
    case 3:
      return rng.pick(['', '0x', `0x${'ab'.repeat(20)}`, `0X${'AB'.repeat(32)}`, 'newBlocks', 'tx', '\u0000', '𝄞'])
    case 4:
      return to0x(rng.bytes(rng.int(80)))
    case 5:
      return 'x'.repeat(rng.int(300))
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1))
    case 7: {
      const o: Record<string, unknown> = {}
      for (let i = rng.int(4); i > 0; i--)
        o[rng.pick(['jsonrpc', 'id', 'method', 'params', '__proto__', 'constructor', 'address', 'height'])] = randomJson(rng, depth + 1)
      return o
    }
    default:
      return {
        jsonrpc: rng.chance(0.9) ? '2.0' : randomJson(rng, depth + 1),
        method: rng.pick(METHODS),
        params: randomJson(rng, depth + 1),
        ...(rng.chance(0.8) ? { id: randomJson(rng, 3) } : {}),
      }
  }
}

/** Signed transfers with nonces 0, 1, 2, …, made once (signing is the slow part of building a body). */
const transfers = Array.from({ length: 200 }, (_, i) =>
  createTransfer(aliceSeed, { chainId: 'tally-test', to: bobAddress, amount: 1n + BigInt(i % 7), nonce: BigInt(i) }),
)

function validRequest(rng: Rng, nonce: bigint): string {
  const a = formatAddress(aliceAddress)
  const tx = transfers[Number(nonce) % transfers.length]!
  const reqs = [
    { jsonrpc: '2.0', id: rng.int(1000), method: 'ledger_getAccount', params: [a] },
    { jsonrpc: '2.0', id: 'x', method: 'tx_submit', params: [to0x(tx.bytes)] },
    { jsonrpc: '2.0', id: null, method: 'chain_getBlock', params: [rng.int(5)] },
    [
      { jsonrpc: '2.0', id: 1, method: 'node_status' },
      { jsonrpc: '2.0', method: 'tx_get', params: [to0x(tx.hash)] },
    ],
  ]
  return JSON.stringify(rng.pick(reqs))
}

function mutate(rng: Rng, text: string): string {
  const chars = [...text]
  for (let i = 1 + rng.int(4); i > 0; i--) {
    const at = rng.int(chars.length + 1)
    switch (rng.int(4)) {
      case 0:
        chars.splice(at, 1)
        break
      case 1:
        chars.splice(at, 0, rng.pick(['{', '}', '[', ']', '"', ',', ':', '\\', '0', 'e', '\u00ff']))
        break
      case 2:
        chars.splice(at, chars.length)
        break
      default:
        if (at < chars.length) chars[at] = String.fromCharCode(32 + rng.int(95))
    }
  }
  return chars.join('')
}

function checkResponse(r: unknown): void {
  assert.equal(typeof r, 'object')
  assert.notEqual(r, null)
  const o = r as Record<string, unknown>
  assert.equal(o.jsonrpc, '2.0')
  assert.ok('id' in o, 'response has an id')
  assert.ok(o.id === null || typeof o.id === 'string' || typeof o.id === 'number')
  assert.notEqual('result' in o, 'error' in o, 'exactly one of result and error')
  if ('error' in o) {
    const e = o.error as Record<string, unknown>
    assert.ok(Number.isInteger(e.code))
    assert.equal(typeof e.message, 'string')
    assert.ok(!String(e.message).includes('    at '), 'no stack trace')
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 })

/** POST over a keep-alive agent (much cheaper per request than fetch). */
function post(url: string, body: string | Uint8Array, type: string): Promise<{ status: number; text: string }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', agent, headers: type === '' ? {} : { 'content-type': type } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('fuzz: thousands of random and mutated bodies never break the server', async () => {
  const h = await startHarness({ maxBodyBytes: 16 * 1024, maxBatch: 20 })
  const rng = new Rng(20240601)
  let nonce = 0n
  const N = 2500
  const statuses = new Map<number, number>()
  try {
    const bodies: { body: string | Uint8Array; type: string }[] = []
    for (let i = 0; i < N; i++) {
      const kind = rng.int(10)
      let body: string | Uint8Array
      if (kind < 3) body = mutate(rng, validRequest(rng, nonce))
      else if (kind < 6) body = JSON.stringify(randomJson(rng, 0))
      else if (kind < 7) body = rng.bytes(rng.int(200))
      else if (kind < 8) body = '['.repeat(1 + rng.int(20_000))
      else if (kind < 9) body = JSON.stringify(Array.from({ length: rng.int(30) }, () => randomJson(rng, 1)))
      else {
        body = validRequest(rng, nonce)
        if (body.includes('tx_submit')) nonce++
      }
      bodies.push({ body, type: rng.chance(0.97) ? 'application/json' : rng.pick(['text/plain', '', 'application/json; charset=utf-8']) })
    }
    let next = 0
    const worker = async () => {
      while (next < bodies.length) {
        const { body, type } = bodies[next++]!
        const res = await post(h.url, body, type)
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
        const text = res.text
        assert.ok([200, 204, 413, 415].includes(res.status), `status ${res.status}`)
        if (res.status === 204) {
          assert.equal(text, '')
          continue
        }
        const json = JSON.parse(text) as unknown
        if (Array.isArray(json)) {
          assert.ok(json.length > 0, 'never an empty array')
          json.forEach(checkResponse)
        } else {
          checkResponse(json)
        }
      }
    }
    await Promise.all(Array.from({ length: 4 }, worker))
    assert.ok((statuses.get(200) ?? 0) > N / 2)
    const alive = await fetch(`${h.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_status' }),
    })
    assert.equal(((await alive.json()) as { result: { chainId: string } }).result.chainId, 'tally-test')
  } finally {
    agent.destroy()
    await h.close()
  }
})

test('fuzz: random messages over WebSocket get JSON-RPC answers and the connection stays up', async () => {
  const h = await startHarness({ maxBatch: 20 })
  const rng = new Rng(77)
  const ws = new WebSocket(`${h.url.replace('http', 'ws')}/ws`)
  const answers: unknown[] = []
  let closed = false
  ws.on('message', (d) => answers.push(JSON.parse(String(d))))
  ws.on('close', () => {
    closed = true
  })
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    const N = 600
    for (let i = 0; i < N; i++) {
      const k = rng.int(4)
      const text =
        k === 0
          ? mutate(rng, validRequest(rng, BigInt(i)))
          : k === 1
            ? JSON.stringify(randomJson(rng, 0))
            : k === 2
              ? JSON.stringify({ jsonrpc: '2.0', id: i, method: rng.pick(['chain_subscribe', 'chain_unsubscribe']), params: randomJson(rng, 1) })
              : Buffer.from(rng.bytes(rng.int(64))).toString('latin1')
      ws.send(text)
      if (i % 50 === 49) {
        // Let the server catch up: at most 64 requests may wait per connection.
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: `sync${i}`, method: 'node_status' }))
        await waitFor(() => answers.some((a) => (a as { id?: unknown }).id === `sync${i}`), 5000, 'sync answer')
      }
    }
    assert.equal(closed, false)
    for (const a of answers) {
      if (Array.isArray(a)) a.forEach(checkResponse)
      else if ((a as { method?: string }).method === 'chain_subscription') continue
      else checkResponse(a)
    }
    assert.ok(answers.length > 100)
  } finally {
    ws.terminate()
    await h.close()
  }
})
