import { addressFromPublicKey, bytesEqual, keyPairFromSeed, sign } from '../crypto/index.js'
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
}

/** Why the guard refused to sign. */
export interface SafetyRefusal {
  readonly ok: false
  readonly code: 'conflict' | 'regression' | 'wrong_signer' | 'malformed'
  readonly reason: string
}

/** A signature the guard released, or its refusal. */
export type SignResult<T> = { readonly ok: true; readonly value: T } | SafetyRefusal

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

  /** Signs a prevote or precommit if the rules allow it (see the module comment). */
  signVote(vote: Vote): SignResult<SignedVote> {
    if (!bytesEqual(vote.validator, this.address)) return refuse('wrong_signer', 'the vote names another validator')
    if (vote.type !== 'prevote' && vote.type !== 'precommit') return refuse('malformed', 'unknown vote type')
    const r = this.authorize(vote.height, vote.round, vote.type, voteSignBytes(this.chainId, vote))
    return r.ok ? { ok: true, value: { ...vote, signature: r.value } } : r
  }

  /** Signs a proposal if the rules allow it (see the module comment). */
  signProposal(proposal: Proposal): SignResult<SignedProposal> {
    if (!bytesEqual(proposal.proposer, this.address)) return refuse('wrong_signer', 'the proposal names another proposer')
    const r = this.authorize(proposal.height, proposal.round, 'proposal', proposalSignBytes(this.chainId, proposal))
    return r.ok ? { ok: true, value: { ...proposal, signature: r.value } } : r
  }

  private authorize(height: number, round: number, step: SignStep, bytes: Uint8Array): SignResult<Uint8Array> {
    if (!Number.isSafeInteger(height) || height < 1 || !Number.isSafeInteger(round) || round < 0) {
      return refuse('malformed', 'height and round must be non-negative integers')
    }
    const last = this.last
    if (last !== undefined) {
      const order = compareHrs(height, round, step, last)
      if (order === 0) {
        // The same (height, round, step): only the identical message, whose stored signature is returned.
        if (bytesEqual(bytes, last.signBytes)) return { ok: true, value: last.signature }
        return refuse('conflict', `already signed a different ${step} at height ${height} round ${round}`)
      }
      if (order < 0) {
        return refuse('regression', `${step} at ${height}/${round} is not above the last signed ${last.step} at ${last.height}/${last.round}`)
      }
    }
    const signature = sign(this.secretKey, bytes)
    const record: SafetyRecord = { height, round, step, signBytes: bytes, signature }
    // Persist BEFORE releasing the signature: if save throws, the signature never leaves.
    this.store.save(record)
    this.last = record
    return { ok: true, value: signature }
  }
}

function compareHrs(height: number, round: number, step: SignStep, last: SafetyRecord): number {
  if (height !== last.height) return height < last.height ? -1 : 1
  if (round !== last.round) return round < last.round ? -1 : 1
  return STEP_ORDER[step] - STEP_ORDER[last.step]
}

function refuse(code: SafetyRefusal['code'], reason: string): SafetyRefusal {
  return { ok: false, code, reason }
}
