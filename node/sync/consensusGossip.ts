import { bytesEqual, toHex } from '../../crypto/bytes.js'
import {
  commitHash,
  evidenceHash,
  findValidator,
  proposerOf,
  verifyProposalSignature,
  verifyVoteSignature,
  type MessageStatus,
  type SignedProposal,
  type SignedVote,
  type Validator,
  type ValidatorSet,
} from '../../consensus/index.js'
import { ZERO_HASH, blockHash, txRoot } from '../../ledger/block.js'
import type { EvidenceAdmission } from '../host/consensusHost.js'
import type { Logger } from '../logger.js'
import type { GossipVerdict } from '../p2p/p2p.js'
import { ThrottledLog } from '../p2p/throttledLog.js'
import { decodeConsensusGossip, peekSignedProposal, type ProposalMessage } from './consensusMessages.js'

/**
 * Admission of consensus gossip (`/tally/consensus/1`): nothing reaches the consensus host, its candidate store or its
 * WAL before it is decoded within bounds and authenticated. In order, cheapest first:
 *  0. a proposal's signed part, read from the message's first bytes, is judged by steps 2 to 4 before the rest (its
 *     transaction hashes, evidence and certificate: up to ~0.5 MB) is decoded;
 *  1. the bytes decode strictly (else the sender is penalized);
 *  2. the height is one the host works on or buffers (else ignored: an honest peer may be behind or ahead);
 *  3. the signer is a validator, and a proposal's signer is the proposer of its height and round, its header hashes
 *     to the proposed value and names the same height (else penalized: one hop, so the sender is the liar);
 *  4. the host does not hold the message already and would use it (else ignored, before any signature check, so
 *     repeats cost nothing);
 *  5. the signature verifies (else penalized); the verified signature is remembered, so the core does not check it
 *     again;
 *  6. the message is queued, waiting while the host's queue is full (back-pressure on the sender's stream).
 * Evidence of equivocation is checked by the host against the set of its height before it is kept; evidence of a height
 * above the host's or older than its evidence window is ignored unchecked.
 * Heights of messages are never taken as proof of a peer's tip: block sync learns tips from signed certificates. A
 * verified message's height tells block sync which peer to poll (once per peer and height); a dropped message's (its
 * set not known yet), which height to fetch once a peer's certified tip holds it. A message of a height whose set is
 * not known counts for either only when a validator of the latest set known signed it (a validator's key is bound to
 * its address, so its signature verifies whatever set it is in): what anyone can send drives no work.
 */

export const CONSENSUS_PROTOCOL = '/tally/consensus/1'

/**
 * How far above the host's height messages are still admitted. The core would buffer two heights ahead, but the host
 * knows the validator sets up to its tip + 2, the height it works on + 1: a message two heights ahead finds its set
 * unknown and is dropped (block sync fetches that height, see `unknownSet`), so what is buffered is the next height's.
 */
const MAX_HEIGHTS_AHEAD = 2
/** Peers whose latest height beyond the known sets is remembered (admitted peers are fewer; past it, forgotten). */
const MAX_TRACKED_PEERS = 1_024

export interface ConsensusGossipDependencies {
  readonly chainId: string
  /**
   * The validator set in force at a height, or undefined while it is not known: a block up to two heights below may
   * still change it (the host knows the sets up to its tip + 2).
   */
  readonly validatorSet: (height: number) => ValidatorSet | undefined
  readonly maxTxs: number
  /** The height the host works on. */
  readonly height: () => number
  /** What the host would do with a message (see ConsensusHost.messageStatus). */
  readonly status: (m: { kind: 'vote'; vote: SignedVote } | { kind: 'proposal'; proposal: SignedProposal }) => MessageStatus
  /** A peer sent a valid message of this height: it may be ahead (block sync checks). */
  readonly notePeerHeight: (peer: string, height: number) => void
  /**
   * A message of this height was dropped, its validator set not known yet: consensus here will lack it, and block
   * sync fetches the height.
   */
  readonly missedHeight: (height: number) => void
  readonly onProposal: (message: ProposalMessage) => Promise<void>
  readonly onVote: (vote: SignedVote) => Promise<void>
  /**
   * Equivocation evidence from a peer: `new` when this node verified and took it, `known` when it held it already,
   * `ahead` or `expired` when its height is above this node's or older than the evidence window (not judged: an
   * honest peer may be ahead of this node, or late), or why it is invalid (the sender is penalized).
   */
  readonly onEvidence: (bytes: Uint8Array) => Promise<EvidenceAdmission>
  /** The clock of the refusal log's rate limit (default the wall clock). */
  readonly now?: () => number
  readonly logger: Logger
}

/** The gossip handler of consensus messages. */
export function consensusGossipHandler(d: ConsensusGossipDependencies): (data: Uint8Array, from: string) => Promise<GossipVerdict> {
  // one line per peer and minute: a flood of junk is one warning, with a count of what was left out
  const throttle = new ThrottledLog({ windowMs: 60_000, maxKeys: 256 }, d.now === undefined ? {} : { now: d.now })
  const refuse = (from: string, reason: string, height?: number): GossipVerdict => {
    const t = throttle.note(from)
    if (t !== undefined) d.logger.warn({ peer: t.key, height, reason, suppressed: t.suppressed }, 'refused a consensus message')
    return 'reject'
  }
  // Per peer, the highest height beyond the known sets of a message it sent signed by a validator of the latest set
  // known: one such message per peer and height costs a signature check, the others none.
  const beyondSets = new Map<string, number>()
  // A height whose set this node does not know yet, beyond its next: not the sender's fault, and the message cannot be
  // checked against its own set, so it is dropped. Consensus here will then lack it when it gets to that height, and
  // nothing sends it again once the others have moved on: block sync fetches that height once a peer holds it
  // (certified), and polls the sender. Only a message whose signer is a validator of the latest set known, with a
  // signature that verifies, says so: a forged one is the sender's fault (the key is the address's), one signed by a
  // key the known sets do not hold (a validator the unknown set may add) is only dropped.
  const unknownSet = (from: string, height: number, signer: Uint8Array, verify: (v: Validator) => boolean): GossipVerdict => {
    if (height <= (beyondSets.get(from) ?? 0)) return 'ignore'
    const known = latestKnownSet(height)
    const validator = known === undefined ? undefined : findValidator(known, signer)
    if (validator === undefined) return 'ignore'
    if (!verify(validator)) return refuse(from, 'a message beyond the known validator sets with a bad signature', height)
    if (beyondSets.size >= MAX_TRACKED_PEERS) beyondSets.clear()
    beyondSets.set(from, height)
    d.notePeerHeight(from, height)
    d.missedHeight(height)
    return 'ignore'
  }
  // A proposal's height, round and proposer, judged on its signed part before the rest of the message is decoded: a
  // proposal of a height not worked on, or one the core would drop, is ignored, and one from a validator that does
  // not propose its round refused, for what reading its first few hundred bytes costs. Undefined: decode it all.
  const judgeSignedPart = (data: Uint8Array, from: string): GossipVerdict | undefined => {
    const p = peekSignedProposal(data)
    if (p === undefined) return undefined
    const current = d.height()
    if (p.height < current || p.height > current + MAX_HEIGHTS_AHEAD) return 'ignore'
    const set = d.validatorSet(p.height)
    if (set === undefined) return undefined
    if (!bytesEqual(proposerOf(set, p.height, p.round).address, p.proposer))
      return refuse(from, `proposal for round ${p.round} from a validator that does not propose it`, p.height)
    return d.status({ kind: 'proposal', proposal: p }) === 'drop' ? 'ignore' : undefined
  }
  // the latest set known below `height`, down to the host's height
  const latestKnownSet = (height: number): ValidatorSet | undefined => {
    for (let h = height - 1; h >= d.height(); h--) {
      const set = d.validatorSet(h)
      if (set !== undefined) return set
    }
    return undefined
  }
  return async (data, from) => {
    const early = judgeSignedPart(data, from)
    if (early !== undefined) return early
    const m = decodeConsensusGossip(data, d.maxTxs)
    if (!m.ok) return refuse(from, `malformed: ${m.error.reason}`)
    const current = d.height()
    if (m.value.kind === 'evidence') {
      const r = await d.onEvidence(m.value.evidence)
      if (typeof r === 'object') return refuse(from, `invalid evidence: ${r.invalid}`)
      // evidence held already, or that this node cannot judge (ahead of it, expired), costs the sender nothing
      return r === 'new' ? 'accept' : 'ignore'
    }
    if (m.value.kind === 'vote') {
      const vote = m.value.vote
      if (vote.height < current || vote.height > current + MAX_HEIGHTS_AHEAD) return 'ignore'
      const set = d.validatorSet(vote.height)
      if (set === undefined) return unknownSet(from, vote.height, vote.validator, (v) => verifyVoteSignature(d.chainId, v, vote, vote.signature))
      const validator = findValidator(set, vote.validator)
      if (validator === undefined) return refuse(from, `vote from ${toHex(vote.validator)}, not a validator`, vote.height)
      if (d.status({ kind: 'vote', vote }) !== 'new') return 'ignore'
      if (!verifyVoteSignature(d.chainId, validator, vote, vote.signature)) return refuse(from, 'vote with a bad signature', vote.height)
      d.notePeerHeight(from, vote.height)
      await d.onVote(vote)
      return 'accept'
    }
    const message = m.value.message
    const p = message.proposal
    if (p.height < current || p.height > current + MAX_HEIGHTS_AHEAD) return 'ignore'
    const set = d.validatorSet(p.height)
    const proposer = set === undefined ? undefined : proposerOf(set, p.height, p.round)
    if (proposer !== undefined && !bytesEqual(proposer.address, p.proposer))
      return refuse(from, `proposal for round ${p.round} from a validator that does not propose it`, p.height)
    if (message.header.height !== p.height) return refuse(from, 'proposal whose header names another height', p.height)
    if (!bytesEqual(blockHash(message.header), p.valueId)) return refuse(from, 'proposal whose header does not hash to its value', p.height)
    if (proposer === undefined) return unknownSet(from, p.height, p.proposer, (v) => verifyProposalSignature(d.chainId, v, p, p.signature))
    if (d.status({ kind: 'proposal', proposal: p }) === 'drop') return 'ignore'
    if (!verifyProposalSignature(d.chainId, proposer, p, p.signature)) return refuse(from, 'proposal with a bad signature', p.height)
    const parts = partsProblem(message)
    if (parts !== undefined) return refuse(from, `proposal whose ${parts} its header does not commit to`, p.height)
    d.notePeerHeight(from, p.height)
    await d.onProposal(message)
    return 'accept'
  }
}

/**
 * What of a proposal's parts its header does not commit to, if anything: the signature covers the header's hash only,
 * so a relay could otherwise pass on an honest proposer's signed header with other transactions, evidence or last
 * commit, and the first copy a node kept (the host queues one copy of a signed proposal, the candidate store one
 * block per hash) would be judged invalid in place of the honest one. Checked after the signature: hashing thousands
 * of transaction hashes costs more than one signature check.
 */
function partsProblem(m: ProposalMessage): string | undefined {
  if (!bytesEqual(txRoot(m.txHashes), m.header.txRoot)) return 'transactions'
  if (!bytesEqual(txRoot(m.evidence.map(evidenceHash)), m.header.evidenceRoot)) return 'evidence'
  if (!bytesEqual(m.lastCommit === null ? ZERO_HASH : commitHash(m.lastCommit), m.header.lastCommitHash)) return 'last commit'
  return undefined
}
