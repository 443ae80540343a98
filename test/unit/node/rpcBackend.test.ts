import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { bytesEqual } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { parseGenesis, type Genesis } from '../../../genesis/genesis.js'
import { castVote, endBlock, genesisGovernance, rosterAt, type GovernanceAction, type GovernanceState, type Member } from '../../../ledger/governance.js'
import { MemoryKvStore } from '../../../ledger/store.js'
import { createTransfer, encodeTransaction, signGovernanceTransaction } from '../../../ledger/transaction.js'
import { NodeBackend } from '../../../node/rpcBackend.js'
import { peerIdOf } from '../../../node/p2p/peerId.js'
import { ChainStore, type ChainTip } from '../../../node/storage/chainStore.js'
import type { SubmitResult } from '../../../rpc/backend.js'
import { verifyAccountProof } from '../../../ledger/accountProof.js'
import { verifyTxInclusion } from '../../../ledger/txProof.js'
import { TestChain, testKey } from '../rpc/light/testChain.js'

/**
 * The node's RPC backend over real governance state: the set by height and its bounds, pending changes with the power
 * their votes hold, governance votes refused at submission with the ledger's code, and `validator` in the status;
 * and its proofs over a real in-process chain, a commit racing an account proof included.
 */

const seeds = [1, 2, 3, 4].map((i) => new Uint8Array(32).fill(i))
const keys = seeds.map((s) => keyPairFromSeed(s))
const members: Member[] = keys.map((k, i) => ({
  address: addressFromPublicKey(k.publicKey),
  publicKey: k.publicKey,
  power: 1,
  name: `node${i}`,
  peerId: peerIdOf(keyPairFromSeed(new Uint8Array(32).fill(50 + i)).publicKey),
}))
const newcomer = keyPairFromSeed(new Uint8Array(32).fill(9))
const addNewcomer: GovernanceAction = {
  type: 'add',
  publicKey: newcomer.publicKey,
  power: 1,
  name: 'node4',
  peerId: peerIdOf(keyPairFromSeed(new Uint8Array(32).fill(60)).publicKey),
}

function makeGenesis(maxOpenVotes = 8): Genesis {
  const r = parseGenesis({
    chainId: 'gov-test',
    genesisTime: '2026-01-01T00:00:00Z',
    validators: members.map((m) => ({ name: m.name, publicKey: `0x${Buffer.from(m.publicKey).toString('hex')}`, power: m.power, peerId: m.peerId })),
    balances: [],
    params: { governance: { voteExpiryHeights: 10, maxOpenVotes } },
  })
  if (!r.ok) throw new Error(JSON.stringify(r.error.errors))
  return r.value
}

function backend(o: { genesis?: Genesis; tip?: number; gov: GovernanceState; validator?: Uint8Array | null; submitted?: Uint8Array[] }) {
  const genesis = o.genesis ?? makeGenesis()
  const tip: ChainTip | undefined = o.tip === undefined || o.tip === 0 ? undefined : { height: o.tip, blockHash: new Uint8Array(32), blockTime: 0 }
  // the history by height: genesis from 1, then whatever the state schedules
  const history = [{ fromHeight: 1, roster: rosterAt(genesisGovernance(members), 1) }, ...o.gov.schedule.filter((e) => e.fromHeight > 1)]
  return new NodeBackend({
    genesis,
    moniker: 'm',
    chain: new ChainStore(new MemoryKvStore()),
    tip: () => tip,
    getAccount: () => ({ balance: 0n, nonce: 0n }),
    nextNonce: async () => 0n,
    submit: async (bytes): Promise<SubmitResult> => {
      o.submitted?.push(bytes)
      return { ok: true, value: new Uint8Array(32) }
    },
    pending: () => false,
    rejected: () => undefined,
    peerId: 'p',
    peerCount: () => 3,
    catchingUp: () => false,
    validator: o.validator === undefined ? members[0]!.address : o.validator,
    evidence: () => [],
    rosterAt: (h) => history.filter((e) => e.fromHeight <= h).at(-1)!.roster,
    governance: () => o.gov,
  })
}

const params = { voteExpiryHeights: 10, maxOpenVotes: 8, removeOffenders: false }

function voted(s: GovernanceState, height: number, voters: number[], action: GovernanceAction): GovernanceState {
  for (const i of voters) {
    const r = castVote(s, height, members[i]!.address, action, params)
    if (!r.ok) throw new Error(r.error.reason)
    s = r.value
  }
  return s
}

function govTx(seed: Uint8Array, action: GovernanceAction, chainId = 'gov-test'): Uint8Array {
  return encodeTransaction(signGovernanceTransaction({ chainId, from: keyPairFromSeed(seed).publicKey, nonce: 0n, action }, seed))
}

test("getValidators: the next height's set by default, any height from 1 to the tip + 2, a reason beyond", () => {
  const b = backend({ tip: 5, gov: genesisGovernance(members) })
  const latest = b.getValidators()
  assert.ok(Array.isArray(latest))
  assert.deepEqual(latest.map((v) => v.name).sort(), ['node0', 'node1', 'node2', 'node3'])
  assert.deepEqual(b.getValidators(1), latest)
  assert.deepEqual(b.getValidators(7), latest)
  for (const h of [8, 1000]) {
    const r = b.getValidators(h)
    assert.ok(!Array.isArray(r) && 'unknown' in r)
    assert.match(r.unknown, /up to height 7/)
  }
  const zero = b.getValidators(0)
  assert.ok(!Array.isArray(zero) && /first block is height 1/.test(zero.unknown))
})

test('getValidators follows a completed change: the old set up to H + 1, the new one from H + 2', () => {
  // three of four vote in block 5; the change completes at its end and applies from height 7
  let s = voted(genesisGovernance(members), 5, [0, 1, 2], addNewcomer)
  s = endBlock(s, 5, [], params)
  const b = backend({ tip: 5, gov: s })
  const names = (h?: number) => {
    const r = b.getValidators(h)
    assert.ok(Array.isArray(r))
    return r.map((v) => v.name).sort()
  }
  assert.deepEqual(names(6), ['node0', 'node1', 'node2', 'node3'])
  assert.deepEqual(names(), ['node0', 'node1', 'node2', 'node3'])
  assert.deepEqual(names(7), ['node0', 'node1', 'node2', 'node3', 'node4'])
  const pending = b.getPendingChanges()
  assert.deepEqual(pending.changes, [])
  assert.equal(pending.scheduled?.fromHeight, 7)
  assert.equal(pending.scheduled?.validators.length, 5)
})

test("getPendingChanges: votes, the power they hold in the next height's set, its total", () => {
  const s = voted(genesisGovernance(members), 3, [1, 3], addNewcomer)
  const p = backend({ tip: 4, gov: s }).getPendingChanges()
  assert.equal(p.height, 5)
  assert.equal(p.totalPower, 4n)
  assert.equal(p.voteExpiryHeights, 10)
  assert.equal(p.scheduled, null)
  assert.equal(p.changes.length, 1)
  const c = p.changes[0]!
  assert.equal(c.action.type, 'add')
  assert.equal(c.power, 2n)
  assert.equal(c.forced, false)
  assert.deepEqual(
    c.votes.map((v) => v.height),
    [3, 3],
  )
  assert.ok(c.votes.every((v) => members.some((m) => bytesEqual(m.address, v.address))))
})

test("submitTx refuses a governance vote that would fail at the next height, with the ledger's code", async () => {
  const submitted: Uint8Array[] = []
  const genesis = makeGenesis(1)
  const gov = voted(genesisGovernance(members), 2, [0], addNewcomer)
  const b = backend({ genesis, tip: 2, gov, submitted })
  const outsider = await b.submitTx(govTx(new Uint8Array(32).fill(9), addNewcomer))
  assert.deepEqual(outsider, { ok: false, error: { code: 'not_validator', reason: 'the signer is not a validator at height 3' } })
  const removeStranger = await b.submitTx(govTx(seeds[1]!, { type: 'remove', address: addressFromPublicKey(newcomer.publicKey) }))
  assert.equal(removeStranger.ok, false)
  assert.equal(!removeStranger.ok && removeStranger.error.code, 'bad_action')
  // node0 already has its one open vote (maxOpenVotes 1) on another change
  const second = await b.submitTx(govTx(seeds[0]!, { type: 'power', address: members[1]!.address, power: 2 }))
  assert.equal(!second.ok && second.error.code, 'too_many_proposals')
  assert.equal(submitted.length, 0, 'nothing refused reaches the mempool')
  // renewing its vote, another validator's vote, a transfer and a vote for another chain go on to the mempool
  for (const bytes of [
    govTx(seeds[0]!, addNewcomer),
    govTx(seeds[2]!, addNewcomer),
    createTransfer(seeds[0]!, { chainId: 'gov-test', to: members[1]!.address, amount: 1n, nonce: 0n }).bytes,
    govTx(seeds[3]!, { type: 'remove', address: addressFromPublicKey(newcomer.publicKey) }, 'other-chain'),
  ])
    assert.equal((await b.submitTx(bytes)).ok, true)
  assert.equal(submitted.length, 4)
})

test("status: validator is the key's address only while it is in the next height's set; null on a full node", () => {
  const gov = genesisGovernance(members)
  assert.deepEqual(backend({ tip: 1, gov }).status().validator, members[0]!.address)
  assert.equal(backend({ tip: 1, gov, validator: addressFromPublicKey(newcomer.publicKey) }).status().validator, null)
  assert.equal(backend({ tip: 1, gov, validator: null }).status().validator, null)
  // once the newcomer's set is in force, it is reported
  const s = endBlock(voted(gov, 1, [0, 1, 2], addNewcomer), 1, [], params)
  assert.deepEqual(
    backend({ tip: 2, gov: s, validator: addressFromPublicKey(newcomer.publicKey) }).status().validator,
    addressFromPublicKey(newcomer.publicKey),
  )
})

test('proveAccount: a commit between reading the tip and proving is retried; the answer is of one height', async () => {
  const alice = testKey('alice')
  const aliceAddress = addressFromPublicKey(alice.publicKey)
  const chain = await TestChain.create({ balances: [[aliceAddress, 100n]] })
  await chain.commit()
  const transfer = (nonce: bigint) => createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: members[0]!.address, amount: 1n, nonce }).bytes
  let commitsInBetween = 1
  let proofs = 0
  const b = chain.backendWith({
    proveAccount: async (a) => {
      proofs++
      // the tip was read; a block commits before the ledger reads its root
      if (commitsInBetween-- > 0) await chain.commit([transfer(BigInt(chain.height - 1))])
      return chain.ledger.proveAccount(a)
    },
  })
  const p = await b.proveAccount(aliceAddress)
  assert.ok(!('unavailable' in p))
  assert.equal(proofs, 2, 'the first proof was against a root the tip did not name')
  assert.equal(p.block.height, 2)
  assert.deepEqual(p.account, { balance: 99n, nonce: 1n })
  assert.ok(verifyAccountProof(p.block.header.stateRoot as Uint8Array, aliceAddress, p.proof).ok)
  // the chain moving on during both attempts answers unavailable (the client asks again or elsewhere), never a
  // mixed answer
  commitsInBetween = 2
  const moving = await b.proveAccount(aliceAddress)
  assert.ok('unavailable' in moving && /moved on during two account proofs/.test(moving.unavailable))
})

test('proveTx: the inclusion proof of a committed transaction, with its block; none for others', async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 100n]] })
  const tx = createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: members[1]!.address, amount: 5n, nonce: 0n })
  const block = await chain.commit([tx.bytes])
  const r = await chain.backend.proveTx(tx.hash)
  assert.deepEqual(r.lookup, { status: 'committed', height: 1, index: 0, ok: true })
  assert.ok(r.proof !== undefined && bytesEqual(r.proof.block.hash, block.hash))
  assert.deepEqual(verifyTxInclusion(block.header.txRoot, tx.hash, r.proof.proof), { ok: true, value: { index: 0, count: 1 } })
  assert.deepEqual(await chain.backend.proveTx(new Uint8Array(32)), { lookup: { status: 'unknown' } })
})

/** `chain` with every call of `method` (default `blockBytes`) counted by its first argument. */
function countingBlockReads(chain: ChainStore, method: keyof ChainStore = 'blockBytes'): { store: ChainStore; reads: unknown[] } {
  const reads: unknown[] = []
  const store = new Proxy(chain, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver)
      if (typeof v !== 'function') return v
      if (key !== method) return v.bind(target)
      return (...args: unknown[]) => {
        reads.push(args[0])
        return v.apply(target, args)
      }
    },
  })
  return { store, reads }
}

test('proveTx: the clients of one block are answered from one read of it; the last four heights asked are kept', async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 1000n]] })
  const txs = Array.from({ length: 21 }, (_, n) =>
    createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: members[1]!.address, amount: 1n, nonce: BigInt(n) }),
  )
  const blocks = []
  for (let h = 0; h < 6; h++) blocks.push(await chain.commit(txs.slice(h === 0 ? 0 : 15 + h - 1, h === 0 ? 15 : 15 + h).map((t) => t.bytes)))
  const { store, reads } = countingBlockReads(chain.chain)
  const b = chain.backendWith({ chain: store })
  // every transaction of the first block, all at once and one by one: one read of the block
  const first = txs.slice(0, 15)
  const answers = [...(await Promise.all(first.map((t) => b.proveTx(t.hash)))), ...(await Promise.all(first.map((t) => b.proveTx(t.hash))))]
  for (const [i, r] of answers.entries()) {
    assert.ok(r.proof !== undefined && bytesEqual(r.proof.block.hash, blocks[0]!.hash))
    assert.deepEqual(verifyTxInclusion(blocks[0]!.header.txRoot, first[i % 15]!.hash, r.proof.proof), { ok: true, value: { index: i % 15, count: 15 } })
    assert.deepEqual(r.proof.block, await chain.backend.getCommit(1))
  }
  assert.deepEqual(reads, [1])
  // five more heights asked: the first, asked longest ago, is read again; the last four are not
  for (let h = 2; h <= 6; h++) {
    const r = await b.proveTx(txs[15 + h - 2]!.hash)
    assert.deepEqual(verifyTxInclusion(blocks[h - 1]!.header.txRoot, txs[15 + h - 2]!.hash, r.proof!.proof), { ok: true, value: { index: 0, count: 1 } })
  }
  for (let h = 3; h <= 6; h++) await b.proveTx(txs[15 + h - 2]!.hash)
  await b.proveTx(txs[0]!.hash)
  assert.deepEqual(reads, [1, 2, 3, 4, 5, 6, 1])
})

test('getBlock: the clients of one block are answered from one read of it, as read afresh; four heights are kept', async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 1000n]] })
  const txs = Array.from({ length: 20 }, (_, n) =>
    createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: members[1]!.address, amount: 1n, nonce: BigInt(n) }),
  )
  for (let h = 0; h < 6; h++) await chain.commit(txs.slice(h * 3, h * 3 + 3).map((t) => t.bytes))
  const { store, reads } = countingBlockReads(chain.chain)
  const b = chain.backendWith({ chain: store })
  // a backend of its own for each answer it is compared with: the block as read afresh
  const afresh = (h?: number) => chain.backendWith({}).getBlock(h)
  const answers = [...(await Promise.all(Array.from({ length: 10 }, () => b.getBlock(1)))), await b.getBlock(1), await b.getBlock(1)]
  for (const r of answers) assert.deepEqual(r, await afresh(1))
  assert.equal(answers[0]!.txs.length, 3)
  assert.deepEqual(reads, [1])
  // the latest block, asked without a height and with it: one read
  assert.deepEqual(await b.getBlock(), await afresh())
  assert.deepEqual(await b.getBlock(6), await afresh(6))
  assert.deepEqual(reads, [1, 6])
  // four more heights asked: the first, asked longest ago, is read again
  for (let h = 2; h <= 5; h++) assert.deepEqual(await b.getBlock(h), await afresh(h))
  await b.getBlock(1)
  assert.deepEqual(reads, [1, 6, 2, 3, 4, 5, 1])
  // a height not committed yet is no block, and is one once committed
  assert.equal(await b.getBlock(7), null)
  await chain.commit(txs.slice(18, 20).map((t) => t.bytes))
  const seventh = await b.getBlock(7)
  assert.deepEqual(seventh, await afresh(7))
  assert.equal(seventh?.txs.length, 2)
})

test("getBlock: a block's results are one record of its failures, not a lookup per transaction; older heights are looked up", async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 3n]] })
  const transfer = (amount: bigint, nonce: number) =>
    createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: members[1]!.address, amount, nonce: BigInt(nonce) }).bytes
  // 2 of 3 applied, 2 more are not covered, 1 applied; then a block of successes only
  await chain.commit([transfer(2n, 0), transfer(2n, 1), transfer(1n, 1)], { failing: true })
  await chain.commit([])
  const expected = [{ ok: true }, { ok: false, error: 'insufficient_funds' }, { ok: true }]
  const { store, reads } = countingBlockReads(chain.chain, 'txLocations')
  const b = chain.backendWith({ chain: store })
  assert.deepEqual((await b.getBlock(1))?.results, expected)
  assert.deepEqual((await b.getBlock(2))?.results, [])
  assert.deepEqual(reads, [])
  // a height stored without the record (by a build before it) is answered from the transactions' index, the same
  const results = new Uint8Array(9)
  results[0] = 0x52
  results[8] = 1
  await chain.kv.write([{ type: 'del', key: results }])
  assert.deepEqual((await chain.backendWith({ chain: store }).getBlock(1))?.results, expected)
  assert.equal(reads.length, 1)
})

test('proveAccount at the tip uses the block just published, the same as the one stored', async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 100n]] })
  await chain.commitEmpty(3)
  const p = await chain.backend.proveAccount(addressFromPublicKey(alice.publicKey))
  assert.ok(!('unavailable' in p))
  assert.equal(p.block.height, 3)
  assert.deepEqual(p.block, await chain.backend.getCommit(3))
})

test("getPendingChanges with the governance state ahead of the tip (a synced run committed before the tip moved) counts votes in the state's set", () => {
  const raise: GovernanceAction = { type: 'power', address: members[1]!.address, power: 2 }
  let s = voted(genesisGovernance(members), 11, [0, 1, 2], addNewcomer)
  s = endBlock(s, 11, [], params)
  s = endBlock(s, 12, [], params)
  const node4 = addressFromPublicKey(newcomer.publicKey)
  let r = castVote(s, 13, members[0]!.address, raise, params)
  assert.ok(r.ok)
  r = castVote(r.value, 13, node4, raise, params)
  assert.ok(r.ok)
  s = endBlock(r.value, 13, [], params)
  assert.deepEqual(
    s.schedule.map((e) => e.fromHeight),
    [13],
  )
  assert.equal(s.pending.length, 1, 'two of five: the change waits')
  const b = backend({ tip: 11, gov: s }) // the ledger on 13, the tip on 11
  const ahead = b.getPendingChanges()
  const caught = backend({ tip: 13, gov: s }).getPendingChanges()
  assert.equal(caught.totalPower, 5n)
  assert.equal(caught.changes[0]!.power, 2n)
  assert.equal(caught.scheduled, null)
  assert.equal(ahead.totalPower, caught.totalPower, `total power of the set of height ${ahead.height}, not of the state's`)
  assert.equal(ahead.changes[0]!.power, caught.changes[0]!.power, "node4's vote counted in a set it is not in")
  assert.deepEqual(ahead.scheduled, caught.scheduled, 'the set already in force after the state is reported as scheduled')
  assert.ok(Array.isArray(b.getValidators(ahead.height)), `the set of height ${ahead.height} is known`)
})

test('getEvidence: the list is made once per block, and the same list is handed out until the next block', async () => {
  const chain = await TestChain.create({})
  let made = 0
  const b = chain.backendWith({
    evidence: () => {
      made++
      return [{ kind: 'conflictingVotes', committedAt: made }]
    },
  })
  const publish = chain.backend.publishCommitted.bind(chain.backend)
  chain.backend.publishCommitted = (c) => {
    publish(c)
    b.publishCommitted(c)
  }
  const first = b.getEvidence()
  assert.equal(b.getEvidence(), first)
  assert.equal(made, 1)
  // a block may carry evidence: the list is made afresh after it
  await chain.commit()
  const second = b.getEvidence()
  assert.notEqual(second, first)
  assert.deepEqual(second, [{ kind: 'conflictingVotes', committedAt: 2 }])
  assert.equal(b.getEvidence(), second)
})

test('getBlock: heights past the tip, which are no block, do not drop the blocks kept', async () => {
  const alice = testKey('alice')
  const chain = await TestChain.create({ balances: [[addressFromPublicKey(alice.publicKey), 1000n]] })
  const txs = Array.from({ length: 4 }, (_, n) =>
    createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: members[1]!.address, amount: 1n, nonce: BigInt(n) }),
  )
  for (const t of txs) await chain.commit([t.bytes])
  const { store, reads } = countingBlockReads(chain.chain)
  const b = chain.backendWith({ chain: store })
  for (let h = 1; h <= 4; h++) await b.getBlock(h)
  assert.deepEqual(reads, [1, 2, 3, 4])
  // a client polling for blocks not made yet (several heights at once, as a batch asks): no block, nothing read
  assert.deepEqual(await Promise.all([5, 6, 7, 8].map((h) => b.getBlock(h))), [null, null, null, null])
  for (let h = 1; h <= 4; h++) await b.getBlock(h)
  assert.deepEqual(reads, [1, 2, 3, 4], 'a height past the tip dropped a kept block, which was read again')
})
