import type { Result } from '../../crypto/result.js'

/**
 * The failure every node envelope decoder returns (gossip, WAL records, stored blocks, sync and fetch messages):
 * bytes from a peer or a file that are not what they claim.
 */

/** A typed decode failure of a node envelope. */
export interface EnvelopeError {
  readonly code: 'malformed'
  readonly reason: string
}
export type EnvelopeResult<T> = Result<T, EnvelopeError>

/** A `malformed` failure with its reason. */
export function envelopeFail(reason: string): { readonly ok: false; readonly error: EnvelopeError } {
  return { ok: false, error: { code: 'malformed', reason } }
}
