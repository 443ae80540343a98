import { err, type Result } from './result.js'

/**
 * The one failure of every strict decoder (canonical bytes, transactions, blocks, consensus messages, proofs, files):
 * the input is not a value of the format, and `reason` says which rule it breaks. Decoders never throw on input.
 */

/** Every code a decode failure can carry. */
export const DECODE_ERROR_CODES = ['malformed'] as const

/** A code from {@link DECODE_ERROR_CODES}. */
export type DecodeErrorCode = (typeof DECODE_ERROR_CODES)[number]

/** Why bytes (or a parsed document) are not a value of the format. */
export interface DecodeError {
  readonly code: DecodeErrorCode
  readonly reason: string
}

/** The outcome of a strict decode: the value, or why the input is not one. */
export type DecodeResult<T> = Result<T, DecodeError>

/** A decode failure with its reason. */
export function malformed(reason: string): { readonly ok: false; readonly error: DecodeError } {
  return err<DecodeError>({ code: 'malformed', reason })
}
