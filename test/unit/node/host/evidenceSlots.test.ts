import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeEvidence, type SignedVote } from '../../../../consensus/index.js'
import { encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { MAX_PENDING_EVIDENCE } from '../../../../node/host/evidencePool.js'
import { HostWorld } from './hostFixture.js'

test('one equivocation is proved once: the other pairs of its messages are known before their signatures are checked', async () => {
  const w = new HostWorld({ validators: 4 })
  const t = await w.boot({ self: 0 })
  // 24 conflicting prevotes of one validator in one round make 276 pairs, more than the pool holds
  const votes: SignedVote[] = Array.from({ length: 24 }, (_, i) => w.vote(3, 'prevote', 1, 0, sha256(encodeCanonical(['v', i]))))
  const pairs: Uint8Array[] = []
  for (let i = 0; i < votes.length; i++)
    for (let j = i + 1; j < votes.length; j++) pairs.push(encodeEvidence({ kind: 'conflictingVotes', first: votes[i]!, second: votes[j]! }))
  assert.ok(pairs.length > MAX_PENDING_EVIDENCE)
  const verdicts = new Map<string, number>()
  for (let pass = 0; pass < 3; pass++) {
    for (const e of pairs) {
      const r = await t.host.admitEvidence(e)
      const key = typeof r === 'string' ? r : 'invalid'
      verdicts.set(key, (verdicts.get(key) ?? 0) + 1)
    }
  }
  assert.deepEqual(Object.fromEntries(verdicts), { new: 1, known: 3 * pairs.length - 1 })
  assert.equal(t.logged('equivocation evidence', 'warn').length, 1)
  // another equivocation of the same validator (a precommit, another round) is evidence of its own
  const precommits = [0, 1].map((i) => w.vote(3, 'precommit', 1, 0, sha256(encodeCanonical(['p', i]))))
  assert.equal(await t.host.admitEvidence(encodeEvidence({ kind: 'conflictingVotes', first: precommits[0]!, second: precommits[1]! })), 'new')
  const round1 = [0, 1].map((i) => w.vote(3, 'prevote', 1, 1, sha256(encodeCanonical(['r', i]))))
  assert.equal(await t.host.admitEvidence(encodeEvidence({ kind: 'conflictingVotes', first: round1[0]!, second: round1[1]! })), 'new')
  t.stop()
  assert.deepEqual(t.fatal, [])
})
