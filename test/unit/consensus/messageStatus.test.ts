import { test } from 'node:test'
import assert from 'node:assert/strict'
import { messageStatus, repairMessages } from '../../../consensus/index.js'
import { bytesEqual, compareBytes } from '../../../crypto/index.js'
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

test('repairMessages: the last two rounds, what ended the previous one, and the polka behind the valid value, O(n) whatever the round', () => {
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
  const ended = out.filter((m) => m.kind === 'vote' && m.vote.round === state.round - 1 && m.vote.type === 'precommit')
  assert.deepEqual(
    ended.map((m) => (m.kind === 'vote' ? validators.findIndex((v) => bytesEqual(v.address, m.vote.validator)) : -1)),
    [1, 2, 3].sort((a, b) => compareBytes(validators[a]!.address, validators[b]!.address)),
    "the previous round's precommits, whoever signed them",
  )
  for (const m of out) {
    if (m.kind === 'vote' && m.vote.round !== 0) {
      assert.ok(m.vote.round >= state.round - 1, 'no old rounds besides the polka')
      if (m.vote.round === state.round - 1 && m.vote.type === 'prevote') {
        assert.deepEqual(m.vote.validator, validators[self]!.address, "of the previous round's prevotes, only its own")
      }
    }
  }
  // the polka and its proposal; of the previous round its own prevote and every precommit; all of the current round
  assert.ok(out.length <= 3 + 1 + (1 + 4) + (1 + 2 * 4), `bounded: ${out.length} messages`)
})

test('repairMessages: a validator a round ahead sends the precommits that ended the round its peers are stuck in', () => {
  // Validator 3 is Byzantine and sends its nil precommit of round 0 to validator 0 alone. Validator 0 then holds
  // 2f+1 precommits of round 0 and moves to round 1 when its timeout fires; validator 1 holds 2f and waits in round
  // 0 for a third, which no honest validator's own messages carry.
  const nil = (i: number) => input.vote(vote(i, 'precommit', 1, 0, null))
  const ahead = drive(fresh(0), [input.start(1), nil(1), nil(2), nil(3), input.timeout('precommit', 0)]).state
  assert.equal(ahead.round, 1)
  const stuck = drive(fresh(1), [input.start(1), nil(1), nil(2)])
  assert.ok(!stuck.all.some((e) => e.type === 'scheduleTimeout' && e.timeout.kind === 'precommit'), 'stuck: 2f precommits start no timeout')
  const relayed = repairMessages(ahead).map((m) => (m.kind === 'vote' ? input.vote(m.vote) : input.proposal(m.proposal)))
  const after = drive(stuck.state, relayed)
  assert.ok(
    after.all.some((e) => e.type === 'scheduleTimeout' && e.timeout.kind === 'precommit' && e.timeout.round === 0),
    'the relayed precommits start its precommit timeout of round 0',
  )
  assert.equal(drive(after.state, [input.timeout('precommit', 0)]).state.round, 1, 'and it follows to round 1')
})
