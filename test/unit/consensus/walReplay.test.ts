import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/index.js'
import {
  SafetyGuard,
  createMemorySafetyStore,
  step,
  type ConsensusEffect,
  type ConsensusInput,
  type ConsensusState,
  type SafetyStore,
} from '../../../consensus/index.js'
import { CHAIN_ID, fresh, input, keys, proposal, proposerIndexOf, value, vote } from './helpers.js'

/**
 * The host's crash-recovery contract: log every input, replay the log through `step` after a crash, run the
 * replayed signing effects through the guard again. The replayed state equals the lost one, and the guard never
 * releases a signature that conflicts with one released before the crash.
 */

const S = proposerIndexOf(1, 1) // proposes in round 1
const others = [0, 1, 2, 3].filter((i) => i !== S)

function host(store: SafetyStore) {
  const guard = new SafetyGuard({ chainId: CHAIN_ID, secretKey: keys[S]!.secretKey }, { store })
  const log: ConsensusInput[] = []
  const signatures: string[] = []
  let state: ConsensusState = fresh(S)
  const feed = (i: ConsensusInput): void => {
    log.push(i)
    const r = step(state, i)
    state = r.state
    for (const e of r.effects) run(e)
  }
  const run = (e: ConsensusEffect): void => {
    if (e.type === 'signVote') {
      const s = guard.signVote(e.vote)
      if (s.ok) {
        signatures.push(toHex(s.value.signature))
        feed({ type: 'vote', vote: s.value })
      }
    }
    if (e.type === 'signProposal') {
      const s = guard.signProposal(e.proposal)
      if (s.ok) {
        signatures.push(toHex(s.value.signature))
        feed({ type: 'proposal', proposal: s.value })
      }
    }
  }
  return {
    feed,
    log,
    signatures,
    get state() {
      return state
    },
  }
}

test('replaying the WAL rebuilds the state, and the guard re-issues only what it signed', () => {
  const store = createMemorySafetyStore()
  const v0 = value('v0')
  const v1 = value('v1')
  const before = host(store)
  const inputs: ConsensusInput[] = [
    input.start(),
    input.proposal(proposal(proposerIndexOf(1, 0), 1, 0, v0)),
    input.valid(v0),
    ...others.map((i) => input.vote(vote(i, 'prevote', 1, 0, v0))),
    ...others.slice(0, 2).map((i) => input.vote(vote(i, 'precommit', 1, 0, null))),
    input.vote(vote(others[2]!, 'precommit', 1, 0, v1)),
    input.timeout('precommit', 0), // round 1: S re-proposes its locked/valid value v0
  ]
  for (const i of inputs) before.feed(i)
  assert.equal(before.state.lockedRound, 0)
  assert.ok(before.signatures.length >= 3)

  // Crash: everything in memory is lost but the WAL (the log) and the guard's store.
  const after = host(store)
  // The log holds every input in the order fed, the guard's signed messages included. Replaying it runs the
  // signing effects again: the guard refuses what is below its record (the logged signed message follows in
  // the log) and returns the stored signature for its last one (the logged copy is then a duplicate).
  for (const i of [...before.log]) after.feed(i)
  assert.deepEqual(after.state, before.state)
  // Whatever the replay asked the guard to sign, it got back the very signatures released before the crash
  // (or a refusal): never a different one.
  const released = new Set(before.signatures)
  for (const sig of after.signatures) assert.ok(released.has(sig), 'no new signature at or below the record')
})
