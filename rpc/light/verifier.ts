import { bytesEqual, toHex } from '../../crypto/bytes.js'
import { err, ok, type Result } from '../../crypto/result.js'
import { createValidatorSet, verifyCommit, verifyCommitTrusting, type ValidatorSet } from '../../consensus/index.js'
import type { Genesis } from '../../genesis/genesis.js'
import { blockHash, type BlockHeader } from '../../ledger/block.js'
import type { LightBlock } from './lightBlock.js'

/**
 * Light-client verification, pure: the rules that decide whether a header may be trusted given one already trusted,
 * in the manner of CometBFT's light client. No I/O and no clock: the caller passes `now`.
 *
 * - **Adjacent** (height h + 1 after trusted h): the header's `validatorSetHash` must be the trusted header's
 *   `nextValidatorSetHash` and its `previousBlockHash` the trusted hash; validators holding more than two thirds of
 *   that set's power signed its commit.
 * - **Non-adjacent** (skipping): validators of the trusted header's next set holding more than the trust level (one
 *   third by default) of its power signed the new commit, so at least one of them is honest if less than that much
 *   of the set is faulty; and the new header's own set, checked against its `validatorSetHash`, signed with more than
 *   two thirds. When the first check fails the caller bisects (verifies a header in between first).
 * - **Trusting period**: a trusted header older than the period is no longer a basis for anything (validators that
 *   have since left could sign a fork without consequence); headers may not be ahead of `now` by more than the drift.
 * - **Backwards**: an older header is trusted when its hash is the `previousBlockHash` of a trusted one.
 */

/** A fraction, exact. */
export interface Fraction {
  readonly numerator: bigint
  readonly denominator: bigint
}

/** The default trust level of skipping verification: one third. */
export const DEFAULT_TRUST_LEVEL: Fraction = Object.freeze({ numerator: 1n, denominator: 3n })
/** The default trusting period: two weeks. */
export const DEFAULT_TRUSTING_PERIOD_MS = 14 * 24 * 3600 * 1000
/** The default tolerance for a header time ahead of the local clock. */
export const DEFAULT_MAX_CLOCK_DRIFT_MS = 10_000

/**
 * A block the light client trusts: one it verified, or its starting point. The genesis is the trusted block of
 * height 0: no header, its time the genesis time, its validators the set of height 1.
 */
export interface TrustedBlock {
  readonly chainId: string
  /** 0 for the genesis. */
  readonly height: number
  /** Block time (the genesis time for the genesis), unix ms. */
  readonly time: number
  /** The header; null for the genesis. */
  readonly header: BlockHeader | null
  /** The block hash; null for the genesis. */
  readonly hash: Uint8Array | null
  /** Hash of the validator set of height + 1. */
  readonly nextValidatorSetHash: Uint8Array
  /** That set, when the client holds it (its hash checked against {@link nextValidatorSetHash}). */
  readonly nextValidators?: ValidatorSet
}

/** What a verification needs besides the blocks. */
export interface VerifyOptions {
  /** The local clock, unix ms. */
  readonly now: number
  readonly trustingPeriodMs: number
  readonly maxClockDriftMs: number
  /** Skipping verification's threshold over the trusted next set; from 1/3 to 1. */
  readonly trustLevel: Fraction
}

/**
 * Every reason a header is not trusted:
 * - `expired`: the trusted block is older than the trusting period; nothing can be verified from it (a local
 *   condition: the user must pin a newer trusted block);
 * - `not_enough_trust`: skipping verification could not rely on the trusted set (too few of its validators signed);
 *   verify a header in between first;
 * - `invalid`: the header, its set or its commit is wrong: whoever sent it sent a lie (or a fork).
 */
export const VERIFICATION_ERROR_CODES = ['expired', 'not_enough_trust', 'invalid'] as const

/** Why a header is not trusted: a code from {@link VERIFICATION_ERROR_CODES} and the facts. */
export interface VerificationError {
  readonly code: (typeof VERIFICATION_ERROR_CODES)[number]
  readonly reason: string
}

/** A verification outcome. */
export type Verification = Result<void, VerificationError>

const okResult: Verification = Object.freeze(ok(undefined))
const invalid = (reason: string): Verification => err({ code: 'invalid', reason })

/** The trusted block a genesis stands for: height 0, the genesis time, the genesis validators as the next set. */
export function trustedGenesis(genesis: Genesis): TrustedBlock {
  const set = createValidatorSet(genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power })))
  if (!set.ok) throw new RangeError(`the genesis validators are not a valid set: ${set.error.reason}`)
  return {
    chainId: genesis.chainId,
    height: 0,
    time: genesis.genesisTimeMs,
    header: null,
    hash: null,
    nextValidatorSetHash: set.value.hash,
    nextValidators: set.value,
  }
}

/**
 * The trusted block of a verified light block. `validators` is its own set (already checked against the header):
 * when the header says the next set is the same, it is kept as the next set too.
 */
export function trustedBlockOf(block: LightBlock, validators?: ValidatorSet): TrustedBlock {
  const h = block.header
  const next = validators !== undefined && bytesEqual(validators.hash, h.nextValidatorSetHash) ? validators : undefined
  return {
    chainId: h.chainId,
    height: h.height,
    time: h.time,
    header: h,
    hash: block.hash,
    nextValidatorSetHash: h.nextValidatorSetHash,
    ...(next === undefined ? {} : { nextValidators: next }),
  }
}

/** The trusted block with its next set attached, once that set's hash is checked. Undefined when the hash differs. */
export function withNextValidators(trusted: TrustedBlock, set: ValidatorSet): TrustedBlock | undefined {
  return bytesEqual(set.hash, trusted.nextValidatorSetHash) ? { ...trusted, nextValidators: set } : undefined
}

/** True when the trusted block is too old to verify anything from (time + trusting period at or before now). */
export function isExpired(trusted: TrustedBlock, now: number, trustingPeriodMs: number): boolean {
  return trusted.time + trustingPeriodMs <= now
}

/** Checks a trust level is one CometBFT allows: from 1/3 to 1. */
export function validTrustLevel(t: Fraction): boolean {
  return t.denominator > 0n && t.numerator * 3n >= t.denominator && t.numerator <= t.denominator
}

function describeHeight(block: LightBlock): string {
  return `header ${block.header.height}`
}

/** The checks every verification shares: the chain, the order of heights and times, the clock, the header's own set. */
function checkNewHeader(trusted: TrustedBlock, untrusted: LightBlock, validators: ValidatorSet, o: VerifyOptions): Verification {
  if (isExpired(trusted, o.now, o.trustingPeriodMs)) {
    return err({
      code: 'expired',
      reason: `the trusted block at height ${trusted.height} (time ${new Date(trusted.time).toISOString()}) is older than the trusting period`,
    })
  }
  const h = untrusted.header
  const what = describeHeight(untrusted)
  if (!bytesEqual(untrusted.hash, blockHash(h))) return invalid(`${what}: the block hash is not the header's`)
  if (h.chainId !== trusted.chainId) return invalid(`${what} is of chain ${JSON.stringify(h.chainId)}, not ${JSON.stringify(trusted.chainId)}`)
  if (h.height <= trusted.height) return invalid(`${what} is not above the trusted height ${trusted.height}`)
  if (h.time <= trusted.time) return invalid(`${what}: its time is not after the trusted block's`)
  if (h.time > o.now + o.maxClockDriftMs) return invalid(`${what}: its time is ${h.time - o.now} ms ahead of the local clock`)
  if (!bytesEqual(validators.hash, h.validatorSetHash)) return invalid(`${what}: the validator set given is not the one the header names (validatorSetHash)`)
  return okResult
}

/** The 2f+1 check of a commit against the header's own set. */
function checkCommit(untrusted: LightBlock, validators: ValidatorSet): Verification {
  const h = untrusted.header
  const r = verifyCommit(validators, h.chainId, h.height, untrusted.hash, untrusted.commit)
  return r.ok ? okResult : invalid(`${describeHeight(untrusted)}: its commit does not verify: ${r.error.reason}`)
}

/**
 * Verifies the header right after a trusted one: the set it names must be the one the trusted header announced, it
 * must extend the trusted hash, and more than two thirds of the set's power signed it.
 */
export function verifyAdjacent(trusted: TrustedBlock, untrusted: LightBlock, validators: ValidatorSet, o: VerifyOptions): Verification {
  if (untrusted.header.height !== trusted.height + 1) throw new RangeError('verifyAdjacent: the headers are not adjacent')
  const common = checkNewHeader(trusted, untrusted, validators, o)
  if (!common.ok) return common
  const h = untrusted.header
  if (!bytesEqual(h.validatorSetHash, trusted.nextValidatorSetHash)) {
    return invalid(`header ${h.height}: its validator set is not the one the trusted header ${trusted.height} announced (nextValidatorSetHash)`)
  }
  // "previousBlockHash is zeros at height 1": the genesis has no hash, and checkHeader holds height 1 to zeros.
  if (trusted.hash !== null && !bytesEqual(h.previousBlockHash, trusted.hash)) {
    return invalid(`header ${h.height} does not extend the trusted block ${trusted.height} (previousBlockHash ${toHex(h.previousBlockHash).slice(0, 16)}…)`)
  }
  return checkCommit(untrusted, validators)
}

/**
 * Verifies a header more than one height after a trusted one (skipping verification): more than `trustLevel` of the
 * trusted next set's power signed its commit, and more than two thirds of its own set's power. The trusted block must
 * carry its next set. `not_enough_trust` tells the caller to bisect.
 */
export function verifyNonAdjacent(trusted: TrustedBlock, untrusted: LightBlock, validators: ValidatorSet, o: VerifyOptions): Verification {
  if (untrusted.header.height <= trusted.height + 1) throw new RangeError('verifyNonAdjacent: the headers are adjacent')
  if (trusted.nextValidators === undefined) throw new RangeError('verifyNonAdjacent: the trusted block carries no next validator set')
  if (!validTrustLevel(o.trustLevel)) throw new RangeError('verifyNonAdjacent: the trust level must be from 1/3 to 1')
  const common = checkNewHeader(trusted, untrusted, validators, o)
  if (!common.ok) return common
  // The same set signing with more than two thirds holds more than the trust level of it when that is at most 2/3.
  const sameSet = bytesEqual(validators.hash, trusted.nextValidators.hash) && o.trustLevel.numerator * 3n <= o.trustLevel.denominator * 2n
  if (!sameSet) {
    const t = verifyCommitTrusting(trusted.nextValidators, untrusted.header.chainId, untrusted.commit, o.trustLevel)
    if (!t.ok) {
      if (t.error.code === 'insufficient_power') return err({ code: 'not_enough_trust', reason: t.error.reason })
      return invalid(`${describeHeight(untrusted)}: its commit does not verify against the trusted set: ${t.error.reason}`)
    }
  }
  return checkCommit(untrusted, validators)
}

/** Adjacent or skipping verification, by the heights; a header not above the trusted one is invalid. */
export function verifyLightBlock(trusted: TrustedBlock, untrusted: LightBlock, validators: ValidatorSet, o: VerifyOptions): Verification {
  if (untrusted.header.height <= trusted.height) return invalid(`header ${untrusted.header.height} is not above the trusted height ${trusted.height}`)
  return untrusted.header.height === trusted.height + 1
    ? verifyAdjacent(trusted, untrusted, validators, o)
    : verifyNonAdjacent(trusted, untrusted, validators, o)
}

/**
 * Verifies a header one height below a trusted header by the hash chain: its hash is the trusted header's
 * `previousBlockHash`, of the same chain, earlier in time. Needs no validator set and no clock.
 */
export function verifyBackwards(trusted: BlockHeader, untrusted: BlockHeader): Verification {
  if (untrusted.height !== trusted.height - 1) return invalid(`header ${untrusted.height} is not the one below ${trusted.height}`)
  if (untrusted.chainId !== trusted.chainId) return invalid(`header ${untrusted.height} is of chain ${JSON.stringify(untrusted.chainId)}`)
  if (!bytesEqual(blockHash(untrusted), trusted.previousBlockHash))
    return invalid(`header ${untrusted.height} is not the one trusted header ${trusted.height} extends`)
  if (untrusted.time >= trusted.time) return invalid(`header ${untrusted.height}: its time is not before its successor's`)
  return okResult
}
