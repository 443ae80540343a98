import type { GovernanceState, Roster } from '../../ledger/governance.js'

/**
 * The peer ids a node admits at a committed tip: the validators of the sets in force at the next two heights (the
 * gater follows governance), a validator whose addition is pending (so it can sync before the vote completes), and
 * the peers the operator allowed.
 */
export function admittedPeers(
  tipHeight: number,
  rosterAt: (height: number) => Roster,
  governance: GovernanceState | undefined,
  allowed: readonly string[],
): string[] {
  const validators = [...rosterAt(tipHeight + 1), ...rosterAt(tipHeight + 2)].map((m) => m.peerId)
  const pending = (governance?.pending ?? []).flatMap((p) => (p.action.type === 'add' ? [p.action.peerId] : []))
  return [...new Set([...validators, ...pending, ...allowed])]
}
