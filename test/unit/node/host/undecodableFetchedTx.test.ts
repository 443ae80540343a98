import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bytesEqual, encodeCanonical, sha256 } from '../../../../crypto/index.js'
import { blockHash, txRoot } from '../../../../ledger/block.js'
import { decodeTransaction } from '../../../../ledger/transaction.js'
import { HostWorld } from './hostFixture.js'

/**
 * A block whose transaction hash names bytes that are no transaction: the transaction fetch keeps only bytes that
 * match their hash, so those bytes are the only ones any peer can serve for it, and the block can never apply. The
 * host's own contract (`resolveTransactions`: "`malformed` when a fetched one has the right hash but is not a
 * transaction (the block is invalid)") says it is judged invalid at once, as a block that does not apply is.
 */
describe('consensus host: a fetched transaction with the right hash that does not decode', () => {
  it('judges the block invalid at once: a nil prevote before the propose timeout and a warning naming the proposer', async () => {
    const w = new HostWorld({ validators: 4, params: { timeoutProposeMs: 10_000 } })
    const P = w.proposerOf(1, 0)
    const A = w.nonProposer(1, 0)
    const junk = encodeCanonical(['not a transaction'])
    assert.ok(!decodeTransaction(junk).ok)
    const junkHash = sha256(junk)
    const t = await w.boot({ self: A, fetchTxs: (hashes) => hashes.map((h) => (bytesEqual(h, junkHash) ? junk : undefined)) })
    const empty = await w.block1({ proposer: P })
    const header = { ...empty.header, txRoot: txRoot([junkHash]) }
    const hash = blockHash(header)
    const message = { ...empty.message, header, txHashes: [junkHash], proposal: w.proposal(P, 1, 0, hash) }
    await t.host.onProposalMessage(message)
    const own = () => t.votes({ own: true }).filter((v) => v.type === 'prevote' && v.height === 1)
    await w.until(() => own().length === 1, 'the prevote')
    t.stop()
    assert.equal(own()[0]!.valueId, null)
    assert.ok(
      t.fetches.some((f) => f.some((h) => bytesEqual(h, junkHash))),
      'the block was taken up and its transaction fetched',
    )
    assert.ok(t.sent.at(-1)!.time < w.params.timeoutProposeMs, 'a verdict, not the propose timeout')
    assert.equal(t.logged('rejected a proposed block', 'warn').length, 1)
  })
})
