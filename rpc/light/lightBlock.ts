import { ADDRESS_LENGTH, formatAddress } from '../../crypto/address.js'
import { fromHex, to0x } from '../../crypto/bytes.js'
import { malformed, type DecodeResult } from '../../crypto/decodeError.js'
import { HASH_LENGTH } from '../../crypto/hash.js'
import { ok } from '../../crypto/result.js'
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from '../../crypto/ed25519.js'
import { MAX_VALIDATORS, createValidatorSet, type CommitCertificate, type ValidatorSet } from '../../consensus/index.js'
import { blockHash, checkHeader, type BlockHeader } from '../../ledger/block.js'

/**
 * The light client's view of the chain, decoded from JSON-RPC answers (`chain_getCommit`, `chain_getValidators`, and
 * the `header`/`commit` of proof answers, docs/rpc.md): every field checked for type, length and bounds before it
 * becomes a domain value, so nothing an endpoint sends reaches verification unchecked. Nothing here is trusted yet;
 * the block hash is always computed from the header, never read from the wire.
 */

/** A header and the certificate that claims to commit it, as received: not trusted until verified. */
export interface LightBlock {
  readonly header: BlockHeader
  /** SHA-256 of the header encoding, computed here. */
  readonly hash: Uint8Array
  readonly commit: CommitCertificate
}

/** A decode outcome: the value, or why the input is not one (the decode failure every strict decoder shares). */
export type Decoded<T> = DecodeResult<T>

const fail = malformed

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** `0x` + exactly 2·length hex digits, as bytes; undefined otherwise. */
export function hexBytes(v: unknown, length: number): Uint8Array | undefined {
  if (typeof v !== 'string' || v.length !== 2 + 2 * length || !/^0[xX]/.test(v)) return undefined
  return fromHex(v, length)
}

function safeInteger(v: unknown, min: number): number | undefined {
  if (typeof v === 'string' && /^[0-9]{1,16}$/.test(v)) v = Number(v)
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? v : undefined
}

const HASH_FIELDS = ['previousBlockHash', 'txRoot', 'stateRoot', 'validatorSetHash', 'nextValidatorSetHash', 'lastCommitHash', 'evidenceRoot'] as const

/** Decodes a header as the RPC formats it: every field the block hash commits to, hashes `0x`+hex, time in ms. */
export function decodeHeader(v: unknown): Decoded<BlockHeader> {
  if (!isRecord(v)) return fail('header: expected an object')
  if (typeof v.chainId !== 'string' || v.chainId.length > 64) return fail('header.chainId: expected a chain id')
  const height = safeInteger(v.height, 1)
  if (height === undefined) return fail('header.height: expected a positive integer')
  const time = safeInteger(v.time, 0)
  if (time === undefined) return fail('header.time: expected milliseconds since the epoch')
  const hashes: Partial<Record<(typeof HASH_FIELDS)[number], Uint8Array>> = {}
  for (const f of HASH_FIELDS) {
    const b = hexBytes(v[f], HASH_LENGTH)
    if (b === undefined) return fail(`header.${f}: expected 0x + 64 hex digits`)
    hashes[f] = b
  }
  const proposer = hexBytes(v.proposer, ADDRESS_LENGTH)
  if (proposer === undefined) return fail('header.proposer: expected 0x + 40 hex digits')
  const header = { chainId: v.chainId, height, time, ...hashes, proposer } as BlockHeader
  const problem = checkHeader(header)
  return problem === undefined ? ok(header) : fail(`header: ${problem}`)
}

/** The JSON form of a header, as the RPC gives it (the inverse of {@link decodeHeader}). */
export function formatHeader(h: BlockHeader): Record<string, unknown> {
  return {
    chainId: h.chainId,
    height: h.height,
    time: h.time,
    previousBlockHash: to0x(h.previousBlockHash),
    txRoot: to0x(h.txRoot),
    stateRoot: to0x(h.stateRoot),
    proposer: to0x(h.proposer),
    validatorSetHash: to0x(h.validatorSetHash),
    nextValidatorSetHash: to0x(h.nextValidatorSetHash),
    lastCommitHash: to0x(h.lastCommitHash),
    evidenceRoot: to0x(h.evidenceRoot),
  }
}

/**
 * Decodes a commit certificate as the RPC formats it: `{height, round, blockHash, signatures: [{validator, signature}]}`
 * (a `lastCommit` alongside is ignored). At most {@link MAX_VALIDATORS} signatures; their validity is for verification.
 */
export function decodeCommit(v: unknown): Decoded<CommitCertificate> {
  if (!isRecord(v)) return fail('commit: expected an object')
  const height = safeInteger(v.height, 1)
  if (height === undefined) return fail('commit.height: expected a positive integer')
  const round = safeInteger(v.round, 0)
  if (round === undefined) return fail('commit.round: expected a non-negative integer')
  const valueId = hexBytes(v.blockHash, HASH_LENGTH)
  if (valueId === undefined) return fail('commit.blockHash: expected 0x + 64 hex digits')
  if (!Array.isArray(v.signatures) || v.signatures.length === 0 || v.signatures.length > MAX_VALIDATORS) {
    return fail(`commit.signatures: expected 1 to ${MAX_VALIDATORS} signatures`)
  }
  const signatures = []
  for (const s of v.signatures as unknown[]) {
    if (!isRecord(s)) return fail('commit.signatures: expected {validator, signature} objects')
    const validator = hexBytes(s.validator, ADDRESS_LENGTH)
    const signature = hexBytes(s.signature, SIGNATURE_LENGTH)
    if (validator === undefined || signature === undefined) return fail('commit.signatures: expected a 20-byte validator and a 64-byte signature')
    signatures.push({ validator, signature })
  }
  return ok({ height, round, valueId, signatures })
}

/** The JSON form of a certificate (the inverse of {@link decodeCommit}). */
export function formatCommitCertificate(c: CommitCertificate): Record<string, unknown> {
  return {
    height: c.height,
    round: c.round,
    blockHash: to0x(c.valueId),
    signatures: c.signatures.map((s) => ({ validator: to0x(s.validator), signature: to0x(s.signature) })),
  }
}

/** Decodes a header and its certificate into a light block, computing its hash. */
export function decodeLightBlock(header: unknown, commit: unknown): Decoded<LightBlock> {
  const h = decodeHeader(header)
  if (!h.ok) return h
  const c = decodeCommit(commit)
  if (!c.ok) return c
  return ok({ header: h.value, hash: blockHash(h.value), commit: c.value })
}

/**
 * Decodes a validator set as `chain_getValidators` gives it (`[{address, publicKey, power, …}]`): at most
 * {@link MAX_VALIDATORS} members, each address derived from its key, powers positive safe integers, no member twice.
 * Names and peer ids are ignored: the set hash does not commit to them.
 */
export function decodeValidatorSet(v: unknown): Decoded<ValidatorSet> {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_VALIDATORS) return fail(`validators: expected 1 to ${MAX_VALIDATORS} members`)
  const members = []
  for (const m of v as unknown[]) {
    if (!isRecord(m)) return fail('validators: expected {address, publicKey, power} objects')
    const address = hexBytes(m.address, ADDRESS_LENGTH)
    const publicKey = hexBytes(m.publicKey, PUBLIC_KEY_LENGTH)
    const power = safeInteger(m.power, 1)
    if (address === undefined || publicKey === undefined || power === undefined)
      return fail('validators: a member needs an address, a public key and a positive power')
    members.push({ address, publicKey, power })
  }
  const set = createValidatorSet(members)
  return set.ok ? ok(set.value) : fail(`validators: ${set.error.reason}`)
}

/** The JSON form of a validator set's members (what {@link decodeValidatorSet} reads back). */
export function formatValidatorSet(set: ValidatorSet): Record<string, unknown>[] {
  return set.validators.map((v) => ({ address: formatAddress(v.address), publicKey: to0x(v.publicKey), power: v.power }))
}
