import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeEvidence } from '../../../../consensus/index.js'
import { bytesEqual, encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { consensusGossipHostDependencies } from '../../../../node/host/hostWiring.js'
import { silentLogger } from '../../../../node/logger.js'
import { consensusGossipHandler } from '../../../../node/sync/consensusGossip.js'
import { encodeEvidenceMessage } from '../../../../node/sync/consensusMessages.js'
import { BLOCK_LIMITS, CHAIN_ID, HostWorld, type TestHost } from './hostFixture.js'

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

/** Evidence that validator `i` prevoted two values at (height, round), the second signature spoilt. */
function spoilt(w: HostWorld, i: number, height: number, round: number): Uint8Array {
  const first = w.vote(i, 'prevote', height, round, sha256(encodeCanonical(['one', height, round])))
  const second = w.vote(i, 'prevote', height, round, sha256(encodeCanonical(['two', height, round])))
  const signature = new Uint8Array(second.signature)
  signature[0]! ^= 1
  return encodeEvidence({ kind: 'conflictingVotes', first, second: { ...second, signature } })
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
    // beyond the height this node has reached: ahead (an honest client may be ahead of it), nothing kept, and not
    // sent; its signatures are not checked (the set of its height may not be known here), so a forged one is ahead too
    assert.equal(await t.host.submitEvidence(w.equivocation(2, 5, 0)), 'ahead')
    assert.equal(await t.host.submitEvidence(forged(w, 2, 1, 5, 0)), 'ahead')
    assert.equal(await t.host.submitEvidence(w.equivocation(2, 5, 0)), 'ahead', 'nothing of it was kept')
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

/** A host that holds all the power, deciding alone, with an evidence window of two heights, at height 6 or above. */
async function pastTheWindow(): Promise<{ w: HostWorld; t: TestHost }> {
  const w = new HostWorld({ validators: 1 })
  const t = await w.boot({ self: 0, host: { evidence: { maxPerBlock: 8, maxAgeHeights: 2 } } })
  await w.until(() => t.host.height >= 6, 'height 6')
  return { w, t }
}

test('submitted evidence: older than the evidence window it is expired, with its height and the window, and not sent', async () => {
  const { w, t } = await pastTheWindow()
  const h = t.host.height
  // the oldest height a block of height h may still carry evidence of
  assert.equal(await t.host.submitEvidence(w.equivocation(0, h - 2, 0)), 'new')
  const sent = broadcastEvidence(t).length
  const old = await t.host.submitEvidence(w.equivocation(0, h - 3, 0))
  assert.equal(typeof old, 'object', `expected an expiry, got ${JSON.stringify(old)}`)
  const detail = (old as { expired?: string }).expired
  assert.match(String(detail), new RegExp(`height ${h - 3}\\b`), 'names the height of the evidence')
  assert.match(String(detail), /2 heights/, 'names the window')
  assert.match(String(detail), new RegExp(`height ${h}\\b`), 'names the height the node decides')
  // decided before its signatures are checked: a forged one is expired too, not invalid
  const forgedOld = await t.host.submitEvidence(spoilt(w, 0, h - 3, 1))
  assert.equal(typeof (forgedOld as { expired?: string }).expired, 'string', JSON.stringify(forgedOld))
  assert.equal(broadcastEvidence(t).length, sent, 'nothing expired was broadcast')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('evidence from a peer that this node cannot judge, above its height or older than its window, costs the peer nothing', async () => {
  const { w, t } = await pastTheWindow()
  const admit = consensusGossipHandler({
    ...consensusGossipHostDependencies(
      t.host,
      { notePeerHeight: () => undefined, request: () => undefined },
      { chainId: CHAIN_ID, maxTxs: BLOCK_LIMITS.maxTxs },
    ),
    logger: silentLogger(),
  })
  const h = t.host.height
  const ask = (evidence: Uint8Array) => admit(encodeEvidenceMessage(evidence), 'peer')
  assert.equal(await ask(w.equivocation(0, h + 1, 0)), 'ignore', 'above its height')
  assert.equal(await ask(spoilt(w, 0, h + 1, 1)), 'ignore', 'above its height, forged (not checked)')
  assert.equal(await ask(w.equivocation(0, h - 3, 0)), 'ignore', 'older than the window')
  assert.equal(await ask(spoilt(w, 0, h - 3, 1)), 'ignore', 'older than the window, forged (not checked)')
  // within the window the same forgery is judged, and held against the peer
  assert.equal(await ask(spoilt(w, 0, h - 1, 1)), 'reject', 'a forgery within the window')
  assert.equal(await ask(w.equivocation(0, h - 1, 0)), 'accept', 'new evidence within the window')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('submitted evidence: committed evidence older than the window is known, not expired', async () => {
  const { w, t } = await pastTheWindow()
  const e = w.equivocation(0, t.host.height - 1, 0)
  assert.equal(await t.host.submitEvidence(e), 'new')
  await w.until(() => t.committed.some((c) => c.block.evidence.some((x) => bytesEqual(x, e))), 'a block that carries the evidence')
  const at = t.host.height - 1
  await w.until(() => t.host.height > at + 3, 'the evidence out of the window')
  assert.equal(await t.host.submitEvidence(e), 'known')
  t.stop()
  assert.deepEqual(t.fatal, [])
})
