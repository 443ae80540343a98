import { EVIDENCE_SUBMIT_ERROR_CODES, SUBMIT_ERROR_CODES } from './backend.js'

/**
 * JSON-RPC error numbers: the specification's standard codes, and the fixed table mapping the ledger's and
 * mempool's reason codes (and the server's own) into the application range -32000…-32099.
 * Clients should branch on `error.data.reason` (stable text); the numbers are stable too (docs/rpc.md).
 */

/** The JSON-RPC 2.0 standard error codes. */
export const StandardErrorCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
} as const

/** Every reason the server itself gives (not the node's admission codes). */
export const SERVER_ERROR_REASONS = [
  'timeout',
  'too_many_subscriptions',
  'websocket_required',
  'unavailable',
  'unknown_height',
  'response_too_large',
  'busy',
] as const

/** A reason from {@link SERVER_ERROR_REASONS}. */
export type ServerErrorReason = (typeof SERVER_ERROR_REASONS)[number]

/** Every application reason the RPC layer may answer with: each has its own number in the table. */
export const APPLICATION_REASONS = [...SUBMIT_ERROR_CODES, ...EVIDENCE_SUBMIT_ERROR_CODES, ...SERVER_ERROR_REASONS] as const

/** A reason from {@link APPLICATION_REASONS}. */
export type ApplicationReason = (typeof APPLICATION_REASONS)[number]

/**
 * Application error numbers by reason. Exactly the {@link ApplicationReason}s are keys, so a new admission code
 * (`SUBMIT_ERROR_CODES`, derived from the ledger's transaction failure codes), evidence code or server reason does not
 * compile until it has a number of its own here.
 */
export const APPLICATION_ERROR_CODES: Readonly<Record<ApplicationReason, number>> = Object.freeze({
  invalid_signature: -32001,
  bad_nonce: -32002,
  insufficient_funds: -32003,
  wrong_chain: -32004,
  malformed: -32005,
  mempool_full: -32006,
  duplicate: -32007,
  timeout: -32010,
  too_many_subscriptions: -32011,
  websocket_required: -32012,
  unavailable: -32013,
  unknown_height: -32014,
  response_too_large: -32015,
  busy: -32016,
  not_validator: -32020,
  bad_action: -32021,
  too_many_proposals: -32022,
  invalid_evidence: -32030,
  evidence_expired: -32031,
} satisfies Record<ApplicationReason, number>)

/**
 * The number for a reason outside the table: only a backend that is not type-checked can give one, and its reason
 * text still reaches the client in `data.reason`.
 */
export const GENERIC_APPLICATION_ERROR = -32000

/** True when the text is one of the table's reasons. */
export function isApplicationReason(reason: unknown): reason is ApplicationReason {
  return typeof reason === 'string' && Object.hasOwn(APPLICATION_ERROR_CODES, reason)
}

/** The error number for an application reason: the table's, which has one for every reason. */
export function applicationErrorCode(reason: ApplicationReason): number {
  return APPLICATION_ERROR_CODES[reason]
}

/** A JSON-RPC error object. */
export interface JsonRpcError {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** An application error: number from the table, `data.reason` the stable reason code. */
export function applicationError(reason: ApplicationReason, message: string, extra?: Record<string, unknown>): JsonRpcError {
  return { code: applicationErrorCode(reason), message, data: { reason, ...extra } }
}
