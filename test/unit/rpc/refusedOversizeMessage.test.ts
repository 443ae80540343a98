import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import { refusals, startHarness } from './harness.js'

/**
 * A WebSocket message past `wsMaxMessageBytes` is refused (the connection closes with 1009) before any call of it
 * runs, as an HTTP body past `maxBodyBytes` is (413, counted as `body_too_large`): the operator sees it in
 * `tally_rpc_refused_total` too.
 */
test('a WebSocket message past wsMaxMessageBytes is counted as a refusal', {
  todo: 'the 1009 close for an oversized message is counted under no reason of tally_rpc_refused_total',
}, async () => {
  const h = await startHarness({ wsMaxMessageBytes: 2048 })
  let ws: WebSocket | undefined
  try {
    const client = new WebSocket(`${h.url.replace('http', 'ws')}/ws`)
    ws = client
    client.on('error', () => {
      /* the server closes the connection */
    })
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve())
      client.once('error', reject)
    })
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
