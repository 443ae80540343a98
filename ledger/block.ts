import { ADDRESS_LENGTH } from '../crypto/address.js'
import { decodeCanonical, encodeCanonical, type Canonical } from '../crypto/canonical.js'
import { malformed, type DecodeError, type DecodeResult } from '../crypto/decodeError.js'
import { HASH_LENGTH, sha256, sha256Into } from '../crypto/hash.js'
import { ok } from '../crypto/result.js'
import { MAX_TX_BYTES, isValidChainId } from './transaction.js'

/**
 * The block format (pure).
 *
 * Header bytes: `canonical(["tally/header/v2", chainId, height, time, previousBlockHash, txRoot, stateRoot, proposer,
 * validatorSetHash, nextValidatorSetHash, lastCommitHash, evidenceRoot])`, height and time as u64 (the fixed 9-byte
 * form: msgpackr would write a safe integer above 2^32 as a float64, which no other implementation would reproduce);
 * block hash = SHA-256 of the header bytes. `validatorSetHash` is the hash of the set that decides this height and
 * `nextValidatorSetHash` that of the next height's, so a client holding a trusted header knows which set must sign
 * the next one (ledger/governance.ts changes sets two heights after the block that decides a change).
 * Block bytes: `canonical([header tuple, [tx wire bytes, ...], [evidence bytes, ...]])`; evidence items are
 * equivocation proofs in the consensus encoding (consensus/evidence.ts), opaque to this module.
 * Transaction root and evidence root: RFC 6962-style binary Merkle roots over the items' SHA-256 hashes, so a
 * proposal that carries only hashes can be checked against the header (see {@link txRoot}).
 */

/** Domain tag heading every header encoding. */
export const HEADER_DOMAIN = 'tally/header/v2'
/** Hard bound on a block's encoded size; genesis `params.block.maxBytes` must not exceed it. */
export const MAX_BLOCK_BYTES = 8 * 1024 * 1024
/** Hard bound on a block's transaction count; genesis `params.block.maxTxs` must not exceed it. */
export const MAX_BLOCK_TXS = 50_000
/** Upper bound on a header's encoded size (a header is about 320 bytes). */
export const MAX_HEADER_BYTES = 512
/** Most evidence items a block may carry. */
export const MAX_BLOCK_EVIDENCE = 64
/** Upper bound on one evidence item's encoding (two signed votes or proposals). */
export const MAX_EVIDENCE_BYTES = 1024
/** The all-zero hash: `previousBlockHash` and `lastCommitHash` at height 1. */
export const ZERO_HASH: Uint8Array = new Uint8Array(HASH_LENGTH)
/** Root of an empty transaction list: SHA-256 of the empty string (RFC 6962). */
export const EMPTY_TX_ROOT: Uint8Array = sha256(new Uint8Array(0))

/** A block header: everything the block hash commits to. */
export interface BlockHeader {
  readonly chainId: string
  /** Positive safe integer; the first block is height 1. */
  readonly height: number
  /** Unix milliseconds, a non-negative safe integer. */
  readonly time: number
  /** Hash of the previous block's header; zeros at height 1. */
  readonly previousBlockHash: Uint8Array
  /** {@link txRoot} of the block's transaction hashes. */
  readonly txRoot: Uint8Array
  /** The state root AFTER executing this block. */
  readonly stateRoot: Uint8Array
  /** The proposer's 20-byte address. */
  readonly proposer: Uint8Array
  /** Hash of the validator set that decides this block. */
  readonly validatorSetHash: Uint8Array
  /** Hash of the validator set that decides the next height. */
  readonly nextValidatorSetHash: Uint8Array
  /** Hash of the previous height's commit certificate; zeros at height 1. */
  readonly lastCommitHash: Uint8Array
  /** {@link txRoot} of the SHA-256 hashes of the block's evidence items. */
  readonly evidenceRoot: Uint8Array
}

/** A block: its header, its transactions as wire bytes and its evidence items. */
export interface Block {
  readonly header: BlockHeader
  readonly txs: readonly Uint8Array[]
  readonly evidence: readonly Uint8Array[]
}

/** Why bytes are not a block or header: the decode failure every strict decoder shares. */
export type BlockDecodeError = DecodeError

/** The result of a strict decode. */
export type BlockDecodeResult<T> = DecodeResult<T>

function headerTuple(h: BlockHeader): Canonical {
  return [
    HEADER_DOMAIN,
    h.chainId,
    BigInt(h.height),
    BigInt(h.time),
    h.previousBlockHash,
    h.txRoot,
    h.stateRoot,
    h.proposer,
    h.validatorSetHash,
    h.nextValidatorSetHash,
    h.lastCommitHash,
    h.evidenceRoot,
  ]
}

function isZero(b: Uint8Array): boolean {
  const n = b.byteLength
  for (let i = 0; i < n; i++) if (b[i] !== 0) return false
  return true
}

/** The first problem with a header's fields, or undefined. */
export function checkHeader(h: BlockHeader): string | undefined {
  if (!isValidChainId(h.chainId)) return 'chainId must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric'
  if (!Number.isSafeInteger(h.height) || h.height < 1) return 'height must be a positive safe integer'
  if (!Number.isSafeInteger(h.time) || h.time < 0) return 'time must be a non-negative safe integer (unix ms)'
  const hashes = ['previousBlockHash', 'txRoot', 'stateRoot', 'validatorSetHash', 'nextValidatorSetHash', 'lastCommitHash', 'evidenceRoot'] as const
  for (const f of hashes) {
    const v = h[f]
    if (!(v instanceof Uint8Array) || v.byteLength !== HASH_LENGTH) return `${f} must be ${HASH_LENGTH} bytes`
  }
  if (!(h.proposer instanceof Uint8Array) || h.proposer.byteLength !== ADDRESS_LENGTH) return `proposer must be ${ADDRESS_LENGTH} bytes`
  // "previousBlockHash and lastCommitHash are zeros at height 1", and only there.
  for (const f of ['previousBlockHash', 'lastCommitHash'] as const) {
    if ((h.height === 1) !== isZero(h[f])) return h.height === 1 ? `${f} must be zeros at height 1` : `${f} must not be zeros above height 1`
  }
  return undefined
}

/** Encodes a header canonically. Throws on fields outside the format (a caller's bug). */
export function encodeBlockHeader(header: BlockHeader): Uint8Array {
  const problem = checkHeader(header)
  if (problem !== undefined) throw new RangeError(`encodeBlockHeader: ${problem}`)
  return encodeCanonical(headerTuple(header))
}

/** The block hash: SHA-256 of the canonical header encoding. */
export function blockHash(header: BlockHeader): Uint8Array {
  return sha256(encodeBlockHeader(header))
}

function parseHeader(value: unknown): BlockDecodeResult<BlockHeader> {
  const fail = malformed
  if (!Array.isArray(value) || value.length !== 12) return fail('a header is an array of 12 fields')
  const [
    tag,
    chainId,
    height,
    time,
    previousBlockHash,
    txRootValue,
    stateRoot,
    proposer,
    validatorSetHash,
    nextValidatorSetHash,
    lastCommitHash,
    evidenceRoot,
  ] = value as unknown[]
  if (tag !== HEADER_DOMAIN) return fail(`header tag must be ${HEADER_DOMAIN}`)
  if (typeof height !== 'bigint' || height > BigInt(Number.MAX_SAFE_INTEGER)) return fail('height must be a u64 below 2^53')
  if (typeof time !== 'bigint' || time > BigInt(Number.MAX_SAFE_INTEGER)) return fail('time must be a u64 below 2^53')
  const header = {
    chainId,
    height: Number(height),
    time: Number(time),
    previousBlockHash,
    txRoot: txRootValue,
    stateRoot,
    proposer,
    validatorSetHash,
    nextValidatorSetHash,
    lastCommitHash,
    evidenceRoot,
  } as BlockHeader
  const problem = checkHeader(header)
  if (problem !== undefined) return fail(problem)
  return ok(header)
}

/** Decodes header bytes strictly (bounded, canonical, exact shape). Never throws. */
export function decodeBlockHeader(bytes: Uint8Array): BlockDecodeResult<BlockHeader> {
  const d = decodeCanonical(bytes, MAX_HEADER_BYTES)
  if (!d.ok) return d
  return parseHeader(d.value)
}

/** Encodes a block canonically. Throws on fields outside the format (a caller's bug). */
export function encodeBlock(block: Block): Uint8Array {
  const problem = checkHeader(block.header)
  if (problem !== undefined) throw new RangeError(`encodeBlock: ${problem}`)
  if (block.txs.length > MAX_BLOCK_TXS) throw new RangeError(`encodeBlock: more than ${MAX_BLOCK_TXS} transactions`)
  if (block.evidence.length > MAX_BLOCK_EVIDENCE) throw new RangeError(`encodeBlock: more than ${MAX_BLOCK_EVIDENCE} evidence items`)
  return encodeCanonical([headerTuple(block.header), [...block.txs], [...block.evidence]])
}

/**
 * Decodes block bytes strictly: at most `maxBytes` (default and ceiling {@link MAX_BLOCK_BYTES}), canonical, exact
 * shape, at most `maxTxs` transactions of at most MAX_TX_BYTES each. Transactions are not decoded here
 * (the validity rule, ledger/blockValidity.ts, does). Never throws.
 *
 * A block is read in one pass over its headers ({@link readBlockLayout}) when it has the layout its canonical encoding
 * gives a valid block; anything else goes through the general strict decoder ({@link decodeBlockStrict}), which gives
 * the reason. Both accept exactly the same bytes with the same value.
 */
export function decodeBlock(bytes: Uint8Array, limits: { maxBytes?: number; maxTxs?: number } = {}): BlockDecodeResult<Block> {
  const maxBytes = Math.min(limits.maxBytes ?? MAX_BLOCK_BYTES, MAX_BLOCK_BYTES)
  const maxTxs = Math.min(limits.maxTxs ?? MAX_BLOCK_TXS, MAX_BLOCK_TXS)
  const block = bytes instanceof Uint8Array && bytes.byteLength <= maxBytes ? readBlockLayout(bytes, maxTxs) : undefined
  if (block !== undefined) return ok(block)
  return decodeBlockStrict(bytes, { maxBytes, maxTxs })
}

/**
 * The general strict decoder of blocks: canonical MessagePack (decoded, then re-encoded and compared), then the shape
 * and bounds of {@link decodeBlock}. {@link decodeBlock} uses it for whatever does not read as a valid block's layout.
 */
export function decodeBlockStrict(bytes: Uint8Array, limits: { maxBytes?: number; maxTxs?: number } = {}): BlockDecodeResult<Block> {
  const fail = malformed
  const maxBytes = Math.min(limits.maxBytes ?? MAX_BLOCK_BYTES, MAX_BLOCK_BYTES)
  const maxTxs = Math.min(limits.maxTxs ?? MAX_BLOCK_TXS, MAX_BLOCK_TXS)
  const d = decodeCanonical(bytes, maxBytes)
  if (!d.ok) return fail(d.error.reason)
  if (!Array.isArray(d.value) || d.value.length !== 3) return fail('a block is [header, txs, evidence]')
  const [rawHeader, rawTxs, rawEvidence] = d.value as unknown[]
  const header = parseHeader(rawHeader)
  if (!header.ok) return header
  if (!Array.isArray(rawTxs)) return fail('txs must be an array')
  if (rawTxs.length > maxTxs) return fail(`more than ${maxTxs} transactions`)
  for (let i = 0; i < rawTxs.length; i++) {
    const t: unknown = rawTxs[i]
    if (!(t instanceof Uint8Array) || t.byteLength === 0 || t.byteLength > MAX_TX_BYTES) return fail(`tx ${i} must be 1-${MAX_TX_BYTES} bytes`)
  }
  if (!Array.isArray(rawEvidence)) return fail('evidence must be an array')
  if (rawEvidence.length > MAX_BLOCK_EVIDENCE) return fail(`more than ${MAX_BLOCK_EVIDENCE} evidence items`)
  for (let i = 0; i < rawEvidence.length; i++) {
    const x: unknown = rawEvidence[i]
    if (!(x instanceof Uint8Array) || x.byteLength === 0 || x.byteLength > MAX_EVIDENCE_BYTES)
      return fail(`evidence ${i} must be 1-${MAX_EVIDENCE_BYTES} bytes`)
  }
  return ok({ header: header.value, txs: rawTxs as Uint8Array[], evidence: rawEvidence as Uint8Array[] })
}

/**
 * Reads a block in the layout the canonical encoding gives a valid one, or returns undefined for any other bytes
 * (which may still be a valid block in no other way, or malformed in many: the strict decoder says how). The layout:
 * `0x93` (array of 3); the header's 12 fields, which must decode as a header by {@link decodeBlockHeader} (strict, so
 * canonical); then the transactions and the evidence, each an array of byte strings with the shortest headers the
 * encoder writes (fixarray below 16 items, array 16 below 2^16, array 32; bin 8 below 256 bytes, bin 16 below 2^16)
 * and the sizes {@link decodeBlockStrict} allows; nothing after. A block's bytes are its header's, then its items'
 * with their headers, so this accepts exactly the canonical encodings of valid blocks, without decoding and
 * re-encoding the transactions. Byte arrays are plain Uint8Array views of `bytes`.
 */
function readBlockLayout(b: Uint8Array, maxTxs: number): Block | undefined {
  const n = b.byteLength
  if (n < 2 || b[0] !== 0x93 || b[1] !== 0x9c) return undefined
  let off = 2
  for (let i = 0; i < 12 && off >= 0; i++) off = skipHeaderField(b, off)
  if (off < 0) return undefined
  const header = decodeBlockHeader(b.subarray(1, off))
  if (!header.ok) return undefined
  const txs = readByteStrings(b, off, maxTxs, MAX_TX_BYTES)
  if (txs === undefined) return undefined
  const evidence = readByteStrings(b, txs.end, MAX_BLOCK_EVIDENCE, MAX_EVIDENCE_BYTES)
  if (evidence === undefined || evidence.end !== n) return undefined
  return { header: header.value, txs: txs.items, evidence: evidence.items }
}

/**
 * The offset after the header field at `off` (a string, a byte string or a u64 in the forms a header's fields take),
 * or -1 for anything else or a field that runs past the end. Whether the field is canonical is the header decoder's
 * to judge.
 */
function skipHeaderField(b: Uint8Array, off: number): number {
  const t = b[off]
  let end: number
  if (t === undefined) return -1
  if (t >= 0xa0 && t <= 0xbf) end = off + 1 + (t - 0xa0)
  else if ((t === 0xd9 || t === 0xc4) && off + 1 < b.byteLength) end = off + 2 + b[off + 1]!
  else if (t === 0xcf || t === 0xd3) end = off + 9
  else return -1
  return end <= b.byteLength ? end : -1
}

/**
 * The array of byte strings at `off`, as views of `b`, and the offset after it: undefined unless the array and each
 * item have the shortest header for their size, it holds at most `maxItems`, and each item 1 to `maxItemBytes` bytes
 * (below 2^16).
 */
function readByteStrings(b: Uint8Array, off: number, maxItems: number, maxItemBytes: number): { items: Uint8Array[]; end: number } | undefined {
  const n = b.byteLength
  if (off >= n) return undefined
  const head = b[off]!
  let count: number
  if (head >= 0x90 && head <= 0x9f) {
    count = head - 0x90
    off += 1
  } else if (head === 0xdc && off + 3 <= n) {
    count = (b[off + 1]! << 8) | b[off + 2]!
    if (count < 16) return undefined
    off += 3
  } else if (head === 0xdd && off + 5 <= n) {
    count = b[off + 1]! * 0x1000000 + ((b[off + 2]! << 16) | (b[off + 3]! << 8) | b[off + 4]!)
    if (count < 0x10000) return undefined
    off += 5
  } else {
    return undefined
  }
  if (count > maxItems) return undefined
  const items: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    if (off + 2 > n) return undefined
    const t = b[off]!
    let len: number
    if (t === 0xc4) {
      len = b[off + 1]!
      off += 2
    } else if (t === 0xc5 && off + 3 <= n) {
      len = (b[off + 1]! << 8) | b[off + 2]!
      if (len < 0x100) return undefined
      off += 3
    } else {
      return undefined
    }
    if (len === 0 || len > maxItemBytes || off + len > n) return undefined
    items.push(new Uint8Array(b.buffer, b.byteOffset + off, len))
    off += len
  }
  return { items, end: off }
}

/**
 * The transaction root (RFC 6962 Merkle tree hash over the transaction hashes, in block order):
 * `root([]) = SHA-256()`, `root([h]) = SHA-256(0x00 || h)`, and for n > 1 with k the largest power of two below n,
 * `root(hs) = SHA-256(0x01 || root(hs[0:k]) || root(hs[k:n]))`. The 0x00/0x01 prefixes separate leaves from inner
 * nodes, so no inner node can pass as a transaction.
 *
 * Computed level by level from the leaves up, each level's hashes side by side in one array: pairing neighbours and
 * carrying an odd last node up unchanged builds exactly the tree the recursive definition splits at k.
 */
export function txRoot(txHashes: readonly Uint8Array[]): Uint8Array {
  const n = txHashes.length
  if (n === 0) return new Uint8Array(EMPTY_TX_ROOT)
  for (const h of txHashes) if (h.byteLength !== HASH_LENGTH) return txRootOfAnyItems(txHashes)
  const level = txLeafLevel(txHashes)
  for (let count = n; count > 1; ) count = txParentLevel(level, count, level)
  return level.slice(0, HASH_LENGTH)
}

/** The leaves of the transaction tree, `SHA-256(0x00 || hash)` of each 32-byte hash, side by side in one array. */
export function txLeafLevel(txHashes: readonly Uint8Array[]): Uint8Array {
  const level = new Uint8Array(txHashes.length * HASH_LENGTH)
  const leaf = new Uint8Array(1 + HASH_LENGTH)
  leaf[0] = 0x00
  for (let i = 0; i < txHashes.length; i++) {
    leaf.set(txHashes[i]!, 1)
    sha256Into(level, i * HASH_LENGTH, leaf)
  }
  return level
}

/**
 * Hashes the `count` nodes of a level of the transaction tree (side by side in `from`) pairwise into the level above,
 * written to `to` (which may be `from`: a parent goes to index i, after nodes 2i and 2i + 1 were read), a last node
 * with no neighbour carried up unchanged; returns the number of nodes of that level.
 */
export function txParentLevel(from: Uint8Array, count: number, to: Uint8Array): number {
  const inner = new Uint8Array(1 + 2 * HASH_LENGTH)
  inner[0] = 0x01
  const pairs = count >> 1
  for (let i = 0; i < pairs; i++) {
    const at = 2 * i * HASH_LENGTH
    for (let j = 0; j < 2 * HASH_LENGTH; j++) inner[1 + j] = from[at + j]!
    sha256Into(to, i * HASH_LENGTH, inner)
  }
  if (count % 2 === 1) to.set(from.subarray((count - 1) * HASH_LENGTH, count * HASH_LENGTH), pairs * HASH_LENGTH)
  return pairs + (count % 2)
}

/** {@link txRoot} by its recursive definition, for items that are not 32-byte hashes. */
function txRootOfAnyItems(items: readonly Uint8Array[]): Uint8Array {
  const leaf = new Uint8Array([0x00])
  const inner = new Uint8Array([0x01])
  const rec = (lo: number, hi: number): Uint8Array => {
    const n = hi - lo
    if (n === 1) return sha256(leaf, items[lo]!)
    let k = 1
    while (k * 2 < n) k *= 2
    return sha256(inner, rec(lo, lo + k), rec(lo + k, hi))
  }
  return rec(0, items.length)
}
