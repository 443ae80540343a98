import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { keyPairFromSeed, toHex, addressFromPublicKey, bytesEqual, encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { VerifiedTxCache } from '../../../../ledger/verifiedTxCache.js'
import {
  createTransfer,
  decodeTransaction,
  encodeTransaction,
  signGovernanceTransaction,
  signTransaction,
  verifyTransactionSignature,
} from '../../../../ledger/transaction.js'
import { Mempool, type AccountView, type MempoolOptions, type Removal } from '../../../../node/mempool/mempool.js'
import { Rng } from '../../../helpers/random.js'

const CHAIN = 'tally-test'

/** A committed state the tests edit between blocks; async like a real store when asked. */
class FakeAccounts {
  readonly map = new Map<string, AccountView>()
  constructor(readonly async = false) {}
  set(address: Uint8Array, balance: bigint, nonce: bigint): void {
    this.map.set(toHex(address), { balance, nonce })
  }
  getAccount(address: Uint8Array): AccountView | Promise<AccountView> {
    this.reads++
    const a = this.map.get(toHex(address)) ?? { balance: 0n, nonce: 0n }
    return this.async ? Promise.resolve(a) : a
  }
  /** The accounts the tests set are the ones held in memory. */
  peekAccount(address: Uint8Array): AccountView | undefined {
    return this.map.get(toHex(address))
  }
  reads = 0
}

function setup(opts: Partial<MempoolOptions> = {}, async = false) {
  const rng = new Rng(11)
  const keys = [rng.bytes(32), rng.bytes(32), rng.bytes(32)]
  const addrs = keys.map((k) => addressFromPublicKey(keyPairFromSeed(k).publicKey))
  const accounts = new FakeAccounts(async)
  for (const a of addrs) accounts.set(a, 1000n, 0n)
  const removed: [string, Removal][] = []
  const verified: string[] = []
  const pool = new Mempool(
    { chainId: CHAIN, ...opts },
    {
      accounts,
      verifiedSignatures: {
        add: (h) => verified.push(toHex(h)),
        has: (h) => verified.includes(toHex(h)),
        delete: (h) => {
          const i = verified.indexOf(toHex(h))
          if (i >= 0) verified.splice(i, 1)
        },
      },
      onRemoved: (h, r) => removed.push([toHex(h), r]),
    },
  )
  const tx = (k: number, nonce: number, amount = 10n, chainId = CHAIN) =>
    createTransfer(keys[k]!, { chainId, to: addrs[(k + 1) % 3]!, amount, nonce: BigInt(nonce) })
  return { pool, accounts, addrs, removed, verified, tx, rng }
}

describe('mempool admission', () => {
  it('does not verify again a signature this node already verified, and verifies through the given verifier', async () => {
    const calls: string[] = []
    const cache = new Set<string>()
    const accounts = new FakeAccounts(false)
    const keys = [new Uint8Array(32).fill(21), new Uint8Array(32).fill(22)]
    for (const k of keys) accounts.set(addressFromPublicKey(keyPairFromSeed(k).publicKey), 1000n, 0n)
    const pool = new Mempool(
      { chainId: CHAIN },
      {
        accounts,
        verifiedSignatures: { add: (h) => cache.add(toHex(h)), has: (h) => cache.has(toHex(h)), delete: (h) => cache.delete(toHex(h)) },
        verifySignature: async (d) => {
          calls.push(toHex(d.tx.from))
          return verifyTransactionSignature(d.tx)
        },
      },
    )
    const good = createTransfer(keys[0]!, { chainId: CHAIN, to: new Uint8Array(20), amount: 1n, nonce: 0n })
    assert.equal((await pool.add(good.bytes)).ok, true)
    assert.equal(calls.length, 1)
    // a forged signature whose hash this node already holds as verified is not checked again
    const forged = createTransfer(keys[1]!, { chainId: CHAIN, to: new Uint8Array(20), amount: 1n, nonce: 0n })
    const bad = new Uint8Array(forged.bytes)
    bad[bad.length - 1]! ^= 1
    const badHash = decodeTransaction(bad)
    assert.ok(badHash.ok)
    assert.deepEqual(await pool.add(bad), { ok: false, error: { code: 'invalid_signature', reason: 'signature does not verify' } })
    assert.equal(calls.length, 2)
    cache.add(toHex(badHash.value.hash))
    assert.equal((await pool.add(bad)).ok, true)
    assert.equal(calls.length, 2)
  })

  it('marks only admitted transactions verified: refused ones, validly signed, push no pending mark out', async () => {
    const verified = new VerifiedTxCache({ maxEntries: 100 })
    const funded = keyPairFromSeed(new Uint8Array(32).fill(1))
    const fundedAddress = addressFromPublicKey(funded.publicKey)
    const accounts = { getAccount: (a: Uint8Array) => ({ balance: bytesEqual(a, fundedAddress) ? 1_000n : 0n, nonce: 0n }) }
    const pool = new Mempool({ chainId: 'c' }, { accounts, verifiedSignatures: verified })
    const pending = createTransfer(funded.secretKey, { chainId: 'c', to: new Uint8Array(20).fill(2), amount: 1n, nonce: 0n })
    assert.ok((await pool.add(pending.bytes)).ok)
    for (let i = 0; i < 150; i++) {
      const unfunded = keyPairFromSeed(sha256(encodeCanonical(['fresh key', i])))
      const r = await pool.add(createTransfer(unfunded.secretKey, { chainId: 'c', to: new Uint8Array(20).fill(3), amount: 1n, nonce: 0n }).bytes)
      assert.equal(r.ok ? 'admitted' : r.error.code, 'insufficient_funds')
    }
    assert.equal(verified.has(pending.hash), true)
  })

  it('verifies a refused transaction once: a copy sent again is refused without its signature checked again', async () => {
    let checks = 0
    const pool = new Mempool(
      { chainId: 'c' },
      {
        accounts: { getAccount: () => ({ balance: 0n, nonce: 0n }) },
        verifiedSignatures: new VerifiedTxCache(),
        verifySignature: (d) => {
          checks++
          return verifyTransactionSignature(d.tx)
        },
      },
    )
    // governance votes this node takes none of: a refusal that follows the signature check
    const seed = new Uint8Array(32).fill(7)
    const junk = Array.from({ length: 20 }, (_, i) =>
      encodeTransaction(
        signGovernanceTransaction(
          { chainId: 'c', from: keyPairFromSeed(seed).publicKey, nonce: BigInt(i), action: { type: 'remove', address: new Uint8Array(20).fill(i) } },
          seed,
        ),
      ),
    )
    for (let pass = 0; pass < 3; pass++) {
      for (const bytes of junk) {
        const r = await pool.add(bytes)
        assert.equal(r.ok ? 'admitted' : r.error.code, 'not_validator')
      }
    }
    assert.equal(checks, junk.length)
  })

  it("checks no signature of a transfer its sender's committed state refuses, however many a peer sends", async () => {
    let checks = 0
    const funded = keyPairFromSeed(new Uint8Array(32).fill(9))
    const fundedAddress = addressFromPublicKey(funded.publicKey)
    const accounts = new FakeAccounts(true)
    accounts.set(fundedAddress, 1_000n, 5n)
    const pool = new Mempool(
      { chainId: 'c', maxFuturePerSender: 4 },
      {
        accounts,
        verifiedSignatures: new VerifiedTxCache(),
        verifySignature: (d) => {
          checks++
          return verifyTransactionSignature(d.tx)
        },
      },
    )
    const transfer = (key: Uint8Array, nonce: bigint, amount = 1n) => createTransfer(key, { chainId: 'c', to: new Uint8Array(20).fill(3), amount, nonce })
    const pending = transfer(new Uint8Array(32).fill(9), 5n)
    assert.ok((await pool.add(pending.bytes)).ok)
    assert.equal(checks, 1)
    const code = async (t: { bytes: Uint8Array }) => {
      const r = await pool.add(t.bytes)
      return r.ok ? 'admitted' : r.error.code
    }
    // a batch's worth of validly signed transfers from keys that hold nothing, whose accounts are in memory
    const unfunded = Array.from({ length: 2_000 }, (_, i) => transfer(sha256(encodeCanonical(['unfunded', i])), 0n))
    for (const t of unfunded) accounts.set(addressFromPublicKey(t.tx.from), 0n, 0n)
    for (const t of unfunded) assert.equal(await code(t), 'insufficient_funds')
    // the funded sender: nonces it used, a replacement of its pending transfer, a nonce far ahead, more than it holds
    const seed = new Uint8Array(32).fill(9)
    assert.equal(await code(transfer(seed, 4n)), 'bad_nonce')
    assert.equal(await code(transfer(seed, 5n, 2n)), 'bad_nonce')
    assert.equal(await code(transfer(seed, 11n)), 'bad_nonce')
    assert.equal(await code(transfer(seed, 6n, 1_000n)), 'insufficient_funds')
    assert.equal(checks, 1, 'signature checks of refused transfers')
    // what the state allows is verified and admitted as before
    assert.equal(await code(transfer(seed, 6n, 999n)), 'admitted')
    assert.equal(checks, 2)
  })

  it('refuses transfers of senders never seen as forged when their signature is: no store read, no cache place', async () => {
    // a peer needs no key to make these up: refused for their senders' empty state before the signature, they would
    // cost their peer nothing (state refusals are no fault) and each a store read and a place in the ledger's cache
    let checks = 0
    const accounts = new FakeAccounts(true)
    const pool = new Mempool(
      { chainId: 'c' },
      {
        accounts,
        verifiedSignatures: new VerifiedTxCache(),
        verifySignature: (d) => {
          checks++
          return verifyTransactionSignature(d.tx)
        },
      },
    )
    for (let i = 0; i < 50; i++) {
      const t = createTransfer(sha256(encodeCanonical(['made up', i])), { chainId: 'c', to: new Uint8Array(20).fill(3), amount: 1n, nonce: 0n })
      const forged = decodeTransaction(encodeTransaction({ ...t.tx, amount: 2n }))
      assert.ok(forged.ok)
      const r = await pool.add(forged.value.bytes)
      assert.equal(r.ok ? 'admitted' : r.error.code, 'invalid_signature')
    }
    assert.equal(checks, 50)
    assert.equal(accounts.reads, 0, 'store reads for forged transfers')
  })

  it('checks no signature of a transfer that finds the pool full, however many variants of it a peer signs', async () => {
    let checks = 0
    const account = () => ({ balance: 1_000_000n, nonce: 0n })
    const pool = new Mempool(
      { chainId: 'c', maxTxs: 2, maxTxsPerSender: 1 },
      {
        accounts: { getAccount: account, peekAccount: account },
        verifiedSignatures: new VerifiedTxCache(),
        verifySignature: (d) => {
          checks++
          return verifyTransactionSignature(d.tx)
        },
      },
    )
    const transfer = (seed: number, nonce: bigint, amount = 1n) =>
      createTransfer(new Uint8Array(32).fill(seed), { chainId: 'c', to: new Uint8Array(20).fill(3), amount, nonce })
    assert.ok((await pool.add(transfer(1, 0n).bytes)).ok)
    assert.ok((await pool.add(transfer(2, 0n).bytes)).ok)
    assert.equal(checks, 2)
    const code = async (t: { bytes: Uint8Array }) => {
      const r = await pool.add(t.bytes)
      return r.ok ? 'admitted' : r.error.code
    }
    // the pool holds no gapped transaction to evict: every variant of a funded sender's next transfer is refused
    for (let i = 0; i < 200; i++) assert.equal(await code(transfer(3, 0n, BigInt(1 + i))), 'mempool_full')
    // a sender at its own cap, likewise
    for (let i = 0; i < 200; i++) assert.equal(await code(transfer(1, 1n, BigInt(1 + i))), 'mempool_full')
    assert.equal(checks, 2, 'signature checks of refused transfers')
  })

  it('gives the transactions admitted after a mark, in admission order, within the limits', async () => {
    const { pool, tx } = setup()
    const first = [tx(0, 0), tx(1, 0)]
    for (const t of first) assert.ok((await pool.add(t.bytes)).ok)
    const mark = pool.admissionMark
    const later = [tx(1, 1), tx(0, 1), tx(2, 0)]
    for (const t of later) assert.ok((await pool.add(t.bytes)).ok)
    const hex = (ts: readonly { hash: Uint8Array }[]) => ts.map((t) => toHex(t.hash))
    const all = { maxTxs: 10, maxBytes: 1 << 20 }
    assert.deepEqual(hex(pool.admittedSince(mark, all).txs), hex(later))
    assert.equal(pool.admittedSince(mark, all).next, pool.admissionMark)
    assert.deepEqual(hex(pool.admittedSince(0, all).txs), hex([...first, ...later]))
    // cut by the limits: the next mark is the first left out, so asking from it gives the rest
    const cut = pool.admittedSince(mark, { maxTxs: 2, maxBytes: 1 << 20 })
    assert.deepEqual(hex(cut.txs), hex(later.slice(0, 2)))
    assert.deepEqual(hex(pool.admittedSince(cut.next, all).txs), hex(later.slice(2)))
    assert.deepEqual(pool.admittedSince(pool.admissionMark, all).txs, [])
  })

  it('gives a peer that connects every pending transaction, gapped ones after the executable ones', async () => {
    // a gapped transaction admitted while no peer was connected must still reach the peers: once its missing nonce
    // arrives and is gossiped alone, the gapped one becomes executable here, and nothing sends it again
    const { pool, tx } = setup()
    const [a2, b1, a3, c0, c1] = [tx(0, 2), tx(1, 1), tx(0, 3), tx(2, 0), tx(2, 1)]
    for (const t of [a2, c0, b1, c1, a3]) assert.ok((await pool.add(t.bytes)).ok)
    const hex = (ts: readonly { hash: Uint8Array }[]) => ts.map((t) => toHex(t.hash))
    const all = { maxTxs: 10, maxBytes: 1 << 20 }
    const full = pool.pendingForPeer(undefined, all)
    // each sender's nonces in order, so that the peer can admit them one after the other
    assert.deepEqual(hex(full.txs), hex([c0, c1, a2, a3, b1]))
    assert.equal(full.mark, pool.admissionMark)
    // within the limits, the executable ones first
    assert.deepEqual(hex(pool.pendingForPeer(undefined, { maxTxs: 3, maxBytes: 1 << 20 }).txs), hex([c0, c1, a2]))
    // a peer sent the pool before is sent what was admitted since
    const later = tx(1, 0)
    assert.ok((await pool.add(later.bytes)).ok)
    assert.deepEqual(hex(pool.pendingForPeer(full.mark, all).txs), hex([later]))
  })

  it('admits a valid transaction and records its verified signature', async () => {
    const { pool, tx, verified } = setup()
    const t = tx(0, 0)
    const r = await pool.add(t.bytes)
    assert.deepEqual(r, { ok: true, value: t.hash })
    assert.equal(pool.size, 1)
    assert.equal(pool.bytes, t.bytes.byteLength)
    assert.ok(pool.has(t.hash))
    assert.deepEqual(pool.get(t.hash)?.bytes, t.bytes)
    assert.deepEqual(verified, [toHex(t.hash)])
  })

  it('returns every admission code', async () => {
    const { pool, tx, accounts, addrs } = setup({ maxTxs: 3, maxFuturePerSender: 2 })
    const code = async (bytes: Uint8Array) => {
      const r = await pool.add(bytes)
      return r.ok ? 'ok' : r.error.code
    }
    assert.equal(await code(new Uint8Array([1, 2, 3])), 'malformed')
    assert.equal(await code(new Uint8Array(1000)), 'malformed')
    assert.equal(await code(tx(0, 0, 10n, 'other-chain').bytes), 'wrong_chain')
    const good = tx(0, 0)
    assert.equal(await code(good.bytes), 'ok')
    assert.equal(await code(good.bytes), 'duplicate')
    const forged = { ...tx(0, 1).tx, signature: new Uint8Array(good.tx.signature) }
    assert.equal(await code(encodeTransaction(forged)), 'invalid_signature')
    assert.equal(await code(tx(0, 0, 11n).bytes), 'bad_nonce') // nonce taken by a pending tx
    assert.equal(await code(tx(0, 4).bytes), 'bad_nonce') // next is 1; 1 + 2 < 4
    accounts.set(addrs[1]!, 1000n, 5n)
    assert.equal(await code(tx(1, 4).bytes), 'bad_nonce') // below the committed nonce
    assert.equal(await code(tx(0, 1, 991n).bytes), 'insufficient_funds') // 10 pending + 991 > 1000
    assert.equal(await code(tx(0, 1, 990n).bytes), 'ok')
    assert.equal(await code(tx(1, 5).bytes), 'ok')
    assert.equal(await code(tx(2, 0).bytes), 'mempool_full')
    assert.equal(pool.size, 3)
  })

  it('bounds the pool by bytes', async () => {
    const { pool, tx } = setup({ maxBytes: 300 })
    assert.equal((await pool.add(tx(0, 0).bytes)).ok, true)
    const r = await pool.add(tx(1, 0).bytes)
    assert.equal(!r.ok && r.error.code, 'mempool_full')
  })

  it('works with an asynchronous account store', async () => {
    const { pool, tx } = setup({}, true)
    const results = await Promise.all([0, 1, 2, 3].map((n) => pool.add(tx(0, n).bytes)))
    assert.ok(results.every((r) => r.ok))
    assert.equal(await pool.pendingNonce(setup().addrs[0]!), 4n)
  })
})

describe('mempool ordering', () => {
  it('reaps contiguous runs in nonce order, senders interleaved by arrival, within limits', async () => {
    const { pool, tx, addrs } = setup()
    // sender 0 arrives out of order: 1, 0, 3 (gap at 2); sender 1: 0, 1
    const a1 = tx(0, 1),
      a0 = tx(0, 0),
      a3 = tx(0, 3),
      b0 = tx(1, 0),
      b1 = tx(1, 1)
    for (const t of [a1, a0, a3, b0, b1]) assert.equal((await pool.add(t.bytes)).ok, true)
    assert.equal(await pool.pendingNonce(addrs[0]!), 2n)
    assert.equal(await pool.pendingNonce(addrs[1]!), 2n)
    assert.equal(await pool.pendingNonce(addrs[2]!), 0n)
    const hex = (xs: { hash: Uint8Array }[]) => xs.map((x) => toHex(x.hash))
    // a0 (seq 1) is sender 0's head; b0 (seq 3). a0 first, then a1 (seq 0), then b0, b1; a3 is not executable
    assert.deepEqual(hex(pool.reap({ maxTxs: 100, maxBytes: 1e6 })), hex([a0, a1, b0, b1]))
    assert.deepEqual(hex(pool.reap({ maxTxs: 3, maxBytes: 1e6 })), hex([a0, a1, b0]))
    assert.deepEqual(hex(pool.reap({ maxTxs: 100, maxBytes: a0.bytes.byteLength * 2 })), hex([a0, a1]))
    assert.deepEqual(pool.reap({ maxTxs: 0, maxBytes: 1e6 }), [])
  })
})

describe('mempool update', () => {
  it('drops committed transactions and those a block made invalid, each with a reason', async () => {
    const { pool, tx, accounts, addrs, removed, verified } = setup()
    const a0 = tx(0, 0, 100n),
      a1 = tx(0, 1, 100n),
      a2 = tx(0, 2, 100n),
      b0 = tx(1, 0),
      c0 = tx(2, 0)
    for (const t of [a0, a1, a2, b0, c0]) assert.equal((await pool.add(t.bytes)).ok, true)
    assert.equal(verified.length, 5)
    // the block commits a0 and another transaction of sender 1 with nonce 0; sender 0 spent more elsewhere
    const other = tx(1, 0, 20n)
    accounts.set(addrs[0]!, 1000n - 100n - 750n, 1n) // balance 150: covers a1 (100) but not a1 + a2
    accounts.set(addrs[1]!, 980n, 1n)
    await pool.update([a0.hash, other.hash], [addrs[0]!, addrs[1]!])
    const reasons = Object.fromEntries(removed.map(([h, r]) => [h, r.code]))
    assert.deepEqual(reasons, {
      [toHex(a0.hash)]: 'committed',
      [toHex(a2.hash)]: 'insufficient_funds',
      [toHex(b0.hash)]: 'bad_nonce',
    })
    assert.equal(pool.size, 2)
    assert.ok(pool.has(a1.hash) && pool.has(c0.hash))
    assert.equal(await pool.pendingNonce(addrs[0]!), 2n)
    assert.equal(await pool.pendingNonce(addrs[1]!), 1n)
    // committed hashes leave the verified-signature cache: they are refused as duplicates afterwards, before any
    // signature check
    assert.deepEqual(verified.sort(), [a1, a2, b0, c0].map((t) => toHex(t.hash)).sort())
    const again = await pool.add(a0.bytes)
    assert.equal(!again.ok && again.error.code, 'duplicate')
    assert.ok(pool.wasCommitted(a0.hash))
    assert.equal(verified.includes(toHex(a0.hash)), false)
    // and the next reap starts from the new committed nonce
    assert.deepEqual(
      pool.reap({ maxTxs: 10, maxBytes: 1e6 }).map((d) => toHex(d.hash)),
      [toHex(a1.hash), toHex(c0.hash)],
    )
  })

  it('tells its waiters of each admission and each finished update, not of a refused transaction', async () => {
    const { pool, tx, accounts, addrs } = setup()
    let wakes = 0
    const watch = () => void pool.changed().then(() => wakes++)
    const settled = () => new Promise<void>((r) => setImmediate(r))
    // two waiters share one change
    assert.equal(pool.changed(), pool.changed())
    watch()
    const a0 = tx(0, 0)
    assert.equal((await pool.add(a0.bytes)).ok, true)
    await settled()
    assert.equal(wakes, 1, 'an admission wakes its waiters')
    watch()
    assert.equal((await pool.add(a0.bytes)).ok, false)
    assert.equal((await pool.add(tx(0, 1, 10_000n).bytes)).ok, false)
    await settled()
    assert.equal(wakes, 1, 'a refused transaction wakes no one')
    accounts.set(addrs[0]!, 990n, 1n)
    await pool.update([a0.hash], [addrs[0]!])
    await settled()
    assert.equal(wakes, 2, 'an update wakes its waiters once it is done')
  })

  it('remembers what blocks commit while it holds nothing (catching up), and forgets the oldest past its capacity', async () => {
    const { pool, tx, accounts, addrs } = setup({ recentCommittedCapacity: 3 })
    const [a0, a1, a2, a3] = [0, 1, 2, 3].map((n) => tx(0, n))
    const b0 = tx(1, 0)
    accounts.set(addrs[0]!, 1000n, 2n)
    await pool.update([a0!.hash, a1!.hash], [addrs[0]!])
    accounts.set(addrs[0]!, 1000n, 4n)
    await pool.update([a2!.hash, a3!.hash], [addrs[0]!])
    assert.equal(pool.size, 0)
    // a replay of a committed transaction is a duplicate, found before its signature is checked
    const again = await pool.add(a3!.bytes)
    assert.equal(!again.ok && again.error.code, 'duplicate')
    assert.deepEqual(
      [a0, a1, a2, a3].map((t) => pool.wasCommitted(t!.hash)),
      [false, true, true, true],
    )
    // one the window forgot is still refused, by its nonce
    const old = await pool.add(a0!.bytes)
    assert.equal(!old.ok && old.error.code, 'bad_nonce')
    // and what was not committed is admitted as before
    assert.equal((await pool.add(b0.bytes)).ok, true)
  })

  it('re-reads every sender when the touched accounts are not given', async () => {
    const { pool, tx, accounts, addrs, removed } = setup({}, true)
    const a0 = tx(0, 0)
    assert.equal((await pool.add(a0.bytes)).ok, true)
    accounts.set(addrs[0]!, 1000n, 1n)
    await pool.update([])
    assert.deepEqual(
      removed.map(([, r]) => r.code),
      ['bad_nonce'],
    )
    assert.equal(pool.size, 0)
  })

  it('admits a run of thousands of nonces from one sender and reaps it whole', async () => {
    const { pool } = setup({ maxFuturePerSender: 10_000 })
    const rng = new Rng(3)
    const key = rng.bytes(32)
    const { publicKey } = keyPairFromSeed(key)
    const accounts = new FakeAccounts()
    accounts.set(addressFromPublicKey(publicKey), 1n << 40n, 0n)
    const big = new Mempool({ chainId: CHAIN, maxFuturePerSender: 10_000 }, { accounts })
    const txs = Array.from({ length: 3000 }, (_, i) =>
      encodeTransaction(signTransaction({ chainId: CHAIN, from: publicKey, to: rng.bytes(20), amount: 1n, nonce: BigInt(i) }, key)),
    )
    for (const b of txs) assert.equal((await big.add(b)).ok, true)
    assert.equal(big.size, 3000)
    const reaped = big.reap({ maxTxs: 5000, maxBytes: 1e7 })
    assert.equal(reaped.length, 3000)
    assert.deepEqual(
      reaped.map((t) => t.tx.nonce),
      txs.map((_, i) => BigInt(i)),
    )
    assert.equal(pool.size, 0)
  })
})

describe('mempool admission of a sender a block touched', () => {
  it('admits a transfer at the nonce of a pending one the committed state no longer covers', async () => {
    const { pool, tx, accounts, addrs, removed } = setup()
    // nonce 1 waits for nonce 0, which the sender sends to another node; the block that commits it spends so much
    // that the pending nonce 1 no longer fits the balance
    const big = tx(0, 1, 900n)
    assert.equal((await pool.add(big.bytes)).ok, true)
    const elsewhere = tx(0, 0, 500n)
    accounts.set(addrs[0]!, 500n, 1n)
    // a run of synced heights reports this one unsettled: the sender stays unrefreshed until the next admission
    await pool.update([elsewhere.hash], [addrs[0]!], false)
    const smaller = tx(0, 1, 100n)
    const r = await pool.add(smaller.bytes)
    assert.equal(r.ok, true, r.ok ? '' : `${r.error.code}: ${r.error.reason}`)
    assert.ok(pool.has(smaller.hash) && !pool.has(big.hash))
    assert.deepEqual(
      removed.map(([h, x]) => [h, x.code]),
      [[toHex(big.hash), 'insufficient_funds']],
    )
  })
})
