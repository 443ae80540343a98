import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BLOCK_PROTOCOL } from '../../../../node/sync/blockSync.js'
import { decodeBlockResponse, encodeHeightRequest } from '../../../../node/sync/blockSyncMessages.js'
import { blockServer, limits } from './syncFixture.js'

/**
 * A node syncing from a peer that does not serve ranges (or whose range request failed `unreachable`) asks it one
 * height per request: up to `window` (8 in a node's settings) per range, with `range.inFlight` (3) ranges and the
 * height waited for out at once, so up to 32 single-height requests at once. A holder that answers some of them "no
 * block" makes the requester drop its tip (`noBlock`) and penalize it at the next such answer after a poll: an
 * honest peer must serve what an honest requester asks at once.
 */

test('an honest node asking its window of single heights for each range at once is served every block', async () => {
  const handlers = await blockServer({ tip: 32, options: { window: 8 }, sleep: async () => {} })
  const single = handlers.get(BLOCK_PROTOCOL)!
  // the height waited for and three ranges ahead, each asked as its window of eight single heights
  const answers = await Promise.all(Array.from({ length: 32 }, (_, i) => single(encodeHeightRequest(i + 1), 'syncing')))
  const unserved = answers
    .map((a, i) => ({ height: i + 1, d: decodeBlockResponse(a, limits) }))
    .filter(({ d }) => !d.ok || d.value === null)
    .map(({ height }) => height)
  assert.deepEqual(unserved, [], `heights answered "no block" though held: ${unserved.join(' ')}`)
  // far more at once than any syncing node sends: those past the bound are answered busy (an error answer, which its
  // sender counts as no missing block and no fault), never "no block"
  const flood = await Promise.allSettled(Array.from({ length: 80 }, (_, i) => single(encodeHeightRequest((i % 32) + 1), 'flooding')))
  const busy = flood.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
  assert.equal(busy.length, 16, `${busy.length} of 80 refused`)
  assert.ok(
    busy.every((reason) => reason.includes('busy')),
    busy[0],
  )
  for (const r of flood)
    if (r.status === 'fulfilled') assert.equal((decodeBlockResponse(r.value, limits) as { ok: boolean; value: unknown }).value !== null, true)
})
