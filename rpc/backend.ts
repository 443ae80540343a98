import type { Result } from '../crypto/result.js'
import type { GovernanceAction } from '../ledger/governance.js'
import { PRECHECK_FAILURE_CODES } from '../ledger/receipt.js'

/**
 * What the RPC server needs from a node. The node (node/) implements it; tests use an in-memory double.
 *
 * Values are domain types: byte strings are Uint8Array (addresses 20 bytes, hashes 32, public keys 32,
 * transactions their wire bytes), amounts and nonces are bigint, heights, rounds and indexes are numbers,
 * times are milliseconds since the Unix epoch. The RPC layer alone formats them for JSON
 * (addresses `0x`+40 hex, hashes `0x`+64 hex, amounts decimal strings, bytes `0x`+hex; see docs/rpc.md).
 *
 * Every query may answer synchronously or with a promise. A query must not throw for a normal outcome
 * (unknown account, unknown tx, height past the tip); a throw is reported as a JSON-RPC internal error.
 */

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>

/**
 * A structure the RPC formats generically for JSON (block headers and commits, whose exact fields belong to
 * the node): Uint8Array → `0x`+hex, bigint → decimal string, arrays and plain objects recursively,
 * other values as they are. Keys keep the order the node gives them.
 */
export type DomainValue = Uint8Array | bigint | number | string | boolean | null | undefined | readonly DomainValue[] | { readonly [key: string]: DomainValue }

/** The node's status, as `node_status` reports it. */
export interface NodeStatus {
  readonly chainId: string
  readonly moniker: string
  /** The node's libp2p peer id. */
  readonly nodeId: string
  /** Height of the latest committed block (0 before the first). */
  readonly height: number
  /** Hash of the latest committed block; null before the first. */
  readonly blockHash: Uint8Array | null
  /** Time of the latest committed block in ms since the epoch; null before the first. */
  readonly blockTime: number | null
  /** The address of this node's validator key when it is one of the current validators, else null. */
  readonly validator: Uint8Array | null
  /** Number of connected peers. */
  readonly peers: number
  readonly catchingUp: boolean
}

/** A committed account. An unknown account is `{balance: 0n, nonce: 0n}`. */
export interface AccountState {
  readonly balance: bigint
  /** The next nonce the ledger expects from this account (committed state). */
  readonly nonce: bigint
}

/**
 * Every reason a transaction can be refused admission: the ledger's transaction failure codes a check against the
 * committed state gives ahead of execution (ledger/receipt.ts; the governance ones refuse a vote that would fail,
 * ledger/governance.ts), and the mempool's own `mempool_full` and `duplicate`. The RPC maps each to a fixed error
 * number (docs/rpc.md); the table in rpc/errors.ts is typed over this list, so a code added to the ledger's list
 * does not compile until it has its number there.
 */
export const SUBMIT_ERROR_CODES = [...PRECHECK_FAILURE_CODES, 'mempool_full', 'duplicate'] as const

/** A code from {@link SUBMIT_ERROR_CODES}. */
export type SubmitErrorCode = (typeof SUBMIT_ERROR_CODES)[number]

/** Why a transaction was refused admission: its code and the node's explanation. */
export interface SubmitError {
  readonly code: SubmitErrorCode
  readonly reason: string
}

/** The outcome of `submitTx`: the transaction's hash once it is in the mempool, or why it is not. */
export type SubmitResult = Result<Uint8Array, SubmitError>

/**
 * Every reason submitted evidence can be refused (`evidence_submit`): bytes that are not equivocation evidence in its
 * one encoding, or whose signatures do not verify against the validator set of its height (`invalid_evidence`);
 * evidence older than the evidence window, which no block may carry any more (`evidence_expired`). Each has its own
 * RPC error number (rpc/errors.ts).
 */
export const EVIDENCE_SUBMIT_ERROR_CODES = ['invalid_evidence', 'evidence_expired'] as const

/** Why submitted evidence was refused; `unavailable` from a node that takes no evidence from clients. */
export interface EvidenceSubmitError {
  readonly code: (typeof EVIDENCE_SUBMIT_ERROR_CODES)[number] | 'unavailable'
  readonly reason: string
}

/**
 * What a node made of submitted evidence it did not refuse: `new` when it was kept and gossiped to the node's peers
 * (the next proposers put it in a block), `known` when the node held it already, the chain committed it or the node
 * holds evidence of the same equivocation; `ahead` when its height is above the one the node decides (the node cannot
 * judge it yet and kept nothing: submit it to a node that has reached that height, or again later).
 */
export interface EvidenceSubmitted {
  /** SHA-256 of the evidence bytes: what blocks commit to (`evidenceRoot`). */
  readonly hash: Uint8Array
  readonly status: 'new' | 'known' | 'ahead'
}

/** The outcome of `submitEvidence`. */
export type EvidenceSubmitResult = Result<EvidenceSubmitted, EvidenceSubmitError>

/** Where a transaction is. */
export type TxLookup =
  | { readonly status: 'pending' }
  | {
      readonly status: 'committed'
      readonly height: number
      /** Position of the transaction in its block. */
      readonly index: number
      /** Whether the ledger applied it; a committed transaction can still fail (e.g. funds spent meanwhile). */
      readonly ok: boolean
      /** The ledger's failure code when `ok` is false. */
      readonly error?: string
    }
  /** Admitted to the mempool, then dropped because a committed block made it invalid (it will never commit). */
  | { readonly status: 'rejected'; readonly error: string; readonly reason: string }
  | { readonly status: 'unknown' }

/** A committed block. */
export interface BlockInfo {
  readonly height: number
  readonly hash: Uint8Array
  /** The header as the node defines it (formatted generically, see DomainValue). */
  readonly header: { readonly [key: string]: DomainValue }
  /** The transactions' wire bytes in block order; the RPC decodes them for display. */
  readonly txs: readonly Uint8Array[]
  /** Per-transaction outcomes in block order, when the node has them at hand (undefined for one it does not know). */
  readonly results?: readonly ({ readonly ok: boolean; readonly error?: string } | undefined)[]
  /** The commit certificate (formatted generically). */
  readonly commit: DomainValue
  /** The equivocation evidence the block carries (formatted generically), when the node has it decoded. */
  readonly evidence?: readonly DomainValue[]
}

/** A committed block's header with the certificate that commits it: what a client needs to trust the header. */
export interface CommitInfo {
  readonly height: number
  readonly hash: Uint8Array
  readonly header: { readonly [key: string]: DomainValue }
  /** The commit certificate of `height`, formatted as {@link BlockInfo.commit}. */
  readonly commit: DomainValue
}

/**
 * An account with a proof of it against the state root of a named committed block: the block's header and commit
 * certificate come with it, so a client that trusts the validator set can check the answer without trusting the node.
 */
export interface AccountProofInfo {
  /** The account the proof proves (the zero account when it proves absence). */
  readonly account: AccountState
  /** Account proof bytes (ledger/accountProof.ts) against `block.header.stateRoot`. */
  readonly proof: Uint8Array
  /** The committed block whose state root (the state after it) the proof is against. */
  readonly block: CommitInfo
}

/** A committed transaction's inclusion proof against its block's transaction root, with that block. */
export interface TxProofInfo {
  /** Inclusion proof bytes (ledger/txProof.ts) against `block.header.txRoot`. */
  readonly proof: Uint8Array
  /** The block that holds the transaction. */
  readonly block: CommitInfo
}

/** Why a node cannot prove an answer now, for the client. */
export interface ProofUnavailable {
  readonly unavailable: string
}

/** A member of a validator set. */
export interface ValidatorInfo {
  readonly address: Uint8Array
  readonly publicKey: Uint8Array
  readonly power: number | bigint
  readonly peerId: string
  /** The validator's name (genesis, or the governance change that added it). */
  readonly name: string
}

/** The answer for a height whose validator set the node does not know (yet): why, for the client. */
export interface ValidatorsUnknown {
  readonly unknown: string
}

/** A governance change waiting for votes (ledger/governance.ts), with the power its votes hold. */
export interface PendingChangeInfo {
  /** The action's id: what votes for the same change agree on. */
  readonly id: Uint8Array
  readonly action: GovernanceAction
  /** Who voted and in which block, in address order. */
  readonly votes: readonly { readonly address: Uint8Array; readonly height: number }[]
  /** The power of the voters in the set in force at {@link PendingChangesInfo.height} (non-members count 0). */
  readonly power: bigint
  /** A removal forced by committed evidence: it needs no votes. */
  readonly forced: boolean
}

/** The pending governance changes after the latest committed block. */
export interface PendingChangesInfo {
  /** The next height: its set counts the votes at the end of its block. */
  readonly height: number
  /** Total power of the set in force at `height`; a change completes with more than two thirds of it. */
  readonly totalPower: bigint
  /** A vote counts for this many heights after the block that carried it. */
  readonly voteExpiryHeights: number
  readonly changes: readonly PendingChangeInfo[]
  /** A set that a completed change scheduled and that is not in force yet, with the height it applies from. */
  readonly scheduled: { readonly fromHeight: number; readonly validators: readonly ValidatorInfo[] } | null
}

/** Whether the node can serve: running, not catching up, with peers. */
export type HealthState = { readonly healthy: true } | { readonly healthy: false; readonly reason: string }

/** A transaction reached a committed block. */
export interface TxCommittedEvent {
  readonly hash: Uint8Array
  readonly height: number
  readonly index: number
  readonly ok: boolean
  readonly error?: string
}

/** Removes a listener it was returned for. Calling it twice is harmless. */
export type Unsubscribe = () => void

/**
 * The node as the RPC server sees it. Listeners are called synchronously from the node's commit path and
 * must be cheap: the server formats an event once and queues it to its subscribers without waiting.
 */
export interface RpcBackend {
  status(): Awaitable<NodeStatus>
  /** The committed state of a 20-byte address. */
  getAccount(address: Uint8Array): Awaitable<AccountState>
  /**
   * The nonce a wallet should sign next: the committed nonce plus the sender's contiguous run of pending
   * mempool transactions (nonce, nonce+1, …), so several transfers can be sent without waiting for commits.
   */
  getNextNonce(address: Uint8Array): Awaitable<bigint>
  /** Offers signed wire bytes to the mempool (decode, verify, check nonce and funds, admit, gossip). */
  submitTx(bytes: Uint8Array): Awaitable<SubmitResult>
  getTx(hash: Uint8Array): Awaitable<TxLookup>
  /** The committed block at `height`, the latest when undefined; null past the tip (or before the first). */
  getBlock(height?: number): Awaitable<BlockInfo | null>
  /** The header and commit certificate of the committed block at `height`; null past the tip (or before the first). */
  getCommit(height: number): Awaitable<CommitInfo | null>
  /**
   * The validator set in force at `height` (at least 1), in address order; without a height, the set of the next
   * height (the one consensus works on). A height beyond what the node knows (the sets of the next two heights
   * after its tip) gets {@link ValidatorsUnknown}.
   */
  getValidators(height?: number): Awaitable<readonly ValidatorInfo[] | ValidatorsUnknown>
  /**
   * The committed account of `address` with its proof against the state root of the latest committed block, and
   * that block's header and certificate, all of one height (a commit between reading and proving must not mix two).
   * {@link ProofUnavailable} before the first block. Optional: a backend without it does not serve proofs.
   */
  proveAccount?(address: Uint8Array): Awaitable<AccountProofInfo | ProofUnavailable>
  /**
   * Where a transaction is and, when it is committed, its inclusion proof with the header and certificate of its
   * block. Optional: a backend without it does not serve proofs.
   */
  proveTx?(hash: Uint8Array): Awaitable<{ readonly lookup: TxLookup; readonly proof?: TxProofInfo }>
  /** The governance changes waiting for votes, as of the latest committed block. */
  getPendingChanges(): Awaitable<PendingChangesInfo>
  health(): Awaitable<HealthState>
  /**
   * The equivocation evidence the chain committed (two conflicting signed messages from one validator), oldest
   * first, each with the height of the block that carried it: the same on every replica.
   * Optional: a backend without it answers an empty list.
   */
  getEvidence?(): Awaitable<readonly DomainValue[]>
  /**
   * Offers equivocation evidence (its canonical encoding, consensus/evidence.ts) from a client, e.g. a light client
   * that found two conflicting commits: the admission that evidence from a peer gets, then gossip when new.
   * Optional: a backend without it answers `unavailable`.
   */
  submitEvidence?(bytes: Uint8Array): Awaitable<EvidenceSubmitResult>
  /** Calls the listener with every newly committed block, in height order. */
  onNewBlock(listener: (block: BlockInfo) => void): Unsubscribe
  /** Calls the listener with every committed transaction, in block order. */
  onTxCommitted(listener: (event: TxCommittedEvent) => void): Unsubscribe
}
