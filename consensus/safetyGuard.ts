import { Domain, addressFromPublicKey, bytesEqual, decodeCanonical, err, keyPairFromSeed, rememberValid, sign, type Result } from '../crypto/index.js'
import { proposalSignBytes, voteSignBytes } from './signBytes.js'
import type { Proposal, SignedProposal, SignedVote, Vote } from './types.js'

/**
 * The safety guard: the only holder of the validator key (Aptos's safety rules, CometBFT's FilePV).
 *
 * It signs in strictly increasing (height, round, step) order, step being proposal < prevote < precommit,
 * so an honest validator can never sign two conflicting messages, not even across a crash and a replay:
 *  - a request above the last signed (height, round, step) is signed, recorded, SAVED, and only then returned;
 *  - a request equal to the last one with the identical sign bytes returns the stored signature;
 *  - anything else (a different message at the same step, or anything lower) is refused.
 * The consensus core never sees the key: it emits `signVote` / `signProposal` effects and the host runs them here.
 */

/** The signing steps, in the order they happen within a round. */
export type SignStep = 'proposal' | 'prevote' | 'precommit'

const STEP_ORDER: Record<SignStep, number> = { proposal: 1, prevote: 2, precommit: 3 }

/** What the guard persists: the last thing it signed. */
export interface SafetyRecord {
  readonly height: number
  readonly round: number
  readonly step: SignStep
  readonly signBytes: Uint8Array
  readonly signature: Uint8Array
}

/**
 * Durable storage of the record. `save` is synchronous and must be durable when it returns (fsync), because
 * the guard releases the signature right after; if it throws, no signature is released.
 */
export interface SafetyStore {
  load(): SafetyRecord | undefined
  save(record: SafetyRecord): void
  /** The same as `save` without blocking the caller's thread while the disk syncs (used by the async signers). */
  saveAsync?(record: SafetyRecord): Promise<void>
}

/** Every reason the guard refuses to sign. */
export const SAFETY_REFUSAL_CODES = ['conflict', 'regression', 'wrong_signer', 'malformed'] as const

/** Why the guard refused to sign. */
export interface SafetyRefusal {
  readonly code: (typeof SAFETY_REFUSAL_CODES)[number]
  readonly reason: string
}

/** A signature the guard released, or its refusal. */
export type SignResult<T> = Result<T, SafetyRefusal>

/** Construction options: the chain id (part of every sign bytes) and the validator's 32-byte secret key. */
export interface SafetyGuardOptions {
  readonly chainId: string
  readonly secretKey: Uint8Array
}

/** What the guard depends on. */
export interface SafetyGuardDependencies {
  readonly store: SafetyStore
}

/** An in-memory store, for tests and the simulator (no durability). */
export function createMemorySafetyStore(initial?: SafetyRecord): SafetyStore & { saves: number } {
  let record = initial
  return {
    saves: 0,
    load: () => record,
    save(r) {
      record = r
      this.saves++
    },
  }
}

/** The validator key's guardian (see the module comment). */
export class SafetyGuard {
  private readonly chainId: string
  private readonly secretKey: Uint8Array
  private readonly store: SafetyStore
  /** The validator's address: the only signer the guard signs as. */
  readonly address: Uint8Array
  /** The validator's public key. */
  readonly publicKey: Uint8Array
  private last: SafetyRecord | undefined

  constructor(options: SafetyGuardOptions, dependencies: SafetyGuardDependencies) {
    this.chainId = options.chainId
    const keys = keyPairFromSeed(options.secretKey)
    this.secretKey = keys.secretKey
    this.publicKey = keys.publicKey
    this.address = addressFromPublicKey(keys.publicKey)
    this.store = dependencies.store
    this.last = this.store.load()
  }

  /** The last signed record (undefined before the first signature). */
  get record(): SafetyRecord | undefined {
    return this.last
  }

  /**
   * The last message this guard signed, rebuilt from its record (the record keeps the sign bytes and the signature).
   * After a crash, a host may hold no trace of it elsewhere (its WAL record written but not yet synced): feeding it
   * back tells the core what this validator already said, instead of leaving a round it can neither repeat nor
   * contradict.
   */
  lastSigned(): { kind: 'vote'; vote: SignedVote } | { kind: 'proposal'; proposal: SignedProposal } | undefined {
    const r = this.last
    if (r === undefined) return undefined
    const d = decodeCanonical(r.signBytes, 256)
    if (!d.ok || !Array.isArray(d.value)) return undefined
    const [domain, chainId, height, round, valueId, polRound] = d.value as unknown[]
    if (chainId !== this.chainId || height !== r.height || round !== r.round) return undefined
    const value = valueId instanceof Uint8Array ? valueId : null
    if (r.step === 'proposal') {
      if (domain !== Domain.proposal || value === null || typeof polRound !== 'number') return undefined
      return { kind: 'proposal', proposal: { height: r.height, round: r.round, valueId: value, polRound, proposer: this.address, signature: r.signature } }
    }
    if (domain !== (r.step === 'prevote' ? Domain.prevote : Domain.precommit) || (valueId !== null && value === null)) return undefined
    return { kind: 'vote', vote: { type: r.step, height: r.height, round: r.round, valueId: value, validator: this.address, signature: r.signature } }
  }

  /** Signs a prevote or precommit if the rules allow it (see the module comment). */
  signVote(vote: Vote): SignResult<SignedVote> {
    const c = this.voteRequest(vote)
    if (!c.ok) return c
    const r = this.authorize(c.value)
    return r.ok ? { ok: true, value: { ...vote, signature: r.value } } : r
  }

  /** Signs a proposal if the rules allow it (see the module comment). */
  signProposal(proposal: Proposal): SignResult<SignedProposal> {
    const c = this.proposalRequest(proposal)
    if (!c.ok) return c
    const r = this.authorize(c.value)
    return r.ok ? { ok: true, value: { ...proposal, signature: r.value } } : r
  }

  /**
   * {@link signVote} for a host with an event loop: the record is saved with the store's `saveAsync` when it has
   * one, so the thread goes on with other work while the disk syncs. Requests are taken one at a time, in call
   * order; the signature is released only once the record is durable.
   */
  signVoteAsync(vote: Vote): Promise<SignResult<SignedVote>> {
    return this.serial(async () => {
      const c = this.voteRequest(vote)
      if (!c.ok) return c
      const r = await this.authorizeAsync(c.value)
      return r.ok ? { ok: true, value: { ...vote, signature: r.value } } : r
    })
  }

  /** {@link signProposal} for a host with an event loop (see {@link signVoteAsync}). */
  signProposalAsync(proposal: Proposal): Promise<SignResult<SignedProposal>> {
    return this.serial(async () => {
      const c = this.proposalRequest(proposal)
      if (!c.ok) return c
      const r = await this.authorizeAsync(c.value)
      return r.ok ? { ok: true, value: { ...proposal, signature: r.value } } : r
    })
  }

  private tail: Promise<unknown> = Promise.resolve()
  private saving = false

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.tail.then(f, f)
    this.tail = run.catch(() => undefined)
    return run
  }

  private voteRequest(vote: Vote): SignResult<Request> {
    if (!bytesEqual(vote.validator, this.address)) return refuse('wrong_signer', 'the vote names another validator')
    if (vote.type !== 'prevote' && vote.type !== 'precommit') return refuse('malformed', 'unknown vote type')
    return { ok: true, value: { height: vote.height, round: vote.round, step: vote.type, bytes: voteSignBytes(this.chainId, vote) } }
  }

  private proposalRequest(proposal: Proposal): SignResult<Request> {
    if (!bytesEqual(proposal.proposer, this.address)) return refuse('wrong_signer', 'the proposal names another proposer')
    return { ok: true, value: { height: proposal.height, round: proposal.round, step: 'proposal', bytes: proposalSignBytes(this.chainId, proposal) } }
  }

  /** The rules: a stored signature to return again, a record to sign and save, or a refusal. */
  private decide(q: Request): SignResult<{ readonly again: Uint8Array } | { readonly fresh: SafetyRecord }> {
    const { height, round, step, bytes } = q
    // a synchronous request while an asynchronous save is under way (the async path takes one at a time)
    if (this.saving) return refuse('conflict', 'another signature is still being saved')
    if (!Number.isSafeInteger(height) || height < 1 || !Number.isSafeInteger(round) || round < 0) {
      return refuse('malformed', 'height and round must be non-negative integers')
    }
    const last = this.last
    if (last !== undefined) {
      const order = compareHrs(height, round, step, last)
      if (order === 0) {
        // The same (height, round, step): only the identical message, whose stored signature is returned.
        if (bytesEqual(bytes, last.signBytes)) return { ok: true, value: { again: last.signature } }
        return refuse('conflict', `already signed a different ${step} at height ${height} round ${round}`)
      }
      if (order < 0) {
        return refuse('regression', `${step} at ${height}/${round} is not above the last signed ${last.step} at ${last.height}/${last.round}`)
      }
    }
    const signature = sign(this.secretKey, bytes)
    // the core checks this validator's own messages like any other: it need not verify what was just signed
    rememberValid(this.publicKey, bytes, signature)
    return { ok: true, value: { fresh: { height, round, step, signBytes: bytes, signature } } }
  }

  private authorize(q: Request): SignResult<Uint8Array> {
    const d = this.decide(q)
    if (!d.ok) return d
    if ('again' in d.value) return { ok: true, value: d.value.again }
    // Persist BEFORE releasing the signature: if save throws, the signature never leaves.
    this.store.save(d.value.fresh)
    this.last = d.value.fresh
    return { ok: true, value: d.value.fresh.signature }
  }

  private async authorizeAsync(q: Request): Promise<SignResult<Uint8Array>> {
    const d = this.decide(q)
    if (!d.ok) return d
    if ('again' in d.value) return { ok: true, value: d.value.again }
    const record = d.value.fresh
    this.saving = true
    try {
      if (this.store.saveAsync) await this.store.saveAsync(record)
      else this.store.save(record)
    } finally {
      this.saving = false
    }
    this.last = record
    return { ok: true, value: record.signature }
  }
}

/** A signing request after its message-specific checks. */
interface Request {
  readonly height: number
  readonly round: number
  readonly step: SignStep
  readonly bytes: Uint8Array
}

function compareHrs(height: number, round: number, step: SignStep, last: SafetyRecord): number {
  if (height !== last.height) return height < last.height ? -1 : 1
  if (round !== last.round) return round < last.round ? -1 : 1
  return STEP_ORDER[step] - STEP_ORDER[last.step]
}

function refuse(code: SafetyRefusal['code'], reason: string): { readonly ok: false; readonly error: SafetyRefusal } {
  return err({ code, reason })
}
