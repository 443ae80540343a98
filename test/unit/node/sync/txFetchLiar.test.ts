import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bytesEqual, ok, toHex } from '../../../../crypto/index.js'
import { createTransfer, txHash } from '../../../../ledger/transaction.js'
import { silentLogger } from '../../../../node/logger.js'
import type { RequestHandler, RequestResult } from '../../../../node/p2p/p2p.js'
import type { SyncTransport } from '../../../../node/sync/blockSync.js'
import { TX_FETCH_PROTOCOL, TxFetch } from '../../../../node/sync/txFetch.js'
import { decodeTxFetchRequest, encodeTxFetchResponse } from '../../../../node/sync/txFetchMessages.js'
import { Rng } from '../../../helpers/random.js'

/**
 * A validator rebuilding an honest proposer's block while its link to the proposer is down fetches the missing
 * transactions from its other peers. A Byzantine peer asked before the honest holder answers every hash with bytes of
 * another transaction: what it says is only a candidate, and the honest holder's answer must still be had.
 */

const CHAIN = 'tally-test'
const LIMITS = { maxTxs: 100, maxResponseBytes: 1024 * 1024 }

/** A transport of fixed peers, each answering `/tally/txs/1` with its handler. */
function transport(peers: Record<string, RequestHandler>, asked: string[]): SyncTransport {
  return {
    peers: () => Object.keys(peers),
    request: async (peer, protocol, req): Promise<RequestResult> => {
      assert.equal(protocol, TX_FETCH_PROTOCOL)
      asked.push(peer)
      return ok(await peers[peer]!(req, 'fetcher'))
    },
    handle: async () => undefined,
    penalize: () => undefined,
  }
}

/** The handler a node serving `held` installs (TxFetch.start), captured from a transport of its own. */
async function servingHandler(held: readonly Uint8Array[]): Promise<RequestHandler> {
  let handler: RequestHandler | undefined
  const serverTransport: SyncTransport = {
    peers: () => [],
    request: async () => {
      throw new Error('a server does not fetch')
    },
    handle: async (_protocol, h) => {
      handler = h
    },
    penalize: () => undefined,
  }
  const byHash = new Map(held.map((t) => [toHex(txHash(t)), t]))
  await new TxFetch(LIMITS, { p2p: serverTransport, peerOfAddress: () => undefined, logger: silentLogger() }).start((h) => byHash.get(toHex(h)))
  return handler!
}

describe('transaction fetch with a lying peer', () => {
  it('gets a transaction from an honest peer that holds it, whatever a peer asked before answers', async () => {
    const rng = new Rng(3)
    const key = rng.bytes(32)
    const wanted = createTransfer(key, { chainId: CHAIN, to: rng.bytes(20), amount: 1n, nonce: 0n }).bytes
    const decoy = createTransfer(key, { chainId: CHAIN, to: rng.bytes(20), amount: 2n, nonce: 0n }).bytes
    const liar: RequestHandler = (req) => encodeTxFetchResponse(decodeTxFetchRequest(req, LIMITS.maxTxs)!.map(() => decoy))
    const asked: string[] = []
    const fetch = new TxFetch(LIMITS, {
      // the proposer is not connected: its link to this validator is down
      p2p: transport({ liar, honest: await servingHandler([wanted]) }, asked),
      peerOfAddress: () => 'proposer',
      logger: silentLogger(),
    })
    const hash = txHash(wanted)
    const [got] = await fetch.fetch([hash], rng.bytes(20))
    assert.ok(
      got !== undefined && bytesEqual(txHash(got), hash),
      `got ${got === undefined ? 'nothing' : 'the bytes of another transaction'}; peers asked: ${asked.join(', ')}`,
    )
  })
})
