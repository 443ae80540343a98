import { test } from 'node:test'
import assert from 'node:assert/strict'
import { verify } from '../../../crypto/index.js'
import {
  SafetyGuard,
  createMemorySafetyStore,
  proposalSignBytes,
  voteSignBytes,
  type SafetyRecord,
  type SafetyStore,
  type Vote,
} from '../../../consensus/index.js'
import { CHAIN_ID, keys, validators, value } from './helpers.js'

const me = validators[0]!
const v0 = value('v0')
const v1 = value('v1')
const guard = (store: SafetyStore = createMemorySafetyStore()) => new SafetyGuard({ chainId: CHAIN_ID, secretKey: keys[0]!.secretKey }, { store })
const pv = (height: number, round: number, valueId: Uint8Array | null): Vote => ({ type: 'prevote', height, round, valueId, validator: me.address })
const pc = (height: number, round: number, valueId: Uint8Array | null): Vote => ({ type: 'precommit', height, round, valueId, validator: me.address })

test('signs in increasing (height, round, step) order with valid signatures', () => {
  const g = guard()
  const p = g.signProposal({ height: 1, round: 0, valueId: v0, polRound: -1, proposer: me.address })
  assert.ok(p.ok)
  assert.ok(verify(me.publicKey, proposalSignBytes(CHAIN_ID, p.value), p.value.signature))
  for (const v of [pv(1, 0, v0), pc(1, 0, v0), pv(1, 1, null), pv(2, 0, v1)]) {
    const r = g.signVote(v)
    assert.ok(r.ok, JSON.stringify(v))
    assert.ok(verify(me.publicKey, voteSignBytes(CHAIN_ID, v), r.value.signature))
  }
})

test('the identical request returns the stored signature without signing again', () => {
  const store = createMemorySafetyStore()
  const g = guard(store)
  const a = g.signVote(pv(1, 0, v0))
  const b = g.signVote(pv(1, 0, v0))
  assert.ok(a.ok && b.ok)
  assert.deepEqual(a.value.signature, b.value.signature)
  assert.equal(store.saves, 1)
})

test('refuses a conflicting vote at the same step and anything lower', () => {
  const g = guard()
  assert.ok(g.signVote(pc(3, 2, v0)).ok)
  const cases: [Vote, string][] = [
    [pc(3, 2, v1), 'conflict'],
    [pc(3, 2, null), 'conflict'],
    [pv(3, 2, v0), 'regression'],
    [pc(3, 1, v0), 'regression'],
    [pv(2, 9, v0), 'regression'],
  ]
  for (const [v, code] of cases) {
    const r = g.signVote(v)
    assert.ok(!r.ok)
    assert.equal(r.error.code, code)
  }
  const p = g.signProposal({ height: 3, round: 2, valueId: v0, polRound: -1, proposer: me.address })
  assert.ok(!p.ok && p.error.code === 'regression')
})

test('refuses a second, different proposal for the same round', () => {
  const g = guard()
  assert.ok(g.signProposal({ height: 1, round: 0, valueId: v0, polRound: -1, proposer: me.address }).ok)
  const r = g.signProposal({ height: 1, round: 0, valueId: v1, polRound: -1, proposer: me.address })
  assert.ok(!r.ok && r.error.code === 'conflict')
})

test('refuses to sign for another validator', () => {
  const r = guard().signVote({ ...pv(1, 0, v0), validator: validators[1]!.address })
  assert.ok(!r.ok && r.error.code === 'wrong_signer')
})

test('persists the record before releasing the signature; a failed save releases nothing', () => {
  const events: string[] = []
  let fail = false
  let stored: SafetyRecord | undefined
  const store: SafetyStore = {
    load: () => stored,
    save(record) {
      events.push(`save ${record.step} ${record.height}/${record.round}`)
      if (fail) throw new Error('disk full')
      stored = record
    },
  }
  const g = guard(store)
  const r = g.signVote(pv(1, 0, v0))
  events.push('returned')
  assert.ok(r.ok)
  assert.deepEqual(events, ['save prevote 1/0', 'returned'])
  assert.deepEqual(stored!.signature, r.value.signature)
  fail = true
  assert.throws(() => g.signVote(pc(1, 0, v0)), /disk full/)
  // The failed signature was not recorded: after the disk recovers the guard still stands at the prevote.
  fail = false
  assert.equal(g.record!.step, 'prevote')
})

test('a restarted guard loads its record and keeps refusing what conflicts with it (amnesia-proof)', () => {
  const store = createMemorySafetyStore()
  const first = guard(store)
  const a = first.signVote(pc(4, 1, v0))
  assert.ok(a.ok)
  const second = guard(store)
  const conflict = second.signVote(pc(4, 1, v1))
  assert.ok(!conflict.ok && conflict.error.code === 'conflict')
  const same = second.signVote(pc(4, 1, v0))
  assert.ok(same.ok)
  assert.deepEqual(same.value.signature, a.value.signature)
})

/** A memory store whose asynchronous saves wait until released, to observe the guard while a save is under way. */
function slowStore(): SafetyStore & { records: SafetyRecord[]; release: () => void; failNext: boolean } {
  let waiting: (() => void)[] = []
  const store = {
    records: [] as SafetyRecord[],
    failNext: false,
    load: () => store.records.at(-1),
    save(r: SafetyRecord) {
      store.records.push(r)
    },
    saveAsync(r: SafetyRecord) {
      return new Promise<void>((resolve, reject) => {
        waiting.push(() => {
          if (store.failNext) {
            store.failNext = false
            reject(new Error('disk full'))
            return
          }
          store.records.push(r)
          resolve()
        })
      })
    },
    release() {
      const w = waiting
      waiting = []
      for (const f of w) f()
    },
  }
  return store
}

test('async signing releases a signature only once its record is saved, one request at a time', async () => {
  const store = slowStore()
  const g = guard(store)
  let released = false
  const a = g.signVoteAsync(pv(1, 0, v0)).then((r) => {
    released = true
    return r
  })
  const conflicting = g.signVoteAsync(pv(1, 0, v1))
  await new Promise((r) => setImmediate(r))
  assert.equal(released, false)
  assert.equal(store.records.length, 0)
  // a synchronous request while the save is under way is refused
  const sync = g.signVote(pv(1, 0, v1))
  assert.ok(!sync.ok && sync.error.code === 'conflict')
  store.release()
  const ra = await a
  assert.ok(ra.ok && verify(me.publicKey, voteSignBytes(CHAIN_ID, pv(1, 0, v0)), ra.value.signature))
  assert.deepEqual(
    store.records.map((r) => r.step),
    ['prevote'],
  )
  const rc = await conflicting
  assert.ok(!rc.ok && rc.error.code === 'conflict')
  // the identical request returns the stored signature without another save
  const again = await g.signVoteAsync(pv(1, 0, v0))
  assert.ok(again.ok && ra.ok)
  assert.deepEqual(again.value.signature, ra.value.signature)
  const p = g.signProposalAsync({ height: 2, round: 0, valueId: v0, polRound: -1, proposer: me.address })
  await new Promise((r) => setImmediate(r))
  store.release()
  assert.ok((await p).ok)
  assert.equal(store.records.length, 2)
})

test('async signing withholds the signature when the save fails', async () => {
  const store = slowStore()
  const g = guard(store)
  store.failNext = true
  const a = g.signVoteAsync(pv(1, 0, v0))
  await new Promise((r) => setImmediate(r))
  store.release()
  await assert.rejects(a, /disk full/)
  assert.equal(g.record, undefined)
  const b = g.signVoteAsync(pv(1, 0, v0))
  await new Promise((r) => setImmediate(r))
  store.release()
  assert.ok((await b).ok)
})

test('lastSigned rebuilds the last signed message from the record alone, after a restart too', () => {
  const store = createMemorySafetyStore()
  const g = guard(store)
  assert.equal(g.lastSigned(), undefined)
  const p = g.signProposal({ height: 4, round: 1, valueId: v0, polRound: 0, proposer: me.address })
  assert.ok(p.ok)
  assert.deepEqual(guard(store).lastSigned(), { kind: 'proposal', proposal: p.value })
  for (const v of [pv(4, 1, v0), pc(4, 1, null)]) {
    const r = g.signVote(v)
    assert.ok(r.ok)
    const rebuilt = guard(store).lastSigned()
    assert.deepEqual(rebuilt, { kind: 'vote', vote: r.value })
    assert.ok(verify(me.publicKey, voteSignBytes(CHAIN_ID, r.value), r.value.signature))
  }
})
