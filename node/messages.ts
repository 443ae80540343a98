import { decodeCanonical, encodeCanonical, type Canonical } from '../crypto/canonical.js'
import { HASH_LENGTH } from '../crypto/hash.js'
import {
  MAX_COMMIT_BYTES, decodeCommitCertificate, decodeSignedProposal, decodeSignedVote, encodeCommitCertificate,
  encodeSignedProposal, encodeSignedVote, type CommitCertificate, type ConsensusInput, type SignedProposal,
  type SignedVote, type TimeoutKind,
} from '../consensus/index.js'
import { MAX_HEADER_BYTES, decodeBlock, decodeBlockHeader, encodeBlock, encodeBlockHeader, type Block, type BlockHeader } from '../ledger/block.js'

/**
 * The node's wire and disk envelopes, all canonical MessagePack arrays decoded strictly with size bounds:
 *  - consensus gossip: a proposal travels with its block's header, transaction hashes and the previous height's
 *    commit certificate (peers resolve the transactions from their mempools); a vote travels alone;
 *  - WAL records: the consensus inputs of the current height, in the order they were fed to the core;
 *  - stored blocks: a block with the certificate it carries for the previous height;
 *  - block sync and transaction fetch requests and responses.
 */

/** Message kinds on the consensus topic. */
const KIND_PROPOSAL = 1
const KIND_VOTE = 2

/** A proposal with the parts of its block a peer needs to rebuild it from its mempool. */
export interface ProposalMessage {
  readonly proposal: SignedProposal
  readonly header: BlockHeader
  readonly txHashes: readonly Uint8Array[]
  /** The certificate for height - 1 that the block's `lastCommitHash` names; null at height 1. */
  readonly lastCommit: CommitCertificate | null
}

export type ConsensusGossip = { readonly kind: 'proposal'; readonly message: ProposalMessage } | { readonly kind: 'vote'; readonly vote: SignedVote }

/** A typed decode failure. */
export interface EnvelopeError {
  readonly code: 'malformed'
  readonly reason: string
}
export type EnvelopeResult<T> = { ok: true; value: T } | { ok: false; error: EnvelopeError }

const fail = (reason: string) => ({ ok: false as const, error: { code: 'malformed' as const, reason } })

/** Upper bound on a consensus gossip message for blocks of at most `maxTxs` transactions. */
export function maxConsensusMessageBytes(maxTxs: number): number {
  return 1024 + MAX_HEADER_BYTES + maxTxs * (HASH_LENGTH + 2) + MAX_COMMIT_BYTES
}

/**
 * `resend` counts re-broadcasts of the same signed message (outside what is signed). Gossipsub, which carried these
 * messages before direct streams, dropped content it had already seen, so each resend had to differ; direct streams
 * deliver every send, and the counter stays in the wire format as information only.
 */
export function encodeProposalMessage(m: ProposalMessage, resend = 0): Uint8Array {
  return encodeCanonical([
    KIND_PROPOSAL, encodeSignedProposal(m.proposal), encodeBlockHeader(m.header), [...m.txHashes],
    m.lastCommit === null ? null : encodeCommitCertificate(m.lastCommit), resend,
  ])
}

export function encodeVoteMessage(vote: SignedVote, resend = 0): Uint8Array {
  return encodeCanonical([KIND_VOTE, encodeSignedVote(vote), resend])
}

const isResend = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

function decodeProposalParts(v: readonly unknown[], maxTxs: number): EnvelopeResult<ProposalMessage> {
  const [, p, h, hashes, lc] = v
  if (!(p instanceof Uint8Array) || !(h instanceof Uint8Array) || !Array.isArray(hashes)) return fail('proposal message fields')
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
  return { ok: true, value: { proposal: proposal.value, header: header.value, txHashes: hashes as Uint8Array[], lastCommit } }
}

/** Decodes a message from the consensus topic. */
export function decodeConsensusGossip(bytes: Uint8Array, maxTxs: number): EnvelopeResult<ConsensusGossip> {
  const d = decodeCanonical(bytes, maxConsensusMessageBytes(maxTxs))
  if (!d.ok) return fail(d.reason)
  const v = d.value
  if (!Array.isArray(v) || v.length < 2) return fail('not a consensus message')
  if (v[0] === KIND_PROPOSAL && v.length === 6 && isResend(v[5])) {
    const m = decodeProposalParts(v, maxTxs)
    return m.ok ? { ok: true, value: { kind: 'proposal', message: m.value } } : m
  }
  if (v[0] === KIND_VOTE && v.length === 3 && v[1] instanceof Uint8Array && isResend(v[2])) {
    const vote = decodeSignedVote(v[1])
    return vote.ok ? { ok: true, value: { kind: 'vote', vote: vote.value } } : fail(`vote: ${vote.error.reason}`)
  }
  return fail('unknown consensus message kind')
}

// ---------------------------------------------------------------------------------------------------------------
// WAL records: [height, kind, ...]. A proposal is logged with its block parts, so a restarted node can validate it.

const W_PROPOSAL = 1
const W_VOTE = 2
const W_TIMEOUT = 3
const W_VALUE_READY = 4
const W_VALUE_VALIDATED = 5
const TIMEOUT_KINDS: readonly TimeoutKind[] = ['propose', 'prevote', 'precommit']

/** A logged input: a consensus input, or a proposal together with its block parts. */
export type WalEntry =
  | { readonly kind: 'proposal'; readonly message: ProposalMessage }
  | { readonly kind: 'input'; readonly input: Exclude<ConsensusInput, { type: 'startHeight' } | { type: 'proposal' } | { type: 'commitCertificate' }> }

export function encodeWalEntry(e: WalEntry): Uint8Array {
  if (e.kind === 'proposal') return encodeCanonical([e.message.proposal.height, W_PROPOSAL, encodeProposalMessage(e.message)])
  const i = e.input
  switch (i.type) {
    case 'vote':
      return encodeCanonical([i.vote.height, W_VOTE, encodeSignedVote(i.vote)])
    case 'timeoutElapsed':
      return encodeCanonical([i.timeout.height, W_TIMEOUT, i.timeout.round, i.timeout.kind])
    case 'valueReady':
      return encodeCanonical([i.height, W_VALUE_READY, i.round, i.valueId])
    case 'valueValidated':
      return encodeCanonical([i.height, W_VALUE_VALIDATED, i.round, i.valueId, i.valid])
  }
}

/** Decodes a WAL record; the WAL is the node's own file, so a bad record means corruption (the caller stops). */
export function decodeWalEntry(bytes: Uint8Array, maxTxs: number): EnvelopeResult<{ height: number; entry: WalEntry }> {
  const d = decodeCanonical(bytes, maxConsensusMessageBytes(maxTxs) + 64)
  if (!d.ok) return fail(d.reason)
  const v = d.value as Canonical[]
  if (!Array.isArray(v) || typeof v[0] !== 'number') return fail('WAL record shape')
  const height = v[0]
  switch (v[1]) {
    case W_PROPOSAL: {
      if (!(v[2] instanceof Uint8Array)) return fail('WAL proposal')
      const g = decodeConsensusGossip(v[2], maxTxs)
      if (!g.ok || g.value.kind !== 'proposal') return fail('WAL proposal message')
      return { ok: true, value: { height, entry: { kind: 'proposal', message: g.value.message } } }
    }
    case W_VOTE: {
      if (!(v[2] instanceof Uint8Array)) return fail('WAL vote')
      const vote = decodeSignedVote(v[2])
      if (!vote.ok) return fail('WAL vote')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'vote', vote: vote.value } } } }
    }
    case W_TIMEOUT: {
      const kind = v[3] as TimeoutKind
      if (typeof v[2] !== 'number' || !TIMEOUT_KINDS.includes(kind)) return fail('WAL timeout')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'timeoutElapsed', timeout: { height, round: v[2], kind } } } } }
    }
    case W_VALUE_READY:
      if (typeof v[2] !== 'number' || !(v[3] instanceof Uint8Array)) return fail('WAL valueReady')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'valueReady', height, round: v[2], valueId: v[3] } } } }
    case W_VALUE_VALIDATED:
      if (typeof v[2] !== 'number' || !(v[3] instanceof Uint8Array) || typeof v[4] !== 'boolean') return fail('WAL valueValidated')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'valueValidated', height, round: v[2], valueId: v[3], valid: v[4] } } } }
    default:
      return fail('WAL record kind')
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stored blocks and block sync.

/** A block as stored and served: the block and the certificate for height - 1 it carries. */
export interface StoredBlock {
  readonly block: Block
  readonly lastCommit: CommitCertificate | null
}

export function encodeStoredBlock(s: StoredBlock): Uint8Array {
  return encodeCanonical([encodeBlock(s.block), s.lastCommit === null ? null : encodeCommitCertificate(s.lastCommit)])
}

export function decodeStoredBlock(bytes: Uint8Array, limits: { maxBytes: number; maxTxs: number }): EnvelopeResult<StoredBlock> {
  const d = decodeCanonical(bytes, limits.maxBytes + MAX_COMMIT_BYTES + 64)
  if (!d.ok) return fail(d.reason)
  const v = d.value
  if (!Array.isArray(v) || v.length !== 2 || !(v[0] instanceof Uint8Array)) return fail('stored block shape')
  const block = decodeBlock(v[0], { maxBytes: limits.maxBytes + 1024, maxTxs: limits.maxTxs })
  if (!block.ok) return fail(`block: ${block.error.reason}`)
  let lastCommit: CommitCertificate | null = null
  if (v[1] !== null) {
    if (!(v[1] instanceof Uint8Array)) return fail('stored block last commit')
    const c = decodeCommitCertificate(v[1])
    if (!c.ok) return fail(`last commit: ${c.error.reason}`)
    lastCommit = c.value
  }
  return { ok: true, value: { block: block.value, lastCommit } }
}

/** A block sync response: the stored block and the certificate that decided it, or nothing. */
export function encodeBlockResponse(stored: Uint8Array | undefined, certificate: Uint8Array | undefined): Uint8Array {
  return encodeCanonical(stored === undefined || certificate === undefined ? [] : [stored, certificate])
}

export function decodeBlockResponse(bytes: Uint8Array, limits: { maxBytes: number; maxTxs: number }): EnvelopeResult<{ stored: StoredBlock; certificate: CommitCertificate } | null> {
  const d = decodeCanonical(bytes, limits.maxBytes + 2 * MAX_COMMIT_BYTES + 128)
  if (!d.ok) return fail(d.reason)
  const v = d.value
  if (!Array.isArray(v)) return fail('block response shape')
  if (v.length === 0) return { ok: true, value: null }
  if (v.length !== 2 || !(v[0] instanceof Uint8Array) || !(v[1] instanceof Uint8Array)) return fail('block response shape')
  const stored = decodeStoredBlock(v[0], limits)
  if (!stored.ok) return stored
  const cert = decodeCommitCertificate(v[1])
  if (!cert.ok) return fail(`certificate: ${cert.error.reason}`)
  return { ok: true, value: { stored: stored.value, certificate: cert.value } }
}

/** A request for one height, or for the peer's tip (height 0). */
export function encodeHeightRequest(height: number): Uint8Array {
  return encodeCanonical([height])
}

export function decodeHeightRequest(bytes: Uint8Array): number | undefined {
  const d = decodeCanonical(bytes, 16)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 1) return undefined
  const h = d.value[0]
  return typeof h === 'number' && Number.isSafeInteger(h) && h >= 0 ? h : undefined
}

/** A transaction fetch: hashes in, wire bytes out (an empty byte string where unknown), same order. */
export function encodeTxFetchRequest(hashes: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([...hashes])
}

export function decodeTxFetchRequest(bytes: Uint8Array, maxHashes: number): Uint8Array[] | undefined {
  const d = decodeCanonical(bytes, 16 + maxHashes * (HASH_LENGTH + 2))
  if (!d.ok || !Array.isArray(d.value) || d.value.length > maxHashes) return undefined
  for (const h of d.value) if (!(h instanceof Uint8Array) || h.byteLength !== HASH_LENGTH) return undefined
  return d.value as Uint8Array[]
}

export function encodeTxFetchResponse(txs: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([...txs])
}

export function decodeTxFetchResponse(bytes: Uint8Array, count: number, maxBytes: number): Uint8Array[] | undefined {
  const d = decodeCanonical(bytes, maxBytes)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== count) return undefined
  for (const t of d.value) if (!(t instanceof Uint8Array)) return undefined
  return d.value as Uint8Array[]
}
