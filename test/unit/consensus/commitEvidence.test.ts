import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  buildCommitCertificate,
  conflictingCommitEvidence,
  createValidatorSet,
  decodeEvidence,
  encodeEvidence,
  evidenceOffender,
  verifyEvidence,
  type CommitCertificate,
} from '../../../consensus/index.js'
import { bytesEqual, compareBytes } from '../../../crypto/index.js'
import { CHAIN_ID, validatorSet, validators, value, vote } from './helpers.js'

const HEIGHT = 5

/** A certificate of HEIGHT for `v` in `round`, signed by the given validators. */
function certificate(round: number, v: Uint8Array, signers: readonly number[], height = HEIGHT): CommitCertificate {
  return buildCommitCertificate(
    height,
    round,
    v,
    signers.map((i) => vote(i, 'precommit', height, round, v)),
  )
}

/** The validator indexes the evidence convicts, in the order given. */
function offenders(list: readonly Uint8Array[]): number[] {
  return list.map((bytes) => {
    const d = decodeEvidence(bytes)
    assert.ok(d.ok, 'the evidence decodes')
    return validators.findIndex((v) => bytesEqual(v.address, evidenceOffender(d.value)))
  })
}

test('conflictingCommitEvidence: one evidence item per validator that signed both commits of one round', () => {
  const a = certificate(2, value('A'), [0, 1, 2])
  const b = certificate(2, value('B'), [1, 2, 3])
  const found = conflictingCommitEvidence(CHAIN_ID, validatorSet, a, b)
  const both = [1, 2].sort((x, y) => compareBytes(validators[x]!.address, validators[y]!.address))
  assert.deepEqual(offenders(found), both, 'the validators that signed both, in address order')
  for (const [k, i] of both.entries()) {
    const expected = encodeEvidence({
      kind: 'conflictingVotes',
      first: vote(i, 'precommit', HEIGHT, 2, value('A')),
      second: vote(i, 'precommit', HEIGHT, 2, value('B')),
    })
    // byte comparison: decoding leaves a DataView property on the decoded bytes
    assert.ok(bytesEqual(found[k]!, expected), 'the canonical encoding of the two precommits')
    const d = decodeEvidence(found[k]!)
    assert.ok(d.ok)
    assert.ok(verifyEvidence(d.value, CHAIN_ID, validatorSet).ok, 'what a node admits')
  }
  const swapped = conflictingCommitEvidence(CHAIN_ID, validatorSet, b, a)
  assert.ok(swapped.length === found.length && swapped.every((x, k) => bytesEqual(x, found[k]!)), 'the order of the commits does not matter')
})

test('conflictingCommitEvidence: nothing attributable', () => {
  const a = certificate(0, value('A'), [0, 1, 2])
  const rows = [
    { desc: 'commits of different rounds', b: certificate(1, value('B'), [0, 1, 2]) },
    { desc: 'the same block hash', b: certificate(0, value('A'), [1, 2, 3]) },
    { desc: 'commits of different heights', b: certificate(0, value('B'), [0, 1, 2], HEIGHT + 1) },
    { desc: 'no signer in common', b: certificate(0, value('B'), [3]) },
  ]
  for (const r of rows) {
    assert.deepEqual(conflictingCommitEvidence(CHAIN_ID, validatorSet, a, r.b), [], r.desc)
    assert.deepEqual(conflictingCommitEvidence(CHAIN_ID, validatorSet, r.b, a), [], `${r.desc} (swapped)`)
  }
})

test('conflictingCommitEvidence: a signature that does not verify, or a signer outside the set, proves nothing', () => {
  const a = certificate(0, value('A'), [0, 1, 2, 3])
  const good = certificate(0, value('B'), [0, 1, 2, 3])
  // validator 1's entry carries its signature of another value; validator 2's a signature of another chain's vote
  const forged: CommitCertificate = {
    ...good,
    signatures: good.signatures.map((s) => {
      if (bytesEqual(s.validator, validators[1]!.address)) return { ...s, signature: vote(1, 'precommit', HEIGHT, 0, value('C')).signature }
      if (bytesEqual(s.validator, validators[2]!.address)) return { ...s, signature: vote(2, 'prevote', HEIGHT, 0, value('B')).signature }
      return s
    }),
  }
  const expected = [0, 3].sort((x, y) => compareBytes(validators[x]!.address, validators[y]!.address))
  assert.deepEqual(offenders(conflictingCommitEvidence(CHAIN_ID, validatorSet, a, forged)), expected)
  // the set of the height holds validators 0 to 2 only: validator 3 signed both, but the evidence would not verify
  const smaller = createValidatorSet(validators.slice(0, 3))
  assert.ok(smaller.ok)
  const inSet = [0, 1, 2].sort((x, y) => compareBytes(validators[x]!.address, validators[y]!.address))
  assert.deepEqual(offenders(conflictingCommitEvidence(CHAIN_ID, smaller.value, a, good)), inSet)
  assert.deepEqual(conflictingCommitEvidence('another-chain', validatorSet, a, good), [], 'signatures of another chain id')
})

test('conflictingCommitEvidence: certificates out of format give nothing and never throw', () => {
  const a = certificate(0, value('A'), [0, 1, 2])
  const b = certificate(0, value('B'), [0, 1, 2])
  const broken: unknown[] = [
    { ...b, signatures: 'x' },
    { ...b, signatures: [null, ...b.signatures] },
    { ...b, signatures: [{ validator: 'x', signature: 1 }] },
    { ...b, valueId: new Uint8Array(3) },
    { ...b, height: -1 },
    { ...b, round: 1.5 },
    { ...b, signatures: Array.from({ length: 100_000 }, () => b.signatures[0]) },
    null,
  ]
  for (const x of broken) {
    assert.deepEqual(conflictingCommitEvidence(CHAIN_ID, validatorSet, a, x as CommitCertificate), [])
    assert.deepEqual(conflictingCommitEvidence(CHAIN_ID, validatorSet, x as CommitCertificate, a), [])
  }
})
