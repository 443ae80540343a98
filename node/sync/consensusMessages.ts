import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'
import { HASH_LENGTH } from '../../crypto/hash.js'
import {
  MAX_COMMIT_BYTES,
  decodeCommitCertificate,
  decodeSignedProposal,
  decodeSignedVote,
  encodeCommitCertificate,
  encodeSignedProposal,
  encodeSignedVote,
  type CommitCertificate,
  type SignedProposal,
  type SignedVote,
} from '../../consensus/index.js'
import { MAX_BLOCK_EVIDENCE, MAX_EVIDENCE_BYTES, MAX_HEADER_BYTES, decodeBlockHeader, encodeBlockHeader, type BlockHeader } from '../../ledger/block.js'
import { envelopeFail as fail, type EnvelopeResult } from '../storage/envelope.js'

/**
 * Consensus gossip, canonical MessagePack decoded strictly with size bounds: a proposal travels with its block's
 * header, transaction hashes and the previous height's commit certificate (peers resolve the transactions from their
 * mempools); a vote travels alone.
 */
/** Message kinds on the consensus topic. */
const KIND_PROPOSAL = 1
const KIND_VOTE = 2
const KIND_EVIDENCE = 3

/** A proposal with the parts of its block a peer needs to rebuild it from its mempool. */
export interface ProposalMessage {
  readonly proposal: SignedProposal
  readonly header: BlockHeader
  readonly txHashes: readonly Uint8Array[]
  /** The block's evidence items (their root is the header's `evidenceRoot`). */
  readonly evidence: readonly Uint8Array[]
  /** The certificate for height - 1 that the block's `lastCommitHash` names; null at height 1. */
  readonly lastCommit: CommitCertificate | null
}

export type ConsensusGossip =
  | { readonly kind: 'proposal'; readonly message: ProposalMessage }
  | { readonly kind: 'vote'; readonly vote: SignedVote }
  | { readonly kind: 'evidence'; readonly evidence: Uint8Array }

/** Upper bound on a consensus gossip message for blocks of at most `maxTxs` transactions. */
export function maxConsensusMessageBytes(maxTxs: number): number {
  return 1024 + MAX_HEADER_BYTES + maxTxs * (HASH_LENGTH + 2) + MAX_COMMIT_BYTES + MAX_BLOCK_EVIDENCE * (MAX_EVIDENCE_BYTES + 3)
}

/**
 * `resend` counts re-broadcasts of the same signed message (outside what is signed). Gossipsub, which carried these
 * messages before direct streams, dropped content it had already seen, so each resend had to differ; direct streams
 * deliver every send, and the counter stays in the wire format as information only.
 */
export function encodeProposalMessage(m: ProposalMessage, resend = 0): Uint8Array {
  return encodeCanonical([
    KIND_PROPOSAL,
    encodeSignedProposal(m.proposal),
    encodeBlockHeader(m.header),
    [...m.txHashes],
    m.lastCommit === null ? null : encodeCommitCertificate(m.lastCommit),
    [...m.evidence],
    resend,
  ])
}

export function encodeVoteMessage(vote: SignedVote, resend = 0): Uint8Array {
  return encodeCanonical([KIND_VOTE, encodeSignedVote(vote), resend])
}

/** Equivocation evidence a validator observed, for the next proposers to put in a block (consensus/evidence.ts). */
export function encodeEvidenceMessage(evidence: Uint8Array): Uint8Array {
  return encodeCanonical([KIND_EVIDENCE, evidence])
}

const isResend = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

function decodeProposalParts(v: readonly unknown[], maxTxs: number): EnvelopeResult<ProposalMessage> {
  const [, p, h, hashes, lc, evidence] = v
  if (!(p instanceof Uint8Array) || !(h instanceof Uint8Array) || !Array.isArray(hashes) || !Array.isArray(evidence)) return fail('proposal message fields')
  if (evidence.length > MAX_BLOCK_EVIDENCE) return fail(`more than ${MAX_BLOCK_EVIDENCE} evidence items`)
  for (const x of evidence) if (!(x instanceof Uint8Array) || x.byteLength === 0 || x.byteLength > MAX_EVIDENCE_BYTES) return fail('evidence item')
  const proposal = decodeSignedProposal(p)
  if (!proposal.ok) return fail(`proposal: ${proposal.error.reason}`)
  const header = decodeBlockHeader(h)
  if (!header.ok) return fail(`header: ${header.error.reason}`)
  if (hashes.length > maxTxs) return fail(`${hashes.length} transactions exceed the block limit ${maxTxs}`)
  for (const x of hashes) if (!(x instanceof Uint8Array) || x.byteLength !== HASH_LENGTH) return fail('transaction hash')
  let lastCommit: CommitCertificate | null = null
  if (lc !== null) {
    if (!(lc instanceof Uint8Array)) return fail('last commit')
    const c = decodeCommitCertificate(lc)
    if (!c.ok) return fail(`last commit: ${c.error.reason}`)
    lastCommit = c.value
  }
  return {
    ok: true,
    value: { proposal: proposal.value, header: header.value, txHashes: hashes as Uint8Array[], evidence: evidence as Uint8Array[], lastCommit },
  }
}

/**
 * The signed proposal of a proposal message, read from the message's first bytes alone (the array head, the kind and
 * the proposal's bytes, in their canonical encoding), or undefined for anything else. The handler judges a proposal's
 * height, round and proposer on it before it decodes the rest: up to ~0.5 MB of transaction hashes, evidence and a
 * certificate, which a message of a stale height or round would otherwise cost in full for an `ignore`.
 */
export function peekSignedProposal(bytes: Uint8Array): SignedProposal | undefined {
  // fixarray of 7, the kind (a positive fixint), then the proposal as bin 8 or bin 16
  if (bytes.byteLength < 4 || bytes[0] !== 0x97 || bytes[1] !== KIND_PROPOSAL) return undefined
  let at: number
  let length: number
  if (bytes[2] === 0xc4) {
    length = bytes[3]!
    at = 4
  } else if (bytes[2] === 0xc5 && bytes.byteLength >= 5) {
    length = (bytes[3]! << 8) | bytes[4]!
    at = 5
  } else return undefined
  if (at + length > bytes.byteLength) return undefined
  const p = decodeSignedProposal(bytes.subarray(at, at + length))
  return p.ok ? p.value : undefined
}

/** Decodes a message from the consensus topic. */
export function decodeConsensusGossip(bytes: Uint8Array, maxTxs: number): EnvelopeResult<ConsensusGossip> {
  const d = decodeCanonical(bytes, maxConsensusMessageBytes(maxTxs))
  if (!d.ok) return fail(d.error.reason)
  const v = d.value
  if (!Array.isArray(v) || v.length < 2) return fail('not a consensus message')
  if (v[0] === KIND_PROPOSAL && v.length === 7 && isResend(v[6])) {
    const m = decodeProposalParts(v, maxTxs)
    return m.ok ? { ok: true, value: { kind: 'proposal', message: m.value } } : m
  }
  if (v[0] === KIND_VOTE && v.length === 3 && v[1] instanceof Uint8Array && isResend(v[2])) {
    const vote = decodeSignedVote(v[1])
    return vote.ok ? { ok: true, value: { kind: 'vote', vote: vote.value } } : fail(`vote: ${vote.error.reason}`)
  }
  if (v[0] === KIND_EVIDENCE && v.length === 2 && v[1] instanceof Uint8Array && v[1].byteLength > 0 && v[1].byteLength <= MAX_EVIDENCE_BYTES) {
    return { ok: true, value: { kind: 'evidence', evidence: v[1] } }
  }
  return fail('unknown consensus message kind')
}
