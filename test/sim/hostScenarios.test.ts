import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runSimulation, simProposer, type ForgeKind, type SimOptions, type SimResult } from './simulation.js'
import type { CutPhase, StoreOp } from './simDisk.js'
import { Trace } from './trace.js'

/**
 * Named scenarios of the host under attack and under power cuts, each asserting that the attack or the fault really
 * happened (counters, logs, trace) and that every invariant of checker.ts held: Byzantine peers that forge transfers,
 * flood junk and oversized messages, lie in block sync, withhold proposals and flood votes; honest validators that
 * lose power between the WAL sync and the guard's save, or at any store operation, or lose their data and sync back;
 * clocks and transaction fetches that may only delay a verdict; and locks that diverge and resolve.
 */

const SEED = 7
const N = 4
const P0 = simProposer(SEED, N, 1, 0)
const others = (...xs: number[]) => [...Array(N).keys()].filter((i) => !xs.includes(i))

async function run(
  options: Omit<SimOptions, 'seed' | 'validators' | 'heights'> & { seed?: number; validators?: number; heights?: number },
): Promise<{ trace: Trace; result: SimResult }> {
  const trace = new Trace()
  const result = await runSimulation({ seed: SEED, validators: N, heights: 4, ...options, observe: trace.observe })
  return { trace, result }
}

function allCommitted(result: SimResult, heights: number): void {
  for (const i of result.honest) assert.ok(result.commits[i]!.has(heights), `validator ${i} committed height ${heights}`)
}

/** How often nodes logged a message, whatever its reason (optionally only some nodes). */
function logged(result: SimResult, message: string, nodes: readonly number[] = result.logs.map((_, i) => i)): number {
  let n = 0
  for (const i of nodes) for (const [k, c] of Object.entries(result.logs[i]!)) if (k === message || k.startsWith(`${message} (`)) n += c
  return n
}

for (const kind of ['badSignature', 'replay', 'skippedNonce'] as const satisfies readonly ForgeKind[]) {
  test(`n4f1_forgedTransferBlock (${kind}): a block with a transfer that does not apply is judged invalid by every honest validator`, async () => {
    // The Byzantine proposer executes its forged block as an honest executor would and puts that state root in the
    // header, so only the rule that every transfer applies rejects it. Wallets keep several transfers in flight, so
    // blocks carry consecutive nonces of one sender and committed transfers to replay.
    const { result } = await run({
      heights: 8,
      byzantine: { [P0]: ['forgedBlock'] },
      forgeKinds: [kind],
      clients: { accounts: 3, intervalMs: [20, 80], maxPending: 6, txGossip: true },
    })
    assert.deepEqual(result.violations, [])
    assert.ok(result.attacks.forgedBlocks >= 1, `forged ${result.attacks.forgedBlocks} blocks`)
    assert.ok(result.coverage.invalidVerdicts >= 1, 'honest validators judged a forged block invalid')
    assert.ok(logged(result, 'rejected a proposed block', others(P0)) >= 1)
    allCommitted(result, 8)
  })
}

test('n4f1_junkProposalFlood: junk, forged-signature, out-of-turn and oversized messages are refused at the edge, never stored', async () => {
  const { result } = await run({ heights: 8, byzantine: { [P0]: ['junk', 'oversized'] } })
  assert.deepEqual(result.violations, [])
  assert.ok(result.attacks.junk >= 100, `sent ${result.attacks.junk} junk messages`)
  assert.ok(result.coverage.refused >= 50, `honest admissions refused ${result.coverage.refused} messages`)
  // the refusals are logged, at most one line per peer and minute (the rest are counted in the line's `suppressed`)
  for (const i of others(P0)) assert.ok(logged(result, 'refused a consensus message', [i]) >= 1, `validator ${i} logged the junk`)
  allCommitted(result, 8)
})

test('n4f1_lyingSyncPeer: a validator that lost its data syncs back although a peer lies about its tip and tampers with blocks', async () => {
  // D loses power at 1.5 s and comes back at 16.5 s without its chain database; the Byzantine peer votes honestly
  // but answers tip polls, block requests and transaction fetches with lies. Every lie costs it a penalty. D replays
  // the heights its WAL still holds and must sync every later one.
  const [Z, D] = others(P0)
  const { result, trace } = await run({
    heights: 8,
    byzantine: { [Z!]: ['lyingSync'] },
    crashes: { [D!]: [{ atMs: 1_500, downMs: 15_000, wipe: true }] },
  })
  assert.deepEqual(result.violations, [])
  assert.equal(trace.restarts.filter((r) => r.node === D).length, 1)
  assert.ok(result.attacks.lies >= 1, `told ${result.attacks.lies} lies`)
  assert.ok(result.coverage.penalties >= 1, 'the liar was penalized')
  assert.ok(result.coverage.syncedBlocks >= 2, `synced ${result.coverage.syncedBlocks} blocks`)
  allCommitted(result, 8)
})

test('n4f0_crashBetweenWalAndGuard: power lost after the WAL sync and before the guard saves its record, at each of the first signatures', async () => {
  // The host syncs the WAL and saves the guard's record side by side before it uses a signature; with equal disk
  // latency the WAL finishes first, so cutting the power right after the WAL sync leaves the signature unsaved and
  // unsent. The restarted validator replays its WAL, signs the same message again and never anything conflicting.
  const X = others(P0)[0]!
  for (let nth = 1; nth <= 8; nth++) {
    const { result, trace } = await run({
      heights: 5,
      clients: { accounts: 2 },
      crashes: { [X]: [{ atOp: { op: 'walSync', phase: 'after', nth }, downMs: 700 }] },
      host: { diskMs: 1 },
    })
    assert.deepEqual(result.violations, [], `crash after WAL sync ${nth}`)
    const crash = trace.crashes.find((c) => c.node === X)
    assert.ok(crash !== undefined, `WAL sync ${nth} happened`)
    const asked = trace.votes.filter((v) => v.node === X && v.time <= crash.time).at(-1)
    const askedProposal = trace.proposals.filter((p) => p.node === X && p.time <= crash.time).at(-1)
    const last =
      asked === undefined || (askedProposal !== undefined && askedProposal.time > asked.time)
        ? { type: 'proposal', height: askedProposal!.height, round: askedProposal!.round }
        : { type: asked.type, height: asked.height, round: asked.round }
    const released = trace.sent.some((s) => s.node === X && s.time <= crash.time && s.type === last.type && s.height === last.height && s.round === last.round)
    assert.equal(released, false, `the ${last.type} asked for before the cut at WAL sync ${nth} was not sent`)
    assert.equal(trace.restarts.filter((r) => r.node === X).length, 1)
    allCommitted(result, 5)
  }
})

test('n4f0_crashAtEveryStoreOp: power lost before or after each kind of store operation, then restart from disk', async () => {
  const X = others(P0)[1]!
  const ops: readonly [StoreOp, readonly number[]][] = [
    ['walWrite', [3, 17, 40]],
    ['walSync', [2, 9]],
    ['guardSave', [1, 6]],
    ['kvWrite', [2, 3]],
  ]
  let restarts = 0
  for (const [op, nths] of ops) {
    for (const phase of ['before', 'after'] as const satisfies readonly CutPhase[]) {
      for (const nth of nths) {
        const { result } = await run({
          heights: 3,
          clients: { accounts: 2 },
          crashes: { [X]: [{ atOp: { op, phase, nth }, downMs: 400 + nth * 37 }] },
        })
        assert.deepEqual(result.violations, [], `cut ${phase} ${op} ${nth}`)
        restarts += result.coverage.restarts
        allCommitted(result, 3)
      }
    }
  }
  assert.ok(restarts >= 12, `${restarts} restarts`)
})

test('n4f0_wipedValidatorSyncsBack: a validator whose chain database was deleted catches up by block sync (its WAL and guard record kept)', async () => {
  const D = others(P0)[0]!
  const { result, trace } = await run({ heights: 12, crashes: { [D]: [{ atMs: 600, downMs: 6_000, wipe: true }] } })
  assert.deepEqual(result.violations, [])
  assert.equal(trace.restarts.filter((r) => r.node === D).length, 1)
  assert.ok(result.coverage.syncedBlocks >= 2, `synced ${result.coverage.syncedBlocks} blocks`)
  allCommitted(result, 12)
})

test('n4f1_withheldProposal: proposals and votes sent to some peers only cost rounds, never safety', async () => {
  const { result } = await run({ heights: 6, byzantine: { [P0]: ['withhold'] } })
  assert.deepEqual(result.violations, [])
  assert.ok(result.attacks.withheld >= 1)
  allCommitted(result, 6)
})

test('n4f1_voteFloodStaysBounded: repeated and future votes keep the host queue, candidates and WAL within bounds', async () => {
  const { result } = await run({ heights: 16, byzantine: { [P0]: ['voteFlood'] }, host: { maxQueue: 64 } })
  assert.deepEqual(result.violations, [])
  assert.ok(result.attacks.floods >= 200, `flooded ${result.attacks.floods} votes`)
  allCommitted(result, 16)
})

test("n4f0_skewedClockOnlyDelays: a block time ahead of a validator's clock delays its verdict, never makes the block invalid", async () => {
  // X's clock runs 3 s behind (blocks of the others are ahead of it by more than the allowed drift) and Y's 3 s ahead
  // (its blocks are ahead of everyone): the verdicts wait for the clocks, and no value is ever judged invalid.
  const [X, Y] = others(P0)
  const { result } = await run({ heights: 5, skews: { [X!]: -3_000, [Y!]: 3_000 } })
  assert.deepEqual(result.violations, [])
  assert.equal(result.coverage.invalidVerdicts, 0)
  assert.ok(logged(result, 'cannot judge a proposed block yet: will retry (block time is ahead of this clock)') >= 1)
  allCommitted(result, 5)
})

test("n4f0_txFetchBlackoutOnlyDelays: a validator that cannot get a block's transactions waits, and never judges the block invalid", async () => {
  const X = others(P0)[0]!
  const { result } = await run({
    heights: 5,
    clients: { accounts: 3, intervalMs: [100, 400], txGossip: false },
    fetchBlackouts: [{ node: X, start: 0, end: 8_000 }],
  })
  assert.deepEqual(result.violations, [])
  assert.equal(result.coverage.invalidVerdicts, 0)
  assert.ok(logged(result, 'cannot judge a proposed block yet: will retry (transactions unavailable)', [X]) >= 1)
  allCommitted(result, 5)
})

test('n7f2_divergingLocksResolve: two Byzantine validators steer honest ones into different locks; after GST every height is decided', async () => {
  const { result } = await run({
    seed: 5_001,
    validators: 7,
    heights: 5,
    byzantine: { 1: ['lockAttack'], 5: ['lockAttack'] },
    network: { gst: 45_000, preGstMaxDelay: 120, delta: 60 },
    lockAdversary: { splitRounds: [6, 11], splitChance: 0.9, byzantineProposals: true },
  })
  assert.deepEqual(result.violations, [])
  assert.ok(result.coverage.divergingLockHeights.size >= 1, 'honest validators held locks on different values')
  assert.ok(result.coverage.relocks >= 1, 'a validator relocked')
  assert.ok(result.coverage.l28Unlocks >= 1, 'a validator prevoted against its lock on a newer polka')
  assert.ok(result.coverage.maxRound >= 6)
  allCommitted(result, 5)
})
