import { to0x } from '../crypto/bytes.js'
import { formatAddress } from '../crypto/address.js'
import { MAX_EVIDENCE_ENCODING_BYTES } from '../consensus/evidence.js'
import { ok as valueOk } from '../crypto/result.js'
import type { BlockInfo, DomainValue, RpcBackend } from './backend.js'
import { DEFAULT_MAX_RESPONSE_BYTES, type CallContext, type MethodOutcome, type MethodSpec, type ParamSpec } from './dispatcher.js'
import { GENERIC_APPLICATION_ERROR, applicationError, isApplicationReason } from './errors.js'
import {
  formatAccountProof,
  writeBlockJson,
  formatCommit,
  formatDomain,
  formatPendingChanges,
  formatStatus,
  formatTxLookup,
  formatTxProof,
  formatValidator,
  invalidParam,
  parseAddressParam,
  parseBytesParam,
  parseHashParam,
  parseHeightParam,
  parseLookupOptions,
  parsePositiveHeightParam,
  type LookupOptions,
} from './format.js'
import type { SubscriberSession, SubscriptionHub } from './subscriptions.js'

/**
 * The JSON-RPC method table (docs/rpc.md): each method's parameters and how it maps onto the backend.
 * Parameter problems become -32602 in the dispatcher; mempool rejections become application errors with
 * `data.reason` set to the backend's code.
 */

/** Most bytes `tx_submit` accepts as hex before handing them to the node (which bounds transactions further). */
export const MAX_SUBMIT_BYTES = 4096

const address: ParamSpec = { name: 'address', parse: parseAddressParam }
const hash: ParamSpec = { name: 'hash', parse: parseHashParam }
/** `{"proof": true}` asks a look-up for its proof (docs/rpc.md, "Proofs"). */
const options: ParamSpec = { name: 'options', optional: true, parse: parseLookupOptions }

const ok = (result: unknown): MethodOutcome => ({ ok: true, result })

/**
 * Most characters of `chain_getBlock` answers a method table keeps by default (those of a block of 4,000 transfers are
 * about 2.1 million; bytes, as the answers are ASCII).
 */
export const DEFAULT_BLOCK_ANSWER_BYTES = 16 * 1024 * 1024

/**
 * Most `chain_getBlock` answers a method table keeps, however small: each keeps its block object alive (its decoded
 * header and certificates, which for an empty block outweigh its answer), and an answer is only asked for again while
 * the backend hands out the same object (NodeBackend: for the four heights asked last).
 */
export const MAX_BLOCK_ANSWERS = 8

/** Method table dependencies. */
export interface MethodDependencies {
  readonly backend: RpcBackend
  /** Present when WebSocket subscriptions are served. */
  readonly hub?: SubscriptionHub
  /**
   * The bytes of results one answer may carry (the dispatcher's `maxResponseBytes`, default 32 MiB): a method that
   * makes a list stops making it once its answer passes them.
   */
  readonly maxResultBytes?: number
  /**
   * Most bytes of `chain_getBlock` answers kept as JSON for the blocks the backend hands out again (default
   * {@link DEFAULT_BLOCK_ANSWER_BYTES}); 0 keeps none.
   */
  readonly blockAnswerBytes?: number
}

/**
 * The JSON of the blocks a backend handed out last, as UTF-8, by the block object, most recent last, at most `limit`
 * bytes and {@link MAX_BLOCK_ANSWERS} answers of it: a backend that hands out one object per committed height while it
 * keeps the height (NodeBackend, for the four heights asked last) has each block formatted once however many calls ask
 * for it. A block's object stays alive while its answer is kept, the backend's copy dropped or not (a block's bytes
 * are less than its answer's, which spells them in hex).
 */
class BlockAnswers {
  /** The answers kept as UTF-8 (written out as they are, not encoded again per call) and their length as text. */
  private readonly kept = new Map<BlockInfo, { readonly utf8: Buffer; readonly chars: number }>()
  /** The answers being made, by the block object. */
  private readonly making = new Map<BlockInfo, Promise<MethodOutcome>>()
  private size = 0

  constructor(private readonly limit: number) {}

  answer(b: BlockInfo): MethodOutcome | Promise<MethodOutcome> {
    const kept = this.kept.get(b)
    if (kept !== undefined) {
      this.kept.delete(b)
      this.kept.set(b, kept)
      return { ok: true, ...kept }
    }
    // calls that come while a block's answer is being made wait for that one
    let making = this.making.get(b)
    if (making === undefined) {
      making = this.make(b).finally(() => this.making.delete(b))
      this.making.set(b, making)
    }
    return making
  }

  private async make(b: BlockInfo): Promise<MethodOutcome> {
    // each piece encoded as it is made: encoding the whole text at once would be one more long stretch
    const pieces: Buffer[] = []
    let chars = 0
    await writeBlockJson(b, (piece) => {
      pieces.push(Buffer.from(piece))
      chars += piece.length
    })
    const answer = { utf8: Buffer.concat(pieces), chars }
    // kept and evicted by bytes: an answer of more bytes than the limit is not kept (it would push out every other)
    if (answer.utf8.length > this.limit) return { ok: true, ...answer }
    this.kept.set(b, answer)
    this.size += answer.utf8.length
    for (const [old, { utf8 }] of this.kept) {
      if (this.size <= this.limit && this.kept.size <= MAX_BLOCK_ANSWERS) break
      this.kept.delete(old)
      this.size -= utf8.length
    }
    return { ok: true, ...answer }
  }
}

/**
 * The evidence list as JSON text, its items formatted one at a time; undefined as soon as the text passes `limit`
 * bytes, so that a list too long to answer costs no more than the limit to find out.
 */
function evidenceJson(list: readonly DomainValue[], limit: number): string | undefined {
  const parts: string[] = []
  let size = 2
  for (const e of list) {
    const part = JSON.stringify(formatDomain(e))
    size += part.length + (parts.length > 0 ? 1 : 0)
    if (size > limit) return undefined
    parts.push(part)
  }
  return `[${parts.join(',')}]`
}

/** Builds the method table over a backend. */
export function createMethods(deps: MethodDependencies): Record<string, MethodSpec> {
  const { backend, hub } = deps
  const maxResultBytes = deps.maxResultBytes ?? DEFAULT_MAX_RESPONSE_BYTES
  // each evidence list the backend hands out, as JSON, or null when it is too long to answer: a backend that keeps one
  // list until it changes (NodeBackend, until the next block) has it formatted once, however many calls ask
  const evidenceAnswers = new WeakMap<readonly DomainValue[], string | null>()
  const blockAnswers = new BlockAnswers(deps.blockAnswerBytes ?? DEFAULT_BLOCK_ANSWER_BYTES)
  const sessionOf = (ctx: CallContext): SubscriberSession | undefined => (ctx.transport === 'ws' ? (ctx.session as SubscriberSession | undefined) : undefined)
  const wsOnly = (): MethodOutcome => ({
    ok: false,
    error: applicationError('websocket_required', 'subscriptions are served over WebSocket on /ws'),
  })
  const unavailable = (why: string): MethodOutcome => ({ ok: false, error: applicationError('unavailable', why) })
  const wantsProof = (o: unknown) => (o as LookupOptions | undefined)?.proof === true
  const proveAccount = async (a: Uint8Array, withNonce: boolean): Promise<MethodOutcome> => {
    if (backend.proveAccount === undefined) return unavailable('this node does not serve proofs')
    const p = await backend.proveAccount(a)
    return 'unavailable' in p ? unavailable(p.unavailable) : ok(formatAccountProof(a, p, withNonce))
  }

  return {
    node_status: {
      params: [],
      handler: async () => ok(formatStatus(await backend.status())),
    },
    ledger_getBalance: {
      params: [address, options],
      handler: async ([a, o]) => {
        if (wantsProof(o)) return proveAccount(a as Uint8Array, false)
        return ok((await backend.getAccount(a as Uint8Array)).balance.toString())
      },
    },
    ledger_getAccount: {
      params: [address, options],
      handler: async ([a, o]) => {
        if (wantsProof(o)) return proveAccount(a as Uint8Array, true)
        const acct = await backend.getAccount(a as Uint8Array)
        return ok({ address: formatAddress(a as Uint8Array), balance: acct.balance.toString(), nonce: acct.nonce.toString() })
      },
    },
    ledger_getNextNonce: {
      params: [address],
      handler: async ([a]) => ok((await backend.getNextNonce(a as Uint8Array)).toString()),
    },
    tx_submit: {
      params: [{ name: 'signedTx', parse: (v) => parseBytesParam(v, MAX_SUBMIT_BYTES) }],
      handler: async ([bytes]) => {
        const r = await backend.submitTx(bytes as Uint8Array)
        if (r.ok) return ok({ hash: to0x(r.value) })
        const { code, reason } = r.error
        const message = `transaction rejected: ${String(code)}: ${reason}`
        if (isApplicationReason(code)) return { ok: false, error: applicationError(code, message, { detail: reason }) }
        // the type admits only the table's codes; a backend that is not type-checked still gets its reason across
        return { ok: false, error: { code: GENERIC_APPLICATION_ERROR, message, data: { reason: String(code), detail: reason } } }
      },
    },
    tx_get: {
      params: [hash, options],
      // the inclusion proof is made from every transaction of the block that holds it
      heavy: ([, o]) => wantsProof(o),
      handler: async ([h, o]) => {
        if (!wantsProof(o)) return ok(formatTxLookup(h as Uint8Array, await backend.getTx(h as Uint8Array)))
        if (backend.proveTx === undefined) return unavailable('this node does not serve proofs')
        const r = await backend.proveTx(h as Uint8Array)
        return ok(formatTxProof(h as Uint8Array, r.lookup, r.proof))
      },
    },
    chain_getBlock: {
      params: [{ name: 'height', optional: true, parse: parseHeightParam }],
      heavy: true,
      handler: async ([height]) => {
        const b = await backend.getBlock(height as number | undefined)
        return b === null ? ok(null) : blockAnswers.answer(b)
      },
    },
    chain_getCommit: {
      params: [{ name: 'height', parse: parsePositiveHeightParam }],
      // the header and the certificates are read from the stored block, whole
      heavy: true,
      handler: async ([height]) => {
        const c = await backend.getCommit(height as number)
        return ok(c === null ? null : formatCommit(c))
      },
    },
    chain_getValidators: {
      params: [{ name: 'height', optional: true, parse: parsePositiveHeightParam }],
      handler: async ([height]) => {
        const v = await backend.getValidators(height as number | undefined)
        if ('unknown' in v) return { ok: false, error: applicationError('unknown_height', v.unknown, { height }) }
        return ok(v.map(formatValidator))
      },
    },
    chain_getPendingChanges: {
      params: [],
      handler: async () => ok(formatPendingChanges(await backend.getPendingChanges())),
    },
    chain_getEvidence: {
      params: [],
      handler: async () => {
        const list = (await backend.getEvidence?.()) ?? []
        let json = evidenceAnswers.get(list)
        if (json === undefined) {
          json = evidenceJson(list, maxResultBytes) ?? null
          evidenceAnswers.set(list, json)
        }
        if (json === null) {
          return { ok: false, error: applicationError('response_too_large', `the evidence list would carry more than ${maxResultBytes} bytes of results`) }
        }
        return { ok: true, json }
      },
    },
    evidence_submit: {
      // evidence longer than its decoder reads is refused before the node sees it
      params: [{ name: 'evidence', parse: (v) => parseBytesParam(v, MAX_EVIDENCE_ENCODING_BYTES) }],
      handler: async ([bytes]) => {
        if (backend.submitEvidence === undefined) return unavailable('this node takes no evidence from clients')
        const r = await backend.submitEvidence(bytes as Uint8Array)
        if (r.ok) return ok({ hash: to0x(r.value.hash), status: r.value.status })
        const { code, reason } = r.error
        if (code === 'unavailable') return unavailable(reason)
        const message = code === 'evidence_expired' ? `evidence expired: ${reason}` : `evidence rejected: ${reason}`
        if (isApplicationReason(code)) return { ok: false, error: applicationError(code, message, { detail: reason }) }
        // the type admits only the table's codes; a backend that is not type-checked still gets its reason across
        return { ok: false, error: { code: GENERIC_APPLICATION_ERROR, message, data: { reason: String(code), detail: reason } } }
      },
    },
    chain_subscribe: {
      params: [
        {
          name: 'topic',
          parse: (v) => (v === 'newBlocks' || v === 'tx' ? valueOk(v) : invalidParam('expected "newBlocks" or "tx"')),
        },
        { name: 'hash', optional: true, parse: parseHashParam },
      ],
      handler: ([topic, h], ctx) => {
        const session = sessionOf(ctx)
        if (session === undefined || hub === undefined) return wsOnly()
        if (topic === 'tx' && h === undefined) {
          return { ok: false, error: { code: -32602, message: 'invalid params: hash: missing (required for "tx")', data: { param: 'hash' } } }
        }
        if (topic === 'newBlocks' && h !== undefined) {
          return { ok: false, error: { code: -32602, message: 'invalid params: hash: not allowed for "newBlocks"', data: { param: 'hash' } } }
        }
        return hub.subscribe(session, topic as 'newBlocks' | 'tx', h as Uint8Array | undefined)
      },
    },
    chain_unsubscribe: {
      params: [
        {
          name: 'subscription',
          parse: (v) => (typeof v === 'string' && v.length <= 64 ? valueOk(v) : invalidParam('expected a subscription id string')),
        },
      ],
      handler: ([id], ctx) => {
        const session = sessionOf(ctx)
        if (session === undefined || hub === undefined) return wsOnly()
        return ok(hub.unsubscribe(session, id as string))
      },
    },
  }
}
