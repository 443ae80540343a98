import {
  addressFromPublicKey, bytesEqual, encodeCanonical, keyPairFromSeed, sha256, sign, toHex,
} from '../../crypto/index.js'
import {
  SafetyGuard, createMemorySafetyStore, heightMessages, createValidatorSet, decodeCommitCertificate,
  decodeConsensusMessage, encodeCommitCertificate, encodeConsensusMessage, initialConsensusState, proposalSignBytes,
  proposerOf, step, verifyCommit, voteSignBytes,
  type CommitCertificate, type ConsensusEffect, type ConsensusInput, type ConsensusMessage, type ConsensusParams,
  type ConsensusState, type Evidence, type Validator, type Proposal, type SignedProposal, type SignedVote, type ValidatorSet, type Vote,
} from '../../consensus/index.js'
import { Rng } from '../helpers/random.js'
import { EventQueue } from './eventQueue.js'

/**
 * A deterministic simulation of N validators running the real consensus core with real Ed25519 signatures,
 * a seeded PRNG, a virtual clock and an adversarial network (delay, loss, duplication, reordering, partitions
 * that heal, partial synchrony after GST). Byzantine validators run the same core behind a misbehaving host.
 * Agreement and validity are checked on every decision; liveness at the end of the run.
 * Same options (seed included), same run: event for event.
 */

/** What a Byzantine validator may do (drawn from for randomized runs; `splitBrain` is for crafted scenarios). */
export type Behaviour =
  | 'crash' // stops at a random moment (or `crashAt`)
  | 'silent' // never sends anything
  | 'equivocateProposal' // as proposer, sends different proposals to different peers
  | 'doubleVote' // signs two different votes per step and splits them among peers
  | 'invalidValue' // proposes invalid values and votes for them
  | 'amnesia' // forgets its lock at every round and signs without a guard
  | 'farFuture' // sends signed messages for far-future heights and rounds
  | 'garbage' // sends random bytes and corrupted copies of its messages
  | 'splitBrain' // colludes: sends each group of `collusionGroups` its own value, as proposer and voter

/** The behaviours randomized runs draw from. */
export const BYZANTINE_REPERTOIRE: readonly Behaviour[] = [
  'crash', 'silent', 'equivocateProposal', 'doubleVote', 'invalidValue', 'amnesia', 'farFuture', 'garbage',
]

/** A partition: during [start, end) messages between different groups are lost. */
export interface Partition {
  readonly start: number
  readonly end: number
  readonly groups: readonly (readonly number[])[]
}

/** The network model. Times in virtual milliseconds. */
export interface NetworkOptions {
  /** Global stabilization time: from then on, messages arrive within `delta` and none are lost. */
  readonly gst: number
  readonly minDelay: number
  /** Largest delay before GST. */
  readonly preGstMaxDelay: number
  /** Bound on the delay after GST. */
  readonly delta: number
  /** Probability that a message sent before GST is lost. */
  readonly loss: number
  /** Probability that a message is delivered twice. */
  readonly duplicate: number
  readonly partitions: readonly Partition[]
}

/** A message on its way, as the `route` hook sees it. */
export interface RouteInfo {
  readonly from: number
  readonly to: number
  readonly time: number
  /** The decoded consensus message, or undefined for garbage and certificates. */
  readonly message: ConsensusMessage | undefined
}

/** What the `observe` hook sees after every step of every node. */
export interface StepObservation {
  readonly node: number
  readonly time: number
  readonly input: ConsensusInput
  readonly effects: readonly ConsensusEffect[]
  readonly state: ConsensusState
}

/** Options of one simulation. */
export interface SimOptions {
  readonly seed: number
  readonly validators: number
  /** Voting powers (default all 1). */
  readonly powers?: readonly number[]
  /** Byzantine validators: index → behaviours. Everyone else is honest. */
  readonly byzantine?: Readonly<Record<number, readonly Behaviour[]>>
  /** Crash times of `crash` validators (default random before GST). */
  readonly crashAt?: Readonly<Record<number, number>>
  /** Heights every honest validator must decide. */
  readonly heights: number
  readonly params?: ConsensusParams
  readonly network?: Partial<NetworkOptions>
  /** Liveness bound: all honest validators decide all heights by GST + heights × this. */
  readonly livenessPerHeightMs?: number
  /** Period of the hosts' gossip repair (re-sending own messages while stuck). */
  readonly gossipIntervalMs?: number
  /** Check liveness at the end (default: when at most f are Byzantine). */
  readonly checkLiveness?: boolean
  /** Scenario hook: 'drop', a delay in ms, or undefined for the network's own choice. */
  readonly route?: (info: RouteInfo) => 'drop' | number | undefined
  /** Scenario hook called after every step. */
  readonly observe?: (o: StepObservation) => void
  /** Scenario hook: a `crash` validator crashes right after the step (and its effects) for which this is true. */
  readonly crashWhen?: (o: StepObservation) => boolean
  /** Groups the `splitBrain` colluders serve different values to. */
  readonly collusionGroups?: readonly (readonly number[])[]
}

/** A broken property. */
export interface Violation {
  readonly kind: 'agreement' | 'validity' | 'liveness'
  readonly height?: number
  readonly detail: string
}

/** The outcome of a run. */
export interface SimResult {
  readonly seed: number
  readonly violations: readonly Violation[]
  /** Per node, height → decided value id hex. */
  readonly decisions: readonly ReadonlyMap<number, string>[]
  /** Evidence reported by honest validators. */
  readonly evidence: readonly Evidence[]
  readonly honest: readonly number[]
  readonly endTime: number
  readonly steps: number
  readonly deliveries: number
}

/** Simulation defaults: short timeouts, so runs are quick in virtual time. */
export const simConsensusParams: ConsensusParams = {
  timeoutProposeMs: 1000,
  timeoutProposeDeltaMs: 250,
  timeoutPrevoteMs: 500,
  timeoutPrevoteDeltaMs: 125,
  timeoutPrecommitMs: 500,
  timeoutPrecommitDeltaMs: 125,
  maxRoundsAhead: 10,
  maxHeightsAhead: 2,
}

const CHAIN_ID = 'tally-sim'

type Envelope = { readonly kind: 'consensus' | 'certificate'; readonly bytes: Uint8Array }

type SimEvent =
  | { readonly kind: 'deliver'; readonly from: number; readonly to: number; readonly envelope: Envelope }
  | { readonly kind: 'input'; readonly node: number; readonly input: ConsensusInput }
  | { readonly kind: 'crash'; readonly node: number }
  | { readonly kind: 'tick'; readonly node: number }
  | { readonly kind: 'resync'; readonly node: number }

interface SimNode {
  readonly index: number
  readonly secretKey: Uint8Array
  readonly address: Uint8Array
  readonly behaviours: ReadonlySet<Behaviour>
  readonly honest: boolean
  readonly guard: SafetyGuard
  state: ConsensusState
  crashed: boolean
  readonly decisions: Map<number, { valueId: Uint8Array; certificate: CommitCertificate }>
  /** The gossip layer's seen cache: message bytes (hex) → height and bytes, for relaying and repair. */
  readonly seen: Map<string, { height: number; bytes: Uint8Array }>
  lastTick: string
  readonly catchupSent: Map<string, number>
}

/** Runs one simulation to completion (all heights decided, or the liveness deadline). */
export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run()
}

class Simulation {
  private readonly rng: Rng
  private readonly net: NetworkOptions
  private readonly params: ConsensusParams
  private readonly queue = new EventQueue<SimEvent>()
  private readonly nodes: SimNode[] = []
  private readonly validatorSet: ValidatorSet
  /** Value id hex → valid, for every value any proposer built. */
  private readonly values = new Map<string, boolean>()
  private readonly violations: Violation[] = []
  private readonly evidence: Evidence[] = []
  private readonly honestDecision = new Map<number, { node: number; hex: string }>()
  private readonly gossipInterval: number
  private readonly checkedCertificates = new Set<string>()
  private now = 0
  private steps = 0
  private deliveries = 0

  constructor(private readonly o: SimOptions) {
    this.rng = new Rng(o.seed)
    this.params = o.params ?? simConsensusParams
    this.net = {
      gst: 0, minDelay: 1, preGstMaxDelay: 1500, delta: 100, loss: 0, duplicate: 0, partitions: [],
      ...o.network,
    }
    this.gossipInterval = o.gossipIntervalMs ?? 1000
    const validators = []
    for (let i = 0; i < o.validators; i++) {
      const keys = keyPairFromSeed(sha256(encodeCanonical(['tally-sim-validator', o.seed, i])))
      const address = addressFromPublicKey(keys.publicKey)
      const behaviours = new Set(o.byzantine?.[i] ?? [])
      this.nodes.push({
        index: i, secretKey: keys.secretKey, address, behaviours, honest: behaviours.size === 0,
        guard: new SafetyGuard({ chainId: CHAIN_ID, secretKey: keys.secretKey }, { store: createMemorySafetyStore() }),
        state: initialConsensusState({ chainId: CHAIN_ID, params: this.params, address }),
        crashed: false, decisions: new Map(), seen: new Map(), lastTick: '', catchupSent: new Map(),
      })
      validators.push({ address, publicKey: keys.publicKey, power: o.powers?.[i] ?? 1 })
    }
    const set = createValidatorSet(validators)
    if (!set.ok) throw new Error(set.error.reason)
    this.validatorSet = set.value
  }

  run(): SimResult {
    const { o, net } = this
    const deadline = net.gst + o.heights * (o.livenessPerHeightMs ?? 30_000)
    for (const n of this.nodes) {
      if (n.behaviours.has('silent')) n.crashed = true
      if (n.behaviours.has('crash')) {
        const at = o.crashAt?.[n.index] ?? (o.crashWhen !== undefined ? undefined : this.rng.int(Math.max(1, net.gst + 3000)))
        if (at !== undefined) this.queue.push(at, { kind: 'crash', node: n.index })
      }
      this.queue.push(0, { kind: 'input', node: n.index, input: { type: 'startHeight', height: 1, validatorSet: this.validatorSet } })
      this.queue.push(this.gossipInterval + n.index, { kind: 'tick', node: n.index })
      // When the network stabilizes or a partition heals, gossip catches peers up on what they missed.
      for (const t of new Set([net.gst, ...net.partitions.map((p) => p.end)])) this.queue.push(t, { kind: 'resync', node: n.index })
    }
    while (!this.done()) {
      const next = this.queue.pop()
      if (next === undefined || next.time > deadline) break
      this.now = next.time
      this.handle(next.event)
    }
    const byzantine = this.nodes.filter((n) => !n.honest).length
    const f = Math.floor((o.validators - 1) / 3)
    if ((o.checkLiveness ?? byzantine <= f) && !this.done()) {
      for (const n of this.nodes) {
        if (!n.honest) continue
        for (let h = 1; h <= o.heights; h++) {
          if (!n.decisions.has(h)) {
            this.violations.push({ kind: 'liveness', height: h, detail: `validator ${n.index} did not decide height ${h} by ${deadline} ms (GST ${net.gst})` })
            break
          }
        }
      }
    }
    return {
      seed: o.seed,
      violations: this.violations,
      decisions: this.nodes.map((n) => new Map([...n.decisions].map(([h, d]) => [h, toHex(d.valueId)]))),
      evidence: this.evidence,
      honest: this.nodes.filter((n) => n.honest).map((n) => n.index),
      endTime: this.now,
      steps: this.steps,
      deliveries: this.deliveries,
    }
  }

  private done(): boolean {
    return this.nodes.every((n) => !n.honest || n.decisions.size >= this.o.heights)
  }

  private handle(e: SimEvent): void {
    const node = this.nodes[e.kind === 'deliver' ? e.to : e.node]!
    if (node.crashed) return
    switch (e.kind) {
      case 'crash':
        node.crashed = true
        return
      case 'input':
        this.feed(node, e.input)
        return
      case 'tick':
        this.tick(node)
        return
      case 'resync':
        if (node.honest) this.resend(node)
        return
      case 'deliver':
        this.deliver(node, e.from, e.envelope)
        return
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Host

  private feed(node: SimNode, first: ConsensusInput): void {
    const pending: ConsensusInput[] = [first]
    while (pending.length > 0) {
      const input = pending.shift()!
      const r = step(node.state, input)
      node.state = r.state
      this.steps++
      if (node.behaviours.has('amnesia') && node.state.step === 'propose') {
        node.state = { ...node.state, lockedValue: null, lockedRound: -1, validValue: null, validRound: -1 }
      }
      const observation = { node: node.index, time: this.now, input, effects: r.effects, state: node.state }
      this.o.observe?.(observation)
      for (const effect of r.effects) this.interpret(node, effect, pending)
      if (node.behaviours.has('crash') && this.o.crashWhen?.(observation) === true) node.crashed = true
      if (node.crashed) return
    }
  }

  private interpret(node: SimNode, effect: ConsensusEffect, pending: ConsensusInput[]): void {
    switch (effect.type) {
      case 'signVote': {
        const signed = this.signVote(node, effect.vote)
        if (signed !== undefined) pending.push({ type: 'vote', vote: signed })
        return
      }
      case 'signProposal': {
        const signed = this.signProposal(node, effect.proposal)
        if (signed !== undefined) pending.push({ type: 'proposal', proposal: signed })
        return
      }
      case 'broadcastVote':
        this.broadcastVote(node, effect.vote)
        return
      case 'broadcastProposal':
        this.broadcastProposal(node, effect.proposal)
        return
      case 'scheduleTimeout':
        this.queue.push(this.now + effect.durationMs, { kind: 'input', node: node.index, input: { type: 'timeoutElapsed', timeout: effect.timeout } })
        return
      case 'getValue': {
        const invalid = node.behaviours.has('invalidValue')
        const valueId = this.makeValue(`${node.index}`, effect.height, effect.round, !invalid)
        this.queue.push(this.now + this.rng.int(20), { kind: 'input', node: node.index, input: { type: 'valueReady', height: effect.height, round: effect.round, valueId } })
        return
      }
      case 'validateValue': {
        const valid = this.values.get(toHex(effect.valueId)) === true
        const input: ConsensusInput = { type: 'valueValidated', height: effect.height, round: effect.round, valueId: effect.valueId, valid }
        this.queue.push(this.now + this.rng.int(50), { kind: 'input', node: node.index, input })
        return
      }
      case 'decide':
        this.onDecide(node, effect.height, effect.valueId, effect.certificate)
        this.queue.push(this.now + 1, { kind: 'input', node: node.index, input: { type: 'startHeight', height: effect.height + 1, validatorSet: this.validatorSet } })
        return
      case 'evidence':
        if (node.honest) this.evidence.push(effect.evidence)
        return
    }
  }

  private makeValue(tag: string, height: number, round: number, valid: boolean): Uint8Array {
    const valueId = sha256(encodeCanonical(['tally-sim-value', this.o.seed, tag, height, round, valid]))
    this.values.set(toHex(valueId), valid)
    return valueId
  }

  private onDecide(node: SimNode, height: number, valueId: Uint8Array, certificate: CommitCertificate): void {
    node.decisions.set(height, { valueId, certificate })
    if (!node.honest) return
    const hex = toHex(valueId)
    // Validity: the decided value was proposed (built by some proposer) and is valid.
    const valid = this.values.get(hex)
    if (valid !== true) {
      this.violations.push({ kind: 'validity', height, detail: `validator ${node.index} decided ${valid === undefined ? 'an unproposed' : 'an invalid'} value ${hex} at height ${height}` })
    }
    // Agreement: no two honest validators decide differently at one height.
    const other = this.honestDecision.get(height)
    if (other === undefined) this.honestDecision.set(height, { node: node.index, hex })
    else if (other.hex !== hex) {
      this.violations.push({ kind: 'agreement', height, detail: `validators ${other.node} and ${node.index} decided ${other.hex} and ${hex} at height ${height}` })
    }
    // Every certificate an honest validator produces must verify (each distinct one is checked once).
    const key = toHex(encodeCommitCertificate(certificate))
    if (!this.checkedCertificates.has(key)) {
      this.checkedCertificates.add(key)
      const check = verifyCommit(this.validatorSet, CHAIN_ID, height, valueId, certificate)
      if (!check.ok) throw new Error(`validator ${node.index} produced a certificate that does not verify: ${check.error.reason}`)
    }
  }

  private tick(node: SimNode): void {
    this.queue.push(this.now + this.gossipInterval, { kind: 'tick', node: node.index })
    if (!node.honest && !node.behaviours.has('crash')) return
    // Gossip repair: a host that made no progress since its last tick re-sends its own messages of the height,
    // as a gossip layer would to peers that lack them.
    const s = node.state
    const key = `${s.height}/${s.round}/${s.step}`
    if (key === node.lastTick) this.resend(node)
    node.lastTick = key
  }

  /** Re-sends every message the core holds for its current height (a gossip layer's repair). */
  private resend(node: SimNode): void {
    for (const m of heightMessages(node.state)) this.sendAll(node, { kind: 'consensus', bytes: encodeConsensusMessage(m) })
  }

  /** Adds to the seen cache; false when already there. Entries of finished heights are forgotten. */
  private see(node: SimNode, height: number, bytes: Uint8Array): boolean {
    const key = toHex(bytes)
    if (node.seen.has(key)) return false
    if (height >= node.state.height) node.seen.set(key, { height, bytes })
    if (node.seen.size > 64 && node.seen.size % 64 === 0) {
      for (const [k, m] of node.seen) if (m.height < node.state.height) node.seen.delete(k)
    }
    return true
  }

  private deliver(node: SimNode, from: number, envelope: Envelope): void {
    this.deliveries++
    if (envelope.kind === 'certificate') {
      const d = decodeCommitCertificate(envelope.bytes)
      if (!d.ok) return
      // Block sync: the core verifies the certificate and decides with it.
      this.feed(node, { type: 'commitCertificate', certificate: d.value })
      return
    }
    const d = decodeConsensusMessage(envelope.bytes)
    if (!d.ok) return // garbage is dropped at the edge
    const m = d.value
    const height = m.kind === 'vote' ? m.vote.height : m.proposal.height
    if (height < node.state.height) this.catchUp(node, from, height)
    if (!this.see(node, height, envelope.bytes)) return // the gossip layer drops what it has seen
    this.feed(node, m.kind === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal })
    // Gossip: an honest host relays a message it sees for the first time (as the paper's gossip assumes).
    if (node.honest && !node.crashed && height >= node.state.height) {
      for (const to of this.peers(node)) if (to !== from) this.send(node.index, to, envelope, m)
    }
  }

  /** A peer still works on a height this node has decided: send it the certificate (block sync in a real node). */
  private catchUp(node: SimNode, peer: number, height: number): void {
    const decision = node.decisions.get(height)
    if (decision === undefined || !node.honest) return
    const key = `${peer}/${height}`
    const last = node.catchupSent.get(key)
    if (last !== undefined && this.now - last < this.gossipInterval) return
    node.catchupSent.set(key, this.now)
    this.send(node.index, peer, { kind: 'certificate', bytes: encodeCommitCertificate(decision.certificate) }, undefined)
  }

  // ------------------------------------------------------------------------------------------------------------
  // Signing and sending, honest and Byzantine

  private unguarded(node: SimNode): boolean {
    return node.behaviours.has('amnesia') || node.behaviours.has('doubleVote') || node.behaviours.has('splitBrain') ||
      node.behaviours.has('invalidValue') || node.behaviours.has('equivocateProposal')
  }

  private rawVote(node: SimNode, vote: Vote): SignedVote {
    return { ...vote, signature: sign(node.secretKey, voteSignBytes(CHAIN_ID, vote)) }
  }

  private rawProposal(node: SimNode, proposal: Proposal): SignedProposal {
    return { ...proposal, signature: sign(node.secretKey, proposalSignBytes(CHAIN_ID, proposal)) }
  }

  private signVote(node: SimNode, vote: Vote): SignedVote | undefined {
    if (node.behaviours.has('invalidValue') && vote.valueId !== null) {
      vote = { ...vote, valueId: this.makeValue(`bad-${node.index}`, vote.height, vote.round, false) }
    }
    if (this.unguarded(node)) return this.rawVote(node, vote)
    const r = node.guard.signVote(vote)
    if (!r.ok && node.honest) throw new Error(`honest validator ${node.index}: the guard refused ${vote.type} at ${vote.height}/${vote.round}: ${r.reason}`)
    return r.ok ? r.value : undefined
  }

  private signProposal(node: SimNode, proposal: Proposal): SignedProposal | undefined {
    if (this.unguarded(node)) return this.rawProposal(node, proposal)
    const r = node.guard.signProposal(proposal)
    if (!r.ok && node.honest) throw new Error(`honest validator ${node.index}: the guard refused a proposal: ${r.reason}`)
    return r.ok ? r.value : undefined
  }

  private peers(node: SimNode): number[] {
    return this.nodes.filter((n) => n.index !== node.index).map((n) => n.index)
  }

  /** Splits the peers into two random non-empty halves (for equivocation). */
  private halves(node: SimNode): [number[], number[]] {
    const a: number[] = []
    const b: number[] = []
    for (const p of this.peers(node)) (this.rng.chance(0.5) ? a : b).push(p)
    if (a.length === 0) a.push(b.pop()!)
    return [a, b]
  }

  private record(node: SimNode, height: number, bytes: Uint8Array): void {
    this.see(node, height, bytes)
  }

  private broadcastVote(node: SimNode, vote: SignedVote): void {
    const b = node.behaviours
    if (b.has('splitBrain')) {
      ;(this.o.collusionGroups ?? []).forEach((group, g) => {
        const v = this.rawVote(node, { ...vote, valueId: this.splitValue(g, vote.height, vote.round) })
        for (const to of group) if (to !== node.index) this.sendMessage(node, to, { kind: 'vote', vote: v })
      })
      return
    }
    if (b.has('doubleVote')) {
      const other = vote.valueId === null ? this.makeValue(`dv-${node.index}`, vote.height, vote.round, true) : null
      const second = this.rawVote(node, { ...vote, valueId: other })
      const [x, y] = this.halves(node)
      for (const to of x) this.sendMessage(node, to, { kind: 'vote', vote })
      for (const to of y) this.sendMessage(node, to, { kind: 'vote', vote: second })
    } else {
      const bytes = encodeConsensusMessage({ kind: 'vote', vote })
      if (node.honest) this.record(node, vote.height, bytes)
      this.sendAll(node, { kind: 'consensus', bytes })
    }
    this.misbehaveAround(node, { kind: 'vote', vote })
  }

  private broadcastProposal(node: SimNode, proposal: SignedProposal): void {
    const b = node.behaviours
    if (b.has('splitBrain')) {
      ;(this.o.collusionGroups ?? []).forEach((group, g) => {
        const p = this.rawProposal(node, { ...proposal, valueId: this.splitValue(g, proposal.height, proposal.round), polRound: -1 })
        for (const to of group) if (to !== node.index) this.sendMessage(node, to, { kind: 'proposal', proposal: p })
      })
      return
    }
    if (b.has('equivocateProposal')) {
      const other = this.makeValue(`eq-${node.index}`, proposal.height, proposal.round, true)
      const second = this.rawProposal(node, { ...proposal, valueId: other, polRound: -1 })
      const [x, y] = this.halves(node)
      for (const to of x) this.sendMessage(node, to, { kind: 'proposal', proposal })
      for (const to of y) this.sendMessage(node, to, { kind: 'proposal', proposal: second })
    } else {
      const bytes = encodeConsensusMessage({ kind: 'proposal', proposal })
      if (node.honest) this.record(node, proposal.height, bytes)
      this.sendAll(node, { kind: 'consensus', bytes })
    }
    this.misbehaveAround(node, { kind: 'proposal', proposal })
  }

  private splitValue(group: number, height: number, round: number): Uint8Array {
    return this.makeValue(`split-${group}`, height, round, true)
  }

  /** Far-future messages and garbage, sent next to a Byzantine validator's real traffic. */
  private misbehaveAround(node: SimNode, m: ConsensusMessage): void {
    const b = node.behaviours
    if (b.has('farFuture')) {
      const h = node.state.height
      const targets: [number, number][] = [[h + 1000, 0], [h, node.state.round + 1000], [h + 1, this.params.maxRoundsAhead + 3], [h + 1, 1]]
      for (const [height, round] of targets) {
        const vote = this.rawVote(node, { type: 'prevote', height, round, valueId: null, validator: node.address })
        for (const to of this.peers(node)) this.sendMessage(node, to, { kind: 'vote', vote })
      }
    }
    if (b.has('garbage')) {
      const real = encodeConsensusMessage(m)
      const flipped = new Uint8Array(real)
      flipped[this.rng.int(flipped.length)]! ^= 1 << this.rng.int(8)
      for (const to of this.peers(node)) {
        this.send(node.index, to, { kind: 'consensus', bytes: this.rng.bytes(this.rng.int(300)) }, undefined)
        this.send(node.index, to, { kind: 'consensus', bytes: flipped }, undefined)
        this.send(node.index, to, { kind: 'certificate', bytes: this.rng.bytes(this.rng.int(100)) }, undefined)
      }
    }
  }

  private sendMessage(node: SimNode, to: number, m: ConsensusMessage): void {
    this.send(node.index, to, { kind: 'consensus', bytes: encodeConsensusMessage(m) }, m)
  }

  private sendAll(node: SimNode, envelope: Envelope): void {
    const decoded = decodeConsensusMessage(envelope.bytes)
    for (const to of this.peers(node)) this.send(node.index, to, envelope, decoded.ok ? decoded.value : undefined)
  }

  // ------------------------------------------------------------------------------------------------------------
  // Network

  private partitioned(from: number, to: number): boolean {
    for (const p of this.net.partitions) {
      if (this.now < p.start || this.now >= p.end) continue
      const gf = p.groups.findIndex((g) => g.includes(from))
      const gt = p.groups.findIndex((g) => g.includes(to))
      if (gf !== gt) return true
    }
    return false
  }

  private delay(): number {
    const { net } = this
    const max = this.now < net.gst ? net.preGstMaxDelay : net.delta
    return net.minDelay + this.rng.int(Math.max(1, max - net.minDelay + 1))
  }

  private send(from: number, to: number, envelope: Envelope, message: ConsensusMessage | undefined): void {
    if (this.nodes[from]!.crashed) return
    const routed = this.o.route?.({ from, to, time: this.now, message })
    if (routed === 'drop') return
    let delay: number
    if (typeof routed === 'number') delay = routed
    else {
      if (this.partitioned(from, to)) return
      if (this.now < this.net.gst && this.rng.chance(this.net.loss)) return
      delay = this.delay()
    }
    this.queue.push(this.now + delay, { kind: 'deliver', from, to, envelope })
    if (routed === undefined && this.rng.chance(this.net.duplicate)) {
      this.queue.push(this.now + this.delay(), { kind: 'deliver', from, to, envelope })
    }
  }
}

/** The validators of a simulation in node order (the keys `runSimulation` derives from the seed). */
export function simValidators(seed: number, validators: number, powers?: readonly number[]): Validator[] {
  const out: Validator[] = []
  for (let i = 0; i < validators; i++) {
    const { publicKey } = keyPairFromSeed(sha256(encodeCanonical(['tally-sim-validator', seed, i])))
    out.push({ address: addressFromPublicKey(publicKey), publicKey, power: powers?.[i] ?? 1 })
  }
  return out
}

/** The node index of the proposer of (height, round) in a simulation, for scenario hooks. */
export function simProposer(seed: number, validators: number, height: number, round: number, powers?: readonly number[]): number {
  const list = simValidators(seed, validators, powers)
  const set = createValidatorSet(list)
  if (!set.ok) throw new Error(set.error.reason)
  const p = proposerOf(set.value, height, round)
  return list.findIndex((v) => bytesEqual(v.address, p.address))
}

/** The node index of a validator address in a simulation. */
export function simNodeOf(seed: number, validators: number, address: Uint8Array): number {
  return simValidators(seed, validators).findIndex((v) => bytesEqual(v.address, address))
}
