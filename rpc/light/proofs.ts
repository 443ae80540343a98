import { formatAddress, parseAddress } from '../../crypto/address.js'
import { bytesEqual, fromHex, to0x } from '../../crypto/bytes.js'
import { DECODE_ERROR_CODES } from '../../crypto/decodeError.js'
import { HASH_LENGTH } from '../../crypto/hash.js'
import { err, ok, type Result } from '../../crypto/result.js'
import type { Account } from '../../ledger/account.js'
import { verifyAccountProof } from '../../ledger/accountProof.js'
import { MAX_PROOF_BYTES } from '../../ledger/smt.js'
import { verifyTxInclusion } from '../../ledger/txProof.js'
import { decodeLightBlock, type LightBlock } from './lightBlock.js'
import { decodeEvidence, evidenceHash, MAX_EVIDENCE_ENCODING_BYTES } from '../../consensus/index.js'
import { MAX_BLOCK_EVIDENCE, MAX_BLOCK_TXS, txRoot } from '../../ledger/block.js'
import { MAX_TX_BYTES, txHash } from '../../ledger/transaction.js'

/**
 * Checks of proof answers (docs/rpc.md, "Proofs"), pure: that the plain result an endpoint gives is what its proof
 * proves against the header that comes with it. What remains is to trust that header, which is the light client's
 * part (its commit certificate, checked against a trusted validator set).
 */

/** Most bytes of a transaction inclusion proof (32 siblings and the framing). */
const MAX_TX_PROOF_BYTES = 2048

/**
 * Every reason an answer with a proof is refused: it is not the answer asked for or does not decode (`malformed`),
 * or what it states is not what its proof proves against its header (`unproven`).
 */
export const ANSWER_ERROR_CODES = [...DECODE_ERROR_CODES, 'unproven'] as const

/** Why an answer with a proof is refused: its code and what is wrong with it. */
export interface AnswerError {
  readonly code: (typeof ANSWER_ERROR_CODES)[number]
  readonly reason: string
}

/** A checked answer, or why it is refused. */
export type CheckedAnswer<T> = Result<T, AnswerError>

const fail = (reason: string) => err<AnswerError>({ code: 'malformed', reason })
const unproven = (reason: string) => err<AnswerError>({ code: 'unproven', reason })

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A C0 or C1 control character, or DEL: what an endpoint's text must not carry to a terminal. */
export function isControl(ch: string): boolean {
  const c = ch.charCodeAt(0)
  return c < 0x20 || (c >= 0x7f && c <= 0x9f)
}

function proofBytes(v: unknown, maxBytes: number): Uint8Array | undefined {
  if (typeof v !== 'string' || v.length > 2 + 2 * maxBytes || !/^0[xX]/.test(v)) return undefined
  return fromHex(v)
}

/** An endpoint's value in a reason, as JSON, cut short: a reason never repeats more than a line of what was sent. */
function quoted(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v)
  return text.length <= 80 ? text : `${text.slice(0, 80)}… (${text.length} characters)`
}

function lightBlockOf(answer: Record<string, unknown>): CheckedAnswer<LightBlock> {
  const b = decodeLightBlock(answer.header, answer.commit)
  if (!b.ok) return b
  if (answer.height !== b.value.header.height) return fail(`height ${quoted(answer.height)} is not the header's ${b.value.header.height}`)
  return b
}

/** An account proven against a header (not yet trusted). */
export interface ProvenAccount {
  readonly account: Account
  readonly block: LightBlock
}

/**
 * Checks a `ledger_getAccount`/`ledger_getBalance` answer with `{"proof": true}` for `address`: the proof verifies
 * against the header's state root, and the answer's balance (and nonce, when `withNonce`) is the proven account's
 * (the zero account when the proof shows absence).
 */
export function checkAccountAnswer(address: Uint8Array, answer: unknown, withNonce: boolean): CheckedAnswer<ProvenAccount> {
  if (!isRecord(answer)) return fail('the answer is not an object with a proof')
  const echoed = typeof answer.address === 'string' ? parseAddress(answer.address) : undefined
  if (echoed === undefined || !bytesEqual(echoed, address)) return fail(`it answers for address ${quoted(answer.address)}, not ${formatAddress(address)}`)
  const block = lightBlockOf(answer)
  if (!block.ok) return block
  const proof = proofBytes(answer.proof, MAX_PROOF_BYTES)
  if (proof === undefined) return fail('proof: expected 0x + hex')
  const v = verifyAccountProof(block.value.header.stateRoot, address, proof)
  if (!v.ok) return unproven(`the account proof does not hold against the state root of header ${block.value.header.height}: ${v.error.reason}`)
  const account = v.value ?? { balance: 0n, nonce: 0n }
  if (answer.balance !== account.balance.toString()) return unproven(`balance ${quoted(answer.balance)} is not the proven ${account.balance}`)
  if (withNonce && answer.nonce !== account.nonce.toString()) return unproven(`nonce ${quoted(answer.nonce)} is not the proven ${account.nonce}`)
  return ok({ account, block: block.value })
}

/** A `tx_get` answer checked: a committed transaction with its block, or another status (which no proof backs). */
export type CheckedTx =
  | { readonly status: 'committed'; readonly hash: string; readonly height: number; readonly index: number; readonly block: LightBlock }
  | { readonly status: 'pending' | 'rejected' | 'unknown'; readonly hash: string; readonly error?: string; readonly reason?: string }

/**
 * Checks a `tx_get` answer with `{"proof": true}` for `hash`. A committed transaction must come with an inclusion
 * proof that verifies against its header's transaction root at the index the answer gives, and `ok` must be true:
 * the block-validity rule admits only transactions that apply, so a certified block holds no failed one. Other
 * statuses are a node's own view (its mempool), which nothing can prove; they are passed on as they are.
 */
export function checkTxAnswer(hash: Uint8Array, answer: unknown): CheckedAnswer<CheckedTx> {
  if (!isRecord(answer)) return fail('the answer is not an object')
  const hashText = to0x(hash)
  if (typeof answer.hash !== 'string' || answer.hash.toLowerCase() !== hashText)
    return fail(`it answers for transaction ${quoted(answer.hash)}, not ${hashText}`)
  const status = answer.status
  if (status === 'pending' || status === 'unknown' || status === 'rejected') {
    // one line of the node's words: no newline or other control character to pass for more of the answer
    const text = (v: unknown) => (typeof v === 'string' ? [...v.slice(0, 512)].map((ch) => (isControl(ch) ? '\ufffd' : ch)).join('') : undefined)
    const error = text(answer.error)
    const reason = text(answer.reason)
    return ok({ status, hash: hashText, ...(error === undefined ? {} : { error }), ...(reason === undefined ? {} : { reason }) })
  }
  if (status !== 'committed') return fail(`status ${JSON.stringify(status)} is not one a transaction can have`)
  const block = lightBlockOf(answer)
  if (!block.ok) return block
  const proof = proofBytes(answer.proof, MAX_TX_PROOF_BYTES)
  if (proof === undefined) return fail('proof: expected 0x + hex')
  if (hash.byteLength !== HASH_LENGTH) return fail('hash')
  const v = verifyTxInclusion(block.value.header.txRoot, hash, proof)
  if (!v.ok) return unproven(`the inclusion proof does not hold against the transaction root of header ${block.value.header.height}: ${v.error.reason}`)
  if (answer.index !== v.value.index) return unproven(`index ${quoted(answer.index)} is not the proven ${v.value.index}`)
  if (answer.ok !== true || answer.error !== undefined) {
    return unproven(`it reports the committed transaction failed (${quoted(answer.error ?? null)}), but a committed block holds only transactions that applied`)
  }
  return ok({ status: 'committed', hash: hashText, height: block.value.header.height, index: v.value.index, block: block.value })
}

/** A `chain_getBlock` answer checked against its header: the block's transactions and evidence, as their bytes. */
export interface CheckedBlock {
  readonly block: LightBlock
  /** The transactions' wire bytes, in block order, whose hashes make the header's transaction root. */
  readonly txs: readonly Uint8Array[]
  /** The evidence's canonical bytes, in block order, whose hashes make the header's evidence root. */
  readonly evidence: readonly Uint8Array[]
}

/**
 * Checks a `chain_getBlock` answer (of `height`, when one was asked): its hash is its header's, and the `raw` bytes of
 * its transactions and of its evidence hash to the header's transaction and evidence roots, so that what is shown of
 * them is made from those bytes, not from the endpoint's decoding. No transaction may be reported failed: the
 * block-validity rule admits only transactions that apply. What remains is to trust the header (the light client).
 */
export function checkBlockAnswer(answer: unknown, height?: number): CheckedAnswer<CheckedBlock> {
  if (!isRecord(answer)) return fail('the answer is not a block')
  const block = lightBlockOf(answer)
  if (!block.ok) return block
  const header = block.value.header
  if (height !== undefined && header.height !== height) return fail(`it answers with block ${header.height}, not ${height}`)
  if (typeof answer.hash !== 'string' || answer.hash.toLowerCase() !== to0x(block.value.hash)) {
    return fail(`hash ${quoted(answer.hash)} is not the header's ${to0x(block.value.hash)}`)
  }
  // bounded before anything is hashed: an answer may otherwise list millions of transactions for the root to refuse
  if (!Array.isArray(answer.txs) || answer.txs.length > MAX_BLOCK_TXS) return fail(`txs: expected a list of at most ${MAX_BLOCK_TXS}`)
  const txs: Uint8Array[] = []
  for (const [i, t] of (answer.txs as unknown[]).entries()) {
    const raw = isRecord(t) ? proofBytes(t.raw, MAX_TX_BYTES) : undefined
    if (raw === undefined) return fail(`txs[${i}].raw: expected 0x + hex of at most ${MAX_TX_BYTES} bytes`)
    if (isRecord(t) && t.ok === false) return unproven(`it reports transaction ${i} failed, but a committed block holds only transactions that applied`)
    txs.push(raw)
  }
  if (!bytesEqual(txRoot(txs.map(txHash)), header.txRoot)) return unproven(`its transactions are not those of header ${header.height}'s transaction root`)
  const items = answer.evidence === undefined ? [] : answer.evidence
  if (!Array.isArray(items) || items.length > MAX_BLOCK_EVIDENCE) return fail(`evidence: expected a list of at most ${MAX_BLOCK_EVIDENCE}`)
  const evidence: Uint8Array[] = []
  for (const [i, e] of (items as unknown[]).entries()) {
    const raw = isRecord(e) ? proofBytes(e.raw, MAX_EVIDENCE_ENCODING_BYTES) : undefined
    if (raw === undefined || !decodeEvidence(raw).ok) return fail(`evidence[${i}].raw: expected the canonical encoding of evidence`)
    evidence.push(raw)
  }
  if (!bytesEqual(txRoot(evidence.map(evidenceHash)), header.evidenceRoot)) {
    return unproven(`its evidence is not that of header ${header.height}'s evidence root`)
  }
  return ok({ block: block.value, txs, evidence })
}
