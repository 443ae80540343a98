import { bytesEqual, compareBytes, toHex } from '../crypto/index.js'
import type { SignedVote, VoteType } from './types.js'

/**
 * A vote set: the votes of one type for one (height, round), with exact weighted tallies
 * (Malachite's vote keeper, CometBFT's VoteSet). The first vote of each validator counts; an identical
 * repeat is a duplicate; a different second vote is kept aside as equivocation evidence and not counted.
 * A plain value (records keyed by lowercase hex), owned and updated by the step function.
 */
export interface VoteSet {
  readonly type: VoteType
  /** The counted vote of each validator, by address hex. */
  readonly votes: Record<string, SignedVote>
  /** Power voting for each value: key `valueKey(valueId)`. */
  readonly powerByValue: Record<string, bigint>
  /** Power of all counted votes, whatever their value. */
  totalPower: bigint
  /** Validators already reported for a conflicting vote in this set (reported once each). */
  readonly equivocators: Record<string, true>
}

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
  | { readonly kind: 'conflict'; readonly first: SignedVote; readonly report: boolean }

/** True when two votes say the same thing (same type, height, round, value and validator). */
export function sameVote(a: SignedVote, b: SignedVote): boolean {
  return a.type === b.type && a.height === b.height && a.round === b.round && bytesEqual(a.validator, b.validator) &&
    (a.valueId === null ? b.valueId === null : b.valueId !== null && bytesEqual(a.valueId, b.valueId))
}

/** The vote already counted for this validator, if any. */
export function voteOf(set: VoteSet, validator: Uint8Array): SignedVote | undefined {
  return set.votes[toHex(validator)]
}

/**
 * Adds a vote whose signature the caller has checked, from a validator of the given power. Updates `set` in place
 * (the step function works on its own copy of the state).
 */
export function addVote(set: VoteSet, vote: SignedVote, power: number): AddVoteResult {
  const key = toHex(vote.validator)
  const first = set.votes[key]
  if (first !== undefined) {
    if (sameVote(first, vote)) return { kind: 'duplicate' }
    const report = set.equivocators[key] === undefined
    set.equivocators[key] = true
    return { kind: 'conflict', first, report }
  }
  set.votes[key] = vote
  const vk = valueKey(vote.valueId)
  set.powerByValue[vk] = (set.powerByValue[vk] ?? 0n) + BigInt(power)
  set.totalPower += BigInt(power)
  return { kind: 'added' }
}

/** The power voting for `valueId` (null: nil). */
export function powerFor(set: VoteSet, valueId: Uint8Array | null): bigint {
  return set.powerByValue[valueKey(valueId)] ?? 0n
}

/** The counted votes for `valueId`, in address order. */
export function votesFor(set: VoteSet, valueId: Uint8Array | null): SignedVote[] {
  const vk = valueKey(valueId)
  return Object.values(set.votes)
    .filter((v) => valueKey(v.valueId) === vk)
    .sort((a, b) => compareBytes(a.validator, b.validator))
}
