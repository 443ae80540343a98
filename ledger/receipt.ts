import { withoutCodes } from '../crypto/result.js'

/**
 * Execution outcomes. A failed transfer is a normal, deterministic outcome and changes nothing: no fee is charged
 * and the nonce is not consumed.
 */

/**
 * Why a transfer did not apply. Checked in this order, the first failing check naming the code:
 *  - `malformed`: the bytes are not a transaction (decode; never produced by execution, which takes decoded txs);
 *  - `wrong_chain`: the chain id is not this chain's;
 *  - `invalid_signature`: the signature fails the verification rule;
 *  - `bad_nonce`: the nonce is not the sender's next nonce (or is 2^64-1, which would leave no next nonce);
 *  - `insufficient_funds`: the sender's balance is below the amount;
 *  - `balance_overflow`: the recipient's balance plus the amount would exceed 2^64-1;
 *  - for governance votes (ledger/governance.ts): `not_validator` (the signer is not a validator at the block's
 *    height), `bad_action` (the change does not apply to the latest scheduled set), `too_many_proposals` (the signer
 *    has too many open votes).
 * The mempool adds `mempool_full` and `duplicate` of its own.
 */
export const TX_FAILURE_CODES = Object.freeze([
  'malformed',
  'wrong_chain',
  'invalid_signature',
  'bad_nonce',
  'insufficient_funds',
  'balance_overflow',
  'not_validator',
  'bad_action',
  'too_many_proposals',
] as const)

/**
 * A code from {@link TX_FAILURE_CODES}: the one list the mempool's admission codes extend and the RPC maps to error
 * numbers, so a code added here does not compile until the RPC has a number for it.
 */
export type TxFailureCode = (typeof TX_FAILURE_CODES)[number]

/**
 * The transaction failure codes only execution gives: nothing ahead of a block checks the recipient's balance, which
 * cannot overflow while the total supply is at most 2^64-1 (docs/formats.md).
 */
export const EXECUTION_ONLY_FAILURE_CODES = ['balance_overflow'] as const satisfies readonly TxFailureCode[]

/**
 * The transaction failure codes a check against the committed state can give ahead of execution: what the mempool
 * refuses a transaction with, beside its own codes, and what RPC `tx_submit` answers.
 */
export const PRECHECK_FAILURE_CODES = withoutCodes(TX_FAILURE_CODES, EXECUTION_ONLY_FAILURE_CODES)

/** A code from {@link PRECHECK_FAILURE_CODES}. */
export type PrecheckFailureCode = (typeof PRECHECK_FAILURE_CODES)[number]

/** Why a transaction does not apply: a code from {@link TX_FAILURE_CODES}. */
export interface TxFailure {
  readonly code: TxFailureCode
}

/**
 * The outcome of one transaction in a block, in block order: a record of execution (the chain store keeps its
 * `ok` and `code`, `tx_get` reports them), not a function's result.
 */
export type Receipt = { readonly ok: true } | { readonly ok: false; readonly code: TxFailureCode }

/** The receipt of an applied transfer (shared, frozen). */
export const OK_RECEIPT: Receipt = Object.freeze({ ok: true as const })

/** True when the string is a {@link TxFailureCode}. */
export function isTxFailureCode(code: unknown): code is TxFailureCode {
  return typeof code === 'string' && (TX_FAILURE_CODES as readonly string[]).includes(code)
}
