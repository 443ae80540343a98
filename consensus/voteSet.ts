import { bytesEqual, compareBytes, toHex } from '../crypto/index.js'
import type { SignedVote, VoteType } from './types.js'

/**
 * A vote set: the votes of one type for one (height, round), with exact weighted tallies
 * (Malachite's vote keeper, CometBFT's VoteSet). As in the paper, a tally for a value counts every validator that
 * sent a vote for it; a validator that sends a second, different vote is an equivocator: the pair is reported
 * once as evidence, and its votes count for each value it voted for (up to MAX_VOTES_PER_VALIDATOR values, and beyond
 * that for values other validators voted for too), since
 * other correct validators may have received either. The "2f+1 of any kind" tally counts each validator once.
 * A plain value (records keyed by lowercase hex), owned and updated by the step function.
 */
export interface VoteSet {
  readonly type: VoteType
  /** The votes of each validator, by address hex: the first, then conflicting ones (bounded). */
  readonly votes: Record<string, SignedVote[]>
  /** Power voting for each value: key `valueKey(valueId)`. */
  readonly powerByValue: Record<string, bigint>
  /** Power of all validators that voted, each counted once. */
  totalPower: bigint
  /** Validators already reported for a conflicting vote in this set (reported once each). */
  readonly equivocators: Record<string, true>
}

/** Most different votes kept (and counted) per validator in one set; further ones are dropped. */
export const MAX_VOTES_PER_VALIDATOR = 3

/** The key of a value in tallies: its hex, or `nil`. */
export function valueKey(valueId: Uint8Array | null): string {
  return valueId === null ? 'nil' : toHex(valueId)
}

/** An empty set of the given type. */
export function emptyVoteSet(type: VoteType): VoteSet {
  return { type, votes: {}, powerByValue: {}, totalPower: 0n, equivocators: {} }
}

/** The outcome of adding a vote. `conflict.report` is true the first time this validator is caught in the set. */
export type AddVoteResult =
  | { readonly kind: 'added' }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'conflict'; readonly first: SignedVote; readonly report: boolean; readonly counted: boolean }

/** True when two votes say the same thing (same type, height, round, value and validator). */
export function sameVote(a: SignedVote, b: SignedVote): boolean {
  return (
    a.type === b.type &&
    a.height === b.height &&
    a.round === b.round &&
    bytesEqual(a.validator, b.validator) &&
    (a.valueId === null ? b.valueId === null : b.valueId !== null && bytesEqual(a.valueId, b.valueId))
  )
}

/** True when the set already holds exactly this vote. */
export function hasVote(set: VoteSet, vote: SignedVote): boolean {
  return (set.votes[toHex(vote.validator)] ?? []).some((v) => sameVote(v, vote))
}

/**
 * Whether {@link addVote} would count a vote not held yet: always for a validator's first votes of the step, beyond
 * {@link MAX_VOTES_PER_VALIDATOR} only for a value another vote already supports.
 */
export function wouldCount(set: VoteSet, vote: SignedVote): boolean {
  const mine = set.votes[toHex(vote.validator)]
  return mine === undefined || mine.length < MAX_VOTES_PER_VALIDATOR || (set.powerByValue[valueKey(vote.valueId)] ?? 0n) > 0n
}

/**
 * Adds a vote whose signature the caller has checked, from a validator of the given power. Updates `set` in place
 * (the step function works on its own copy of the state).
 */
export function addVote(set: VoteSet, vote: SignedVote, power: number): AddVoteResult {
  const key = toHex(vote.validator)
  const mine = set.votes[key]
  const vk = valueKey(vote.valueId)
  if (mine === undefined) {
    set.votes[key] = [vote]
    set.powerByValue[vk] = (set.powerByValue[vk] ?? 0n) + BigInt(power)
    set.totalPower += BigInt(power)
    return { kind: 'added' }
  }
  if (mine.some((v) => sameVote(v, vote))) return { kind: 'duplicate' }
  const report = set.equivocators[key] === undefined
  set.equivocators[key] = true
  // Beyond the bound, a vote still counts for a value another validator voted for: every honest node then counts it
  // once it holds that value's other votes (gossip repair re-sends a polka whole), so one equivocator cannot let a
  // polka complete at one node and never at the others. The values with such support are at most one per validator.
  const counted = wouldCount(set, vote)
  if (counted) {
    mine.push(vote)
    set.powerByValue[vk] = (set.powerByValue[vk] ?? 0n) + BigInt(power)
  }
  return { kind: 'conflict', first: mine[0]!, report, counted }
}

/** The power voting for `valueId` (null: nil). */
export function powerFor(set: VoteSet, valueId: Uint8Array | null): bigint {
  return set.powerByValue[valueKey(valueId)] ?? 0n
}

/** The votes for `valueId`, one per validator, in address order. */
export function votesFor(set: VoteSet, valueId: Uint8Array | null): SignedVote[] {
  const vk = valueKey(valueId)
  const out: SignedVote[] = []
  for (const list of Object.values(set.votes)) {
    const v = list.find((x) => valueKey(x.valueId) === vk)
    if (v !== undefined) out.push(v)
  }
  return out.sort((a, b) => compareBytes(a.validator, b.validator))
}
