import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/index.js'
import {
  buildCommitCertificate,
  certificateVotes,
  commitHash,
  decodeCommitCertificate,
  encodeCommitCertificate,
  verifyCommit,
  verifyCommitTrusting,
  createValidatorSet,
  type CommitCertificate,
} from '../../../consensus/index.js'
import { CHAIN_ID, validatorSet, validators, value, vote } from './helpers.js'

const v0 = value('v0')
const v1 = value('v1')
const good = buildCommitCertificate(
  5,
  2,
  v0,
  [0, 1, 2].map((i) => vote(i, 'precommit', 5, 2, v0)),
)

test('verifyCommit accepts 2f+1 valid precommits and reports their power', () => {
  const r = verifyCommit(validatorSet, CHAIN_ID, 5, v0, good)
  assert.deepEqual(r, { ok: true, value: 3n })
  const all = buildCommitCertificate(
    5,
    2,
    v0,
    [0, 1, 2, 3].map((i) => vote(i, 'precommit', 5, 2, v0)),
  )
  assert.deepEqual(verifyCommit(validatorSet, CHAIN_ID, 5, v0, all), { ok: true, value: 4n })
})

const rejects: [string, CommitCertificate, number, Uint8Array, string][] = [
  ['wrong height', good, 6, v0, 'wrong_height'],
  ['another block', good, 5, v1, 'wrong_value'],
  ['insufficient power', { ...good, signatures: good.signatures.slice(0, 2) }, 5, v0, 'insufficient_power'],
  ['duplicate signer', { ...good, signatures: [good.signatures[0]!, good.signatures[0]!, good.signatures[1]!] }, 5, v0, 'duplicate_signer'],
  [
    'forged signature',
    { ...good, signatures: [{ ...good.signatures[0]!, signature: good.signatures[1]!.signature }, ...good.signatures.slice(1)] },
    5,
    v0,
    'bad_signature',
  ],
  ['signature for another round', { ...good, round: 3 }, 5, v0, 'bad_signature'],
  [
    'prevote signatures',
    buildCommitCertificate(
      5,
      2,
      v0,
      [0, 1, 2].map((i) => ({ ...vote(i, 'prevote', 5, 2, v0), type: 'precommit' as const })),
    ),
    5,
    v0,
    'bad_signature',
  ],
  [
    'unknown signer',
    { ...good, signatures: [{ validator: new Uint8Array(20).fill(9), signature: good.signatures[0]!.signature }, ...good.signatures.slice(1)] },
    5,
    v0,
    'unknown_signer',
  ],
  ['empty', { ...good, signatures: [] }, 5, v0, 'malformed'],
]
for (const [desc, cert, height, hash, code] of rejects) {
  test(`verifyCommit rejects: ${desc}`, () => {
    const r = verifyCommit(validatorSet, CHAIN_ID, height, hash, cert)
    assert.ok(!r.ok)
    assert.equal(r.error.code, code)
  })
}

test('verifyCommit rejects a certificate for another chain', () => {
  const r = verifyCommit(validatorSet, 'other-chain', 5, v0, good)
  assert.ok(!r.ok && r.error.code === 'bad_signature')
})

test('verifyCommit weighs by power', () => {
  const heavy = createValidatorSet(validators.map((v, i) => ({ ...v, power: i === 3 ? 10 : 1 })))
  assert.ok(heavy.ok)
  const r = verifyCommit(heavy.value, CHAIN_ID, 5, v0, good)
  assert.ok(!r.ok && r.error.code === 'insufficient_power')
})

test('a certificate round-trips through its canonical encoding; the hash is of the encoding', () => {
  const bytes = encodeCommitCertificate(good)
  const d = decodeCommitCertificate(bytes)
  assert.ok(d.ok)
  assert.deepEqual(d.value, good)
  assert.equal(toHex(commitHash(good)).length, 64)
  assert.deepEqual(commitHash(d.value), commitHash(good))
  assert.deepEqual(
    certificateVotes(good).map((v) => v.type),
    ['precommit', 'precommit', 'precommit'],
  )
})

test('decoding is strict: unsorted, duplicate, truncated, trailing and oversized input is malformed', () => {
  const bytes = encodeCommitCertificate(good)
  const cases: Uint8Array[] = [bytes.subarray(0, bytes.length - 1), new Uint8Array([...bytes, 0]), new Uint8Array(200_000), new Uint8Array([0x93, 1, 2, 3])]
  for (const c of cases) {
    const d = decodeCommitCertificate(c)
    assert.ok(!d.ok && d.error.code === 'malformed')
  }
  assert.throws(() => encodeCommitCertificate({ ...good, signatures: [...good.signatures].reverse() }), RangeError)
  assert.throws(() => encodeCommitCertificate({ ...good, signatures: [good.signatures[0]!, good.signatures[0]!] }), RangeError)
})

test('skipping verification: more than a third of a trusted set signed; strangers are skipped, forgeries are not', () => {
  // the trusted set holds validators 0 and 1 only (power 2): certificates of the later four-validator set
  const trusted = createValidatorSet([validators[0]!, validators[1]!])
  assert.ok(trusted.ok)
  const byOne = buildCommitCertificate(
    9,
    0,
    v0,
    [1, 2, 3].map((i) => vote(i, 'precommit', 9, 0, v0)),
  )
  assert.deepEqual(verifyCommitTrusting(trusted.value, CHAIN_ID, byOne), { ok: true, value: 1n }, 'one of two trusted power: more than a third')
  const byNone = buildCommitCertificate(
    9,
    0,
    v0,
    [2, 3].map((i) => vote(i, 'precommit', 9, 0, v0)),
  )
  const none = verifyCommitTrusting(trusted.value, CHAIN_ID, byNone)
  assert.ok(!none.ok && none.error.code === 'insufficient_power')
  const other = byOne.signatures.find((s) => toHex(s.validator) !== toHex(validators[1]!.address))!
  const forged = {
    ...byOne,
    signatures: byOne.signatures.map((s) => (toHex(s.validator) === toHex(validators[1]!.address) ? { ...s, signature: other.signature } : s)),
  }
  const f = verifyCommitTrusting(trusted.value, CHAIN_ID, forged)
  assert.ok(!f.ok && f.error.code === 'bad_signature', 'a trusted signer whose signature is wrong fails it, whatever else signed')
  const half = verifyCommitTrusting(validatorSet, CHAIN_ID, byNone, { numerator: 1n, denominator: 2n })
  assert.ok(!half.ok, 'two of four is not more than one half')
})
