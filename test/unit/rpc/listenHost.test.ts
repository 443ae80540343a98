import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../../genesis/config.js'
import { startHarness } from './harness.js'

test('rpc.host as config.json allows it, a bracketed IPv6 address, is one the server listens on', async () => {
  const config = parseConfig({ rpc: { host: '[::1]', port: 0 } })
  assert.ok(config.ok, JSON.stringify(config))
  const h = await startHarness({ host: config.value.rpc.host, port: 0 })
  try {
    assert.match(h.url, /^http:\/\/\[::1\]:\d+$/)
    const r = await fetch(h.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_status', params: [] }),
    })
    assert.equal(r.status, 200)
    assert.ok(((await r.json()) as { result?: unknown }).result)
  } finally {
    await h.close()
  }
})
