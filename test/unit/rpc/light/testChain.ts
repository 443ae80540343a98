import { addressFromPublicKey } from '../../../../crypto/address.js'
import { toHex, to0x } from '../../../../crypto/bytes.js'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { keyPairFromSeed, sign, type KeyPair } from '../../../../crypto/ed25519.js'
import { sha256 } from '../../../../crypto/hash.js'
import { buildCommitCertificate, commitHash, encodeCommitCertificate, voteSignBytes, type CommitCertificate } from '../../../../consensus/index.js'
import { formatGenesis, genesisState, parseGenesis, type Genesis, type GenesisJson } from '../../../../genesis/genesis.js'
import { ZERO_HASH, blockHash, txRoot, type Block, type BlockHeader } from '../../../../ledger/block.js'
import { rosterAt, type GovernanceAction } from '../../../../ledger/governance.js'
import type { LedgerState } from '../../../../ledger/ledgerState.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import { decodeTransaction, encodeTransaction, signGovernanceTransaction, type DecodedTransaction } from '../../../../ledger/transaction.js'
import { peerIdOf } from '../../../../node/p2p/peerId.js'
import { ValidatorSets } from '../../../../node/host/validatorSets.js'
import { NodeBackend, type NodeBackendDependencies } from '../../../../node/rpcBackend.js'
import { ChainStore, type ChainTip } from '../../../../node/storage/chainStore.js'
import { encodeStoredBlock } from '../../../../node/storage/storedBlock.js'

/**
 * A real chain built in-process for the proof, light-client and wallet tests: the real genesis, ledger state (sparse
 * Merkle tree, governance) and chain store over a memory store, blocks with real headers and commit certificates
 * signed by the validators' keys, written as the consensus host writes them; and the node's RPC backend over it.
 * Validator-set changes go through real governance votes.
 */

const keyCache = new Map<string, KeyPair>()

/** A deterministic key for a label. */
export function testKey(label: string): KeyPair {
  let k = keyCache.get(label)
  if (k === undefined) {
    k = keyPairFromSeed(sha256(encodeCanonical(['light-test-key', label])))
    keyCache.set(label, k)
  }
  return k
}

/** A committed block of the test chain. */
export interface TestBlock {
  readonly height: number
  readonly hash: Uint8Array
  readonly header: BlockHeader
  readonly certificate: CommitCertificate
}

export class TestChain {
  readonly chain: ChainStore
  readonly sets = new ValidatorSets()
  readonly blocks: TestBlock[] = []
  /** The node's RPC backend over this chain (proofs included); `submitTx` refuses: blocks come from `commit`. */
  readonly backend: NodeBackend
  /** Every validator key ever in a set, by address hex. */
  private readonly keys = new Map<string, KeyPair>()
  private tipValue: ChainTip | undefined
  private lastCommit: CommitCertificate | null = null

  private constructor(
    readonly genesis: Genesis,
    readonly kv: MemoryKvStore,
    readonly ledger: LedgerState,
    validatorKeys: readonly KeyPair[],
  ) {
    for (const k of validatorKeys) this.keys.set(toHex(addressFromPublicKey(k.publicKey)), k)
    this.chain = new ChainStore(kv)
    this.sets.record(1, ledger.rosterAt(1))
    this.backend = this.backendWith({})
  }

  /** A backend over this chain with some of its dependencies replaced (to stage races). */
  backendWith(overrides: Partial<NodeBackendDependencies>): NodeBackend {
    const ledger = this.ledger
    return new NodeBackend({
      genesis: this.genesis,
      moniker: 'test',
      chain: this.chain,
      tip: () => this.tipValue,
      getAccount: (a) => ledger.getAccount(a),
      proveAccount: (a) => ledger.proveAccount(a),
      nextNonce: async (a) => (await ledger.getAccount(a)).nonce,
      submit: async () => ({ ok: false, error: { code: 'mempool_full', reason: 'the test chain takes blocks through commit()' } }),
      pending: () => false,
      rejected: () => undefined,
      peerId: 'test',
      peerCount: () => 0,
      catchingUp: () => false,
      validator: null,
      evidence: () => [],
      rosterAt: (h) => this.sets.rosterAt(h),
      governance: () => ledger.governance(),
      ...overrides,
    })
  }

  /**
   * A chain of `validators` validators (power 1 each, keys `testKey('v<i>')`) and the given balances, its genesis time
   * `genesisTimeMs` (default: an hour ago, so block times near now pass the light client's clock checks).
   */
  static async create(
    o: { chainId?: string; validators?: number; balances?: readonly [Uint8Array, bigint][]; genesisTimeMs?: number } = {},
  ): Promise<TestChain> {
    const keys = Array.from({ length: o.validators ?? 4 }, (_, i) => testKey(`v${i}`))
    const parsed = parseGenesis({
      chainId: o.chainId ?? 'light-test',
      genesisTime: new Date(o.genesisTimeMs ?? Date.now() - 3_600_000).toISOString(),
      validators: keys.map((k, i) => ({ name: `v${i}`, publicKey: to0x(k.publicKey), power: 1, peerId: peerIdOf(testKey(`peer${i}`).publicKey) })),
      balances: (o.balances ?? []).map(([a, amount]) => ({ address: to0x(a), amount: amount.toString() })),
      params: { governance: { voteExpiryHeights: 100 } },
    })
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.error.errors))
    const kv = new MemoryKvStore()
    return new TestChain(parsed.value, kv, await genesisState(parsed.value, kv), keys)
  }

  /** The genesis as `genesis.json` holds it. */
  get genesisJson(): GenesisJson {
    return formatGenesis(this.genesis)
  }

  get height(): number {
    return this.tipValue?.height ?? 0
  }

  /** The key of a validator address (hex without 0x, or bytes). */
  keyOf(address: Uint8Array): KeyPair {
    const k = this.keys.get(toHex(address))
    if (k === undefined) throw new Error(`no key for validator ${toHex(address)}`)
    return k
  }

  /**
   * Commits the next block with `txs` (wire bytes; each must apply unless `failing`, which records the failures as
   * the node does), signed by every member of its set (or those `signers` keeps), at `time` (default: one second
   * after the previous block, never before the genesis time).
   */
  async commit(txs: readonly Uint8Array[] = [], o: { time?: number; signers?: (address: Uint8Array) => boolean; failing?: boolean } = {}): Promise<TestBlock> {
    const height = this.height + 1
    const decoded: DecodedTransaction[] = txs.map((bytes) => {
      const d = decodeTransaction(bytes)
      if (!d.ok) throw new Error(`test tx does not decode: ${d.error.reason}`)
      return d.value
    })
    const result = await this.ledger.execute(decoded, {
      chainId: this.genesis.chainId,
      block: { height, governance: this.genesis.params.governance, offenders: [] },
    })
    const failed = result.receipts.findIndex((r) => !r.ok)
    if (failed !== -1 && o.failing !== true) throw new Error(`test tx ${failed} does not apply: ${JSON.stringify(result.receipts[failed])}`)
    const set = this.sets.at(height)
    const previousTime = this.tipValue?.blockTime ?? this.genesis.genesisTimeMs
    const header: BlockHeader = {
      chainId: this.genesis.chainId,
      height,
      time: o.time ?? Math.max(previousTime + 1, Math.min(Date.now(), previousTime + 1000)),
      previousBlockHash: this.tipValue?.blockHash ?? ZERO_HASH,
      txRoot: txRoot(decoded.map((t) => t.hash)),
      stateRoot: result.stateRoot,
      proposer: set.validators[0]!.address,
      validatorSetHash: set.hash,
      nextValidatorSetHash: this.sets.at(height + 1).hash,
      lastCommitHash: this.lastCommit === null ? ZERO_HASH : commitHash(this.lastCommit),
      evidenceRoot: txRoot([]),
    }
    const hash = blockHash(header)
    const precommits = set.validators
      .filter((v) => o.signers?.(v.address) ?? true)
      .map((v) => {
        const body = { type: 'precommit' as const, height, round: 0, valueId: hash }
        return { ...body, validator: v.address, signature: sign(this.keyOf(v.address).secretKey, voteSignBytes(this.genesis.chainId, body)) }
      })
    const certificate = buildCommitCertificate(height, 0, hash, precommits)
    const block: Block = { header, txs: decoded.map((t) => t.bytes), evidence: [] }
    const scheduled = result.governance === undefined ? undefined : rosterAt(result.governance, height + 2)
    const history = this.sets.all.map((e) => ({ fromHeight: e.fromHeight, roster: e.roster }))
    const setsChanged = scheduled !== undefined && this.sets.wouldRecord(height + 2, scheduled)
    await this.kv.write([
      ...result.ops,
      ...this.chain.commitOps({
        height,
        blockHash: hash,
        blockTime: header.time,
        blockBytes: encodeStoredBlock({ block, lastCommit: this.lastCommit }),
        certificateBytes: encodeCommitCertificate(certificate),
        txHashes: decoded.map((t) => t.hash),
        receipts: result.receipts,
      }),
      ...(setsChanged ? [this.chain.validatorSetsOp([...history, { fromHeight: height + 2, roster: scheduled }])] : []),
    ])
    this.ledger.commit(result)
    if (setsChanged) this.sets.record(height + 2, scheduled)
    this.tipValue = { height, blockHash: hash, blockTime: header.time }
    const lastCommit = this.lastCommit
    this.lastCommit = certificate
    this.backend.publishCommitted({
      height,
      hash,
      round: 0,
      block,
      lastCommit,
      certificate,
      txHashes: decoded.map((t) => t.hash),
      receipts: result.receipts,
      touched: result.changed.map((x) => x.address),
      executionMs: 0,
      ledgerAhead: false,
    })
    const b = { height, hash, header, certificate }
    this.blocks.push(b)
    return b
  }

  /** Commits `n` empty blocks. */
  async commitEmpty(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.commit()
  }

  /**
   * Changes the validator set through governance: every member of the next height's set votes for `action` in one
   * block, which completes it; the new set is in force two heights later. Returns that height. A new member's key
   * is `newKey`. One change at a time: a height's changes may move at most a third of the power (ledger/governance.ts).
   */
  async govern(action: GovernanceAction, newKey?: KeyPair): Promise<number> {
    if (newKey !== undefined) this.keys.set(toHex(addressFromPublicKey(newKey.publicKey)), newKey)
    const votes: Uint8Array[] = []
    for (const v of this.sets.at(this.height + 1).validators) {
      const k = this.keyOf(v.address)
      const nonce = (await this.ledger.getAccount(v.address)).nonce
      votes.push(encodeTransaction(signGovernanceTransaction({ chainId: this.genesis.chainId, from: k.publicKey, nonce, action }, k.secretKey)))
    }
    const b = await this.commit(votes)
    return b.height + 2
  }

  /** An add action for a new key (power 1 by default), with a peer id derived from it. */
  static addAction(key: KeyPair, name: string, power = 1): GovernanceAction {
    return { type: 'add', publicKey: key.publicKey, power, name, peerId: peerIdOf(testKey(`peer-${name}`).publicKey) }
  }
}
