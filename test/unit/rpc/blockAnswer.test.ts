import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_BLOCK_TXS } from '../../../ledger/block.js'
import { formatBlock } from '../../../rpc/format.js'
import { checkBlockAnswer } from '../../../rpc/light/proofs.js'
import { TestChain } from './light/testChain.js'

/** What bounds the work of checking a `chain_getBlock` answer (rpc/light/proofs.ts, checkBlockAnswer). */

test('checkBlockAnswer: more transactions than a block may hold are refused as malformed, before any is hashed', async () => {
  const chain = await TestChain.create()
  const block = await chain.commit()
  const answer = JSON.parse(JSON.stringify(formatBlock((await chain.backend.getBlock(block.height))!))) as Record<string, unknown>
  answer.txs = Array.from({ length: MAX_BLOCK_TXS + 1 }, () => ({ raw: '0x' }))
  const r = checkBlockAnswer(answer, block.height)
  assert.ok(!r.ok, 'accepted')
  assert.equal(r.error.code, 'malformed', r.error.reason)
})

test('checkBlockAnswer: the reason a refusal gives is short, however long what the endpoint sent', async () => {
  const chain = await TestChain.create()
  const block = await chain.commit()
  const answer = JSON.parse(JSON.stringify(formatBlock((await chain.backend.getBlock(block.height))!))) as Record<string, unknown>
  answer.hash = `0x${'ab'.repeat(100_000)}`
  const r = checkBlockAnswer(answer, block.height)
  assert.ok(!r.ok, 'accepted')
  assert.ok(r.error.reason.length <= 1000, `a reason of ${r.error.reason.length} characters`)
})
