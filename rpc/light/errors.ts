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

/** Where a piece of fork evidence was submitted, and what came of it. */
export interface EvidenceSubmission {
  readonly endpoint: string
  /** Items the endpoint took (new to it, or already held or committed). */
  readonly accepted: number
  /**
   * Items of a height above the endpoint's (`ahead`), when any: it kept none of them, and takes them once it has
   * reached that height.
   */
  readonly ahead?: number
  /** Why the endpoint took none, or not all: its error, or that it did not answer in time. */
  readonly error?: string
  /** The stable reason of the endpoint's refusal, when it gave one (e.g. `evidence_expired`, `invalid_evidence`). */
  readonly reason?: string
}

/**
 * What two conflicting headers prove about who signed them, and where the proof was sent. Commit certificates of one
 * round yield equivocation evidence against every validator that signed both (`evidence_submit`); of different
 * rounds they prove no single validator signed twice, and nothing is sent.
 */
export interface ForkAccountability {
  /** The rounds of the two commits (the endpoint's, the witness's). */
  readonly rounds: readonly [number, number]
  /** The validators shown to have signed both blocks (0x addresses, in address order). */
  readonly validators: readonly string[]
  /** The evidence items (0x hex), one per validator. */
  readonly evidence: readonly string[]
  readonly submitted: readonly EvidenceSubmission[]
}

/** One sentence on a fork's evidence, for the error's message. */
function accountabilityText(a: ForkAccountability): string {
  if (a.rounds[0] !== a.rounds[1]) {
    return ` The two commits are of rounds ${a.rounds[0]} and ${a.rounds[1]}: they show no validator signing twice, so no evidence was sent.`
  }
  if (a.validators.length === 0) return ' No validator of the two sets signed both commits verifiably: no evidence was sent.'
  const took = a.submitted.filter((s) => s.accepted === a.evidence.length).map((s) => s.endpoint)
  const behind = a.submitted.filter((s) => (s.ahead ?? 0) > 0).map((s) => s.endpoint)
  return (
    ` Evidence that ${a.validators.join(', ')} signed both blocks in round ${a.rounds[0]} was submitted to ` +
    `${took.length} of ${a.submitted.length} endpoints${took.length === 0 ? '' : ` (taken by ${took.join(', ')})`}` +
    (behind.length === 0 ? '' : `; ${behind.length} have not reached its height yet and did not keep it (${behind.join(', ')})`) +
    '.'
  )
}

/**
 * Two endpoints gave different headers at one height, and each verifies from the same trusted block: validators
 * holding more than the trust level of a trusted set signed two blocks of one height. That is a fork (or an attack on
 * this client by that many validators), which no number of endpoints can settle: the client trusts neither header
 * and stops, naming both endpoints, the height and both hashes, so that the chain's operators can act on it. When the
 * two commits prove validators signed both, the evidence was submitted to the endpoints ({@link accountability}).
 */
export class ConflictingHeadersError extends Error {
  override readonly name = 'ConflictingHeadersError'
  readonly code = 'conflicting_headers'

  constructor(
    readonly height: number,
    readonly primary: string,
    readonly primaryHash: string,
    readonly witness: string,
    readonly witnessHash: string,
    /** The trusted block both headers verify from. */
    readonly trustedHeight: number,
    readonly accountability?: ForkAccountability,
  ) {
    super(
      `conflicting headers at height ${height}: ${primary} gave block ${primaryHash}, ${witness} gave block ${witnessHash}, ` +
        `each signed by validators trusted at height ${trustedHeight}; the chain has forked or its validators attack this ` +
        'client: neither is trusted (report both endpoints to the chain operators).' +
        (accountability === undefined ? '' : accountabilityText(accountability)),
    )
  }
}

/**
 * No other endpoint confirmed a header verified by skipping: each was unreachable, had no block at that height in
 * time, or gave a header that fails verification. The endpoint that served the header is not called a liar.
 */
export class UnconfirmedHeaderError extends Error {
  override readonly name = 'UnconfirmedHeaderError'
  readonly code = 'unconfirmed_header'

  constructor(
    readonly height: number,
    readonly endpoint: string,
    readonly witnesses: readonly { readonly endpoint: string; readonly error: string }[],
  ) {
    super(
      `no other endpoint confirmed header ${height} of ${endpoint}: ${witnesses.length === 0 ? 'none answered in this look-up' : witnesses.map((w) => `${w.endpoint} (${w.error})`).join(', ')}`,
    )
  }
}
