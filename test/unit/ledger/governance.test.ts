import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { bytesEqual, toHex } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import {
  DEFAULT_GOVERNANCE_PARAMS,
  actionId,
  applyAction,
  castVote,
  decodeGovernanceState,
  encodeGovernanceState,
  endBlock,
  genesisGovernance,
  movedPower,
  rosterAt,
  voteProblem,
  type GovernanceAction,
  type GovernanceParams,
  type GovernanceState,
  type Member,
} from '../../../ledger/governance.js'
import { LedgerState } from '../../../ledger/ledgerState.js'
import { MemoryKvStore } from '../../../ledger/store.js'
import { decodeTransaction, encodeTransaction, signGovernanceTransaction, type DecodedTransaction } from '../../../ledger/transaction.js'

const CHAIN = 'tally-test'
const keys = Array.from({ length: 8 }, (_, i) => keyPairFromSeed(new Uint8Array(32).fill(i + 1)))
const peerId = (i: number) => `12D3KooW${'ABCDEFGH'[i]!.repeat(44)}`
const member = (i: number, power = 10): Member => ({
  address: addressFromPublicKey(keys[i]!.publicKey),
  publicKey: keys[i]!.publicKey,
  power,
  peerId: peerId(i),
  name: `v${i}`,
})
const addr = (i: number) => member(i).address
const four = () => genesisGovernance([0, 1, 2, 3].map((i) => member(i)))
const params: GovernanceParams = { ...DEFAULT_GOVERNANCE_PARAMS, voteExpiryHeights: 5, maxOpenVotes: 2 }
const add = (i: number, power = 10): GovernanceAction => ({ type: 'add', publicKey: keys[i]!.publicKey, power, peerId: peerId(i), name: `v${i}` })

function vote(s: GovernanceState, height: number, voter: number, a: GovernanceAction): GovernanceState {
  const r = castVote(s, height, addr(voter), a, params)
  if (!r.ok) throw new Error(r.error.reason)
  return r.value
}

const names = (s: GovernanceState, h: number) =>
  rosterAt(s, h)
    .map((m) => m.name)
    .sort()
    .join(',')

test('a change completes once more than two thirds of the power voted, and applies two heights later', () => {
  let s = four()
  s = vote(s, 10, 0, add(4, 3))
  s = vote(s, 10, 1, add(4, 3))
  s = endBlock(s, 10, [], params)
  assert.equal(s.pending.length, 1, 'two of four is not more than two thirds')
  s = vote(s, 11, 2, add(4, 3))
  s = endBlock(s, 11, [], params)
  assert.equal(s.pending.length, 0)
  assert.equal(names(s, 12), 'v0,v1,v2,v3', 'the next height keeps the old set')
  assert.equal(names(s, 13), 'v0,v1,v2,v3,v4', 'H + 2 has the new one')
  s = endBlock(s, 12, [], params)
  s = endBlock(s, 13, [], params)
  assert.deepEqual(
    s.schedule.map((e) => e.fromHeight),
    [13],
    'entries before the one in force are pruned',
  )
})

test('a vote judged on a state ahead of the tip (a synced run committed before the tip moved) counts as its next block would', () => {
  // v4 joins at 13; after block 13 the schedule starts there, and the tip may still say 11
  let s = four()
  for (const v of [0, 1, 2]) s = vote(s, 11, v, add(4, 3))
  for (const h of [11, 12, 13]) s = endBlock(s, h, [], params)
  assert.deepEqual(
    s.schedule.map((e) => e.fromHeight),
    [13],
  )
  assert.throws(() => castVote(s, 12, addr(4), add(5), params), /no validator set is scheduled at height 12/)
  for (const tip of [11, 12, 13]) {
    // judged at the later of the tip's next height and 13, where the state's set is in force
    const at = Math.max(tip + 1, 13)
    assert.equal(voteProblem(s, tip, addr(4), add(5), params), undefined, `tip ${tip}: v4 is a validator at ${at}`)
    assert.deepEqual(voteProblem(s, tip, addr(5), add(6), params), { code: 'not_validator', reason: `the signer is not a validator at height ${at}` })
  }
  // a tip ahead of where the state's schedule starts judges at the tip's next height
  assert.deepEqual(voteProblem(four(), 20, addr(4), add(5), params), { code: 'not_validator', reason: 'the signer is not a validator at height 21' })
  assert.equal(voteProblem(four(), 20, addr(0), add(5), params), undefined)
})

test('votes: only validators at the height, only changes that apply, at most maxOpenVotes each; a repeat renews', () => {
  const s = four()
  const r1 = castVote(s, 1, addr(5), add(4), params)
  assert.ok(!r1.ok && r1.error.code === 'not_validator')
  const r2 = castVote(s, 1, addr(0), add(1), params)
  assert.ok(!r2.ok && r2.error.code === 'bad_action', 'adding a validator already in the set')
  const r3 = castVote(s, 1, addr(0), { type: 'remove', address: addr(6) }, params)
  assert.ok(!r3.ok && r3.error.code === 'bad_action', 'removing a non-member')
  let t = vote(s, 1, 0, add(4))
  t = vote(t, 1, 0, add(5))
  const r4 = castVote(t, 1, addr(0), add(6), params)
  assert.ok(!r4.ok && r4.error.code === 'too_many_proposals')
  t = vote(t, 3, 0, add(4))
  assert.equal(t.pending.find((p) => bytesEqual(p.id, actionId(add(4))))!.votes[0]!.height, 3, 'the repeat renewed the vote')
})

test('votes expire after voteExpiryHeights', () => {
  let s = vote(four(), 10, 0, add(4))
  s = vote(s, 12, 1, add(4))
  s = endBlock(s, 14, [], params)
  assert.equal(s.pending[0]!.votes.length, 2)
  s = endBlock(s, 15, [], params)
  assert.equal(s.pending[0]!.votes.length, 1, 'the vote of height 10 expired at 15')
  s = endBlock(s, 17, [], params)
  assert.equal(s.pending.length, 0, 'a change without votes leaves')
})

test('at most a third of the power moves per height: a change that alone moves more is refused, two that together do are staged', () => {
  // 4 validators of power 10 (40): adding 20 alone moves 20 > 40/3: refused when voted
  const big = castVote(four(), 5, addr(0), add(4, 20), params)
  assert.ok(!big.ok && big.error.code === 'bad_action' && /third/.test(big.error.reason))
  // two adds of 10 each fit alone (10 <= 40/3) but not together (20): the second waits for the next height
  let s = four()
  for (const v of [0, 1, 2]) s = vote(s, 5, v, add(4, 10))
  for (const v of [0, 1, 2]) s = vote(s, 5, v, add(5, 10))
  s = endBlock(s, 5, [], params)
  assert.equal(s.pending.length, 1, 'one of the two is staged')
  assert.equal(rosterAt(s, 7).length, 5)
  s = endBlock(s, 6, [], params)
  assert.equal(s.pending.length, 0)
  assert.equal(rosterAt(s, 8).length, 6, 'the staged change applies a height later')
  assert.ok(3n * movedPower(rosterAt(s, 7), rosterAt(s, 8)) <= totalPowerOf(rosterAt(s, 7)))
})

const totalPowerOf = (r: readonly Member[]) => r.reduce((t, m) => t + BigInt(m.power), 0n)

test('a change never empties the set; a removed voter no longer counts', () => {
  const one = genesisGovernance([member(0)])
  const r = applyAction(rosterAt(one, 1), { type: 'remove', address: addr(0) })
  assert.ok(!r.ok)
  let s = four()
  for (const v of [0, 1, 2]) s = vote(s, 1, v, { type: 'remove', address: addr(3) })
  s = endBlock(s, 1, [], params)
  assert.equal(names(s, 3), 'v0,v1,v2')
  s = endBlock(s, 2, [], params)
  // from height 3, v3 is gone: its vote does not count, and it may not vote
  const late = castVote(s, 3, addr(3), add(4), params)
  assert.ok(!late.ok && late.error.code === 'not_validator')
})

test('committed evidence forces the removal of its offender when removeOffenders is set', () => {
  const strict = { ...params, removeOffenders: true }
  const s = endBlock(four(), 9, [addr(2)], strict)
  assert.equal(names(s, 11), 'v0,v1,v3')
  const lenient = endBlock(four(), 9, [addr(2)], params)
  assert.equal(names(lenient, 11), 'v0,v1,v2,v3', 'record only by default')
})

test("the governance record round-trips and its order is the data's", () => {
  let s = vote(four(), 1, 2, add(5))
  s = vote(s, 1, 0, add(4))
  s = vote(s, 1, 1, add(4))
  const bytes = encodeGovernanceState(s)
  const back = decodeGovernanceState(bytes)
  assert.equal(toHex(encodeGovernanceState(back)), toHex(bytes))
  const ids = s.pending.map((p) => toHex(p.id))
  assert.deepEqual(ids, [...ids].sort(), 'pending in id order')
})

/** A ledger over `store` holding the genesis record of {@link four}. */
async function openGoverned(store: MemoryKvStore): Promise<LedgerState> {
  const l = await LedgerState.open(store)
  const g = await l.setGenesis([], four())
  await store.write(g.ops)
  l.commit(g)
  return l
}

/** Validator `v`'s governance transaction, decoded as a block carries it. */
function voteTx(v: number, nonce: bigint, action: GovernanceAction): DecodedTransaction {
  const t = signGovernanceTransaction({ chainId: CHAIN, from: keys[v]!.publicKey, nonce, action }, keys[v]!.secretKey)
  const d = decodeTransaction(encodeTransaction(t))
  if (!d.ok) throw new Error(d.error.reason)
  return d.value
}

test('governance transactions through the ledger: votes, nonces, the record in the state root, the same on two replicas', async () => {
  const storeA = new MemoryKvStore()
  const a = await openGoverned(storeA)
  const b = await openGoverned(new MemoryKvStore())
  const block = { height: 1, governance: params, offenders: [] }
  const txs = [voteTx(0, 0n, add(4)), voteTx(1, 0n, add(4)), voteTx(2, 0n, add(4)), voteTx(2, 0n, add(5)), voteTx(6, 0n, add(5))]
  const ra = await a.execute(txs, { chainId: CHAIN, block })
  const rb = await b.execute(txs, { chainId: CHAIN, block })
  assert.deepEqual(
    ra.receipts.map((r) => (r.ok ? 'ok' : r.code)),
    ['ok', 'ok', 'ok', 'bad_nonce', 'not_validator'],
  )
  assert.equal(toHex(ra.stateRoot), toHex(rb.stateRoot))
  assert.ok(ra.governanceBytes !== undefined)
  await storeA.write(ra.ops)
  a.commit(ra)
  assert.equal(a.rosterAt(3).length, 5, 'the fifth validator is in force at height 3')
  assert.equal((await a.getAccount(addr(0))).nonce, 1n, 'a vote consumes the nonce')
  const reopened = await LedgerState.open(storeA)
  assert.equal(toHex(encodeGovernanceState(reopened.governance()!)), toHex(encodeGovernanceState(a.governance()!)), 'the record is stored')
  assert.equal(toHex(reopened.root()), toHex(ra.stateRoot))
})

test('deferred blocks with votes settle to the root and store of executing them one by one', async () => {
  const storeOne = new MemoryKvStore()
  const one = await openGoverned(storeOne)
  const storeRuns = new MemoryKvStore()
  const runs = await openGoverned(storeRuns)
  // two runs: the record changes at every block of the first, and only at the first block of the second
  const blocks = [[voteTx(0, 0n, add(4)), voteTx(1, 0n, add(4))], [voteTx(2, 0n, add(4))], [voteTx(0, 1n, add(5))], []]
  const dump = (s: MemoryKvStore) => s.entries().map((e) => `${toHex(e.key)}=${toHex(e.value)}`)
  let changedLast = false
  for (const run of [
    [0, 1],
    [2, 3],
  ]) {
    for (const i of run) {
      const ctx = { chainId: CHAIN, block: { height: i + 1, governance: params, offenders: [] } }
      const a = await one.execute(blocks[i]!, ctx)
      await storeOne.write(a.ops)
      one.commit(a)
      const b = await runs.executeDeferred(blocks[i]!, ctx)
      assert.equal(b.governanceBytes !== undefined, a.governanceBytes !== undefined, `block ${i + 1} changes the record on both`)
      changedLast = a.governanceBytes !== undefined
      runs.commitDeferred(b)
    }
    const settled = await runs.settleTree()
    assert.equal(toHex(settled.root), toHex(one.root()), `root after block ${run[1]! + 1}`)
    await storeRuns.write(settled.ops)
    runs.commitTree(settled)
  }
  assert.equal(changedLast, false, 'the last block left the record as it was')
  assert.equal(runs.rosterAt(4).length, 5)
  assert.deepEqual(dump(storeRuns), dump(storeOne))
  assert.equal(toHex(encodeGovernanceState(runs.governance()!)), toHex(encodeGovernanceState(one.governance()!)))
})
