import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { toHex } from '../../../../crypto/index.js'
import { MAX_TX_BYTES, createTransfer, decodeTransaction, verifyTransactionSignature } from '../../../../ledger/transaction.js'
import { DirectStreams } from '../../../../node/p2p/directStreams.js'
import { silentLogger } from '../../../../node/logger.js'
import { decodeTxBatch, encodeTxBatch, TxGossip, type AdmitResult } from '../../../../node/sync/txGossip.js'
import { Rng } from '../../../helpers/random.js'
import { startNet, type TestNet } from '../p2p/p2pNet.js'
import { waitFor } from '../../../helpers/waitFor.js'

const CHAIN = 'tally-test'

function makeTxs(n: number, seed = 5): Uint8Array[] {
  const rng = new Rng(seed)
  const key = rng.bytes(32)
  return Array.from({ length: n }, (_, i) => createTransfer(key, { chainId: CHAIN, to: rng.bytes(20), amount: 1n, nonce: BigInt(i) }).bytes)
}

/** A stand-in mempool: the stateless checks plus deduplication. */
function fakeMempool() {
  const seen = new Set<string>()
  const admit = (bytes: Uint8Array): AdmitResult => {
    const d = decodeTransaction(bytes)
    if (!d.ok) return { ok: false, error: { code: 'malformed' } }
    if (d.value.tx.chainId !== CHAIN) return { ok: false, error: { code: 'wrong_chain' } }
    const h = toHex(d.value.hash)
    if (seen.has(h)) return { ok: false, error: { code: 'duplicate' } }
    if (!verifyTransactionSignature(d.value.tx)) return { ok: false, error: { code: 'invalid_signature' } }
    seen.add(h)
    return { ok: true, value: h }
  }
  return { seen, admit }
}

describe('tx batch encoding', () => {
  it('round-trips and enforces its bounds', () => {
    const txs = makeTxs(3)
    const bytes = encodeTxBatch(txs)
    assert.deepEqual(decodeTxBatch(bytes, 10_000, 10), { ok: true, value: txs })
    assert.equal(decodeTxBatch(bytes, 100, 10).ok, false)
    assert.equal(decodeTxBatch(bytes, 10_000, 2).ok, false)
    assert.equal(decodeTxBatch(encodeTxBatch([]), 10_000, 10).ok, false)
    assert.equal(decodeTxBatch(new Uint8Array([1, 2, 3]), 10_000, 10).ok, false)
    assert.equal(decodeTxBatch(encodeTxBatch([new Uint8Array(MAX_TX_BYTES + 1)]), 10_000, 10).ok, false)
  })
})

describe('tx gossip', () => {
  const nets: TestNet[] = []
  const gossips: TxGossip[] = []
  after(async () => {
    await Promise.all(gossips.map((g) => g.stop()))
    await Promise.all(nets.map((n) => n.stop()))
  })

  async function setup(n: number) {
    const mempools = Array.from({ length: n }, () => fakeMempool())
    const net = await startNet(n)
    nets.push(net)
    const directs = net.nodes.map((node) => new DirectStreams(node, silentLogger()))
    const gs = directs.map((direct, i) => new TxGossip({ flushMs: 5 }, { gossip: direct, admit: mempools[i]!.admit, logger: silentLogger() }))
    gossips.push(...gs)
    await Promise.all(gs.map((g) => g.start()))
    return { net, gs, mempools, directs }
  }

  it('delivers N transactions to every node in far fewer than N messages', async () => {
    const { gs, mempools } = await setup(3)
    const txs = makeTxs(600)
    for (const tx of txs) assert.equal((await gs[0]!.submit(tx)).ok, true)
    await waitFor(() => mempools.every((m) => m.seen.size === 600), 'all transactions everywhere')
    assert.ok(gs[0]!.stats.batchesSent < 60, `sent ${gs[0]!.stats.batchesSent} batches`)
    assert.ok(gs[1]!.stats.batchesReceived < 120)
    assert.equal(gs[1]!.stats.batchesRejected, 0)
    // received transactions are not queued again by the receivers
    assert.equal(gs[1]!.stats.batchesSent, 0)
    assert.equal(gs[2]!.stats.batchesSent, 0)
  })

  it('rejects a batch holding an invalid transaction and penalizes its sender; ignores stale batches', async () => {
    const { net, gs, mempools, directs } = await setup(2)
    const [a, b] = net.nodes
    const direct = directs[0]!
    const txs = makeTxs(3, 8)
    const forged = new Uint8Array(txs[2]!)
    forged[forged.length - 1]! ^= 1
    await direct.publish('/tally/tx-batches/1', encodeTxBatch([txs[0]!, forged]))
    await waitFor(() => gs[1]!.stats.batchesRejected === 1, 'forged batch rejected')
    assert.ok(b!.penaltyOf(a!.peerId) > 0)
    // stale only: every transaction already known
    await direct.publish('/tally/tx-batches/1', encodeTxBatch([txs[0]!]))
    await waitFor(() => gs[1]!.stats.batchesIgnored === 1, 'stale batch ignored')
    await direct.publish('/tally/tx-batches/1', new Uint8Array([0x92, 0x01, 0x01]))
    await waitFor(() => gs[1]!.stats.batchesRejected === 2, 'garbage batch rejected')
    assert.equal(mempools[1]!.seen.size, 1)
  })
})

describe('tx gossip to a peer that connects', () => {
  /** A transport that records what it is asked to send, and drops everything after `room` messages. */
  function recorder(room = Infinity) {
    const sent: { peer: string; txs: Uint8Array[] }[] = []
    return {
      sent,
      subscribe: () => {},
      publish: async () => 0,
      sendTo: (peer: string, _topic: string, data: Uint8Array) => {
        if (sent.length >= room) return false
        const d = decodeTxBatch(data, 256 * 1024, 2_000)
        assert.ok(d.ok)
        sent.push({ peer, txs: d.value })
        return true
      },
    }
  }

  it('sends the pending transactions to that peer alone, in order, in bounded batches', async () => {
    const t = recorder()
    const g = new TxGossip({ maxBatchTxs: 40 }, { gossip: t, admit: () => ({ ok: true, value: undefined }), logger: silentLogger() })
    await g.start()
    const txs = makeTxs(100, 11)
    assert.equal(
      g.sendPending('peer-b', () => ({ txs, mark: 0 })),
      100,
    )
    assert.deepEqual(
      t.sent.map((m) => m.txs.length),
      [40, 40, 20],
    )
    assert.ok(t.sent.every((m) => m.peer === 'peer-b'))
    assert.deepEqual(
      t.sent.flatMap((m) => m.txs),
      txs,
    )
    assert.equal(
      g.sendPending('peer-b', () => ({ txs: [], mark: 0 })),
      0,
    )
    assert.equal(t.sent.length, 3, 'nothing pending, nothing sent')
    await g.stop()
  })

  it('a peer that connects again soon is sent only what was admitted since it was last sent the pool', async () => {
    const t = recorder()
    let clock = 0
    const g = new TxGossip({ pendingResendMs: 10_000 }, { gossip: t, admit: () => ({ ok: true, value: undefined }), now: () => clock, logger: silentLogger() })
    await g.start()
    // a pool of admissions in order: the mark is how many were admitted
    const pool = makeTxs(8, 14)
    let admitted = 3
    const asked: (number | undefined)[] = []
    const pending = (since: number | undefined) => {
      asked.push(since)
      return { txs: pool.slice(since ?? 0, admitted), mark: admitted }
    }
    assert.equal(g.sendPending('peer-d', pending), 3)
    clock = 2_000 // it disconnects; two transactions are admitted meanwhile, gossiped to nobody
    admitted = 5
    assert.equal(g.sendPending('peer-d', pending), 2, 'the two admitted while it was away')
    clock = 9_999
    assert.equal(g.sendPending('peer-d', pending), 0, 'nothing new')
    assert.equal(g.sendPending('peer-e', pending), 5, 'another peer is sent the whole pool')
    clock = 10_000
    admitted = 6
    assert.equal(g.sendPending('peer-d', pending), 6, 'the whole pool again once the interval passed')
    assert.deepEqual(asked, [undefined, 3, 5, undefined, undefined])
    assert.deepEqual(
      t.sent.filter((m) => m.peer === 'peer-d').flatMap((m) => m.txs),
      [...pool.slice(0, 5), ...pool.slice(0, 6)],
    )
    await g.stop()
  })

  it("stops at the first batch the peer's queue refuses, and sends nothing once stopped", async () => {
    const t = recorder(1)
    const g = new TxGossip({ maxBatchTxs: 10 }, { gossip: t, admit: () => ({ ok: true, value: undefined }), logger: silentLogger() })
    await g.start()
    assert.equal(
      g.sendPending('peer-c', () => ({ txs: makeTxs(35, 12), mark: 0 })),
      10,
    )
    await g.stop()
    assert.equal(
      g.sendPending('peer-c', () => ({ txs: makeTxs(5, 13), mark: 0 })),
      0,
    )
  })
})

describe('tx gossip holding batches back', () => {
  /** A gossip transport that records what is published, and a clock the test moves with mocked timers. */
  function held(holdUntil: () => number | undefined, options: { flushMs?: number; maxHoldMs?: number; maxBatchTxs?: number } = {}) {
    const published: Uint8Array[][] = []
    const gossip = {
      subscribe: () => {},
      publish: async (_topic: string, data: Uint8Array) => {
        const d = decodeTxBatch(data, 1 << 20, 10_000)
        assert.ok(d.ok)
        published.push(d.value)
        return 1
      },
      sendTo: () => true,
    }
    const g = new TxGossip(options, {
      gossip,
      admit: () => ({ ok: true, value: null }),
      holdUntil: () => holdUntil() ?? Number.NaN,
      now: () => Date.now(),
      logger: silentLogger(),
    })
    return { g, published }
  }

  /** Moves the mocked clock and lets the publishing promises run. */
  async function tick(ms: number, t: { mock: { timers: { tick(ms: number): void } } }) {
    t.mock.timers.tick(ms)
    for (let i = 0; i < 5; i++) await Promise.resolve()
  }

  it('sends what arrives before the hold ends as one batch when it ends', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000 })
    const txs = makeTxs(4, 11)
    const { g, published } = held(() => 1_040)
    await g.start()
    g.broadcast(txs[0]!)
    await tick(10, t)
    g.broadcast(txs[1]!)
    await tick(20, t)
    g.broadcast(txs[2]!)
    await tick(9, t)
    assert.equal(published.length, 0, 'nothing goes out while the hold lasts')
    await tick(1, t)
    assert.deepEqual(published, [txs.slice(0, 3)])
    // once the hold is over, a transaction waits flushMs only
    g.broadcast(txs[3]!)
    await tick(5, t)
    assert.deepEqual(published, [txs.slice(0, 3), [txs[3]]])
    await g.stop()
  })

  it('waits flushMs without a hold, at most maxHoldMs for a far one, and sends a full batch at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000 })
    const txs = makeTxs(5, 12)
    let until: number | undefined
    const { g, published } = held(() => until, { maxHoldMs: 50, maxBatchTxs: 2 })
    await g.start()
    g.broadcast(txs[0]!)
    await tick(5, t)
    assert.equal(published.length, 1, 'no hold: sent after the default 5 ms')
    until = Date.now() + 10_000
    g.broadcast(txs[1]!)
    await tick(49, t)
    assert.equal(published.length, 1)
    await tick(1, t)
    assert.equal(published.length, 2, 'a hold far ahead delays a batch by maxHoldMs only')
    g.broadcast(txs[2]!)
    g.broadcast(txs[3]!)
    await tick(0, t)
    assert.deepEqual(published[2], [txs[2], txs[3]], 'a full batch goes out during a hold')
    await g.stop()
  })

  it('holds as long as maxHoldMs allows under an open hold, and follows the hold when it is rearmed', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000 })
    const txs = makeTxs(4, 13)
    let until = Number.POSITIVE_INFINITY
    const { g, published } = held(() => until, { maxHoldMs: 100 })
    await g.start()
    g.broadcast(txs[0]!)
    await tick(60, t)
    g.broadcast(txs[1]!)
    await tick(39, t)
    assert.equal(published.length, 0, 'an open hold keeps the batch')
    await tick(1, t)
    assert.deepEqual(published, [[txs[0], txs[1]]], 'for maxHoldMs after its first transaction')
    // a new height starts: the hold now ends at a known moment, and the queued batch follows it
    g.broadcast(txs[2]!)
    await tick(30, t)
    until = Date.now() + 20
    g.rearm()
    await tick(19, t)
    assert.equal(published.length, 1)
    await tick(1, t)
    assert.deepEqual(published[1], [txs[2]])
    // no hold any more: a batch that already waited flushMs goes at once when rearmed
    until = Number.POSITIVE_INFINITY
    g.broadcast(txs[3]!)
    await tick(10, t)
    until = Number.NaN
    g.rearm()
    await tick(0, t)
    assert.deepEqual(published[2], [txs[3]])
    await g.stop()
  })
})
