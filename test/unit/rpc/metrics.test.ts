import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Metrics } from '../../../rpc/metrics.js'

const counts = async (m: Metrics) => Object.fromEntries((await m.rpcRequests.get()).values.map((v) => [`${v.labels.method}/${v.labels.outcome}`, v.value]))

test('countRpcCall counts by method and outcome, whenever the counter is read', async () => {
  const m = new Metrics()
  assert.deepEqual(await counts(m), {})
  m.countRpcCall('tx_submit', 'ok')
  m.countRpcCall('tx_submit', 'ok')
  m.countRpcCall('tx_submit', 'error')
  m.countRpcCall('unknown', 'method_not_found')
  assert.deepEqual(await counts(m), { 'tx_submit/ok': 2, 'tx_submit/error': 1, 'unknown/method_not_found': 1 })
  // reading again adds nothing; later calls add up with earlier ones and with increments made on the counter itself
  assert.deepEqual(await counts(m), { 'tx_submit/ok': 2, 'tx_submit/error': 1, 'unknown/method_not_found': 1 })
  m.countRpcCall('tx_submit', 'ok')
  m.rpcRequests.inc({ method: 'tx_submit', outcome: 'ok' })
  const text = await m.registry.metrics()
  assert.match(text, /^tally_rpc_requests_total\{method="tx_submit",outcome="ok"\} 4$/m)
  assert.match(text, /^tally_rpc_requests_total\{method="tx_submit",outcome="error"\} 1$/m)
  assert.match(text, /^tally_rpc_requests_total\{method="unknown",outcome="method_not_found"\} 1$/m)
})

test('two Metrics keep separate counts', async () => {
  const a = new Metrics()
  const b = new Metrics()
  a.countRpcCall('node_status', 'ok')
  assert.deepEqual(await counts(a), { 'node_status/ok': 1 })
  assert.deepEqual(await counts(b), {})
})

test('the transaction gossip counters report its counts as they are when the metrics are read', async () => {
  const m = new Metrics()
  const stats = { batchesSent: 0, txsSent: 0 }
  m.trackTxGossip({ stats })
  stats.batchesSent = 3
  stats.txsSent = 40
  let text = await m.registry.metrics()
  assert.match(text, /tally_tx_gossip_batches_sent_total 3\n/)
  assert.match(text, /tally_tx_gossip_txs_sent_total 40\n/)
  stats.batchesSent = 5
  stats.txsSent = 41
  text = await m.registry.metrics()
  assert.match(text, /tally_tx_gossip_batches_sent_total 5\n/)
  assert.match(text, /tally_tx_gossip_txs_sent_total 41\n/)
})
