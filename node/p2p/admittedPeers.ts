import type { GovernanceState, Roster } from '../../ledger/governance.js'

/**
 * The peer ids a node admits at a committed tip: the validators of the sets in force at the next two heights and of
 * every set the committed governance state schedules (the gater follows governance; the state may be ahead of the
 * tip), a validator whose addition is pending (so it can sync before the vote completes), and the peers the operator
 * allowed.
 */
export function admittedPeers(
  tipHeight: number,
  rosterAt: (height: number) => Roster,
  governance: GovernanceState | undefined,
  allowed: readonly string[],
): string[] {
  const scheduled = (governance?.schedule ?? []).flatMap((e) => e.roster)
  const validators = [...rosterAt(tipHeight + 1), ...rosterAt(tipHeight + 2), ...scheduled].map((m) => m.peerId)
  const pending = (governance?.pending ?? []).flatMap((p) => (p.action.type === 'add' ? [p.action.peerId] : []))
  return [...new Set([...validators, ...pending, ...allowed])]
}
