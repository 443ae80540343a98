import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'

/** The chain records of a height: a block's results kept as one record of its failures. */

function committed(height: number, receipts: { ok: boolean; code?: string }[]) {
  return {
    height,
    blockHash: new Uint8Array(32).fill(height),
    blockTime: 1000 * height,
    blockBytes: new Uint8Array([height]),
    certificateBytes: new Uint8Array([height]),
    txHashes: receipts.map((_, i) => new Uint8Array(32).fill(16 * height + i)),
    receipts,
  }
}

test("blockResults: a height's results as committed, in block order; none for a height without the record", async () => {
  const kv = new MemoryKvStore()
  const chain = new ChainStore(kv)
  const receipts = [{ ok: true }, { ok: false, code: 'bad_nonce' }, { ok: true }, { ok: false, code: 'insufficient_funds' }]
  await kv.write([...chain.commitOps(committed(1, receipts)), ...chain.commitOps(committed(2, []))])
  assert.deepEqual(await chain.blockResults(1, 4), receipts)
  assert.deepEqual(await chain.blockResults(2, 0), [])
  assert.equal(await chain.blockResults(3, 0), undefined)
  // the same as each transaction's own record says
  const locations = await chain.txLocations(committed(1, receipts).txHashes)
  assert.deepEqual(
    locations.map((l) => (l?.ok ? { ok: true } : { ok: false, code: l?.code })),
    receipts,
  )
})

test('blockResults: a record that does not fit the block is refused as corrupt, never read as results', async () => {
  const kv = new MemoryKvStore()
  const chain = new ChainStore(kv)
  const key = new Uint8Array(9)
  key[0] = 0x52
  key[8] = 1
  for (const record of [
    encodeCanonical([[4, 'bad_nonce']]), // an index past the block's transactions
    encodeCanonical([
      [2, 'bad_nonce'],
      [1, 'bad_nonce'],
    ]), // out of order
    encodeCanonical([[1]]),
    encodeCanonical(7),
    new Uint8Array([0xc1]),
  ]) {
    await kv.write([{ type: 'put', key, value: record }])
    await assert.rejects(chain.blockResults(1, 4), /corrupt results record of height 1/)
  }
})
