/**
 * What a run (or a campaign of runs) exercised: the lock situations of Tendermint that only adversarial schedules
 * reach, and the host paths that only faults reach. Printed with every campaign, so a campaign that stopped reaching
 * them shows it.
 */
export interface Coverage {
  /** Honest validators that locked on a value after having locked on another at the same height. */
  relocks: number
  /** Honest prevotes for a value other than the voter's lock, released by a newer polka (L28). */
  l28Unlocks: number
  /** Heights at which two running honest validators held locks on different values. */
  readonly divergingLockHeights: Set<number>
  /** Highest round an honest validator reached. */
  maxRound: number
  /** Honest verdicts that a proposed value is invalid. */
  invalidVerdicts: number
  /** Consensus messages honest admissions refused (and penalized). */
  refused: number
  /** Penalties honest validators gave peers (bad sync or fetch responses, bad gossip). */
  penalties: number
  /** Equivocation evidence honest validators reported. */
  evidence: number
  crashes: number
  restarts: number
  /** Blocks honest validators applied from block sync. */
  syncedBlocks: number
  /** Highest height committed. */
  heights: number
  txsCommitted: number
  /** Changes of the validator set in force at a committed height. */
  setChanges: number
  /** Changes of the validator set the run's plan holds. */
  setChangesPlanned: number
}

export function emptyCoverage(): Coverage {
  return {
    relocks: 0,
    l28Unlocks: 0,
    divergingLockHeights: new Set(),
    maxRound: 0,
    invalidVerdicts: 0,
    refused: 0,
    penalties: 0,
    evidence: 0,
    crashes: 0,
    restarts: 0,
    syncedBlocks: 0,
    heights: 0,
    txsCommitted: 0,
    setChanges: 0,
    setChangesPlanned: 0,
  }
}

/** A campaign's totals: sums, with the diverging-lock heights counted per run and the highest round the maximum. */
export interface CoverageTotals {
  runs: number
  relocks: number
  l28Unlocks: number
  divergingLocks: number
  /** Runs with at least one relock, L28 unlock and diverging lock. */
  runsWithRelock: number
  runsWithUnlock: number
  runsWithDivergence: number
  maxRound: number
  invalidVerdicts: number
  refused: number
  penalties: number
  evidence: number
  crashes: number
  restarts: number
  syncedBlocks: number
  heights: number
  txsCommitted: number
  setChanges: number
  setChangesPlanned: number
  /** Runs in which at least one set change came into force. */
  runsWithSetChanges: number
}

export function emptyTotals(): CoverageTotals {
  return {
    runs: 0,
    relocks: 0,
    l28Unlocks: 0,
    divergingLocks: 0,
    runsWithRelock: 0,
    runsWithUnlock: 0,
    runsWithDivergence: 0,
    maxRound: 0,
    invalidVerdicts: 0,
    refused: 0,
    penalties: 0,
    evidence: 0,
    crashes: 0,
    restarts: 0,
    syncedBlocks: 0,
    heights: 0,
    txsCommitted: 0,
    setChanges: 0,
    setChangesPlanned: 0,
    runsWithSetChanges: 0,
  }
}

/** Adds one run's coverage to the totals. */
export function addCoverage(t: CoverageTotals, c: Coverage): void {
  t.runs++
  t.relocks += c.relocks
  t.l28Unlocks += c.l28Unlocks
  t.divergingLocks += c.divergingLockHeights.size
  if (c.relocks > 0) t.runsWithRelock++
  if (c.l28Unlocks > 0) t.runsWithUnlock++
  if (c.divergingLockHeights.size > 0) t.runsWithDivergence++
  t.maxRound = Math.max(t.maxRound, c.maxRound)
  t.invalidVerdicts += c.invalidVerdicts
  t.refused += c.refused
  t.penalties += c.penalties
  t.evidence += c.evidence
  t.crashes += c.crashes
  t.restarts += c.restarts
  t.syncedBlocks += c.syncedBlocks
  t.heights += c.heights
  t.txsCommitted += c.txsCommitted
  t.setChanges += c.setChanges
  t.setChangesPlanned += c.setChangesPlanned
  if (c.setChanges > 0) t.runsWithSetChanges++
}

/** Adds totals to totals (merging campaign shards). */
export function mergeTotals(t: CoverageTotals, u: CoverageTotals): void {
  for (const k of Object.keys(t) as (keyof CoverageTotals)[]) t[k] = k === 'maxRound' ? Math.max(t[k], u[k]) : t[k] + u[k]
}

/** One line: the lock coverage first, then the host paths, then the set changes when any were planned. */
export function formatTotals(t: CoverageTotals): string {
  const sets = t.setChangesPlanned === 0 ? '' : `; set changes applied ${t.setChanges} of ${t.setChangesPlanned} planned (${t.runsWithSetChanges} runs)`
  return (
    `relocks ${t.relocks} (${t.runsWithRelock} runs), L28 unlocks ${t.l28Unlocks} (${t.runsWithUnlock} runs), ` +
    `diverging locks ${t.divergingLocks} (${t.runsWithDivergence} runs), max round ${t.maxRound}; ` +
    `heights ${t.heights}, transfers ${t.txsCommitted}, crashes ${t.crashes}, restarts ${t.restarts}, synced blocks ${t.syncedBlocks}, ` +
    `invalid verdicts ${t.invalidVerdicts}, refused messages ${t.refused}, penalties ${t.penalties}, evidence ${t.evidence}${sets}`
  )
}
