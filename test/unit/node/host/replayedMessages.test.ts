import assert from 'node:assert/strict'
import { test } from 'node:test'
import { consensusGossipHostDependencies } from '../../../../node/host/hostWiring.js'
import { silentLogger } from '../../../../node/logger.js'
import { consensusGossipHandler } from '../../../../node/sync/consensusGossip.js'
import { encodeProposalMessage } from '../../../../node/sync/consensusMessages.js'
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
