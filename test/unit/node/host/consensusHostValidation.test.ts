import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bytesKey, encodeCanonical, sha256, toHex } from '../../../../crypto/index.js'
import { encodeTransaction, decodeTransaction, type DecodedTransaction } from '../../../../ledger/transaction.js'
import { HostWorld, EPOCH_MS, hexOrNil, type TestBlock, type TestHost } from './hostFixture.js'

/**
 * How the host judges a proposed block: a block that does not apply is invalid (a nil prevote and a warning naming
 * its proposer); one that cannot be judged yet — its transactions not fetched, its time ahead of this clock — is
 * retried and never judged invalid.
 */

/** A four-validator network with this host as a validator that does not propose height 1, round 0. */
async function network(o: { timeoutProposeMs?: number; executeMs?: number; fetchTxs?: (hashes: readonly Uint8Array[]) => (Uint8Array | undefined)[] } = {}) {
  const w = new HostWorld({ validators: 4, params: o.timeoutProposeMs === undefined ? {} : { timeoutProposeMs: o.timeoutProposeMs } })
  const P = w.proposerOf(1, 0)
  const A = w.nonProposer(1, 0)
  const t = await w.boot({ self: A, fetchTxs: o.fetchTxs, executeMs: o.executeMs })
  return { w, t, P, A }
}

/** A fetch that serves these transactions by hash. */
function serving(txs: readonly DecodedTransaction[]): (hashes: readonly Uint8Array[]) => (Uint8Array | undefined)[] {
  const byHash = new Map(txs.map((t) => [bytesKey(t.hash), t.bytes]))
  return (hashes) => hashes.map((h) => byHash.get(bytesKey(h)))
}

const ownPrevotes = (t: TestHost) => t.votes({ own: true }).filter((v) => v.type === 'prevote' && v.height === 1)

describe('consensus host: invalid blocks', () => {
  const rows: readonly {
    desc: string
    code: string
    block: (w: HostWorld, P: number) => Promise<{ b: TestBlock; fetched: DecodedTransaction[] }>
  }[] = [
    {
      desc: 'a transfer that skips a nonce',
      code: 'tx_failed',
      block: async (w, P) => {
        const tx = w.transfer(0, 5n)
        return { b: await w.block1({ proposer: P, txs: [tx] }), fetched: [tx] }
      },
    },
    {
      desc: 'a transfer with a forged signature',
      code: 'tx_failed',
      block: async (w, P) => {
        const honest = w.transfer(0, 0n)
        const forged = { ...honest.tx, amount: 999n }
        const d = decodeTransaction(encodeTransaction(forged))
        assert.ok(d.ok)
        return { b: await w.block1({ proposer: P, txs: [d.value] }), fetched: [d.value] }
      },
    },
    {
      desc: 'a state root that execution does not give',
      code: 'state_root',
      block: async (w, P) => ({ b: await w.block1({ proposer: P, stateRoot: sha256(encodeCanonical(['not the state'])) }), fetched: [] }),
    },
  ]
  for (const r of rows) {
    it(`judges ${r.desc} invalid: a nil prevote at once and a warning naming the proposer`, async () => {
      let serve: (hashes: readonly Uint8Array[]) => (Uint8Array | undefined)[] = () => []
      const { w, t, P } = await network({ fetchTxs: (h) => serve(h) })
      const { b, fetched } = await r.block(w, P)
      serve = serving(fetched)
      await t.host.onProposalMessage(b.message)
      await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
      t.stop()
      const [prevote] = ownPrevotes(t)
      assert.equal(prevote!.valueId, null)
      assert.ok(t.sent.at(-1)!.time < w.params.timeoutProposeMs, 'a verdict, not the propose timeout')
      const warned = t.logged('rejected a proposed block', 'warn')
      assert.equal(warned.length, 1)
      assert.deepEqual(
        { height: warned[0]!.fields.height, block: warned[0]!.fields.block, proposer: warned[0]!.fields.proposer, code: warned[0]!.fields.code },
        { height: 1, block: toHex(b.hash), proposer: toHex(w.validators[P]!.address), code: r.code },
      )
    })
  }
})

describe('consensus host: blocks that cannot be judged yet', () => {
  it('retries a block whose transactions are unavailable, never judges it invalid, and accepts it once they arrive', async () => {
    let available = false
    const tx = (w: HostWorld) => w.transfer(0, 0n)
    let fetch: (hashes: readonly Uint8Array[]) => (Uint8Array | undefined)[] = () => []
    const { w, t, P } = await network({ timeoutProposeMs: 10_000, fetchTxs: (h) => (available ? fetch(h) : h.map(() => undefined)) })
    const transfer = tx(w)
    fetch = serving([transfer])
    const b = await w.block1({ proposer: P, txs: [transfer] })
    await t.host.onProposalMessage(b.message)
    await w.advance(2_100)
    assert.ok(t.fetches.length >= 4, `fetched ${t.fetches.length} times`)
    assert.deepEqual(ownPrevotes(t), [], 'no verdict while the transactions are missing')
    const waiting = t.logged('cannot judge a proposed block yet: will retry', 'info')
    assert.equal(waiting.length, 1, 'one line per reason, not one per retry')
    assert.equal(waiting[0]!.fields.reason, 'transactions unavailable')

    available = true
    await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
    t.stop()
    assert.equal(hexOrNil(ownPrevotes(t)[0]!.valueId), toHex(b.hash))
    assert.deepEqual(t.logged('rejected a proposed block'), [])
  })

  it('asks for transactions no peer serves less and less often, down to once in four seconds', async () => {
    // a proposer may name transactions nobody has: asking every peer for them twice a second while the height lasts
    // would let it keep every validator fetching
    const { w, t, P } = await network({ timeoutProposeMs: 60_000, fetchTxs: (h) => h.map(() => undefined) })
    const b = await w.block1({ proposer: P, txs: [w.transfer(0, 0n)] })
    await t.host.onProposalMessage(b.message)
    await w.advance(2_100)
    const early = t.fetches.length
    assert.ok(early >= 4, `fetched ${early} times in the first two seconds`)
    await w.advance(20_000)
    const late = t.fetches.length - early
    t.stop()
    assert.ok(late >= 4 && late <= 7, `fetched ${late} times in the 20 s after them`)
    assert.deepEqual(ownPrevotes(t), [], 'no verdict while the transactions are missing')
  })

  it('judges a block at once when its missing transactions reach the mempool while fetches wait', async () => {
    // no peer serves the transaction; it reaches this node by gossip, after the fetches have slowed down
    const { w, t, P } = await network({ timeoutProposeMs: 60_000, fetchTxs: (h) => h.map(() => undefined) })
    const transfer = w.transfer(0, 0n)
    const b = await w.block1({ proposer: P, txs: [transfer] })
    await t.host.onProposalMessage(b.message)
    await w.advance(5_100)
    assert.deepEqual(ownPrevotes(t), [], 'no verdict while the transaction is missing')
    const arrived = w.now() - EPOCH_MS
    const added = await t.mempool.add(transfer.bytes)
    assert.ok(added.ok)
    await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
    t.stop()
    assert.equal(hexOrNil(ownPrevotes(t)[0]!.valueId), toHex(b.hash))
    const after = t.sent.at(-1)!.time - arrived
    assert.ok(after <= 500, `judged ${after} ms after its transaction arrived`)
  })

  it('waits for a block time ahead of its clock before the verdict, and then finds the block valid', async () => {
    const { w, t, P } = await network({ timeoutProposeMs: 10_000 })
    const drift = 500
    const time = EPOCH_MS + 3_000
    const b = await w.block1({ proposer: P, time })
    await t.host.onProposalMessage(b.message)
    await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
    t.stop()
    const sent = t.sent.find((s) => s.gossip.kind === 'vote')!
    assert.equal(hexOrNil(ownPrevotes(t)[0]!.valueId), toHex(b.hash))
    assert.ok(EPOCH_MS + sent.time >= time - drift, `prevoted at ${sent.time} ms, before the block time came within the drift`)
    assert.ok(sent.time < w.params.timeoutProposeMs)
    assert.equal(t.logged('cannot judge a proposed block yet: will retry', 'info')[0]?.fields.reason, 'block time is ahead of this clock')
    assert.deepEqual(t.logged('rejected a proposed block'), [])
  })
})

/**
 * The propose timeout ends the wait for a proposal, not its judgement (the paper's `valid(v)` takes no time): a block
 * received in time whose execution outlasts the timeout is prevoted by its verdict, not nil. Otherwise every validator
 * executes a large block over a large state once in vain, and again in the next round.
 */
describe('consensus host: the propose timeout and a block still executing', () => {
  it('prevotes for a block whose execution outlasts the propose timeout once it is judged valid, never nil', async () => {
    const { w, t, P } = await network({ timeoutProposeMs: 1_000, executeMs: 1_500 })
    const b = await w.block1({ proposer: P })
    await t.host.onProposalMessage(b.message)
    await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
    await w.advance(1_000)
    t.stop()
    const prevotes = ownPrevotes(t)
    assert.deepEqual(
      prevotes.map((v) => hexOrNil(v.valueId)),
      [toHex(b.hash)],
    )
    const sent = t.sent.find((s) => s.gossip.kind === 'vote')!
    assert.ok(sent.time >= 1_500, `prevoted at ${sent.time} ms, before the execution ended`)
  })

  it('an invalid block whose execution outlasts the timeout gets one nil prevote, after its verdict', async () => {
    const { w, t, P } = await network({ timeoutProposeMs: 1_000, executeMs: 1_500 })
    const b = await w.block1({ proposer: P, stateRoot: sha256(encodeCanonical(['not the state'])) })
    await t.host.onProposalMessage(b.message)
    await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
    await w.advance(1_000)
    t.stop()
    assert.deepEqual(
      ownPrevotes(t).map((v) => hexOrNil(v.valueId)),
      ['nil'],
    )
    assert.ok(t.sent.find((s) => s.gossip.kind === 'vote')!.time >= 1_500)
    assert.equal(t.logged('rejected a proposed block', 'warn').length, 1)
  })

  it('still prevotes nil at the propose timeout for a block it cannot judge yet', async () => {
    const tx = (w: HostWorld) => w.transfer(0, 0n)
    const { w, t, P } = await network({ timeoutProposeMs: 1_000, executeMs: 1_500, fetchTxs: (h) => h.map(() => undefined) })
    const b = await w.block1({ proposer: P, txs: [tx(w)] })
    await t.host.onProposalMessage(b.message)
    await w.until(() => ownPrevotes(t).length === 1, 'the prevote')
    t.stop()
    assert.equal(ownPrevotes(t)[0]!.valueId, null)
    const sent = t.sent.find((s) => s.gossip.kind === 'vote')!
    assert.ok(sent.time >= 1_000 && sent.time < 1_500, `prevoted nil at ${sent.time} ms, not at the propose timeout`)
  })
})
