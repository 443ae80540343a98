import { decodeCanonical, encodeCanonical, type Canonical } from '../../crypto/canonical.js'
import { decodeSignedVote, encodeSignedVote, type ConsensusInput, type TimeoutKind } from '../../consensus/index.js'
import { envelopeFail as fail, type EnvelopeResult } from '../storage/envelope.js'
import { decodeStoredBlock, encodeStoredBlock, maxStoredBlockBytes, type StoredBlock } from '../storage/storedBlock.js'
import { decodeConsensusGossip, encodeProposalMessage, maxConsensusMessageBytes, type ProposalMessage } from '../sync/consensusMessages.js'

/**
 * WAL records: `[height, kind, ...]`, the consensus inputs in the order they were fed to the core. A proposal is
 * logged with its block parts (header, transaction hashes, evidence, last commit), so a restarted node can validate
 * it; and a block this node built or found valid is logged whole, transactions included, before this node votes for
 * it, so that even if every validator crashes at once, a block they locked on or decided can still be rebuilt from
 * their logs (the transactions otherwise live only in mempools).
 */

const W_PROPOSAL = 1
const W_VOTE = 2
const W_TIMEOUT = 3
const W_VALUE_READY = 4
const W_VALUE_VALIDATED = 5
const W_BLOCK = 6
const TIMEOUT_KINDS: readonly TimeoutKind[] = ['propose', 'prevote', 'precommit']

/** A logged input: a consensus input, a proposal together with its block parts, or a whole block. */
export type WalEntry =
  | { readonly kind: 'proposal'; readonly message: ProposalMessage }
  | { readonly kind: 'block'; readonly round: number; readonly block: StoredBlock }
  | { readonly kind: 'input'; readonly input: Exclude<ConsensusInput, { type: 'startHeight' } | { type: 'proposal' } | { type: 'commitCertificate' }> }

export function encodeWalEntry(e: WalEntry): Uint8Array {
  if (e.kind === 'proposal') return encodeCanonical([e.message.proposal.height, W_PROPOSAL, encodeProposalMessage(e.message)])
  if (e.kind === 'block') return encodeCanonical([e.block.block.header.height, W_BLOCK, e.round, encodeStoredBlock(e.block)])
  const i = e.input
  switch (i.type) {
    case 'vote':
      return encodeCanonical([i.vote.height, W_VOTE, encodeSignedVote(i.vote)])
    case 'timeoutElapsed':
      return encodeCanonical([i.timeout.height, W_TIMEOUT, i.timeout.round, i.timeout.kind])
    case 'valueReady':
      return encodeCanonical([i.height, W_VALUE_READY, i.round, i.valueId])
    case 'valueValidated':
      return encodeCanonical([i.height, W_VALUE_VALIDATED, i.round, i.valueId, i.valid])
  }
}

/** Decodes a WAL record; the WAL is the node's own file, so a bad record means corruption (the caller stops). */
export function decodeWalEntry(
  bytes: Uint8Array,
  limits: { readonly maxTxs: number; readonly maxBytes: number },
): EnvelopeResult<{ height: number; entry: WalEntry }> {
  const maxTxs = limits.maxTxs
  const d = decodeCanonical(bytes, Math.max(maxConsensusMessageBytes(maxTxs), maxWalBlockBytes(limits)) + 64)
  if (!d.ok) return fail(d.error.reason)
  const v = d.value as Canonical[]
  if (!Array.isArray(v) || typeof v[0] !== 'number') return fail('WAL record shape')
  const height = v[0]
  switch (v[1]) {
    case W_PROPOSAL: {
      if (!(v[2] instanceof Uint8Array)) return fail('WAL proposal')
      const g = decodeConsensusGossip(v[2], maxTxs)
      if (!g.ok || g.value.kind !== 'proposal') return fail('WAL proposal message')
      return { ok: true, value: { height, entry: { kind: 'proposal', message: g.value.message } } }
    }
    case W_VOTE: {
      if (!(v[2] instanceof Uint8Array)) return fail('WAL vote')
      const vote = decodeSignedVote(v[2])
      if (!vote.ok) return fail('WAL vote')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'vote', vote: vote.value } } } }
    }
    case W_TIMEOUT: {
      const kind = v[3] as TimeoutKind
      if (typeof v[2] !== 'number' || !TIMEOUT_KINDS.includes(kind)) return fail('WAL timeout')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'timeoutElapsed', timeout: { height, round: v[2], kind } } } } }
    }
    case W_VALUE_READY:
      if (typeof v[2] !== 'number' || !(v[3] instanceof Uint8Array)) return fail('WAL valueReady')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'valueReady', height, round: v[2], valueId: v[3] } } } }
    case W_VALUE_VALIDATED:
      if (typeof v[2] !== 'number' || !(v[3] instanceof Uint8Array) || typeof v[4] !== 'boolean') return fail('WAL valueValidated')
      return { ok: true, value: { height, entry: { kind: 'input', input: { type: 'valueValidated', height, round: v[2], valueId: v[3], valid: v[4] } } } }
    case W_BLOCK: {
      if (typeof v[2] !== 'number' || !(v[3] instanceof Uint8Array)) return fail('WAL block')
      const b = decodeStoredBlock(v[3], limits)
      if (!b.ok || b.value.block.header.height !== height) return fail('WAL block')
      return { ok: true, value: { height, entry: { kind: 'block', round: v[2], block: b.value } } }
    }
    default:
      return fail('WAL record kind')
  }
}

/** Upper bound on a logged block record: the block, its last commit and the record's framing. */
export function maxWalBlockBytes(limits: { readonly maxBytes: number }): number {
  return maxStoredBlockBytes(limits) + 64
}
