import { toHex } from '../crypto/bytes.js'
import type { Metrics } from '../rpc/metrics.js'
import type { CommittedBlock } from './host/consensusHost.js'
import type { Logger } from './logger.js'

/** A durable block in the metrics and the log (one info line per height); `durationMs` is since the previous one. */
export function reportCommitted(b: CommittedBlock, durationMs: number, metrics: Metrics, logger: Logger): void {
  let okCount = 0
  for (const r of b.receipts) if (r.ok) okCount++
  metrics.height.set(b.height)
  metrics.round.set(b.round)
  metrics.txsCommitted.inc({ outcome: 'ok' }, okCount)
  if (b.receipts.length > okCount) metrics.txsCommitted.inc({ outcome: 'failed' }, b.receipts.length - okCount)
  metrics.blockExecutionDuration.observe(b.executionMs / 1000)
  metrics.consensusStepDuration.observe({ step: 'height' }, durationMs / 1000)
  logger.info({ height: b.height, txs: b.txHashes.length, round: b.round, durationMs, hash: toHex(b.hash) }, 'committed block')
}
