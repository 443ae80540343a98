import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { addressFromPublicKey, keyPairFromSeed, toHex } from '../../../../crypto/index.js'
import { MAX_TX_BYTES, encodeTransaction, signTransaction, spendOf, txHash, type DecodedTransaction } from '../../../../ledger/transaction.js'
import { DEFAULT_CONFIG } from '../../../../genesis/config.js'
import { MEMPOOL_DEFAULTS, Mempool, type AccountView, type MempoolDependencies, type MempoolOptions, type Removal } from '../../../../node/mempool/mempool.js'
import { decodeTxBatch, encodeTxBatch } from '../../../../node/sync/txGossip.js'
import { Rng } from '../../../helpers/random.js'

/**
 * The mempool under abuse: transactions whose nonce leaves a gap (not executable until the missing nonces arrive)
 * must never lock payable transfers out, never stay forever, and never let one sender take the pool; every
 * transaction that leaves is reported with a reason; the accounting holds through every path.
 */

const CHAIN = 'tally-test'
const SINK = new Uint8Array(20).fill(0xbe)

/**
 * A committed state the tests edit between blocks. Given a delay source it answers asynchronously, after that many
 * turns of the event loop, so admissions and updates interleave as they do over a real store.
 */
class FakeAccounts {
  readonly map = new Map<string, AccountView>()
  constructor(private readonly delay?: () => number) {}
  set(address: Uint8Array, balance: bigint, nonce: bigint): void {
    this.map.set(toHex(address), { balance, nonce })
  }
  get(address: Uint8Array): AccountView {
    return this.map.get(toHex(address)) ?? { balance: 0n, nonce: 0n }
  }
  getAccount(address: Uint8Array): AccountView | Promise<AccountView> {
    if (this.delay === undefined) return this.get(address)
    const turns = this.delay()
    return (async () => {
      for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r))
      return this.get(address)
    })()
  }
}

interface Removed {
  readonly hash: string
  readonly code: Removal['code']
  readonly reason: string
}

function setup(opts: Partial<MempoolOptions>, senders: number, balance = 1_000_000n, seed = 5, deps: Partial<MempoolDependencies> = {}, delay?: () => number) {
  const rng = new Rng(seed)
  const keys = Array.from({ length: senders }, () => keyPairFromSeed(rng.bytes(32)))
  const addrs = keys.map((k) => addressFromPublicKey(k.publicKey))
  const accounts = new FakeAccounts(delay)
  for (const a of addrs) accounts.set(a, balance, 0n)
  const removed: Removed[] = []
  const pool = new Mempool(
    { chainId: CHAIN, ...opts },
    {
      accounts,
      onRemoved: (h, r) => removed.push({ hash: toHex(h), code: r.code, reason: r.reason }),
      ...deps,
    },
  )
  const tx = (k: number, nonce: number | bigint, amount = 1n): DecodedTransaction => {
    const t = signTransaction({ chainId: CHAIN, from: keys[k]!.publicKey, to: SINK, amount, nonce: BigInt(nonce) }, keys[k]!.secretKey)
    const bytes = encodeTransaction(t)
    return { tx: t, bytes, hash: txHash(bytes) }
  }
  const add = async (t: DecodedTransaction) => {
    const r = await pool.add(t.bytes)
    return r.ok ? 'ok' : r.error.code
  }
  return { pool, accounts, addrs, removed, tx, add }
}

const hex = (ts: readonly { hash: Uint8Array }[]) => ts.map((t) => toHex(t.hash))
const TX_BYTES = setup({}, 1).tx(0, 0).bytes.byteLength

describe('mempool under a flood of gapped nonces', () => {
  it('admits payable transfers from honest senders while a few senders flood it with gapped nonces', async () => {
    const { pool, tx, add } = setup({ maxTxs: 40 }, 13)
    // senders 0-2 never send nonce 0: every one of their transactions waits on a gap
    for (let n = 1; n <= 64; n++) for (const k of [0, 1, 2]) await add(tx(k, n))
    assert.ok(pool.gappedSize <= Math.ceil(40 * 0.25), `gapped ${pool.gappedSize} of 40`)
    // ten honest senders, three payable transfers each
    const honest: DecodedTransaction[] = []
    for (let k = 3; k < 13; k++) for (let n = 0; n < 3; n++) honest.push(tx(k, n))
    for (const t of honest) assert.equal(await add(t), 'ok', `honest ${t.tx.nonce}`)
    assert.ok(honest.every((t) => pool.has(t.hash)))
    assert.ok(pool.size <= 40)
    // a second wave of the flood displaces only gapped transactions
    for (let n = 1; n <= 64; n++) for (const k of [0, 1, 2]) await add(tx(k, n))
    assert.ok(honest.every((t) => pool.has(t.hash)))
    assert.ok(pool.gappedSize <= Math.ceil(40 * 0.25))
  })

  it('evicts gapped transactions, longest waiting first, when payable ones find the pool full', async () => {
    const { pool, tx, add, removed } = setup({ maxTxs: 20, gappedSharePercent: 100 }, 6)
    const flood: DecodedTransaction[] = []
    for (let n = 1; n <= 10; n++) for (const k of [0, 1]) flood.push(tx(k, n))
    for (const t of flood) assert.equal(await add(t), 'ok')
    assert.equal(pool.size, 20)
    assert.equal(pool.gappedSize, 20)
    const honest = [2, 3, 4, 5].map((k) => tx(k, 0))
    for (const t of honest) assert.equal(await add(t), 'ok')
    assert.deepEqual(
      removed.map((r) => r.hash),
      hex(flood.slice(0, 4)),
    )
    assert.ok(
      removed.every((r) => r.code === 'evicted' && /nonce \d+/.test(r.reason)),
      JSON.stringify(removed),
    )
    assert.equal(pool.size, 20)
    assert.equal(pool.gappedSize, 16)
  })

  it('evicts by bytes too', async () => {
    const { pool, tx, add, removed } = setup({ maxTxs: 100, maxBytes: 4 * TX_BYTES, gappedSharePercent: 100 }, 3)
    const gapped = [tx(0, 1), tx(1, 1), tx(0, 2), tx(1, 2)]
    for (const t of gapped) assert.equal(await add(t), 'ok')
    assert.equal(await add(tx(2, 0)), 'ok')
    assert.deepEqual(
      removed.map((r) => [r.hash, r.code]),
      [[toHex(gapped[0]!.hash), 'evicted']],
    )
    assert.equal(pool.bytes, 4 * TX_BYTES)
  })

  it('keeps gapped transactions within their share of count and bytes', async () => {
    const byCount = setup({ maxTxs: 100, gappedSharePercent: 10 }, 4)
    for (let n = 1; n <= 30; n++) for (const k of [0, 1, 2, 3]) await byCount.add(byCount.tx(k, n))
    assert.equal(byCount.pool.gappedSize, 10)
    assert.ok(byCount.pool.gappedBytes <= 10 * TX_BYTES)
    const byBytes = setup({ maxTxs: 1000, maxBytes: 40 * TX_BYTES, gappedSharePercent: 25 }, 4)
    for (let n = 1; n <= 30; n++) for (const k of [0, 1, 2, 3]) await byBytes.add(byBytes.tx(k, n))
    assert.equal(byBytes.pool.gappedBytes, 10 * TX_BYTES)
    assert.equal(byBytes.pool.gappedSize, 10)
  })

  it('never evicts a payable transaction for a gapped one', async () => {
    const { pool, tx, add, removed } = setup({ maxTxs: 4, gappedSharePercent: 100 }, 5)
    for (const k of [0, 1, 2, 3]) assert.equal(await add(tx(k, 0)), 'ok')
    assert.equal(await add(tx(4, 1)), 'mempool_full')
    assert.equal(await add(tx(0, 2)), 'mempool_full')
    assert.deepEqual(removed, [])
    assert.equal(pool.size, 4)
  })
})

describe('mempool eviction order', () => {
  /** Senders A..E are 0..4. The scenario's admission codes and removals, in order. */
  async function scenario() {
    const { pool, tx, add, removed } = setup({ maxTxs: 6, gappedSharePercent: 100 }, 5)
    const [A, B, C, D, E] = [0, 1, 2, 3, 4]
    const codes: string[] = []
    const step = async (k: number, n: number) => {
      codes.push(`${k}/${n} ${await add(tx(k, n))}`)
    }
    // gapped in this order: A2 B5 A3 C1 B6; E0 payable; the pool is full
    for (const [k, n] of [
      [A, 2],
      [B, 5],
      [A, 3],
      [C, 1],
      [B, 6],
      [E, 0],
    ] as const)
      await step(k, n)
    await step(A, 0) // payable: evicts the longest waiting gapped transaction of another sender, B5 (not A2, its own)
    await step(D, 0) // payable: evicts A2
    await step(D, 2) // gapped, pool full: evicts the longest waiting gapped transaction of another sender, A3
    await step(E, 1) // payable: evicts C1
    await step(C, 0) // payable: evicts B6
    await step(D, 1) // payable, but the only gapped transaction left is D's own: the pool is full of payable ones
    await step(E, 3) // gapped: evicts D2
    await step(E, 4) // gapped, and the only gapped transaction left is E's own
    return { codes, removed, tx, pool }
  }

  it("evicts the transaction gapped longest first, never the arriving sender's own, deterministically", async () => {
    const first = await scenario()
    const { tx } = first
    assert.deepEqual(first.codes, [
      '0/2 ok',
      '1/5 ok',
      '0/3 ok',
      '2/1 ok',
      '1/6 ok',
      '4/0 ok',
      '0/0 ok',
      '3/0 ok',
      '3/2 ok',
      '4/1 ok',
      '2/0 ok',
      '3/1 mempool_full',
      '4/3 ok',
      '4/4 mempool_full',
    ])
    assert.deepEqual(
      first.removed.map((r) => r.hash),
      hex([tx(1, 5), tx(0, 2), tx(0, 3), tx(2, 1), tx(1, 6), tx(3, 2)]),
    )
    assert.ok(first.removed.every((r) => r.code === 'evicted'))
    assert.equal(first.pool.size, 6)
    // the same arrivals evict the same transactions
    const again = await scenario()
    assert.deepEqual(again.codes, first.codes)
    assert.deepEqual(again.removed, first.removed)
  })

  it('lets a gapped arrival displace the longest waiting gapped transaction once their share is full', async () => {
    const { pool, tx, add, removed } = setup({ maxTxs: 8, gappedSharePercent: 50 }, 3)
    for (const [k, n] of [
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
    ] as const)
      assert.equal(await add(tx(k, n)), 'ok')
    assert.equal(pool.gappedSize, 4)
    assert.equal(await add(tx(2, 2)), 'ok') // evicts 0/2
    assert.equal(await add(tx(0, 4)), 'ok') // skips its own 0/3, evicts 1/2
    assert.deepEqual(
      removed.map((r) => r.hash),
      hex([tx(0, 2), tx(1, 2)]),
    )
    assert.equal(pool.gappedSize, 4)
  })
})

describe('mempool expiry of gapped transactions', () => {
  it('drops a transaction that stays gapped for the configured number of heights, with its reason', async () => {
    const { pool, tx, add, removed } = setup({ gappedExpiryHeights: 3 }, 2)
    const gapped = tx(0, 2)
    const payable = tx(1, 0)
    assert.equal(await add(gapped), 'ok')
    assert.equal(await add(payable), 'ok')
    await pool.update([], [])
    await pool.update([])
    assert.ok(pool.has(gapped.hash))
    await pool.update([], [])
    assert.equal(pool.has(gapped.hash), false)
    assert.deepEqual(
      removed.map((r) => [r.hash, r.code]),
      [[toHex(gapped.hash), 'expired']],
    )
    assert.match(removed[0]!.reason, /3 committed heights/)
    // a payable transaction never expires, however long it waits
    for (let i = 0; i < 10; i++) await pool.update([], [])
    assert.ok(pool.has(payable.hash))
    assert.equal(pool.gappedSize, 0)
    // an expired transaction may come again, and waits its own full term
    assert.equal(await add(gapped), 'ok')
    await pool.update([], [])
    assert.ok(pool.has(gapped.hash))
  })

  it('does not expire transactions whose gap is filled, by an arrival or by a commit', async () => {
    const { pool, tx, add, accounts, addrs, removed } = setup({ gappedExpiryHeights: 3 }, 2)
    const a2 = tx(0, 2)
    assert.equal(await add(a2), 'ok')
    assert.equal(pool.gappedSize, 1)
    await pool.update([], [])
    await pool.update([], [])
    const a0 = tx(0, 0),
      a1 = tx(0, 1)
    assert.equal(await add(a1), 'ok')
    assert.equal(await add(a0), 'ok')
    assert.equal(pool.gappedSize, 0)
    assert.equal(await pool.pendingNonce(addrs[0]!), 3n)
    // sender 1's gap is filled by transactions committed through another node
    const b3 = tx(1, 3)
    assert.equal(await add(b3), 'ok')
    await pool.update([], [])
    accounts.set(addrs[1]!, 1_000_000n - 3n, 3n)
    await pool.update([], [addrs[1]!])
    assert.equal(pool.gappedSize, 0)
    for (let i = 0; i < 6; i++) await pool.update([], [])
    assert.deepEqual(removed, [])
    assert.deepEqual(hex(pool.reap({ maxTxs: 10, maxBytes: 1e6 })), hex([a0, a1, a2, b3]))
  })

  it('counts the heights of a transaction a block left behind a new gap from that block', async () => {
    const { pool, tx, add, accounts, addrs, removed } = setup({ gappedExpiryHeights: 2 }, 1, 1000n)
    const c0 = tx(0, 0, 10n),
      c1 = tx(0, 1, 500n),
      c2 = tx(0, 2, 10n)
    for (const t of [c0, c1, c2]) assert.equal(await add(t), 'ok')
    await pool.update([], [])
    await pool.update([], [])
    // the sender spent 600 elsewhere: c1 no longer fits, c2 still does but now waits on nonce 1
    accounts.set(addrs[0]!, 400n, 0n)
    await pool.update([], [addrs[0]!])
    assert.deepEqual(
      removed.map((r) => [r.hash, r.code]),
      [[toHex(c1.hash), 'insufficient_funds']],
    )
    assert.equal(pool.gappedSize, 1)
    await pool.update([], [])
    assert.ok(pool.has(c2.hash))
    await pool.update([], [])
    assert.deepEqual(
      removed.map((r) => [r.hash, r.code]),
      [
        [toHex(c1.hash), 'insufficient_funds'],
        [toHex(c2.hash), 'expired'],
      ],
    )
    assert.ok(pool.has(c0.hash))
  })
})

describe('mempool per-sender caps', () => {
  it('bounds the transactions one sender may have pending', async () => {
    const { pool, tx, add, accounts, addrs } = setup({ maxTxsPerSender: 4 }, 2)
    const run = [0, 1, 2, 3].map((n) => tx(0, n))
    for (const t of run) assert.equal(await add(t), 'ok')
    const r = await pool.add(tx(0, 4).bytes)
    assert.ok(!r.ok && r.error.code === 'mempool_full' && /sender/.test(r.error.reason), r.ok ? 'admitted' : r.error.reason)
    assert.equal(await add(tx(0, 9)), 'mempool_full') // gapped ones count too
    assert.equal(await add(tx(1, 0)), 'ok') // other senders are not affected
    // commits make room again
    accounts.set(addrs[0]!, 1_000_000n - 2n, 2n)
    await pool.update([run[0]!.hash, run[1]!.hash], [addrs[0]!])
    assert.equal(await add(tx(0, 4)), 'ok')
    assert.equal(await add(tx(0, 5)), 'ok')
    assert.equal(await add(tx(0, 6)), 'mempool_full')
  })

  it('bounds the bytes one sender may have pending', async () => {
    const { pool, tx, add } = setup({ maxBytesPerSender: 3 * TX_BYTES }, 2)
    for (const n of [0, 1, 2]) assert.equal(await add(tx(0, n)), 'ok')
    const r = await pool.add(tx(0, 3).bytes)
    assert.ok(!r.ok && r.error.code === 'mempool_full' && /sender/.test(r.error.reason), r.ok ? 'admitted' : r.error.reason)
    assert.equal(await add(tx(1, 0)), 'ok')
    assert.equal(pool.size, 4)
  })

  it('has the defaults a node gets from an empty config.json', () => {
    const { verifyWorkers: _, ...fromConfig } = DEFAULT_CONFIG.mempool
    const { recentCommittedCapacity: __, ...bounds } = MEMPOOL_DEFAULTS
    assert.deepEqual(fromConfig, bounds)
  })

  it('admits by default what a high-rate sender queues: thousands of nonces in order', async () => {
    // signatures are not the point here: a verifier that accepts keeps the test quick
    const { pool, tx, add } = setup({}, 1, 1n << 40n, 5, { verifySignature: () => true })
    for (let n = 0; n < 5000; n++) assert.equal(await add(tx(0, n)), 'ok')
    assert.equal(pool.size, 5000)
    assert.equal(pool.gappedSize, 0)
  })
})

describe('mempool accounting', () => {
  it('stays consistent through a random mix of admissions, blocks, rejections and floods', async () => {
    const SENDERS = 6
    const opts = {
      maxTxs: 20,
      maxBytes: 18 * TX_BYTES,
      maxFuturePerSender: 6,
      maxTxsPerSender: 9,
      maxBytesPerSender: 8 * TX_BYTES,
      gappedSharePercent: 30,
      gappedExpiryHeights: 4,
    }
    const { pool, tx, accounts, addrs, removed } = setup(opts, SENDERS, 150n, 9)
    const rng = new Rng(2024)
    /** Every admitted transaction still pending, by hash: the model the pool must match. */
    const pending = new Map<string, DecodedTransaction>()
    const senderIndex = new Map(addrs.map((a, i) => [toHex(a), i]))
    const senderOfTx = new WeakMap<DecodedTransaction, number>()
    const senderOf = (t: DecodedTransaction) => {
      let k = senderOfTx.get(t)
      if (k === undefined) {
        k = senderIndex.get(toHex(addressFromPublicKey(t.tx.from)))!
        senderOfTx.set(t, k)
      }
      return k
    }
    /** The model's next nonce: the committed nonce plus the contiguous pending ones. */
    const nextOf = (k: number) => {
      const nonces = new Set([...pending.values()].filter((t) => senderOf(t) === k).map((t) => t.tx.nonce))
      let n = accounts.get(addrs[k]!).nonce
      while (nonces.has(n)) n++
      return n
    }
    let seen = 0
    const check = async (what: string) => {
      // every removal, in order, was of a pending transaction, reported once, and of a gapped one when evicted
      // or expired
      for (; seen < removed.length; seen++) {
        const r = removed[seen]!
        const t = pending.get(r.hash)
        assert.ok(t !== undefined, `${what}: removed ${r.hash} (${r.code}) was not pending`)
        if (r.code === 'evicted' || r.code === 'expired') {
          assert.ok(t.tx.nonce > nextOf(senderOf(t)), `${what}: ${r.code} a payable transaction ${senderOf(t)}/${t.tx.nonce}`)
        }
        pending.delete(r.hash)
      }
      assert.equal(pool.size, pending.size, what)
      assert.equal(
        pool.bytes,
        [...pending.values()].reduce((s, t) => s + t.bytes.byteLength, 0),
        what,
      )
      for (const [h, t] of pending) assert.ok(pool.has(t.hash), `${what}: ${h} is missing`)
      assert.ok(pool.size <= opts.maxTxs && pool.bytes <= opts.maxBytes, what)
      assert.ok(pool.gappedSize <= Math.ceil(opts.maxTxs * 0.3) && pool.gappedBytes <= Math.ceil(opts.maxBytes * 0.3), what)
      let gapped = 0
      for (let k = 0; k < SENDERS; k++) {
        const next = nextOf(k)
        assert.equal(await pool.pendingNonce(addrs[k]!), next, `${what}: next nonce of sender ${k}`)
        const mine = [...pending.values()].filter((t) => senderOf(t) === k)
        assert.ok(mine.length <= opts.maxTxsPerSender, what)
        gapped += mine.filter((t) => t.tx.nonce > next).length
        assert.ok(mine.reduce((s, t) => s + spendOf(t.tx), 0n) <= accounts.get(addrs[k]!).balance, `${what}: spend of ${k}`)
      }
      assert.equal(pool.gappedSize, gapped, what)
      pool.audit()
    }
    const codes = new Map<string, number>()
    for (let step = 0; step < 700; step++) {
      const roll = rng.float()
      let what: string
      if (roll < 0.7) {
        // an arrival: mostly near the sender's next nonce, sometimes far ahead; sometimes a replay
        const k = rng.int(SENDERS)
        const next = await pool.pendingNonce(addrs[k]!)
        const nonce = rng.chance(0.15)
          ? accounts.get(addrs[k]!).nonce + BigInt(rng.int(3)) // likely taken, or a replay
          : next + BigInt(rng.chance(0.35) ? rng.int(9) : 0)
        const t = tx(k, nonce, 1n + BigInt(rng.int(12)))
        const r = await pool.add(t.bytes)
        const code = r.ok ? 'ok' : r.error.code
        codes.set(code, (codes.get(code) ?? 0) + 1)
        if (r.ok) pending.set(toHex(t.hash), t)
        // the only removals an admission makes are evictions
        for (const x of removed.slice(seen)) assert.equal(x.code, 'evicted', `step ${step}`)
        what = `step ${step}: add ${k}/${nonce} → ${code}`
      } else if (roll < 0.85) {
        // a block: part of what the pool reaps, plus now and then a transfer committed through another node
        const reaped = pool.reap({ maxTxs: rng.int(5), maxBytes: 1e6 })
        const touched = new Set<number>()
        for (const t of reaped) {
          const k = senderOf(t)
          const a = accounts.get(addrs[k]!)
          accounts.set(addrs[k]!, a.balance - spendOf(t.tx), a.nonce + 1n)
          touched.add(k)
        }
        if (rng.chance(0.3)) {
          const k = rng.int(SENDERS)
          const a = accounts.get(addrs[k]!)
          const balance = a.balance - BigInt(rng.int(30)) + (rng.chance(0.6) ? 60n : 0n)
          accounts.set(addrs[k]!, balance < 0n ? 0n : balance, a.nonce + BigInt(rng.int(2)))
          touched.add(k)
        }
        const before = removed.length
        await pool.update(
          reaped.map((t) => t.hash),
          rng.chance(0.2) ? undefined : [...touched].map((k) => addrs[k]!),
        )
        for (const x of removed.slice(before)) {
          if (x.code === 'committed')
            assert.ok(
              reaped.some((t) => toHex(t.hash) === x.hash),
              `step ${step}: committed ${x.hash}`,
            )
        }
        what = `step ${step}: block of ${reaped.length}`
      } else if (roll < 0.9) {
        const all = [...pending.values()]
        if (all.length === 0) continue
        const t = rng.pick(all)
        pool.reject(t.hash, 'insufficient_funds', 'failed execution')
        what = `step ${step}: reject ${senderOf(t)}/${t.tx.nonce}`
      } else {
        await pool.update([], [])
        what = `step ${step}: empty block`
      }
      await check(what)
    }
    // the sequence exercised every path it means to
    for (const c of ['ok', 'bad_nonce', 'insufficient_funds', 'mempool_full']) assert.ok((codes.get(c) ?? 0) > 0, `no ${c}: ${[...codes]}`)
    const removalCodes = new Set(removed.map((r) => r.code))
    for (const c of ['committed', 'evicted', 'expired', 'bad_nonce', 'insufficient_funds'])
      assert.ok(removalCodes.has(c as Removal['code']), `no ${c} removal: ${[...removalCodes]}`)
  })

  it('stays consistent when admissions and blocks interleave over an asynchronous store', async () => {
    const SENDERS = 5
    const rng = new Rng(77)
    const opts = { maxTxs: 10, maxFuturePerSender: 5, maxTxsPerSender: 4, gappedSharePercent: 40, gappedExpiryHeights: 3 }
    const { pool, tx, accounts, addrs, removed } = setup(opts, SENDERS, 200n, 13, {}, () => rng.int(4))
    const pending = new Map<string, DecodedTransaction>()
    let seen = 0
    const codes = new Set<string>()
    for (let step = 0; step < 150; step++) {
      // a block and a few arrivals, started together
      const reaped = pool.reap({ maxTxs: rng.int(4), maxBytes: 1e6 })
      const touched = new Set<number>()
      for (const t of reaped) {
        const k = addrs.findIndex((a) => toHex(a) === toHex(addressFromPublicKey(t.tx.from)))
        const a = accounts.get(addrs[k]!)
        accounts.set(addrs[k]!, a.balance - spendOf(t.tx) + (rng.chance(0.3) ? 30n : 0n), a.nonce + 1n)
        touched.add(k)
      }
      const arrivals: DecodedTransaction[] = []
      for (let i = 1 + rng.int(5); i > 0; i--) {
        const k = rng.int(SENDERS)
        const next = await pool.pendingNonce(addrs[k]!)
        arrivals.push(tx(k, next + BigInt(rng.chance(0.4) ? rng.int(5) : 0), 1n + BigInt(rng.int(9))))
      }
      const results = await Promise.all([
        pool.update(
          reaped.map((t) => t.hash),
          [...touched].map((k) => addrs[k]!),
        ),
        ...arrivals.map(async (t) => [t, await pool.add(t.bytes)] as const),
      ])
      for (const r of results.slice(1)) {
        const [t, res] = r as readonly [DecodedTransaction, Awaited<ReturnType<Mempool['add']>>]
        codes.add(res.ok ? 'ok' : res.error.code)
        if (res.ok) pending.set(toHex(t.hash), t)
      }
      for (; seen < removed.length; seen++) {
        const x = removed[seen]!
        assert.ok(pending.delete(x.hash), `step ${step}: removed ${x.hash} (${x.code}) was not pending`)
        codes.add(x.code)
      }
      assert.equal(pool.size, pending.size, `step ${step}`)
      assert.equal(pool.bytes, pending.size * TX_BYTES, `step ${step}`)
      for (const t of pending.values()) assert.ok(pool.has(t.hash), `step ${step}`)
      pool.audit()
    }
    for (const c of ['ok', 'committed', 'mempool_full', 'evicted', 'expired']) assert.ok(codes.has(c), `no ${c}: ${[...codes]}`)
  })
})

describe('mempool memory', () => {
  it("keeps a pending transaction's own bytes, not the peer's batch it arrived in", async () => {
    // The attack: a peer pads each new transfer with a quarter megabyte of transactions the node refuses cheaply
    // (already committed), so that a transfer waiting in the pool (a gapped nonce waits up to its expiry) would hold
    // the whole batch: 25,000 gapped transfers, the default share, would then hold 6 GB.
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const { pool, tx } = setup({}, 8)
    const committed = Array.from({ length: 16 }, (_, n) => tx(7, n))
    await pool.update(committed.map((t) => t.hash))
    const padding: Uint8Array[] = []
    while (padding.length * TX_BYTES < 256 * 1024) padding.push(committed[padding.length % committed.length]!.bytes)
    const batches: WeakRef<ArrayBuffer>[] = []
    const fresh: { hash: Uint8Array; bytes: Uint8Array }[] = []
    // each sender's nonce 5 waits on the missing nonces 0-4
    const admit = async (k: number) => {
      const t = tx(k, 5)
      // the message as the network delivers it: a buffer of its own (an encoding is a view of the encoder's buffer)
      const message = new Uint8Array(encodeTxBatch([...padding, t.bytes]))
      fresh.push({ hash: t.hash, bytes: new Uint8Array(t.bytes) })
      const decoded = decodeTxBatch(message, 1024 * 1024, 4_000)
      assert.ok(decoded.ok)
      batches.push(new WeakRef(message.buffer))
      assert.equal((await pool.add(decoded.value.at(-1)!)).ok, true)
    }
    for (let k = 0; k < 6; k++) await admit(k)
    assert.equal(pool.gappedSize, 6)
    // msgpackr holds the last input it decoded until it decodes the next
    assert.ok(decodeTxBatch(encodeTxBatch([padding[0]!]), 1024, 1).ok)
    await new Promise((r) => setImmediate(r))
    gc()
    assert.deepEqual(
      batches.map((b) => b.deref() === undefined),
      batches.map(() => true),
      'a pending transaction keeps its batch reachable',
    )
    for (const t of fresh) {
      const held = pool.get(t.hash)!
      assert.deepEqual(held.bytes, t.bytes)
      assert.ok(held.bytes.buffer.byteLength <= MAX_TX_BYTES)
      if (held.tx.kind === 'transfer') assert.ok(held.tx.signature.buffer === held.bytes.buffer)
    }
    pool.audit()
  })
})
