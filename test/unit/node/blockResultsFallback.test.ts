import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { TestChain, testKey } from '../rpc/light/testChain.js'

/**
 * A height stored without its results record (by a build before it) is answered from the transactions' index, whose
 * record of a hash is that of its latest inclusion: a transaction that failed (its nonce not consumed) and applied at a
 * later height has that later outcome there, not the one of the height asked.
 */

test("getBlock: a height without its results record never answers a later height's outcome for a transaction", {}, async () => {
  const alice = testKey('alice')
  const bob = addressFromPublicKey(testKey('bob').publicKey)
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 3n]] })
  const transfer = (nonce: number) => createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: bob, amount: 1n, nonce: BigInt(nonce) }).bytes
  // nonce 1 before nonce 0: it fails at height 1, then the same bytes apply at height 2
  await chain.commit([transfer(1)], { failing: true })
  await chain.commit([transfer(0), transfer(1)])
  const failed = [{ ok: false, error: 'bad_nonce' }]
  assert.deepEqual((await chain.backendWith({}).getBlock(1))?.results, failed)
  const record = new Uint8Array(9)
  record[0] = 0x52
  record[8] = 1
  await chain.kv.write([{ type: 'del', key: record }])
  const results = (await chain.backendWith({}).getBlock(1))?.results
  assert.notDeepEqual(results?.[0], { ok: true }, 'the transaction did not apply at height 1')
  // it applied later, so it failed here, for a reason the index no longer holds
  assert.deepEqual(results, [{ ok: false }])
})

test('getBlock: a height without its results record leaves out the result of a transaction that failed again later', async () => {
  const alice = testKey('alice')
  const bob = addressFromPublicKey(testKey('bob').publicKey)
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 3n]] })
  const transfer = (nonce: number) => createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: bob, amount: 1n, nonce: BigInt(nonce) }).bytes
  // nonce 1 fails at height 1 and again at height 2: the index says only the second
  await chain.commit([transfer(1)], { failing: true })
  await chain.commit([transfer(1)], { failing: true })
  const record = new Uint8Array(9)
  record[0] = 0x52
  record[8] = 1
  await chain.kv.write([{ type: 'del', key: record }])
  const b = await chain.backendWith({}).getBlock(1)
  assert.deepEqual(b?.results, [undefined])
  assert.equal(b?.txs.length, 1)
})
