import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { BlockInfo } from '../../../rpc/backend.js'
import { BLOCK_TXS_PER_TURN, formatBlock, writeBlockJson } from '../../../rpc/format.js'

/** A `chain_getBlock` answer made a part at a time is the text of the answer made at once, whatever the block holds. */

async function written(b: BlockInfo): Promise<string> {
  let text = ''
  await writeBlockJson(b, (piece) => {
    text += piece
  })
  return text
}

test('writeBlockJson: a block of more than one turn of transactions whose commit formats to nothing is that text', {}, async () => {
  const n = BLOCK_TXS_PER_TURN + 1
  const b: BlockInfo = {
    height: 1,
    hash: new Uint8Array(32),
    header: { chainId: 'c', height: 1 },
    txs: Array.from({ length: n }, (_, i) => new Uint8Array([i & 0xff, 1, 2])),
    commit: undefined,
  }
  const text = await written(b)
  assert.doesNotThrow(() => JSON.parse(text), 'the answer is JSON')
  assert.equal(text, JSON.stringify(formatBlock(b)))
})
