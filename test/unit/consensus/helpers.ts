import { addressFromPublicKey, encodeCanonical, keyPairFromSeed, sha256, sign, toHex } from '../../../crypto/index.js'
import {
  createValidatorSet,
  defaultConsensusParams,
  initialConsensusState,
  proposalSignBytes,
  proposerOf,
  step,
  voteSignBytes,
  type ConsensusEffect,
  type ConsensusInput,
  type ConsensusState,
  type SignedProposal,
  type SignedVote,
  type Validator,
  type ValidatorSet,
  type VoteType,
} from '../../../consensus/index.js'

/** Shared fixtures of the consensus unit tests: four validators of power 1 with deterministic keys. */

export const CHAIN_ID = 'tally-test'

export const keys = [0, 1, 2, 3].map((i) => keyPairFromSeed(sha256(encodeCanonical(['consensus-unit', i]))))

export const validators: Validator[] = keys.map((k) => ({ address: addressFromPublicKey(k.publicKey), publicKey: k.publicKey, power: 1 }))

function mustSet(list: Validator[]): ValidatorSet {
  const r = createValidatorSet(list)
  if (!r.ok) throw new Error(r.error.reason)
  return r.value
}

export const validatorSet = mustSet(validators)

/** Index (into `validators`/`keys`) of the proposer of (height, round). */
export function proposerIndexOf(height: number, round: number): number {
  const p = proposerOf(validatorSet, height, round)
  return validators.findIndex((v) => toHex(v.address) === toHex(p.address))
}

/** A value id for a label. */
export function value(label: string): Uint8Array {
  return sha256(encodeCanonical(['value', label]))
}

const labels = new Map<string, string>()
for (const l of ['v0', 'v1', 'v2', 'bad']) labels.set(toHex(value(l)), l)

/** The label of a value id (or nil). */
export function label(id: Uint8Array | null): string {
  return id === null ? 'nil' : (labels.get(toHex(id)) ?? toHex(id).slice(0, 8))
}

/** A vote signed by validator `i`. */
export function vote(i: number, type: VoteType, height: number, round: number, valueId: Uint8Array | null): SignedVote {
  const body = { type, height, round, valueId, validator: validators[i]!.address }
  return { ...body, signature: sign(keys[i]!.secretKey, voteSignBytes(CHAIN_ID, body)) }
}

/** A proposal signed by validator `i`. */
export function proposal(i: number, height: number, round: number, valueId: Uint8Array, polRound = -1): SignedProposal {
  const body = { height, round, valueId, polRound, proposer: validators[i]!.address }
  return { ...body, signature: sign(keys[i]!.secretKey, proposalSignBytes(CHAIN_ID, body)) }
}

/** Inputs, briefly. */
export const input = {
  start: (height = 1): ConsensusInput => ({ type: 'startHeight', height, validatorSet }),
  vote: (v: SignedVote): ConsensusInput => ({ type: 'vote', vote: v }),
  proposal: (p: SignedProposal): ConsensusInput => ({ type: 'proposal', proposal: p }),
  timeout: (kind: 'propose' | 'prevote' | 'precommit', round: number, height = 1): ConsensusInput => ({
    type: 'timeoutElapsed',
    timeout: { height, round, kind },
  }),
  valid: (valueId: Uint8Array, valid = true, height = 1, round = 0): ConsensusInput => ({ type: 'valueValidated', height, round, valueId, valid }),
  ready: (valueId: Uint8Array, height = 1, round = 0): ConsensusInput => ({ type: 'valueReady', height, round, valueId }),
}

/** A fresh core for validator `self` (or an observer with null). */
export function fresh(self: number | null): ConsensusState {
  return initialConsensusState({ chainId: CHAIN_ID, params: defaultConsensusParams, address: self === null ? null : validators[self]!.address })
}

/** Feeds inputs in order; returns the final state and the effects of the last input. */
export function drive(
  state: ConsensusState,
  inputs: readonly ConsensusInput[],
): { state: ConsensusState; effects: readonly ConsensusEffect[]; all: ConsensusEffect[] } {
  let effects: readonly ConsensusEffect[] = []
  const all: ConsensusEffect[] = []
  for (const i of inputs) {
    const r = step(state, i)
    state = r.state
    effects = r.effects
    all.push(...r.effects)
  }
  return { state, effects, all }
}

/** A compact, comparable description of an effect. */
export function summarize(e: ConsensusEffect): string {
  switch (e.type) {
    case 'signVote':
      return `signVote ${e.vote.type} h${e.vote.height} r${e.vote.round} ${label(e.vote.valueId)}`
    case 'signProposal':
      return `signProposal h${e.proposal.height} r${e.proposal.round} ${label(e.proposal.valueId)} vr${e.proposal.polRound}`
    case 'broadcastVote':
      return `broadcastVote ${e.vote.type} r${e.vote.round} ${label(e.vote.valueId)}`
    case 'broadcastProposal':
      return `broadcastProposal r${e.proposal.round} ${label(e.proposal.valueId)}`
    case 'scheduleTimeout':
      return `scheduleTimeout ${e.timeout.kind} h${e.timeout.height} r${e.timeout.round} ${e.durationMs}ms`
    case 'getValue':
      return `getValue h${e.height} r${e.round}`
    case 'validateValue':
      return `validateValue h${e.height} r${e.round} ${label(e.valueId)}`
    case 'decide':
      return `decide h${e.height} r${e.round} ${label(e.valueId)} signers=${e.certificate.signatures.length}`
    case 'evidence':
      return `evidence ${e.evidence.kind}`
  }
}
