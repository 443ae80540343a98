import { malformed, type DecodeError, type DecodeResult } from '../../crypto/decodeError.js'

/**
 * The failure every node envelope decoder returns (gossip, WAL records, stored blocks, sync and fetch messages):
 * bytes from a peer or a file that are not what they claim. It is the decode failure every strict decoder shares
 * (crypto/decodeError.ts), so a node envelope's failure and the failure of what it wraps carry the same codes.
 */

/** A typed decode failure of a node envelope. */
export type EnvelopeError = DecodeError

/** The outcome of decoding a node envelope. */
export type EnvelopeResult<T> = DecodeResult<T>

/** A `malformed` failure with its reason. */
export const envelopeFail: (reason: string) => { readonly ok: false; readonly error: EnvelopeError } = malformed
