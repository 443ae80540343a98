import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { MAX_BLOCK_BYTES, MAX_BLOCK_TXS } from '../../../../ledger/block.js'
import { toHex } from '../../../../crypto/bytes.js'
import { txHash } from '../../../../ledger/transaction.js'
import { silentLogger } from '../../../../node/logger.js'
import { TxFetch } from '../../../../node/sync/txFetch.js'
import { Rng } from '../../../helpers/random.js'
import { startNet, type TestNet } from '../p2p/p2pNet.js'

/**
 * A genesis may allow up to MAX_BLOCK_TXS (50,000) transactions a block, and a validator rebuilding a proposed block
 * asks for every transaction it lacks in one request of 34 bytes a hash. The p2p layer refuses requests over its
 * `maxRequestBytes` (1 MiB) on both ends: past about 30,800 missing transactions the request is never sent, however
 * many peers hold them, and the validator cannot rebuild the block.
 */

describe('transaction fetch for a block of many transactions', () => {
  const nets: TestNet[] = []
  after(async () => {
    await Promise.all(nets.map((n) => n.stop()))
  })

  it('gets 40,000 missing transactions from a peer that holds them', async () => {
    // as node.ts builds its p2p layer and TxFetch for a genesis of maxTxs 50,000 and the largest blocks
    const limits = { maxTxs: MAX_BLOCK_TXS, maxBytes: MAX_BLOCK_BYTES }
    const net = await startNet(2, { maxResponseBytes: limits.maxBytes + 512 * 1024 })
    nets.push(net)
    const [fetcher, holder] = net.nodes
    const options = { maxTxs: limits.maxTxs, maxResponseBytes: limits.maxBytes + 65536 }
    const rng = new Rng(9)
    // every hash asked for is held (153 random bytes stand for a transfer: the fetcher checks only their hash)
    const held = new Map<string, Uint8Array>()
    const hashes = Array.from({ length: 40_000 }, () => {
      const bytes = rng.bytes(153)
      const hash = txHash(bytes)
      held.set(toHex(hash), bytes)
      return hash
    })
    await new TxFetch(options, { p2p: holder!, peerOfAddress: () => undefined, logger: silentLogger() }).start((h) => held.get(toHex(h)))
    const fetch = new TxFetch(options, { p2p: fetcher!, peerOfAddress: () => net.ids[1], logger: silentLogger() })
    const got = await fetch.fetch(hashes, rng.bytes(20))
    const found = got.filter((t) => t !== undefined).length
    assert.equal(found, hashes.length, `${found} of ${hashes.length} transactions fetched`)
  })
})
