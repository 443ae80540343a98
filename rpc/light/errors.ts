/**
 * The light client's two kinds of failure. They are handled in opposite ways: an answer that fails verification is
 * the endpoint's fault, so the client reports it and asks the next endpoint; a missing or expired trusted starting
 * point is the client's own condition, which no endpoint can fix, so it stops at once and says what to pass.
 */

/** An endpoint sent something that fails verification: a lie, a fork, or data that does not decode. */
export class FailedVerificationError extends Error {
  override readonly name = 'FailedVerificationError'

  constructor(
    readonly endpoint: string,
    readonly reason: string,
  ) {
    super(`${endpoint} gave an answer that fails verification: ${reason}`)
  }
}

/** Every reason the client has no usable trusted starting point. */
export const TRUST_ERROR_CODES = ['no_trust_root', 'trust_expired', 'bad_trust_root'] as const

/** A code from {@link TRUST_ERROR_CODES}. */
export type TrustErrorCode = (typeof TRUST_ERROR_CODES)[number]

/** The client has no trusted starting point it may verify from: the user must name one. */
export class TrustError extends Error {
  override readonly name = 'TrustError'

  constructor(
    readonly code: TrustErrorCode,
    message: string,
  ) {
    super(message)
  }
}
