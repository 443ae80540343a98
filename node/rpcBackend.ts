import { EventEmitter } from 'node:events'
import { bytesEqual } from '../crypto/bytes.js'
import { HASH_LENGTH, sha256, sha256Into } from '../crypto/hash.js'
import { err, ok } from '../crypto/result.js'
import { decodeCommitCertificate, decodeEvidence, evidenceHash, type CommitCertificate } from '../consensus/index.js'
import type { Genesis } from '../genesis/genesis.js'
import { blockHash, type Block, type BlockHeader } from '../ledger/block.js'
import type { Account } from '../ledger/account.js'
import { verifyAccountProof, type AccountProof } from '../ledger/accountProof.js'
import { heightAfter, memberOf, rosterAt, totalPower, voteProblem, type GovernanceState, type Roster } from '../ledger/governance.js'
import { GOVERNANCE_TX_VERSION, decodeTransaction, senderAddress } from '../ledger/transaction.js'
import { TxTree } from '../ledger/txProof.js'
import type {
  AccountProofInfo,
  BlockInfo,
  CommitInfo,
  DomainValue,
  EvidenceSubmitResult,
  HealthState,
  NodeStatus,
  PendingChangesInfo,
  ProofUnavailable,
  RpcBackend,
  SubmitResult,
  TxCommittedEvent,
  TxLookup,
  TxProofInfo,
  Unsubscribe,
  ValidatorInfo,
  ValidatorsUnknown,
} from '../rpc/backend.js'
import type { CommittedBlock, EvidenceSubmission } from './host/consensusHost.js'
import type { ChainStore, ChainTip } from './storage/chainStore.js'
import { decodeStoredBlock, type StoredBlock } from './storage/storedBlock.js'
import { evidenceView } from '../rpc/format.js'

/**
 * What the RPC server serves: the node's committed state, chain, mempool and events, read through narrow views of
 * the components, so the backend holds no state of its own besides the listeners of committed blocks.
 */

export interface NodeBackendDependencies {
  readonly genesis: Genesis
  readonly moniker: string
  readonly chain: ChainStore
  readonly tip: () => ChainTip | undefined
  readonly getAccount: (address: Uint8Array) => Account | Promise<Account>
  /**
   * A proof of the committed account against the committed state root (the ledger's `proveAccount`); absent, the
   * node serves no account proofs. It must read the root at the moment it is called, before any await.
   */
  readonly proveAccount?: (address: Uint8Array) => Promise<AccountProof>
  readonly nextNonce: (address: Uint8Array) => Promise<bigint>
  readonly submit: (bytes: Uint8Array) => Promise<SubmitResult>
  /** Pending in the mempool, or rejected from it with a reason. */
  readonly pending: (hash: Uint8Array) => boolean
  readonly rejected: (hash: Uint8Array) => { readonly error: string; readonly reason: string } | undefined
  readonly peerId: string
  readonly peerCount: () => number
  readonly catchingUp: () => boolean
  /** The address of this node's validator key; null on a full node (no key). */
  readonly validator: Uint8Array | null
  /** The committed evidence as RPC shows it, oldest first. */
  readonly evidence: () => readonly DomainValue[]
  /**
   * The validator set in force at a height the node knows: from 1 to the tip + 2 (the history by height, which the
   * host keeps as blocks commit).
   */
  readonly rosterAt: (height: number) => Roster
  /** The committed governance state (the schedule and the pending changes). */
  readonly governance: () => GovernanceState | undefined
  /**
   * Evidence from a client to the consensus host: admitted as evidence from a peer, gossiped when new
   * (`ConsensusHost.submitEvidence`): `ahead` of the node's height, or expired (older than the evidence window) with
   * why. Absent, the node takes no evidence from clients.
   */
  readonly submitEvidence?: (bytes: Uint8Array) => Promise<EvidenceSubmission>
}

/** The RPC view of a header: every field the block hash commits to, in the header's order. */
export function headerInfo(h: BlockHeader): { readonly [key: string]: DomainValue } {
  return {
    chainId: h.chainId,
    height: h.height,
    time: h.time,
    previousBlockHash: h.previousBlockHash,
    txRoot: h.txRoot,
    stateRoot: h.stateRoot,
    proposer: h.proposer,
    validatorSetHash: h.validatorSetHash,
    nextValidatorSetHash: h.nextValidatorSetHash,
    lastCommitHash: h.lastCommitHash,
    evidenceRoot: h.evidenceRoot,
  }
}

/** The RPC view of a commit certificate, with the block's `lastCommit` (the previous height's certificate). */
function commitInfo(certificate: CommitCertificate, lastCommit: CommitCertificate | null): DomainValue {
  const cert = (c: CommitCertificate) => ({
    height: c.height,
    round: c.round,
    blockHash: c.valueId,
    signatures: c.signatures.map((s) => ({ validator: s.validator, signature: s.signature })),
  })
  return { ...cert(certificate), lastCommit: lastCommit === null ? null : cert(lastCommit) }
}

/** The RPC view of a set member. */
function validatorInfo(m: Roster[number]): ValidatorInfo {
  return { address: m.address, publicKey: m.publicKey, power: m.power, peerId: m.peerId, name: m.name }
}

/** A receipt as `block` answers show it (made once: ledger/smt.ts, byKey). */
function receiptResult(r: { ok: boolean; code?: string } | undefined): { ok: boolean; error?: string } | undefined {
  return r === undefined ? undefined : r.ok ? { ok: true } : r.code === undefined ? { ok: false } : { ok: false, error: r.code }
}

/** The RPC view of a committed block. */
export function blockInfo(
  height: number,
  hash: Uint8Array,
  block: Block,
  lastCommit: CommitCertificate | null,
  certificate: CommitCertificate,
  receipts?: readonly ({ ok: boolean; code?: string } | undefined)[],
): BlockInfo {
  return {
    height,
    hash,
    header: headerInfo(block.header),
    txs: block.txs,
    ...(receipts ? { results: receipts.map(receiptResult) } : {}),
    commit: commitInfo(certificate, lastCommit),
    evidence: block.evidence.map((bytes) => {
      const e = decodeEvidence(bytes)
      if (!e.ok) throw new Error(`block ${height} holds evidence that does not decode`)
      return evidenceView(bytes, e.value, height)
    }),
  }
}

/** How many heights' transaction trees {@link NodeBackend} keeps for proofs (at most ~96 bytes per transaction each). */
const TX_PROOF_HEIGHTS = 4

/**
 * How many heights' blocks {@link NodeBackend} keeps as `getBlock` answers them: each holds its stored block (at most
 * the block size limit) and a result per transaction.
 */
const BLOCK_HEIGHTS = 4

/**
 * What is made of committed heights, kept for the `size` heights asked last, most recent last: a committed height's
 * block, certificate and receipts never change, so what is made of them is made once for all the height's clients,
 * and callers asking at once share one making. Null (no such height yet) and a making that fails are not kept.
 */
class RecentHeights<T> {
  private readonly kept = new Map<number, Promise<T | null>>()

  constructor(
    private readonly size: number,
    private readonly make: (height: number) => Promise<T | null>,
  ) {}

  get(height: number): Promise<T | null> {
    const kept = this.kept.get(height)
    if (kept !== undefined) {
      this.kept.delete(height)
      this.kept.set(height, kept)
      return kept
    }
    const made = this.make(height)
    this.kept.set(height, made)
    // a height with no block yet, or a read that failed, is asked for again next time
    made.then(
      (v) => v === null && this.kept.get(height) === made && this.kept.delete(height),
      () => this.kept.get(height) === made && this.kept.delete(height),
    )
    for (const h of this.kept.keys()) {
      if (this.kept.size <= this.size) break
      this.kept.delete(h)
    }
    return made
  }
}

/** A committed height's transaction hashes (side by side), its transaction tree, and its header and certificate. */
interface TxProofSource {
  readonly hashes: Uint8Array
  readonly tree: TxTree
  readonly block: CommitInfo
}

export class NodeBackend implements RpcBackend {
  private readonly events = new EventEmitter()
  /**
   * What proofs of a height's transactions are made of, for the heights asked last: every client of a block asks about
   * its own transaction (a verifying wallet does after each transfer), and each would otherwise read the block and
   * hash its whole transaction tree again.
   */
  private readonly txProofSources = new RecentHeights(TX_PROOF_HEIGHTS, (h) => this.makeTxProofSource(h))
  /**
   * The blocks `getBlock` answered last: each answer reads and decodes the whole block and its results, and the RPC
   * formats the same object once (rpc/methods.ts).
   */
  private readonly blocks = new RecentHeights(BLOCK_HEIGHTS, (h) => this.makeBlockInfo(h))
  /** The header and certificate of the latest block published, so proofs at the tip need not read the block back. */
  private latestCommit: CommitInfo | undefined
  /**
   * The committed evidence as the last `getEvidence` made it; dropped when a block is published (only a committed block
   * changes it), so that the list, and the RPC answer made of it, is made once per block however many calls ask.
   */
  private evidence: readonly DomainValue[] | undefined

  constructor(private readonly d: NodeBackendDependencies) {
    this.events.setMaxListeners(0)
  }

  /** Tells subscribers about a committed block and its transactions. */
  publishCommitted(b: CommittedBlock): void {
    const info = blockInfo(b.height, b.hash, b.block, b.lastCommit, b.certificate, b.receipts)
    this.evidence = undefined
    this.latestCommit = { height: b.height, hash: b.hash, header: info.header, commit: info.commit }
    this.events.emit('block', info)
    for (let index = 0; index < b.txHashes.length; index++) {
      const hash = b.txHashes[index]!
      const r = b.receipts[index]!
      const e: TxCommittedEvent = r.ok ? { hash, height: b.height, index, ok: true } : { hash, height: b.height, index, ok: false, error: r.code! }
      this.events.emit('tx', e)
    }
  }

  status(): NodeStatus {
    const tip = this.d.tip()
    return {
      chainId: this.d.genesis.chainId,
      moniker: this.d.moniker,
      nodeId: this.d.peerId,
      height: tip?.height ?? 0,
      blockHash: tip?.blockHash ?? null,
      blockTime: tip?.blockTime ?? null,
      validator: this.currentValidator(tip?.height ?? 0),
      peers: this.d.peerCount(),
      catchingUp: this.d.catchingUp(),
    }
  }

  /** This node's validator address when its key is in the set of the next height (the one consensus works on). */
  private currentValidator(tipHeight: number): Uint8Array | null {
    const v = this.d.validator
    return v !== null && memberOf(this.d.rosterAt(tipHeight + 1), v) !== undefined ? v : null
  }

  getAccount(address: Uint8Array): Account | Promise<Account> {
    return this.d.getAccount(address)
  }

  /**
   * The account with its proof against the state root of the tip, and the tip's header and certificate. The tip and
   * the root are read together (the host changes both in one synchronous step), but a commit while the proof's
   * path is being read rewrites the tree under it: the proof is checked against the header's state root before it
   * is served, and taken once more if a commit got in between; a second miss answers unavailable.
   */
  async proveAccount(address: Uint8Array): Promise<AccountProofInfo | ProofUnavailable> {
    const prove = this.d.proveAccount
    if (prove === undefined) return { unavailable: 'this node does not serve account proofs' }
    for (let attempt = 0; attempt < 2; attempt++) {
      const tip = this.d.tip()
      if (tip === undefined) return { unavailable: 'no block is committed yet: there is no state root to prove against' }
      const cached = this.latestCommit?.height === tip.height ? this.latestCommit : undefined
      const [p, block] = await Promise.all([prove(address), cached ?? this.getCommit(tip.height)])
      if (block === null) continue
      const stateRoot = block.header.stateRoot as Uint8Array
      if (!bytesEqual(p.root, stateRoot) || !verifyAccountProof(stateRoot, address, p.proof).ok) continue
      return { account: p.account ?? { balance: 0n, nonce: 0n }, proof: p.proof, block }
    }
    // blocks applied back to back (block sync writing several heights at once) keep the state ahead of the tip
    return { unavailable: 'the state moved on during two account proofs in a row (this node is applying blocks): ask again, or another node' }
  }

  /** Where a transaction is, with its inclusion proof and its block's header and certificate when it is committed. */
  async proveTx(hash: Uint8Array): Promise<{ lookup: TxLookup; proof?: TxProofInfo }> {
    const lookup = await this.getTx(hash)
    if (lookup.status !== 'committed') return { lookup }
    const source = await this.txProofSources.get(lookup.height)
    if (source === null) throw new Error(`transaction index names height ${lookup.height}, which has no stored block`)
    const at = lookup.index * HASH_LENGTH
    if (!(lookup.index < source.tree.count && bytesEqual(source.hashes.subarray(at, at + HASH_LENGTH), hash))) {
      throw new Error(`transaction index names position ${lookup.index} of block ${lookup.height}, which holds another transaction`)
    }
    return { lookup, proof: { proof: source.tree.proof(lookup.index), block: source.block } }
  }

  private async makeTxProofSource(height: number): Promise<TxProofSource | null> {
    const stored = await this.storedBlock(height)
    if (stored === null) return null
    const txs = stored.block.block.txs
    const hashes = new Uint8Array(txs.length * HASH_LENGTH)
    const list: Uint8Array[] = []
    for (let i = 0; i < txs.length; i++) {
      sha256Into(hashes, i * HASH_LENGTH, txs[i]!)
      list.push(hashes.subarray(i * HASH_LENGTH, (i + 1) * HASH_LENGTH))
    }
    if (list.length === 0) return null
    const header = stored.block.block.header
    const block: CommitInfo = { height, hash: blockHash(header), header: headerInfo(header), commit: commitInfo(stored.certificate, stored.block.lastCommit) }
    return { hashes, tree: TxTree.of(list), block }
  }

  getNextNonce(address: Uint8Array): Promise<bigint> {
    return this.d.nextNonce(address)
  }

  /**
   * Offers a transaction to the mempool. A governance vote that would fail against the committed state at the next
   * height (not a validator, a change that does not apply, too many open votes) is refused here with the ledger's
   * code, so the operator learns why at once instead of from a rejection after the next proposal.
   */
  submitTx(bytes: Uint8Array): Promise<SubmitResult> {
    // a governance vote's canonical bytes open with an array of 6 and its version; transfers skip the decode here
    if (bytes[0] !== 0x96 || bytes[1] !== GOVERNANCE_TX_VERSION) return this.d.submit(bytes)
    const d = decodeTransaction(bytes)
    const gov = this.d.governance()
    if (d.ok && d.value.tx.kind === 'governance' && d.value.tx.chainId === this.d.genesis.chainId && gov !== undefined) {
      const problem = voteProblem(gov, this.d.tip()?.height ?? 0, senderAddress(d.value.tx), d.value.tx.action, this.d.genesis.params.governance)
      if (problem !== undefined) return Promise.resolve(err(problem))
    }
    return this.d.submit(bytes)
  }

  async getTx(hash: Uint8Array): Promise<TxLookup> {
    const loc = await this.d.chain.txLocation(hash)
    // a height being written, or a synced run's heights before the tip reaches them: no block to show or prove yet
    if (loc && loc.height > (this.d.tip()?.height ?? 0)) return { status: 'pending' }
    if (loc) {
      return loc.ok
        ? { status: 'committed', height: loc.height, index: loc.index, ok: true }
        : { status: 'committed', height: loc.height, index: loc.index, ok: false, error: loc.code ?? 'failed' }
    }
    if (this.d.pending(hash)) return { status: 'pending' }
    const r = this.d.rejected(hash)
    if (r) return { status: 'rejected', error: r.error, reason: r.reason }
    return { status: 'unknown' }
  }

  /**
   * The block of a height (the tip's without one), the same object for every call while the height is among the
   * {@link BLOCK_HEIGHTS} asked last. Null outside 1…tip.
   */
  getBlock(height?: number): Promise<BlockInfo | null> {
    const tip = this.d.tip()?.height ?? 0
    const h = height ?? tip
    // a height with no block is not kept, and asking for one (a client polling for the next block) drops none that is
    if (!Number.isSafeInteger(h) || h < 1 || h > tip) return Promise.resolve(null)
    return this.blocks.get(h)
  }

  private async makeBlockInfo(h: number): Promise<BlockInfo | null> {
    const stored = await this.storedBlock(h)
    if (stored === null) return null
    const { block, certificate } = stored
    const txs = block.block.txs
    const receipts = (await this.d.chain.blockResults(h, txs.length)) ?? (await this.indexedResults(h, txs))
    return blockInfo(h, blockHash(block.block.header), block.block, block.lastCommit, certificate, receipts)
  }

  /**
   * The results of a height written without its results record, from the transactions' index, which holds a hash's
   * latest inclusion: the same bytes failed here (nonce not consumed) may be included again later. A record of
   * another height says only that the transaction failed here when it applied there (its nonce was free until then),
   * and nothing when it failed there too: its result is then left out, as it is when the index holds no record.
   */
  private async indexedResults(h: number, txs: readonly Uint8Array[]): Promise<({ ok: boolean; code?: string } | undefined)[]> {
    const locations = await this.d.chain.txLocations(txs.map((t) => sha256(t)))
    return locations.map((loc) => {
      // every height indexes each of its transactions: a record missing says nothing of how one ended
      if (loc === undefined) return undefined
      if (loc.height !== h) return loc.ok ? { ok: false } : undefined
      return { ok: loc.ok, ...(loc.code ? { code: loc.code } : {}) }
    })
  }

  async getCommit(height: number): Promise<CommitInfo | null> {
    const stored = await this.storedBlock(height)
    if (stored === null) return null
    const header = stored.block.block.header
    return { height, hash: blockHash(header), header: headerInfo(header), commit: commitInfo(stored.certificate, stored.block.lastCommit) }
  }

  /** The stored block and certificate of a committed height; null outside 1…tip. */
  private async storedBlock(h: number): Promise<{ block: StoredBlock; certificate: CommitCertificate } | null> {
    const tip = this.d.tip()?.height ?? 0
    if (!Number.isSafeInteger(h) || h < 1 || h > tip) return null
    const [bytes, certBytes] = await Promise.all([this.d.chain.blockBytes(h), this.d.chain.certificateBytes(h)])
    if (bytes === undefined || certBytes === undefined) return null
    const limits = this.d.genesis.params.block
    const s = decodeStoredBlock(bytes, { maxBytes: limits.maxBytes, maxTxs: limits.maxTxs })
    const c = decodeCommitCertificate(certBytes)
    if (!s.ok || !c.ok) throw new Error(`stored block ${h} is corrupt`)
    return { block: s.value, certificate: c.value }
  }

  getValidators(height?: number): ValidatorInfo[] | ValidatorsUnknown {
    const next = (this.d.tip()?.height ?? 0) + 1
    const h = height ?? next
    if (!Number.isSafeInteger(h) || h < 1) return { unknown: `height ${h} has no validator set: the first block is height 1` }
    // the history holds the sets of the heights a synced run applied before the tip reaches them
    const known = Math.max(next + 1, this.d.governance()?.schedule.at(-1)?.fromHeight ?? 0)
    if (h > known) return { unknown: `the validator set of height ${h} is not known yet: this node knows the sets up to height ${known} (its tip + 2)` }
    return this.d.rosterAt(h).map(validatorInfo)
  }

  getPendingChanges(): PendingChangesInfo {
    // the votes and the schedule are the ledger's, which may be ahead of the tip: weighed by the set of its next height
    const gov = this.d.governance()
    const tip = this.d.tip()?.height ?? 0
    const height = gov === undefined ? tip + 1 : heightAfter(gov, tip)
    const current = gov === undefined ? this.d.rosterAt(height) : rosterAt(gov, height)
    const total = totalPower(current)
    const voteExpiryHeights = this.d.genesis.params.governance.voteExpiryHeights
    if (gov === undefined) return { height, totalPower: total, voteExpiryHeights, changes: [], scheduled: null }
    const upcoming = gov.schedule.find((e) => e.fromHeight > height)
    const changes = gov.pending.map((p) => {
      let power = 0n
      for (const v of p.votes) power += BigInt(memberOf(current, v.address)?.power ?? 0)
      return { id: p.id, action: p.action, votes: p.votes, power, forced: p.forced }
    })
    const scheduled = upcoming === undefined ? null : { fromHeight: upcoming.fromHeight, validators: upcoming.roster.map(validatorInfo) }
    return { height, totalPower: total, voteExpiryHeights, changes, scheduled }
  }

  health(): HealthState {
    if (this.d.catchingUp()) return { healthy: false, reason: 'catching up' }
    if (this.d.peerCount() === 0 && this.d.rosterAt((this.d.tip()?.height ?? 0) + 1).length > 1) return { healthy: false, reason: 'no peers' }
    return { healthy: true }
  }

  /** The committed evidence, oldest first: one list, not changed, from one published block to the next. */
  getEvidence(): readonly DomainValue[] {
    this.evidence ??= this.d.evidence()
    return this.evidence
  }

  /**
   * Evidence a client submits, e.g. a light client that found two conflicting commits of one height: the host decodes
   * it strictly, verifies it against the set of its height and keeps and gossips it when new; of a height above the
   * node's it is `ahead` (not judged), older than the evidence window `evidence_expired`. The hash is the one blocks
   * commit to: the host takes only the one encoding of evidence, so the bytes are that encoding.
   */
  async submitEvidence(bytes: Uint8Array): Promise<EvidenceSubmitResult> {
    const admit = this.d.submitEvidence
    if (admit === undefined) return err({ code: 'unavailable', reason: 'this node takes no evidence from clients' })
    const r = await admit(bytes)
    if (typeof r === 'object')
      return 'expired' in r ? err({ code: 'evidence_expired', reason: r.expired }) : err({ code: 'invalid_evidence', reason: r.invalid })
    return ok({ hash: evidenceHash(bytes), status: r })
  }

  onNewBlock(listener: (block: BlockInfo) => void): Unsubscribe {
    this.events.on('block', listener)
    return () => this.events.off('block', listener)
  }

  onTxCommitted(listener: (event: TxCommittedEvent) => void): Unsubscribe {
    this.events.on('tx', listener)
    return () => this.events.off('tx', listener)
  }
}
