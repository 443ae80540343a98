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

/** Application error numbers by reason. A reason outside the table gets GENERIC_APPLICATION_ERROR. */
export const APPLICATION_ERROR_CODES: Readonly<Record<string, number>> = Object.freeze({
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
})

/** The number for an application reason that has no entry of its own. */
export const GENERIC_APPLICATION_ERROR = -32000

/** The error number for an application reason. */
export function applicationErrorCode(reason: string): number {
  return Object.prototype.hasOwnProperty.call(APPLICATION_ERROR_CODES, reason) ? APPLICATION_ERROR_CODES[reason]! : GENERIC_APPLICATION_ERROR
}

/** A JSON-RPC error object. */
export interface JsonRpcError {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** An application error: number from the table, `data.reason` the stable reason code. */
export function applicationError(reason: string, message: string, extra?: Record<string, unknown>): JsonRpcError {
  return { code: applicationErrorCode(reason), message, data: { reason, ...extra } }
}
