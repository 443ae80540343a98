import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import {
  castVote,
  DEFAULT_GOVERNANCE_PARAMS,
  type GovernanceAction,
  type GovernanceState,
  genesisGovernance,
  type Member,
  MAX_VALIDATORS,
  movedPower,
  type Roster,
} from '../../../ledger/governance.js'

/**
 * A governance vote is a transaction every replica executes when it validates or syncs the block that carries it, and
 * a validator may renew its own vote with each nonce: a proposer can fill a block with thousands of them. So a vote's
 * work must grow linearly with the size of the set, as a transfer's does not grow at all: with 128 validators, work
 * quadratic in the set made a renewal cost ~0.33 ms, 100 times a transfer, and a block of 10,000 of them seconds of
 * synchronous execution on every replica. Counted here as reads of the set's members, which time does not disturb.
 */

const keys = Array.from({ length: MAX_VALIDATORS }, (_, i) => keyPairFromSeed(new Uint8Array(32).fill(i + 1)))
const member = (i: number): Member => ({
  address: addressFromPublicKey(keys[i]!.publicKey),
  publicKey: keys[i]!.publicKey,
  power: 10,
  peerId: `12D3KooW${'A'.repeat(40)}${String(i + 1).padStart(4, 'x')}`,
  name: `v${i}`,
})

/** A roster whose member reads are counted. */
function counted(roster: Roster, reads: { n: number }): Roster {
  return new Proxy(roster as Member[], {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads.n++
      return Reflect.get(target, key, receiver)
    },
  })
}

/** Member reads of one vote of validator 0 for `action` in a set of `n` (the state's rosters counted). */
function readsOfVote(n: number, action: (members: Member[]) => GovernanceAction): number {
  const members = Array.from({ length: n }, (_, i) => member(i))
  const g = genesisGovernance(members)
  const reads = { n: 0 }
  const state: GovernanceState = { schedule: g.schedule.map((e) => ({ fromHeight: e.fromHeight, roster: counted(e.roster, reads) })), pending: [] }
  const first = castVote(state, 1, members[0]!.address, action(members), DEFAULT_GOVERNANCE_PARAMS)
  assert.ok(first.ok, first.ok ? '' : first.error.reason)
  // a renewal of the same vote, on the state the first left
  const again = castVote(first.value, 2, members[0]!.address, action(members), DEFAULT_GOVERNANCE_PARAMS)
  assert.ok(again.ok, again.ok ? '' : again.error.reason)
  return reads.n
}

const actions: Record<string, (members: Member[]) => GovernanceAction> = {
  power: (m) => ({ type: 'power', address: m[1]!.address, power: 11 }),
  remove: (m) => ({ type: 'remove', address: m[1]!.address }),
  add: () => {
    const { publicKey } = keyPairFromSeed(new Uint8Array(32).fill(250))
    return { type: 'add', publicKey, power: 1, peerId: `12D3KooW${'B'.repeat(44)}`, name: 'joiner' }
  },
}

for (const [kind, action] of Object.entries(actions)) {
  test(`a vote to ${kind} reads the set's members a number of times linear in its size`, () => {
    // the largest set that can still take one more member, and about a quarter of it
    const n = MAX_VALIDATORS - 1
    const m = 32
    const small = readsOfVote(m, action)
    const large = readsOfVote(n, action)
    // four times the members: at most about four times the reads (quadratic work would read sixteen times as many)
    assert.ok(large <= 5 * small, `a vote read ${small} members in a set of ${m}, ${large} in a set of ${n}`)
    assert.ok(large <= 20 * n, `a vote read ${large} members in a set of ${n}`)
  })
}

test('the power moved between two rosters is the same whatever order their members are listed in', () => {
  // a reference by look-up, member by member
  const reference = (from: Roster, to: Roster): bigint => {
    let moved = 0n
    for (const m of from) {
      const n = to.find((x) => Buffer.from(x.address).equals(m.address))
      moved += BigInt(n === undefined ? m.power : Math.abs(n.power - m.power))
    }
    for (const n of to) if (!from.some((x) => Buffer.from(x.address).equals(n.address))) moved += BigInt(n.power)
    return moved
  }
  const sorted = (r: Member[]) => [...r].sort((a, b) => Buffer.compare(a.address, b.address))
  for (let seed = 0; seed < 40; seed++) {
    // members 0..19 in a deterministic mix: some in both (some with another power), some in one only
    const from: Member[] = []
    const to: Member[] = []
    for (let i = 0; i < 20; i++) {
      const k = (i * 7 + seed * 13) % 5
      if (k !== 0) from.push({ ...member(i), power: 1 + ((i + seed) % 4) })
      if (k !== 1) to.push({ ...member(i), power: 1 + ((i * 3 + seed) % 4) })
    }
    const want = reference(from, to)
    assert.equal(movedPower(sorted(from), sorted(to)), want, `seed ${seed}, both in address order`)
    assert.equal(movedPower(from, sorted(to)), want, `seed ${seed}, one listed in index order`)
    assert.equal(movedPower(from, to), want, `seed ${seed}, both listed in index order`)
  }
})
