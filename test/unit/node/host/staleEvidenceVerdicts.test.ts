import assert from 'node:assert/strict'
import { test } from 'node:test'
import { HostWorld, type TestHost } from './hostFixture.js'

/** The evidence items a host broadcast on the consensus gossip. */
function broadcastEvidence(t: TestHost): Uint8Array[] {
  return t.sent.flatMap((s) => (s.gossip.kind === 'evidence' ? [s.gossip.evidence] : []))
}

test('submitted evidence: pending evidence that aged out of the window does not make fresh evidence of its offender known', async () => {
  // a full node with a window of two heights: it never proposes, so nothing drops its pending evidence by age
  const w = new HostWorld({ validators: 4 })
  const t = await w.boot({ self: null, host: { evidence: { maxPerBlock: 8, maxAgeHeights: 2 } } })
  await w.until(() => t.host.height === 1, 'height 1')
  // validator 3 equivocated in four rounds of height 1: the most pending items one offender may have
  for (let round = 0; round < 4; round++) assert.equal(await t.host.submitEvidence(w.equivocation(3, 1, round)), 'new')
  // the chain goes on without committing them (its proposers never had them) until they are past the window
  for (const b of await w.chain(6)) {
    const c = await t.host.checkSyncedBlock(b.height, b.stored, b.certificate)
    assert.ok(c.ok, c.ok ? '' : c.error.reason)
    assert.equal(await t.host.applySyncedBlock(c.value), true)
    await w.until(() => t.host.height === b.height + 1, `height ${b.height + 1} started`)
  }
  const h = t.host.height
  assert.equal(h, 7)
  for (let round = 0; round < 4; round++) {
    const stale = await t.host.submitEvidence(w.equivocation(3, 1, round))
    assert.equal(typeof (stale as { expired?: string }).expired, 'string', 'the old items no block may carry')
  }
  // the same validator signs two prevotes at the height the node decides: a new equivocation, within the window
  const sent = broadcastEvidence(t).length
  const fresh = await t.host.submitEvidence(w.equivocation(3, h, 0))
  assert.equal(fresh, 'new', 'evidence no block can carry any more stands in for fresh evidence that was not kept')
  assert.equal(broadcastEvidence(t).length, sent + 1, 'the fresh evidence is gossiped')
  t.stop()
  assert.deepEqual(t.fatal, [])
})
