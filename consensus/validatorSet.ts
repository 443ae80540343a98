import {
  ADDRESS_LENGTH,
  PUBLIC_KEY_LENGTH,
  addressFromPublicKey,
  bytesEqual,
  compareBytes,
  encodeCanonical,
  err,
  ok,
  sha256,
  toHex,
  type Result,
} from '../crypto/index.js'
import type { Validator, ValidatorSet } from './types.js'

/**
 * Validator sets: construction and checks, exact power thresholds and the proposer sequence.
 * Powers are summed as bigints, so thresholds are exact for any set of safe-integer powers.
 */

/** Every code a validator set failure can carry. */
export const VALIDATOR_SET_ERROR_CODES = ['invalid_validator_set'] as const

/** Why a list of validators is not a usable set. */
export interface ValidatorSetError {
  readonly code: (typeof VALIDATOR_SET_ERROR_CODES)[number]
  readonly reason: string
}

/** Upper bound on the number of validators (keeps certificates and vote sets bounded). */
export const MAX_VALIDATORS = 1000

/** SHA-256 of the canonical list of [address, publicKey, power] in address order. */
export function validatorSetHash(validators: readonly Validator[]): Uint8Array {
  const sorted = [...validators].sort((a, b) => compareBytes(a.address, b.address))
  return sha256(encodeCanonical(sorted.map((v) => [v.address, v.publicKey, BigInt(v.power)])))
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a
}

/**
 * The stride of the proposer sequence: the first integer at or above T·(√5−1)/2 that is coprime with T.
 * Multiplying the slot number by it spreads consecutive slots evenly over [0, T) (Fibonacci hashing), and
 * being coprime makes slot ↦ slot·stride mod T a permutation, so every validator gets exactly `power`
 * of each T consecutive slots.
 */
function strideFor(total: bigint): bigint {
  let a = (total * 618033988749895n) / 1000000000000000n
  if (a === 0n) a = 1n
  while (gcd(a, total) !== 1n) a++
  return a
}

/**
 * Builds a validator set: every address must be the one derived from its public key, powers positive safe
 * integers, no address twice, 1 to MAX_VALIDATORS members. The result is sorted by address bytes.
 */
export function createValidatorSet(validators: readonly Validator[]): Result<ValidatorSet, ValidatorSetError> {
  const fail = (reason: string) => err<ValidatorSetError>({ code: 'invalid_validator_set', reason })
  if (!Array.isArray(validators) || validators.length === 0) return fail('a validator set needs at least one validator')
  if (validators.length > MAX_VALIDATORS) return fail(`more than ${MAX_VALIDATORS} validators`)
  const sorted: Validator[] = []
  for (const v of validators) {
    if (!(v.publicKey instanceof Uint8Array) || v.publicKey.byteLength !== PUBLIC_KEY_LENGTH) return fail('public key must be 32 bytes')
    if (!(v.address instanceof Uint8Array) || v.address.byteLength !== ADDRESS_LENGTH) return fail('address must be 20 bytes')
    if (!bytesEqual(v.address, addressFromPublicKey(v.publicKey))) return fail(`address ${toHex(v.address)} does not match its public key`)
    if (!Number.isSafeInteger(v.power) || v.power < 1) return fail(`power of ${toHex(v.address)} must be a positive safe integer`)
    sorted.push({ address: new Uint8Array(v.address), publicKey: new Uint8Array(v.publicKey), power: v.power })
  }
  sorted.sort((a, b) => compareBytes(a.address, b.address))
  const indexByAddress: Record<string, number> = {}
  let total = 0n
  let unit = 0n
  for (let i = 0; i < sorted.length; i++) {
    unit = gcd(BigInt(sorted[i]!.power), unit)
    const key = toHex(sorted[i]!.address)
    if (indexByAddress[key] !== undefined) return fail(`validator ${key} appears twice`)
    indexByAddress[key] = i
    total += BigInt(sorted[i]!.power)
  }
  return ok({
    validators: sorted,
    totalPower: total,
    hash: validatorSetHash(sorted),
    indexByAddress,
    proposerUnit: unit,
    proposerStride: strideFor(total / unit),
  })
}

/** The validator with this address, or undefined for a non-member. */
export function findValidator(set: ValidatorSet, address: Uint8Array): Validator | undefined {
  const i = set.indexByAddress[toHex(address)]
  return i === undefined ? undefined : set.validators[i]
}

/** The 2f+1 threshold: true when `power` is more than two thirds of the set's total power. */
export function isTwoThirds(set: ValidatorSet, power: bigint): boolean {
  return power * 3n > set.totalPower * 2n
}

/** The f+1 threshold: true when `power` is more than one third of the set's total power. */
export function isOneThird(set: ValidatorSet, power: bigint): boolean {
  return power * 3n > set.totalPower
}

/**
 * The proposer of (height, round): a deterministic function of the set, weighted by power and rotating with
 * both height and round. Slot k = height + round; the point (k · stride) mod totalPower falls in exactly one
 * validator's interval of the cumulative powers (address order), all powers divided by their greatest common
 * divisor u. Over any totalPower/u consecutive slots each validator proposes exactly power/u times, and the
 * golden-ratio stride interleaves them; with equal powers any n consecutive rounds see n different proposers.
 */
export function proposerIndex(set: ValidatorSet, height: number, round: number): number {
  const k = BigInt(height) + BigInt(round)
  let point = (k * set.proposerStride) % (set.totalPower / set.proposerUnit)
  for (let i = 0; i < set.validators.length; i++) {
    const p = BigInt(set.validators[i]!.power) / set.proposerUnit
    if (point < p) return i
    point -= p
  }
  throw new Error('proposerIndex: point outside the total power (broken validator set)')
}

/** The proposer validator of (height, round). */
export function proposerOf(set: ValidatorSet, height: number, round: number): Validator {
  return set.validators[proposerIndex(set, height, round)]!
}
