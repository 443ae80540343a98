import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { sha256 } from '../../../crypto/hash.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { TestChain, testKey } from '../rpc/light/testChain.js'

/** The chain store's key of a record: its one-byte prefix, then the bytes. */
function key(prefix: number, bytes: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + bytes.byteLength)
  k[0] = prefix
  k.set(bytes, 1)
  return k
}

test('getBlock: a height without its results record claims no outcome for a transaction the index does not hold', async () => {
  const alice = testKey('alice')
  const bob = addressFromPublicKey(testKey('bob').publicKey)
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 3n]] })
  // nonce 1 before nonce 0: it fails at height 1
  const tx = createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: bob, amount: 1n, nonce: 1n }).bytes
  await chain.commit([tx], { failing: true })
  assert.deepEqual((await chain.backendWith({}).getBlock(1))?.results, [{ ok: false, error: 'bad_nonce' }])
  // height 1 without its results record (0x52 + height) and without the transaction's index record (0x54 + hash)
  const height = new Uint8Array(8)
  height[7] = 1
  await chain.kv.write([
    { type: 'del', key: key(0x52, height) },
    { type: 'del', key: key(0x54, sha256(tx)) },
  ])
  const b = await chain.backendWith({}).getBlock(1)
  assert.equal(b?.txs.length, 1)
  assert.deepEqual(b?.results, [undefined], 'a failed transaction is not shown as applied')
})
