import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BLOCKS_PROTOCOL } from '../../../../node/sync/blockSync.js'
import { encodeRangeRequest } from '../../../../node/sync/blockSyncMessages.js'
import { blockServer } from './syncFixture.js'

/**
 * The budget of bytes of blocks served to one peer a second must hold whatever the number of its requests at once.
 * A peer that resets each request's stream as soon as it is sent frees its stream slot (libp2p counts the open streams
 * of a protocol) while the handler keeps running, so the number of its requests being served is not bounded by
 * `RANGE_STREAMS_PER_PEER`: requests that each pass the budget's check before any of them is charged are all served,
 * and requests that find it owed all wait for the same moment and are then all served at once.
 */

test('the budget of blocks served to one peer holds for requests that arrive at once', async () => {
  let now = 0
  const rate = 10_000
  const handlers = await blockServer({
    options: { serveBytesPerSecond: rate },
    now: () => now,
    // virtual time: a wait ends at its deadline on this clock, which moves by nothing else
    sleep: async (ms) => {
      const until = now + ms
      await new Promise((resolve) => setImmediate(resolve))
      now = Math.max(now, until)
    },
  })
  const ranges = handlers.get(BLOCKS_PROTOCOL)!
  const request = encodeRangeRequest({ from: 1, count: 5, maxBytes: 1 << 20 })
  // three waves of 40 requests at once, each wave sent as the previous one is answered; bytes served by virtual instant
  const servedAt = new Map<number, number>()
  let largest = 0
  for (let wave = 0; wave < 3; wave++) {
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const a = await ranges(request, 'x')
        servedAt.set(now, (servedAt.get(now) ?? 0) + a.byteLength)
        largest = Math.max(largest, a.byteLength)
      }),
    )
  }
  // at once: the burst of twice a second's worth, and an answer per stream a peer holds open (RANGE_STREAMS_PER_PEER)
  const bound = 2 * rate + 4 * largest
  for (const [at, bytes] of servedAt) assert.ok(bytes <= bound, `${bytes} bytes served at once at ${at} ms, at ${rate} bytes a second (bound ${bound})`)
})
