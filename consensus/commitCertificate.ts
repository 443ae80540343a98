import {
  ADDRESS_LENGTH,
  DECODE_ERROR_CODES,
  SIGNATURE_LENGTH,
  bytesEqual,
  compareBytes,
  decodeCanonical,
  encodeCanonical,
  err,
  ok,
  sha256,
  toHex,
  type Result,
} from '../crypto/index.js'
import { MAX_HEIGHT, MAX_ROUND } from './codec.js'
import { verifyVoteSignature } from './signBytes.js'
import { VALUE_ID_LENGTH, type SignedVote, type ValidatorSet } from './types.js'
import { MAX_VALIDATORS, findValidator, isTwoThirds } from './validatorSet.js'

/**
 * The commit certificate: the precommits of more than two thirds of the voting power for one value at one
 * (height, round). It is what makes a block final, travels with the block, and lets anyone holding the
 * validator set check finality (`verifyCommit`) without having watched consensus.
 *
 * Encoding: canonical([1, height, round, valueId, [[validator, signature], ...]]) with the entries in strictly
 * increasing address order (so a certificate has one encoding and no signer twice). `commitHash` is SHA-256 of it.
 */

/** One signer's precommit signature inside a certificate. */
export interface CommitSignature {
  readonly validator: Uint8Array
  readonly signature: Uint8Array
}

/** Precommit signatures for `valueId` at (height, round), sorted by validator address. */
export interface CommitCertificate {
  readonly height: number
  readonly round: number
  readonly valueId: Uint8Array
  readonly signatures: readonly CommitSignature[]
}

/** Format version of the certificate encoding. */
export const COMMIT_VERSION = 1
/** Upper bound on an encoded certificate. */
export const MAX_COMMIT_BYTES = 64 + MAX_VALIDATORS * (ADDRESS_LENGTH + SIGNATURE_LENGTH + 8)

/** Every code a certificate failure can carry: a decode failure's, and why a certificate does not prove a commit. */
export const COMMIT_ERROR_CODES = [
  ...DECODE_ERROR_CODES,
  'wrong_height',
  'wrong_value',
  'unknown_signer',
  'duplicate_signer',
  'bad_signature',
  'insufficient_power',
] as const

/** Why bytes are not a certificate, or why a certificate does not prove a commit. */
export interface CommitError {
  readonly code: (typeof COMMIT_ERROR_CODES)[number]
  readonly reason: string
}

/** Builds the certificate from precommits for one value (any order; sorted here). */
export function buildCommitCertificate(height: number, round: number, valueId: Uint8Array, precommits: readonly SignedVote[]): CommitCertificate {
  const signatures = precommits
    .map((v) => {
      if (v.type !== 'precommit' || v.height !== height || v.round !== round || v.valueId === null || !bytesEqual(v.valueId, valueId)) {
        throw new Error('buildCommitCertificate: a vote that is not a precommit for the value')
      }
      return { validator: v.validator, signature: v.signature }
    })
    .sort((a, b) => compareBytes(a.validator, b.validator))
  return { height, round, valueId, signatures }
}

/** The certificate's precommits as signed votes, so a host can feed them to the core (catching up). */
export function certificateVotes(cert: CommitCertificate): SignedVote[] {
  return cert.signatures.map((s) => ({
    type: 'precommit' as const,
    height: cert.height,
    round: cert.round,
    valueId: cert.valueId,
    validator: s.validator,
    signature: s.signature,
  }))
}

/** A reason when the certificate's fields are out of format (types, lengths, bounds), else undefined. Never throws. */
export function checkCommitFields(cert: CommitCertificate): string | undefined {
  if (typeof cert !== 'object' || cert === null) return 'a certificate is an object'
  if (!Number.isSafeInteger(cert.height) || cert.height < 1 || cert.height > MAX_HEIGHT) return 'height must be an integer from 1 to 2^32-1'
  if (!Number.isSafeInteger(cert.round) || cert.round < 0 || cert.round > MAX_ROUND) return `round must be an integer from 0 to ${MAX_ROUND}`
  if (!(cert.valueId instanceof Uint8Array) || cert.valueId.byteLength !== VALUE_ID_LENGTH) return `value id must be ${VALUE_ID_LENGTH} bytes`
  if (!Array.isArray(cert.signatures) || cert.signatures.length === 0) return 'a certificate has at least one signature'
  if (cert.signatures.length > MAX_VALIDATORS) return `more than ${MAX_VALIDATORS} signatures`
  for (const s of cert.signatures as readonly unknown[] as readonly (CommitSignature | null)[]) {
    if (typeof s !== 'object' || s === null) return 'a signature entry is {validator, signature}'
    if (!(s.validator instanceof Uint8Array) || s.validator.byteLength !== ADDRESS_LENGTH) return `validator must be a ${ADDRESS_LENGTH}-byte address`
    if (!(s.signature instanceof Uint8Array) || s.signature.byteLength !== SIGNATURE_LENGTH) return `signature must be ${SIGNATURE_LENGTH} bytes`
  }
  return undefined
}

function isStrictlySorted(cert: CommitCertificate): boolean {
  for (let i = 1; i < cert.signatures.length; i++) {
    if (compareBytes(cert.signatures[i - 1]!.validator, cert.signatures[i]!.validator) >= 0) return false
  }
  return true
}

/** Encodes a certificate. Throws RangeError when it is out of format or not in address order (a caller's bug). */
export function encodeCommitCertificate(cert: CommitCertificate): Uint8Array {
  const problem = checkCommitFields(cert)
  if (problem !== undefined) throw new RangeError(`encodeCommitCertificate: ${problem}`)
  if (!isStrictlySorted(cert)) throw new RangeError('encodeCommitCertificate: signatures must be in strictly increasing address order')
  return encodeCanonical([COMMIT_VERSION, cert.height, cert.round, cert.valueId, cert.signatures.map((s) => [s.validator, s.signature])])
}

/** Decodes a certificate: bounded, canonical, exact shape, strictly increasing signers. Never throws. */
export function decodeCommitCertificate(bytes: Uint8Array): Result<CommitCertificate, CommitError> {
  const fail = (reason: string) => err<CommitError>({ code: 'malformed', reason })
  const d = decodeCanonical(bytes, MAX_COMMIT_BYTES)
  if (!d.ok) return fail(d.error.reason)
  const v = d.value
  if (!Array.isArray(v) || v.length !== 5) return fail('a certificate is an array of 5 fields')
  const [version, height, round, valueId, entries] = v as unknown[]
  if (version !== COMMIT_VERSION) return fail(`unsupported certificate version ${String(version)}`)
  if (!Array.isArray(entries)) return fail('signatures must be an array')
  const signatures: CommitSignature[] = []
  for (const e of entries as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) return fail('a signature entry is [validator, signature]')
    signatures.push({ validator: e[0] as Uint8Array, signature: e[1] as Uint8Array })
  }
  const cert = { height, round, valueId, signatures } as CommitCertificate
  const problem = checkCommitFields(cert)
  if (problem !== undefined) return fail(problem)
  if (!isStrictlySorted(cert)) return fail('signatures must be in strictly increasing address order')
  return ok(cert)
}

/** SHA-256 of the certificate's encoding: what a block header commits to for its parent's finality. */
export function commitHash(cert: CommitCertificate): Uint8Array {
  return sha256(encodeCommitCertificate(cert))
}

/**
 * Checks that `certificate` proves `blockHash` was committed at `height` by `validatorSet` on `chainId`:
 * the height and value match, every signer is a distinct member of the set, every signature is a valid
 * precommit signature for (height, certificate round, blockHash), and the signers hold more than two thirds
 * of the total power. Returns the signed power on success. Never throws.
 */
export function verifyCommit(
  validatorSet: ValidatorSet,
  chainId: string,
  height: number,
  blockHash: Uint8Array,
  certificate: CommitCertificate,
): Result<bigint, CommitError> {
  const fail = (code: CommitError['code'], reason: string) => err<CommitError>({ code, reason })
  const problem = checkCommitFields(certificate)
  if (problem !== undefined) return fail('malformed', problem)
  if (certificate.height !== height) return fail('wrong_height', `certificate is for height ${certificate.height}, not ${height}`)
  if (!bytesEqual(certificate.valueId, blockHash)) return fail('wrong_value', 'certificate is for another block')
  const signed = signedPower(validatorSet, chainId, certificate, false)
  if (!signed.ok) return signed
  const power = signed.value
  if (!isTwoThirds(validatorSet, power)) {
    return fail('insufficient_power', `signers hold ${power} of ${validatorSet.totalPower}, not more than two thirds`)
  }
  return ok(power)
}

/**
 * Skipping verification (CometBFT's `VerifyCommitLightTrusting`): checks that validators of a set trusted from an
 * earlier height, holding more than `trust` of its power (one third by default), signed the certificate. Signers
 * outside the trusted set are skipped (they may belong to a later set); every signature that is counted must verify.
 * If the trusted set has less than that fraction faulty, at least one honest validator signed, so the certificate's
 * height was reached by the chain. It does not prove the block was decided: {@link verifyCommit} against the set of
 * the certificate's own height does. Never throws.
 */
export function verifyCommitTrusting(
  trusted: ValidatorSet,
  chainId: string,
  certificate: CommitCertificate,
  trust: { readonly numerator: bigint; readonly denominator: bigint } = { numerator: 1n, denominator: 3n },
): Result<bigint, CommitError> {
  const fail = (code: CommitError['code'], reason: string) => err<CommitError>({ code, reason })
  const problem = checkCommitFields(certificate)
  if (problem !== undefined) return fail('malformed', problem)
  const signed = signedPower(trusted, chainId, certificate, true)
  if (!signed.ok) return signed
  const power = signed.value
  if (power * trust.denominator <= trusted.totalPower * trust.numerator) {
    return fail('insufficient_power', `trusted signers hold ${power} of ${trusted.totalPower}, not more than ${trust.numerator}/${trust.denominator}`)
  }
  return ok(power)
}

/**
 * The power of the members of `set` that signed the certificate, every counted signature verified as a precommit of
 * the certificate's (height, round, value); no signer twice. A signer outside the set is an error, unless
 * `skipUnknown` (a later set's member, for skipping verification).
 */
function signedPower(set: ValidatorSet, chainId: string, certificate: CommitCertificate, skipUnknown: boolean): Result<bigint, CommitError> {
  const fail = (code: CommitError['code'], reason: string) => err<CommitError>({ code, reason })
  const seen = new Set<string>()
  let power = 0n
  const vote = { type: 'precommit' as const, height: certificate.height, round: certificate.round, valueId: certificate.valueId }
  for (const s of certificate.signatures) {
    const key = toHex(s.validator)
    if (seen.has(key)) return fail('duplicate_signer', `validator ${key} signs twice`)
    seen.add(key)
    const validator = findValidator(set, s.validator)
    if (validator === undefined) {
      if (skipUnknown) continue
      return fail('unknown_signer', `${key} is not a validator`)
    }
    if (!verifyVoteSignature(chainId, validator, vote, s.signature)) return fail('bad_signature', `bad signature from ${key}`)
    power += BigInt(validator.power)
  }
  return ok(power)
}
