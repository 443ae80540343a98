import assert from 'node:assert/strict'
import { test } from 'node:test'
import { consensusGossipHostDependencies } from '../../../../node/host/hostWiring.js'
import { silentLogger } from '../../../../node/logger.js'
import { consensusGossipHandler } from '../../../../node/sync/consensusGossip.js'
import { encodeProposalMessage } from '../../../../node/sync/consensusMessages.js'
import { MAX_PENDING_EVIDENCE } from '../../../../node/host/evidencePool.js'
import { BLOCK_LIMITS, CHAIN_ID, HostWorld, type TestHost } from './hostFixture.js'

/**
 * What a validator's peer can make this node spend by sending again, as often as it likes, signed messages the node
 * will never keep: each must be refused before its signature is checked, and without a log line each time.
 */

function admission(t: TestHost) {
  const sync = { notePeerHeight: () => undefined, request: () => undefined }
  return consensusGossipHandler({
    ...consensusGossipHostDependencies(t.host, sync, { chainId: CHAIN_ID, maxTxs: BLOCK_LIMITS.maxTxs }),
    logger: silentLogger(),
  })
}

function roundProposedBy(w: HostWorld, height: number, v: number): number {
  for (let r = 0; r <= w.params.maxRoundsAhead; r++) if (w.proposerOf(height, r) === v) return r
  throw new Error(`validator ${v} proposes no round of height ${height} within the window`)
}

test("a proposer's third block of a round, which the host never keeps, is refused before its signature, every time", async () => {
  const w = new HostWorld({ validators: 4 })
  const self = 0
  const z = 3
  const t = await w.boot({ self })
  const round = roundProposedBy(w, 1, z)
  const blocks = await Promise.all([0, 1, 2].map((tag) => w.block1({ proposer: z, round, time: w.now() + tag })))
  const admit = admission(t)
  // the first two blocks of the slot are kept: the second is evidence of equivocation
  for (const b of blocks.slice(0, 2)) {
    assert.equal(await admit(encodeProposalMessage(b.message), 'byzantine-peer'), 'accept')
    await w.until(() => t.host.queueLength === 0, 'the proposal handled')
  }
  const third = encodeProposalMessage(blocks[2]!.message)
  const verdicts: string[] = []
  for (let i = 0; i < 20; i++) {
    verdicts.push(await admit(new Uint8Array(third), 'byzantine-peer'))
    await w.until(() => t.host.queueLength === 0, 'the proposal handled')
  }
  assert.deepEqual(verdicts, Array(20).fill('ignore'), 'the third block of the slot is refused before its signature check')
  assert.deepEqual(t.logged('dropped a proposal: its proposer already has two blocks in this round', 'warn'), [])
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('a validator that equivocates in round after round has a few pieces of evidence checked, not one per round', async () => {
  const w = new HostWorld({ validators: 4 })
  const t = await w.boot({ self: 0 })
  // evidence against another validator, pending before the flood
  const other = w.equivocation(2, 1, 0)
  assert.equal(await t.host.admitEvidence(other), 'new')
  // validator 3 signs two prevotes in each of more rounds than the pool holds: each pair proves an equivocation
  const rounds = MAX_PENDING_EVIDENCE + 44
  const verdicts = new Map<string, number>()
  for (let round = 0; round < rounds; round++) {
    const r = await t.host.admitEvidence(w.equivocation(3, 1, round))
    const key = typeof r === 'string' ? r : 'invalid'
    verdicts.set(key, (verdicts.get(key) ?? 0) + 1)
  }
  const taken = verdicts.get('new') ?? 0
  assert.ok(taken >= 1 && taken <= 4, `evidence of one offender taken (each after two signature checks): ${taken} of ${rounds}`)
  assert.equal(t.logged('equivocation evidence', 'warn').length, 1 + taken)
  // the other validator's evidence is still pending: a copy of it is known
  assert.equal(await t.host.admitEvidence(other), 'known')
  t.stop()
  assert.deepEqual(t.fatal, [])
})
