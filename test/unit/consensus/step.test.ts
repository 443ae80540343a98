import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesEqual } from '../../../crypto/index.js'
import { buildCommitCertificate, heightMessages, step, type ConsensusInput } from '../../../consensus/index.js'
import { drive, fresh, input, label, proposal, proposerIndexOf, summarize, value, vote, validatorSet, validators } from './helpers.js'

/**
 * Transition rules of Algorithm 1, one row each: a validator S (not the proposer of rounds 0 to 2) is driven
 * through `prefix`, then `input` must produce exactly `expectedEffects`.
 */

const P = [0, 1, 2, 3].map((r) => proposerIndexOf(1, r))
const S = P[3]! // S proposes in round 3 only
const [x, y, z] = [0, 1, 2, 3].filter((i) => i !== S) as [number, number, number]
const v0 = value('v0')
const v1 = value('v1')
const { start, timeout, valid, ready } = input
const pv = (i: number, round: number, v: Uint8Array | null) => input.vote(vote(i, 'prevote', 1, round, v))
const pc = (i: number, round: number, v: Uint8Array | null) => input.vote(vote(i, 'precommit', 1, round, v))
const prop = (round: number, v: Uint8Array, vr = -1) => input.proposal(proposal(P[round]!, 1, round, v, vr))

/** S locked on v1 in round 1 after a round 0 without a proposal but with a polka for v0 (x, y, z). */
const lockedOnV1InRound1: ConsensusInput[] = [
  start(),
  timeout('propose', 0),
  pv(S, 0, null),
  pv(x, 0, v0),
  pv(y, 0, v0),
  pv(z, 0, v0),
  timeout('prevote', 0),
  timeout('precommit', 0),
  prop(1, v1),
  valid(v1, true, 1, 1),
  pv(S, 1, v1),
  pv(x, 1, v1),
  pv(y, 1, v1),
  timeout('precommit', 1),
]

const rows: { desc: string; self?: number | null; prefix: ConsensusInput[]; input: ConsensusInput; expectedEffects: string[] }[] = [
  {
    desc: 'L11 StartRound(0), not the proposer: arm the propose timeout',
    prefix: [],
    input: start(),
    expectedEffects: ['scheduleTimeout propose h1 r0 3000ms'],
  },
  {
    desc: 'L14-L19 StartRound(0), the proposer without a valid value: ask for a value',
    self: P[0],
    prefix: [],
    input: start(),
    expectedEffects: ['getValue h1 r0', 'scheduleTimeout propose h1 r0 3000ms'],
  },
  {
    desc: 'L19 the value is ready: ask the guard to sign the proposal',
    self: P[0],
    prefix: [start()],
    input: ready(v0),
    expectedEffects: ['signProposal h1 r0 v0 vr-1'],
  },
  { desc: 'L19 a value for another round is ignored', self: P[0], prefix: [start()], input: ready(v0, 1, 1), expectedEffects: [] },
  {
    desc: 'L19-L22 own signed proposal: broadcast it and prevote it',
    self: P[0],
    prefix: [start(), ready(v0)],
    input: input.proposal(proposal(P[0]!, 1, 0, v0)),
    expectedEffects: ['broadcastProposal r0 v0', 'signVote prevote h1 r0 v0'],
  },
  { desc: 'L22 a proposal not yet validated: ask the host and wait', prefix: [start()], input: prop(0, v0), expectedEffects: ['validateValue h1 r0 v0'] },
  {
    desc: 'a proposal of a later round is kept, not validated until this node enters that round',
    prefix: [start()],
    input: prop(2, v0),
    expectedEffects: [],
  },
  {
    desc: 'entering a round validates the proposals held for it',
    prefix: [start(), prop(1, v0), prop(2, v1)],
    input: timeout('precommit', 0),
    expectedEffects: ['validateValue h1 r1 v0', 'scheduleTimeout propose h1 r1 3500ms'],
  },
  { desc: 'L22 the proposal is valid: prevote it', prefix: [start(), prop(0, v0)], input: valid(v0), expectedEffects: ['signVote prevote h1 r0 v0'] },
  {
    desc: 'L22 the proposal is invalid: prevote nil',
    prefix: [start(), prop(0, v0)],
    input: valid(v0, false),
    expectedEffects: ['signVote prevote h1 r0 nil'],
  },
  {
    desc: 'L22 a proposal from a validator that is not the proposer is dropped',
    prefix: [start()],
    input: input.proposal(proposal(S, 1, 0, v0)),
    expectedEffects: [],
  },
  {
    desc: 'L22 locked on another value: prevote nil on a fresh proposal',
    prefix: [...lockedOnV1InRound1, prop(2, v0)],
    input: valid(v0, true, 1, 2),
    expectedEffects: ['signVote prevote h1 r2 nil'],
  },
  { desc: 'L22 locked on the proposed value: prevote it', prefix: [...lockedOnV1InRound1], input: prop(2, v1), expectedEffects: ['signVote prevote h1 r2 v1'] },
  {
    desc: 'L28 a re-proposal of the locked value with its polka: prevote it',
    prefix: [...lockedOnV1InRound1],
    input: prop(2, v1, 1),
    expectedEffects: ['signVote prevote h1 r2 v1'],
  },
  {
    desc: 'L28 the polka of the valid round is missing: wait',
    prefix: [start(), timeout('precommit', 0), timeout('precommit', 1)],
    input: prop(2, v0, 1),
    expectedEffects: ['validateValue h1 r2 v0'],
  },
  {
    desc: 'L28 locked in a round above the valid round on another value: prevote nil',
    prefix: [...lockedOnV1InRound1, prop(2, v0, 0)],
    input: valid(v0, true, 1, 2),
    expectedEffects: ['signVote prevote h1 r2 nil'],
  },
  {
    desc: 'L28 locked below the valid round on another value: prevote the re-proposed value (unlock)',
    prefix: [
      start(),
      prop(0, v1),
      valid(v1),
      pv(S, 0, v1),
      pv(x, 0, v1),
      pv(y, 0, v1),
      timeout('precommit', 0),
      pv(x, 1, v0),
      pv(y, 1, v0),
      pv(z, 1, v0),
      timeout('precommit', 1),
      prop(2, v0, 1),
    ],
    input: valid(v0, true, 1, 2),
    expectedEffects: ['signVote prevote h1 r2 v0'],
  },
  {
    desc: 'L34 2f+1 prevotes for anything: arm the prevote timeout',
    prefix: [start(), timeout('propose', 0), pv(S, 0, null), pv(x, 0, v0)],
    input: pv(y, 0, v1),
    expectedEffects: ['scheduleTimeout prevote h1 r0 1000ms'],
  },
  { desc: 'L34 2f prevotes do not arm it', prefix: [start(), timeout('propose', 0), pv(S, 0, null)], input: pv(y, 0, v1), expectedEffects: [] },
  {
    desc: 'L36 a polka for the proposal while in prevote: lock and precommit it',
    prefix: [start(), prop(0, v0), valid(v0), pv(S, 0, v0), pv(x, 0, v0)],
    input: pv(y, 0, v0),
    expectedEffects: ['scheduleTimeout prevote h1 r0 1000ms', 'signVote precommit h1 r0 v0'],
  },
  {
    desc: 'L36 a polka without the proposal does nothing but L34',
    prefix: [start(), timeout('propose', 0), pv(x, 0, v0), pv(y, 0, v0)],
    input: pv(z, 0, v0),
    expectedEffects: ['scheduleTimeout prevote h1 r0 1000ms'],
  },
  {
    desc: 'L36 a polka after precommitting nil only updates the valid value',
    prefix: [start(), prop(0, v0), timeout('propose', 0), timeout('prevote', 0), valid(v0), pv(x, 0, v0), pv(y, 0, v0)],
    input: pv(z, 0, v0),
    expectedEffects: [],
  },
  {
    desc: 'L44 a polka for nil while in prevote: precommit nil',
    prefix: [start(), timeout('propose', 0), pv(S, 0, null), pv(x, 0, null)],
    input: pv(y, 0, null),
    expectedEffects: ['scheduleTimeout prevote h1 r0 1000ms', 'signVote precommit h1 r0 nil'],
  },
  {
    desc: 'L47 2f+1 precommits for anything: arm the precommit timeout',
    prefix: [start(), pc(x, 0, v0), pc(y, 0, null)],
    input: pc(z, 0, null),
    expectedEffects: ['scheduleTimeout precommit h1 r0 1000ms'],
  },
  {
    desc: 'L49 2f+1 precommits for a value: decide it with the certificate',
    prefix: [start(), pc(x, 0, v0), pc(y, 0, v0)],
    input: pc(z, 0, v0),
    expectedEffects: ['decide h1 r0 v0 signers=3'],
  },
  {
    desc: 'L49 precommits of an earlier round decide in a later round',
    prefix: [start(), timeout('precommit', 0), timeout('precommit', 1), pc(x, 0, v0), pc(y, 0, v0)],
    input: pc(z, 0, v0),
    expectedEffects: ['decide h1 r0 v0 signers=3'],
  },
  {
    desc: 'L49 after deciding, further messages of the height are ignored',
    prefix: [start(), pc(x, 0, v0), pc(y, 0, v0), pc(z, 0, v0)],
    input: pc(S, 0, v0),
    expectedEffects: [],
  },
  {
    desc: 'L55 f+1 messages of a higher round: start that round',
    prefix: [start(), pv(x, 3, null)],
    input: pc(y, 3, null),
    expectedEffects: ['getValue h1 r3', 'scheduleTimeout propose h1 r3 4500ms'],
  },
  { desc: 'L55 f messages of a higher round are not enough', prefix: [start()], input: pv(x, 3, null), expectedEffects: [] },
  { desc: 'L55 one validator counts once however many messages it sends', prefix: [start(), pv(x, 2, null)], input: pc(x, 2, null), expectedEffects: [] },
  {
    desc: 'L57 propose timeout in the propose step: prevote nil',
    prefix: [start()],
    input: timeout('propose', 0),
    expectedEffects: ['signVote prevote h1 r0 nil'],
  },
  {
    desc: 'L61 prevote timeout in the prevote step: precommit nil',
    prefix: [start(), timeout('propose', 0)],
    input: timeout('prevote', 0),
    expectedEffects: ['signVote precommit h1 r0 nil'],
  },
  {
    desc: 'L65 precommit timeout: start the next round',
    prefix: [start()],
    input: timeout('precommit', 0),
    expectedEffects: ['scheduleTimeout propose h1 r1 3500ms'],
  },
  { desc: 'a timeout of a past round is ignored', prefix: [start(), timeout('precommit', 0)], input: timeout('propose', 0), expectedEffects: [] },
  { desc: 'a timeout of another height is ignored', prefix: [start()], input: timeout('propose', 0, 2), expectedEffects: [] },
  {
    desc: 'L15-L16 the proposer re-proposes its valid value with its valid round',
    prefix: [start(), prop(0, v0), valid(v0), pv(x, 0, v0), pv(y, 0, v0), pv(z, 0, v0), timeout('precommit', 0), timeout('precommit', 1)],
    input: timeout('precommit', 2),
    expectedEffects: ['signProposal h1 r3 v0 vr0', 'scheduleTimeout propose h1 r3 4500ms'],
  },
  { desc: 'own vote back from the guard: broadcast it', prefix: [start()], input: pv(S, 0, null), expectedEffects: ['broadcastVote prevote r0 nil'] },
  { desc: 'a duplicate vote changes nothing', prefix: [start(), pv(x, 0, v0)], input: pv(x, 0, v0), expectedEffects: [] },
  { desc: 'a conflicting vote is evidence', prefix: [start(), pv(x, 0, v0)], input: pv(x, 0, v1), expectedEffects: ['evidence conflictingVotes'] },
  { desc: 'a third vote of an equivocator is not reported again', prefix: [start(), pv(x, 0, v0), pv(x, 0, v1)], input: pv(x, 0, null), expectedEffects: [] },
  {
    desc: 'a conflicting proposal is evidence (and its value gets validated)',
    prefix: [start(), prop(0, v0)],
    input: prop(0, v1),
    expectedEffects: ['evidence conflictingProposals', 'validateValue h1 r0 v1'],
  },
  {
    desc: 'a vote with a bad signature is dropped',
    prefix: [start(), pv(x, 0, null)],
    input: input.vote({ ...vote(y, 'prevote', 1, 0, null), signature: vote(y, 'prevote', 1, 0, v0).signature }),
    expectedEffects: [],
  },
  {
    desc: 'a vote signed by another key than its validator is dropped',
    prefix: [start(), pv(x, 0, null), pv(y, 0, null)],
    input: input.vote({ ...vote(z, 'prevote', 1, 0, null), validator: validators[S]!.address }),
    expectedEffects: [],
  },
  { desc: 'an observer never asks to sign', self: null, prefix: [start()], input: timeout('propose', 0), expectedEffects: [] },
]

for (const row of rows) {
  test(row.desc, () => {
    const self = row.self === undefined ? S : row.self
    const { state } = drive(fresh(self), row.prefix)
    const r = step(state, row.input)
    assert.deepEqual(r.effects.map(summarize), row.expectedEffects)
  })
}

test('the proposers of rounds 0..3 are four different validators (the table relies on it)', () => {
  assert.equal(new Set(P).size, 4)
})

test('L36 locks: lockedValue, lockedRound, validValue and validRound are set', () => {
  const { state } = drive(fresh(S), [start(), prop(0, v0), valid(v0), pv(S, 0, v0), pv(x, 0, v0), pv(y, 0, v0)])
  assert.equal(label(state.lockedValue), 'v0')
  assert.equal(state.lockedRound, 0)
  assert.equal(label(state.validValue), 'v0')
  assert.equal(state.validRound, 0)
  assert.equal(state.step, 'precommit')
})

test('L36 after precommitting nil: valid value set, no lock', () => {
  const { state } = drive(fresh(S), [start(), prop(0, v0), timeout('propose', 0), timeout('prevote', 0), valid(v0), pv(x, 0, v0), pv(y, 0, v0), pv(z, 0, v0)])
  assert.equal(state.lockedRound, -1)
  assert.equal(label(state.validValue), 'v0')
  assert.equal(state.validRound, 0)
})

test('the decision carries a certificate of the precommits, sorted by address', () => {
  const { effects } = drive(fresh(S), [start(), pc(z, 0, v0), pc(x, 0, v0), pc(y, 0, v0)])
  const d = effects.find((e) => e.type === 'decide')
  assert.ok(d !== undefined && d.type === 'decide')
  const expected = buildCommitCertificate(1, 0, v0, [vote(x, 'precommit', 1, 0, v0), vote(y, 'precommit', 1, 0, v0), vote(z, 'precommit', 1, 0, v0)])
  assert.deepEqual(d.certificate, expected)
})

test('messages for the next height are buffered and replayed at startHeight', () => {
  const h2 = (i: number) => input.vote(vote(i, 'precommit', 2, 0, v1))
  let { state } = drive(fresh(S), [start(), h2(x), h2(y), h2(z)])
  assert.equal(state.future.length, 3)
  ;({ state } = drive(state, [pc(x, 0, v0), pc(y, 0, v0), pc(z, 0, v0)]))
  assert.equal(state.step, 'decided')
  const r = step(state, start(2))
  const startEffects = proposerIndexOf(2, 0) === S ? ['getValue h2 r0', 'scheduleTimeout propose h2 r0 3000ms'] : ['scheduleTimeout propose h2 r0 3000ms']
  assert.deepEqual(r.effects.map(summarize), [...startEffects, 'decide h2 r0 v1 signers=3'], 'the buffered precommits decide height 2 right away')
  assert.equal(r.state.future.length, 0)
})

test('far-future messages are dropped, not buffered; stale ones too', () => {
  const { state } = drive(fresh(S), [start(), input.vote(vote(x, 'prevote', 4, 0, null)), input.vote(vote(x, 'prevote', 2, 11, null)), pv(x, 11, null)])
  assert.equal(state.future.length, 0)
  assert.equal(state.rounds[11], undefined)
  const later = drive(fresh(S), [start(), pc(x, 0, v0), pc(y, 0, v0), pc(z, 0, v0), start(2)]).state
  const r = step(later, pv(y, 0, v0))
  assert.deepEqual(r.effects, [])
  assert.equal(Object.keys(r.state.rounds[0]!.prevotes.votes).length, 0)
})

test('the buffer keeps at most two messages per sender and slot', () => {
  const { state } = drive(fresh(S), [
    start(),
    input.vote(vote(x, 'prevote', 2, 0, null)),
    input.vote(vote(x, 'prevote', 2, 0, v0)),
    input.vote(vote(x, 'prevote', 2, 0, v1)),
    input.vote(vote(x, 'prevote', 2, 0, v0)),
  ])
  assert.equal(state.future.length, 2)
})

test('step never changes the state it is given', () => {
  const { state } = drive(fresh(S), [start(), prop(0, v0), valid(v0), pv(S, 0, v0), pv(x, 0, v0)])
  const snapshot = structuredClone(state)
  step(state, pv(y, 0, v0))
  step(state, timeout('precommit', 0))
  assert.deepEqual(state, snapshot)
})

test('the same inputs give the same states and effects (replay)', () => {
  const inputs = [...lockedOnV1InRound1, prop(2, v0), valid(v0, true, 1, 2)]
  const a = drive(fresh(S), inputs)
  const b = drive(fresh(S), inputs)
  assert.deepEqual(a.state, b.state)
  assert.deepEqual(a.all, b.all)
})

test('a verified commit certificate decides the height; a forged one is ignored', () => {
  const cert = buildCommitCertificate(1, 2, v0, [vote(x, 'precommit', 1, 2, v0), vote(y, 'precommit', 1, 2, v0), vote(z, 'precommit', 1, 2, v0)])
  const base = drive(fresh(S), [start()]).state
  const ok = step(base, { type: 'commitCertificate', certificate: cert })
  assert.deepEqual(ok.effects.map(summarize), ['decide h1 r2 v0 signers=3'])
  const forged = { ...cert, valueId: v1 }
  assert.deepEqual(step(base, { type: 'commitCertificate', certificate: forged }).effects, [])
  const short = { ...cert, signatures: cert.signatures.slice(0, 2) }
  assert.deepEqual(step(base, { type: 'commitCertificate', certificate: short }).effects, [])
})

test('startHeight must go up: anything else is a host bug and throws', () => {
  const { state } = drive(fresh(S), [start()])
  assert.throws(() => step(state, start(1)), /does not follow/)
})

test('votes of an equivocator count for each value it voted for', () => {
  // x sends v0 to S first, then v1; y and z vote v1: v1 has 3 votes (x counted), a quorum.
  const { effects, state } = drive(fresh(S), [start(), pc(x, 0, v0), pc(x, 0, v1), pc(y, 0, v1), pc(z, 0, v1)])
  assert.deepEqual(effects.map(summarize), ['decide h1 r0 v1 signers=3'])
  assert.ok(state.decision !== null && bytesEqual(state.decision.valueId, v1))
  assert.equal(validatorSet.validators.length, 4)
})

test('heightMessages lists what the core holds for the height, for gossip repair', () => {
  const { state } = drive(fresh(S), [start(), prop(0, v0), pv(y, 0, v0), pv(x, 0, v0), pc(x, 0, null), pv(x, 2, null)])
  const list = heightMessages(state).map((m) => (m.kind === 'proposal' ? `proposal r${m.proposal.round}` : `${m.vote.type} r${m.vote.round}`))
  assert.deepEqual(list, ['proposal r0', 'prevote r0', 'prevote r0', 'precommit r0', 'prevote r2'])
})
