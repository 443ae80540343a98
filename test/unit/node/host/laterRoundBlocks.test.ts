import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bytesEqual, encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { consensusGossipHostDependencies } from '../../../../node/host/hostWiring.js'
import { silentLogger } from '../../../../node/logger.js'
import { consensusGossipHandler } from '../../../../node/sync/consensusGossip.js'
import { encodeProposalMessage } from '../../../../node/sync/consensusMessages.js'
import { BLOCK_LIMITS, CHAIN_ID, HostWorld, type TestHost } from './hostFixture.js'

/**
 * What one Byzantine proposer can make an honest validator execute in a height: the blocks it signs for the rounds
 * of the window ahead of the current one (two per round it proposes) must not hold back the judgement of the
 * current round's block, which is the one the height is waiting for.
 */

function admission(t: TestHost) {
  const sync = { notePeerHeight: () => undefined, request: () => undefined }
  return consensusGossipHandler({
    ...consensusGossipHostDependencies(t.host, sync, { chainId: CHAIN_ID, maxTxs: BLOCK_LIMITS.maxTxs }),
    logger: silentLogger(),
  })
}

test("blocks a proposer signs for later rounds do not delay the judgement of the current round's block", async () => {
  const executeMs = 300
  const w = new HostWorld({ validators: 4 })
  const p0 = w.proposerOf(1, 0)
  const later = (v: number) => Array.from({ length: w.params.maxRoundsAhead }, (_, i) => i + 1).filter((r) => w.proposerOf(1, r) === v)
  // the Byzantine validator: not round 0's proposer, proposing as many later rounds as any other
  const z = [0, 1, 2, 3].filter((v) => v !== p0).sort((a, b) => later(b).length - later(a).length)[0]!
  const self = [0, 1, 2, 3].find((v) => v !== p0 && v !== z)!
  const t = await w.boot({ self, executeMs })
  const admit = admission(t)
  // two blocks for each later round z proposes, each with a state root execution refutes: signed, well formed
  let sent = 0
  for (const round of later(z)) {
    for (const tag of [0, 1]) {
      const b = await w.block1({ proposer: z, round, stateRoot: sha256(encodeCanonical(['not the state', round, tag])) })
      assert.equal(await admit(encodeProposalMessage(b.message), 'byzantine-peer'), 'accept')
      sent++
    }
  }
  assert.ok(sent >= 4, `z proposes ${sent / 2} rounds of the window`)
  // then the honest proposer's block of round 0
  const honest = await w.block1({ proposer: p0, round: 0 })
  const arrived = w.sched.now
  assert.equal(await admit(encodeProposalMessage(honest.message), 'honest-peer'), 'accept')
  const prevote = () => t.votes({ own: true }).find((v) => v.type === 'prevote' && v.height === 1 && v.round === 0)
  await w.until(() => prevote() !== undefined, 'a prevote of round 0')
  const at = t.sent.find((s) => s.gossip.kind === 'vote' && s.gossip.vote === prevote())?.time ?? Number.NaN
  const v = prevote()!
  assert.ok(v.valueId !== null && bytesEqual(v.valueId, honest.hash), 'the honest block of round 0 is prevoted')
  assert.ok(
    at - arrived <= 2 * executeMs,
    `the round-0 block was prevoted ${at - arrived} ms after it arrived (one execution takes ${executeMs} ms): ` +
      `it waited behind ${sent} blocks of rounds this node had not reached`,
  )
  t.stop()
  assert.deepEqual(t.fatal, [])
})
