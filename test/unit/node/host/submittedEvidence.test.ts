import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeEvidence } from '../../../../consensus/index.js'
import { bytesEqual, encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { HostWorld, type TestHost } from './hostFixture.js'

/** The evidence items a host broadcast on the consensus gossip. */
function broadcastEvidence(t: TestHost): Uint8Array[] {
  return t.sent.flatMap((s) => (s.gossip.kind === 'evidence' ? [s.gossip.evidence] : []))
}

/** Evidence of validator `i` at (height, round) whose second prevote carries validator `j`'s signature. */
function forged(w: HostWorld, i: number, j: number, height: number, round: number): Uint8Array {
  const first = w.vote(i, 'prevote', height, round, sha256(encodeCanonical(['first', height, round])))
  const other = w.vote(j, 'prevote', height, round, sha256(encodeCanonical(['second', height, round])))
  return encodeEvidence({ kind: 'conflictingVotes', first, second: { ...other, validator: first.validator } })
}

for (const self of [0, null]) {
  const who = self === null ? 'a full node' : 'a validator'
  test(`submitted evidence: ${who} admits it as evidence from a peer and broadcasts it to its peers when new`, async () => {
    const w = new HostWorld({ validators: 4 })
    const t = await w.boot({ self })
    await w.until(() => t.host.height === 1, 'height 1')
    const e = w.equivocation(3, 1, 0)
    assert.equal(await t.host.submitEvidence(e), 'new')
    assert.equal(broadcastEvidence(t).length, 1, 'broadcast once')
    assert.ok(bytesEqual(broadcastEvidence(t)[0]!, e), 'the submitted bytes go out as they came')
    // a peer that receives the broadcast takes it as new evidence
    const peer = await w.boot({ self: 1 })
    await w.until(() => peer.host.height === 1, 'the peer at height 1')
    assert.equal(await peer.host.admitEvidence(broadcastEvidence(t)[0]!), 'new')
    // held already: known, and not sent again
    assert.equal(await t.host.submitEvidence(e), 'known')
    // one whose signature does not verify: invalid, and not sent
    const bad = await t.host.submitEvidence(forged(w, 2, 1, 1, 0))
    assert.equal(typeof bad, 'object')
    assert.match((bad as { invalid: string }).invalid, /signature does not verify/)
    // beyond the height this node has reached: known (an honest client may be ahead of it), and not sent
    assert.equal(await t.host.submitEvidence(w.equivocation(2, 5, 0)), 'known')
    assert.equal(broadcastEvidence(t).length, 1, 'only the new evidence was broadcast')
    t.stop()
    peer.stop()
    assert.deepEqual([...t.fatal, ...peer.fatal], [])
  })
}

test('submitted evidence: the next block carries it, and it is known once committed', async () => {
  // a validator that holds all the power decides alone; its own equivocation at height 1 is submitted by a client
  const w = new HostWorld({ validators: 1 })
  const t = await w.boot({ self: 0 })
  await w.until(() => t.committed.length >= 1, 'the first block')
  const e = w.equivocation(0, 1, 0)
  assert.equal(await t.host.submitEvidence(e), 'new')
  await w.until(() => t.committed.some((c) => c.block.evidence.some((x) => bytesEqual(x, e))), 'a block that carries the evidence')
  const carrier = t.committed.find((c) => c.block.evidence.some((x) => bytesEqual(x, e)))!
  assert.ok(carrier.height >= 2)
  assert.equal(await t.host.submitEvidence(e), 'known', 'committed evidence is known')
  t.stop()
  assert.deepEqual(t.fatal, [])
})
