import { bytesEqual, toHex } from '../crypto/bytes.js'
import { checkCommitFields, type CommitCertificate } from './commitCertificate.js'
import type { Evidence } from './effects.js'
import { decodeEvidence, encodeEvidence, verifyEvidence } from './evidence.js'
import type { SignedVote, ValidatorSet } from './types.js'

/**
 * Accountability for a fork: two commit certificates of one height for different blocks (what a light client finds
 * when two endpoints serve conflicting headers that both verify) prove that every validator that signed both
 * precommitted two values. A certificate's signatures are precommits of its (height, round, block hash), so each such
 * signer's pair is conflicting-vote evidence, which nodes admit, gossip and commit like any equivocation they observe.
 *
 * Only commits of the same round are attributable this way. A validator may precommit different blocks in different
 * rounds without equivocating (it unlocked on a later polka); telling that apart from a lie needs the prevotes of the
 * rounds between, which no evidence type carries, so commits of different rounds yield nothing here.
 */

/** The certificate's signatures by validator address (lowercase hex); the first entry of a signer counts. */
function signaturesByValidator(cert: CommitCertificate): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>()
  for (const s of cert.signatures) {
    const key = toHex(s.validator)
    if (!out.has(key)) out.set(key, s.signature)
  }
  return out
}

/** The precommit a certificate's signature of `validator` is. */
function precommitOf(cert: CommitCertificate, validator: Uint8Array, signature: Uint8Array): SignedVote {
  return { type: 'precommit', height: cert.height, round: cert.round, valueId: cert.valueId, validator, signature }
}

/**
 * The evidence two conflicting commit certificates of one height prove: for every member of `set` (the validator set of
 * that height) that signed both, the canonical encoding ({@link encodeEvidence}) of its two precommits, in validator
 * address order. Each item's signatures are verified against `set` ({@link verifyEvidence}) and the item decodes as
 * nodes decode evidence, so a node whose set of that height is `set` never refuses one as invalid (it may still
 * answer it is known, committed or outside its evidence window).
 *
 * Empty when the certificates are of different heights or rounds (not attributable with this evidence type), for
 * the same block hash, out of format, or share no signer whose two signatures verify. Never throws. Work is bounded
 * by the set's size: at most one item and two signature checks per member.
 */
export function conflictingCommitEvidence(chainId: string, set: ValidatorSet, a: CommitCertificate, b: CommitCertificate): Uint8Array[] {
  if (checkCommitFields(a) !== undefined || checkCommitFields(b) !== undefined) return []
  if (a.height !== b.height || a.round !== b.round || bytesEqual(a.valueId, b.valueId)) return []
  const inA = signaturesByValidator(a)
  const inB = signaturesByValidator(b)
  const out: Uint8Array[] = []
  // the set's members are in address order, so the items are too
  for (const v of set.validators) {
    const key = toHex(v.address)
    const sa = inA.get(key)
    const sb = inB.get(key)
    if (sa === undefined || sb === undefined) continue
    const e: Evidence = { kind: 'conflictingVotes', first: precommitOf(a, v.address, sa), second: precommitOf(b, v.address, sb) }
    if (!verifyEvidence(e, chainId, set).ok) continue
    const bytes = encodeEvidence(e)
    if (!decodeEvidence(bytes).ok) continue
    // its own copy: an encoding is a view of the encoder's working buffer
    out.push(new Uint8Array(bytes))
  }
  return out
}
