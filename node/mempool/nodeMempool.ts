import { toHex } from '../../crypto/bytes.js'
import type { Genesis } from '../../genesis/genesis.js'
import type { NodeConfig } from '../../genesis/config.js'
import { voteProblem } from '../../ledger/governance.js'
import type { LedgerState } from '../../ledger/ledgerState.js'
import { senderAddress, type DecodedTransaction } from '../../ledger/transaction.js'
import type { VerifiedTxCache } from '../../ledger/verifiedTxCache.js'
import type { Logger } from '../logger.js'
import { Mempool, type MempoolDependencies } from './mempool.js'
import type { RejectedTxs } from './rejectedTxs.js'

/** What the node's mempool reads and reports to. */
export interface NodeMempoolDependencies {
  readonly ledger: LedgerState
  readonly verified: VerifiedTxCache
  readonly verifySignature: (d: DecodedTransaction) => Promise<boolean>
  /** The committed tip's height: a governance vote is checked as the next block would count it. */
  readonly tipHeight: () => number
  /** Where every transaction that leaves the pool other than by commit is remembered, with its reason. */
  readonly rejected: RejectedTxs
  readonly logger: Logger
}

/**
 * The mempool's check of a governance vote: what the ledger would say of it in the block after the tip (or after the
 * state, when a synced run put the ledger ahead of the tip: `voteProblem`).
 */
export function governanceCheck(ledger: LedgerState, tipHeight: () => number, genesis: Genesis): NonNullable<MempoolDependencies['checkGovernance']> {
  return (tx) => {
    const state = ledger.governance()
    if (state === undefined) return { code: 'not_validator', reason: 'no governance state' }
    return voteProblem(state, tipHeight(), senderAddress(tx), tx.action, genesis.params.governance)
  }
}

/**
 * The mempool of a running node: the config's limits, accounts read from the ledger, governance votes admitted only if
 * the ledger would count them, and every drop other than a commit recorded as a rejection (which `tx_get` reports).
 */
export function nodeMempool(config: NodeConfig['mempool'], genesis: Genesis, d: NodeMempoolDependencies): Mempool {
  return new Mempool(
    {
      chainId: genesis.chainId,
      maxTxs: config.maxTxs,
      maxBytes: config.maxBytes,
      maxFuturePerSender: config.maxFuturePerSender,
      maxTxsPerSender: config.maxTxsPerSender,
      maxBytesPerSender: config.maxBytesPerSender,
      gappedSharePercent: config.gappedSharePercent,
      gappedExpiryHeights: config.gappedExpiryHeights,
    },
    {
      accounts: d.ledger,
      verifiedSignatures: d.verified,
      logger: d.logger,
      verifySignature: d.verifySignature,
      checkGovernance: governanceCheck(d.ledger, d.tipHeight, genesis),
      onRemoved: (hash, removal) => {
        if (removal.code === 'committed') return
        d.rejected.add(hash, removal.code, removal.reason)
        // evictions and expiries come in floods under abuse; one line each at info would drown the log
        const level = removal.code === 'evicted' || removal.code === 'expired' ? 'debug' : 'info'
        d.logger[level]({ tx: toHex(hash), code: removal.code }, `transaction dropped from the mempool: ${removal.reason}`)
      },
    },
  )
}
