import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { sha256 } from '../../../../crypto/hash.js'
import { encodeSignedProposal, messageStatus, type SignedVote } from '../../../../consensus/index.js'
import { ZERO_HASH, blockHash, encodeBlockHeader, txRoot, type BlockHeader } from '../../../../ledger/block.js'
import { silentLogger } from '../../../../node/logger.js'
import { consensusGossipHandler, type ConsensusGossipDependencies } from '../../../../node/sync/consensusGossip.js'
import { encodeEvidenceMessage, encodeProposalMessage, encodeVoteMessage, type ProposalMessage } from '../../../../node/sync/consensusMessages.js'
import { CHAIN_ID, drive, fresh, input, proposal, proposerIndexOf, validatorSet, validators, vote } from '../../consensus/helpers.js'

function header(height: number, proposer: number, over: Partial<BlockHeader> = {}): BlockHeader {
  return {
    chainId: CHAIN_ID,
    height,
    time: 1,
    previousBlockHash: height === 1 ? ZERO_HASH : sha256(new Uint8Array([1])),
    txRoot: txRoot([]),
    stateRoot: ZERO_HASH,
    proposer: validators[proposer]!.address,
    validatorSetHash: validatorSet.hash,
    nextValidatorSetHash: validatorSet.hash,
    lastCommitHash: height === 1 ? ZERO_HASH : sha256(new Uint8Array([2])),
    evidenceRoot: txRoot([]),
    ...over,
  }
}

function proposalMessage(signer: number, height: number, round: number, over: Partial<BlockHeader> = {}): ProposalMessage {
  const h = header(height, signer, over)
  return { proposal: proposal(signer, height, round, blockHash(h)), header: h, txHashes: [], evidence: [], lastCommit: null }
}

function harness(knownUpTo = 3, evidence: ConsensusGossipDependencies['onEvidence'] = async () => ({ invalid: 'not expected here' }), current = 1) {
  const state = drive(fresh(0), [input.start(current)]).state
  const proposals: ProposalMessage[] = []
  const votes: SignedVote[] = []
  const missed: number[] = []
  const noted: [string, number][] = []
  const handler = consensusGossipHandler({
    chainId: CHAIN_ID,
    validatorSet: (height) => (height <= knownUpTo ? validatorSet : undefined),
    maxTxs: 100,
    height: () => current,
    onEvidence: evidence,
    status: (m) => messageStatus(state, m),
    notePeerHeight: (peer, height) => {
      noted.push([peer, height])
    },
    missedHeight: (height) => {
      missed.push(height)
    },
    onProposal: async (m) => {
      proposals.push(m)
    },
    onVote: async (v) => {
      votes.push(v)
    },
    logger: silentLogger(),
  })
  return { handler, proposals, votes, missed, noted }
}

test('admission: a proposal from the round proposer with a matching header is accepted', async () => {
  const h = harness()
  const p = proposerIndexOf(1, 0)
  assert.equal(await h.handler(encodeProposalMessage(proposalMessage(p, 1, 0)), 'peer'), 'accept')
  assert.equal(h.proposals.length, 1)
})

test('admission: a message of a height whose set is not known yet is ignored, not held against its sender; the height is to be fetched', async () => {
  // at height 1 with the sets known up to height 2 (block 1 may still change the set of height 3)
  const h = harness(2)
  const p = proposerIndexOf(3, 0)
  assert.equal(
    await h.handler(
      encodeProposalMessage(
        proposalMessage(p, 3, 0, { height: 3, previousBlockHash: sha256(new Uint8Array([1])), lastCommitHash: sha256(new Uint8Array([2])) }),
      ),
      'peer',
    ),
    'ignore',
  )
  assert.equal(await h.handler(encodeVoteMessage(vote(1, 'prevote', 3, 0, null)), 'other'), 'ignore')
  assert.equal(await h.handler(encodeVoteMessage(vote(1, 'prevote', 2, 0, null)), 'peer'), 'accept', 'the next height is known')
  assert.equal(h.proposals.length, 0)
  // consensus here will lack what was dropped: block sync is told which height to fetch
  assert.deepEqual(h.missed, [3, 3])
})

test('admission: junk proposals are refused before anything is kept, and their sender is blamed', async () => {
  const h = harness()
  const p = proposerIndexOf(1, 0)
  const notP = (p + 1) % 4
  const good = proposalMessage(p, 1, 0)
  const unsigned = { ...good, proposal: { ...good.proposal, signature: new Uint8Array(64) } }
  const otherHeader = { ...good, header: header(1, p, { time: 2 }) }
  const wrongHeight = proposalMessage(p, 1, 0, { height: 2, previousBlockHash: sha256(new Uint8Array([1])), lastCommitHash: sha256(new Uint8Array([2])) })
  const rows: { desc: string; bytes: Uint8Array; want: string }[] = [
    { desc: 'garbage', bytes: new Uint8Array([1, 2, 3]), want: 'reject' },
    { desc: 'bad signature', bytes: encodeProposalMessage(unsigned), want: 'reject' },
    { desc: 'not the round proposer', bytes: encodeProposalMessage(proposalMessage(notP, 1, 0)), want: 'reject' },
    { desc: 'header does not hash to the value', bytes: encodeProposalMessage(otherHeader), want: 'reject' },
    { desc: 'header of another height', bytes: encodeProposalMessage(wrongHeight), want: 'reject' },
    { desc: 'a height far ahead (2^32-1)', bytes: encodeProposalMessage(proposalMessage(proposerIndexOf(2 ** 32 - 1, 0), 2 ** 32 - 1, 0)), want: 'ignore' },
    { desc: 'a round far ahead', bytes: encodeProposalMessage(proposalMessage(proposerIndexOf(1, 900), 1, 900)), want: 'ignore' },
  ]
  for (const r of rows) assert.equal(await h.handler(r.bytes, 'peer'), r.want, r.desc)
  assert.equal(h.proposals.length, 0, 'nothing reached the host')
})

test('admission: votes are checked for signer and signature; repeats are ignored before any check', async () => {
  const h = harness()
  const v = vote(1, 'prevote', 1, 0, null)
  assert.equal(await h.handler(encodeVoteMessage(v), 'peer'), 'accept')
  assert.equal(await h.handler(encodeVoteMessage({ ...vote(2, 'prevote', 1, 0, null), signature: new Uint8Array(64) }), 'peer'), 'reject')
  assert.equal(await h.handler(encodeVoteMessage({ ...v, validator: new Uint8Array(20).fill(7) }), 'peer'), 'reject')
  assert.equal(await h.handler(encodeVoteMessage(vote(1, 'prevote', 7, 0, null)), 'peer'), 'ignore', 'beyond the window')
  assert.equal(h.votes.length, 1)
})

test('admission: a message beyond the known sets counts only signed by a validator of the latest set known, once per peer and height', async () => {
  // at height 1 with the sets known up to height 2: height 3's set is not known
  const h = harness(2)
  const unsigned = { ...vote(1, 'prevote', 3, 0, null), signature: new Uint8Array(64) }
  assert.equal(await h.handler(encodeVoteMessage(unsigned), 'peer'), 'reject', 'a forged signature of a known validator')
  const p = proposerIndexOf(3, 0)
  const good = proposalMessage(p, 3, 0, { height: 3, previousBlockHash: sha256(new Uint8Array([1])), lastCommitHash: sha256(new Uint8Array([2])) })
  const forged = { ...good, proposal: { ...good.proposal, signature: new Uint8Array(64) } }
  assert.equal(await h.handler(encodeProposalMessage(forged), 'peer'), 'reject', 'a forged proposal')
  const stranger = { ...vote(1, 'prevote', 3, 0, null), validator: new Uint8Array(20).fill(7) }
  assert.equal(await h.handler(encodeVoteMessage(stranger), 'peer'), 'ignore', 'a signer the known sets do not hold: dropped, no fault')
  assert.deepEqual(h.missed, [], 'nothing unsigned makes the node fetch a height')
  assert.deepEqual(h.noted, [], 'nor poll a peer')
  assert.equal(await h.handler(encodeVoteMessage(vote(1, 'prevote', 3, 0, null)), 'peer'), 'ignore')
  assert.deepEqual(h.missed, [3])
  assert.deepEqual(h.noted, [['peer', 3]])
  // more of that height from that peer, even forged, cost no signature check and count no more
  assert.equal(await h.handler(encodeVoteMessage(vote(2, 'prevote', 3, 0, null)), 'peer'), 'ignore')
  assert.equal(await h.handler(encodeVoteMessage(unsigned), 'peer'), 'ignore')
  assert.deepEqual(h.missed, [3])
  assert.equal(await h.handler(encodeProposalMessage(good), 'other'), 'ignore')
  assert.deepEqual(h.noted, [
    ['peer', 3],
    ['other', 3],
  ])
  assert.equal(h.votes.length + h.proposals.length, 0, 'nothing reached the host')
})

test('admission: evidence the host cannot judge (above its height, older than its window) is ignored; invalid evidence is refused', async () => {
  const bytes = encodeEvidenceMessage(new Uint8Array([1, 2, 3]))
  for (const [answer, verdict] of [
    ['new', 'accept'],
    ['known', 'ignore'],
    ['ahead', 'ignore'],
    ['expired', 'ignore'],
    [{ invalid: 'a vote signature does not verify' }, 'reject'],
  ] as const) {
    const h = harness(3, async () => answer)
    assert.equal(await h.handler(bytes, 'peer'), verdict, JSON.stringify(answer))
  }
})

/**
 * A proposal message is its signed proposal and up to ~0.5 MB of transaction hashes, evidence and a certificate. One
 * of a stale height, or of a round the core would drop, is judged on its signed part alone: here the rest does not
 * decode (a hash of 31 bytes), which a full decode would refuse; judged first, the message is only ignored.
 */
test('admission: a proposal of a stale height or a dropped round is judged on its signed part before the rest is read', async () => {
  const h = harness(9, undefined, 5)
  const withBadTail = (signer: number, height: number, round: number) => {
    const m = proposalMessage(signer, height, round, { height, previousBlockHash: sha256(new Uint8Array([1])), lastCommitHash: sha256(new Uint8Array([2])) })
    const hashes = Array.from({ length: 99 }, () => new Uint8Array(32).fill(9))
    return encodeCanonical([1, encodeSignedProposal(m.proposal), encodeBlockHeader(m.header), [...hashes, new Uint8Array(31)], null, [], 0])
  }
  assert.equal(await h.handler(withBadTail(proposerIndexOf(3, 0), 3, 0), 'peer'), 'ignore', 'a stale height')
  assert.equal(await h.handler(withBadTail(proposerIndexOf(5, 900), 5, 900), 'peer'), 'ignore', 'a round beyond the window')
  assert.equal(await h.handler(withBadTail((proposerIndexOf(5, 0) + 1) % 4, 5, 0), 'peer'), 'reject', 'not the round proposer')
  // one the core would take is decoded whole, and its tail refused
  assert.equal(await h.handler(withBadTail(proposerIndexOf(5, 0), 5, 0), 'peer'), 'reject', 'a proposal of the height worked on')
  assert.equal(h.proposals.length, 0)
})
