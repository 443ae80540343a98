import { EventEmitter } from 'node:events'
import { sha256 } from '../crypto/hash.js'
import { decodeCommitCertificate, type CommitCertificate } from '../consensus/index.js'
import type { Genesis } from '../genesis/genesis.js'
import { blockHash, type Block } from '../ledger/block.js'
import type { Account } from '../ledger/account.js'
import type {
  BlockInfo, DomainValue, HealthState, NodeStatus, RpcBackend, SubmitResult, TxCommittedEvent, TxLookup, Unsubscribe, ValidatorInfo,
} from '../rpc/backend.js'
import type { CommittedBlock } from './host/consensusHost.js'
import type { ChainStore, ChainTip } from './storage/chainStore.js'
import { decodeStoredBlock } from './storage/storedBlock.js'

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
  readonly nextNonce: (address: Uint8Array) => Promise<bigint>
  readonly submit: (bytes: Uint8Array) => Promise<SubmitResult>
  /** Pending in the mempool, or rejected from it with a reason. */
  readonly pending: (hash: Uint8Array) => boolean
  readonly rejected: (hash: Uint8Array) => { readonly error: string; readonly reason: string } | undefined
  readonly peerId: string
  readonly peerCount: () => number
  readonly catchingUp: () => boolean
  readonly validator: Uint8Array | null
  readonly evidence: () => readonly DomainValue[]
}

/** The RPC view of a committed block. */
export function blockInfo(height: number, hash: Uint8Array, block: Block, lastCommit: CommitCertificate | null, certificate: CommitCertificate, receipts?: readonly { ok: boolean; code?: string }[]): BlockInfo {
  const h = block.header
  const cert = (c: CommitCertificate) => ({ height: c.height, round: c.round, blockHash: c.valueId, signatures: c.signatures.map((s) => ({ validator: s.validator, signature: s.signature })) })
  return {
    height, hash,
    header: {
      chainId: h.chainId, height: h.height, time: h.time, previousBlockHash: h.previousBlockHash, txRoot: h.txRoot, stateRoot: h.stateRoot,
      proposer: h.proposer, validatorSetHash: h.validatorSetHash, lastCommitHash: h.lastCommitHash,
    },
    txs: block.txs,
    ...(receipts ? { results: receipts.map((r) => (r.ok ? { ok: true } : { ok: false, error: r.code! })) } : {}),
    commit: { ...cert(certificate), lastCommit: lastCommit === null ? null : cert(lastCommit) },
  }
}

export class NodeBackend implements RpcBackend {
  private readonly events = new EventEmitter()

  constructor(private readonly d: NodeBackendDependencies) {
    this.events.setMaxListeners(0)
  }

  /** Tells subscribers about a committed block and its transactions. */
  publishCommitted(b: CommittedBlock): void {
    this.events.emit('block', blockInfo(b.height, b.hash, b.block, b.lastCommit, b.certificate, b.receipts))
    b.txHashes.forEach((hash, index) => {
      const r = b.receipts[index]!
      const e: TxCommittedEvent = r.ok ? { hash, height: b.height, index, ok: true } : { hash, height: b.height, index, ok: false, error: r.code! }
      this.events.emit('tx', e)
    })
  }

  status(): NodeStatus {
    const tip = this.d.tip()
    return {
      chainId: this.d.genesis.chainId, moniker: this.d.moniker, nodeId: this.d.peerId,
      height: tip?.height ?? 0, blockHash: tip?.blockHash ?? null, blockTime: tip?.blockTime ?? null,
      validator: this.d.validator, peers: this.d.peerCount(), catchingUp: this.d.catchingUp(),
    }
  }

  getAccount(address: Uint8Array): Account | Promise<Account> {
    return this.d.getAccount(address)
  }

  getNextNonce(address: Uint8Array): Promise<bigint> {
    return this.d.nextNonce(address)
  }

  submitTx(bytes: Uint8Array): Promise<SubmitResult> {
    return this.d.submit(bytes)
  }

  async getTx(hash: Uint8Array): Promise<TxLookup> {
    const loc = await this.d.chain.txLocation(hash)
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

  async getBlock(height?: number): Promise<BlockInfo | null> {
    const tip = this.d.tip()?.height ?? 0
    const h = height ?? tip
    if (h < 1 || h > tip) return null
    const [bytes, certBytes] = await Promise.all([this.d.chain.blockBytes(h), this.d.chain.certificateBytes(h)])
    if (bytes === undefined || certBytes === undefined) return null
    const limits = this.d.genesis.params.block
    const s = decodeStoredBlock(bytes, { maxBytes: limits.maxBytes, maxTxs: limits.maxTxs })
    const c = decodeCommitCertificate(certBytes)
    if (!s.ok || !c.ok) throw new Error(`stored block ${h} is corrupt`)
    const receipts = (await this.d.chain.txLocations(s.value.block.txs.map((t) => sha256(t))))
      .map((loc) => (loc ? { ok: loc.ok, ...(loc.code ? { code: loc.code } : {}) } : { ok: true }))
    return blockInfo(h, blockHash(s.value.block.header), s.value.block, s.value.lastCommit, c.value, receipts)
  }

  getValidators(): ValidatorInfo[] {
    return this.d.genesis.validators.map((v) => ({ address: v.address, publicKey: v.publicKey, power: v.power, peerId: v.peerId }))
  }

  health(): HealthState {
    if (this.d.catchingUp()) return { healthy: false, reason: 'catching up' }
    if (this.d.peerCount() === 0 && this.d.genesis.validators.length > 1) return { healthy: false, reason: 'no peers' }
    return { healthy: true }
  }

  getEvidence(): readonly DomainValue[] {
    return this.d.evidence()
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
