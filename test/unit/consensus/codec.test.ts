import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/index.js'
import { decodeSignedProposal, decodeSignedVote, encodeSignedProposal, encodeSignedVote, proposalSignBytes, voteSignBytes } from '../../../consensus/index.js'
import { encodeCanonical } from '../../../crypto/index.js'
import { CHAIN_ID, proposal, value, vote } from './helpers.js'

const v0 = value('v0')

test('sign bytes are the canonical tuple [domain, chainId, height, round, valueId | null, ...] (golden)', () => {
  const body = { height: 1, round: 0, valueId: null }
  assert.equal(toHex(voteSignBytes('c', { type: 'prevote', ...body })), '95b07461 6c6c792f 70726576 6f74652f 7631 a163 01 00 c0'.replace(/ /g, ''))
  assert.equal(toHex(voteSignBytes('c', { type: 'precommit', ...body })), toHex(encodeCanonical(['tally/precommit/v1', 'c', 1, 0, null])))
  const p = { height: 7, round: 2, valueId: new Uint8Array(32).fill(0xab), polRound: -1 }
  assert.equal(toHex(proposalSignBytes('c', p)), toHex(encodeCanonical(['tally/proposal/v1', 'c', 7, 2, p.valueId, -1])))
})

test('a prevote and a precommit for the same thing have different sign bytes', () => {
  const b = { height: 1, round: 0, valueId: v0 }
  assert.notEqual(toHex(voteSignBytes(CHAIN_ID, { type: 'prevote', ...b })), toHex(voteSignBytes(CHAIN_ID, { type: 'precommit', ...b })))
})

test('votes and proposals round-trip through the wire codecs', () => {
  for (const v of [vote(0, 'prevote', 1, 0, v0), vote(1, 'precommit', 2 ** 32 - 1, 1_000_000, null)]) {
    const d = decodeSignedVote(encodeSignedVote(v))
    assert.ok(d.ok)
    assert.deepEqual(d.value, v)
  }
  for (const p of [proposal(2, 1, 0, v0), proposal(2, 3, 5, v0, 4)]) {
    const d = decodeSignedProposal(encodeSignedProposal(p))
    assert.ok(d.ok)
    assert.deepEqual(d.value, p)
  }
})

test('decoding rejects malformed input with a typed error', () => {
  const good = vote(0, 'prevote', 1, 0, v0)
  const field = (f: unknown[]) => encodeCanonical(f as never)
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array()],
    ['oversized', new Uint8Array(300)],
    ['trailing byte', new Uint8Array([...encodeSignedVote(good), 0])],
    ['wrong field count', field([1, 1, 0, v0, good.validator])],
    ['unknown type', field([3, 1, 0, v0, good.validator, good.signature])],
    ['height 0', field([1, 0, 0, v0, good.validator, good.signature])],
    ['negative round', field([1, 1, -1, v0, good.validator, good.signature])],
    ['round too large', field([1, 1, 1_000_001, v0, good.validator, good.signature])],
    ['short value id', field([1, 1, 0, v0.subarray(0, 31), good.validator, good.signature])],
    ['short address', field([1, 1, 0, v0, good.validator.subarray(0, 19), good.signature])],
    ['short signature', field([1, 1, 0, v0, good.validator, good.signature.subarray(0, 63)])],
    ['bigint height', field([1, 1n, 0, v0, good.validator, good.signature])],
    ['string value', field([1, 1, 0, 'v0', good.validator, good.signature])],
  ]
  for (const [why, bytes] of cases) {
    const d = decodeSignedVote(bytes)
    assert.ok(!d.ok, why)
    assert.equal(d.error.code, 'malformed', why)
  }
  const p = proposal(2, 1, 0, v0)
  const badProposals: [string, Uint8Array][] = [
    ['polRound equal to round', field([1, 3, v0, 3, p.proposer, p.signature])],
    ['polRound below -1', field([1, 3, v0, -2, p.proposer, p.signature])],
    ['nil value', field([1, 0, null, -1, p.proposer, p.signature])],
  ]
  for (const [why, bytes] of badProposals) {
    const d = decodeSignedProposal(bytes)
    assert.ok(!d.ok && d.error.code === 'malformed', why)
  }
})

test('encoders refuse out-of-format values (a caller bug)', () => {
  assert.throws(() => encodeSignedVote({ ...vote(0, 'prevote', 1, 0, v0), round: -1 }), RangeError)
  assert.throws(() => encodeSignedProposal({ ...proposal(0, 1, 0, v0), polRound: 0 }), RangeError)
  // heights are 32-bit: beyond, a MessagePack number would be a float64
  assert.throws(() => encodeSignedVote({ ...vote(0, 'prevote', 1, 0, v0), height: 2 ** 32 }), RangeError)
})
