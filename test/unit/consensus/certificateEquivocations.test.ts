import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildCommitCertificate, certificateEquivocations, encodeEvidence, decodeEvidence, verifyEvidence } from '../../../consensus/index.js'
import { bytesEqual } from '../../../crypto/index.js'
import { CHAIN_ID, drive, fresh, input, validatorSet, validators, value, vote } from './helpers.js'

/** A certificate of height 1 for `v` in `round`, signed by validators 1, 2 and 3. */
function certificate(round: number, v = value('A')) {
  return buildCommitCertificate(
    1,
    round,
    v,
    [1, 2, 3].map((i) => vote(i, 'precommit', 1, round, v)),
  )
}

test('certificateEquivocations: a signer whose held precommit differs from its signature in the certificate', () => {
  // validator 3 precommitted nil to this node; the certificate carries its precommit for A in the same round
  const { state } = drive(fresh(0), [input.start(1), input.vote(vote(3, 'precommit', 1, 0, null)), input.vote(vote(1, 'precommit', 1, 0, value('A')))])
  const found = certificateEquivocations(state, certificate(0))
  assert.equal(found.length, 1)
  const e = found[0]!
  assert.equal(e.kind, 'conflictingVotes')
  assert.deepEqual(e.first, vote(3, 'precommit', 1, 0, null), 'the held precommit first')
  assert.deepEqual(e.second, vote(3, 'precommit', 1, 0, value('A')))
  // what the pool and blocks carry: it decodes and verifies as any evidence
  const d = decodeEvidence(encodeEvidence(e))
  assert.ok(d.ok)
  assert.ok(verifyEvidence(d.value, CHAIN_ID, validatorSet).ok)
  // the query changes nothing in the core
  assert.deepEqual(certificateEquivocations(state, certificate(0)), found)
})

test('certificateEquivocations: nothing when no held precommit conflicts', () => {
  const held = drive(fresh(0), [input.start(1), input.vote(vote(1, 'precommit', 1, 0, value('A'))), input.vote(vote(2, 'precommit', 1, 1, null))]).state
  const rows = [
    { desc: 'the same precommit held, the others not held', state: held, cert: certificate(0) },
    { desc: 'a nil precommit of another round', state: held, cert: certificate(2) },
    { desc: 'a certificate of another height', state: drive(held, [input.start(2)]).state, cert: certificate(0) },
    { desc: 'a core that has not started', state: fresh(0), cert: certificate(0) },
  ]
  for (const r of rows) assert.deepEqual(certificateEquivocations(r.state, r.cert), [], r.desc)
})

test('certificateEquivocations: a signature that does not verify proves nothing', () => {
  const { state } = drive(fresh(0), [input.start(1), input.vote(vote(3, 'precommit', 1, 0, null))])
  const good = certificate(0)
  const forged = {
    ...good,
    signatures: good.signatures.map((s) =>
      bytesEqual(s.validator, validators[3]!.address) ? { ...s, signature: vote(3, 'precommit', 1, 0, value('B')).signature } : s,
    ),
  }
  assert.deepEqual(certificateEquivocations(state, forged), [])
})

test('certificateEquivocations: a validator already reported in that round is not reported again', () => {
  const { state, all } = drive(fresh(0), [input.start(1), input.vote(vote(3, 'precommit', 1, 0, null)), input.vote(vote(3, 'precommit', 1, 0, value('B')))])
  assert.equal(all.filter((e) => e.type === 'evidence').length, 1, 'the core reported the pair it received')
  assert.deepEqual(certificateEquivocations(state, certificate(0)), [])
})
