import { DECODE_ERROR_CODES } from '../crypto/decodeError.js'

/**
 * Why a proof (an account proof against a state root, an inclusion proof against a transaction root) proves
 * nothing: its bytes or arguments are not a proof (`malformed`), or it leads to another root (`root_mismatch`).
 */

/** Every code a proof failure can carry: a decode failure's, and the root it leads to being another. */
export const PROOF_ERROR_CODES = [...DECODE_ERROR_CODES, 'root_mismatch'] as const

/** Why a proof does not prove. */
export interface ProofError {
  readonly code: (typeof PROOF_ERROR_CODES)[number]
  readonly reason: string
}
