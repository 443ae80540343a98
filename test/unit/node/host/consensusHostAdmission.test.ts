import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { addressFromPublicKey, encodeCanonical, sha256, sign, toHex } from '../../../../crypto/index.js'
import { voteSignBytes, type SignedVote } from '../../../../consensus/index.js'
import { CHAIN_ID, HostWorld, type TestHost } from './hostFixture.js'

/**
 * What the host owns of admission: what the core would do with a message (`messageStatus`), that repeated and
 * out-of-window messages cost neither a WAL record nor a step, that gossip waits while the queue is full, and the
 * repair re-broadcast of what the height holds when it is stuck.
 */

const value = (label: string | number) => sha256(encodeCanonical(['admission-test', label]))

/** A network of four with this host as a validator that does not propose height 1, round 0. */
async function fourValidators(o: { maxQueue?: number } = {}): Promise<{ w: HostWorld; t: TestHost; A: number; P: number; others: number[] }> {
  const w = new HostWorld({ validators: 4 })
  const P = w.proposerOf(1, 0)
  const A = w.nonProposer(1, 0)
  const t = await w.boot({ self: A, host: o.maxQueue === undefined ? {} : { maxQueue: o.maxQueue } })
  return { w, t, A, P, others: [0, 1, 2, 3].filter((i) => i !== A) }
}

/** Drives height 1 to a commit: a block of P, and the votes of P and one more validator beside this host's own. */
async function commitHeight1(w: HostWorld, t: TestHost, P: number, others: readonly number[]): Promise<void> {
  const b = await w.block1({ proposer: P })
  await t.host.onProposalMessage(b.message)
  const voters = [P, ...others.filter((i) => i !== P)].slice(0, 2)
  for (const i of voters) await t.host.onVote(w.vote(i, 'prevote', 1, 0, b.hash))
  for (const i of voters) await t.host.onVote(w.vote(i, 'precommit', 1, 0, b.hash))
  await w.until(() => t.committed.length === 1, 'height 1 committed')
}

describe('consensus host: message status', () => {
  it('drops everything before the host starts', async () => {
    const w = new HostWorld({ validators: 4 })
    const t = await w.boot({ self: 0, start: false })
    assert.equal(t.host.messageStatus({ kind: 'vote', vote: w.vote(1, 'prevote', 1, 0, null) }), 'drop')
    assert.equal(t.host.messageStatus({ kind: 'proposal', proposal: w.proposal(w.proposerOf(1, 0), 1, 0, value('b')) }), 'drop')
  })

  it('judges past, current and future heights and rounds, strangers and out-of-turn proposers', async () => {
    const { w, t, P, others } = await fourValidators()
    const B = others.find((i) => i !== P)!
    const status = (vote: SignedVote) => t.host.messageStatus({ kind: 'vote', vote })
    const { maxRoundsAhead, maxHeightsAhead } = w.params
    const rows: readonly { desc: string; vote: SignedVote; expected: 'new' | 'drop' }[] = [
      { desc: 'current height and round', vote: w.vote(B, 'prevote', 1, 0, value('x')), expected: 'new' },
      { desc: 'a later round within the window', vote: w.vote(B, 'precommit', 1, maxRoundsAhead, null), expected: 'new' },
      { desc: 'a round beyond the window', vote: w.vote(B, 'precommit', 1, maxRoundsAhead + 1, null), expected: 'drop' },
      { desc: 'the next height', vote: w.vote(B, 'prevote', 2, 0, null), expected: 'new' },
      { desc: 'the last height of the window', vote: w.vote(B, 'prevote', 1 + maxHeightsAhead, 0, null), expected: 'new' },
      { desc: 'a height beyond the window', vote: w.vote(B, 'prevote', 2 + maxHeightsAhead, 0, null), expected: 'drop' },
      { desc: 'a later height, a round beyond the window', vote: w.vote(B, 'prevote', 2, maxRoundsAhead + 1, null), expected: 'drop' },
    ]
    for (const r of rows) assert.equal(status(r.vote), r.expected, r.desc)

    const stranger = w.wallets[0]!
    const body = { type: 'prevote' as const, height: 1, round: 0, valueId: null, validator: addressFromPublicKey(stranger.publicKey) }
    assert.equal(status({ ...body, signature: sign(stranger.secretKey, voteSignBytes(CHAIN_ID, body)) }), 'drop', 'a vote from no validator')
    assert.equal(t.host.messageStatus({ kind: 'proposal', proposal: w.proposal(P, 1, 0, value('b')) }), 'new')
    assert.equal(t.host.messageStatus({ kind: 'proposal', proposal: w.proposal(B, 1, 0, value('b')) }), 'drop', 'not the proposer of 1/0')

    const held = w.vote(B, 'prevote', 1, 0, value('x'))
    await t.host.onVote(held)
    await w.advance(0)
    assert.equal(status(held), 'known')

    await commitHeight1(w, t, P, others)
    assert.equal(t.host.height, 2)
    assert.equal(status(w.vote(B, 'precommit', 1, 0, null)), 'drop', 'a past height')
    assert.equal(status(w.vote(B, 'prevote', 2, 0, null)), 'new')
    t.stop()
  })
})

describe('consensus host: what messages cost', () => {
  it('logs and feeds a repeated vote once, and an out-of-window vote never', async () => {
    const { w, t, others } = await fourValidators()
    const B = others[0]!
    const before = t.wal.written
    const v = w.vote(B, 'prevote', 1, 0, value('x'))
    for (let k = 0; k < 5; k++) await t.host.onVote(v)
    await w.advance(0)
    assert.equal(t.wal.written - before, 1, 'one WAL record for five copies')
    const later = t.wal.written
    await t.host.onVote(w.vote(B, 'prevote', 2 + w.params.maxHeightsAhead, 0, null))
    await t.host.onVote(w.vote(B, 'prevote', 1, w.params.maxRoundsAhead + 1, null))
    await w.advance(0)
    assert.equal(t.wal.written, later, 'no WAL record for votes outside the window')
    assert.equal(t.host.consensusState.future.length, 0)
    t.stop()
  })

  it('keeps a bounded number of future-height votes of one validator', async () => {
    const { w, t, others } = await fourValidators()
    const B = others[0]!
    for (let k = 0; k < 20; k++) await t.host.onVote(w.vote(B, 'prevote', 2, 0, value(k)))
    await w.advance(0)
    assert.ok(t.host.consensusState.future.length <= 2, `${t.host.consensusState.future.length} buffered votes of one slot`)
    t.stop()
  })

  // Byzantine input: a validator may sign any number of different votes for one step. The core keeps at most a few of
  // them; the host must log no more than that (and, for a later height, keep no more records in memory), or disk and
  // memory would grow with what one faulty validator sends within a height.
  for (const [where, height] of [
    ['the current height', 1],
    ['the next height', 2],
  ] as const) {
    it(`writes a bounded number of WAL records for one validator's conflicting votes at ${where}`, async () => {
      const { w, t, others } = await fourValidators()
      const B = others[0]!
      const before = t.wal.written
      for (let k = 0; k < 20; k++) await t.host.onVote(w.vote(B, 'prevote', height, 0, value(k)))
      await w.advance(0)
      t.stop()
      assert.ok(t.wal.written - before <= 3, `${t.wal.written - before} WAL records for 20 conflicting votes of one validator`)
    })
  }
})

describe('consensus host: back-pressure', () => {
  /** Blocks the host's single queue: it validated a proposal and waits for the WAL sync before using its prevote. */
  async function blockedQueue(maxQueue: number) {
    const f = await fourValidators({ maxQueue })
    const b = await f.w.block1({ proposer: f.P })
    f.t.wal.holdSyncs()
    await f.t.host.onProposalMessage(b.message)
    await f.w.until(() => f.t.guardRequests.length === 1, 'the prevote request')
    return f
  }

  /** Distinct valid votes of the other validators. */
  function votes(w: HostWorld, others: readonly number[], n: number): SignedVote[] {
    return Array.from({ length: n }, (_, k) => w.vote(others[k % others.length]!, k % 2 === 0 ? 'prevote' : 'precommit', 1, Math.floor(k / 6), null))
  }

  it('makes gossip wait while the queue is full and lets it in as the queue drains', async () => {
    const max = 8
    const { w, t, others } = await blockedQueue(max)
    const list = votes(w, others, max + 3)
    const queued = list.map(() => false)
    const waits = list.map((v, i) =>
      t.host.onVote(v).then(() => {
        queued[i] = true
      }),
    )
    await w.advance(w.params.timeoutProposeMs / 2)
    assert.equal(t.host.queueLength, max)
    assert.deepEqual(
      queued,
      list.map((_, i) => i < max),
      'the first calls resolve, the others wait for room',
    )
    t.wal.releaseSyncs()
    await Promise.all(waits)
    await w.until(() => t.host.queueLength === 0, 'the queue drained')
    assert.ok(t.votes({ own: true }).length >= 1, 'the held prevote went out')
    t.stop()
  })

  it('releases waiting gossip when the host stops', async () => {
    const max = 4
    const { w, t, others } = await blockedQueue(max)
    const list = votes(w, others, max + 2)
    let released = 0
    const waits = list.map((v) =>
      t.host.onVote(v).then(() => {
        released++
      }),
    )
    await w.advance(0)
    assert.equal(released, max)
    t.stop()
    await Promise.all(waits)
    assert.equal(released, max + 2)
  })
})

describe('consensus host: repair re-broadcast', () => {
  it("re-sends the current round's messages only once the height is stuck", async () => {
    const { w, t, A, P } = await fourValidators()
    const b = await w.block1({ proposer: P })
    await t.host.onProposalMessage(b.message)
    await w.until(() => t.votes({ own: true }).length === 1, 'the prevote')
    const sent = t.sent.length
    t.host.rebroadcast(2_000)
    assert.equal(t.sent.length, sent, 'nothing while the height is young')
    await w.advance(2_000)
    t.host.rebroadcast(2_000)
    const id = toHex(b.hash).slice(0, 8)
    // its own prevote, and the round's proposal it holds (what it knows of the round goes to peers that may lack it)
    assert.deepEqual(t.summary(sent), [`prevote 1/0 v${A} ${id}`, `proposal 1/0 v${P} ${id}`].sort())
    t.stop()
    const stopped = t.sent.length
    t.host.rebroadcast(0)
    assert.equal(t.sent.length, stopped, 'nothing once stopped')
  })

  it('re-sends the proposal and the polka behind its valid value with its own votes', async () => {
    const { w, t, A, P, others } = await fourValidators()
    const B = others.find((i) => i !== P)!
    const b = await w.block1({ proposer: P })
    await t.host.onProposalMessage(b.message)
    for (const i of [P, B]) await t.host.onVote(w.vote(i, 'prevote', 1, 0, b.hash))
    await w.until(() => t.votes({ own: true }).length === 2, 'the precommit')
    await w.advance(5_000)
    const sent = t.sent.length
    t.host.rebroadcast(2_000)
    assert.equal(t.host.round, 0, 'still in round 0: no precommits of the others arrived')
    const id = toHex(b.hash).slice(0, 8)
    assert.deepEqual(t.summary(sent), [`precommit 1/0 v${A} ${id}`, `proposal 1/0 v${P} ${id}`, ...[A, B, P].map((i) => `prevote 1/0 v${i} ${id}`)].sort())
    const repaired = t.proposals().at(-1)!
    assert.deepEqual(repaired.header, b.header, 'the proposal travels with its block parts')
    t.stop()
  })

  it('re-sends its own proposal with its block parts', async () => {
    const w = new HostWorld({ validators: 4 })
    const P = w.proposerOf(1, 0)
    const own = await w.boot({ self: P })
    await w.until(() => own.votes({ own: true }).length === 1, 'the own proposal and prevote')
    const [first] = own.proposals()
    assert.ok(first !== undefined)
    await w.advance(2_000)
    const before = own.sent.length
    own.host.rebroadcast(2_000)
    const id = toHex(first.proposal.valueId).slice(0, 8)
    assert.deepEqual(own.summary(before), [`prevote 1/0 v${P} ${id}`, `proposal 1/0 v${P} ${id}`])
    assert.deepEqual(own.proposals().at(-1), first)
    own.stop()
  })
})
