import { type GovernanceState, memberOf, type Roster, totalPower } from '../../ledger/governance.js'

/**
 * The peer ids a node admits at a committed tip: the validators of the sets in force at the next two heights and of
 * every set the committed governance state schedules (the gater follows governance; the state may be ahead of the
 * tip), a validator whose addition is pending with votes of more than a third of the power in force at the next
 * height (so it can sync before the change completes, and so that validators below a third of the power, all of
 * them possibly Byzantine, cannot admit identities of their own with votes no one else shares), and the peers the
 * operator allowed.
 */
export function admittedPeers(
  tipHeight: number,
  rosterAt: (height: number) => Roster,
  governance: GovernanceState | undefined,
  allowed: readonly string[],
): string[] {
  const next = rosterAt(tipHeight + 1)
  const scheduled = (governance?.schedule ?? []).flatMap((e) => e.roster)
  const validators = [...next, ...rosterAt(tipHeight + 2), ...scheduled].map((m) => m.peerId)
  const total = totalPower(next)
  const pending: string[] = []
  for (const p of governance?.pending ?? []) {
    if (p.action.type !== 'add') continue
    let power = 0n
    for (const v of p.votes) power += BigInt(memberOf(next, v.address)?.power ?? 0)
    if (3n * power > total) pending.push(p.action.peerId)
  }
  return [...new Set([...validators, ...pending, ...allowed])]
}
