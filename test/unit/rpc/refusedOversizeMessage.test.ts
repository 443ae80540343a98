import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import { refusals, startHarness } from './harness.js'

/** A WebSocket client of `url`, open, whose close the server may cause (its error event is expected then). */
async function openClient(url: string): Promise<WebSocket> {
  const client = new WebSocket(`${url.replace('http', 'ws')}/ws`)
  client.on('error', () => {
    /* the server closes the connection */
  })
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve())
    client.once('error', reject)
  })
  return client
}

/**
 * A WebSocket message past `wsMaxMessageBytes` is refused (the connection closes with 1009) before any call of it
 * runs, as an HTTP body past `maxBodyBytes` is (413, counted as `body_too_large`): the operator sees it in
 * `tally_rpc_refused_total` too.
 */
test('a WebSocket message past wsMaxMessageBytes is counted as a refusal', async () => {
  const h = await startHarness({ wsMaxMessageBytes: 2048 })
  let ws: WebSocket | undefined
  try {
    const client = await openClient(h.url)
    ws = client
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)))
    client.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_getBlock', params: ['x'.repeat(4096)] }))
    assert.equal(await closed, 1009)
    const counted = Object.values(await refusals(h.metrics)).reduce((a, b) => a + b, 0)
    assert.equal(counted, 1, `refusals counted: ${JSON.stringify(await refusals(h.metrics))}`)
  } finally {
    ws?.terminate()
    await h.close()
  }
})

/** Requests past the ones a WebSocket connection may have waiting (64) close it (1008) before they run: a refusal. */
test('a WebSocket connection closed for too many requests waiting is counted as a refusal', async () => {
  const h = await startHarness({})
  let ws: WebSocket | undefined
  try {
    const client = await openClient(h.url)
    ws = client
    const closed = new Promise<{ code: number; reason: string }>((resolve) => client.once('close', (code, reason) => resolve({ code, reason: String(reason) })))
    // one burst in one write, taken in before any of its requests has run
    const socket = (client as unknown as { _socket: import('node:net').Socket })._socket
    socket.cork()
    for (let i = 0; i < 200; i++) client.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'chain_getBlock', params: [1] }))
    socket.uncork()
    const c = await closed
    assert.deepEqual([c.code, c.reason.includes('requests waiting')], [1008, true])
    const counted = Object.values(await refusals(h.metrics)).reduce((a, b) => a + b, 0)
    assert.equal(counted, 1, `refusals counted: ${JSON.stringify(await refusals(h.metrics))}`)
  } finally {
    ws?.terminate()
    await h.close()
  }
})
