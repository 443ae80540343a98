import { bytesEqual, to0x } from '../../crypto/bytes.js'
import { formatAddress } from '../../crypto/address.js'
import { RpcError } from '../client.js'
import { conflictingCommitEvidence, decodeEvidence, evidenceOffender, verifyCommit, type ValidatorSet } from '../../consensus/index.js'
import {
  ConflictingHeadersError,
  FailedVerificationError,
  TrustError,
  UnconfirmedHeaderError,
  type EvidenceSubmission,
  type ForkAccountability,
} from './errors.js'
import type { LightBlock } from './lightBlock.js'
import type { TrustedBlocks } from './trustedBlocks.js'
import {
  DEFAULT_MAX_CLOCK_DRIFT_MS,
  DEFAULT_TRUSTING_PERIOD_MS,
  DEFAULT_TRUST_LEVEL,
  isExpired,
  trustedBlockOf,
  validTrustLevel,
  verifyAdjacent,
  verifyBackwards,
  verifyLightBlock,
  withNextValidators,
  type Fraction,
  type TrustedBlock,
  type VerificationError,
  type VerifyOptions,
} from './verifier.js'

/**
 * The light client: trusts a header only when a chain of verifications (rpc/light/verifier.ts) leads to it from a
 * block it already trusts, fetching the blocks and validator sets it needs from one provider (an endpoint). Forward
 * it verifies by skipping (CometBFT's light client: the trusted next set vouches for a later header with more than a
 * third of its power, bisecting when it does not) or sequentially (every height); below its latest block it verifies
 * backwards by the hash chain from the closest trusted block above when that is at most `maxBackwardHeights` away (so
 * a fork signed by more than a third of a trusted set cannot slip in between two trusted blocks), else forward from
 * the closest trusted block below that is still within the trusting period.
 *
 * A header verified by skipping rests on the signatures of more than a third of a trusted set, which a fork signed by
 * that many validators also has. Given witnesses (other endpoints), the client compares each such header with every
 * witness's header at its height, all witnesses at once, before it trusts it (CometBFT's light client detector): a
 * witness's header of another hash that verifies from the same trusted block is a fork, {@link
 * ConflictingHeadersError}, even when other witnesses confirm the header (they may serve the same fork). When no
 * witness confirms it (each unreachable, behind, past its own deadline, or lying), the client verifies it height by
 * height instead, as far as `unconfirmedSequentialHeights`, and beyond that refuses it with
 * {@link UnconfirmedHeaderError}. Headers verified by the hash chain (adjacent forward, backwards) need no witness.
 *
 * Whatever a provider sends that fails verification throws {@link FailedVerificationError} naming it; an expired or
 * unusable starting point throws {@link TrustError}. Blocks verified along the way join the trusted blocks, which
 * `onChange` persists.
 */

/** Where the light client gets what it verifies: one endpoint. Nothing it returns is trusted. */
export interface LightProvider {
  /** The endpoint, for reports. */
  readonly name: string
  /**
   * The light blocks (header and commit) of heights `from` … `to`, ascending. Throws FailedVerificationError when
   * the answer is malformed or a height is missing, and the transport's errors when the endpoint does not answer.
   */
  lightBlocks(from: number, to: number): Promise<LightBlock[]>
  /** The validator set in force at `height`, decoded (its hash is for the verifier to check). */
  validators(height: number): Promise<ValidatorSet>
  /**
   * The light block of `height`, undefined when the endpoint has none (above its tip). Throws as `lightBlocks` does
   * for anything else.
   */
  lightBlock(height: number): Promise<LightBlock | undefined>
  /**
   * Submits equivocation evidence (`evidence_submit`): resolves with `new` or `known` when the endpoint took it (new to
   * it, or already held), with `ahead` when its height is above the endpoint's (it kept nothing), and throws otherwise
   * (e.g. an `RpcError` with reason `evidence_expired`). Absent, the endpoint is not sent evidence.
   */
  submitEvidence?(evidence: Uint8Array): Promise<'new' | 'known' | 'ahead'>
}

/**
 * The other endpoints a header verified by skipping is compared with, all of them, at once. A witness is asked for one
 * header at the height; only when its header differs does the client verify that header (fetching what it needs from
 * the witness) to tell a fork from a lying witness. The list order decides which witness a conflict names when
 * several hold one.
 */
export interface Witnesses {
  readonly providers: readonly LightProvider[]
  /** Told of a witness whose header fails verification; the other witnesses' word decides. */
  readonly onLie?: (e: FailedVerificationError) => void
  /** Told when no witness confirmed a header and the client verifies it height by height instead. */
  readonly onUnconfirmed?: (e: UnconfirmedHeaderError) => void
}

/** Light client settings. */
export interface LightClientOptions {
  /** How long a trusted block may be used as the basis of a verification (default two weeks). */
  readonly trustingPeriodMs?: number
  /** How far a header's time may be ahead of the local clock (default 10 s). */
  readonly maxClockDriftMs?: number
  /** The share of the trusted set's power that must sign a skipped-to header (default 1/3; from 1/3 to 1). */
  readonly trustLevel?: Fraction
  /** `skipping` (default) or `sequential` (every height from the trusted one up). */
  readonly mode?: 'skipping' | 'sequential'
  /** Most heights verified backwards in one go (default 10,000). */
  readonly maxBackwardHeights?: number
  /**
   * Below the latest trusted block, a height at most this far below the closest trusted block above is verified
   * backwards from it even when a trusted block below could vouch for it (default 100: two requests). Further down,
   * forward from below, which costs no walk; backwards only when no trusted block below is within the period.
   */
  readonly backwardFirstHeights?: number
  /**
   * How long a witness that has no block at a height yet (one block behind the endpoint that served it, typically) is
   * asked again before it counts as unavailable for that header (default 3000 ms, every 200 ms).
   */
  readonly witnessLagMs?: number
  /**
   * How long one witness may spend on all its cross-checks in one verification (a bisection may check several
   * headers), its waits for a block it lacks and its verifications of a header that differs included (default 10 s).
   * Past it the witness counts as unavailable and is not asked again in that verification, so that a slow witness
   * cannot use up the time the answer has.
   */
  readonly witnessTimeoutMs?: number
  /**
   * When no witness confirms a header verified by skipping, it is verified height by height instead (the hash chain
   * from the trusted block, each header signed by more than two thirds of its set: what a fork of fewer keys cannot
   * pass) if it lies at most this many heights above (default 1000: 20 requests); further up the answer is refused.
   */
  readonly unconfirmedSequentialHeights?: number
}

/** What the light client works with. */
export interface LightClientDependencies {
  readonly blocks: TrustedBlocks
  /** The local clock, unix ms. */
  readonly now: () => number
  /** Called when the trusted blocks changed, to persist them. */
  readonly onChange?: (blocks: TrustedBlocks) => void | Promise<void>
}

/** Whether `witnesses` holds an endpoint other than `primary` (the one a header came from is no witness of it). */
function hasWitness(witnesses: Witnesses | undefined, primary: LightProvider): boolean {
  return witnesses?.providers.some((w) => w.name !== primary.name) === true
}

/** The trust level of a skip with no witness ({@link LightClient.skipLevel}): more than two thirds. */
const LONE_TRUST_LEVEL: Fraction = Object.freeze({ numerator: 2n, denominator: 3n })

/** Most light blocks asked of a provider in one request. */
const FETCH_BATCH = 50

/** How often a witness without the block yet is asked again. */
const WITNESS_POLL_MS = 200

/** How a forward verification treats what it verifies. */
interface ForwardRun {
  /** Whether verified blocks join the trusted blocks (not when checking a witness's conflicting header). */
  readonly store: boolean
  /** The witnesses each header verified by skipping is compared with before it is trusted. */
  readonly witnesses?: Witnesses | undefined
  /**
   * The time (ms) each witness spent on its checks in this verification: what it spends on one check is gone for the
   * next, and with none left it is not asked again in this verification.
   */
  readonly spent?: Map<string, number>
}

/** What one witness made of a header verified by skipping. */
type WitnessVerdict =
  | { readonly kind: 'confirmed' }
  | { readonly kind: 'conflict'; readonly block: LightBlock }
  | { readonly kind: 'lied'; readonly error: FailedVerificationError }
  | { readonly kind: 'unavailable'; readonly error: string }
  | { readonly kind: 'trust'; readonly error: TrustError }

/** A witness's call that ran past the witness's deadline. */
class WitnessLateError extends Error {}

/**
 * `provider` with every call bounded by `deadline` (`Date.now()` time): a call made past it, or unanswered at it,
 * throws {@link WitnessLateError} (the call under way is left to end on its own).
 */
function boundedProvider(provider: LightProvider, deadline: number, late: string): LightProvider {
  return {
    name: provider.name,
    lightBlocks: (from, to) => withDeadline(() => provider.lightBlocks(from, to), deadline, late),
    validators: (height) => withDeadline(() => provider.validators(height), deadline, late),
    lightBlock: (height) => withDeadline(() => provider.lightBlock(height), deadline, late),
  }
}

/**
 * The call `f` makes, bounded by `deadline` (`Date.now()` time): made past it, or unanswered at it, it throws {@link
 * WitnessLateError} (a call under way is left to end on its own).
 */
function withDeadline<T>(f: () => Promise<T>, deadline: number, late: string): Promise<T> {
  const left = deadline - Date.now()
  if (left <= 0) return Promise.reject(new WitnessLateError(late))
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WitnessLateError(late)), left)
  })
  const answer = f()
  answer.catch(() => {})
  return Promise.race([answer, expired]).finally(() => clearTimeout(timer))
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A witness's transport failure, for the report: it is not called a liar for it. */
const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The light client of one chain. */
export class LightClient {
  private readonly trustingPeriodMs: number
  private readonly maxClockDriftMs: number
  private readonly trustLevel: Fraction
  private readonly mode: 'skipping' | 'sequential'
  private readonly maxBackwardHeights: number
  private readonly backwardFirstHeights: number
  private readonly witnessLagMs: number
  private readonly witnessTimeoutMs: number
  private readonly unconfirmedSequentialHeights: number

  constructor(
    options: LightClientOptions,
    private readonly deps: LightClientDependencies,
  ) {
    this.trustingPeriodMs = options.trustingPeriodMs ?? DEFAULT_TRUSTING_PERIOD_MS
    this.maxClockDriftMs = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS
    this.trustLevel = options.trustLevel ?? DEFAULT_TRUST_LEVEL
    this.mode = options.mode ?? 'skipping'
    this.maxBackwardHeights = options.maxBackwardHeights ?? 10_000
    this.backwardFirstHeights = Math.min(options.backwardFirstHeights ?? 100, this.maxBackwardHeights)
    this.witnessLagMs = options.witnessLagMs ?? 3000
    this.witnessTimeoutMs = options.witnessTimeoutMs ?? 10_000
    this.unconfirmedSequentialHeights = options.unconfirmedSequentialHeights ?? 1000
    if (!Number.isSafeInteger(this.trustingPeriodMs) || this.trustingPeriodMs <= 0) throw new RangeError('the trusting period must be a positive number of ms')
    if (!validTrustLevel(this.trustLevel)) throw new RangeError('the trust level must be from 1/3 to 1')
    if (!Number.isSafeInteger(this.witnessTimeoutMs) || this.witnessTimeoutMs <= 0) throw new RangeError('the witness timeout must be a positive number of ms')
  }

  get chainId(): string {
    return this.deps.blocks.chainId
  }

  /** The trusted blocks. */
  get blocks(): TrustedBlocks {
    return this.deps.blocks
  }

  /** The highest trusted block. */
  latest(): TrustedBlock {
    return this.deps.blocks.latest()
  }

  private options(trustLevel = this.trustLevel): VerifyOptions {
    return { now: this.deps.now(), trustingPeriodMs: this.trustingPeriodMs, maxClockDriftMs: this.maxClockDriftMs, trustLevel }
  }

  /**
   * The share of a trusted set that must sign a header skipped to. With no witness to compare it with, more than two
   * thirds (or the configured level, if higher): validators that left the set hold nothing at stake and can no longer
   * be convicted by evidence, so more than a third of a trusted set, all of them removed since, could otherwise vouch
   * for a header they signed after leaving, and the trusting period, which counts from the trusted block, would not
   * bound it. More than two thirds of a set include more than a third of honest ones, which sign no such header.
   */
  private skipLevel(run: ForwardRun, primary: LightProvider): Fraction {
    if (!run.store || hasWitness(run.witnesses, primary)) return this.trustLevel
    const t = this.trustLevel
    return t.numerator * 3n >= 2n * t.denominator ? t : LONE_TRUST_LEVEL
  }

  /**
   * Verifies a light block received from `provider` (with a proof, typically), fetching from the same provider what
   * the verification needs, and comparing each header it verifies by skipping with the `witnesses`' (none: no
   * comparison). Returns its trusted block.
   */
  async verify(block: LightBlock, provider: LightProvider, witnesses?: Witnesses): Promise<TrustedBlock> {
    const blocks = this.deps.blocks
    const h = block.header.height
    if (block.header.chainId !== this.chainId)
      this.lie(provider, `header ${h} is of chain ${JSON.stringify(block.header.chainId)}, not ${JSON.stringify(this.chainId)}`)
    const known = blocks.at(h)
    if (known !== undefined) {
      if (known.hash !== null && bytesEqual(known.hash, block.hash)) return known
      this.lie(provider, `header ${h} conflicts with the trusted block ${known.hash === null ? '(genesis)' : to0x(known.hash)} at that height`)
    }
    let result: TrustedBlock
    const latest = blocks.latest()
    if (h > latest.height) {
      result = await this.forward(latest, block, provider, { store: true, witnesses, spent: new Map() })
    } else {
      // The hash chain down from a trusted header is proof no number of validator keys can forge: a header that
      // skipping would accept from below (signed by more than the trust level of a trusted set) may still be a fork
      // the trusted block above does not extend. So close below a trusted block, backwards from it; further down the
      // walk would cost a request per 50 heights on every look-up, and forward from below is the default.
      const above = blocks.closestAbove(h)
      const below = blocks.closestBelow(h)
      if (above !== undefined && above.height - h <= this.backwardFirstHeights) {
        result = await this.backward(above, block, provider)
        blocks.add(result)
      } else if (below !== undefined && !isExpired(below, this.deps.now(), this.trustingPeriodMs)) {
        result = await this.forward(below, block, provider, { store: true, witnesses, spent: new Map() })
      } else {
        if (above === undefined) throw new TrustError('trust_expired', `no trusted block within the trusting period lies below height ${h}, and none above it`)
        result = await this.backward(above, block, provider)
      }
    }
    await this.deps.onChange?.(blocks)
    return result
  }

  /**
   * Checks the certificate that came with `block`, whose header {@link verify} trusted: a header trusted before, or by
   * the hash chain down from a trusted one, is trusted without its certificate, which may then be anything. The
   * certificate must verify against the set of the block's height: the one the trusted block below names as next when
   * the client holds it, else `provider`'s, which must be the set the header names. Throws
   * {@link FailedVerificationError} otherwise.
   */
  async checkCertificate(block: LightBlock, provider: LightProvider): Promise<void> {
    const h = block.header.height
    const below = this.deps.blocks.at(h - 1)?.nextValidators
    const set = below !== undefined && bytesEqual(below.hash, block.header.validatorSetHash) ? below : await provider.validators(h)
    if (!bytesEqual(set.hash, block.header.validatorSetHash)) this.lie(provider, `its validator set of height ${h} is not the one header ${h} names`)
    const v = verifyCommit(set, this.chainId, h, block.hash, block.commit)
    if (!v.ok) this.lie(provider, `the certificate of block ${h} does not verify: ${v.error.reason}`)
  }

  /** Fetches the light block at `height` from `provider` and verifies it (see {@link verify}). */
  async verifyHeight(height: number, provider: LightProvider, witnesses?: Witnesses): Promise<TrustedBlock> {
    const known = this.deps.blocks.at(height)
    if (known !== undefined) return known
    return this.verify(await this.fetchOne(height, provider), provider, witnesses)
  }

  private async fetchOne(height: number, provider: LightProvider): Promise<LightBlock> {
    const [b] = await provider.lightBlocks(height, height)
    if (b === undefined || b.header.height !== height) this.lie(provider, `no header for height ${height}`)
    return b
  }

  /** Forward from `from` to `target`, by skipping with bisection or sequentially. */
  private async forward(from: TrustedBlock, target: LightBlock, provider: LightProvider, run: ForwardRun): Promise<TrustedBlock> {
    if (this.mode === 'sequential') return this.sequential(from, target, provider)
    let trusted = from
    const pending: LightBlock[] = [target]
    while (pending.length > 0) {
      const next = pending.at(-1)!
      const skip = next.header.height > trusted.height + 1
      if (skip) trusted = await this.withNextSet(trusted, provider, run.store)
      const validators = await this.setOf(trusted, next, provider)
      const r = verifyLightBlock(trusted, next, validators, this.options(this.skipLevel(run, provider)))
      if (r.ok) {
        // the skipped-to header stands on more than a third of the trusted set: a witness must confirm it first, or
        // else the hash chain up to it, each height signed by more than two thirds of its set
        // (with no witness but the primary, the skip stands on more than two thirds and needs no confirmation)
        const unconfirmed =
          skip && run.witnesses !== undefined && hasWitness(run.witnesses, provider)
            ? await this.crossCheck(trusted, next, provider, run.witnesses, run.spent)
            : undefined
        if (unconfirmed !== undefined) {
          if (next.header.height - trusted.height > this.unconfirmedSequentialHeights) throw unconfirmed
          run.witnesses?.onUnconfirmed?.(unconfirmed)
          trusted = await this.sequential(trusted, next, provider)
          pending.pop()
          continue
        }
        trusted = trustedBlockOf(next, validators)
        if (run.store) this.deps.blocks.add(trusted)
        pending.pop()
        continue
      }
      if (r.error.code !== 'not_enough_trust') this.refuse(r.error, provider)
      // not adjacent (that never lacks trust): the pivot lies strictly between the two
      pending.push(await this.fetchOne(Math.floor((trusted.height + next.header.height) / 2), provider))
    }
    return trusted
  }

  /** Forward one height at a time: every header from `from` + 1 to the target, each adjacent to the one before. */
  private async sequential(from: TrustedBlock, target: LightBlock, provider: LightProvider): Promise<TrustedBlock> {
    let trusted = from
    const top = target.header.height
    while (trusted.height < top) {
      const first = trusted.height + 1
      const last = Math.min(first + FETCH_BATCH - 1, top - 1)
      const batch = first <= last ? await provider.lightBlocks(first, last) : []
      if (last === top - 1) batch.push(target)
      if (batch.length === 0) this.lie(provider, `no headers for heights ${first} to ${last}`)
      for (const next of batch) {
        if (next.header.height !== trusted.height + 1) this.lie(provider, `gave header ${next.header.height} where ${trusted.height + 1} was asked`)
        const validators = await this.setOf(trusted, next, provider)
        const r = verifyAdjacent(trusted, next, validators, this.options())
        if (!r.ok) this.refuse(r.error, provider)
        trusted = trustedBlockOf(next, validators)
        this.deps.blocks.add(trusted)
      }
    }
    return trusted
  }

  /** Backward from a trusted header above the target, by the hash chain. */
  private async backward(above: TrustedBlock, target: LightBlock, provider: LightProvider): Promise<TrustedBlock> {
    const distance = above.height - target.header.height
    if (distance > this.maxBackwardHeights) {
      throw new TrustError(
        'trust_expired',
        `height ${target.header.height} lies ${distance} heights below the closest trusted block, more than the ${this.maxBackwardHeights} verified backwards at once`,
      )
    }
    let cur = above.header!
    while (cur.height - 1 > target.header.height) {
      const to = cur.height - 1
      const from = Math.max(target.header.height + 1, to - FETCH_BATCH + 1)
      const batch = await provider.lightBlocks(from, to)
      for (let i = batch.length - 1; i >= 0; i--) {
        const r = verifyBackwards(cur, batch[i]!.header)
        if (!r.ok) this.refuse(r.error, provider)
        cur = batch[i]!.header
      }
      if (batch.length === 0) this.lie(provider, `no headers for heights ${from} to ${to}`)
    }
    const r = verifyBackwards(cur, target.header)
    if (!r.ok) this.refuse(r.error, provider)
    return trustedBlockOf(target)
  }

  /**
   * The trusted block with its next set (fetched and checked against its `nextValidatorSetHash` when not held), kept
   * with the trusted blocks when `store`.
   */
  private async withNextSet(trusted: TrustedBlock, provider: LightProvider, store: boolean): Promise<TrustedBlock> {
    if (trusted.nextValidators !== undefined) return trusted
    const set = await provider.validators(trusted.height + 1)
    const t = withNextValidators(trusted, set)
    if (t === undefined)
      this.lie(provider, `the validator set of height ${trusted.height + 1} is not the one trusted header ${trusted.height} announced (nextValidatorSetHash)`)
    if (store) this.deps.blocks.add(t)
    return t
  }

  /**
   * Compares `block`, verified by skipping from `from`, with every witness's block at its height, all at once, each
   * witness within its own deadline. A witness's block of another hash is verified from `from` with what that witness
   * serves: if it verifies, the two are a fork and the client stops ({@link ConflictingHeadersError}, naming the first
   * such witness in list order), whatever the other witnesses said; if not, the witness lied. Returns
   * {@link UnconfirmedHeaderError} when no witness confirms the block, undefined when one does and none conflicts.
   * A witness has {@link witnessTimeoutMs} for all its checks in the verification `spent` belongs to: past that it
   * counts as unavailable, and with nothing left it is not asked.
   */
  private async crossCheck(
    from: TrustedBlock,
    block: LightBlock,
    primary: LightProvider,
    witnesses: Witnesses,
    spent = new Map<string, number>(),
  ): Promise<UnconfirmedHeaderError | undefined> {
    const h = block.header.height
    const late = `no answer within ${this.witnessTimeoutMs} ms`
    const now = Date.now()
    const asked = witnesses.providers.filter((w) => w.name !== primary.name)
    // the latest any witness may answer: the evidence of a fork is sent by then too, so that the fork is reported
    // within the time the witnesses have, which leaves the answer's own deadline room for it
    const until = now + Math.max(0, ...asked.map((w) => this.witnessTimeoutMs - (spent.get(w.name) ?? 0)))
    // a fork's evidence is made and sent as soon as a witness shows it, while slower witnesses are still asked
    const accounts = new Map<number, Promise<ForkAccountability>>()
    // each item is sent to each endpoint once, by the comparison that found it first
    const claimed = new Set<string>()
    const verdicts = await Promise.all(
      asked.map(async (w, i): Promise<WitnessVerdict> => {
        const left = this.witnessTimeoutMs - (spent.get(w.name) ?? 0)
        if (left <= 0) return { kind: 'unavailable', error: late }
        let v: WitnessVerdict | undefined
        try {
          v = await this.askWitness(from, block, w, now + left, late)
          if (v.kind === 'conflict') accounts.set(i, this.accountFor(from, block, primary, v.block, w, [primary, ...asked], until, claimed))
          return v
        } finally {
          // a witness past its deadline has used its time, whatever the clock measured of the wait
          const used = v?.kind === 'unavailable' && v.error === late ? this.witnessTimeoutMs : (spent.get(w.name) ?? 0) + (Date.now() - now)
          spent.set(w.name, used)
        }
      }),
    )
    // every making of evidence started ends by `until`, the first conflict in list order is the one reported
    const accountability = new Map<number, ForkAccountability>()
    for (const [i, p] of accounts) accountability.set(i, await p)
    const failures: { endpoint: string; error: string }[] = []
    let confirmed = false
    let trustError: TrustError | undefined
    for (const [i, v] of verdicts.entries()) {
      const name = asked[i]!.name
      if (v.kind === 'confirmed') confirmed = true
      else if (v.kind === 'lied') {
        witnesses.onLie?.(v.error)
        failures.push({ endpoint: name, error: `fails verification: ${v.error.reason}` })
      } else if (v.kind === 'unavailable') failures.push({ endpoint: name, error: v.error })
      else if (v.kind === 'trust') trustError ??= v.error
    }
    for (const [i, v] of verdicts.entries()) {
      if (v.kind !== 'conflict') continue
      const witness = asked[i]!
      throw new ConflictingHeadersError(h, primary.name, to0x(block.hash), witness.name, to0x(v.block.hash), from.height, mergedAccountability(accountability))
    }
    if (trustError !== undefined) throw trustError
    return confirmed ? undefined : new UnconfirmedHeaderError(h, primary.name, failures)
  }

  /**
   * Who two conflicting blocks, each verified from `from`, prove signed both, and where the proof went: the evidence
   * of every validator that signed both commits in one round (under either header's validator set, each checked
   * against its header), submitted to every endpoint at once, all by `deadline` (`Date.now()` time: what is left of the
   * witnesses' time, so that the fork is reported within it). Never throws: what cannot be fetched or sent by then is
   * left out of, or reported in, the result.
   */
  private async accountFor(
    from: TrustedBlock,
    ours: LightBlock,
    primary: LightProvider,
    theirs: LightBlock,
    witness: LightProvider,
    endpoints: readonly LightProvider[],
    deadline: number,
    claimed: Set<string>,
  ): Promise<ForkAccountability> {
    const rounds: [number, number] = [ours.commit.round, theirs.commit.round]
    if (rounds[0] !== rounds[1]) return { rounds, validators: [], evidence: [], submitted: [] }
    const late = `no answer within the witness timeout (${this.witnessTimeoutMs} ms)`
    const setOf = async (b: LightBlock, p: LightProvider): Promise<ValidatorSet | undefined> => {
      try {
        const set = await this.setOf(from, b, boundedProvider(p, deadline, late))
        return bytesEqual(set.hash, b.header.validatorSetHash) ? set : undefined
      } catch {
        return undefined
      }
    }
    const sets = await Promise.all([setOf(ours, primary), setOf(theirs, witness)])
    const items = new Map<string, { validator: string; bytes: Uint8Array }>()
    for (const set of sets) {
      if (set === undefined) continue
      for (const bytes of conflictingCommitEvidence(this.chainId, set, ours.commit, theirs.commit)) {
        const d = decodeEvidence(bytes)
        if (d.ok) items.set(to0x(bytes), { validator: formatAddress(evidenceOffender(d.value)), bytes })
      }
    }
    const ordered = [...items.entries()].sort(([, a], [, b]) => (a.validator < b.validator ? -1 : a.validator > b.validator ? 1 : 0))
    const evidence = ordered.map(([hex]) => hex)
    const validators = [...new Set(ordered.map(([, v]) => v.validator))]
    const fresh = ordered.filter(([hex]) => !claimed.has(hex))
    for (const [hex] of fresh) claimed.add(hex)
    if (fresh.length === 0) return { rounds, validators, evidence, submitted: [] }
    const submitted = await Promise.all(
      endpoints
        .filter((p) => p.submitEvidence !== undefined)
        .map(async (p): Promise<EvidenceSubmission> => {
          // an endpoint behind the fork's height keeps nothing of it: counted apart, and the next items still sent
          let accepted = 0
          let ahead = 0
          const outcome = () => ({ endpoint: p.name, accepted, ...(ahead === 0 ? {} : { ahead }) })
          try {
            for (const [, item] of fresh) {
              if ((await withDeadline(() => p.submitEvidence!(item.bytes), deadline, late)) === 'ahead') ahead++
              else accepted++
            }
            return outcome()
          } catch (e) {
            return { ...outcome(), ...(e instanceof RpcError && e.reason !== undefined ? { reason: e.reason } : {}), error: errorText(e) }
          }
        }),
    )
    return { rounds, validators, evidence, submitted }
  }

  /** What `witness` makes of `block` (verified by skipping from `from`) by `deadline`, else `late`. */
  private async askWitness(from: TrustedBlock, block: LightBlock, witness: LightProvider, deadline: number, late: string): Promise<WitnessVerdict> {
    const h = block.header.height
    const bounded = boundedProvider(witness, deadline, late)
    try {
      const theirs = await this.witnessBlock(bounded, h)
      if (theirs === undefined) return { kind: 'unavailable', error: `no block at height ${h} within ${this.witnessLagMs} ms` }
      if (bytesEqual(theirs.hash, block.hash)) return { kind: 'confirmed' }
      if (theirs.header.height !== h) this.lie(witness, `gave header ${theirs.header.height} where ${h} was asked`)
      await this.forward(from, theirs, bounded, { store: false })
      return { kind: 'conflict', block: theirs }
    } catch (e) {
      if (e instanceof FailedVerificationError) return { kind: 'lied', error: e }
      if (e instanceof TrustError) return { kind: 'trust', error: e }
      return { kind: 'unavailable', error: e instanceof WitnessLateError ? late : errorText(e) }
    }
  }

  /** The witness's block at `height`, asked again while it has none, for up to `witnessLagMs`. */
  private async witnessBlock(witness: LightProvider, height: number): Promise<LightBlock | undefined> {
    const deadline = Date.now() + this.witnessLagMs
    for (;;) {
      const b = await witness.lightBlock(height)
      if (b !== undefined) return b
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      await sleep(Math.min(WITNESS_POLL_MS, left))
    }
  }

  /** The set a header names: the trusted next set when it is that one, else fetched (the verifier checks its hash). */
  private async setOf(trusted: TrustedBlock, block: LightBlock, provider: LightProvider): Promise<ValidatorSet> {
    if (trusted.nextValidators !== undefined && bytesEqual(block.header.validatorSetHash, trusted.nextValidators.hash)) return trusted.nextValidators
    return provider.validators(block.header.height)
  }

  private refuse(e: VerificationError, provider: LightProvider): never {
    if (e.code === 'expired') throw new TrustError('trust_expired', e.reason)
    this.lie(provider, e.reason)
  }

  private lie(provider: LightProvider, reason: string): never {
    throw new FailedVerificationError(provider.name, reason)
  }
}

/**
 * The trusted block of a checkpoint the user pinned by height and hash: the provider's block at that height must have
 * that hash, be within the trusting period, and its next set (fetched) must be the one its header names.
 */
export async function trustCheckpoint(
  height: number,
  hash: Uint8Array,
  provider: LightProvider,
  o: { now: number; trustingPeriodMs?: number },
): Promise<TrustedBlock> {
  const [b] = await provider.lightBlocks(height, height)
  if (b === undefined || b.header.height !== height) throw new FailedVerificationError(provider.name, `no header for the pinned height ${height}`)
  if (!bytesEqual(b.hash, hash))
    throw new FailedVerificationError(provider.name, `its block at the pinned height ${height} is ${to0x(b.hash)}, not the pinned ${to0x(hash)}`)
  const trusted = trustedBlockOf(b)
  if (isExpired(trusted, o.now, o.trustingPeriodMs ?? DEFAULT_TRUSTING_PERIOD_MS)) {
    throw new TrustError(
      'trust_expired',
      `the pinned block at height ${height} (time ${new Date(trusted.time).toISOString()}) is older than the trusting period`,
    )
  }
  const withNext = withNextValidators(trusted, await provider.validators(height + 1))
  if (withNext === undefined)
    throw new FailedVerificationError(provider.name, `the validator set of height ${height + 1} is not the one the pinned header announces`)
  return withNext
}

/**
 * One report of the evidence every comparison that showed the fork made and sent (each item to each endpoint once, by
 * the comparison that found it first): the validators and items of all of them, each endpoint's counts summed, its
 * first refusal kept. Its rounds are those of the first comparison, in witness order, that made evidence (commits of
 * one round), else of the first one. Undefined when no comparison was accounted for.
 */
function mergedAccountability(byWitness: ReadonlyMap<number, ForkAccountability>): ForkAccountability | undefined {
  const all = [...byWitness.entries()].sort(([a], [b]) => a - b).map(([, a]) => a)
  if (all.length === 0) return undefined
  const base = all.find((a) => a.evidence.length > 0) ?? all[0]!
  const submitted = new Map<string, EvidenceSubmission>()
  for (const a of all) {
    for (const s of a.submitted) {
      const was = submitted.get(s.endpoint)
      if (was === undefined) {
        submitted.set(s.endpoint, s)
        continue
      }
      const ahead = (was.ahead ?? 0) + (s.ahead ?? 0)
      const refusal = was.error !== undefined ? was : s
      submitted.set(s.endpoint, {
        endpoint: s.endpoint,
        accepted: was.accepted + s.accepted,
        ...(ahead === 0 ? {} : { ahead }),
        ...(refusal.error === undefined ? {} : { error: refusal.error }),
        ...(refusal.reason === undefined ? {} : { reason: refusal.reason }),
      })
    }
  }
  return {
    rounds: base.rounds,
    validators: [...new Set(all.flatMap((a) => a.validators))].sort(),
    evidence: [...new Set(all.flatMap((a) => a.evidence))],
    submitted: [...submitted.values()],
  }
}
