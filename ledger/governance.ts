import { ADDRESS_LENGTH, addressFromPublicKey } from '../crypto/address.js'
import { bytesEqual, compareBytes } from '../crypto/bytes.js'
import { decodeCanonical, encodeCanonical, type Canonical } from '../crypto/canonical.js'
import { PUBLIC_KEY_LENGTH, isAcceptablePublicKey } from '../crypto/ed25519.js'
import { sha256 } from '../crypto/hash.js'
import { err, ok, type Result } from '../crypto/result.js'
import type { TxFailureCode } from './receipt.js'

/**
 * Validator-set governance, as pure state transitions the ledger runs inside block execution.
 *
 * The state holds the validator **schedule** — the roster in force at the next height, and the one after it once a
 * change has completed — and the **pending changes** with the votes collected for each. A validator votes for a change
 * with a governance transaction; a change completes at the end of a block once validators holding more than two thirds
 * of the power in force at that block have votes on it, and applies from two heights later (H + 2 after the block H
 * that completes it), so every node knows the next height's set before it is needed and headers can commit to it.
 *
 * Limits that keep a passed change from halting the chain: a change never leaves the set empty, never exceeds
 * {@link MAX_VALIDATORS} or {@link MAX_TOTAL_POWER}, and the changes applied at one height never move more than one
 * third of the power in force before them (removed and added power, and power changes, summed); a change that would
 * is staged: it stays pending, with its votes, until a later block can apply it. Votes expire after
 * `voteExpiryHeights`; each validator has at most `maxOpenVotes` open votes, so the pending list stays bounded.
 * Committed evidence against a validator may force its removal (`removeOffenders`), under the same limits.
 */

/** Most validators a set may hold. */
export const MAX_VALIDATORS = 128
/** Bound on the total voting power, so 3 × total stays a safe integer with room to spare. */
export const MAX_TOTAL_POWER = Math.floor(Number.MAX_SAFE_INTEGER / 8)
/** Validator names: 1-64 characters of [A-Za-z0-9._-], starting alphanumeric. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** libp2p peer ids as text: base58btc (`12D3KooW…`, `Qm…`), 32-128 characters. The node checks them fully. */
export const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{32,128}$/

/** A member of a validator set as the ledger keeps it. */
export interface Member {
  readonly address: Uint8Array
  readonly publicKey: Uint8Array
  readonly power: number
  readonly peerId: string
  readonly name: string
}

/** A validator set: members in address byte order. */
export type Roster = readonly Member[]

/** A change to the validator set. */
export type GovernanceAction =
  | { readonly type: 'add'; readonly publicKey: Uint8Array; readonly power: number; readonly peerId: string; readonly name: string }
  | { readonly type: 'remove'; readonly address: Uint8Array }
  | { readonly type: 'power'; readonly address: Uint8Array; readonly power: number }

/** A change waiting for votes (or, staged, for room under the limits). */
export interface PendingChange {
  /** {@link actionId} of the action. */
  readonly id: Uint8Array
  readonly action: GovernanceAction
  /** Who voted and at which height, in address order. */
  readonly votes: readonly { readonly address: Uint8Array; readonly height: number }[]
  /** A removal forced by committed evidence: it needs no votes. */
  readonly forced: boolean
}

/** The governance part of the ledger state. */
export interface GovernanceState {
  /** Rosters and the height from which each is in force, ascending; the first is in force at the next height. */
  readonly schedule: readonly { readonly fromHeight: number; readonly roster: Roster }[]
  /** In id order. */
  readonly pending: readonly PendingChange[]
}

/** Genesis parameters of governance. */
export interface GovernanceParams {
  /** A vote counts for this many heights after the block that carried it. */
  readonly voteExpiryHeights: number
  /** Most pending changes one validator may have a vote on. */
  readonly maxOpenVotes: number
  /** Committed equivocation evidence removes the offender (default false: evidence is only recorded). */
  readonly removeOffenders: boolean
}

export const DEFAULT_GOVERNANCE_PARAMS: GovernanceParams = Object.freeze({ voteExpiryHeights: 10_000, maxOpenVotes: 8, removeOffenders: false })

/** The transaction failure codes (ledger/receipt.ts) a governance vote can fail with beyond those of every transaction. */
export const GOVERNANCE_FAILURE_CODES = ['not_validator', 'bad_action', 'too_many_proposals'] as const satisfies readonly TxFailureCode[]

/** Why a governance vote does not apply. */
export type GovernanceFailureCode = (typeof GOVERNANCE_FAILURE_CODES)[number]

/** A refused governance vote: its code and the facts that explain it. */
export interface GovernanceError {
  readonly code: GovernanceFailureCode
  readonly reason: string
}

// ---- encodings -------------------------------------------------------------------------------------------

const A_ADD = 1
const A_REMOVE = 2
const A_POWER = 3

/** The canonical tuple of an action: `[1, publicKey, power, peerId, name]`, `[2, address]`, `[3, address, power]`. */
export function actionTuple(a: GovernanceAction): Canonical {
  switch (a.type) {
    case 'add':
      return [A_ADD, a.publicKey, BigInt(a.power), a.peerId, a.name]
    case 'remove':
      return [A_REMOVE, a.address]
    case 'power':
      return [A_POWER, a.address, BigInt(a.power)]
  }
}

/** The first problem with an action's fields, or undefined. */
export function checkAction(a: GovernanceAction): string | undefined {
  const power = (p: unknown) => typeof p === 'number' && Number.isSafeInteger(p) && p >= 1 && p <= MAX_TOTAL_POWER
  switch (a.type) {
    case 'add':
      if (!(a.publicKey instanceof Uint8Array) || a.publicKey.byteLength !== PUBLIC_KEY_LENGTH || !isAcceptablePublicKey(a.publicKey))
        return 'public key must be an acceptable 32-byte Ed25519 key'
      if (!power(a.power)) return `power must be an integer from 1 to ${MAX_TOTAL_POWER}`
      if (typeof a.peerId !== 'string' || !PEER_ID_RE.test(a.peerId)) return 'peer id must be a libp2p peer id (base58btc)'
      if (typeof a.name !== 'string' || !NAME_RE.test(a.name)) return 'name must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric'
      return undefined
    case 'remove':
      return a.address instanceof Uint8Array && a.address.byteLength === ADDRESS_LENGTH ? undefined : `address must be ${ADDRESS_LENGTH} bytes`
    case 'power':
      if (!(a.address instanceof Uint8Array) || a.address.byteLength !== ADDRESS_LENGTH) return `address must be ${ADDRESS_LENGTH} bytes`
      return power(a.power) ? undefined : `power must be an integer from 1 to ${MAX_TOTAL_POWER}`
    default:
      return 'unknown action'
  }
}

/** Parses an action tuple (from a decoded transaction); undefined when it is not one. */
export function parseAction(v: unknown): GovernanceAction | undefined {
  if (!Array.isArray(v)) return undefined
  const u64 = (x: unknown) => (typeof x === 'bigint' && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : undefined)
  let a: GovernanceAction | undefined
  if (v[0] === A_ADD && v.length === 5)
    a = { type: 'add', publicKey: v[1] as Uint8Array, power: u64(v[2]) as number, peerId: v[3] as string, name: v[4] as string }
  else if (v[0] === A_REMOVE && v.length === 2) a = { type: 'remove', address: v[1] as Uint8Array }
  else if (v[0] === A_POWER && v.length === 3) a = { type: 'power', address: v[1] as Uint8Array, power: u64(v[2]) as number }
  return a !== undefined && checkAction(a) === undefined ? a : undefined
}

/** The id of an action: what votes for "the same change" agree on. */
export function actionId(a: GovernanceAction): Uint8Array {
  return sha256(encodeCanonical(['tally/gov-action/v1', actionTuple(a)]))
}

function memberTuple(m: Member): Canonical {
  return [m.address, m.publicKey, BigInt(m.power), m.peerId, m.name]
}

/**
 * The governance record: `canonical([schedule, pending])` with schedule `[[fromHeight, [member...]]...]`, member
 * `[address, publicKey, power, peerId, name]`, pending `[[actionTuple, [[address, height]...], forced]...]`.
 */
export function encodeGovernanceState(s: GovernanceState): Uint8Array {
  return encodeCanonical([
    s.schedule.map((e) => [BigInt(e.fromHeight), e.roster.map(memberTuple)]),
    s.pending.map((p) => [actionTuple(p.action), p.votes.map((v) => [v.address, BigInt(v.height)]), p.forced]),
  ])
}

/** Decodes the governance record; it only ever comes from this node's own store, so anything else throws. */
export function decodeGovernanceState(bytes: Uint8Array): GovernanceState {
  const corrupt = () => new Error('state corrupt: the governance record does not decode')
  const d = decodeCanonical(bytes, 16 * 1024 * 1024)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 2) throw corrupt()
  const [schedule, pending] = d.value as unknown[]
  if (!Array.isArray(schedule) || !Array.isArray(pending)) throw corrupt()
  return {
    schedule: schedule.map((e) => {
      const [from, roster] = e as [bigint, unknown[]]
      return {
        fromHeight: Number(from),
        roster: roster.map((m) => {
          const [address, publicKey, power, peerId, name] = m as [Uint8Array, Uint8Array, bigint, string, string]
          return { address, publicKey, power: Number(power), peerId, name }
        }),
      }
    }),
    pending: pending.map((p) => {
      const [tuple, votes, forced] = p as [unknown, [Uint8Array, bigint][], boolean]
      const action = parseAction(tuple)
      if (action === undefined) throw corrupt()
      return { id: actionId(action), action, votes: votes.map(([address, height]) => ({ address, height: Number(height) })), forced }
    }),
  }
}

// ---- queries ---------------------------------------------------------------------------------------------

/** The roster in force at `height` (the latest schedule entry from at or below it). */
export function rosterAt(s: GovernanceState, height: number): Roster {
  let r: Roster | undefined
  for (const e of s.schedule) if (e.fromHeight <= height) r = e.roster
  if (r === undefined) throw new Error(`no validator set is scheduled at height ${height}`)
  return r
}

/** The member of a roster with this address, if any. */
export function memberOf(roster: Roster, address: Uint8Array): Member | undefined {
  return roster.find((m) => bytesEqual(m.address, address))
}

/** Total power of a roster. */
export function totalPower(roster: Roster): bigint {
  let t = 0n
  for (const m of roster) t += BigInt(m.power)
  return t
}

/** The initial state: the genesis roster in force from height 1, nothing pending. */
export function genesisGovernance(members: readonly Member[]): GovernanceState {
  return { schedule: [{ fromHeight: 1, roster: sortRoster(members) }], pending: [] }
}

function sortRoster(members: readonly Member[]): Roster {
  return [...members].sort((a, b) => compareBytes(a.address, b.address))
}

// ---- transitions -----------------------------------------------------------------------------------------

/** The roster an action makes of `roster`, or why it cannot apply to it. */
export function applyAction(roster: Roster, a: GovernanceAction): Result<Roster, GovernanceError & { readonly code: 'bad_action' }> {
  const fail = (reason: string) => err({ code: 'bad_action' as const, reason })
  switch (a.type) {
    case 'add': {
      const address = addressFromPublicKey(a.publicKey)
      if (roster.some((m) => bytesEqual(m.address, address))) return fail('the key is already a validator')
      if (roster.some((m) => m.peerId === a.peerId)) return fail('the peer id belongs to another validator')
      if (roster.some((m) => m.name === a.name)) return fail('the name belongs to another validator')
      if (roster.length >= MAX_VALIDATORS) return fail(`the set already holds ${MAX_VALIDATORS} validators`)
      if (totalPower(roster) + BigInt(a.power) > BigInt(MAX_TOTAL_POWER)) return fail('the total power would exceed its bound')
      return ok(sortRoster([...roster, { address, publicKey: a.publicKey, power: a.power, peerId: a.peerId, name: a.name }]))
    }
    case 'remove': {
      if (memberOf(roster, a.address) === undefined) return fail('not a validator')
      if (roster.length === 1) return fail('the set would be empty')
      return ok(roster.filter((m) => !bytesEqual(m.address, a.address)))
    }
    case 'power': {
      const m = memberOf(roster, a.address)
      if (m === undefined) return fail('not a validator')
      if (m.power === a.power) return fail('the power is unchanged')
      if (totalPower(roster) - BigInt(m.power) + BigInt(a.power) > BigInt(MAX_TOTAL_POWER)) return fail('the total power would exceed its bound')
      return ok(roster.map((x) => (x === m ? { ...m, power: a.power } : x)))
    }
  }
}

/**
 * Power moved between two rosters: added, removed and changed power, summed. One walk over both in address order (as
 * governance keeps them; a roster listed otherwise is walked as a sorted copy), so a vote, which computes it for the
 * whole set, costs time linear in the set's size.
 */
export function movedPower(from: Roster, to: Roster): bigint {
  const a = inAddressOrder(from) ? from : sortRoster(from)
  const b = inAddressOrder(to) ? to : sortRoster(to)
  let moved = 0
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const c = i === a.length ? 1 : j === b.length ? -1 : compareBytes(a[i]!.address, b[j]!.address)
    if (c < 0) moved += a[i++]!.power
    else if (c > 0) moved += b[j++]!.power
    else moved += Math.abs(a[i++]!.power - b[j++]!.power)
  }
  return BigInt(moved)
}

/** Whether a roster's members are in strictly ascending address order. */
function inAddressOrder(roster: Roster): boolean {
  let last: Uint8Array | undefined
  for (const m of roster) {
    if (last !== undefined && compareBytes(last, m.address) >= 0) return false
    last = m.address
  }
  return true
}

/**
 * A validator's vote for an action, carried by a governance transaction in block `height`. The voter must be a
 * validator at that height; the action must apply to the latest scheduled roster; a voter has at most
 * `maxOpenVotes` open votes. Voting again for the same action renews the vote.
 */
export function castVote(
  s: GovernanceState,
  height: number,
  voter: Uint8Array,
  action: GovernanceAction,
  params: GovernanceParams,
): Result<GovernanceState, GovernanceError> {
  if (memberOf(rosterAt(s, height), voter) === undefined) return err({ code: 'not_validator', reason: 'the signer is not a validator at this height' })
  const latest = s.schedule[s.schedule.length - 1]!.roster
  const applied = applyAction(latest, action)
  if (!applied.ok) return err({ code: 'bad_action', reason: applied.error.reason })
  // a change that alone moves more than a third of the power could never apply (endBlock stages it forever)
  if (3n * movedPower(latest, applied.value) > totalPower(latest)) {
    return err({ code: 'bad_action', reason: 'the change alone moves more than a third of the power: make it in smaller steps' })
  }
  const id = actionId(action)
  const existing = s.pending.find((p) => bytesEqual(p.id, id))
  const already = existing?.votes.some((v) => bytesEqual(v.address, voter)) ?? false
  if (!already && s.pending.filter((p) => p.votes.some((v) => bytesEqual(v.address, voter))).length >= params.maxOpenVotes) {
    return err({ code: 'too_many_proposals', reason: `the signer already has ${params.maxOpenVotes} open votes` })
  }
  const votes = [...(existing?.votes ?? []).filter((v) => !bytesEqual(v.address, voter)), { address: voter, height }].sort((a, b) =>
    compareBytes(a.address, b.address),
  )
  const change: PendingChange = { id, action, votes, forced: existing?.forced ?? false }
  // in id order: the change takes its place (a renewal, the place it held), without sorting the list again
  const pending = [...s.pending]
  if (existing !== undefined) pending[pending.indexOf(existing)] = change
  else {
    let at = 0
    while (at < pending.length && compareBytes(pending[at]!.id, id) < 0) at++
    pending.splice(at, 0, change)
  }
  return ok({ schedule: s.schedule, pending })
}

/**
 * The height after the committed state `s`, judged by a caller that knows the state's height h only from below, by
 * its tip: a node commits a synced run's blocks in its ledger before its tip moves. The state's first schedule entry
 * is the roster in force at h + 1, from its `fromHeight` on, so the later of `tipHeight + 1` and that height has the
 * roster of h + 1 whenever the tip is h or behind it.
 */
export function heightAfter(s: GovernanceState, tipHeight: number): number {
  return Math.max(tipHeight + 1, s.schedule[0]!.fromHeight)
}

/** Why a vote cast now would not count in the block after the committed state `s` ({@link heightAfter}), if not. */
export function voteProblem(
  s: GovernanceState,
  tipHeight: number,
  voter: Uint8Array,
  action: GovernanceAction,
  params: GovernanceParams,
): GovernanceError | undefined {
  const height = heightAfter(s, tipHeight)
  const r = castVote(s, height, voter, action, params)
  if (r.ok) return undefined
  return r.error.code === 'not_validator' ? { code: 'not_validator', reason: `the signer is not a validator at height ${height}` } : r.error
}

/**
 * The end of block `height`: votes past their expiry leave; evidence against `offenders` forces their removal when
 * `removeOffenders` is set; then every change with more than two thirds of the power in force at `height` (or forced)
 * is applied, in id order (forced first), to the roster of `height + 2`, unless it would break a limit (staged: it
 * stays pending) or no longer applies (dropped); finally the schedule keeps only the entries from `height + 1` on.
 */
export function endBlock(s: GovernanceState, height: number, offenders: readonly Uint8Array[], params: GovernanceParams): GovernanceState {
  const current = rosterAt(s, height)
  const base = rosterAt(s, height + 1)
  let pending: PendingChange[] = []
  for (const p of s.pending) {
    const votes = p.votes.filter((v) => height - v.height < params.voteExpiryHeights)
    if (votes.length > 0 || p.forced) pending.push(votes.length === p.votes.length ? p : { ...p, votes })
  }
  if (params.removeOffenders) {
    for (const address of offenders) {
      if (memberOf(base, address) === undefined) continue
      const action: GovernanceAction = { type: 'remove', address }
      const id = actionId(action)
      const existing = pending.find((p) => bytesEqual(p.id, id))
      pending = [...pending.filter((p) => p !== existing), { id, action, votes: existing?.votes ?? [], forced: true }]
    }
    pending.sort((a, b) => compareBytes(a.id, b.id))
  }
  const total = totalPower(current)
  const passed = (p: PendingChange) => {
    if (p.forced) return true
    let power = 0n
    for (const v of p.votes) power += BigInt(memberOf(current, v.address)?.power ?? 0)
    return 3n * power > 2n * total
  }
  let target = base
  const done = new Set<PendingChange>()
  for (const p of [...pending.filter((x) => x.forced), ...pending.filter((x) => !x.forced)]) {
    if (!passed(p)) continue
    const next = applyAction(target, p.action)
    if (!next.ok) {
      done.add(p) // it can no longer apply (e.g. the validator left meanwhile)
      continue
    }
    if (3n * movedPower(base, next.value) > totalPower(base)) continue // staged until it fits
    target = next.value
    done.add(p)
  }
  pending = pending.filter((p) => !done.has(p))
  // Before this block, the schedule reaches at most height + 1 (a change completed at the previous block).
  if (s.schedule.some((e) => e.fromHeight > height + 1)) throw new Error(`governance: the schedule reaches beyond height ${height + 1}`)
  const inForce = s.schedule.filter((e) => e.fromHeight <= height + 1).at(-1)!
  const schedule = target !== base ? [inForce, { fromHeight: height + 2, roster: target }] : [inForce]
  return { schedule, pending }
}
