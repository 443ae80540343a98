import { bytesEqual, toHex } from '../crypto/index.js'
import { checkProposalFields, checkVoteFields } from './codec.js'
import { buildCommitCertificate, certificateVotes, verifyCommit, type CommitCertificate } from './commitCertificate.js'
import type { BufferedMessage, ConsensusState, RoundState } from './consensusState.js'
import type { ConsensusEffect, Evidence } from './effects.js'
import type { ConsensusInput } from './inputs.js'
import { verifyProposalSignature, verifyVoteSignature } from './signBytes.js'
import { VALUE_ID_LENGTH, timeoutDuration, type SignedProposal, type SignedVote, type TimeoutKind } from './types.js'
import { findValidator, isOneThird, isTwoThirds, proposerOf } from './validatorSet.js'
import { addVote, emptyVoteSet, hasVote, powerFor, sameVote, valueKey, votesFor, wouldCount, type VoteSet } from './voteSet.js'

/**
 * The Tendermint consensus core as a pure step function (Buchman, Kwon, Milosevic, "The latest gossip on BFT
 * consensus", 2018, Algorithm 1). `step(state, input)` returns the next state and the effects the host must
 * carry out; no clock, network, disk, key or randomness is involved, so replaying the same inputs from the
 * same state gives the same states and effects. Comments `Lnn` name the line of Algorithm 1 a rule implements.
 */

/** What one step returns. */
export interface StepResult {
  readonly state: ConsensusState
  readonly effects: readonly ConsensusEffect[]
}

/** Most distinct proposals kept per round (an honest proposer sends one; the rest are evidence). */
export const MAX_PROPOSALS_PER_ROUND = 4
/** Most buffered messages per (sender, height, round, kind) for future heights. */
const MAX_BUFFERED_PER_SLOT = 2

/**
 * A working copy of the state. Containers (records, arrays, vote sets) are copied; the messages, byte arrays,
 * validator set and parameters inside are immutable values and are shared, which keeps a step cheap.
 */
function cloneState(state: ConsensusState): ConsensusState {
  const rounds: Record<number, RoundState> = {}
  for (const [k, rs] of Object.entries(state.rounds)) {
    rounds[Number(k)] = {
      proposals: [...rs.proposals],
      prevotes: cloneVoteSet(rs.prevotes),
      precommits: cloneVoteSet(rs.precommits),
      senders: { ...rs.senders },
      senderPower: rs.senderPower,
    }
  }
  return { ...state, rounds, validity: { ...state.validity }, future: [...state.future] }
}

function cloneVoteSet(set: VoteSet): VoteSet {
  const votes: Record<string, SignedVote[]> = {}
  for (const [k, list] of Object.entries(set.votes)) votes[k] = [...list]
  return { type: set.type, votes, powerByValue: { ...set.powerByValue }, totalPower: set.totalPower, equivocators: { ...set.equivocators } }
}

/**
 * Applies one input. The given state is left untouched. Byzantine or stale input is dropped without effects
 * (or turned into evidence); a host that breaks the protocol of driving the core (a `startHeight` that does not
 * go up) gets an Error, since continuing could sign something wrong.
 */
export function step(state: ConsensusState, input: ConsensusInput): StepResult {
  const s = cloneState(state)
  const fx: ConsensusEffect[] = []
  switch (input.type) {
    case 'startHeight':
      onStartHeight(s, input.height, input.validatorSet, fx)
      break
    case 'proposal':
      onProposal(s, input.proposal, fx)
      break
    case 'vote':
      onVote(s, input.vote, fx)
      break
    case 'timeoutElapsed':
      onTimeout(s, input.timeout.height, input.timeout.round, input.timeout.kind, fx)
      break
    case 'valueReady':
      onValueReady(s, input.height, input.round, input.valueId, fx)
      break
    case 'commitCertificate':
      onCommitCertificate(s, input.certificate, fx)
      break
    case 'valueValidated':
      onValueValidated(s, input.height, input.valueId, input.valid)
      break
    default: {
      const never: never = input
      throw new Error(`step: unknown input ${JSON.stringify(never)}`)
    }
  }
  applyRules(s, fx)
  return { state: s, effects: fx }
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

function onStartHeight(s: ConsensusState, height: number, validatorSet: ConsensusState['validatorSet'], fx: ConsensusEffect[]): void {
  if (!Number.isSafeInteger(height) || height < 1) throw new Error(`startHeight: bad height ${height}`)
  if (s.step !== 'idle' && height <= s.height) throw new Error(`startHeight: height ${height} does not follow ${s.height}`)
  if (validatorSet === null || validatorSet === undefined) throw new Error('startHeight: no validator set')
  // L11 (Initialization) and L54 (after a decision): reset the per-height variables.
  s.height = height
  s.validatorSet = validatorSet
  s.lockedValue = null
  s.lockedRound = -1
  s.validValue = null
  s.validRound = -1
  s.rounds = {}
  s.validity = {}
  s.decision = null
  const replay = s.future.filter((m) => messageHeight(m) === height)
  s.future = s.future.filter((m) => messageHeight(m) > height)
  startRound(s, 0, fx)
  // Messages that arrived early go through the same checks, against the new validator set.
  for (const m of replay) {
    if (m.kind === 'vote') onVote(s, m.vote, fx)
    else onProposal(s, m.proposal, fx)
  }
}

function messageHeight(m: BufferedMessage): number {
  return m.kind === 'vote' ? m.vote.height : m.proposal.height
}

function roundState(s: ConsensusState, round: number): RoundState {
  let rs = s.rounds[round]
  if (rs === undefined) {
    rs = { proposals: [], prevotes: emptyVoteSet('prevote'), precommits: emptyVoteSet('precommit'), senders: {}, senderPower: 0n }
    s.rounds[round] = rs
  }
  return rs
}

function markSender(rs: RoundState, address: Uint8Array, power: number): void {
  const key = toHex(address)
  if (rs.senders[key] === undefined) {
    rs.senders[key] = true
    rs.senderPower += BigInt(power)
  }
}

function isSelf(s: ConsensusState, address: Uint8Array): boolean {
  return s.address !== null && bytesEqual(s.address, address)
}

/** Where a message of (height, round) goes: dropped, buffered for a later height, or handled now. */
function admit(s: ConsensusState, height: number, round: number): 'drop' | 'future' | 'now' {
  if (s.step === 'idle' || s.validatorSet === null) return 'drop'
  if (height < s.height) return 'drop' // stale
  if (height > s.height) {
    if (height - s.height > s.params.maxHeightsAhead || round > s.params.maxRoundsAhead) return 'drop'
    return 'future'
  }
  if (s.step === 'decided') return 'drop'
  if (round > s.round + s.params.maxRoundsAhead) return 'drop'
  return 'now'
}

function buffer(s: ConsensusState, m: BufferedMessage): void {
  if (buffered(s, m) === 'room') s.future.push(m)
}

/**
 * Whether a later-height message is buffered already, would be buffered, or finds its slot (one sender's votes of one
 * type and round, or one round's proposals) full.
 */
function buffered(s: ConsensusState, m: BufferedMessage): 'held' | 'room' | 'full' {
  const sender = m.kind === 'vote' ? m.vote.validator : m.proposal.proposer
  const slot = (x: BufferedMessage) =>
    x.kind === m.kind &&
    (x.kind === 'vote' && m.kind === 'vote'
      ? x.vote.type === m.vote.type && x.vote.height === m.vote.height && x.vote.round === m.vote.round && bytesEqual(x.vote.validator, sender)
      : x.kind === 'proposal' && m.kind === 'proposal' && x.proposal.height === m.proposal.height && x.proposal.round === m.proposal.round)
  let n = 0
  for (const x of s.future) {
    if (!slot(x)) continue
    if (x.kind === 'vote' && m.kind === 'vote' && sameVote(x.vote, m.vote)) return 'held'
    if (x.kind === 'proposal' && m.kind === 'proposal' && sameProposal(x.proposal, m.proposal)) return 'held'
    n++
  }
  return n < MAX_BUFFERED_PER_SLOT ? 'room' : 'full'
}

const BUFFER_STATUS = { held: 'known', room: 'new', full: 'drop' } as const satisfies Record<string, MessageStatus>

function sameProposal(a: SignedProposal, b: SignedProposal): boolean {
  return a.height === b.height && a.round === b.round && a.polRound === b.polRound && bytesEqual(a.valueId, b.valueId) && bytesEqual(a.proposer, b.proposer)
}

/** What the core would do with a signed message, short of checking its signature. */
export type MessageStatus = 'new' | 'known' | 'drop'

/**
 * Whether a signed vote or proposal is new to the core, already held, or would be dropped (malformed, from no
 * validator or not the round's proposer, stale, or outside the window of rounds and heights the core keeps). Pure and
 * cheap: a host asks before it logs a message or spends a signature check on it, so repeated or useless messages cost
 * neither disk nor CPU. It does not verify signatures: a `new` message may still be dropped by `step` for a bad one.
 */
export function messageStatus(state: ConsensusState, m: BufferedMessage): MessageStatus {
  if (m.kind === 'vote') {
    const vote = m.vote
    if (checkVoteFields(vote) !== undefined) return 'drop'
    const where = admit(state, vote.height, vote.round)
    if (where === 'drop' || findValidator(state.validatorSet!, vote.validator) === undefined) return 'drop'
    if (where === 'future') return BUFFER_STATUS[buffered(state, m)]
    const rs = state.rounds[vote.round]
    if (rs === undefined) return 'new'
    const votes = vote.type === 'prevote' ? rs.prevotes : rs.precommits
    if (hasVote(votes, vote)) return 'known'
    return wouldCount(votes, vote) ? 'new' : 'drop'
  }
  const proposal = m.proposal
  if (checkProposalFields(proposal) !== undefined) return 'drop'
  const where = admit(state, proposal.height, proposal.round)
  if (where === 'drop') return 'drop'
  const set = state.validatorSet!
  const proposer = where === 'now' ? proposerOf(set, proposal.height, proposal.round) : findValidator(set, proposal.proposer)
  if (proposer === undefined || !bytesEqual(proposer.address, proposal.proposer)) return 'drop'
  if (where === 'future') return BUFFER_STATUS[buffered(state, m)]
  const rs = state.rounds[proposal.round]
  if (rs === undefined) return 'new'
  if (rs.proposals.some((p) => sameProposal(p, proposal))) return 'known'
  return rs.proposals.length >= MAX_PROPOSALS_PER_ROUND ? 'drop' : 'new'
}

/**
 * The equivocations a certificate of this node's height proves against the precommits this core holds: a signer
 * whose precommit in the certificate's round is held here for another value (or nil) signed both. One
 * `conflictingVotes` evidence each, the held precommit first; a signer already reported in that round's precommits is
 * not reported again. The certificate's signature is checked for each pair returned, so a pair is always valid
 * evidence; when nothing conflicts no signature is checked. Pure. A host that commits a block by its certificate
 * (block sync) rather than by the precommits it received asks this first: a validator that sent this node one
 * precommit and the others another is then convicted here, where its other precommit would otherwise never arrive.
 */
export function certificateEquivocations(state: ConsensusState, certificate: CommitCertificate): Evidence[] {
  const set = state.validatorSet
  if (set === null || certificate.height !== state.height) return []
  const precommits = state.rounds[certificate.round]?.precommits
  if (precommits === undefined) return []
  const out: Evidence[] = []
  for (const vote of certificateVotes(certificate)) {
    const key = toHex(vote.validator)
    const held = precommits.votes[key]
    if (held === undefined || precommits.equivocators[key] !== undefined || held.some((v) => sameVote(v, vote))) continue
    const validator = findValidator(set, vote.validator)
    if (validator === undefined || !verifyVoteSignature(state.chainId, validator, vote, vote.signature)) continue
    out.push({ kind: 'conflictingVotes', first: held[0]!, second: vote })
  }
  return out
}

function onVote(s: ConsensusState, vote: SignedVote, fx: ConsensusEffect[]): void {
  if (checkVoteFields(vote) !== undefined) return
  const where = admit(s, vote.height, vote.round)
  if (where === 'drop') return
  const set = s.validatorSet!
  const validator = findValidator(set, vote.validator)
  if (validator === undefined) return // not a validator: dropped
  if (where === 'future') {
    if (s.future.some((m) => m.kind === 'vote' && sameVote(m.vote, vote))) return // already buffered
    if (verifyVoteSignature(s.chainId, validator, vote, vote.signature)) buffer(s, { kind: 'vote', vote })
    return
  }
  const rs = roundState(s, vote.round)
  const votes = vote.type === 'prevote' ? rs.prevotes : rs.precommits
  if (hasVote(votes, vote)) return // duplicate: no need to verify again
  if (!verifyVoteSignature(s.chainId, validator, vote, vote.signature)) return // bad signature: dropped
  const r = addVote(votes, vote, validator.power)
  if (r.kind === 'conflict') {
    if (r.report) fx.push({ type: 'evidence', evidence: { kind: 'conflictingVotes', first: r.first, second: vote } })
    return
  }
  if (r.kind !== 'added') return
  markSender(rs, vote.validator, validator.power)
  if (isSelf(s, vote.validator)) fx.push({ type: 'broadcastVote', vote })
}

function onProposal(s: ConsensusState, proposal: SignedProposal, fx: ConsensusEffect[]): void {
  if (checkProposalFields(proposal) !== undefined) return
  const where = admit(s, proposal.height, proposal.round)
  if (where === 'drop') return
  const set = s.validatorSet!
  // Only the round's proposer may propose (proposer(h_p, round) in L22, L28, L36, L49).
  const proposer = where === 'now' ? proposerOf(set, proposal.height, proposal.round) : findValidator(set, proposal.proposer)
  if (proposer === undefined || !bytesEqual(proposer.address, proposal.proposer)) return
  if (where === 'future') {
    if (s.future.some((m) => m.kind === 'proposal' && sameProposal(m.proposal, proposal))) return // already buffered
    if (verifyProposalSignature(s.chainId, proposer, proposal, proposal.signature)) buffer(s, { kind: 'proposal', proposal })
    return
  }
  const rs = roundState(s, proposal.round)
  if (rs.proposals.some((p) => sameProposal(p, proposal))) return // duplicate
  if (!verifyProposalSignature(s.chainId, proposer, proposal, proposal.signature)) return
  if (rs.proposals.length > 0) {
    // The proposer signed two different proposals for one round: evidence (the first is kept and acted on first).
    fx.push({ type: 'evidence', evidence: { kind: 'conflictingProposals', first: rs.proposals[0]!, second: proposal } })
    if (rs.proposals.length >= MAX_PROPOSALS_PER_ROUND) return
  }
  rs.proposals.push(proposal)
  markSender(rs, proposal.proposer, proposer.power)
  if (proposal.round === s.round) requestValidation(s, proposal, fx)
  if (isSelf(s, proposal.proposer)) fx.push({ type: 'broadcastProposal', proposal })
}

/**
 * Asks the host to validate a proposal's value, once per value. Only the current round's proposals are validated (the
 * rules that need valid(v), L22, L28 and L36, read the current round's; L49 decides by the value's id): a proposal of a
 * later round is validated when this node enters that round, so that a proposer cannot make it judge a block for each
 * round of the window ahead before the one the height waits for.
 */
function requestValidation(s: ConsensusState, proposal: SignedProposal, fx: ConsensusEffect[]): void {
  const vk = toHex(proposal.valueId)
  if (s.validity[vk] !== undefined) return
  s.validity[vk] = 'pending'
  fx.push({ type: 'validateValue', height: proposal.height, round: proposal.round, valueId: proposal.valueId, proposer: proposal.proposer })
}

/**
 * L49 by certificate: a verified certificate is 2f+1 precommits for one value in one round of this height,
 * exactly what L49 waits for, received at once (block sync, or a peer that already decided).
 */
function onCommitCertificate(s: ConsensusState, certificate: CommitCertificate, fx: ConsensusEffect[]): void {
  if (s.step === 'idle' || s.step === 'decided' || s.validatorSet === null) return
  if (typeof certificate !== 'object' || certificate === null || certificate.height !== s.height) return
  if (!verifyCommit(s.validatorSet, s.chainId, s.height, certificate.valueId, certificate).ok) return
  decide(s, certificate, fx)
}

/** L49-L54: decision_p[h_p] = v; the host commits and starts the next height. */
function decide(s: ConsensusState, certificate: CommitCertificate, fx: ConsensusEffect[]): void {
  s.decision = { round: certificate.round, valueId: certificate.valueId, certificate }
  s.step = 'decided'
  fx.push({ type: 'decide', height: s.height, round: certificate.round, valueId: certificate.valueId, certificate })
}

function onTimeout(s: ConsensusState, height: number, round: number, kind: TimeoutKind, fx: ConsensusEffect[]): void {
  if (height !== s.height || round !== s.round) return
  switch (kind) {
    case 'propose':
      // L57: OnTimeoutPropose(h_p, round_p): if step_p = propose, prevote nil and step_p ← prevote.
      if (s.step === 'propose') castVote(s, 'prevote', null, fx)
      return
    case 'prevote':
      // L61: OnTimeoutPrevote(h_p, round_p): if step_p = prevote, precommit nil and step_p ← precommit.
      if (s.step === 'prevote') castVote(s, 'precommit', null, fx)
      return
    case 'precommit':
      // L65: OnTimeoutPrecommit(h_p, round_p): StartRound(round_p + 1).
      if (s.step === 'propose' || s.step === 'prevote' || s.step === 'precommit') startRound(s, round + 1, fx)
      return
  }
}

function onValueReady(s: ConsensusState, height: number, round: number, valueId: Uint8Array, fx: ConsensusEffect[]): void {
  if (!(valueId instanceof Uint8Array) || valueId.byteLength !== VALUE_ID_LENGTH) return
  // L18-L19: the proposer's getValue() has returned; it proposes the fresh value with valid round -1.
  if (height !== s.height || round !== s.round || s.step !== 'propose' || !s.awaitingValue || s.address === null) return
  s.awaitingValue = false
  s.validity[toHex(valueId)] = 'valid' // the host built it
  fx.push({ type: 'signProposal', proposal: { height, round, valueId, polRound: -1, proposer: s.address } })
}

function onValueValidated(s: ConsensusState, height: number, valueId: Uint8Array, valid: boolean): void {
  if (height !== s.height || !(valueId instanceof Uint8Array)) return
  const vk = toHex(valueId)
  if (s.validity[vk] === 'pending') s.validity[vk] = valid === true ? 'valid' : 'invalid'
}

// ---------------------------------------------------------------------------------------------------------------
// Actions

/** L11-L21 StartRound(round). */
function startRound(s: ConsensusState, round: number, fx: ConsensusEffect[]): void {
  s.round = round
  s.step = 'propose' // L12-L13
  s.awaitingValue = false
  s.prevoteTimeoutScheduled = false
  s.precommitTimeoutScheduled = false
  s.polkaSeen = false
  // the proposals of this round that came while this node was in an earlier one
  for (const p of roundState(s, round).proposals) requestValidation(s, p, fx)
  const set = s.validatorSet!
  if (s.address !== null && bytesEqual(proposerOf(set, s.height, round).address, s.address)) {
    // L14-L19: the proposer re-proposes its valid value with its valid round, or asks for a fresh value.
    if (s.validValue !== null) {
      fx.push({ type: 'signProposal', proposal: { height: s.height, round, valueId: s.validValue, polRound: s.validRound, proposer: s.address } })
    } else {
      s.awaitingValue = true
      fx.push({ type: 'getValue', height: s.height, round })
    }
  }
  // L21: schedule OnTimeoutPropose. Armed for the proposer too, so a host that never delivers the value
  // (or a guard that refuses) cannot stall the round; it only ever leads to a nil prevote.
  scheduleTimeout(s, 'propose', fx)
}

function scheduleTimeout(s: ConsensusState, kind: TimeoutKind, fx: ConsensusEffect[]): void {
  fx.push({
    type: 'scheduleTimeout',
    timeout: { height: s.height, round: s.round, kind },
    durationMs: timeoutDuration(s.params, kind, s.round),
  })
}

/** Casts a vote in the current round (asking the host to sign it) and moves to the matching step. */
function castVote(s: ConsensusState, type: 'prevote' | 'precommit', valueId: Uint8Array | null, fx: ConsensusEffect[]): void {
  s.step = type
  if (s.address !== null && findValidator(s.validatorSet!, s.address) !== undefined) {
    fx.push({ type: 'signVote', vote: { type, height: s.height, round: s.round, valueId, validator: s.address } })
  }
}

function isValid(s: ConsensusState, valueId: Uint8Array): 'pending' | 'valid' | 'invalid' | undefined {
  return s.validity[toHex(valueId)]
}

function equalValue(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && bytesEqual(a, b)
}

/** Round numbers of the current height in ascending order. */
function roundNumbers(s: ConsensusState): number[] {
  return Object.keys(s.rounds)
    .map(Number)
    .sort((a, b) => a - b)
}

/** The non-nil value with more than 2/3 of the power in this vote set, if any. */
function twoThirdsValue(s: ConsensusState, powerByValue: Record<string, bigint>): string | undefined {
  const keys = Object.keys(powerByValue).sort()
  for (const k of keys) if (k !== 'nil' && isTwoThirds(s.validatorSet!, powerByValue[k]!)) return k
  return undefined
}

/** Applies the upon-rules until none fires (each rule is evaluated on the state the previous ones left). */
function applyRules(s: ConsensusState, fx: ConsensusEffect[]): void {
  for (let i = 0; i < 100_000; i++) if (!fireOne(s, fx)) return
  throw new Error('consensus rules did not settle')
}

/** Fires the first applicable rule; false when none applies. */
function fireOne(s: ConsensusState, fx: ConsensusEffect[]): boolean {
  if (s.step === 'idle' || s.step === 'decided') return false
  const set = s.validatorSet!

  // L49: upon PROPOSAL(h_p, r, v, *) and 2f+1 PRECOMMIT(h_p, r, id(v)) while decision_p[h_p] = nil: decide v.
  // The value is an opaque id here: 2f+1 precommits for id(v) mean at least f+1 correct validators saw a valid
  // proposal of v, so the decision does not wait for this node's own copy of the proposal (the host fetches
  // the block by its hash if it lacks it), as in CometBFT.
  for (const r of roundNumbers(s)) {
    const rs = s.rounds[r]!
    const vk = twoThirdsValue(s, rs.precommits.powerByValue)
    if (vk === undefined) continue
    const valueId = Object.values(rs.precommits.votes)
      .flat()
      .find((v) => valueKey(v.valueId) === vk)!.valueId!
    decide(s, buildCommitCertificate(s.height, r, valueId, votesFor(rs.precommits, valueId)), fx)
    return true
  }

  // L55: upon f+1 messages ⟨*, h_p, round, *, *⟩ with round > round_p: StartRound(round) (the highest such).
  const rounds = roundNumbers(s)
  for (let i = rounds.length - 1; i >= 0 && rounds[i]! > s.round; i--) {
    if (isOneThird(set, s.rounds[rounds[i]!]!.senderPower)) {
      startRound(s, rounds[i]!, fx)
      return true
    }
  }

  const rs = s.rounds[s.round]!
  if (s.step === 'propose') {
    for (const p of rs.proposals) {
      const validity = isValid(s, p.valueId)
      if (p.polRound === -1) {
        // L22: upon PROPOSAL(h_p, round_p, v, -1) from proposer while step_p = propose:
        //   prevote id(v) if valid(v) ∧ (lockedRound_p = -1 ∨ lockedValue_p = v), else nil.
        if (validity === 'pending') continue // validation still running; the propose timeout keeps running
        const ok = validity === 'valid' && (s.lockedRound === -1 || equalValue(s.lockedValue, p.valueId))
        castVote(s, 'prevote', ok ? p.valueId : null, fx)
        return true
      }
      // L28: upon PROPOSAL(h_p, round_p, v, vr) and 2f+1 PREVOTE(h_p, vr, id(v)) while step_p = propose ∧ 0 ≤ vr < round_p:
      //   prevote id(v) if valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v), else nil.
      const polka = s.rounds[p.polRound]
      if (p.polRound < s.round && polka !== undefined && isTwoThirds(set, powerFor(polka.prevotes, p.valueId))) {
        if (validity === 'pending') continue
        const ok = validity === 'valid' && (s.lockedRound <= p.polRound || equalValue(s.lockedValue, p.valueId))
        castVote(s, 'prevote', ok ? p.valueId : null, fx)
        return true
      }
    }
  }

  // L34: upon 2f+1 PREVOTE(h_p, round_p, *) while step_p = prevote for the first time: schedule OnTimeoutPrevote.
  if (s.step === 'prevote' && !s.prevoteTimeoutScheduled && isTwoThirds(set, rs.prevotes.totalPower)) {
    s.prevoteTimeoutScheduled = true
    scheduleTimeout(s, 'prevote', fx)
    return true
  }

  // L36: upon PROPOSAL(h_p, round_p, v, *) and 2f+1 PREVOTE(h_p, round_p, id(v)) while valid(v) ∧ step_p ≥ prevote
  // for the first time: if step_p = prevote, lock v and precommit id(v); in any case validValue_p ← v.
  if ((s.step === 'prevote' || s.step === 'precommit') && !s.polkaSeen) {
    for (const p of rs.proposals) {
      if (isValid(s, p.valueId) !== 'valid' || !isTwoThirds(set, powerFor(rs.prevotes, p.valueId))) continue
      s.polkaSeen = true
      if (s.step === 'prevote') {
        s.lockedValue = p.valueId
        s.lockedRound = s.round
        castVote(s, 'precommit', p.valueId, fx)
      }
      s.validValue = p.valueId
      s.validRound = s.round
      return true
    }
  }

  // L44: upon 2f+1 PREVOTE(h_p, round_p, nil) while step_p = prevote: precommit nil.
  if (s.step === 'prevote' && isTwoThirds(set, powerFor(rs.prevotes, null))) {
    castVote(s, 'precommit', null, fx)
    return true
  }

  // L47: upon 2f+1 PRECOMMIT(h_p, round_p, *) for the first time: schedule OnTimeoutPrecommit.
  if (!s.precommitTimeoutScheduled && isTwoThirds(set, rs.precommits.totalPower)) {
    s.precommitTimeoutScheduled = true
    scheduleTimeout(s, 'precommit', fx)
    return true
  }
  return false
}
