import { bytesEqual, toHex } from '../../crypto/bytes.js'
import { txHash } from '../../ledger/transaction.js'
import type { Logger } from '../logger.js'
import type { SyncTransport } from './blockSync.js'
import { decodeTxFetchRequest, decodeTxFetchResponse, encodeTxFetchRequest, encodeTxFetchResponse } from './txFetchMessages.js'

/**
 * Transaction fetch (`/tally/txs/1`): a validator rebuilding a proposed block from its mempool asks for the
 * transactions it lacks, the block's proposer first, then every other connected peer; it serves the same requests
 * from its mempool and the blocks its consensus host is working on. An answer is kept only for a hash it matches: a
 * peer that answers a hash with another transaction lied (an honest one looks each up by its hash), is penalised, and
 * the next peer is asked. Hashes are asked {@link MAX_HASHES_PER_REQUEST} at a time.
 */

export const TX_FETCH_PROTOCOL = '/tally/txs/1'

/**
 * Most hashes asked in one request: 34 bytes each on the wire, ~557 KB, within the p2p layer's 1 MiB requests (a
 * block may hold 50,000 transactions).
 */
export const MAX_HASHES_PER_REQUEST = 16_384

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
      for (let start = 0; start < missing.length; start += MAX_HASHES_PER_REQUEST) {
        const part = missing.slice(start, start + MAX_HASHES_PER_REQUEST)
        const r = await this.d.p2p.request(peer, TX_FETCH_PROTOCOL, encodeTxFetchRequest(part.map((i) => hashes[i]!)), {
          timeoutMs: this.o.timeoutMs ?? 3_000,
          maxResponseBytes: this.o.maxResponseBytes,
        })
        if (!r.ok) break
        const txs = decodeTxFetchResponse(r.value, part.length, this.o.maxResponseBytes)
        if (!txs) {
          this.d.p2p.penalize(peer, 10, 'malformed transaction fetch response')
          break
        }
        if (!this.take(part, txs, hashes, out)) {
          this.d.p2p.penalize(peer, 10, 'transaction fetch answered with another transaction')
          break
        }
      }
    }
    const found = out.filter((t) => t !== undefined).length
    if (found < hashes.length) this.d.logger.debug({ wanted: hashes.length, found, proposer: toHex(proposer) }, 'transaction fetch incomplete')
    return out
  }

  /**
   * Keeps each answer `txs[k]` to the hash `hashes[part[k]]` that it matches (empty answers: not held); false when one
   * is of another transaction, which only a lying peer sends.
   */
  private take(part: readonly number[], txs: readonly Uint8Array[], hashes: readonly Uint8Array[], out: (Uint8Array | undefined)[]): boolean {
    for (let k = 0; k < part.length; k++) {
      const tx = txs[k]!
      if (tx.byteLength === 0) continue
      if (!bytesEqual(txHash(tx), hashes[part[k]!]!)) return false
      out[part[k]!] = tx
    }
    return true
  }
}
