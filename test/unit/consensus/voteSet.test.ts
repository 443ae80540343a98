import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addVote, emptyVoteSet, hasVote, MAX_VOTES_PER_VALIDATOR, powerFor, votesFor } from '../../../consensus/index.js'
import { compareBytes, toHex } from '../../../crypto/index.js'
import { validators, value, vote } from './helpers.js'

const v0 = value('v0')
const v1 = value('v1')

test('votes are tallied by value with weights, and in total once per validator', () => {
  const set = emptyVoteSet('prevote')
  assert.deepEqual(addVote(set, vote(0, 'prevote', 1, 0, v0), 5), { kind: 'added' })
  assert.deepEqual(addVote(set, vote(1, 'prevote', 1, 0, v0), 7), { kind: 'added' })
  assert.deepEqual(addVote(set, vote(2, 'prevote', 1, 0, null), 1), { kind: 'added' })
  assert.equal(powerFor(set, v0), 12n)
  assert.equal(powerFor(set, null), 1n)
  assert.equal(powerFor(set, v1), 0n)
  assert.equal(set.totalPower, 13n)
})

test('an identical vote is a duplicate and changes nothing', () => {
  const set = emptyVoteSet('prevote')
  addVote(set, vote(0, 'prevote', 1, 0, v0), 1)
  assert.deepEqual(addVote(set, vote(0, 'prevote', 1, 0, v0), 1), { kind: 'duplicate' })
  assert.equal(set.totalPower, 1n)
  assert.equal(powerFor(set, v0), 1n)
  assert.ok(hasVote(set, vote(0, 'prevote', 1, 0, v0)))
})

test('a conflicting vote is reported once as evidence, counted for its value but not twice in the total', () => {
  const set = emptyVoteSet('precommit')
  const first = vote(0, 'precommit', 1, 0, v0)
  addVote(set, first, 1)
  const r = addVote(set, vote(0, 'precommit', 1, 0, v1), 1)
  assert.equal(r.kind, 'conflict')
  assert.ok(r.kind === 'conflict' && r.report && r.counted && r.first === first)
  assert.equal(powerFor(set, v1), 1n)
  assert.equal(set.totalPower, 1n)
  const again = addVote(set, vote(0, 'precommit', 1, 0, null), 1)
  assert.ok(again.kind === 'conflict' && !again.report)
})

test("an equivocator's votes are kept within a bound", () => {
  const set = emptyVoteSet('prevote')
  for (let i = 0; i < 10; i++) addVote(set, vote(0, 'prevote', 1, 0, value(`x${i}`)), 1)
  assert.equal(Object.values(set.votes)[0]!.length, MAX_VOTES_PER_VALIDATOR)
  assert.equal(powerFor(set, value('x9')), 0n)
})

test("beyond the bound, an equivocator's vote still counts for a value others voted for (every node can complete the polka)", () => {
  const set = emptyVoteSet('prevote')
  for (let i = 0; i < 3; i++) addVote(set, vote(0, 'prevote', 1, 0, value(`x${i}`)), 1)
  const early = addVote(set, vote(0, 'prevote', 1, 0, v1), 1)
  assert.ok(early.kind === 'conflict' && !early.counted, 'a fourth value nobody else voted for is not kept')
  addVote(set, vote(1, 'prevote', 1, 0, v1), 1)
  addVote(set, vote(2, 'prevote', 1, 0, v1), 1)
  const again = addVote(set, vote(0, 'prevote', 1, 0, v1), 1)
  assert.ok(again.kind === 'conflict' && again.counted, 're-sent with the polka, it counts')
  assert.equal(powerFor(set, v1), 3n)
  for (let i = 3; i < 20; i++) addVote(set, vote(0, 'prevote', 1, 0, value(`x${i}`)), 1)
  assert.equal(set.votes[toHex(validators[0]!.address)]!.length, MAX_VOTES_PER_VALIDATOR + 1, 'unsupported values stay bounded')
})

test('votesFor lists one vote per validator for the value, in address order', () => {
  const set = emptyVoteSet('precommit')
  for (const i of [3, 1, 0, 2]) addVote(set, vote(i, 'precommit', 1, 0, i === 2 ? null : v0), 1)
  const list = votesFor(set, v0)
  assert.equal(list.length, 3)
  for (let i = 1; i < list.length; i++) assert.ok(compareBytes(list[i - 1]!.validator, list[i]!.validator) < 0)
})
