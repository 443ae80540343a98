import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bytesEqual, encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { blockHash, txRoot } from '../../../../ledger/block.js'
import { consensusGossipHostDependencies } from '../../../../node/host/hostWiring.js'
import { silentLogger } from '../../../../node/logger.js'
import { consensusGossipHandler } from '../../../../node/sync/consensusGossip.js'
import { encodeProposalMessage, encodeVoteMessage, type ProposalMessage } from '../../../../node/sync/consensusMessages.js'
import { CHAIN_ID, HostWorld, type TestHost } from './hostFixture.js'

/**
 * While the host's queue is held up (here a WAL sync), the core cannot tell a queued message known: copies of one
 * signed message, or more conflicting messages of one slot, must not each be kept.
 */

const LIMITS = { maxTxs: 10_000, maxBytes: 4 * 1024 * 1024 }

/** A signed proposal of (height, round) by `proposer` whose block lists `txs` transaction hashes. */
function proposalBytes(
  w: HostWorld,
  base: ProposalMessage['header'],
  lastCommit: ProposalMessage['lastCommit'],
  proposer: number,
  height: number,
  round: number,
  tag: number,
  txs: number,
): Uint8Array {
  const txHashes = Array.from({ length: txs }, (_, i) => sha256(encodeCanonical(['junk', tag, i])))
  const header = { ...base, height, proposer: w.validators[proposer]!.address, time: base.time + 1 + tag, txRoot: txRoot(txHashes) }
  return encodeProposalMessage({ proposal: w.proposal(proposer, height, round, blockHash(header)), header, txHashes, evidence: [], lastCommit })
}

function admission(t: TestHost) {
  const sync = { notePeerHeight: () => undefined, request: () => undefined }
  return consensusGossipHandler({ ...consensusGossipHostDependencies(t.host, sync, { chainId: CHAIN_ID, maxTxs: LIMITS.maxTxs }), logger: silentLogger() })
}

function roundProposedBy(w: HostWorld, height: number, v: number): number {
  for (let r = 0; r <= w.params.maxRoundsAhead; r++) if (w.proposerOf(height, r) === v) return r
  throw new Error(`validator ${v} proposes no round of height ${height} within the window`)
}

test('copies of one proposal, and more proposals of one slot, are not queued while the queue is held up', async () => {
  const w = new HostWorld({ validators: 4 })
  const P = w.proposerOf(1, 0)
  const self = w.nonProposer(1, 0)
  const z = [0, 1, 2, 3].find((i) => i !== self)!
  const t = await w.boot({ self, host: { block: LIMITS } })
  const [, b2] = await w.chain(2)
  const round = roundProposedBy(w, 2, z)
  const copy = proposalBytes(w, b2!.stored.block.header, b2!.stored.lastCommit, z, 2, round, 0, LIMITS.maxTxs)
  const b = await w.block1({ proposer: P })
  t.wal.holdSyncs()
  await t.host.onProposalMessage(b.message)
  await w.until(() => t.guardRequests.length === 1, 'the prevote request, its WAL sync held')
  const admit = admission(t)
  const verdicts: string[] = []
  for (let i = 0; i < 20; i++) verdicts.push(await admit(new Uint8Array(copy), 'byzantine-peer'))
  assert.equal(verdicts[0], 'accept')
  assert.ok(
    verdicts.slice(1).every((v) => v === 'ignore'),
    verdicts.join(),
  )
  // a second block for the slot is queued (it is evidence of equivocation); a third is not
  const others = [1, 2, 3].map((tag) => proposalBytes(w, b2!.stored.block.header, b2!.stored.lastCommit, z, 2, round, tag, 10))
  assert.deepEqual(await Promise.all(others.map((o) => admit(o, 'byzantine-peer'))), ['accept', 'ignore', 'ignore'])
  assert.equal(t.host.queueLength, 2)
  t.wal.releaseSyncs()
  await w.until(() => t.host.queueLength === 0, 'the queue drained')
  // once handled, the core knows the proposal: a copy is judged by it again
  assert.notEqual(await admit(new Uint8Array(copy), 'byzantine-peer'), 'reject')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test('copies of one vote are queued once, and a slot holds at most two votes, while the queue is held up', async () => {
  const w = new HostWorld({ validators: 4 })
  const P = w.proposerOf(1, 0)
  const self = w.nonProposer(1, 0)
  const voter = [0, 1, 2, 3].find((i) => i !== self && i !== P)!
  const t = await w.boot({ self })
  const b = await w.block1({ proposer: P })
  t.wal.holdSyncs()
  await t.host.onProposalMessage(b.message)
  await w.until(() => t.guardRequests.length === 1, 'the prevote request, its WAL sync held')
  const admit = admission(t)
  const vote = encodeVoteMessage(w.vote(voter, 'precommit', 2, 0, b.hash))
  const verdicts: string[] = []
  for (let i = 0; i < 10; i++) verdicts.push(await admit(new Uint8Array(vote), 'peer'))
  assert.deepEqual(verdicts, ['accept', ...Array(9).fill('ignore')])
  const conflicting = [1, 2].map((i) => encodeVoteMessage(w.vote(voter, 'precommit', 2, 0, sha256(encodeCanonical(['other', i])))))
  assert.deepEqual(await Promise.all(conflicting.map((v) => admit(v, 'peer'))), ['accept', 'ignore'])
  assert.equal(t.host.queueLength, 2)
  t.wal.releaseSyncs()
  await w.until(() => t.host.queueLength === 0, 'the queue drained')
  t.stop()
  assert.deepEqual(t.fatal, [])
})

test("a relay's copy of an honest proposal with other parts is refused: the honest copy after it is queued and judged", async () => {
  const w = new HostWorld({ validators: 4 })
  const P = w.proposerOf(1, 0)
  const self = w.nonProposer(1, 0)
  const t = await w.boot({ self })
  const b = await w.block1({ proposer: P })
  const admit = admission(t)
  const honest = b.message
  // the proposer's signed header, with transactions the header's root does not commit to
  const tampered: ProposalMessage = { ...honest, txHashes: [sha256(encodeCanonical(['not in the block']))] }
  assert.equal(await admit(encodeProposalMessage(tampered), 'relay'), 'reject')
  assert.equal(await admit(encodeProposalMessage(honest), 'proposer'), 'accept')
  await w.until(() => t.guardRequests.length === 1, 'the prevote')
  const req = t.guardRequests[0]!.req
  assert.ok(
    req.kind === 'vote' && req.vote.type === 'prevote' && req.vote.valueId !== null && bytesEqual(req.vote.valueId, b.hash),
    'prevoted the honest block',
  )
  // a copy of a proposal the core and the candidate store both hold adds nothing: ignored before any hashing
  assert.equal(await admit(encodeProposalMessage(honest), 'proposer'), 'ignore')
  t.stop()
  assert.deepEqual(t.fatal, [])
})
