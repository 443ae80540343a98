import { toHex } from '../../crypto/bytes.js'
import type { Logger } from '../logger.js'
import type { SyncTransport } from './blockSync.js'
import { decodeTxFetchRequest, decodeTxFetchResponse, encodeTxFetchRequest, encodeTxFetchResponse } from './txFetchMessages.js'

/**
 * Transaction fetch (`/tally/txs/1`): a validator rebuilding a proposed block from its mempool asks for the
 * transactions it lacks, the block's proposer first, then every other connected peer; it serves the same requests
 * from its mempool and the blocks its consensus host is working on. Whatever comes back is only a candidate: the
 * caller checks each transaction's hash against the one it asked for.
 */

export const TX_FETCH_PROTOCOL = '/tally/txs/1'

export interface TxFetchOptions {
  /** Most hashes in one request (the block's transaction limit). */
  readonly maxTxs: number
  /** Largest response accepted. */
  readonly maxResponseBytes: number
  readonly timeoutMs?: number
}

export interface TxFetchDependencies {
  /** The request transport ({@link SyncTransport}: the node's p2p layer, or a simulation's network). */
  readonly p2p: SyncTransport
  /** The peer id of a validator address (hex), for asking the proposer first. */
  readonly peerOfAddress: (address: Uint8Array) => string | undefined
  readonly logger: Logger
}

export class TxFetch {
  constructor(
    private readonly o: TxFetchOptions,
    private readonly d: TxFetchDependencies,
  ) {}

  /** Serves peers' requests from `lookup` (the wire bytes of a transaction this node holds). Call after p2p started. */
  async start(lookup: (hash: Uint8Array) => Uint8Array | undefined): Promise<void> {
    await this.d.p2p.handle(TX_FETCH_PROTOCOL, (req) => {
      const hashes = decodeTxFetchRequest(req, this.o.maxTxs)
      if (hashes === undefined) throw new Error('malformed transaction fetch request')
      return encodeTxFetchResponse(hashes.map((h) => lookup(h) ?? new Uint8Array(0)))
    })
  }

  /** Asks peers for transactions by hash, the proposer first; undefined where nobody had one. */
  async fetch(hashes: readonly Uint8Array[], proposer: Uint8Array): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(hashes.length).fill(undefined)
    const first = this.d.peerOfAddress(proposer)
    const peers = this.d.p2p.peers()
    const order = [...(first !== undefined && peers.includes(first) ? [first] : []), ...peers.filter((p) => p !== first)]
    for (const peer of order) {
      const missing = out.map((t, i) => (t === undefined ? i : -1)).filter((i) => i >= 0)
      if (missing.length === 0) break
      const r = await this.d.p2p.request(peer, TX_FETCH_PROTOCOL, encodeTxFetchRequest(missing.map((i) => hashes[i]!)), {
        timeoutMs: this.o.timeoutMs ?? 3_000,
        maxResponseBytes: this.o.maxResponseBytes,
      })
      if (!r.ok) continue
      const txs = decodeTxFetchResponse(r.value, missing.length, this.o.maxResponseBytes)
      if (!txs) {
        this.d.p2p.penalize(peer, 10, 'malformed transaction fetch response')
        continue
      }
      missing.forEach((i, k) => {
        if (txs[k]!.byteLength > 0) out[i] = txs[k]
      })
    }
    const found = out.filter((t) => t !== undefined).length
    if (found < hashes.length) this.d.logger.debug({ wanted: hashes.length, found, proposer: toHex(proposer) }, 'transaction fetch incomplete')
    return out
  }
}
