import { encodeCanonical } from '../../../crypto/canonical.js'
import { compareBytes } from '../../../crypto/bytes.js'
import {
  MAX_COMMIT_BYTES, MAX_ROUND, type CommitCertificate, type SignedProposal,
} from '../../../consensus/index.js'
import { MAX_VALIDATORS } from '../../../consensus/validatorSet.js'
import { ZERO_HASH, blockHash, encodeBlockHeader, type BlockHeader } from '../../../ledger/block.js'
import { encodeProposalMessage, encodeVoteMessage } from '../../../node/sync/consensusMessages.js'
import type { Rng } from '../../helpers/random.js'

/**
 * Well-formed lies: consensus messages, block headers and certificates that decode as the protocol says, but whose
 * signatures, heights, rounds or contents are wrong. Each takes a seeded {@link Rng}, so a run can be replayed.
 */

/** A height a liar may pick: near `around`, or anywhere up to the largest the field allows. */
export function junkHeight(rng: Rng, around: number, max: number): number {
  const pick = rng.int(6)
  if (pick === 0) return max
  if (pick === 1) return 1
  if (pick <= 3) return Math.max(1, around + rng.int(3))
  return 1 + rng.int(max)
}

/** A header in format (it encodes and hashes) with random contents at `height`. */
export function junkHeader(rng: Rng, chainId: string, height: number): BlockHeader {
  const hash = () => (height === 1 ? new Uint8Array(ZERO_HASH) : nonZero(rng.bytes(32)))
  return {
    chainId,
    height,
    time: rng.int(2 ** 31) * 1000 + rng.int(1000),
    previousBlockHash: hash(),
    txRoot: rng.bytes(32),
    stateRoot: rng.bytes(32),
    proposer: rng.bytes(20),
    validatorSetHash: rng.bytes(32),
    lastCommitHash: hash(),
  }
}

function nonZero(b: Uint8Array): Uint8Array {
  b[0] = b[0]! | 1
  return b
}

/** A certificate in format (sorted distinct signers) of `signers` random addresses and random signatures. */
export function junkCertificate(rng: Rng, height: number, signers: number): CommitCertificate {
  const signatures = Array.from({ length: signers }, () => ({ validator: rng.bytes(20), signature: rng.bytes(64) }))
    .sort((a, b) => compareBytes(a.validator, b.validator))
  return { height, round: rng.int(4), valueId: rng.bytes(32), signatures }
}

/** The most signers a certificate can carry within the decoders' bound. */
export const MAX_JUNK_SIGNERS = Math.min(MAX_VALIDATORS, Math.floor((MAX_COMMIT_BYTES - 64) / (20 + 64 + 8)))

/**
 * A proposal message whose signature is random bytes. Its value id is the hash of the (random) header it carries,
 * so it passes every check that costs nothing and reaches the signature check.
 */
export function badSignatureProposal(rng: Rng, o: { chainId: string; height: number; round: number; proposer: Uint8Array; headerHeight: number }): Uint8Array {
  const header = junkHeader(rng, o.chainId, o.headerHeight)
  const proposal: SignedProposal = {
    height: o.height, round: o.round, valueId: blockHash(header), polRound: -1, proposer: o.proposer, signature: rng.bytes(64),
  }
  return encodeProposalMessage({ proposal, header, txHashes: [], lastCommit: o.height > 1 ? junkCertificate(rng, o.height - 1, 3) : null })
}

/**
 * A proposal message of the largest size the decoder admits: `maxTxs` random transaction hashes and a certificate
 * of the most signers that fit, with a random signature.
 */
export function oversizedProposal(rng: Rng, o: { chainId: string; height: number; round: number; proposer: Uint8Array; maxTxs: number }): Uint8Array {
  const header = junkHeader(rng, o.chainId, o.height)
  const proposal: SignedProposal = {
    height: o.height, round: o.round, valueId: blockHash(header), polRound: -1, proposer: o.proposer, signature: rng.bytes(64),
  }
  const txHashes = Array.from({ length: o.maxTxs }, () => rng.bytes(32))
  return encodeProposalMessage({ proposal, header, txHashes, lastCommit: junkCertificate(rng, Math.max(1, o.height - 1), MAX_JUNK_SIGNERS) })
}

/**
 * A proposal message with no signature at all: the proposal tuple lacks its last field, which no decoder accepts.
 * (The typed encoders refuse to write it, so the tuple is written by hand.)
 */
export function unsignedProposal(rng: Rng, o: { chainId: string; height: number; round: number; proposer: Uint8Array }): Uint8Array {
  const header = junkHeader(rng, o.chainId, Math.max(1, o.height))
  const proposal = encodeCanonical([o.height, o.round, blockHash(header), -1, o.proposer])
  return encodeCanonical([1, proposal, encodeBlockHeader(header), [], null, 0])
}

/** A vote message "from" `validator` with a random signature. */
export function badSignatureVote(rng: Rng, o: { height: number; round: number; validator: Uint8Array }): Uint8Array {
  return encodeVoteMessage({
    type: rng.chance(0.5) ? 'prevote' : 'precommit', height: o.height, round: o.round, valueId: rng.chance(0.2) ? null : rng.bytes(32),
    validator: o.validator, signature: rng.bytes(64),
  })
}

/** A round a liar may pick: small, near the largest the codec allows, or anywhere between. */
export function junkRound(rng: Rng): number {
  const pick = rng.int(4)
  if (pick === 0) return MAX_ROUND
  if (pick === 1) return rng.int(3)
  return rng.int(MAX_ROUND + 1)
}
