import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runSimulation, simProposer, simValidators, type SimOptions } from './simulation.js'
import { Trace, isProposal, isVote } from './trace.js'
import type { ConsensusGossip } from '../../node/sync/consensusMessages.js'

/**
 * Named scenarios of Algorithm 1, each built to exercise one rule end to end through real consensus hosts (real
 * admission, WAL, guard, block building and validation) on a scripted network: the `route` hook delays or drops
 * chosen messages. Each asserts that the intended situation really arose (from the trace) and that every invariant
 * held, except the last, which proves that the checker catches an agreement violation when f+1 validators collude.
 * Gossip is one hop and the hosts repair it themselves (`rebroadcast`), as the node does.
 */

const SEED = 7
const N = 4
const nodes = simValidators(SEED, N)
const P0 = simProposer(SEED, N, 1, 0)
const P1 = simProposer(SEED, N, 1, 1)
const P2 = simProposer(SEED, N, 1, 2)
const others = (...xs: number[]) => [...Array(N).keys()].filter((i) => !xs.includes(i))

async function run(options: Omit<SimOptions, 'seed' | 'validators' | 'heights'> & { heights?: number }) {
  const trace = new Trace()
  const result = await runSimulation({ seed: SEED, validators: N, heights: 1, clients: false, ...options, observe: trace.observe })
  return { trace, result }
}

test('proposers of rounds 0, 1, 2 are distinct (the scenarios rely on it)', () => {
  assert.equal(new Set([P0, P1, P2]).size, 3)
})

test('n4f0_lockThenRelockOnNewerPolka: a lock holds against a fresh value, then moves to a newer polka (L22, L36)', async () => {
  // A locks v0 in round 0 (it alone sees the polka); D gets the round-0 proposal too late and prevotes nil,
  // so the others precommit nil. In round 1, P1 proposes a fresh v1: A, locked, prevotes nil (L22), then sees
  // the polka for v1 and relocks on it (L36).
  const [A, D] = others(P0, P1) as [number, number]
  const { trace, result } = await run({
    route: (m) => {
      if (isProposal(m, 1, 0) && m.to === D) return 3000
      if (isVote(m, 'prevote', 1, 0, nodes[A]!.address) && m.to !== A) return 'drop'
      return undefined
    },
  })
  assert.deepEqual(result.violations, [])
  const v0 = trace.proposed(0)!
  const v1 = trace.proposed(1)!
  assert.notEqual(v0, v1)
  assert.deepEqual(
    trace.locks.filter((l) => l.node === A).map((l) => [l.lockedRound, l.value]),
    [
      [0, v0],
      [1, v1],
    ],
  )
  assert.deepEqual(trace.votesOf(A, 'prevote', 1), [null], 'the locked validator prevotes nil on a fresh value')
  assert.deepEqual(trace.votesOf(A, 'precommit', 1), [v1])
  for (let i = 0; i < N; i++) assert.equal(result.commits[i]!.get(1), v1)
  assert.equal(result.coverage.relocks, 1)
})

test('n4f0_wipedWhileLockedKeepsItsLock: a validator locked at a height, wiped and synced back to it, still holds its lock (L22)', async () => {
  // As in the relock scenario but at height 5: A alone sees the round-0 polka for v0 and locks it, then crashes
  // right after its precommit and restarts with data/ deleted. It syncs heights 1-4 back; at height 5 its WAL's
  // records are replayed, so when P1 proposes a fresh value in round 1 it prevotes nil (L22), as a node that never
  // lost its data would. Without the replay it would prevote the fresh value against its lock.
  const H = 5
  const p0 = simProposer(SEED, N, H, 0)
  const p1 = simProposer(SEED, N, H, 1)
  const [A, D] = others(p0, p1) as [number, number]
  const { trace, result } = await run({
    heights: 6,
    route: (m) => {
      if (isProposal(m, H, 0) && m.to === D) return 3000
      if (isVote(m, 'prevote', H, 0, nodes[A]!.address) && m.to !== A) return 'drop'
      return undefined
    },
    crashes: { [A]: [{ afterSend: (s) => s.type === 'precommit' && s.height === H && s.round === 0 && s.value !== null, downMs: 200, wipe: true }] },
  })
  assert.deepEqual(result.violations, [])
  assert.equal(trace.restarts.filter((r) => r.node === A).length, 1, 'A crashed and restarted once')
  const restart = trace.restarts.find((r) => r.node === A)!
  const locks = trace.locks.filter((l) => l.node === A && l.height === H && l.lockedRound === 0)
  assert.ok(
    locks.some((l) => l.time < restart.time),
    'A locked in round 0 before the crash',
  )
  assert.ok(
    trace.votesOf(A, 'prevote', 1, H).length > 0 && trace.votes.some((v) => v.node === A && v.height === H && v.round === 1 && v.time > restart.time),
    'A reached round 1 of the height after the restart',
  )
  assert.deepEqual(trace.votesOf(A, 'prevote', 1, H), [null], 'after the wipe, A still prevotes nil on a fresh value')
  for (let i = 0; i < N; i++) assert.ok(result.commits[i]!.has(H), `validator ${i} committed height ${H}`)
})

test('n4f0_unlockOnLaterPolka: a proposal whose valid round is above the lock unlocks it (L28)', async () => {
  // As above, A locks v0 in round 0 unseen. In round 1, P1 proposes v1; P1 and D see its polka (and lock it), A
  // and P0 do not (D's prevote reaches them late), so round 1 ends without a decision. In round 2, D re-proposes
  // v1 with valid round 1: once A holds the round-1 polka it prevotes v1 although locked on v0 in round 0 (L28).
  const A = others(P0, P1, P2)[0]!
  const D = P2
  const late = 3700 // within A's round-2 propose step, after its round-1 prevote step
  const { trace, result } = await run({
    route: (m) => {
      if (isProposal(m, 1, 0) && m.to === D) return 3000
      if (isVote(m, 'prevote', 1, 0, nodes[A]!.address) && m.to !== A) return 'drop'
      if (isVote(m, 'prevote', 1, 1, nodes[D]!.address) && (m.to === A || m.to === P0)) return Math.max(1, late - m.time)
      return undefined
    },
  })
  assert.deepEqual(result.violations, [])
  const v0 = trace.proposed(0)!
  const v1 = trace.proposed(1)!
  assert.deepEqual(
    trace.proposals.filter((p) => p.round === 2).map((p) => [p.node, p.value, p.polRound]),
    [[D, v1, 1]],
  )
  const prevote2 = trace.votes.find((v) => v.node === A && v.type === 'prevote' && v.round === 2)!
  const lockBefore = trace.locks.filter((l) => l.node === A && l.time < prevote2.time).at(-1)!
  assert.deepEqual([lockBefore.lockedRound, lockBefore.value], [0, v0], 'A was locked on v0 when it prevoted')
  assert.equal(prevote2.value, v1, 'A prevoted the value of the newer polka')
  assert.deepEqual(trace.votesOf(A, 'prevote', 1), [null])
  for (let i = 0; i < N; i++) assert.equal(result.commits[i]!.get(1), v1)
  assert.ok(result.coverage.l28Unlocks >= 1)
})

test('n4f0_hiddenLockRevealedByGossip: a value locked by one validator alone is decided once its polka spreads (L28, L49)', async () => {
  // A (the round-1 proposer) alone sees the round-0 polka for v0 and locks it; its own prevote reaches the others
  // only during round 1, so A's re-proposal of v0 with valid round 0 becomes justified and v0 is decided.
  const A = P1
  const D = others(P0, P1)[0]!
  const { trace, result } = await run({
    route: (m) => {
      if (isProposal(m, 1, 0) && m.to === D) return 3000
      if (isVote(m, 'prevote', 1, 0, nodes[A]!.address) && m.to !== A) return Math.max(1, 2600 - m.time)
      return undefined
    },
  })
  assert.deepEqual(result.violations, [])
  const v0 = trace.proposed(0)!
  assert.deepEqual(trace.locks.filter((l) => l.node === A).map((l) => [l.lockedRound, l.value])[0], [0, v0])
  assert.deepEqual(
    trace.proposals.filter((p) => p.round === 1).map((p) => [p.node, p.value, p.polRound]),
    [[A, v0, 0]],
  )
  for (const i of others(A)) assert.equal(trace.locks.filter((l) => l.node === i && l.lockedRound === 0).length, 0, `validator ${i} did not lock in round 0`)
  for (let i = 0; i < N; i++) assert.equal(result.commits[i]!.get(1), v0)
  assert.ok(trace.commits.every((c) => c.round === 1))
})

test('n4f0_roundSkipOnFPlusOne: a validator that fell behind jumps to the round f+1 others are in (L55)', async () => {
  // X hears nothing until 6 s (and never anything of rounds 0 and 1) while no proposal gets through, so the
  // others run through empty rounds. When X hears f+1 validators in their current round, it jumps there
  // directly instead of timing out every round in between.
  const X = others(P0)[0]!
  const T = 6000
  const roundOf = (m: ConsensusGossip) => (m.kind === 'vote' ? m.vote.round : m.kind === 'proposal' ? m.message.proposal.round : -1)
  const { trace, result } = await run({
    route: (m) => {
      if (m.channel !== 'consensus') return undefined
      if (m.time < T && m.message?.kind === 'proposal') return 'drop'
      if (m.to === X && (m.time < T || (m.message !== undefined && roundOf(m.message) < 2))) return 'drop'
      return undefined
    },
  })
  assert.deepEqual(result.violations, [])
  const jump = trace.roundChanges.find((c) => c.node === X && c.to !== 0)
  assert.ok(jump !== undefined && jump.from === 0 && jump.to >= 2, `X went from round 0 straight to ${jump?.to}`)
  assert.ok(jump.time >= T, "the skip came with the messages, not with X's own timeouts")
  assert.equal(new Set(result.commits.map((c) => c.get(1))).size, 1)
})

test('n4f0_decisionInEarlierRound: precommits of an earlier round decide while validators are in a later one (L49)', async () => {
  // Round 0 gets a polka for v0, but X prevotes nil (the proposal reaches it late) and P0's precommit is held
  // back, so round 0 shows the others only two precommits for v0. No later proposal gets through (and P0, which
  // decides at once, serves no block until 7 s); when P0's round-0 precommit finally arrives, the validators decide v0
  // in round 0 while they are in a later round.
  const X = others(P0)[0]!
  const { trace, result } = await run({
    route: (m) => {
      if (m.channel !== 'consensus') return m.from === P0 || m.to === P0 ? Math.max(1, 7000 - m.time) : undefined
      if (isProposal(m, 1, 0) && m.to === X) return 3000
      if (m.message?.kind === 'proposal' && m.message.message.proposal.round >= 1) return 'drop'
      if (isVote(m, 'precommit', 1, 0, nodes[P0]!.address)) return Math.max(1, 6000 - m.time)
      return undefined
    },
  })
  assert.deepEqual(result.violations, [])
  const v0 = trace.proposed(0)!
  const late = trace.commits.filter((c) => c.round === 0 && c.roundBefore >= 1)
  assert.ok(late.length >= 2, `at least two validators decided round 0 from a later round (${late.length})`)
  for (let i = 0; i < N; i++) assert.equal(result.commits[i]!.get(1), v0)
})

test('n4f1_proposerCrashesAfterProposing: the others decide without the crashed proposer', async () => {
  const { trace, result } = await run({
    heights: 2,
    byzantine: { [P0]: ['crash'] },
    crashes: { [P0]: [{ afterSend: (m) => m.type === 'proposal' }] },
  })
  assert.deepEqual(result.violations, [])
  assert.equal(trace.sent.filter((s) => s.node === P0 && s.type === 'proposal').length, 1, 'P0 proposed once, then crashed')
  assert.equal(trace.sent.filter((s) => s.node === P0 && s.type !== 'proposal').length, 0, 'P0 never sent a vote')
  for (const i of others(P0)) assert.equal(result.commits[i]!.size, 2)
})

test('n4f1_proposerEquivocates: conflicting proposals are reported as evidence and agreement holds', async () => {
  const { result } = await run({ heights: 2, byzantine: { [P0]: ['equivocate'] } })
  assert.deepEqual(result.violations, [])
  assert.ok(result.evidence.some((e) => e.kind === 'conflictingProposals'))
  assert.ok(result.attacks.equivocations > 0)
  for (const i of others(P0)) assert.equal(result.commits[i]!.size, 2)
})

test('n4f1_conflictingProposalsUnderPartition: a split-brain proposer cannot split honest validators', async () => {
  // The Byzantine proposer serves A and B one block and C another, as proposer and as voter, while A is cut off
  // from B and C until GST (the Byzantine validator reaches everyone). With f = 1 it cannot gather a quorum for
  // either block; after the partition heals the honest validators agree, and the equivocations surface as evidence.
  const [A, B, C] = others(P0)
  const { result, trace } = await run({
    heights: 2,
    byzantine: { [P0]: ['splitBrain'] },
    collusionGroups: [[A!, B!], [C!]],
    network: { gst: 4000 },
    route: (m) => (m.time < 4000 && ((m.from === A && m.to !== P0) || (m.to === A && m.from !== P0)) ? 'drop' : undefined),
  })
  assert.deepEqual(result.violations, [])
  assert.ok(
    trace.commits.filter((c) => c.height === 1).every((c) => c.time >= 4000),
    'nothing is decided before the partition heals',
  )
  assert.ok(
    result.evidence.some((e) => e.kind === 'conflictingProposals'),
    'conflicting proposals reported',
  )
  assert.ok(
    result.evidence.some((e) => e.kind === 'conflictingVotes'),
    'conflicting votes reported',
  )
  for (const i of others(P0)) assert.equal(result.commits[i]!.size, 2)
})

test('n7f2_partitionHeals: a 4/3 partition with two Byzantine validators stalls, then heals and decides', async () => {
  const trace = new Trace()
  const result = await runSimulation({
    observe: trace.observe,
    seed: 11,
    validators: 7,
    heights: 3,
    byzantine: { 1: ['equivocate', 'junk'], 4: ['equivocate'] },
    network: {
      gst: 5000,
      loss: 0.1,
      duplicate: 0.05,
      preGstMaxDelay: 800,
      delta: 80,
      partitions: [
        {
          start: 0,
          end: 5000,
          groups: [
            [0, 1, 2, 3],
            [4, 5, 6],
          ],
        },
      ],
    },
  })
  assert.deepEqual(result.violations, [])
  for (const i of result.honest) assert.equal(result.commits[i]!.size >= 3, true)
  const honestCommits = trace.commits.filter((c) => result.honest.includes(c.node))
  assert.ok(
    honestCommits.every((c) => c.time >= 5000),
    'no side of the partition holds a quorum',
  )
})

test('n4f2_splitBrainBreaksAgreement: with f+1 colluders the checker catches the fork (the checker can fail)', async () => {
  // Two Byzantine validators (more than f = 1) serve A and B different blocks while A and B cannot hear each
  // other: each honest validator sees a valid quorum for its own block and commits it. The checker must say so.
  const X = others(P0)[0]!
  const [A, B] = others(P0, X)
  const { result } = await run({
    byzantine: { [P0]: ['splitBrain'], [X]: ['splitBrain'] },
    collusionGroups: [[A!], [B!]],
    route: (m) => ((m.from === A && m.to === B) || (m.from === B && m.to === A) ? 'drop' : undefined),
  })
  const forks = result.violations.filter((v) => v.kind === 'agreement')
  assert.equal(forks.length, 1, JSON.stringify(result.violations))
  assert.equal(forks[0]!.height, 1)
  assert.notEqual(result.commits[A!]!.get(1), result.commits[B!]!.get(1))
})

test('a seed replays exactly: same commits, events, deliveries, coverage and end time', async () => {
  const options: SimOptions = {
    seed: 99,
    validators: 4,
    heights: 3,
    byzantine: { 2: ['equivocate', 'junk'] },
    crashes: { 1: [{ atOp: { op: 'walSync', phase: 'after', nth: 4 }, downMs: 1500 }] },
    network: { gst: 2000, loss: 0.2, duplicate: 0.1, preGstMaxDelay: 1000 },
  }
  const a = await runSimulation(options)
  const b = await runSimulation(options)
  assert.deepEqual(a, b)
  assert.ok(a.coverage.restarts === 1 && a.events > 0)
})
