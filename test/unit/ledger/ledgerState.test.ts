import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { toHex } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { sha256 } from '../../../crypto/hash.js'
import { ZERO_ACCOUNT } from '../../../ledger/account.js'
import { LedgerState } from '../../../ledger/ledgerState.js'
import { EMPTY_HASH, RESIDENT_DEPTH, TOP_KEY_TAG, TREE_KEY_TAG, nodeStoreKeyDepth } from '../../../ledger/smt.js'
import { MemoryKvStore } from '../../../ledger/store.js'
import { U64_MAX, createTransfer, decodeTransaction, encodeTransaction, type DecodedTransaction } from '../../../ledger/transaction.js'
import { VerifiedTxCache } from '../../../ledger/verifiedTxCache.js'

const CHAIN = 'tally-test'
const seedA = new Uint8Array(32).fill(1)
const seedB = new Uint8Array(32).fill(2)
const A = addressFromPublicKey(keyPairFromSeed(seedA).publicKey)
const B = addressFromPublicKey(keyPairFromSeed(seedB).publicKey)
const C = new Uint8Array(20).fill(0xcc)

async function funded(balances: [Uint8Array, bigint][], options?: { maxCachedAccounts?: number }): Promise<{ store: MemoryKvStore; state: LedgerState }> {
  const store = new MemoryKvStore()
  const state = await LedgerState.open(store, options)
  const r = await state.setAccounts(balances.map(([address, balance]) => ({ address, account: { balance, nonce: 0n } })))
  await store.write(r.ops)
  state.commit(r)
  return { store, state }
}

const dump = (s: MemoryKvStore) => s.entries().map((e) => `${toHex(e.key)}=${toHex(e.value)}`)

const transfer = (seed: Uint8Array, to: Uint8Array, amount: bigint, nonce: bigint, chainId = CHAIN) => createTransfer(seed, { chainId, to, amount, nonce })

function withBadSignature(t: DecodedTransaction): DecodedTransaction {
  const signature = new Uint8Array(t.tx.signature)
  signature[5]! ^= 1
  const d = decodeTransaction(encodeTransaction({ ...t.tx, signature }))
  assert.ok(d.ok)
  return d.value
}

test('an empty store opens as the empty state', async () => {
  const state = await LedgerState.open(new MemoryKvStore())
  assert.deepEqual(state.root(), EMPTY_HASH)
  assert.deepEqual(await state.getAccount(A), ZERO_ACCOUNT)
})

test('each rule fails a transfer with its code, in the documented order, and a failed transfer changes nothing', async () => {
  const rows: { desc: string; tx: () => DecodedTransaction; code: string }[] = [
    { desc: 'other chain', tx: () => transfer(seedA, B, 1n, 0n, 'other-chain'), code: 'wrong_chain' },
    { desc: 'other chain beats a bad signature', tx: () => withBadSignature(transfer(seedA, B, 1n, 0n, 'other-chain')), code: 'wrong_chain' },
    { desc: 'bad signature', tx: () => withBadSignature(transfer(seedA, B, 1n, 0n)), code: 'invalid_signature' },
    { desc: 'bad signature beats a bad nonce', tx: () => withBadSignature(transfer(seedA, B, 1n, 9n)), code: 'invalid_signature' },
    { desc: 'nonce ahead', tx: () => transfer(seedA, B, 1n, 1n), code: 'bad_nonce' },
    { desc: 'nonce ahead beats overdraft', tx: () => transfer(seedA, B, 10_000n, 1n), code: 'bad_nonce' },
    { desc: 'overdraft', tx: () => transfer(seedA, B, 101n, 0n), code: 'insufficient_funds' },
    { desc: 'self-transfer above the balance', tx: () => transfer(seedA, A, 101n, 0n), code: 'insufficient_funds' },
    { desc: 'unfunded sender', tx: () => transfer(new Uint8Array(32).fill(9), A, 1n, 0n), code: 'insufficient_funds' },
    { desc: 'recipient overflow', tx: () => transfer(seedA, C, 1n, 0n), code: 'balance_overflow' },
  ]
  for (const row of rows) {
    const { state } = await funded([
      [A, 100n],
      [C, U64_MAX],
    ])
    const before = state.root()
    const r = await state.execute([row.tx()], { chainId: CHAIN })
    assert.deepEqual(r.receipts, [{ ok: false, code: row.code }], row.desc)
    assert.deepEqual(r.stateRoot, before, row.desc)
    assert.deepEqual(r.ops, [], row.desc)
    assert.equal(r.changed.length, 0, row.desc)
  }
})

test('a transfer moves the amount and consumes the nonce; the recipient account is created', async () => {
  const { store, state } = await funded([[A, 100n]])
  const r = await state.execute([transfer(seedA, B, 30n, 0n), transfer(seedA, B, 70n, 1n), transfer(seedA, B, 1n, 2n)], { chainId: CHAIN })
  assert.deepEqual(r.receipts, [{ ok: true }, { ok: true }, { ok: false, code: 'insufficient_funds' }])
  await store.write(r.ops)
  state.commit(r)
  assert.deepEqual(await state.getAccount(A), { balance: 0n, nonce: 2n })
  assert.deepEqual(await state.getAccount(B), { balance: 100n, nonce: 0n })
  assert.deepEqual(state.root(), r.stateRoot)
})

test('a self-transfer covered by the balance applies: nonce bumped, balance unchanged', async () => {
  const { store, state } = await funded([[A, 100n]])
  const r = await state.execute([transfer(seedA, A, 100n, 0n)], { chainId: CHAIN })
  assert.deepEqual(r.receipts, [{ ok: true }])
  await store.write(r.ops)
  state.commit(r)
  assert.deepEqual(await state.getAccount(A), { balance: 100n, nonce: 1n })
})

test('a transfer filling the recipient to exactly 2^64-1 applies', async () => {
  const { state } = await funded([
    [A, 100n],
    [C, U64_MAX - 5n],
  ])
  const r = await state.execute([transfer(seedA, C, 5n, 0n), transfer(seedA, C, 1n, 1n)], { chainId: CHAIN })
  assert.deepEqual(r.receipts, [{ ok: true }, { ok: false, code: 'balance_overflow' }])
})

test('verified hashes skip the signature check; trustSignatures skips all; verified signatures are remembered', async () => {
  const { state } = await funded([[A, 100n]])
  const bad = withBadSignature(transfer(seedA, B, 1n, 0n))
  const cache = new VerifiedTxCache({ maxEntries: 10 })
  cache.add(bad.hash)
  assert.deepEqual((await state.execute([bad], { chainId: CHAIN, verified: cache })).receipts, [{ ok: true }])
  assert.deepEqual((await state.execute([bad], { chainId: CHAIN, trustSignatures: true })).receipts, [{ ok: true }])
  assert.deepEqual((await state.execute([bad], { chainId: CHAIN })).receipts, [{ ok: false, code: 'invalid_signature' }])
  const good = transfer(seedA, B, 1n, 0n)
  const fresh = new VerifiedTxCache()
  await state.execute([good], { chainId: CHAIN, verified: fresh })
  assert.ok(fresh.has(good.hash))
})

test('speculative execution: two candidates on one state, committing one leaves exactly its state', async () => {
  const { store, state } = await funded([
    [A, 100n],
    [B, 50n],
  ])
  const root0 = state.root()
  const blockX = [transfer(seedA, C, 10n, 0n), transfer(seedB, A, 5n, 0n)]
  const blockY = [transfer(seedA, B, 40n, 0n)]
  const x = await state.execute(blockX, { chainId: CHAIN })
  const y = await state.execute(blockY, { chainId: CHAIN })
  assert.notDeepEqual(x.stateRoot, y.stateRoot)
  // Neither execution changed anything.
  assert.deepEqual(state.root(), root0)
  assert.deepEqual(await state.getAccount(A), { balance: 100n, nonce: 0n })
  await store.write(y.ops)
  state.commit(y)
  assert.deepEqual(state.root(), y.stateRoot)
  assert.deepEqual(await state.getAccount(A), { balance: 60n, nonce: 1n })
  assert.deepEqual(await state.getAccount(B), { balance: 90n, nonce: 0n })
  assert.deepEqual(await state.getAccount(C), ZERO_ACCOUNT)
  // The store is exactly that of a node that only ever saw Y.
  const only = await funded([
    [A, 100n],
    [B, 50n],
  ])
  const y2 = await only.state.execute(blockY, { chainId: CHAIN })
  await only.store.write(y2.ops)
  assert.deepEqual(dump(store), dump(only.store))
  // The losing candidate was computed on the old root and can no longer be committed.
  assert.throws(() => state.commit(x), /executed on root/)
  // Re-executing X on the new state gives a different outcome (A's nonce 0 is spent).
  const x2 = await state.execute(blockX, { chainId: CHAIN })
  assert.deepEqual(x2.receipts, [{ ok: false, code: 'bad_nonce' }, { ok: true }])
})

test('reopening the store restores the committed root', async () => {
  const { store, state } = await funded([[A, 100n]])
  const r = await state.execute([transfer(seedA, B, 1n, 0n)], { chainId: CHAIN })
  await store.write(r.ops)
  state.commit(r)
  const again = await LedgerState.open(store)
  assert.deepEqual(again.root(), r.stateRoot)
  assert.deepEqual(await again.getAccount(B), { balance: 1n, nonce: 0n })
})

test('the upper tree levels are not stored; a store whose stored tree does not give its root is refused at open', async () => {
  // 3,000 accounts: leaves down to about depth 12, below and above them internal nodes the store does not hold
  const entries = Array.from({ length: 3000 }, (_, i) => ({
    address: sha256(new Uint8Array([i >> 8, i & 0xff])).subarray(0, 20),
    account: { balance: BigInt(i + 1), nonce: 0n },
  }))
  const store = new MemoryKvStore()
  const state = await LedgerState.open(store)
  const r = await state.setAccounts(entries)
  await store.write(r.ops)
  state.commit(r)
  const upper = store.entries().filter((e) => e.key[0] === 0x4c && e.key[1] === TOP_KEY_TAG)
  assert.ok(upper.length > 3000 * 0.9 && upper.every((e) => e.value[0] === 0 || nodeStoreKeyDepth(e.key) === RESIDENT_DEPTH))
  const reopened = await LedgerState.open(store)
  assert.equal(toHex(reopened.root()), toHex(r.stateRoot))
  const proof = await reopened.proveAccount(entries[17]!.address)
  assert.deepEqual(proof.account, entries[17]!.account)

  const damaged = async (change: (s: MemoryKvStore) => Promise<void>) => {
    const copy = new MemoryKvStore()
    await copy.write(store.entries().map((e) => ({ type: 'put' as const, key: e.key, value: e.value })))
    await change(copy)
    return LedgerState.open(copy)
  }
  // a leaf gone, or another leaf's value
  await assert.rejects(
    damaged((s) => s.write([{ type: 'del', key: upper[5]!.key }])),
    /state corrupt: the stored tree gives root/,
  )
  const other = new Uint8Array(upper[9]!.value)
  other[64]! ^= 1
  await assert.rejects(
    damaged((s) => s.write([{ type: 'put', key: upper[9]!.key, value: other }])),
    /state corrupt: the stored tree gives root/,
  )
  // an internal node stored above the resident depth: never written there
  const internal = new Uint8Array(65).fill(7)
  internal[0] = 1
  await assert.rejects(
    damaged((s) => s.write([{ type: 'put', key: upper[3]!.key, value: internal }])),
    /state tree corrupt: a stored internal node/,
  )
  // the layout before the resident levels: every node under 't', none under 'u'
  await assert.rejects(
    damaged((s) =>
      s.write(
        upper.flatMap((e) => {
          const moved = new Uint8Array(e.key)
          moved[1] = TREE_KEY_TAG
          return [
            { type: 'del' as const, key: e.key },
            { type: 'put' as const, key: moved, value: e.value },
          ]
        }),
      ),
    ),
    /an earlier layout/,
  )
})

test('an empty block changes nothing and has no ops', async () => {
  const { state } = await funded([[A, 100n]])
  const r = await state.execute([], { chainId: CHAIN })
  assert.deepEqual(r.receipts, [])
  assert.deepEqual(r.ops, [])
  assert.deepEqual(r.stateRoot, state.root())
})

test('the account cache answers from memory and follows every commit; a stale candidate cannot poison it', async () => {
  for (const maxCachedAccounts of [65_536, 1, 0]) {
    const store = new MemoryKvStore()
    const state = await LedgerState.open(store, { maxCachedAccounts })
    const g = await state.setAccounts([{ address: A, account: { balance: 100n, nonce: 0n } }])
    await store.write(g.ops)
    state.commit(g)
    assert.deepEqual(await state.getAccount(A), { balance: 100n, nonce: 0n })
    if (maxCachedAccounts > 0) assert.ok(!(state.getAccount(A) instanceof Promise), 'a committed account is cached')
    // a candidate that is never committed changes nothing, in the store or the cache
    const stale = await state.execute([transfer(seedA, B, 7n, 0n)], { chainId: CHAIN })
    assert.deepEqual(await state.getAccount(A), { balance: 100n, nonce: 0n })
    const r = await state.execute([transfer(seedA, B, 30n, 0n)], { chainId: CHAIN })
    await store.write(r.ops)
    state.commit(r)
    assert.throws(() => state.commit(stale))
    assert.deepEqual(await state.getAccount(A), { balance: 70n, nonce: 1n })
    assert.deepEqual(await state.getAccount(B), { balance: 30n, nonce: 0n })
    assert.deepEqual(await state.getAccounts([B, A, C]), [{ balance: 30n, nonce: 0n }, { balance: 70n, nonce: 1n }, ZERO_ACCOUNT])
    // a fresh ledger over the same store reads the same; it holds in memory only what it read
    const reopened = await LedgerState.open(store)
    assert.equal(reopened.peekAccount(A), undefined)
    assert.deepEqual(await reopened.getAccounts([A, B]), await state.getAccounts([A, B]))
    assert.deepEqual(reopened.peekAccount(A), { balance: 70n, nonce: 1n })
    assert.equal(reopened.peekAccount(C), undefined)
  }
  await assert.rejects(() => LedgerState.open(new MemoryKvStore(), { maxCachedAccounts: -1 }), RangeError)
})

test('state roots are a fixed function of the accounts: a reference block gives the same roots in every version', async () => {
  // Computed once and kept: a change here is a change of the state commitment, which every replica must share.
  const seeds = Array.from({ length: 40 }, (_, i) => new Uint8Array(32).fill(i * 7 + 3))
  const addrs = seeds.map((s) => addressFromPublicKey(keyPairFromSeed(s).publicKey))
  const store = new MemoryKvStore()
  const state = await LedgerState.open(store)
  const g = await state.setAccounts(addrs.map((address, i) => ({ address, account: { balance: BigInt(1000 + i), nonce: 0n } })))
  await store.write(g.ops)
  state.commit(g)
  assert.equal(toHex(g.stateRoot), '3bfe4bc01e146f0dc9ccba819ebf9bfae5e2d960b6e7c6c1da3279df87529f53')
  const txs = seeds.map((s, i) => createTransfer(s, { chainId: 'c', to: addrs[(i * 13) % 40]!, amount: BigInt(i + 1), nonce: 0n }))
  const r = await state.execute(txs, { chainId: 'c' })
  assert.equal(r.receipts.filter((x) => x.ok).length, 40)
  assert.equal(toHex(r.stateRoot), '28a5c5aa0150a62f4641f1163ad421dc97b2e9faedc350d02abce74cdf208098')
  // the changed accounts come out in address byte order, each once
  assert.deepEqual(
    r.changed.map((c) => toHex(c.address)),
    [...new Set(addrs.map(toHex))].sort(),
  )
})

test("a result's ops read the same each time, and a copy of one that changes the tree is refused", async () => {
  const blocks = [[transfer(seedA, C, 10n, 0n)], [transfer(seedB, A, 5n, 0n), transfer(seedA, B, 1n, 1n)], [transfer(seedA, C, 2n, 2n)]]
  const opsHex = (ops: { type: string; key: Uint8Array; value?: Uint8Array }[]) => ops.map((o) => `${o.type}${toHex(o.key)}${o.value ? toHex(o.value) : ''}`)
  const runs = []
  for (const copy of [false, true]) {
    const { store, state } = await funded([
      [A, 100n],
      [B, 50n],
    ])
    const roots = []
    for (const block of blocks) {
      const r = await state.execute(block, { chainId: CHAIN })
      assert.deepEqual(opsHex(r.ops), opsHex(r.ops))
      // a copy carries its store ops as a plain array, but not the resident nodes only the original knows
      if (copy) assert.throws(() => state.commit({ ...r }), /not a copy/)
      await store.write(r.ops)
      state.commit(r)
      roots.push(toHex(state.root()))
    }
    runs.push({ roots, store: dump(store) })
  }
  assert.deepEqual(runs[1], runs[0])
})

for (const maxCachedAccounts of [undefined, 0])
  test(`deferred blocks settled in runs end with the roots, receipts and store of executing them one by one (account cache ${maxCachedAccounts ?? 'default'})`, async () => {
    // a fixed pseudo-random schedule: transfers among senders with keys, to them and to fresh addresses (some of them
    // overdrafts, which fail), in runs of one to five blocks
    let x = 12345
    const next = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31
      return x % n
    }
    const seeds = Array.from({ length: 8 }, (_, i) => new Uint8Array(32).fill(40 + i))
    const senders = seeds.map((s) => addressFromPublicKey(keyPairFromSeed(s).publicKey))
    const fresh = Array.from({ length: 12 }, (_, i) => new Uint8Array(20).fill(200 + i))
    const nonces = seeds.map(() => 0n)
    const blocks: DecodedTransaction[][] = []
    for (let h = 0; h < 40; h++) {
      const txs: DecodedTransaction[] = []
      for (let k = next(10); k > 0; k--) {
        const from = next(seeds.length)
        const to = next(3) === 0 ? fresh[next(fresh.length)]! : senders[next(senders.length)]!
        const amount = next(4) === 0 ? 4_000n : BigInt(1 + next(50))
        txs.push(transfer(seeds[from]!, to, amount, nonces[from]!))
        nonces[from]!++
      }
      blocks.push(txs)
    }
    const balances = senders.map((a): [Uint8Array, bigint] => [a, 10_000n])
    const one = await funded(balances)
    // without an account cache, accounts changed in a run and not stored yet are read from the ledger's pending entries
    const runs = await funded(balances, { maxCachedAccounts })
    const ctx = { chainId: CHAIN, trustSignatures: true }
    let h = 0
    let runsSettled = 0
    let failed = 0
    while (h < blocks.length) {
      const end = Math.min(blocks.length, h + 1 + next(5))
      for (; h < end; h++) {
        const a = await one.state.execute(blocks[h]!, ctx)
        await one.store.write(a.ops)
        one.state.commit(a)
        const b = await runs.state.executeDeferred(blocks[h]!, ctx)
        assert.deepEqual(b.receipts, a.receipts, `block ${h}`)
        failed += a.receipts.filter((r) => !r.ok).length
        runs.state.commitDeferred(b)
        const all = [...senders, ...fresh]
        assert.deepEqual(await runs.state.getAccounts(all), await one.state.getAccounts(all), `accounts after block ${h}`)
      }
      const settled = await runs.state.settleTree()
      assert.deepEqual(settled.root, one.state.root(), `root after block ${h - 1}`)
      await runs.store.write(settled.ops)
      runs.state.commitTree(settled)
      assert.equal(runs.state.treePending, false)
      runsSettled++
    }
    assert.ok(runsSettled > 5 && runsSettled < blocks.length, `${runsSettled} runs`)
    assert.ok(failed > 0, 'some transfers failed')
    assert.deepEqual(dump(runs.store), dump(one.store))
    assert.deepEqual((await LedgerState.open(runs.store)).root(), one.state.root())
    assert.deepEqual(await runs.state.proveAccount(fresh[0]!), await one.state.proveAccount(fresh[0]!))
  })

test('while deferred blocks wait for their tree, nothing executes or proves on it, and a stale settle is refused', async () => {
  const { store, state } = await funded([[A, 100n]])
  const ctx = { chainId: CHAIN, trustSignatures: true }
  const candidate = await state.execute([transfer(seedA, B, 10n, 0n)], ctx)
  const d1 = await state.executeDeferred([transfer(seedA, B, 10n, 0n)], ctx)
  state.commitDeferred(d1)
  assert.equal(state.treePending, true)
  assert.throws(() => state.commit(candidate), /commit: the tree is behind the accounts/)
  await assert.rejects(state.execute([transfer(seedA, B, 1n, 1n)], ctx), /tree is behind the accounts/)
  await assert.rejects(state.proveAccount(A), /tree is behind the accounts/)
  const settled = await state.settleTree()
  const d2 = await state.executeDeferred([transfer(seedA, B, 5n, 1n)], ctx)
  state.commitDeferred(d2)
  assert.throws(() => state.commitTree(settled), /committed after the tree was settled/)
  const again = await state.settleTree()
  await store.write(again.ops)
  state.commitTree(again)
  assert.deepEqual(await state.getAccount(B), { balance: 15n, nonce: 0n })
  assert.deepEqual((await LedgerState.open(store)).root(), state.root())
  assert.notDeepEqual(state.root(), settled.root)
})
