import { encodeCommitCertificate, type CommitCertificate } from '../../../../consensus/index.js'
import { err } from '../../../../crypto/result.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../../../ledger/block.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import { silentLogger } from '../../../../node/logger.js'
import type { RequestHandler } from '../../../../node/p2p/p2p.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import { encodeStoredBlock, type StoredBlock } from '../../../../node/storage/storedBlock.js'
import { BlockSync, type BlockSyncOptions } from '../../../../node/sync/blockSync.js'

/** The block limits of the block sync tests. */
export const limits = { maxBytes: 100_000, maxTxs: 100 }

/**
 * Stand-in blocks of the block sync tests: empty blocks linked by their heights, each with a certificate that is
 * "valid" when its round is 0 (the tests inject the verifiers), so they exercise whom sync believes and asks, not
 * signature checking. `tamper` gives block `height` another last commit, so another hash.
 */
export function block(height: number, tamper = false): { stored: StoredBlock; cert: CommitCertificate } {
  const header: BlockHeader = {
    chainId: 'tally-test',
    height,
    time: height,
    previousBlockHash: height === 1 ? ZERO_HASH : new Uint8Array(32).fill(height - 1),
    txRoot: txRoot([]),
    stateRoot: ZERO_HASH,
    proposer: new Uint8Array(20).fill(1),
    validatorSetHash: new Uint8Array(32).fill(3),
    nextValidatorSetHash: new Uint8Array(32).fill(3),
    lastCommitHash: height === 1 ? ZERO_HASH : new Uint8Array(32).fill(tamper ? 9 : 4),
    evidenceRoot: txRoot([]),
  }
  const cert: CommitCertificate = {
    height,
    round: 0,
    valueId: blockHash(header),
    signatures: [{ validator: new Uint8Array(20).fill(1), signature: new Uint8Array(64) }],
  }
  return { stored: { block: { header, txs: [], evidence: [] }, lastCommit: null }, cert }
}

/**
 * A node at height `tip` (default 5) that holds blocks 1 to `tip` and serves them: its request handlers by protocol
 * (its block sync started and stopped at once, so it fetches nothing), on the clock `now` with `sleep` (by default a
 * clock at 0 and real waits).
 */
export async function blockServer(
  o: { tip?: number; options?: Partial<BlockSyncOptions>; now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<Map<string, RequestHandler>> {
  const tip = o.tip ?? 5
  const kv = new MemoryKvStore()
  const chain = new ChainStore(kv)
  for (let x = 1; x <= tip; x++)
    await kv.write(
      chain.commitOps({
        height: x,
        blockHash: block(x).cert.valueId,
        blockTime: x,
        blockBytes: encodeStoredBlock(block(x).stored),
        certificateBytes: encodeCommitCertificate(block(x).cert),
        txHashes: [],
        receipts: [],
      }),
    )
  const handlers = new Map<string, RequestHandler>()
  const sync = new BlockSync(
    { intervalMs: 10, stuckMs: 1_000_000, window: 4, limits, ...o.options },
    {
      p2p: {
        peers: () => [],
        handle: async (protocol, handler) => {
          handlers.set(protocol, handler)
        },
        penalize: () => {},
        request: async () => ({ ok: false, error: { code: 'unreachable', reason: 'none' } }),
      },
      chain,
      logger: silentLogger(),
      tipHeight: () => tip,
      heightStartedAtMs: () => 0,
      now: o.now ?? (() => 0),
      every: () => () => {},
      sleep: o.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      verifyTip: () => 'proven',
      verifyCertified: () => true,
      check: async () => err({ code: 'not_next' as const, reason: 'not used' }),
      apply: async () => false,
    },
  )
  await sync.start()
  sync.stop()
  return handlers
}
