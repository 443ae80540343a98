import {
  ADDRESS_LENGTH,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  Domain,
  addressFromPublicKey,
  decodeCanonical,
  encodeCanonical,
  malformed,
  sha256,
  sign,
  signBytes,
  verify,
  keyPairFromSeed,
  type DecodeError,
  type DecodeResult,
} from '../crypto/index.js'
import { actionTuple, checkAction, parseAction, type GovernanceAction } from './governance.js'

/**
 * Transactions and their one canonical wire encoding. Two kinds:
 *  - a transfer: `[1, chainId, from, to, amount, nonce, signature]` (version, text, 32-byte public key, 20-byte
 *    address, u64, u64, 64-byte signature); sign bytes canonical `["tally/tx/v1", chainId, from, to, amount, nonce]`;
 *  - a governance vote (ledger/governance.ts): `[2, chainId, from, nonce, action, signature]`, the action a tuple
 *    (`[1, publicKey, power, peerId, name]` add, `[2, address]` remove, `[3, address, power]` set power); sign bytes
 *    canonical `["tally/gov/v1", chainId, from, nonce, action]`.
 * Hash: SHA-256 of the wire bytes. Both kinds use the sender account's nonce. Decoding accepts only bytes that
 * re-encode identically, so a signed transaction has exactly one encoding and one hash.
 */

/** The wire format version of transfers. */
export const TX_VERSION = 1
/** The wire format version of governance transactions. */
export const GOVERNANCE_TX_VERSION = 2
/** Upper bound on a transaction's wire size; decoding rejects anything longer before parsing. */
export const MAX_TX_BYTES = 512
/** Upper bound on a chain id's length. */
export const MAX_CHAIN_ID_LENGTH = 64
/** Chain ids are short printable identifiers. */
export const CHAIN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
/** Amounts and nonces are unsigned 64-bit integers. */
export const U64_MAX = (1n << 64n) - 1n

/** A transfer as the ledger sees it. `amount` is at least 1. */
export interface Transaction {
  /** Absent or 'transfer': the kind of every transaction that is not a governance vote. */
  readonly kind?: 'transfer'
  readonly chainId: string
  /** Sender's Ed25519 public key; the sender's account is its address. */
  readonly from: Uint8Array
  /** Recipient address, 20 bytes. */
  readonly to: Uint8Array
  readonly amount: bigint
  readonly nonce: bigint
  readonly signature: Uint8Array
}

/** A transaction without its signature: what the sender signs. */
export type UnsignedTransaction = Omit<Transaction, 'signature'>

/** A validator's vote for a change of the validator set (ledger/governance.ts). */
export interface GovernanceTransaction {
  readonly kind: 'governance'
  readonly chainId: string
  /** The voting validator's Ed25519 public key. */
  readonly from: Uint8Array
  readonly nonce: bigint
  readonly action: GovernanceAction
  readonly signature: Uint8Array
}

/** A governance transaction without its signature. */
export type UnsignedGovernanceTransaction = Omit<GovernanceTransaction, 'signature'>

/** Any transaction a block may hold. */
export type AnyTransaction = Transaction | GovernanceTransaction

/** A decoded transaction together with its wire bytes and hash, computed once. */
export interface DecodedTransaction<T extends AnyTransaction = AnyTransaction> {
  readonly tx: T
  readonly bytes: Uint8Array
  readonly hash: Uint8Array
}

/** True for a governance transaction. */
export function isGovernance(tx: AnyTransaction): tx is GovernanceTransaction {
  return tx.kind === 'governance'
}

/** What a transaction spends from its sender's balance (a governance vote spends nothing). */
export function spendOf(tx: AnyTransaction): bigint {
  return tx.kind === 'governance' ? 0n : tx.amount
}

/** Why bytes are not a transaction: the decode failure every strict decoder shares, whose code is the RPC's `malformed`. */
export type TxDecodeError = DecodeError

/** True when the chain id is well formed. */
export function isValidChainId(chainId: unknown): chainId is string {
  return typeof chainId === 'string' && chainId.length >= 1 && chainId.length <= MAX_CHAIN_ID_LENGTH && CHAIN_ID_RE.test(chainId)
}

/** The bytes the sender signs. */
export function txSignBytes(tx: UnsignedTransaction): Uint8Array {
  return signBytes(Domain.transaction, tx.chainId, [tx.from, tx.to, tx.amount, tx.nonce])
}

/** The bytes a validator signs for a governance vote. */
export function governanceSignBytes(tx: UnsignedGovernanceTransaction): Uint8Array {
  return signBytes(Domain.governance, tx.chainId, [tx.from, tx.nonce, actionTuple(tx.action)])
}

/** Encodes a transaction to its wire bytes. Throws on values outside the format (a caller's bug). */
export function encodeTransaction(tx: AnyTransaction): Uint8Array {
  if (tx.kind === 'governance') {
    const problem = checkGovernanceFields(tx)
    if (problem !== undefined) throw new RangeError(`encodeTransaction: ${problem}`)
    return encodeCanonical([GOVERNANCE_TX_VERSION, tx.chainId, tx.from, tx.nonce, actionTuple(tx.action), tx.signature])
  }
  const problem = checkFields(tx)
  if (problem !== undefined) throw new RangeError(`encodeTransaction: ${problem}`)
  return encodeCanonical([TX_VERSION, tx.chainId, tx.from, tx.to, tx.amount, tx.nonce, tx.signature])
}

/** The transaction hash: SHA-256 of the wire bytes. */
export function txHash(bytes: Uint8Array): Uint8Array {
  return sha256(bytes)
}

function checkFields(tx: UnsignedTransaction & { signature?: Uint8Array }): string | undefined {
  if (!isValidChainId(tx.chainId)) return 'chain id must be 1-64 characters of [A-Za-z0-9._-]'
  if (!(tx.from instanceof Uint8Array) || tx.from.byteLength !== PUBLIC_KEY_LENGTH) return `from must be a ${PUBLIC_KEY_LENGTH}-byte public key`
  if (!(tx.to instanceof Uint8Array) || tx.to.byteLength !== ADDRESS_LENGTH) return `to must be a ${ADDRESS_LENGTH}-byte address`
  if (typeof tx.amount !== 'bigint' || tx.amount < 1n || tx.amount > U64_MAX) return 'amount must be an integer from 1 to 2^64-1'
  if (typeof tx.nonce !== 'bigint' || tx.nonce < 0n || tx.nonce > U64_MAX) return 'nonce must be an integer from 0 to 2^64-1'
  if (tx.signature !== undefined && (!(tx.signature instanceof Uint8Array) || tx.signature.byteLength !== SIGNATURE_LENGTH)) {
    return `signature must be ${SIGNATURE_LENGTH} bytes`
  }
  return undefined
}

function checkGovernanceFields(tx: UnsignedGovernanceTransaction & { signature?: Uint8Array }): string | undefined {
  if (!isValidChainId(tx.chainId)) return 'chain id must be 1-64 characters of [A-Za-z0-9._-]'
  if (!(tx.from instanceof Uint8Array) || tx.from.byteLength !== PUBLIC_KEY_LENGTH) return `from must be a ${PUBLIC_KEY_LENGTH}-byte public key`
  if (typeof tx.nonce !== 'bigint' || tx.nonce < 0n || tx.nonce > U64_MAX) return 'nonce must be an integer from 0 to 2^64-1'
  const action = checkAction(tx.action)
  if (action !== undefined) return `action: ${action}`
  if (tx.signature !== undefined && (!(tx.signature instanceof Uint8Array) || tx.signature.byteLength !== SIGNATURE_LENGTH)) {
    return `signature must be ${SIGNATURE_LENGTH} bytes`
  }
  return undefined
}

/**
 * Decodes wire bytes into a transaction: bounded size, exact shape and field lengths, u64 ranges, no trailing
 * bytes, and the one canonical encoding. Never throws; the signature is not checked here.
 *
 * Every validator decodes every transaction, so the usual case, a well-formed transaction, is read straight off its
 * fixed layout ({@link readCanonicalLayout}); anything else goes through the general strict decoder
 * ({@link decodeTransactionStrict}), which gives the reason. Both accept exactly the same bytes with the same value.
 */
export function decodeTransaction(bytes: Uint8Array): DecodeResult<DecodedTransaction> {
  const tx = bytes instanceof Uint8Array ? readCanonicalLayout(bytes) : undefined
  if (tx !== undefined) return { ok: true, value: { tx, bytes, hash: txHash(bytes) } }
  return decodeTransactionStrict(bytes)
}

/**
 * The general strict decoder: canonical MessagePack (decoded, then re-encoded and compared), then the shape and
 * field checks. {@link decodeTransaction} uses it for whatever is not a well-formed transaction in its one layout.
 */
export function decodeTransactionStrict(bytes: Uint8Array): DecodeResult<DecodedTransaction> {
  const fail = malformed
  const decoded = decodeCanonical(bytes, MAX_TX_BYTES)
  if (!decoded.ok) return fail(decoded.error.reason)
  const v = decoded.value
  if (Array.isArray(v) && v[0] === GOVERNANCE_TX_VERSION) {
    if (v.length !== 6) return fail('a governance transaction is an array of 6 fields')
    const [, chainId, from, nonce, tuple, signature] = v as unknown[]
    const action = parseAction(tuple)
    if (action === undefined) return fail('action is not a governance action')
    const tx = { kind: 'governance', chainId, from, nonce, action, signature } as GovernanceTransaction
    const problem = checkGovernanceFields(tx)
    if (problem !== undefined) return fail(problem)
    if (!(signature instanceof Uint8Array)) return fail('signature missing')
    return { ok: true, value: { tx, bytes, hash: txHash(bytes) } }
  }
  if (!Array.isArray(v) || v.length !== 7) return fail('a transaction is an array of 7 fields')
  const [version, chainId, from, to, amount, nonce, signature] = v as unknown[]
  if (version !== TX_VERSION) return fail(`unsupported version ${String(version)}`)
  const tx = { chainId, from, to, amount, nonce, signature } as Transaction
  const problem = checkFields(tx)
  if (problem !== undefined) return fail(problem)
  if (!(signature instanceof Uint8Array)) return fail('signature missing')
  return { ok: true, value: { tx, bytes, hash: txHash(bytes) } }
}

/**
 * Reads a transaction in the one layout the canonical encoding gives a valid one, or returns undefined for any
 * other bytes (which may still be malformed in many ways: the strict decoder says how). The layout:
 * `0x97` (array of 7), `0x01` (version), the chain id as fixstr `0xa0|n` (n < 32) or str8 `0xd9 n` (32 ≤ n ≤ 64),
 * `0xc4 0x20` + 32-byte public key, `0xc4 0x14` + 20-byte address, amount and nonce each as `0xd3` + 8 bytes
 * (value below 2^63) or `0xcf` + 8 bytes (2^63 and above), `0xc4 0x40` + 64-byte signature, and nothing after.
 * Byte arrays are plain Uint8Array views of `bytes`.
 */
export function readCanonicalLayout(b: Uint8Array): Transaction | undefined {
  const n = b.byteLength
  if (n > MAX_TX_BYTES || n < 3 || b[0] !== 0x97 || b[1] !== TX_VERSION) return undefined
  let off: number
  let len: number
  if (b[2]! >= 0xa1 && b[2]! <= 0xbf) {
    len = b[2]! - 0xa0
    off = 3
  } else if (b[2] === 0xd9 && n > 3 && b[3]! >= 32 && b[3]! <= MAX_CHAIN_ID_LENGTH) {
    len = b[3]!
    off = 4
  } else {
    return undefined
  }
  if (off + len + 34 + 22 + 9 + 9 + 66 !== n) return undefined
  const chainId = readChainId(b, off, len)
  off += len
  if (b[off] !== 0xc4 || b[off + 1] !== PUBLIC_KEY_LENGTH) return undefined
  const from = view(b, off + 2, PUBLIC_KEY_LENGTH)
  off += 2 + PUBLIC_KEY_LENGTH
  if (b[off] !== 0xc4 || b[off + 1] !== ADDRESS_LENGTH) return undefined
  const to = view(b, off + 2, ADDRESS_LENGTH)
  off += 2 + ADDRESS_LENGTH
  const amount = readU64(b, off)
  const nonce = readU64(b, off + 9)
  if (amount === undefined || nonce === undefined) return undefined
  off += 18
  if (b[off] !== 0xc4 || b[off + 1] !== SIGNATURE_LENGTH) return undefined
  const tx = { chainId, from, to, amount, nonce, signature: view(b, off + 2, SIGNATURE_LENGTH) }
  // the layout fixes the encoding; the values obey the same rules as every other transaction's
  return checkFields(tx) === undefined ? tx : undefined
}

/** The last chain id the layout reader read, and its bytes: a block's transactions share one, read once. */
let lastChainId = ''
let lastChainIdBytes = new Uint8Array(0)

/** The `len` bytes at `off` as a string of one character per byte (the chain id, checked later like any other). */
function readChainId(b: Uint8Array, off: number, len: number): string {
  const last = lastChainIdBytes
  if (last.length === len) {
    let i = 0
    while (i < len && b[off + i] === last[i]) i++
    if (i === len) return lastChainId
  }
  let chainId = ''
  for (let i = 0; i < len; i++) chainId += String.fromCharCode(b[off + i]!)
  lastChainId = chainId
  lastChainIdBytes = b.slice(off, off + len)
  return chainId
}

/** A plain Uint8Array over part of `b` (not a Buffer even when `b` is one, as the strict decoder returns). */
function view(b: Uint8Array, off: number, length: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + off, length)
}

/** A u64 in its canonical 9-byte form at `off`: `0xd3` below 2^63, `0xcf` from 2^63 (as the encoder writes it). */
function readU64(b: Uint8Array, off: number): bigint | undefined {
  const tag = b[off]
  const high = b[off + 1]! >= 0x80
  if (!((tag === 0xd3 && !high) || (tag === 0xcf && high))) return undefined
  let hi = 0
  let lo = 0
  for (let i = 1; i <= 4; i++) hi = hi * 256 + b[off + i]!
  for (let i = 5; i <= 8; i++) lo = lo * 256 + b[off + i]!
  return (BigInt(hi) << 32n) | BigInt(lo)
}

/** Signs an unsigned transaction with the sender's 32-byte secret key (whose public key must be `from`). */
export function signTransaction(tx: UnsignedTransaction, secretKey: Uint8Array): Transaction {
  return { ...tx, signature: sign(secretKey, txSignBytes(tx)) }
}

/** Builds and signs a transfer from a secret key, returning the decoded form with bytes and hash. */
export function createTransfer(
  secretKey: Uint8Array,
  fields: { chainId: string; to: Uint8Array; amount: bigint; nonce: bigint },
): DecodedTransaction<Transaction> {
  const { publicKey } = keyPairFromSeed(secretKey)
  const tx = signTransaction({ ...fields, from: publicKey }, secretKey)
  const bytes = encodeTransaction(tx)
  return { tx, bytes, hash: txHash(bytes) }
}

/** Signs a governance vote with the validator's 32-byte secret key (whose public key must be `from`). */
export function signGovernanceTransaction(tx: Omit<UnsignedGovernanceTransaction, 'kind'>, secretKey: Uint8Array): GovernanceTransaction {
  const unsigned: UnsignedGovernanceTransaction = { kind: 'governance', ...tx }
  return { ...unsigned, signature: sign(secretKey, governanceSignBytes(unsigned)) }
}

/** The bytes a transaction's signature covers. */
export function signedBytesOf(tx: AnyTransaction): Uint8Array {
  return tx.kind === 'governance' ? governanceSignBytes(tx) : txSignBytes(tx)
}

/** `0x96` (an array of 6) and the transfer's domain tag: what a transfer's sign bytes start with. */
const TRANSFER_SIGN_PREFIX = new Uint8Array([0x96, ...encodeCanonical(Domain.transaction)])
/** A transfer's wire bytes: `0x97 0x01` before the fields it signs, `0xc4 0x40` and the signature after them. */
const TRANSFER_HEAD = 2
const TRANSFER_TAIL = 2 + SIGNATURE_LENGTH

/**
 * The bytes a decoded transaction's signature covers, the same as {@link signedBytesOf} gives for its fields. A
 * transfer's wire bytes are the canonical `[1, chainId, from, to, amount, nonce, signature]` (a decoded
 * transaction's bytes are the one encoding of its fields), and its sign bytes the canonical
 * `["tally/tx/v1", chainId, from, to, amount, nonce]`: the same encoded fields, so they are copied rather than
 * encoded again.
 */
export function signedBytesOfDecoded(d: DecodedTransaction): Uint8Array {
  const { tx, bytes } = d
  const n = bytes.byteLength
  if (tx.kind === 'governance' || n < TRANSFER_HEAD + TRANSFER_TAIL || bytes[0] !== 0x97 || bytes[1] !== TX_VERSION) return signedBytesOf(tx)
  if (bytes[n - TRANSFER_TAIL] !== 0xc4 || bytes[n - TRANSFER_TAIL + 1] !== SIGNATURE_LENGTH) return signedBytesOf(tx)
  const fields = bytes.subarray(TRANSFER_HEAD, n - TRANSFER_TAIL)
  // a plain view of a slice of Node's pool: far cheaper than an ArrayBuffer of its own, and every byte is written
  const pooled = Buffer.allocUnsafe(TRANSFER_SIGN_PREFIX.byteLength + fields.byteLength)
  const out = new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.byteLength)
  out.set(TRANSFER_SIGN_PREFIX, 0)
  out.set(fields, TRANSFER_SIGN_PREFIX.byteLength)
  return out
}

/** Checks the transaction's signature under the project's one verification rule. */
export function verifyTransactionSignature(tx: AnyTransaction): boolean {
  return verify(tx.from, signedBytesOf(tx), tx.signature)
}

/** {@link verifyTransactionSignature} for a decoded transaction, its sign bytes taken from its wire bytes. */
export function verifyDecodedSignature(d: DecodedTransaction): boolean {
  return verify(d.tx.from, signedBytesOfDecoded(d), d.tx.signature)
}

/** The sender's address. */
export function senderAddress(tx: AnyTransaction): Uint8Array {
  return addressFromPublicKey(tx.from)
}
