import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { keyPairFromSeed } from '../../../../crypto/index.js'
import { createTransfer, encodeTransaction, signGovernanceTransaction } from '../../../../ledger/transaction.js'
import { silentLogger } from '../../../../node/logger.js'
import type { GossipHandler, GossipVerdict } from '../../../../node/p2p/p2p.js'
import { TxGossip, type AdmitResult, type GossipTransport } from '../../../../node/sync/txGossip.js'
import { Rng } from '../../../helpers/random.js'

/**
 * A batch an honest node sends must be one its peers accept as well formed: a receiver rejects a batch over
 * `maxBatchBytes` as malformed and penalizes its sender. The sender sizes a batch with two bytes of header per
 * transaction, but a transaction of 256 bytes or more takes three (MessagePack bin16): a governance vote that adds a
 * validator with a name of 33 characters or more is that long.
 */

const CHAIN = 'tally-test'
const MAX_BATCH_BYTES = 256 * 1024

/** A transport that records what is sent and hands it to a receiving node's handler. */
function loopback() {
  const sent: Uint8Array[] = []
  const handlers: GossipHandler[] = []
  const transport: GossipTransport = {
    subscribe: (_topic, handler) => {
      handlers.push(handler)
    },
    publish: async (_topic, data) => {
      sent.push(data)
      return 1
    },
    sendTo: (_peer, _topic, data) => {
      sent.push(data)
      return true
    },
  }
  return { sent, handlers, transport }
}

/** Four validators' votes to add one validator named with 54 characters (277 bytes each), and 1,684 transfers. */
function filledBatch(): Uint8Array[] {
  const rng = new Rng(47)
  const newcomer = keyPairFromSeed(rng.bytes(32))
  const votes = Array.from({ length: 4 }, () => {
    const seed = rng.bytes(32)
    const tx = signGovernanceTransaction(
      {
        chainId: CHAIN,
        from: keyPairFromSeed(seed).publicKey,
        nonce: 0n,
        action: { type: 'add', publicKey: newcomer.publicKey, power: 1, peerId: `12D3KooW${'A'.repeat(44)}`, name: 'v'.repeat(54) },
      },
      seed,
    )
    return encodeTransaction(tx)
  })
  for (const v of votes) assert.equal(v.byteLength, 277)
  const key = rng.bytes(32)
  const transfers = Array.from({ length: 1684 }, (_, i) => createTransfer(key, { chainId: CHAIN, to: rng.bytes(20), amount: 1n, nonce: BigInt(i) }).bytes)
  for (const t of transfers) assert.equal(t.byteLength, 153)
  return [...votes, ...transfers]
}

async function receiverVerdicts(sent: readonly Uint8Array[]): Promise<GossipVerdict[]> {
  const rx = loopback()
  const receiver = new TxGossip({}, { gossip: rx.transport, admit: (): AdmitResult => ({ ok: true, value: undefined }), logger: silentLogger() })
  await receiver.start()
  const handler = rx.handlers[0]!
  const verdicts: GossipVerdict[] = []
  for (const b of sent) verdicts.push(await handler(b, 'sender'))
  await receiver.stop()
  return verdicts
}

/** Some batches were sent, each within the receivers' bound, and every receiver accepts each. */
async function assertReceiversAccept(sent: Uint8Array[]): Promise<void> {
  assert.ok(sent.length > 0)
  assert.deepEqual(
    await receiverVerdicts(sent),
    sent.map(() => 'accept'),
  )
  for (const b of sent) assert.ok(b.byteLength <= MAX_BATCH_BYTES, `a batch of ${b.byteLength} bytes exceeds ${MAX_BATCH_BYTES}`)
}

describe('tx batches with transactions of 256 bytes or more', () => {
  it('a batch of queued transactions fits the receiver bound', async () => {
    const tx = loopback()
    const gossip = new TxGossip(
      { flushMs: 60_000 },
      { gossip: tx.transport, admit: (): AdmitResult => ({ ok: true, value: undefined }), logger: silentLogger() },
    )
    await gossip.start()
    for (const t of filledBatch()) gossip.broadcast(t)
    await gossip.stop()
    await assertReceiversAccept(tx.sent)
  })

  it('the pending transactions sent to a peer that connects fit the receiver bound', async () => {
    const tx = loopback()
    const gossip = new TxGossip({}, { gossip: tx.transport, admit: (): AdmitResult => ({ ok: true, value: undefined }), logger: silentLogger() })
    await gossip.start()
    const txs = filledBatch()
    gossip.sendPending('peer', () => ({ txs, mark: 1 }))
    await gossip.stop()
    await assertReceiversAccept(tx.sent)
  })
})
