import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_EVIDENCE_ENCODING_BYTES, encodeEvidence, encodeSignedVote } from '../../../consensus/index.js'
import { bytesEqual, compareBytes, encodeCanonical, sha256, to0x } from '../../../crypto/index.js'
import { MAX_EVIDENCE_BYTES } from '../../../ledger/block.js'
import { NodeBackend } from '../../../node/rpcBackend.js'
import type { RpcBackend } from '../../../rpc/backend.js'
import { Dispatcher } from '../../../rpc/dispatcher.js'
import { createMethods } from '../../../rpc/methods.js'
import { HostWorld, type TestHost } from './host/hostFixture.js'

/**
 * `evidence_submit` end to end inside one process: the JSON-RPC method over the node's backend over a consensus host,
 * with evidence signed by the test network's validators.
 */

const http = { transport: 'http' } as const

function backendOf(w: HostWorld, t: TestHost): NodeBackend {
  return new NodeBackend({
    genesis: w.genesis,
    moniker: 'm',
    chain: t.chain,
    tip: () => undefined,
    getAccount: (a) => t.ledger.getAccount(a),
    nextNonce: (a) => t.mempool.pendingNonce(a),
    submit: async () => ({ ok: false, error: { code: 'mempool_full', reason: 'not in this test' } }),
    pending: () => false,
    rejected: () => undefined,
    peerId: 'p',
    peerCount: () => 0,
    catchingUp: () => false,
    validator: null,
    evidence: () => [],
    rosterAt: (h) => t.sets.rosterAt(h),
    governance: () => t.ledger.governance(),
    submitEvidence: (bytes) => t.host.submitEvidence(bytes),
  })
}

/** Calls `evidence_submit` with the given params and returns the parsed response. */
async function submit(
  d: Dispatcher,
  params: unknown[],
): Promise<{ result?: { hash: string; status: string }; error?: { code: number; message: string; data?: Record<string, unknown> } }> {
  return JSON.parse((await d.handleText(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'evidence_submit', params }), http))!)
}

/** The evidence items a host broadcast on the consensus gossip. */
function broadcastEvidence(t: TestHost): Uint8Array[] {
  return t.sent.flatMap((s) => (s.gossip.kind === 'evidence' ? [s.gossip.evidence] : []))
}

test('evidence_submit: new evidence is kept and gossiped, the same again is known, both with its hash', async () => {
  const w = new HostWorld({ validators: 4 })
  const t = await w.boot({ self: null })
  await w.until(() => t.host.height === 1, 'height 1')
  const d = new Dispatcher({ maxBatch: 10, requestTimeoutMs: 5000 }, { methods: createMethods({ backend: backendOf(w, t) }) })
  const e = w.equivocation(2, 1, 0)
  assert.deepEqual(await submit(d, [to0x(e)]), { jsonrpc: '2.0', id: 1, result: { hash: to0x(sha256(e)), status: 'new' } })
  assert.equal(broadcastEvidence(t).length, 1)
  assert.ok(bytesEqual(broadcastEvidence(t)[0]!, e), 'gossiped as submitted')
  assert.deepEqual((await submit(d, [to0x(e)])).result, { hash: to0x(sha256(e)), status: 'known' })
  // another pair of the same equivocation proves nothing more: known too, under its own hash
  const third = w.vote(2, 'prevote', 1, 0, sha256(encodeCanonical(['third'])))
  const other = encodeEvidence({ kind: 'conflictingVotes', first: w.vote(2, 'prevote', 1, 0, sha256(encodeCanonical(['first', 1, 0]))), second: third })
  assert.deepEqual((await submit(d, [to0x(other)])).result, { hash: to0x(sha256(other)), status: 'known' })
  assert.equal(broadcastEvidence(t).length, 1, 'only new evidence is gossiped')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('evidence_submit: bad hex, oversized input, bytes that are not evidence and forged signatures are refused', async () => {
  const w = new HostWorld({ validators: 4 })
  const t = await w.boot({ self: 0 })
  await w.until(() => t.host.height === 1, 'height 1')
  const d = new Dispatcher({ maxBatch: 10, requestTimeoutMs: 5000 }, { methods: createMethods({ backend: backendOf(w, t) }) })
  for (const bad of ['0xzz', 'abcd', '0x123', 7, null]) {
    const r = await submit(d, [bad])
    assert.equal(r.error?.code, -32602, String(bad))
    assert.equal(r.error?.data?.param, 'evidence')
  }
  // the decoder's bound is the block's bound on an evidence item: anything longer is refused as a parameter
  assert.equal(MAX_EVIDENCE_ENCODING_BYTES, MAX_EVIDENCE_BYTES)
  const oversized = await submit(d, [`0x${'00'.repeat(MAX_EVIDENCE_BYTES + 1)}`])
  assert.equal(oversized.error?.code, -32602)
  assert.match(oversized.error!.message, /longer than 1024 bytes/)
  const invalid = (r: Awaited<ReturnType<typeof submit>>, detail: RegExp, what: string) => {
    assert.equal(r.error?.code, -32030, what)
    assert.equal(r.error?.data?.reason, 'invalid_evidence', what)
    assert.match(String(r.error?.data?.detail), detail, what)
  }
  invalid(await submit(d, ['0x']), /empty/, 'no bytes')
  invalid(await submit(d, [`0x${'00'.repeat(MAX_EVIDENCE_BYTES)}`]), /./, 'bytes that do not decode')
  // two prevotes of validator 2 whose second carries validator 1's signature
  const first = w.vote(2, 'prevote', 1, 0, sha256(encodeCanonical(['a'])))
  const lent = w.vote(1, 'prevote', 1, 0, sha256(encodeCanonical(['b'])))
  const forged = encodeEvidence({ kind: 'conflictingVotes', first, second: { ...lent, validator: first.validator } })
  invalid(await submit(d, [to0x(forged)]), /signature does not verify/, 'a forged signature')
  // votes of two validators, in the evidence's encoding: they prove nothing
  const pair = [encodeSignedVote(first), encodeSignedVote(lent)].sort(compareBytes)
  invalid(await submit(d, [to0x(encodeCanonical([1, ...pair]))]), /not of one validator/, 'votes of two validators')
  assert.deepEqual(broadcastEvidence(t), [], 'nothing refused is gossiped')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test("evidence_submit: evidence above the node's height is ahead, not known, and neither kept nor gossiped", async () => {
  const w = new HostWorld({ validators: 4 })
  const t = await w.boot({ self: null })
  await w.until(() => t.host.height === 1, 'height 1')
  const d = new Dispatcher({ maxBatch: 10, requestTimeoutMs: 5000 }, { methods: createMethods({ backend: backendOf(w, t) }) })
  const e = w.equivocation(2, 3, 0)
  assert.deepEqual(await submit(d, [to0x(e)]), { jsonrpc: '2.0', id: 1, result: { hash: to0x(sha256(e)), status: 'ahead' } })
  assert.deepEqual((await submit(d, [to0x(e)])).result, { hash: to0x(sha256(e)), status: 'ahead' }, 'nothing of it was kept')
  assert.deepEqual(broadcastEvidence(t), [], 'nothing ahead is gossiped')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('evidence_submit: evidence older than the evidence window is evidence_expired (-32031), with its height and the window', async () => {
  // a validator that holds all the power decides alone, past a window of two heights
  const w = new HostWorld({ validators: 1 })
  const t = await w.boot({ self: 0, host: { evidence: { maxPerBlock: 8, maxAgeHeights: 2 } } })
  await w.until(() => t.host.height >= 6, 'height 6')
  const d = new Dispatcher({ maxBatch: 10, requestTimeoutMs: 5000 }, { methods: createMethods({ backend: backendOf(w, t) }) })
  const h = t.host.height
  const r = await submit(d, [to0x(w.equivocation(0, h - 3, 0))])
  assert.equal(r.result, undefined, JSON.stringify(r))
  assert.equal(r.error?.code, -32031)
  assert.equal(r.error?.data?.reason, 'evidence_expired')
  assert.match(String(r.error?.data?.detail), new RegExp(`height ${h - 3}\\b.*2 heights`))
  assert.match(r.error!.message, /expired/)
  assert.deepEqual(broadcastEvidence(t), [], 'nothing expired is gossiped')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('evidence_submit: a backend that takes no evidence answers unavailable', async () => {
  const d = new Dispatcher({ maxBatch: 10, requestTimeoutMs: 5000 }, { methods: createMethods({ backend: {} as RpcBackend }) })
  const r = await submit(d, [`0x${'00'.repeat(4)}`])
  assert.equal(r.error?.code, -32013)
  assert.equal(r.error?.data?.reason, 'unavailable')
})
