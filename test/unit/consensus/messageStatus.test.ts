import { test } from 'node:test'
import assert from 'node:assert/strict'
import { messageStatus, repairMessages } from '../../../consensus/index.js'
import { drive, fresh, input, proposal, proposerIndexOf, validators, value, vote } from './helpers.js'

test('messageStatus: new, known and drop, mirroring what step keeps', () => {
  const p0 = proposerIndexOf(1, 0)
  const notP0 = (p0 + 1) % 4
  const { state } = drive(fresh(0), [input.start(1), input.vote(vote(1, 'prevote', 1, 0, value('v0')))])
  const rows = [
    { desc: 'a vote already held', m: { kind: 'vote' as const, vote: vote(1, 'prevote', 1, 0, value('v0')) }, want: 'known' },
    { desc: 'a new vote', m: { kind: 'vote' as const, vote: vote(2, 'prevote', 1, 0, value('v0')) }, want: 'new' },
    { desc: 'a conflicting vote is new (evidence)', m: { kind: 'vote' as const, vote: vote(1, 'prevote', 1, 0, value('v1')) }, want: 'new' },
    { desc: 'a nil prevote of another validator', m: { kind: 'vote' as const, vote: vote(2, 'prevote', 1, 0, null) }, want: 'new' },
    { desc: 'next height is buffered', m: { kind: 'vote' as const, vote: vote(2, 'prevote', 2, 0, null) }, want: 'new' },
    { desc: 'too far ahead', m: { kind: 'vote' as const, vote: vote(2, 'prevote', 9, 0, null) }, want: 'drop' },
    { desc: 'round too far ahead', m: { kind: 'vote' as const, vote: vote(2, 'prevote', 1, 500, null) }, want: 'drop' },
    { desc: 'not a validator', m: { kind: 'vote' as const, vote: { ...vote(2, 'prevote', 1, 0, null), validator: new Uint8Array(20) } }, want: 'drop' },
    { desc: "the round's proposer", m: { kind: 'proposal' as const, proposal: proposal(p0, 1, 0, value('v0')) }, want: 'new' },
    { desc: "not the round's proposer", m: { kind: 'proposal' as const, proposal: proposal(notP0, 1, 0, value('v0')) }, want: 'drop' },
  ]
  for (const r of rows) assert.equal(messageStatus(state, r.m), r.want, r.desc)
  const stale = drive(state, [input.start(2)]).state
  assert.equal(messageStatus(stale, { kind: 'vote', vote: vote(2, 'prevote', 1, 0, null) }), 'drop', 'a finished height')
})

test('messageStatus: a conflicting vote the core would not keep is dropped, so a host never logs it', () => {
  // validator 1 signs three different prevotes of one round: the core counts them all (the bound), then no more
  const three = [value('a'), value('b'), value('c')].map((v) => input.vote(vote(1, 'prevote', 1, 0, v)))
  const { state } = drive(fresh(0), [input.start(1), ...three])
  assert.equal(messageStatus(state, { kind: 'vote', vote: vote(1, 'prevote', 1, 0, value('d')) }), 'drop', 'a fourth value nobody else voted for')
  const supported = drive(state, [input.vote(vote(2, 'prevote', 1, 0, value('e')))]).state
  assert.equal(
    messageStatus(supported, { kind: 'vote', vote: vote(1, 'prevote', 1, 0, value('e')) }),
    'new',
    'a value another validator voted for still counts',
  )
  // the next height's buffer holds two messages per sender and slot
  const later = drive(fresh(0), [input.start(1), ...[value('a'), value('b')].map((v) => input.vote(vote(1, 'prevote', 2, 0, v)))]).state
  assert.equal(messageStatus(later, { kind: 'vote', vote: vote(1, 'prevote', 2, 0, value('a')) }), 'known')
  assert.equal(messageStatus(later, { kind: 'vote', vote: vote(1, 'prevote', 2, 0, value('c')) }), 'drop', 'a third, with the slot full')
})

test('repairMessages: own messages of the last two rounds and the polka behind the valid value, O(n) whatever the round', () => {
  const self = 0
  const p0 = proposerIndexOf(1, 0)
  const v0 = value('v0')
  // round 0: a polka for v0 makes it the valid value; then rounds pass on nil
  const inputs = [input.start(1), input.proposal(proposal(p0, 1, 0, v0)), input.valid(v0)]
  for (let i = 1; i < 4; i++) inputs.push(input.vote(vote(i, 'prevote', 1, 0, v0)))
  let { state } = drive(fresh(self), inputs)
  assert.equal(state.validRound, 0)
  for (let r = 1; r <= 20; r++) {
    const more = [input.timeout('precommit', r - 1)]
    for (let i = 1; i < 4; i++) more.push(input.vote(vote(i, 'precommit', 1, r - 1, null)))
    state = drive(state, more).state
  }
  assert.ok(state.round >= 20)
  const out = repairMessages(state)
  const polka = out.filter((m) => m.kind === 'vote' && m.vote.round === 0 && m.vote.type === 'prevote')
  assert.equal(polka.length, 3, 'the round-0 polka goes out again')
  assert.ok(
    out.some((m) => m.kind === 'proposal' && m.proposal.round === 0),
    'with the proposal of the valid value',
  )
  for (const m of out) {
    if (m.kind === 'vote' && m.vote.round !== 0) {
      assert.ok(m.vote.round >= state.round - 1, 'no old rounds besides the polka')
      assert.deepEqual(m.vote.validator, validators[self]!.address, 'only own votes of recent rounds')
    }
  }
  assert.ok(out.length <= 3 + 1 + 2 * 3, `bounded: ${out.length} messages`)
})
