import { fromHex, to0x } from '../crypto/bytes.js'
import { err, ok, type Result } from '../crypto/result.js'
import { addressFromPublicKey, formatAddress, parseAddress } from '../crypto/address.js'
import { HASH_LENGTH } from '../crypto/hash.js'
import type { GovernanceAction } from '../ledger/governance.js'
import type { ActionView } from './client.js'
import { decodeTransaction, senderAddress, txHash } from '../ledger/transaction.js'
import { evidenceOffender, type Evidence } from '../consensus/index.js'
import type { AccountProofInfo, BlockInfo, CommitInfo, DomainValue, NodeStatus, PendingChangesInfo, TxLookup, TxProofInfo, ValidatorInfo } from './backend.js'

/**
 * Formatting between domain values and their JSON-RPC forms: addresses `0x`+40 lowercase hex, hashes
 * `0x`+64 hex, amounts and nonces decimal strings, bytes `0x`+hex, times ISO 8601.
 * Parsers return a {@link ParamError} for bad input: the dispatcher turns that into -32602.
 */

/** Every code a parameter's parse failure carries: the dispatcher answers each with -32602. */
export const PARAM_ERROR_CODES = ['invalid_params'] as const

/** Why a parameter is not a value of its kind, and which parameter it is when the dispatcher knows. */
export interface ParamError {
  readonly code: (typeof PARAM_ERROR_CODES)[number]
  readonly reason: string
  readonly param?: string
}

/** A parse outcome: the value or why not. */
export type Parsed<T> = Result<T, ParamError>

/** A parse failure with its reason. */
export function invalidParam(reason: string, param?: string): { readonly ok: false; readonly error: ParamError } {
  return err<ParamError>(param === undefined ? { code: 'invalid_params', reason } : { code: 'invalid_params', reason, param })
}

/** Parses an address parameter. */
export function parseAddressParam(v: unknown): Parsed<Uint8Array> {
  if (typeof v !== 'string') return invalidParam('expected a string 0x + 40 hex digits')
  const a = parseAddress(v)
  return a === undefined ? invalidParam('expected 0x + 40 hex digits') : ok(a)
}

/** Parses a hash parameter. */
export function parseHashParam(v: unknown): Parsed<Uint8Array> {
  if (typeof v !== 'string' || !/^0[xX]/.test(v)) return invalidParam('expected a string 0x + 64 hex digits')
  const h = fromHex(v, HASH_LENGTH)
  return h === undefined ? invalidParam('expected 0x + 64 hex digits') : ok(h)
}

/** Parses `0x`-prefixed hex bytes of at most `maxBytes`. */
export function parseBytesParam(v: unknown, maxBytes: number): Parsed<Uint8Array> {
  if (typeof v !== 'string' || !/^0[xX]/.test(v)) return invalidParam('expected a string 0x + hex')
  if (v.length > 2 + maxBytes * 2) return invalidParam(`longer than ${maxBytes} bytes`)
  const b = fromHex(v)
  return b === undefined ? invalidParam('expected 0x + an even number of hex digits') : ok(b)
}

/** Parses a block height: a non-negative safe integer, as a number or a decimal string. */
export function parseHeightParam(v: unknown): Parsed<number> {
  if (typeof v === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(v)) v = Number(v)
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return invalidParam('expected a non-negative integer')
  return ok(v)
}

/** Parses a height that must name a block or a set: a positive safe integer, as a number or a decimal string. */
export function parsePositiveHeightParam(v: unknown): Parsed<number> {
  const h = parseHeightParam(v)
  return h.ok && h.value < 1 ? invalidParam('expected a positive integer (the first block is height 1)') : h
}

/** The options of a look-up that can come with a proof: `{"proof": true}` (docs/rpc.md, "Proofs"). */
export interface LookupOptions {
  readonly proof: boolean
}

/** Parses the optional options parameter of a provable look-up: `{"proof": boolean}`, nothing else. */
export function parseLookupOptions(v: unknown): Parsed<LookupOptions> {
  if (v === undefined || v === null) return ok({ proof: false })
  if (typeof v !== 'object' || Array.isArray(v)) return invalidParam('expected an object {"proof": true|false}')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'proof') return invalidParam(`unknown option ${JSON.stringify(k.slice(0, 32))} (expected "proof")`)
  if (o.proof !== undefined && typeof o.proof !== 'boolean') return invalidParam('proof must be true or false')
  return ok({ proof: o.proof === true })
}

/** Formats a generic domain structure for JSON (see DomainValue). */
export function formatDomain(v: DomainValue, depth = 0): unknown {
  if (depth > 32) return null
  if (v instanceof Uint8Array) return to0x(v)
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return v.map((x) => formatDomain(x as DomainValue, depth + 1))
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = formatDomain(x as DomainValue, depth + 1)
    return out
  }
  return v
}

/** Formats a millisecond timestamp as ISO 8601; null stays null. */
export function formatTime(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms)) return null
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** `node_status` result. */
export function formatStatus(s: NodeStatus): Record<string, unknown> {
  return {
    chainId: s.chainId,
    moniker: s.moniker,
    nodeId: s.nodeId,
    height: s.height,
    blockHash: s.blockHash === null ? null : to0x(s.blockHash),
    blockTime: formatTime(s.blockTime),
    validator: s.validator === null ? null : formatAddress(s.validator),
    peers: s.peers,
    catchingUp: s.catchingUp,
  }
}

/** `tx_get` result. */
export function formatTxLookup(hash: Uint8Array, t: TxLookup): Record<string, unknown> {
  if (t.status === 'committed') {
    const out: Record<string, unknown> = { hash: to0x(hash), status: 'committed', height: t.height, index: t.index, ok: t.ok }
    if (!t.ok && t.error !== undefined) out.error = t.error
    return out
  }
  if (t.status === 'rejected') return { hash: to0x(hash), status: 'rejected', error: t.error, reason: t.reason }
  return { hash: to0x(hash), status: t.status }
}

/** One transaction of a block, decoded for display (or its raw bytes when it does not decode). */
export function formatBlockTx(bytes: Uint8Array, result?: { ok: boolean; error?: string }): Record<string, unknown> {
  const d = decodeTransaction(bytes)
  const tx = d.ok ? d.value.tx : undefined
  const out: Record<string, unknown> =
    !d.ok || tx === undefined
      ? { raw: to0x(bytes) }
      : tx.kind === 'governance'
        ? {
            hash: to0x(d.value.hash),
            kind: 'governance',
            from: formatAddress(senderAddress(tx)),
            action: formatAction(tx.action),
            nonce: tx.nonce.toString(),
            raw: to0x(bytes),
          }
        : {
            hash: to0x(d.value.hash),
            from: formatAddress(senderAddress(tx)),
            to: formatAddress(tx.to),
            amount: tx.amount.toString(),
            nonce: tx.nonce.toString(),
            raw: to0x(bytes),
          }
  if (result !== undefined) {
    out.ok = result.ok
    if (!result.ok && result.error !== undefined) out.error = result.error
  }
  return out
}

/** `chain_getBlock` result. */
export function formatBlock(b: BlockInfo): Record<string, unknown> {
  return formatBlockOf(b, b.txs)
}

/** {@link formatBlock} of `b` with its transactions `txs` (`b.txs` read once). */
function formatBlockOf(b: BlockInfo, txs: readonly Uint8Array[]): Record<string, unknown> {
  return { ...blockBefore(b), txs: txs.map((t, i) => formatBlockTx(t, b.results?.[i])), ...blockAfter(b) }
}

/** The members of a `chain_getBlock` result before its `txs`. */
function blockBefore(b: BlockInfo): Record<string, unknown> {
  return { height: b.height, hash: to0x(b.hash), header: formatDomain(b.header) }
}

/** The members of a `chain_getBlock` result after its `txs`. */
function blockAfter(b: BlockInfo): Record<string, unknown> {
  return { commit: formatDomain(b.commit), ...(b.evidence === undefined ? {} : { evidence: b.evidence.map((e) => formatDomain(e)) }) }
}

/**
 * Transactions {@link writeBlockJson} formats in one turn of the event loop (~3 ms of CPU): a block of thousands is a
 * stretch of tens of milliseconds that would hold back everything else the node's thread does (consensus included).
 */
export const BLOCK_TXS_PER_TURN = 256

/**
 * Writes `JSON.stringify(formatBlock(b))` to `out` in pieces, {@link BLOCK_TXS_PER_TURN} transactions each with a
 * turn of the event loop between them, so that a large block's answer never holds the thread for long: the pieces one
 * after the other are that text.
 */
export async function writeBlockJson(b: BlockInfo, out: (piece: string) => void): Promise<void> {
  const txs = b.txs
  if (txs.length <= BLOCK_TXS_PER_TURN) return out(JSON.stringify(formatBlockOf(b, txs)))
  // `{...before,"txs":[...],...after}`, a comma beside `txs` only where the members beside it are not empty (a
  // DomainValue may format to nothing)
  const before = JSON.stringify(blockBefore(b)).slice(0, -1)
  out(`${before}${before.length > 1 ? ',' : ''}"txs":[`)
  for (let start = 0; start < txs.length; start += BLOCK_TXS_PER_TURN) {
    if (start > 0) await new Promise(setImmediate)
    const part: Record<string, unknown>[] = []
    for (let i = start; i < Math.min(start + BLOCK_TXS_PER_TURN, txs.length); i++) part.push(formatBlockTx(txs[i]!, b.results?.[i]))
    const json = JSON.stringify(part)
    out(start === 0 ? json.slice(1, -1) : `,${json.slice(1, -1)}`)
  }
  const after = JSON.stringify(blockAfter(b)).slice(1)
  out(`]${after.length > 1 ? ',' : ''}${after}`)
}

/**
 * How RPC shows a piece of equivocation evidence: what it proves (offender, height, round, message type, the two
 * values and signatures), the height whose block committed it when it is committed, and `raw`, its canonical bytes
 * (`bytes`, which must be `e`'s encoding), from which a client checks it against a header's evidence root.
 */
export function evidenceView(bytes: Uint8Array, e: Evidence, committedAt?: number): DomainValue {
  const type = e.kind === 'conflictingVotes' ? e.first.type : 'proposal'
  return {
    kind: e.kind,
    validator: evidenceOffender(e),
    height: e.first.height,
    round: e.first.round,
    type,
    first: { valueId: e.first.valueId, signature: e.first.signature },
    second: { valueId: e.second.valueId, signature: e.second.signature },
    ...(committedAt === undefined ? {} : { committedAt }),
    raw: bytes,
  }
}

/** `chain_getCommit` result. */
export function formatCommit(c: CommitInfo): Record<string, unknown> {
  return { height: c.height, hash: to0x(c.hash), header: formatDomain(c.header), commit: formatDomain(c.commit) }
}

/**
 * What a proof answer adds to the plain result: `proof` (`0x`+hex), and the `height`, `header` and `commit` of the
 * block the proof is against, the header and commit formatted as in `chain_getCommit`.
 */
function proofFields(proof: Uint8Array, block: CommitInfo): Record<string, unknown> {
  return { proof: to0x(proof), height: block.height, header: formatDomain(block.header), commit: formatDomain(block.commit) }
}

/**
 * `ledger_getAccount` / `ledger_getBalance` with `{"proof": true}`: `{address, balance, nonce?, proof, height, header,
 * commit}` (`nonce` for `ledger_getAccount` only).
 */
export function formatAccountProof(address: Uint8Array, p: AccountProofInfo, withNonce: boolean): Record<string, unknown> {
  return {
    address: formatAddress(address),
    balance: p.account.balance.toString(),
    ...(withNonce ? { nonce: p.account.nonce.toString() } : {}),
    ...proofFields(p.proof, p.block),
  }
}

/** `tx_get` with `{"proof": true}`: the plain result, plus `proof`, `header` and `commit` when it is committed. */
export function formatTxProof(hash: Uint8Array, lookup: TxLookup, proof: TxProofInfo | undefined): Record<string, unknown> {
  const plain = formatTxLookup(hash, lookup)
  return proof === undefined || lookup.status !== 'committed' ? plain : { ...plain, ...proofFields(proof.proof, proof.block) }
}

/** A transaction's hash as 0x-hex (made once: ledger/smt.ts, byKey). */
function txHashHex(t: Uint8Array): string {
  return to0x(txHash(t))
}

/** The `newBlocks` notification: the block with its transactions as hashes only, to keep fan-out cheap. */
export function formatNewBlock(b: BlockInfo): Record<string, unknown> {
  return {
    height: b.height,
    hash: to0x(b.hash),
    header: formatDomain(b.header),
    txs: b.txs.map(txHashHex),
  }
}

/** A voting power as JSON: a number (powers are bounded well below 2^53), a decimal string beyond that. */
export function formatPower(p: number | bigint): number | string {
  if (typeof p === 'number') return p
  return p <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(p) : p.toString()
}

/** `chain_getValidators` entry. */
export function formatValidator(v: ValidatorInfo): Record<string, unknown> {
  return {
    address: formatAddress(v.address),
    publicKey: to0x(v.publicKey),
    power: formatPower(v.power),
    peerId: v.peerId,
    name: v.name,
  }
}

/**
 * `chain_getPendingChanges` result: `{height, totalPower, voteExpiryHeights, scheduled, changes}`, each change
 * `{id, action, votes: [{address, height, countsUntil}], power, totalPower, passes, forced}`. `countsUntil` is the last
 * height whose block end still counts the vote; `passes` is whether the votes hold more than two thirds of the
 * power (the change then completes at the end of the next block, unless the one-third limit stages it).
 */
export function formatPendingChanges(p: PendingChangesInfo): Record<string, unknown> {
  return {
    height: p.height,
    totalPower: formatPower(p.totalPower),
    voteExpiryHeights: p.voteExpiryHeights,
    scheduled: p.scheduled === null ? null : { fromHeight: p.scheduled.fromHeight, validators: p.scheduled.validators.map(formatValidator) },
    changes: p.changes.map((c) => ({
      id: to0x(c.id),
      action: formatAction(c.action),
      votes: c.votes.map((v) => ({ address: formatAddress(v.address), height: v.height, countsUntil: v.height + p.voteExpiryHeights - 1 })),
      power: formatPower(c.power),
      totalPower: formatPower(p.totalPower),
      passes: c.forced || 3n * c.power > 2n * p.totalPower,
      forced: c.forced,
    })),
  }
}

/** A governance action as JSON: `{type: 'add', publicKey, address, power, peerId, name}`, `{type: 'remove', address}`, `{type: 'power', address, power}`. */
export function formatAction(a: GovernanceAction): ActionView {
  switch (a.type) {
    case 'add':
      return {
        type: 'add',
        publicKey: to0x(a.publicKey),
        address: formatAddress(addressFromPublicKey(a.publicKey)),
        power: a.power,
        peerId: a.peerId,
        name: a.name,
      }
    case 'remove':
      return { type: 'remove', address: formatAddress(a.address) }
    case 'power':
      return { type: 'power', address: formatAddress(a.address), power: a.power }
  }
}
