import { encodeCanonical } from '../../crypto/canonical.js'
import { compareBytes } from '../../crypto/bytes.js'
import { MAX_COMMIT_BYTES, MAX_ROUND, encodeCommitCertificate, type CommitCertificate, type SignedProposal } from '../../consensus/index.js'
import { MAX_VALIDATORS } from '../../consensus/validatorSet.js'
import { ZERO_HASH, blockHash, encodeBlockHeader, type BlockHeader } from '../../ledger/block.js'
import { encodeStoredBlock } from '../../node/storage/storedBlock.js'
import { encodeBlockResponse } from '../../node/sync/blockSyncMessages.js'
import { encodeProposalMessage, encodeVoteMessage } from '../../node/sync/consensusMessages.js'
import type { Rng } from '../helpers/random.js'
import type { FollowedBlock } from './chainFollower.js'

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
    nextValidatorSetHash: rng.bytes(32),
    lastCommitHash: hash(),
    evidenceRoot: rng.bytes(32),
  }
}

function nonZero(b: Uint8Array): Uint8Array {
  b[0] = b[0]! | 1
  return b
}

/** A certificate in format (sorted distinct signers) of `signers` random addresses and random signatures. */
export function junkCertificate(rng: Rng, height: number, signers: number): CommitCertificate {
  const signatures = Array.from({ length: signers }, () => ({ validator: rng.bytes(20), signature: rng.bytes(64) })).sort((a, b) =>
    compareBytes(a.validator, b.validator),
  )
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
    height: o.height,
    round: o.round,
    valueId: blockHash(header),
    polRound: -1,
    proposer: o.proposer,
    signature: rng.bytes(64),
  }
  return encodeProposalMessage({ proposal, header, txHashes: [], evidence: [], lastCommit: o.height > 1 ? junkCertificate(rng, o.height - 1, 3) : null })
}

/**
 * A proposal message of the largest size the decoder admits: `maxTxs` random transaction hashes and a certificate
 * of the most signers that fit, with a random signature.
 */
export function oversizedProposal(rng: Rng, o: { chainId: string; height: number; round: number; proposer: Uint8Array; maxTxs: number }): Uint8Array {
  const header = junkHeader(rng, o.chainId, o.height)
  const proposal: SignedProposal = {
    height: o.height,
    round: o.round,
    valueId: blockHash(header),
    polRound: -1,
    proposer: o.proposer,
    signature: rng.bytes(64),
  }
  const txHashes = Array.from({ length: o.maxTxs }, () => rng.bytes(32))
  return encodeProposalMessage({ proposal, header, txHashes, evidence: [], lastCommit: junkCertificate(rng, Math.max(1, o.height - 1), MAX_JUNK_SIGNERS) })
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

/**
 * Vote messages with random signatures at a high rate: each (height, round, type, validator) is encoded once as a
 * template, and every message is a copy with other random bytes where the value id and the signature go, taken
 * from a pool at a moving offset (the encoder costs tens of microseconds a message; a copy costs about one).
 */
export class BadVoteFactory {
  private readonly templates = new Map<string, { bytes: Uint8Array; valueAt: number; signatureAt: number }>()
  private readonly pool: Uint8Array
  private offset = 0

  constructor(
    private readonly validators: readonly Uint8Array[],
    random: (b: Uint8Array) => void,
  ) {
    this.pool = new Uint8Array(1 << 20)
    random(this.pool)
  }

  /** A vote message for `height` and `round`, as a random one of the validators, with random value and signature. */
  make(rng: Rng, height: number, round: number): Uint8Array {
    const type = rng.chance(0.5) ? 'prevote' : 'precommit'
    const v = rng.int(this.validators.length)
    const key = `${height}/${round}/${type}/${v}`
    let t = this.templates.get(key)
    if (t === undefined) {
      if (this.templates.size > 20_000) this.templates.clear()
      const valueId = new Uint8Array(32).fill(0xa5)
      const signature = new Uint8Array(64).fill(0x5a)
      const bytes = encodeVoteMessage({ type, height, round, valueId, validator: this.validators[v]!, signature })
      t = { bytes, valueAt: indexOf(bytes, valueId), signatureAt: indexOf(bytes, signature) }
      this.templates.set(key, t)
    }
    const out = new Uint8Array(t.bytes)
    out.set(this.take(32), t.valueAt)
    out.set(this.take(64), t.signatureAt)
    return out
  }

  private take(n: number): Uint8Array {
    if (this.offset + n > this.pool.length) this.offset = (this.offset % 61) + 1
    const b = this.pool.subarray(this.offset, this.offset + n)
    this.offset += 67
    return b
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  throw new Error('template field not found')
}

/** A round a liar may pick: small, near the largest the codec allows, or anywhere between. */
export function junkRound(rng: Rng): number {
  const pick = rng.int(4)
  if (pick === 0) return MAX_ROUND
  if (pick === 1) return rng.int(3)
  return rng.int(MAX_ROUND + 1)
}

/** The ways a block sync answer can lie while still decoding. */
export const TAMPERS = ['badSignatures', 'wrongHeight', 'swappedLastCommit', 'alteredHeader'] as const
export type Tamper = (typeof TAMPERS)[number]

/** A copy of the certificate whose every signature has one bit flipped. */
export function corruptSignatures(c: CommitCertificate): CommitCertificate {
  return {
    ...c,
    signatures: c.signatures.map((s) => {
      const signature = new Uint8Array(s.signature)
      signature[0] = signature[0]! ^ 0x01
      return { validator: s.validator, signature }
    }),
  }
}

/**
 * A `/tally/block/1` answer for `height` that decodes but lies, built from the blocks the attacker holds
 * (`block(h)`, up to `tip`):
 *  - badSignatures: the real block with a certificate whose signatures are all broken;
 *  - wrongHeight: another height's block with its own valid certificate;
 *  - swappedLastCommit: the real block and certificate, with the block's last commit replaced by a valid
 *    certificate of another height (the header's lastCommitHash no longer matches);
 *  - alteredHeader: the real certificate with a block whose state root was changed.
 * A height beyond the tip (a height the attacker claimed to have) gets the tip's block under a certificate
 * claiming that height, with broken signatures.
 */
export function tamperedBlockResponse(tamper: Tamper, height: number, tip: number, block: (h: number) => FollowedBlock | undefined): Uint8Array {
  const respond = (b: FollowedBlock, stored = b.stored, certificate = b.certificate) =>
    encodeBlockResponse(encodeStoredBlock(stored), encodeCommitCertificate(certificate))
  if (height < 1 || tip < 3) return encodeBlockResponse(undefined, undefined)
  if (height > tip) {
    const t = block(tip)!
    return respond(t, t.stored, corruptSignatures({ ...t.certificate, height }))
  }
  const b = block(height)!
  switch (tamper) {
    case 'badSignatures':
      return respond(b, b.stored, corruptSignatures(b.certificate))
    case 'wrongHeight': {
      const other = block(height > 1 ? height - 1 : height + 1)!
      return respond(other)
    }
    case 'swappedLastCommit': {
      const other = block(height > 2 ? height - 2 : tip)!
      return respond(b, { block: b.stored.block, lastCommit: other.certificate })
    }
    case 'alteredHeader': {
      const header = { ...b.stored.block.header, stateRoot: new Uint8Array(32).fill(7) }
      return respond(b, { block: { header, txs: b.stored.block.txs, evidence: b.stored.block.evidence }, lastCommit: b.stored.lastCommit })
    }
  }
}
