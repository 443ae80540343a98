import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey, formatAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { Metrics } from '../../../rpc/metrics.js'
import { RpcServer } from '../../../rpc/server.js'
import { checkAccountAnswer, checkBlockAnswer, checkTxAnswer } from '../../../rpc/light/proofs.js'
import { formatBlock } from '../../../rpc/format.js'
import { encodeEvidence } from '../../../consensus/index.js'
import { rpc, startHarness } from './harness.js'
import { TestChain, testKey } from './light/testChain.js'

/**
 * The proof options of the look-ups over HTTP (docs/rpc.md, "Proofs"): the answer's shape, the option's validation,
 * and nodes that cannot prove (no block yet, a backend without proofs).
 */

const alice = testKey('alice')
const aliceAddress = addressFromPublicKey(alice.publicKey)
const A = formatAddress(aliceAddress)

describe('proof options over JSON-RPC', () => {
  let chain: TestChain
  let server: RpcServer
  let txHash: string
  before(async () => {
    chain = await TestChain.create({ balances: [[aliceAddress, 500n]] })
    const tx = createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: new Uint8Array(20).fill(1), amount: 5n, nonce: 0n })
    txHash = to0x(tx.hash)
    await chain.commit([tx.bytes])
    await chain.commit()
    server = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend: chain.backend, metrics: new Metrics() })
    await server.start()
  })
  after(async () => {
    await server.stop()
  })

  const call = async (method: string, params: unknown) => (await rpc(server.url, { jsonrpc: '2.0', id: 1, method, params })).json

  test('ledger_getAccount and ledger_getBalance with {"proof": true}: the plain result, the proof, the block', async () => {
    const a = (await call('ledger_getAccount', [A, { proof: true }])).result
    assert.deepEqual(Object.keys(a), ['address', 'balance', 'nonce', 'proof', 'height', 'header', 'commit'])
    assert.deepEqual([a.address, a.balance, a.nonce, a.height], [A, '495', '1', 2])
    assert.equal(a.header.height, 2)
    assert.equal(a.commit.height, 2)
    assert.equal(a.commit.signatures.length, 4)
    assert.match(a.proof, /^0x[0-9a-f]+$/)
    assert.ok(checkAccountAnswer(aliceAddress, a, true).ok)
    const b = (await call('ledger_getBalance', [A, { proof: true }])).result
    assert.deepEqual(Object.keys(b), ['address', 'balance', 'proof', 'height', 'header', 'commit'])
    assert.ok(checkAccountAnswer(aliceAddress, b, false).ok)
    // named params, and the option off: the plain answers
    assert.equal((await call('ledger_getBalance', { address: A, options: { proof: true } })).result.balance, '495')
    assert.equal((await call('ledger_getBalance', [A, { proof: false }])).result, '495')
    assert.deepEqual((await call('ledger_getAccount', [A, null])).result, { address: A, balance: '495', nonce: '1' })
  })

  test('tx_get with {"proof": true}: committed with its inclusion proof; others plain', async () => {
    const t = (await call('tx_get', [txHash, { proof: true }])).result
    assert.deepEqual(Object.keys(t), ['hash', 'status', 'height', 'index', 'ok', 'proof', 'header', 'commit'])
    assert.deepEqual([t.status, t.height, t.index, t.ok, t.header.height], ['committed', 1, 0, true, 1])
    const c = checkTxAnswer(Buffer.from(txHash.slice(2), 'hex'), t)
    assert.ok(c.ok && c.value.status === 'committed')
    const unknown = `0x${'77'.repeat(32)}`
    assert.deepEqual((await call('tx_get', [unknown, { proof: true }])).result, { hash: unknown, status: 'unknown' })
  })

  test('the option is validated', async () => {
    for (const bad of [true, 'proof', [true], { proof: 'yes' }, { proof: true, extra: 1 }]) {
      const r = await call('ledger_getAccount', [A, bad])
      assert.equal(r.error?.code, -32602, JSON.stringify(bad))
      assert.match(r.error.message, /options/)
    }
  })

  test('no block yet, and a node without proofs: unavailable', async () => {
    const empty = await TestChain.create()
    const s = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend: empty.backend, metrics: new Metrics() })
    await s.start()
    try {
      const r = (await rpc(s.url, { jsonrpc: '2.0', id: 1, method: 'ledger_getAccount', params: [A, { proof: true }] })).json
      assert.equal(r.error.data.reason, 'unavailable')
      assert.match(r.error.message, /no block is committed yet/)
    } finally {
      await s.stop()
    }
    const h = await startHarness()
    try {
      for (const [method, param] of [
        ['ledger_getBalance', A],
        ['tx_get', `0x${'00'.repeat(32)}`],
      ] as const) {
        const r = (await rpc(h.url, { jsonrpc: '2.0', id: 1, method, params: [param, { proof: true }] })).json
        assert.equal(r.error.data.reason, 'unavailable', method)
        assert.match(r.error.message, /does not serve proofs/)
      }
    } finally {
      await h.close()
    }
  })
})

test('checkBlockAnswer: a block whose hash, transactions and evidence are its header’s; anything else refused', async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 100n]] })
  const tx = createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: addressFromPublicKey(testKey('bob').publicKey), amount: 1n, nonce: 0n })
  const block = await chain.commit([tx.bytes])
  const wire = async () => JSON.parse(JSON.stringify(formatBlock((await chain.backend.getBlock(block.height))!))) as Record<string, unknown>
  const good = checkBlockAnswer(await wire(), block.height)
  assert.ok(good.ok, good.ok ? '' : good.error.reason)
  assert.deepEqual([good.value.txs, good.value.evidence, to0x(good.value.block.hash)], [[tx.bytes], [], to0x(block.hash)])
  assert.ok(checkBlockAnswer(await wire()).ok, 'no height asked')
  const refused = async (change: (a: Record<string, unknown>) => void, reason: RegExp, height = block.height) => {
    const a = await wire()
    change(a)
    const r = checkBlockAnswer(a, height)
    assert.ok(!r.ok && reason.test(r.error.reason), r.ok ? 'accepted' : r.error.reason)
  }
  await refused(() => {}, /it answers with block 1, not 2/, block.height + 1)
  await refused((a) => {
    a.hash = to0x(new Uint8Array(32))
  }, /is not the header's/)
  await refused((a) => {
    a.txs = []
  }, /transactions are not those of header 1's transaction root/)
  await refused((a) => {
    ;(a.txs as Record<string, unknown>[])[0]!.raw = '0x00'
  }, /transactions are not those/)
  await refused((a) => {
    delete (a.txs as Record<string, unknown>[])[0]!.raw
  }, /txs\[0\]\.raw/)
  await refused((a) => {
    ;(a.txs as Record<string, unknown>[])[0]!.ok = false
  }, /reports transaction 0 failed/)
  // evidence the header's root does not hold, well formed or not
  const vote = (valueId: Uint8Array | null) => ({
    type: 'prevote' as const,
    height: 1,
    round: 0,
    valueId,
    validator: addressFromPublicKey(testKey('v0').publicKey),
    signature: new Uint8Array(64).fill(7),
  })
  const evidence = encodeEvidence({ kind: 'conflictingVotes', first: vote(new Uint8Array(32).fill(1)), second: vote(null) })
  await refused((a) => {
    a.evidence = [{ raw: to0x(evidence) }]
  }, /evidence is not that of header 1's evidence root/)
  await refused((a) => {
    a.evidence = [{ raw: '0x0102' }]
  }, /evidence\[0\]\.raw/)
})
