import { bytesEqual, bytesKey } from '../crypto/bytes.js'
import { err, ok, type Result } from '../crypto/result.js'
import { ZERO_HASH, txRoot, type BlockHeader } from './block.js'
import type { Receipt, TxFailureCode } from './receipt.js'
import type { DecodedTransaction } from './transaction.js'

/**
 * The one block-validity rule, used for proposed blocks and for blocks from sync alike.
 *
 * A block is valid when its header extends this node's chain (chain id, height, previous block hash and time, the
 * validator sets of this height and the next, a proposer that is a member of this height's set, the previous height's
 * commit), its transactions and evidence are the ones the header commits to (roots, counts, bytes, no duplicates;
 * each evidence item valid, recent and new), and every transaction executes successfully on the parent state,
 * giving the header's state root. A block with a transfer that fails (bad signature, wrong chain, a used or
 * skipped nonce, insufficient funds, overflow) is invalid as a whole: honest validators prevote nil on it. So a
 * certified block holds only transfers that applied, and a node replaying one (block sync) needs no signature check
 * and can never reach a different state.
 *
 * A block time ahead of this node's clock is not a fault of the block but of the moment: {@link blockTimeWait} says
 * how long to wait before it may be judged, and the caller asks again then.
 */

/** The chain a block must extend, and the limits it must respect. */
export interface BlockParent {
  readonly chainId: string
  /** The height the block must have: the tip's plus one. */
  readonly height: number
  /** The tip's block hash ({@link ZERO_HASH} at height 1). */
  readonly previousBlockHash: Uint8Array
  /** The tip's block time, or the genesis time at height 1: the block's time must be later. */
  readonly previousBlockTime: number
  /** The hash of the validator set that decides this height. */
  readonly validatorSetHash: Uint8Array
  /** The hash of the set that decides the next height (known from the parent state: sets change two heights on). */
  readonly nextValidatorSetHash: Uint8Array
  /** Membership in that set: the header's proposer must be a validator (not necessarily this round's proposer). */
  readonly isValidator: (address: Uint8Array) => boolean
  readonly maxTxs: number
  readonly maxBytes: number
  /** Most evidence items a block may carry. */
  readonly maxEvidence: number
}

/** Every reason a block can be invalid. */
export const BLOCK_FAULT_CODES = [
  'wrong_chain',
  'wrong_height',
  'wrong_parent',
  'wrong_validator_set',
  'unknown_proposer',
  'time_not_after_parent',
  'last_commit',
  'tx_root',
  'too_many_txs',
  'duplicate_tx',
  'too_large',
  'tx_failed',
  'state_root',
  'evidence',
] as const

/** Why a block is invalid: a code from {@link BLOCK_FAULT_CODES}. */
export type BlockFaultCode = (typeof BLOCK_FAULT_CODES)[number]

/** A block fault: its code, a reason for logs, and the failing transaction where there is one. */
export interface BlockFault {
  readonly code: BlockFaultCode
  readonly reason: string
  readonly index?: number
  readonly txCode?: TxFailureCode
}

const fault = (code: BlockFaultCode, reason: string, extra: Partial<BlockFault> = {}) => err<BlockFault>({ code, reason, ...extra })

/**
 * The header rules. `lastCommitHash` is the hash of the previous height's commit certificate the block carries,
 * which the caller has verified against the validator set (null when the block carries none, or one that does
 * not verify); at height 1 there is none.
 */
export function checkBlockHeader(
  header: BlockHeader,
  txHashes: readonly Uint8Array[],
  parent: BlockParent,
  lastCommitHash: Uint8Array | null,
): Result<void, BlockFault> {
  if (header.chainId !== parent.chainId) return fault('wrong_chain', `chain id ${header.chainId} is not ${parent.chainId}`)
  if (header.height !== parent.height) return fault('wrong_height', `height ${header.height} does not follow the tip (${parent.height - 1})`)
  if (!bytesEqual(header.previousBlockHash, parent.previousBlockHash)) return fault('wrong_parent', 'previous block hash is not the tip')
  if (!bytesEqual(header.validatorSetHash, parent.validatorSetHash)) return fault('wrong_validator_set', 'validator set hash is not the set of this height')
  if (!bytesEqual(header.nextValidatorSetHash, parent.nextValidatorSetHash))
    return fault('wrong_validator_set', 'next validator set hash is not the set of the next height')
  if (!parent.isValidator(header.proposer)) return fault('unknown_proposer', 'the proposer is not a validator')
  if (header.time <= parent.previousBlockTime) return fault('time_not_after_parent', `time ${header.time} is not after ${parent.previousBlockTime}`)
  if (parent.height === 1) {
    if (lastCommitHash !== null || !bytesEqual(header.lastCommitHash, ZERO_HASH)) return fault('last_commit', 'height 1 carries a last commit')
  } else if (lastCommitHash === null) {
    return fault('last_commit', 'no valid commit certificate for the previous height')
  } else if (!bytesEqual(lastCommitHash, header.lastCommitHash)) {
    return fault('last_commit', 'last commit hash does not match the certificate')
  }
  if (txHashes.length > parent.maxTxs) return fault('too_many_txs', `${txHashes.length} transactions exceed ${parent.maxTxs}`)
  const seen = new Set<string>()
  for (let i = 0; i < txHashes.length; i++) {
    const k = bytesKey(txHashes[i]!)
    if (seen.has(k)) return fault('duplicate_tx', `transaction ${i} repeats an earlier one`, { index: i })
    seen.add(k)
  }
  if (!bytesEqual(txRoot(txHashes), header.txRoot)) return fault('tx_root', 'transaction root does not match the transactions')
  return ok(undefined)
}

/**
 * The evidence rule's structural half: at most `maxEvidence` distinct items whose root is the header's. Each item
 * must also be valid equivocation evidence against the set of its height, recent enough and not committed before:
 * the caller checks that (it needs the consensus rules and the chain's history) and reports the first failure as
 * `itemFault`.
 */
export function checkBlockEvidence(
  header: BlockHeader,
  evidenceHashes: readonly Uint8Array[],
  parent: BlockParent,
  itemFault: string | undefined,
): Result<void, BlockFault> {
  if (evidenceHashes.length > parent.maxEvidence) return fault('evidence', `${evidenceHashes.length} evidence items exceed ${parent.maxEvidence}`)
  const seen = new Set<string>()
  for (let i = 0; i < evidenceHashes.length; i++) {
    const k = bytesKey(evidenceHashes[i]!)
    if (seen.has(k)) return fault('evidence', `evidence ${i} repeats an earlier item`, { index: i })
    seen.add(k)
  }
  if (!bytesEqual(txRoot(evidenceHashes), header.evidenceRoot)) return fault('evidence', 'evidence root does not match the evidence')
  if (itemFault !== undefined) return fault('evidence', itemFault)
  return ok(undefined)
}

/** The body rule: the transactions' wire bytes fit the block size limit. */
export function checkBlockBody(txs: readonly DecodedTransaction[], parent: BlockParent): Result<void, BlockFault> {
  let bytes = 0
  for (const t of txs) bytes += t.bytes.byteLength
  if (bytes > parent.maxBytes) return fault('too_large', `${bytes} bytes of transactions exceed ${parent.maxBytes}`)
  return ok(undefined)
}

/** The execution rule: every transaction applied, and the resulting state root is the header's. */
export function checkBlockExecution(
  header: BlockHeader,
  result: { readonly receipts: readonly Receipt[]; readonly stateRoot: Uint8Array },
): Result<void, BlockFault> {
  const applied = checkBlockReceipts(result.receipts)
  if (!applied.ok) return applied
  if (!bytesEqual(result.stateRoot, header.stateRoot)) return fault('state_root', 'state root does not match the executed transactions')
  return ok(undefined)
}

/** The execution rule's first half, for a block whose state root is checked later: every transaction applied. */
export function checkBlockReceipts(receipts: readonly Receipt[]): Result<void, BlockFault> {
  for (let i = 0; i < receipts.length; i++) {
    const r = receipts[i]!
    if (!r.ok) return fault('tx_failed', `transaction ${i} does not apply: ${r.code}`, { index: i, txCode: r.code })
  }
  return ok(undefined)
}

/**
 * How long, in ms, to wait before a block with this header may be judged on this node's clock `nowMs`: a block time
 * more than `maxDriftMs` ahead is not accepted yet (it would drag every later block's time with it), but it becomes
 * acceptable once the clock catches up, so it is never judged invalid for it. 0 when it may be judged now.
 */
export function blockTimeWait(header: BlockHeader, nowMs: number, maxDriftMs: number): number {
  return Math.max(0, header.time - (nowMs + maxDriftMs))
}
