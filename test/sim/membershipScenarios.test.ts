import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runSimulation, simValidators, type SetChange, type SimOptions, type SimResult } from './simulation.js'
import { Trace } from './trace.js'

/**
 * Named scenarios of validator-set changes by governance (governors.ts): the honest validators' operators vote a
 * change in with governance transactions, the chain puts it in force two heights after the block that completes it,
 * and from then on the hosts take the new set for consensus, admission, proposer choice and certificates. Each scenario
 * asserts that every change came into force, that every invariant of checker.ts held (agreement, validity with each
 * height's set, membership, safe signing, liveness), and, for every set, that each honest member decided each of its
 * heights and agreed, and that every certificate carries signatures of that height's members only, more than two
 * thirds of their power.
 */

const SEED = 11

async function run(options: Omit<SimOptions, 'seed' | 'heights'> & { seed?: number; heights?: number }): Promise<{ trace: Trace; result: SimResult }> {
  const trace = new Trace()
  const result = await runSimulation({ seed: SEED, heights: 3, ...options, observe: trace.observe })
  return { trace, result }
}

const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b)

/** The first height of the set that is the `k`th of the run (0: genesis). */
function fromHeight(result: SimResult, k: number): number {
  return result.sets[k]!.fromHeight
}

/**
 * Every planned change in force, the sets the chain went through are `expected` (members in node order), no
 * violation, and per set: each honest member committed each height of the set up to the run's target (height 3, or
 * `settleHeights` past the last change's first height, as the simulation sets it), all honest
 * nodes that committed a height agree on it, and each certificate holds more than two thirds of that set's power,
 * from its members only.
 */
function holdsAcrossChanges(result: SimResult, changes: readonly SetChange[], expected: readonly (readonly number[])[], settleHeights = 2): void {
  assert.deepEqual(result.violations, [])
  assert.equal(result.setChanges.length, changes.length, 'every planned change came into force')
  assert.deepEqual(
    result.sets.map((s) => sorted(s.members.keys())),
    expected,
  )
  const target = Math.max(3, fromHeight(result, result.sets.length - 1) + settleHeights)
  for (const [k, set] of result.sets.entries()) {
    const end = (result.sets[k + 1]?.fromHeight ?? target + 1) - 1
    assert.ok(end >= set.fromHeight, `set ${k} was in force for at least one height`)
    let total = 0
    for (const p of set.members.values()) total += p
    for (let h = set.fromHeight; h <= end; h++) {
      for (const i of result.honest) if (set.members.has(i)) assert.ok(result.commits[i]!.has(h), `member ${i} of set ${k} committed height ${h}`)
      const values = new Set(result.honest.map((i) => result.commits[i]!.get(h)).filter((v) => v !== undefined))
      assert.equal(values.size, 1, `honest nodes agree on height ${h}`)
      const signers = result.certificateSigners.get(h)
      assert.ok(signers !== undefined, `height ${h} has a certificate`)
      let power = 0
      for (const s of signers) {
        assert.ok(set.members.has(s), `the certificate of height ${h} carries node ${s}, not in set ${k}`)
        power += set.members.get(s)!
      }
      assert.ok(3 * power > 2 * total, `the certificate of height ${h} holds ${power} of ${total}`)
    }
  }
}

/** Heights (from the certificates) whose certificate carries node `i`. */
function signedBy(result: SimResult, i: number): number[] {
  return [...result.certificateSigners]
    .filter(([, s]) => s.includes(i))
    .map(([h]) => h)
    .sort((a, b) => a - b)
}

test('n4_addOneValidator: a full node voted into the set signs certificates from its first height on', async () => {
  const changes: SetChange[] = [{ type: 'add', node: 4 }]
  const { result } = await run({ validators: 4, joiners: 1, membership: { changes } })
  holdsAcrossChanges(result, changes, [
    [0, 1, 2, 3],
    [0, 1, 2, 3, 4],
  ])
  const from = fromHeight(result, 1)
  const signed = signedBy(result, 4)
  assert.ok(signed.length > 0 && signed[0]! >= from, `node 4 signs certificates only from height ${from}: ${signed.join(',')}`)
  assert.ok(result.commits[4]!.has(from - 1), 'node 4 followed the chain as a full node before it joined')
})

test('n4_removeOneValidator: a removed validator follows the chain as a full node and signs no certificate', async () => {
  const changes: SetChange[] = [{ type: 'remove', node: 3 }]
  const { result } = await run({ validators: 4, membership: { changes } })
  holdsAcrossChanges(result, changes, [
    [0, 1, 2, 3],
    [0, 1, 2],
  ])
  const from = fromHeight(result, 1)
  assert.deepEqual(
    signedBy(result, 3).filter((h) => h >= from),
    [],
  )
  assert.ok(result.commits[3]!.has(from + 1), 'the removed validator keeps following the chain')
})

test('n4_powerChange: a validator whose power doubles is needed in every certificate after the change', async () => {
  // powers 2, 1, 1, 1: the other three hold 3 of 5, not more than two thirds, so no certificate can do without node 1
  const changes: SetChange[] = [{ type: 'power', node: 1, power: 2 }]
  const { result } = await run({ validators: 4, membership: { changes } })
  holdsAcrossChanges(result, changes, [
    [0, 1, 2, 3],
    [0, 1, 2, 3],
  ])
  assert.equal(result.sets[1]!.members.get(1), 2)
  const from = fromHeight(result, 1)
  for (const [h, signers] of result.certificateSigners) if (h >= from) assert.ok(signers.includes(1), `the certificate of height ${h} carries node 1`)
})

test('n4_rotation4to7to4: three joiners voted in, then three genesis validators voted out, one change at a time', async () => {
  const changes: SetChange[] = [
    { type: 'add', node: 4 },
    { type: 'add', node: 5 },
    { type: 'add', node: 6 },
    { type: 'remove', node: 0 },
    { type: 'remove', node: 1 },
    { type: 'remove', node: 2 },
  ]
  const { result } = await run({ validators: 4, joiners: 3, membership: { changes } })
  holdsAcrossChanges(result, changes, [
    [0, 1, 2, 3],
    [0, 1, 2, 3, 4],
    [0, 1, 2, 3, 4, 5],
    [0, 1, 2, 3, 4, 5, 6],
    [1, 2, 3, 4, 5, 6],
    [2, 3, 4, 5, 6],
    [3, 4, 5, 6],
  ])
  const last = fromHeight(result, 6)
  for (const i of [0, 1, 2]) assert.ok(result.commits[i]!.has(last + 1), `removed validator ${i} still follows the chain`)
})

test('n4_changeUnderPartition: changes come into force while a validator is cut off; it syncs across them after the heal', async () => {
  // Node 0 is cut off from everyone until GST; the others hold more than two thirds of every set, vote the changes
  // in and decide. Node 0 must take the new sets from the blocks it syncs and then sign in the last one.
  const heal = 5_000
  const changes: SetChange[] = [
    { type: 'add', node: 4 },
    { type: 'remove', node: 1 },
  ]
  const { trace, result } = await run({
    validators: 4,
    joiners: 1,
    membership: { changes, settleHeights: 8 },
    network: { gst: heal, preGstMaxDelay: 60, partitions: [{ start: 100, end: heal, groups: [[0], [1, 2, 3, 4]] }] },
  })
  holdsAcrossChanges(
    result,
    changes,
    [
      [0, 1, 2, 3],
      [0, 1, 2, 3, 4],
      [0, 2, 3, 4],
    ],
    8,
  )
  const inForce = trace.commits.find((c) => c.height === fromHeight(result, 2))!
  assert.ok(inForce.time < heal, `the last change was in force at ${inForce.time} ms, before the partition healed`)
  const caughtUp = trace.commits.find((c) => c.node === 0 && c.height === fromHeight(result, 2))
  assert.ok(caughtUp !== undefined && caughtUp.time >= heal, 'node 0 took the heights of the new sets after the heal')
  assert.ok(
    signedBy(result, 0).some((h) => h >= fromHeight(result, 2)),
    'node 0 signs certificates of the last set',
  )
})

test('n4f1_byzantineInEverySet: f Byzantine members of each set in force, a Byzantine joiner among them, through 4 to 7 to 4', async () => {
  // Node 0 is Byzantine from genesis and node 5 joins Byzantine. The order keeps the Byzantine power below a third of
  // every set: 4 (one), 5 (one), 6 (one), 7 (two), then the Byzantine founder leaves first: 6 (one), 5 (one), 4 (one).
  const changes: SetChange[] = [
    { type: 'add', node: 4 },
    { type: 'add', node: 6 },
    { type: 'add', node: 5 },
    { type: 'remove', node: 0 },
    { type: 'remove', node: 1 },
    { type: 'remove', node: 2 },
  ]
  const { result } = await run({
    validators: 4,
    joiners: 3,
    membership: { changes },
    byzantine: { 0: ['equivocate', 'linger'], 5: ['equivocate', 'voteFlood'] },
  })
  holdsAcrossChanges(result, changes, [
    [0, 1, 2, 3],
    [0, 1, 2, 3, 4],
    [0, 1, 2, 3, 4, 6],
    [0, 1, 2, 3, 4, 5, 6],
    [1, 2, 3, 4, 5, 6],
    [2, 3, 4, 5, 6],
    [3, 4, 5, 6],
  ])
  // evidence names each equivocator only at heights at which it is a member: the joiner from its first height on, the
  // founder until its removal (what it signs afterwards is refused, not evidence)
  const addresses = simValidators(SEED, 7).map((v) => Buffer.from(v.address).toString('hex'))
  const blamed = (i: number) =>
    result.evidence
      .filter((e) => Buffer.from(e.kind === 'conflictingVotes' ? e.first.validator : e.first.proposer).toString('hex') === addresses[i])
      .map((e) => e.first.height)
  const joined = fromHeight(result, 3)
  const left = fromHeight(result, 4)
  assert.ok(blamed(5).length > 0 && blamed(5).every((h) => h >= joined), `the Byzantine joiner is blamed from height ${joined} on: ${blamed(5).join(',')}`)
  assert.ok(blamed(0).length > 0 && blamed(0).every((h) => h < left), `the Byzantine founder is blamed below height ${left}: ${blamed(0).join(',')}`)
  assert.ok(result.attacks.lingering > 0, 'the removed founder kept signing')
  assert.deepEqual(
    signedBy(result, 0).filter((h) => h >= left),
    [],
    'the removed Byzantine founder signs no certificate',
  )
})

test("n4f1_removedValidatorKeepsVoting: a removed validator's votes and proposals are refused and never counted", async () => {
  // Node 3 is honest until it is removed, then keeps signing prevotes, precommits and proposals at its node's height
  // as if it were a member. Admissions must refuse them (it is no validator of those heights), no honest host may
  // hold them (a membership violation of the checker), and no certificate may carry them.
  const changes: SetChange[] = [
    { type: 'add', node: 4 },
    { type: 'remove', node: 3 },
  ]
  const { result } = await run({ validators: 4, joiners: 1, byzantine: { 3: ['linger'] }, membership: { changes, settleHeights: 4 } })
  holdsAcrossChanges(result, changes, [
    [0, 1, 2, 3],
    [0, 1, 2, 3, 4],
    [0, 1, 2, 4],
  ])
  const removedFrom = fromHeight(result, 2)
  assert.ok(result.attacks.lingering >= 10, `the removed validator signed ${result.attacks.lingering} messages`)
  assert.ok(signedBy(result, 3).length > 0, 'node 3 signed certificates while in the set')
  assert.deepEqual(
    signedBy(result, 3).filter((h) => h >= removedFrom),
    [],
    'no certificate from its removal on carries node 3',
  )
  assert.ok(result.coverage.refused > 0, 'honest admissions refused its messages')
})

test('n4_wipedAcrossChanges: a validator down and wiped while two changes come into force syncs back and signs in the new set', async () => {
  // Node 2 loses power early and its data/ is deleted; it restarts after node 4 was added and node 3 removed, syncs
  // every block (each certified by its height's set) and then takes part in the set in force.
  const changes: SetChange[] = [
    { type: 'add', node: 4 },
    { type: 'remove', node: 3 },
  ]
  const { trace, result } = await run({
    validators: 4,
    joiners: 1,
    membership: { changes, settleHeights: 6 },
    crashes: { 2: [{ atMs: 250, downMs: 6_000, wipe: true }] },
  })
  holdsAcrossChanges(
    result,
    changes,
    [
      [0, 1, 2, 3],
      [0, 1, 2, 3, 4],
      [0, 1, 2, 4],
    ],
    6,
  )
  const restart = trace.restarts.find((r) => r.node === 2)
  assert.ok(restart !== undefined, 'node 2 restarted')
  const lastInForce = trace.commits.find((c) => c.height === fromHeight(result, 2))!
  assert.ok(lastInForce.time < restart.time, 'both changes were in force before node 2 came back')
  assert.ok(
    trace.commits.some((c) => c.node === 2 && c.height === fromHeight(result, 1) && c.time > restart.time),
    'node 2 synced the heights of both changes',
  )
  assert.ok(
    signedBy(result, 2).some((h) => h >= fromHeight(result, 2)),
    'node 2 signs certificates of the new set',
  )
})

test('n4_restartedNodeNearAChange: a node catching up within two heights of a change refuses no honest message', async () => {
  // Node 2 restarts wiped while the first change is in force and catches up as the second (removing node 3) is
  // scheduled. At its height 7 it receives node 0's proposal for height 9, the first height of the new set, which the
  // state after block 7 schedules: a set it does not know yet. Such a message is ignored (repair gossip sends it
  // again), never judged by the latest set it knows and refused as from a misbehaving peer.
  const changes: SetChange[] = [
    { type: 'add', node: 4 },
    { type: 'remove', node: 3 },
  ]
  const { result } = await run({
    validators: 4,
    joiners: 1,
    membership: { changes, settleHeights: 4 },
    crashes: { 2: [{ atMs: 250, downMs: 3_000, wipe: true }] },
  })
  assert.deepEqual(result.violations, [])
})
