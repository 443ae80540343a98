import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryKvStore } from '../../../ledger/store.js'
import { kvStoreContract } from './kvStoreContract.js'

kvStoreContract('MemoryKvStore', async () => ({ store: new MemoryKvStore(), close: async () => {} }))

test('MemoryKvStore: a batch with an invalid op applies nothing', async () => {
  const s = new MemoryKvStore()
  const bad = [
    { type: 'put', key: new Uint8Array([1]), value: new Uint8Array([1]) },
    { type: 'put', key: new Uint8Array([2]), value: 'x' },
  ]
  await assert.rejects(s.write(bad as never))
  assert.equal(await s.get(new Uint8Array([1])), undefined)
  assert.equal(s.size, 0)
})
