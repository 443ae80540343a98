import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bytesEqual, toHex } from '../../../crypto/bytes.js'
import { decodeCanonical, encodeCanonical, type Canonical } from '../../../crypto/canonical.js'
import { sha256 } from '../../../crypto/hash.js'
import {
  MAX_COMMIT_BYTES,
  MAX_CONSENSUS_MESSAGE_BYTES,
  MAX_VALIDATORS,
  buildCommitCertificate,
  decodeCommitCertificate,
  decodeEvidence,
  decodeSignedProposal,
  decodeSignedVote,
  encodeCommitCertificate,
  encodeEvidence,
  encodeSignedProposal,
  encodeSignedVote,
  type CommitCertificate,
  type Evidence,
  type SignedProposal,
  type SignedVote,
} from '../../../consensus/index.js'
import {
  MAX_BLOCK_EVIDENCE,
  MAX_EVIDENCE_BYTES,
  MAX_HEADER_BYTES,
  ZERO_HASH,
  blockHash,
  decodeBlock,
  decodeBlockHeader,
  decodeBlockStrict,
  encodeBlock,
  encodeBlockHeader,
  txRoot,
  type Block,
  type BlockHeader,
} from '../../../ledger/block.js'
import { MAX_TOTAL_POWER, type GovernanceAction } from '../../../ledger/governance.js'
import {
  MAX_TX_BYTES,
  U64_MAX,
  createTransfer,
  decodeTransaction,
  decodeTransactionStrict,
  encodeTransaction,
  signGovernanceTransaction,
  type DecodedTransaction,
} from '../../../ledger/transaction.js'
import { decodeByteStrings } from '../../../node/storage/byteStrings.js'
import { decodeStoredBlock, encodeStoredBlock, maxStoredBlockBytes, type StoredBlock } from '../../../node/storage/storedBlock.js'
import {
  MAX_RANGE_BLOCKS,
  decodeBlockResponse,
  decodeHeightRequest,
  decodeRangeRequest,
  decodeRangeResponse,
  decodeTipResponse,
  encodeBlockResponse,
  encodeHeightRequest,
  encodeRangeRequest,
  encodeRangeResponse,
  encodeTipResponse,
  maxRangeResponseBytes,
  type RangeRequest,
  type ServedBlock,
} from '../../../node/sync/blockSyncMessages.js'
import {
  decodeConsensusGossip,
  encodeEvidenceMessage,
  encodeProposalMessage,
  encodeVoteMessage,
  maxConsensusMessageBytes,
  type ConsensusGossip,
  type ProposalMessage,
} from '../../../node/sync/consensusMessages.js'
import { decodeTxFetchRequest, decodeTxFetchResponse, encodeTxFetchRequest, encodeTxFetchResponse } from '../../../node/sync/txFetchMessages.js'
import { decodeTxBatch, encodeTxBatch } from '../../../node/sync/txGossip.js'
import { Rng } from '../../helpers/random.js'
import { CHAIN_ID, keys, proposal, validators, value, vote } from '../consensus/helpers.js'

/**
 * Deterministic fuzzing of every decoder that bytes from a peer reach. Each decoder gets valid encodings made by the
 * repository's own encoders, and a few thousand mutants of them: bit flips, interesting byte values (0x00, 0xff,
 * 0x7f, 0x80, MessagePack type bytes 0xc0-0xdf), truncation at every position of short inputs (sampled when they are
 * many), appended, duplicated and deleted slices, random bytes, the empty input; and structure-aware mutants (one
 * MessagePack field rewritten in another header or integer form that holds the same value, nested encodings
 * included, outer lengths fixed up; arrays one item shorter or longer; items dropped, duplicated, swapped; fields
 * replaced by other types or boundary integers). Properties:
 *  - the decoder never throws;
 *  - where the format is canonical (docs/formats.md, "Canonical encoding": every value has one encoding), what
 *    decodes re-encodes, with the matching encoder, to exactly the input;
 *  - a decoder given bounds never returns a value beyond them;
 *  - where a fast path and a general strict decoder must agree (decodeTransaction and decodeBlock, documented as
 *    accepting "exactly the same bytes with the same value"), they do.
 *
 * Decoders covered (all canonical by their doc comments and docs/formats.md):
 *  crypto/canonical.ts           decodeCanonical (the base of all the others)
 *  ledger/transaction.ts         decodeTransaction (fast layout path), decodeTransactionStrict
 *  consensus/codec.ts            decodeSignedVote, decodeSignedProposal
 *  consensus/commitCertificate.ts decodeCommitCertificate
 *  consensus/evidence.ts         decodeEvidence
 *  ledger/block.ts               decodeBlockHeader, decodeBlock (fast layout path), decodeBlockStrict
 *  node/storage/byteStrings.ts   decodeByteStrings
 *  node/storage/storedBlock.ts   decodeStoredBlock
 *  node/sync/consensusMessages.ts decodeConsensusGossip (canonical given its `resend` counter, which the decoded
 *                                value leaves out by design: it is outside what is signed, "information only")
 *  node/sync/blockSyncMessages.ts decodeHeightRequest, decodeRangeRequest, decodeTipResponse, decodeBlockResponse,
 *                                decodeRangeResponse
 *  node/sync/txFetchMessages.ts  decodeTxFetchRequest, decodeTxFetchResponse
 *  node/sync/txGossip.ts         decodeTxBatch
 * Not covered, since no peer's bytes reach them: decodeWalEntry (node/host/walEntry.ts, the node's own WAL file),
 * decodeAccount, decodeGovernanceState, decodePath/decodePathBytes (the node's own store), and the JSON decoders of
 * the RPC and light client (rpc/, not libp2p).
 *
 * A failure prints the decoder, the seed of its PRNG, the input's number and mutation (so it regenerates exactly),
 * the input in hex, what it decoded to and, for a canonicity failure, the re-encoding.
 */

// ---- valid encodings, made by the repository's encoders -----------------------------------------------------------

const to = validators[1]!.address
const transfers = [
  createTransfer(keys[0]!.secretKey, { chainId: CHAIN_ID, to, amount: 1n, nonce: 0n }),
  createTransfer(keys[1]!.secretKey, { chainId: 'a', to, amount: (1n << 63n) - 1n, nonce: 1n << 63n }),
  createTransfer(keys[2]!.secretKey, { chainId: 'Z'.repeat(31), to, amount: 1n << 63n, nonce: 5n }),
  createTransfer(keys[3]!.secretKey, { chainId: `c${'.'.repeat(31)}`, to, amount: 300n, nonce: 2n ** 32n }),
  createTransfer(keys[0]!.secretKey, { chainId: `x${'-'.repeat(63)}`, to, amount: U64_MAX, nonce: U64_MAX }),
].map((t) => t.bytes)

const actions: GovernanceAction[] = [
  { type: 'add', publicKey: keys[3]!.publicKey, power: 1, peerId: `12D3KooW${'A'.repeat(44)}`, name: 'node3' },
  { type: 'add', publicKey: keys[2]!.publicKey, power: MAX_TOTAL_POWER, peerId: '1'.repeat(128), name: 'n'.repeat(64) },
  { type: 'remove', address: validators[2]!.address },
  { type: 'power', address: validators[1]!.address, power: 70_000 },
]
const governance = actions.map((action, i) =>
  encodeTransaction(signGovernanceTransaction({ chainId: CHAIN_ID, from: keys[i]!.publicKey, nonce: BigInt(i * 1000), action }, keys[i]!.secretKey)),
)
const txs = [...transfers, ...governance]

const votes: SignedVote[] = [
  vote(0, 'prevote', 1, 0, value('v0')),
  vote(1, 'precommit', 2 ** 32 - 1, 1_000_000, null),
  vote(2, 'precommit', 300, 17, value('v1')),
  vote(3, 'prevote', 65_536, 255, null),
]
const proposals: SignedProposal[] = [
  proposal(0, 1, 0, value('v0')),
  proposal(1, 2 ** 32 - 1, 1_000_000, value('v1'), 999_999),
  proposal(2, 70_000, 3, value('v2'), 0),
]

/** A certificate of real precommits by `signers` (indexes into the helpers' validators). */
function certificate(height: number, round: number, signers: number[]): CommitCertificate {
  const valueId = value(`block ${height}`)
  return buildCommitCertificate(
    height,
    round,
    valueId,
    signers.map((i) => vote(i, 'precommit', height, round, valueId)),
  )
}
/** A certificate of 20 made-up signers: its signature list takes an array 16 header. */
function wideCertificate(height: number): CommitCertificate {
  const signatures = Array.from({ length: 20 }, (_, i) => ({ validator: new Uint8Array(20).fill(i + 1), signature: new Uint8Array(64).fill(i) }))
  return { height, round: 0, valueId: value(`wide ${height}`), signatures }
}
const certificates = [certificate(1, 0, [0]), certificate(2, 2, [0, 1, 2]), certificate(2 ** 32 - 1, 1_000_000, [0, 1, 2, 3]), wideCertificate(3)]
const certificateAt = (height: number) => (height === 3 ? wideCertificate(3) : certificate(height, 0, [1, 3]))

const evidence: Evidence[] = [
  { kind: 'conflictingVotes', first: vote(0, 'prevote', 5, 0, value('v0')), second: vote(0, 'prevote', 5, 0, value('v1')) },
  { kind: 'conflictingVotes', first: vote(1, 'precommit', 6, 2, null), second: vote(1, 'precommit', 6, 2, value('v2')) },
  { kind: 'conflictingProposals', first: proposal(2, 7, 1, value('v0')), second: proposal(2, 7, 1, value('v1'), 0) },
]
const evidenceBytes = evidence.map(encodeEvidence)

function header(height: number, over: Partial<BlockHeader> = {}): BlockHeader {
  return {
    chainId: CHAIN_ID,
    height,
    time: 1_767_225_600_000,
    previousBlockHash: height === 1 ? ZERO_HASH : sha256(Uint8Array.of(1, height & 0xff)),
    txRoot: txRoot([]),
    stateRoot: sha256(Uint8Array.of(2)),
    proposer: validators[height % 4]!.address,
    validatorSetHash: sha256(Uint8Array.of(3)),
    nextValidatorSetHash: sha256(Uint8Array.of(4)),
    lastCommitHash: height === 1 ? ZERO_HASH : sha256(Uint8Array.of(5, height & 0xff)),
    evidenceRoot: txRoot([]),
    ...over,
  }
}
const headers = [header(1), header(2, { time: 0 }), header(Number.MAX_SAFE_INTEGER, { time: Number.MAX_SAFE_INTEGER, chainId: `x${'-'.repeat(63)}` })]

function block(height: number, blockTxs: Uint8Array[], items: Uint8Array[] = []): Block {
  return {
    header: header(height, { txRoot: txRoot(blockTxs.map((x) => sha256(x))), evidenceRoot: txRoot(items.map((x) => sha256(x))) }),
    txs: blockTxs,
    evidence: items,
  }
}
/** 300 bytes: a block holds it behind a bin 16 header (block decoders do not decode transactions). */
const opaqueTx = new Uint8Array(300).fill(0x5a)
/** Short transaction bytes, so that a block of 16 (an array 16 header) stays small and quick to decode. */
const shortTxs = Array.from({ length: 12 }, (_, i) => new Uint8Array(1 + i).fill(i))
const BLOCK_LIMITS = { maxBytes: 64 * 1024, maxTxs: 16 }
const blocks = [
  block(1, []),
  block(2, txs.slice(0, 3), [evidenceBytes[0]!]),
  block(3, [txs[4]!, governance[1]!, opaqueTx, ...shortTxs], [evidenceBytes[1]!, evidenceBytes[2]!]),
]
const overfullBlock = block(4, [txs[0]!, opaqueTx, ...shortTxs, ...txs.slice(1, 4)])

const stored: StoredBlock[] = [
  { block: blocks[0]!, lastCommit: null },
  { block: blocks[1]!, lastCommit: certificateAt(1) },
  { block: blocks[2]!, lastCommit: certificateAt(2) },
]
const storedBytes = stored.map(encodeStoredBlock)
const servedCertificates = stored.map((s) => encodeCommitCertificate(certificateAt(s.block.header.height)))

const RANGE_REQUEST = { count: 2, maxBytes: 100_000 }
const MAX_FETCH_HASHES = 20
const FETCH_COUNT = 3
const FETCH_MAX_BYTES = 4096
const BATCH = { maxBytes: 4096, maxTxs: 8 }
const GOSSIP_MAX_TXS = 8
const BYTE_STRING_LIMITS = { maxItems: 4, maxBytes: 2048 }
const CANONICAL_MAX_BYTES = 1 << 16

const hashes = (n: number) => Array.from({ length: n }, (_, i) => sha256(Uint8Array.of(i)))

function proposalMessage(height: number, round: number, txHashes: Uint8Array[], items: Uint8Array[], lastCommit: CommitCertificate | null): ProposalMessage {
  const h = header(height, { txRoot: txRoot(txHashes), evidenceRoot: txRoot(items.map((x) => sha256(x))) })
  return { proposal: proposal(height % 4, height, round, blockHash(h)), header: h, txHashes, evidence: items, lastCommit }
}

// ---- the decoders under test ------------------------------------------------------------------------------------

type Outcome = { readonly ok: true; readonly value: any } | { readonly ok: false }

interface Target {
  readonly name: string
  /** Encodings the decoder must accept. */
  readonly valid: readonly Uint8Array[]
  /** Encodings beyond the decoder's bounds, which it must refuse; mutated like the valid ones. */
  readonly invalid?: readonly Uint8Array[]
  readonly decode: (bytes: Uint8Array) => Outcome
  /** The one encoding of a decoded value (given the input, for what the value leaves out by design). */
  readonly encode: (value: any, input: Uint8Array) => Uint8Array
  /** A bound the decoded value or its input exceeds, or undefined. */
  readonly bound?: (value: any, input: Uint8Array) => string | undefined
  /** Run on every input: a disagreement with a second decoder, or undefined. */
  readonly agree?: (input: Uint8Array, out: Outcome) => string | undefined
}

const result = (r: { readonly ok: boolean; readonly value?: unknown }): Outcome => (r.ok ? { ok: true, value: r.value } : { ok: false })
const defined = (v: unknown): Outcome => (v === undefined ? { ok: false } : { ok: true, value: v })
const over = (what: string, n: number, max: number) => (n > max ? `${what} ${n} exceeds the bound ${max}` : undefined)

function blockBound(b: Block, maxTxs: number): string | undefined {
  if (b.header.height > Number.MAX_SAFE_INTEGER || b.header.time > Number.MAX_SAFE_INTEGER) return 'header height or time beyond 2^53-1'
  const badTx = b.txs.findIndex((t) => t.byteLength === 0 || t.byteLength > MAX_TX_BYTES)
  if (badTx >= 0) return `transaction ${badTx} of ${b.txs[badTx]!.byteLength} bytes, outside 1-${MAX_TX_BYTES}`
  const badEvidence = b.evidence.findIndex((e) => e.byteLength === 0 || e.byteLength > MAX_EVIDENCE_BYTES)
  if (badEvidence >= 0) return `evidence ${badEvidence} of ${b.evidence[badEvidence]!.byteLength} bytes, outside 1-${MAX_EVIDENCE_BYTES}`
  return over('transaction count', b.txs.length, maxTxs) ?? over('evidence count', b.evidence.length, MAX_BLOCK_EVIDENCE)
}
const certificateBound = (c: CommitCertificate) => over('signature count', c.signatures.length, MAX_VALIDATORS)
function servedBound(s: ServedBlock): string | undefined {
  if (!bytesEqual(s.storedBytes, encodeStoredBlock(s.stored))) return 'storedBytes are not the encoding of the stored block'
  return blockBound(s.stored.block, BLOCK_LIMITS.maxTxs) ?? certificateBound(s.certificate)
}
const encodeServed = (s: ServedBlock) => ({ stored: encodeStoredBlock(s.stored), certificate: encodeCommitCertificate(s.certificate) })

/** Deep equality of decoded values: byte arrays by content, whatever their class (a view or a Buffer). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && bytesEqual(a, b)
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  return ka.length === kb.length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

function agreeWith(name: string, other: Outcome, out: Outcome): string | undefined {
  if (other.ok !== out.ok) return `disagrees with ${name}: ${out.ok ? 'accepted' : 'refused'} here, ${other.ok ? 'accepted' : 'refused'} there`
  if (other.ok && out.ok && !sameValue(other.value, out.value)) return `decodes to another value than ${name} does: ${show(other.value)}`
  return undefined
}

const targets: Target[] = [
  {
    name: 'decodeCanonical',
    valid: [...txs, ...votes.map(encodeSignedVote), ...certificates.map(encodeCommitCertificate), ...headers.map(encodeBlockHeader), encodeBlock(blocks[1]!)],
    decode: (b) => result(decodeCanonical(b, CANONICAL_MAX_BYTES)),
    encode: (v: Canonical) => encodeCanonical(v),
    bound: (_v, input) => over('input bytes', input.byteLength, CANONICAL_MAX_BYTES),
  },
  {
    name: 'decodeTransaction',
    valid: txs,
    decode: (b) => result(decodeTransaction(b)),
    encode: (d: DecodedTransaction) => encodeTransaction(d.tx),
    bound: (d: DecodedTransaction, input) =>
      over('input bytes', input.byteLength, MAX_TX_BYTES) ??
      (bytesEqual(d.bytes, input) && bytesEqual(d.hash, sha256(input)) ? undefined : 'bytes or hash are not those of the input'),
    agree: (input, out) => agreeWith('decodeTransactionStrict', result(decodeTransactionStrict(input)), out),
  },
  {
    name: 'decodeTransactionStrict',
    valid: txs,
    decode: (b) => result(decodeTransactionStrict(b)),
    encode: (d: DecodedTransaction) => encodeTransaction(d.tx),
    bound: (_d, input) => over('input bytes', input.byteLength, MAX_TX_BYTES),
  },
  {
    name: 'decodeSignedVote',
    valid: votes.map(encodeSignedVote),
    decode: (b) => result(decodeSignedVote(b)),
    encode: encodeSignedVote,
    bound: (_v, input) => over('input bytes', input.byteLength, MAX_CONSENSUS_MESSAGE_BYTES),
  },
  {
    name: 'decodeSignedProposal',
    valid: proposals.map(encodeSignedProposal),
    decode: (b) => result(decodeSignedProposal(b)),
    encode: encodeSignedProposal,
    bound: (_v, input) => over('input bytes', input.byteLength, MAX_CONSENSUS_MESSAGE_BYTES),
  },
  {
    name: 'decodeCommitCertificate',
    valid: certificates.map(encodeCommitCertificate),
    decode: (b) => result(decodeCommitCertificate(b)),
    encode: encodeCommitCertificate,
    bound: (c: CommitCertificate, input) => over('input bytes', input.byteLength, MAX_COMMIT_BYTES) ?? certificateBound(c),
  },
  {
    name: 'decodeEvidence',
    valid: evidenceBytes,
    decode: (b) => result(decodeEvidence(b)),
    encode: encodeEvidence,
    bound: (_e, input) => over('input bytes', input.byteLength, MAX_EVIDENCE_BYTES),
  },
  {
    name: 'decodeBlockHeader',
    valid: headers.map(encodeBlockHeader),
    decode: (b) => result(decodeBlockHeader(b)),
    encode: encodeBlockHeader,
    bound: (h: BlockHeader, input) => over('input bytes', input.byteLength, MAX_HEADER_BYTES) ?? over('height', h.height, Number.MAX_SAFE_INTEGER),
  },
  {
    name: 'decodeBlock',
    valid: blocks.map(encodeBlock),
    invalid: [encodeBlock(overfullBlock)],
    decode: (b) => result(decodeBlock(b, BLOCK_LIMITS)),
    encode: encodeBlock,
    bound: (b: Block, input) => over('input bytes', input.byteLength, BLOCK_LIMITS.maxBytes) ?? blockBound(b, BLOCK_LIMITS.maxTxs),
    agree: (input, out) => agreeWith('decodeBlockStrict', result(decodeBlockStrict(input, BLOCK_LIMITS)), out),
  },
  {
    name: 'decodeBlockStrict',
    valid: blocks.map(encodeBlock),
    invalid: [encodeBlock(overfullBlock)],
    decode: (b) => result(decodeBlockStrict(b, BLOCK_LIMITS)),
    encode: encodeBlock,
    bound: (b: Block, input) => over('input bytes', input.byteLength, BLOCK_LIMITS.maxBytes) ?? blockBound(b, BLOCK_LIMITS.maxTxs),
  },
  {
    name: 'decodeByteStrings',
    valid: [[], [null], [new Uint8Array(0), null, new Uint8Array(300).fill(7)], [txs[0]!, null, txs[5]!, new Uint8Array(255)]].map((items) =>
      encodeCanonical(items),
    ),
    invalid: [
      encodeCanonical([null, null, null, null, null]),
      encodeCanonical(Array.from({ length: 17 }, () => null)),
      encodeCanonical([new Uint8Array(2100)]),
    ],
    decode: (b) => result(decodeByteStrings(b, BYTE_STRING_LIMITS)),
    encode: (items: (Uint8Array | null)[]) => encodeCanonical(items),
    bound: (items: unknown[], input) =>
      over('input bytes', input.byteLength, BYTE_STRING_LIMITS.maxBytes) ?? over('items', items.length, BYTE_STRING_LIMITS.maxItems),
  },
  {
    name: 'decodeStoredBlock',
    valid: storedBytes,
    invalid: [encodeStoredBlock({ block: overfullBlock, lastCommit: certificateAt(3) })],
    decode: (b) => result(decodeStoredBlock(b, BLOCK_LIMITS)),
    encode: encodeStoredBlock,
    bound: (s: StoredBlock, input) =>
      over('input bytes', input.byteLength, maxStoredBlockBytes(BLOCK_LIMITS)) ??
      blockBound(s.block, BLOCK_LIMITS.maxTxs) ??
      (s.lastCommit === null ? undefined : certificateBound(s.lastCommit)),
  },
  {
    name: 'decodeConsensusGossip',
    valid: [
      encodeProposalMessage(proposalMessage(1, 0, [], [], null)),
      encodeProposalMessage(proposalMessage(2, 1, hashes(3), [evidenceBytes[0]!], certificateAt(1)), 1),
      encodeProposalMessage(proposalMessage(4, 0, hashes(GOSSIP_MAX_TXS), [evidenceBytes[1]!, evidenceBytes[2]!], certificateAt(3)), 70_000),
      encodeVoteMessage(votes[0]!),
      encodeVoteMessage(votes[1]!, 2 ** 32 - 1),
      encodeEvidenceMessage(evidenceBytes[2]!),
    ],
    invalid: [encodeProposalMessage(proposalMessage(2, 0, hashes(GOSSIP_MAX_TXS + 1), [], certificateAt(1)))],
    decode: (b) => result(decodeConsensusGossip(b, GOSSIP_MAX_TXS)),
    // the resend counter is outside the decoded value by design (consensusMessages.ts): take it from the input
    encode: (g: ConsensusGossip, input) => {
      const raw = decodeCanonical(input, Number.POSITIVE_INFINITY)
      const resend = raw.ok && Array.isArray(raw.value) ? (raw.value[raw.value.length - 1] as number) : -1
      if (g.kind === 'proposal') return encodeProposalMessage(g.message, resend)
      if (g.kind === 'vote') return encodeVoteMessage(g.vote, resend)
      return encodeEvidenceMessage(g.evidence)
    },
    bound: (g: ConsensusGossip, input) => {
      const size = over('input bytes', input.byteLength, maxConsensusMessageBytes(GOSSIP_MAX_TXS))
      if (size !== undefined || g.kind === 'vote') return size
      if (g.kind === 'evidence') return g.evidence.byteLength === 0 ? 'empty evidence' : over('evidence bytes', g.evidence.byteLength, MAX_EVIDENCE_BYTES)
      const m = g.message
      return (
        over('transaction hashes', m.txHashes.length, GOSSIP_MAX_TXS) ??
        over('evidence items', m.evidence.length, MAX_BLOCK_EVIDENCE) ??
        (m.evidence.some((e) => e.byteLength === 0 || e.byteLength > MAX_EVIDENCE_BYTES) ? 'an evidence item outside 1-1024 bytes' : undefined) ??
        (m.lastCommit === null ? undefined : certificateBound(m.lastCommit))
      )
    },
  },
  {
    name: 'decodeHeightRequest',
    valid: [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1].map(encodeHeightRequest),
    decode: (b) => defined(decodeHeightRequest(b)),
    encode: encodeHeightRequest,
    bound: (h: number, input) => over('input bytes', input.byteLength, 16) ?? (Number.isSafeInteger(h) && h >= 0 ? undefined : `height ${h}`),
  },
  {
    name: 'decodeRangeRequest',
    valid: [
      { from: 1, count: 1, maxBytes: 0 },
      { from: 2 ** 32 - 1, count: MAX_RANGE_BLOCKS, maxBytes: 2 ** 32 - 1 },
      { from: 300, count: 16, maxBytes: 1 << 20 },
    ].map(encodeRangeRequest),
    invalid: [encodeRangeRequest({ from: 5, count: MAX_RANGE_BLOCKS + 1, maxBytes: 10 })],
    decode: (b) => defined(decodeRangeRequest(b)),
    encode: encodeRangeRequest,
    bound: (r: RangeRequest, input) =>
      over('input bytes', input.byteLength, 32) ??
      over('count', r.count, MAX_RANGE_BLOCKS) ??
      (r.from >= 1 && r.count >= 1 && r.maxBytes >= 0 && [r.from, r.count, r.maxBytes].every(Number.isSafeInteger) ? undefined : 'field out of range'),
  },
  {
    name: 'decodeTipResponse',
    valid: [
      encodeTipResponse(0, undefined),
      encodeTipResponse(2, encodeCommitCertificate(certificates[1]!)),
      encodeTipResponse(3, encodeCommitCertificate(certificates[3]!)),
    ],
    decode: (b) => defined(decodeTipResponse(b)),
    encode: (t: { height: number; certificate: CommitCertificate | null }) =>
      encodeTipResponse(t.height, t.certificate === null ? undefined : encodeCommitCertificate(t.certificate)),
    bound: (t: { height: number; certificate: CommitCertificate | null }, input) =>
      over('input bytes', input.byteLength, MAX_COMMIT_BYTES + 32) ?? (t.certificate === null ? undefined : certificateBound(t.certificate)),
  },
  {
    name: 'decodeBlockResponse',
    valid: [encodeBlockResponse(undefined, undefined), ...storedBytes.map((s, i) => encodeBlockResponse(s, servedCertificates[i]!))],
    invalid: [encodeBlockResponse(encodeStoredBlock({ block: overfullBlock, lastCommit: null }), servedCertificates[0]!)],
    decode: (b) => result(decodeBlockResponse(b, BLOCK_LIMITS)),
    encode: (s: ServedBlock | null) =>
      s === null ? encodeBlockResponse(undefined, undefined) : encodeBlockResponse(encodeStoredBlock(s.stored), encodeCommitCertificate(s.certificate)),
    bound: (s: ServedBlock | null, input) =>
      over('input bytes', input.byteLength, BLOCK_LIMITS.maxBytes + 2 * MAX_COMMIT_BYTES + 128) ?? (s === null ? undefined : servedBound(s)),
  },
  {
    name: 'decodeRangeResponse',
    valid: [[], [0], [1, 2]].map((is) => encodeRangeResponse(is.map((i) => ({ stored: storedBytes[i]!, certificate: servedCertificates[i]! })))),
    invalid: [encodeRangeResponse([0, 1, 2].map((i) => ({ stored: storedBytes[i]!, certificate: servedCertificates[i]! })))],
    decode: (b) => result(decodeRangeResponse(b, RANGE_REQUEST, BLOCK_LIMITS)),
    encode: (s: ServedBlock[]) => encodeRangeResponse(s.map(encodeServed)),
    bound: (s: ServedBlock[], input) =>
      over('input bytes', input.byteLength, maxRangeResponseBytes(RANGE_REQUEST.count, RANGE_REQUEST.maxBytes, BLOCK_LIMITS)) ??
      over('blocks', s.length, RANGE_REQUEST.count) ??
      s.map(servedBound).find((p) => p !== undefined),
  },
  {
    name: 'decodeTxFetchRequest',
    valid: [[], hashes(1), hashes(3), hashes(MAX_FETCH_HASHES)].map(encodeTxFetchRequest),
    invalid: [encodeTxFetchRequest(hashes(MAX_FETCH_HASHES + 1))],
    decode: (b) => defined(decodeTxFetchRequest(b, MAX_FETCH_HASHES)),
    encode: encodeTxFetchRequest,
    bound: (hs: Uint8Array[]) => over('hashes', hs.length, MAX_FETCH_HASHES) ?? (hs.every((h) => h.byteLength === 32) ? undefined : 'a hash not of 32 bytes'),
  },
  {
    name: 'decodeTxFetchResponse',
    valid: [
      [txs[0]!, new Uint8Array(0), txs[1]!],
      [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)],
      [governance[1]!, txs[2]!, txs[4]!],
    ].map(encodeTxFetchResponse),
    invalid: [encodeTxFetchResponse([txs[0]!, txs[1]!]), encodeTxFetchResponse([txs[0]!, txs[1]!, txs[2]!, txs[3]!])],
    decode: (b) => defined(decodeTxFetchResponse(b, FETCH_COUNT, FETCH_MAX_BYTES)),
    encode: encodeTxFetchResponse,
    bound: (ts: Uint8Array[], input) =>
      over('input bytes', input.byteLength, FETCH_MAX_BYTES) ?? (ts.length === FETCH_COUNT ? undefined : `${ts.length} items, not ${FETCH_COUNT}`),
  },
  {
    name: 'decodeTxBatch',
    valid: [[txs[0]!], txs.slice(0, BATCH.maxTxs), [governance[1]!, new Uint8Array(MAX_TX_BYTES).fill(1)]].map(encodeTxBatch),
    invalid: [encodeTxBatch(txs.slice(0, BATCH.maxTxs + 1)), encodeTxBatch([]), encodeTxBatch([new Uint8Array(MAX_TX_BYTES + 1)])],
    decode: (b) => result(decodeTxBatch(b, BATCH.maxBytes, BATCH.maxTxs)),
    encode: encodeTxBatch,
    bound: (ts: Uint8Array[], input) =>
      over('input bytes', input.byteLength, BATCH.maxBytes) ??
      over('transactions', ts.length, BATCH.maxTxs) ??
      (ts.length === 0 ? 'an empty batch' : undefined) ??
      (ts.some((t) => t.byteLength > MAX_TX_BYTES) ? 'a transaction beyond MAX_TX_BYTES' : undefined),
  },
]

// ---- a MessagePack tree, for mutants that rewrite one field ----------------------------------------------------

type IntForm = 'fix' | 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'i64' | 'f32' | 'f64'
const INT_FORMS: readonly IntForm[] = ['fix', 'u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64', 'f32', 'f64']
type LenType = 'bin' | 'str' | 'arr'
/** The header forms of each sized type, by the number of length bytes (0: the fix form). */
const LEN_TAGS: Record<LenType, Partial<Record<number, number>>> = {
  bin: { 1: 0xc4, 2: 0xc5, 4: 0xc6 },
  str: { 0: 0xa0, 1: 0xd9, 2: 0xda, 4: 0xdb },
  arr: { 0: 0x90, 2: 0xdc, 4: 0xdd },
}
const FIX_LIMIT: Record<LenType, number> = { bin: 0, str: 32, arr: 16 }

/**
 * A parsed value. Sized values are written with the shortest header for their (possibly mutated) length unless
 * `pinned`; a byte string that holds a whole array is parsed as `inner`, so mutants reach nested encodings.
 */
type MpNode =
  | { readonly t: 'int'; readonly value: bigint; readonly form: IntForm }
  | { readonly t: 'bin' | 'str'; readonly lenBytes: number; readonly payload: Uint8Array; readonly inner?: MpNode; readonly pinned?: boolean }
  | { readonly t: 'arr'; readonly lenBytes: number; readonly items: readonly MpNode[]; readonly pinned?: boolean }
  | { readonly t: 'raw'; readonly bytes: Uint8Array }

function bigEndian(tag: number, n: number, v: bigint): Uint8Array {
  const out = new Uint8Array(1 + n)
  out[0] = tag
  let x = BigInt.asUintN(8 * n, v)
  for (let i = n; i >= 1; i--) {
    out[i] = Number(x & 0xffn)
    x >>= 8n
  }
  return out
}

/** `v` in the given integer form, or undefined when the form cannot hold it. */
function encodeInt(v: bigint, form: IntForm): Uint8Array | undefined {
  const fits = (lo: bigint, hi: bigint) => v >= lo && v <= hi
  const float = (tag: number, n: 4 | 8) => {
    const x = Number(v)
    if (BigInt(x) !== v || (n === 4 && Math.fround(x) !== x)) return undefined
    const out = new Uint8Array(1 + n)
    out[0] = tag
    const view = new DataView(out.buffer)
    if (n === 4) view.setFloat32(1, x)
    else view.setFloat64(1, x)
    return out
  }
  switch (form) {
    case 'fix':
      return fits(0n, 127n) || fits(-32n, -1n) ? Uint8Array.of(Number(BigInt.asUintN(8, v))) : undefined
    case 'u8':
      return fits(0n, 0xffn) ? bigEndian(0xcc, 1, v) : undefined
    case 'u16':
      return fits(0n, 0xffffn) ? bigEndian(0xcd, 2, v) : undefined
    case 'u32':
      return fits(0n, 0xffff_ffffn) ? bigEndian(0xce, 4, v) : undefined
    case 'u64':
      return fits(0n, U64_MAX) ? bigEndian(0xcf, 8, v) : undefined
    case 'i8':
      return fits(-0x80n, 0x7fn) ? bigEndian(0xd0, 1, v) : undefined
    case 'i16':
      return fits(-0x8000n, 0x7fffn) ? bigEndian(0xd1, 2, v) : undefined
    case 'i32':
      return fits(-0x8000_0000n, 0x7fff_ffffn) ? bigEndian(0xd2, 4, v) : undefined
    case 'i64':
      return fits(-(1n << 63n), (1n << 63n) - 1n) ? bigEndian(0xd3, 8, v) : undefined
    case 'f32':
      return float(0xca, 4)
    case 'f64':
      return float(0xcb, 8)
  }
}

function lenHeader(t: LenType, lenBytes: number, n: number): Uint8Array | undefined {
  const tag = LEN_TAGS[t][lenBytes]
  if (tag === undefined) return undefined
  if (lenBytes === 0) return n < FIX_LIMIT[t] ? Uint8Array.of(tag | n) : undefined
  return n < 2 ** (8 * lenBytes) ? bigEndian(tag, lenBytes, BigInt(n)) : undefined
}

function shortestLen(t: LenType, n: number): number {
  if (n < FIX_LIMIT[t]) return 0
  if (n < 0x100 && t !== 'arr') return 1
  return n < 0x10000 ? 2 : 4
}

/** The bytes each parsed node was read from: what a mutant copies for every node off the path to its change. */
const spans = new WeakMap<MpNode, Uint8Array>()

function parseNode(b: Uint8Array, off: number, depth: number): { node: MpNode; end: number } | undefined {
  const r = parseValue(b, off, depth)
  if (r !== undefined) spans.set(r.node, b.subarray(off, r.end))
  return r
}

function parseValue(b: Uint8Array, off: number, depth: number): { node: MpNode; end: number } | undefined {
  if (off >= b.byteLength || depth > 12) return undefined
  const t = b[off]!
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const has = (n: number) => off + n <= b.byteLength
  const int = (n: number, v: () => bigint, form: IntForm) => (has(1 + n) ? { node: { t: 'int' as const, value: v(), form }, end: off + 1 + n } : undefined)
  const raw = (n: number) => (has(n) ? { node: { t: 'raw' as const, bytes: b.subarray(off, off + n) }, end: off + n } : undefined)
  if (t <= 0x7f) return { node: { t: 'int', value: BigInt(t), form: 'fix' }, end: off + 1 }
  if (t >= 0xe0) return { node: { t: 'int', value: BigInt(t - 0x100), form: 'fix' }, end: off + 1 }
  if (t >= 0x90 && t <= 0x9f) return parseArray(b, off + 1, t - 0x90, 0, depth)
  if (t >= 0xa0 && t <= 0xbf) return parseSized('str', b, off + 1, t - 0xa0, 0, depth)
  switch (t) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return raw(1)
    case 0xca:
      return raw(5)
    case 0xcb:
      return raw(9)
    case 0xc4:
    case 0xd9:
      return has(2) ? parseSized(t === 0xc4 ? 'bin' : 'str', b, off + 2, b[off + 1]!, 1, depth) : undefined
    case 0xc5:
    case 0xda:
      return has(3) ? parseSized(t === 0xc5 ? 'bin' : 'str', b, off + 3, view.getUint16(off + 1), 2, depth) : undefined
    case 0xc6:
    case 0xdb:
      return has(5) ? parseSized(t === 0xc6 ? 'bin' : 'str', b, off + 5, view.getUint32(off + 1), 4, depth) : undefined
    case 0xdc:
      return has(3) ? parseArray(b, off + 3, view.getUint16(off + 1), 2, depth) : undefined
    case 0xdd:
      return has(5) ? parseArray(b, off + 5, view.getUint32(off + 1), 4, depth) : undefined
    case 0xcc:
      return int(1, () => BigInt(view.getUint8(off + 1)), 'u8')
    case 0xcd:
      return int(2, () => BigInt(view.getUint16(off + 1)), 'u16')
    case 0xce:
      return int(4, () => BigInt(view.getUint32(off + 1)), 'u32')
    case 0xcf:
      return int(8, () => view.getBigUint64(off + 1), 'u64')
    case 0xd0:
      return int(1, () => BigInt(view.getInt8(off + 1)), 'i8')
    case 0xd1:
      return int(2, () => BigInt(view.getInt16(off + 1)), 'i16')
    case 0xd2:
      return int(4, () => BigInt(view.getInt32(off + 1)), 'i32')
    case 0xd3:
      return int(8, () => view.getBigInt64(off + 1), 'i64')
    default:
      return undefined // maps and extensions: never in a valid encoding
  }
}

function parseSized(t: 'bin' | 'str', b: Uint8Array, start: number, n: number, lenBytes: number, depth: number) {
  if (start + n > b.byteLength) return undefined
  const payload = b.subarray(start, start + n)
  let inner: MpNode | undefined
  const first = payload[0]
  if (t === 'bin' && first !== undefined && ((first >= 0x90 && first <= 0x9f) || first === 0xdc || first === 0xdd)) {
    const r = parseNode(payload, 0, depth + 1)
    if (r !== undefined && r.end === payload.byteLength) inner = r.node
  }
  return { node: { t, lenBytes, payload, ...(inner === undefined ? {} : { inner }) } as MpNode, end: start + n }
}

function parseArray(b: Uint8Array, start: number, n: number, lenBytes: number, depth: number): { node: MpNode; end: number } | undefined {
  if (n > b.byteLength - start) return undefined
  const items: MpNode[] = []
  let off = start
  for (let i = 0; i < n; i++) {
    const r = parseNode(b, off, depth + 1)
    if (r === undefined) return undefined
    items.push(r.node)
    off = r.end
  }
  return { node: { t: 'arr', lenBytes, items }, end: off }
}

/** A parsed seed: its nodes in preorder, each with the index of its parent (-1 for the root), and indexes by kind. */
interface Tree {
  readonly root: MpNode
  readonly nodes: readonly MpNode[]
  readonly parents: readonly number[]
  /** Integers and sized values: the nodes with other forms. */
  readonly sized: readonly number[]
  readonly ints: readonly number[]
  readonly arrays: readonly number[]
  /** Byte and text strings. */
  readonly strings: readonly number[]
}

function treeOf(root: MpNode): Tree {
  const nodes: MpNode[] = []
  const parents: number[] = []
  const visit = (n: MpNode, parent: number) => {
    const i = nodes.push(n) - 1
    parents.push(parent)
    if (n.t === 'arr') for (const item of n.items) visit(item, i)
    else if (n.t === 'bin' && n.inner !== undefined) visit(n.inner, i)
  }
  visit(root, -1)
  const where = (f: (n: MpNode) => boolean) => nodes.flatMap((n, i) => (f(n) ? [i] : []))
  return {
    root,
    nodes,
    parents,
    sized: where((n) => n.t !== 'raw'),
    ints: where((n) => n.t === 'int'),
    arrays: where((n) => n.t === 'arr'),
    strings: where((n) => n.t === 'bin' || n.t === 'str'),
  }
}

/**
 * The tree's bytes with node `i` replaced: the nodes on the path to it written again (lengths that changed get the
 * shortest header, as the canonical encoder writes them), every other node copied; undefined when a pinned header
 * form cannot hold its length.
 */
function replaceNode(tree: Tree, i: number, replacement: MpNode): Uint8Array | undefined {
  const path = new Set<MpNode>()
  for (let j = i; j >= 0; j = tree.parents[j]!) path.add(tree.nodes[j]!)
  return serialize(tree.root, { target: tree.nodes[i]!, replacement, path })
}

interface Change {
  readonly target: MpNode
  readonly replacement: MpNode
  readonly path: ReadonlySet<MpNode>
}

function serialize(node: MpNode, change: Change): Uint8Array | undefined {
  const chunks: Uint8Array[] = []
  return write(node, change, chunks) ? concat(...chunks) : undefined
}

function write(original: MpNode, change: Change, out: Uint8Array[]): boolean {
  const span = spans.get(original)
  if (span !== undefined && !change.path.has(original)) {
    out.push(span)
    return true
  }
  const n = original === change.target ? change.replacement : original
  switch (n.t) {
    case 'raw':
      out.push(n.bytes)
      return true
    case 'int': {
      const e = encodeInt(n.value, n.form)
      if (e === undefined) return false
      out.push(e)
      return true
    }
    case 'bin':
    case 'str': {
      const payload = n.inner === undefined ? n.payload : serialize(n.inner, change)
      if (payload === undefined) return false
      const h = lenHeader(n.t, n.pinned === true ? n.lenBytes : shortestLen(n.t, payload.byteLength), payload.byteLength)
      if (h === undefined) return false
      out.push(h, payload)
      return true
    }
    case 'arr': {
      const h = lenHeader('arr', n.pinned === true ? n.lenBytes : shortestLen('arr', n.items.length), n.items.length)
      if (h === undefined) return false
      out.push(h)
      return n.items.every((item) => write(item, change, out))
    }
  }
}

/** Every other header or integer form of a node that holds the same length or number. */
function otherForms(n: MpNode): MpNode[] {
  if (n.t === 'int') return INT_FORMS.filter((f) => f !== n.form).map((form) => ({ ...n, form }))
  if (n.t === 'raw') return []
  const forms = Object.keys(LEN_TAGS[n.t]).map(Number)
  return forms.filter((f) => f !== n.lenBytes).map((lenBytes) => ({ ...n, lenBytes, pinned: true }))
}

// ---- mutants --------------------------------------------------------------------------------------------------

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0f, 0x10, 0x1f, 0x20, 0x40, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xe0]
const INTERESTING_VALUES: Canonical[] = [
  0,
  1,
  -1,
  2,
  0x7f,
  0x80,
  0xff,
  0x100,
  0xffff,
  0x10000,
  2 ** 32 - 1,
  -(2 ** 31),
  0n,
  1n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 63n,
  U64_MAX,
]
const OTHER_TYPES: Canonical[] = [null, true, false, 0, new Uint8Array(0), '', [], [null], new Uint8Array(32), 'tally-test', 1n]

/** A byte the PRNG picks among the interesting ones, the MessagePack type bytes 0xc0-0xdf and any. */
function interestingByte(rng: Rng): number {
  const k = rng.int(3)
  if (k === 0) return rng.pick(INTERESTING_BYTES)
  if (k === 1) return 0xc0 + rng.int(0x20)
  return rng.int(256)
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.byteLength
  }
  return out
}

/** One byte-level mutation of `b` and its description. */
function byteMutant(rng: Rng, b: Uint8Array, others: readonly Uint8Array[]): { bytes: Uint8Array; how: string } {
  const n = b.byteLength
  const at = rng.int(n)
  const k = n === 0 ? 5 : rng.int(11)
  switch (k) {
    case 0: {
      const bit = rng.int(8)
      const out = b.slice()
      out[at]! ^= 1 << bit
      return { bytes: out, how: `flip bit ${bit} of byte ${at}` }
    }
    case 1:
    case 2: {
      const v = interestingByte(rng)
      const out = b.slice()
      out[at] = v
      return { bytes: out, how: `byte ${at} := 0x${v.toString(16)}` }
    }
    case 3: {
      const d = rng.chance(0.5) ? 1 : -1
      const out = b.slice()
      out[at] = (out[at]! + d) & 0xff
      return { bytes: out, how: `byte ${at} ${d > 0 ? '+' : '-'}= 1` }
    }
    case 4:
      return { bytes: b.slice(0, at), how: `truncate to ${at} bytes` }
    case 5: {
      const extra = Uint8Array.from({ length: 1 + rng.int(8) }, () => interestingByte(rng))
      return { bytes: concat(b, extra), how: `append ${toHex(extra)}` }
    }
    case 6: {
      const from = rng.int(n)
      const len = 1 + rng.int(Math.min(64, n - from))
      const where = rng.int(n + 1)
      return { bytes: concat(b.subarray(0, where), b.subarray(from, from + len), b.subarray(where)), how: `copy bytes ${from}+${len} to ${where}` }
    }
    case 7: {
      const len = 1 + rng.int(Math.min(64, n - at))
      return { bytes: concat(b.subarray(0, at), b.subarray(at + len)), how: `delete bytes ${at}+${len}` }
    }
    case 8: {
      const len = rng.int(2 * n + 8)
      return { bytes: rng.bytes(len), how: `${len} random bytes` }
    }
    case 9: {
      const other = rng.pick(others)
      const cut = rng.int(other.byteLength + 1)
      return { bytes: concat(b.subarray(0, at), other.subarray(cut)), how: `bytes 0-${at} then another seed from ${cut}` }
    }
    default: {
      const out = b.slice()
      const hows: string[] = []
      for (let i = 2 + rng.int(3); i > 0; i--) {
        const p = rng.int(n)
        out[p] = interestingByte(rng)
        hows.push(`${p}:=0x${out[p]!.toString(16)}`)
      }
      return { bytes: out, how: `bytes ${hows.join(' ')}` }
    }
  }
}

/** One structure-aware mutation of a seed's tree, or undefined when it does not serialize. */
function treeMutant(rng: Rng, tree: Tree, others: readonly Uint8Array[]): { bytes: Uint8Array; how: string } | undefined {
  // the kind of change first, then a node it applies to: arrays are few among a seed's nodes, and are where counts
  // (and so bounds) live
  const k = rng.int(5)
  const kinds = k === 0 ? tree.sized : k === 1 ? tree.ints : k === 2 ? tree.arrays : k === 3 ? tree.strings : undefined
  const i = kinds === undefined || kinds.length === 0 ? rng.int(tree.nodes.length) : rng.pick(kinds)
  const node = tree.nodes[i]!
  const replace = (r: MpNode, how: string) => {
    const bytes = replaceNode(tree, i, r)
    return bytes === undefined ? undefined : { bytes, how: `node ${i}: ${how}` }
  }
  if (k === 0 || (k === 1 && node.t === 'int' && rng.chance(0.5))) {
    const forms = otherForms(node)
    if (forms.length > 0) return replace(rng.pick(forms), 'another form')
  }
  if (k === 1) {
    const v = rng.pick(INTERESTING_VALUES)
    return replace({ t: 'raw', bytes: encodeCanonical(v) }, `:= ${String(v)}`)
  }
  if (k === 2 && node.t === 'arr') {
    const items = [...node.items]
    const j = rng.int(Math.max(1, items.length))
    const op = items.length === 0 ? 3 : rng.int(4)
    if (op === 0) items.splice(j, 1)
    else if (op === 1) items.splice(j, 0, ...Array.from({ length: 1 + rng.int(2) }, () => items[j]!))
    else if (op === 2) [items[j], items[0]] = [items[0]!, items[j]!]
    else items.push({ t: 'raw', bytes: encodeCanonical(rng.pick(OTHER_TYPES)) })
    return replace({ ...node, items }, ['drop', 'duplicate', 'swap with the first', 'append to'][op]!.concat(` item ${j}`))
  }
  if (k === 3 && (node.t === 'bin' || node.t === 'str')) {
    const m = byteMutant(rng, node.payload, others)
    return replace({ t: node.t, lenBytes: node.lenBytes, payload: m.bytes }, `payload ${m.how}`)
  }
  const v = rng.pick(OTHER_TYPES)
  return replace({ t: 'raw', bytes: encodeCanonical(v) }, `:= ${show(v)}`)
}

// ---- the run --------------------------------------------------------------------------------------------------

/**
 * Inputs per decoder: the seeds, the empty input, truncations, every field in another form, arrays resized, random
 * mutants.
 */
const BUDGET = 3000
/** Seeds at most this long are truncated at every position. */
const TRUNCATE_ALL_BELOW = 400
const BASE_SEED = 0x7a11

function show(v: unknown): string {
  const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `0x${toHex(x)}` : x))
  return s === undefined ? String(v) : s.length > 600 ? `${s.slice(0, 600)}… (${s.length} chars)` : s
}

function hexOf(b: Uint8Array): string {
  return b.byteLength <= 1024 ? toHex(b) : `${toHex(b.subarray(0, 512))}… (${b.byteLength} bytes; regenerate it from the seed and input number)`
}

interface Input {
  readonly bytes: Uint8Array
  readonly how: string
  /** True for a valid seed, false for an over-limit seed, undefined for a mutant. */
  readonly expectOk?: boolean
}

function* inputsOf(t: Target, rng: Rng): Generator<Input> {
  const seeds = [...t.valid, ...(t.invalid ?? [])]
  yield { bytes: new Uint8Array(0), how: 'the empty input' }
  for (const [i, s] of t.valid.entries()) yield { bytes: s, how: `valid seed ${i}`, expectOk: true }
  for (const [i, s] of (t.invalid ?? []).entries()) yield { bytes: s, how: `over-limit seed ${i}`, expectOk: false }
  let count = 1 + seeds.length
  // every truncation of the short seeds, sampled down to a third of the budget
  const cuts: { seed: number; n: number }[] = []
  for (const [i, s] of seeds.entries()) if (s.byteLength <= TRUNCATE_ALL_BELOW) for (let n = 1; n < s.byteLength; n++) cuts.push({ seed: i, n })
  const cutBudget = Math.floor(BUDGET / 3)
  for (let j = 0; j < Math.min(cuts.length, cutBudget); j++, count++) {
    const c = cuts.length <= cutBudget ? cuts[j]! : rng.pick(cuts)
    yield { bytes: seeds[c.seed]!.subarray(0, c.n), how: `seed ${c.seed} truncated to ${c.n} bytes` }
  }
  const trees = seeds.map((s) => {
    const r = parseNode(s, 0, 0)
    assert.ok(r !== undefined && r.end === s.byteLength, `${t.name}: a seed does not parse as one MessagePack value`)
    return treeOf(r.node)
  })
  // every field of every seed in every other form, sampled down to a third of the budget
  const forms: { seed: number; node: number; form: MpNode }[] = []
  for (const [s, tree] of trees.entries()) for (const [i, n] of tree.nodes.entries()) for (const form of otherForms(n)) forms.push({ seed: s, node: i, form })
  const formBudget = Math.floor(BUDGET / 3)
  for (let j = 0; j < Math.min(forms.length, formBudget); j++) {
    const f = forms.length <= formBudget ? forms[j]! : rng.pick(forms)
    const tree = trees[f.seed]!
    const bytes = replaceNode(tree, f.node, f.form)
    if (bytes === undefined) continue
    count++
    yield { bytes, how: `seed ${f.seed} node ${f.node} in another form` }
  }
  // every array of every seed one item shorter and one longer: counts are where shapes and bounds live
  const resized: { seed: number; node: number; items: MpNode[]; how: string }[] = []
  for (const [s, tree] of trees.entries()) {
    for (const i of tree.arrays) {
      const items = (tree.nodes[i] as Extract<MpNode, { t: 'arr' }>).items
      const last = items[items.length - 1]
      if (last !== undefined) resized.push({ seed: s, node: i, items: items.slice(0, -1), how: 'its last item dropped' })
      if (last !== undefined) resized.push({ seed: s, node: i, items: [...items, last], how: 'its last item repeated' })
      resized.push({ seed: s, node: i, items: [...items, { t: 'raw', bytes: Uint8Array.of(0xc0) }], how: 'nil appended' })
    }
  }
  const resizeBudget = Math.floor(BUDGET / 6)
  for (let j = 0; j < Math.min(resized.length, resizeBudget); j++) {
    const r = resized.length <= resizeBudget ? resized[j]! : rng.pick(resized)
    const tree = trees[r.seed]!
    const bytes = replaceNode(tree, r.node, { ...(tree.nodes[r.node] as Extract<MpNode, { t: 'arr' }>), items: r.items })
    if (bytes === undefined) continue
    count++
    yield { bytes, how: `seed ${r.seed} array node ${r.node} with ${r.how}` }
  }
  while (count < BUDGET) {
    const s = rng.int(seeds.length)
    const m = rng.chance(0.5) ? byteMutant(rng, seeds[s]!, seeds) : treeMutant(rng, trees[s]!, seeds)
    if (m === undefined) continue
    count++
    yield { bytes: m.bytes, how: `seed ${s}, ${m.how}` }
  }
}

interface Report {
  inputs: number
  accepted: number
  failures: { size: number; text: string }[]
}

function fuzz(t: Target, seed: number): Report {
  const rng = new Rng(seed)
  const report: Report = { inputs: 0, accepted: 0, failures: [] }
  let index = 0
  for (const input of inputsOf(t, rng)) {
    const n = index++
    report.inputs++
    const fail = (problem: string, extra = '') =>
      report.failures.push({
        size: input.bytes.byteLength,
        text: `${t.name} [seed ${seed}, input #${n}: ${input.how}] ${problem}\n  input (${input.bytes.byteLength} bytes): ${hexOf(input.bytes)}${extra}`,
      })
    let out: Outcome
    try {
      out = t.decode(input.bytes)
    } catch (e) {
      fail(`threw ${(e as Error)?.stack ?? String(e)}`)
      continue
    }
    if (input.expectOk !== undefined && out.ok !== input.expectOk) fail(input.expectOk ? 'refused a valid encoding' : 'accepted an encoding beyond its bounds')
    const disagreement = t.agree?.(input.bytes, out)
    if (disagreement !== undefined) fail(disagreement, out.ok ? `\n  decoded: ${show(out.value)}` : '')
    if (!out.ok) continue
    report.accepted++
    const value = out.value
    const decoded = () => `\n  decoded: ${show(value)}`
    let again: Uint8Array | undefined
    try {
      again = t.encode(out.value, input.bytes)
    } catch (e) {
      fail(`decoded a value its encoder refuses: ${(e as Error).message}`, decoded())
    }
    if (again !== undefined && !bytesEqual(again, input.bytes))
      fail('accepted a non-canonical encoding', `${decoded()}\n  re-encoded (${again.byteLength} bytes): ${hexOf(again)}`)
    const beyond = t.bound?.(out.value, input.bytes)
    if (beyond !== undefined) fail(`returned a value beyond its bounds: ${beyond}`, decoded())
  }
  return report
}

describe('wire decoders under deterministic mutation', () => {
  for (const [i, t] of targets.entries()) {
    it(`${t.name}: never throws, accepts only canonical encodings, stays within its bounds`, (ctx) => {
      const seed = BASE_SEED + i
      const r = fuzz(t, seed)
      ctx.diagnostic(`${t.name}: seed ${seed}, ${r.inputs} inputs, ${r.accepted} decoded, ${r.failures.length} failures`)
      const shortest = r.failures.sort((a, b) => a.size - b.size).slice(0, 5)
      assert.equal(
        r.failures.length,
        0,
        `${r.failures.length} failure(s), the ${shortest.length} on the shortest inputs:\n${shortest.map((f) => f.text).join('\n\n')}`,
      )
    })
  }
})
