import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import WebSocket from 'ws'
import { ONE_ADDRESS, refusals, startHarness, waitFor } from './harness.js'

/** WebSocket refusals are counted for the operator as HTTP ones are (`tally_rpc_refused_total`). */
test('WebSocket connections past the limit are refused and counted', async () => {
  const h = await startHarness({ wsMaxConnections: 1 })
  const open: WebSocket[] = []
  try {
    const url = `${h.url.replace('http', 'ws')}/ws`
    const status = () =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url)
        open.push(ws)
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.once('open', () => resolve(101))
        ws.once('error', () => resolve(-1))
      })
    assert.equal(await status(), 101)
    assert.equal(await status(), 503)
    assert.equal(await status(), 503)
    assert.deepEqual(await refusals(h.metrics), { ws_connections: 2 })
  } finally {
    for (const ws of open) ws.terminate()
    await h.close()
  }
})

test('a WebSocket answer past the budget of answers held is busy, and counted', async () => {
  const h = await startHarness({ ...ONE_ADDRESS, maxResponseBytesInFlight: 24 << 20, responseStallMs: 60_000 })
  const u = new URL(h.url)
  const stalled = connect(Number(u.port), u.hostname)
  stalled.on('error', () => {
    /* reset when the server closes it */
  })
  let ws: WebSocket | undefined
  try {
    // ten blocks of ~2 MB of transaction hex each: a batch asking for all of them is answered with ~20 MB
    const bulk = Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
    for (let i = 0; i < 10; i++) h.backend.commitBlock(bulk)
    const batch = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'chain_getBlock', params: [i + 1] })))
    // an HTTP client asks for it and reads nothing: its answer holds most of the budget
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()))
    stalled.pause()
    stalled.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`)
    await waitFor(() => stalled.readableLength > 0, 10_000, 'the answer on its way to the stalled client')
    const client = new WebSocket(`${h.url.replace('http', 'ws')}/ws`)
    ws = client
    const messages: { error?: { data?: { reason?: string; detail?: string } } }[] = []
    client.on('message', (d) => messages.push(JSON.parse(String(d))))
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve())
      client.once('error', reject)
    })
    client.send(batch)
    await waitFor(() => messages.length > 0, 10_000, 'an answer over the WebSocket')
    assert.deepEqual([messages[0]!.error?.data?.reason, messages[0]!.error?.data?.detail], ['busy', 'node'])
    assert.deepEqual(await refusals(h.metrics), { answers_node: 1 })
  } finally {
    ws?.terminate()
    stalled.destroy()
    await h.close()
  }
})
