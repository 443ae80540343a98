import { addressFromPublicKey } from '../../../crypto/address.js'
import { toHex } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { sha256 } from '../../../crypto/hash.js'
import { decodeTransaction, senderAddress, verifyTransactionSignature, type DecodedTransaction, type Transaction } from '../../../ledger/transaction.js'
import type {
  AccountState,
  BlockInfo,
  CommitInfo,
  HealthState,
  NodeStatus,
  PendingChangesInfo,
  RpcBackend,
  SubmitResult,
  TxCommittedEvent,
  TxLookup,
  Unsubscribe,
  ValidatorInfo,
  ValidatorsUnknown,
} from '../../../rpc/backend.js'

/**
 * A test double of a node for the RPC and wallet tests: an in-memory bank built on the real transaction codec
 * and signature rule, with simple rules (nonces strictly sequential per sender, spending bounded by the
 * committed balance minus pending spends). Blocks are made by `commitBlock()` or, with `autoCommitMs`, on a timer.
 */
export class TestBackend implements RpcBackend {
  readonly chainId: string
  readonly accounts = new Map<string, { balance: bigint; nonce: bigint }>()
  readonly mempool: DecodedTransaction<Transaction>[] = []
  readonly blocks: BlockInfo[] = []
  readonly committed = new Map<string, { height: number; index: number; ok: boolean; error?: string }>()
  readonly validatorKey = keyPairFromSeed(new Uint8Array(32).fill(9))
  /** The validator sets by the height they are in force from (ascending; the first from height 1). */
  readonly validatorSets: { fromHeight: number; validators: ValidatorInfo[] }[] = [
    {
      fromHeight: 1,
      validators: [
        {
          address: addressFromPublicKey(this.validatorKey.publicKey),
          publicKey: this.validatorKey.publicKey,
          power: 10n,
          peerId: '12D3KooWTest',
          name: 'test-validator',
        },
      ],
    },
  ]
  /** What `getPendingChanges` answers (nothing pending by default). */
  pendingChanges: PendingChangesInfo | undefined
  /** Governance votes admitted (kept apart: the test bank commits them with the next block without executing them). */
  readonly governanceVotes: { bytes: Uint8Array; hash: Uint8Array }[] = []
  maxMempool = 1000
  healthy: HealthState = { healthy: true }
  /** When set, every query waits this long first (to test the server's per-call deadline). */
  delayMs = 0
  /** When set, `status` throws (to test internal errors). */
  failStatus = false
  private blockListeners = new Set<(b: BlockInfo) => void>()
  private txListeners = new Set<(e: TxCommittedEvent) => void>()
  private timer: NodeJS.Timeout | undefined

  constructor(options: { chainId?: string; balances?: [Uint8Array, bigint][]; autoCommitMs?: number } = {}) {
    this.chainId = options.chainId ?? 'tally-test'
    for (const [a, b] of options.balances ?? []) this.accounts.set(toHex(a), { balance: b, nonce: 0n })
    if (options.autoCommitMs !== undefined) {
      this.timer = setInterval(() => {
        if (this.mempool.length > 0 || this.governanceVotes.length > 0) this.commitBlock()
      }, options.autoCommitMs)
    }
  }

  /** Stops the auto-commit timer. */
  close(): void {
    clearInterval(this.timer)
  }

  private async pause(): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
  }

  private account(address: Uint8Array): { balance: bigint; nonce: bigint } {
    return this.accounts.get(toHex(address)) ?? { balance: 0n, nonce: 0n }
  }

  private pendingFrom(address: Uint8Array): DecodedTransaction<Transaction>[] {
    const hex = toHex(address)
    return this.mempool.filter((t) => toHex(senderAddress(t.tx)) === hex)
  }

  async status(): Promise<NodeStatus> {
    await this.pause()
    if (this.failStatus) throw new Error('status exploded (secret stack detail)')
    const tip = this.blocks.at(-1)
    return {
      chainId: this.chainId,
      moniker: 'test-node',
      nodeId: '12D3KooWTest',
      height: tip?.height ?? 0,
      blockHash: tip?.hash ?? null,
      blockTime: tip === undefined ? null : Number(tip.header.time),
      validator: addressFromPublicKey(this.validatorKey.publicKey),
      peers: 3,
      catchingUp: false,
    }
  }

  async getAccount(address: Uint8Array): Promise<AccountState> {
    await this.pause()
    return { ...this.account(address) }
  }

  async getNextNonce(address: Uint8Array): Promise<bigint> {
    await this.pause()
    return this.account(address).nonce + BigInt(this.pendingFrom(address).length)
  }

  async submitTx(bytes: Uint8Array): Promise<SubmitResult> {
    await this.pause()
    const d = decodeTransaction(bytes)
    if (!d.ok) return { ok: false, error: { code: 'malformed', reason: d.error.reason } }
    const { tx, hash } = d.value
    if (tx.chainId !== this.chainId) return { ok: false, error: { code: 'wrong_chain', reason: `chain ${tx.chainId} is not ${this.chainId}` } }
    if (!verifyTransactionSignature(tx)) return { ok: false, error: { code: 'invalid_signature', reason: 'signature does not verify' } }
    if (tx.kind === 'governance') {
      // a vote is admitted from a member of the next height's set, and not executed by this test bank
      const set = this.setAt(this.blocks.length + 1)
      if (!set.some((v) => toHex(v.address) === toHex(senderAddress(tx))))
        return { ok: false, error: { code: 'not_validator', reason: 'the signer is not a validator' } }
      if (this.committed.has(toHex(hash)) || this.governanceVotes.some((v) => toHex(v.hash) === toHex(hash)))
        return { ok: false, error: { code: 'duplicate', reason: 'already known' } }
      this.governanceVotes.push({ bytes, hash })
      return { ok: true, value: hash }
    }
    const key = toHex(hash)
    if (this.committed.has(key) || this.mempool.some((t) => toHex(t.hash) === key)) return { ok: false, error: { code: 'duplicate', reason: 'already known' } }
    const from = senderAddress(tx)
    const acct = this.account(from)
    const pending = this.pendingFrom(from)
    const expected = acct.nonce + BigInt(pending.length)
    if (tx.nonce !== expected) return { ok: false, error: { code: 'bad_nonce', reason: `expected nonce ${expected}, got ${tx.nonce}` } }
    const spent = pending.reduce((s, t) => s + t.tx.amount, 0n)
    if (acct.balance - spent < tx.amount) {
      return { ok: false, error: { code: 'insufficient_funds', reason: `balance ${acct.balance - spent} is below ${tx.amount}` } }
    }
    if (this.mempool.length >= this.maxMempool) return { ok: false, error: { code: 'mempool_full', reason: 'mempool is full' } }
    this.mempool.push({ ...d.value, tx })
    return { ok: true, value: hash }
  }

  async getTx(hash: Uint8Array): Promise<TxLookup> {
    await this.pause()
    const key = toHex(hash)
    const c = this.committed.get(key)
    if (c !== undefined) return { status: 'committed', ...c }
    if (this.mempool.some((t) => toHex(t.hash) === key) || this.governanceVotes.some((v) => toHex(v.hash) === key)) return { status: 'pending' }
    return { status: 'unknown' }
  }

  async getBlock(height?: number): Promise<BlockInfo | null> {
    await this.pause()
    if (height === undefined) return this.blocks.at(-1) ?? null
    return this.blocks[height - 1] ?? null
  }

  private setAt(height: number): ValidatorInfo[] {
    return this.validatorSets.filter((e) => e.fromHeight <= height).at(-1)!.validators
  }

  async getCommit(height: number): Promise<CommitInfo | null> {
    await this.pause()
    const b = this.blocks[height - 1]
    return b === undefined ? null : { height: b.height, hash: b.hash, header: b.header, commit: b.commit }
  }

  /** As a node: the set of the next height by default; known up to the tip + 2. */
  async getValidators(height?: number): Promise<readonly ValidatorInfo[] | ValidatorsUnknown> {
    const next = this.blocks.length + 1
    const h = height ?? next
    if (h > next + 1) return { unknown: `the validator set of height ${h} is not known yet: this node knows the sets up to height ${next + 1}` }
    return this.setAt(h)
  }

  async getPendingChanges(): Promise<PendingChangesInfo> {
    const height = this.blocks.length + 1
    return this.pendingChanges ?? { height, totalPower: 10n, voteExpiryHeights: 100, changes: [], scheduled: null }
  }

  async health(): Promise<HealthState> {
    return this.healthy
  }

  onNewBlock(listener: (b: BlockInfo) => void): Unsubscribe {
    this.blockListeners.add(listener)
    return () => this.blockListeners.delete(listener)
  }

  onTxCommitted(listener: (e: TxCommittedEvent) => void): Unsubscribe {
    this.txListeners.add(listener)
    return () => this.txListeners.delete(listener)
  }

  /** Number of listeners attached (to check the server detaches on stop). */
  listenerCount(): number {
    return this.blockListeners.size + this.txListeners.size
  }

  /** Commits the whole mempool (or `extraTxs` for bulk blocks) as the next block and emits events. */
  commitBlock(extraTxs: Uint8Array[] = []): BlockInfo {
    const txs = this.mempool.splice(0)
    const height = this.blocks.length + 1
    const prev = this.blocks.at(-1)?.hash ?? new Uint8Array(32)
    const results: { ok: boolean; error?: string }[] = []
    const events: TxCommittedEvent[] = []
    txs.forEach((t, index) => {
      const from = senderAddress(t.tx)
      const a = this.account(from)
      let r: { ok: boolean; error?: string }
      if (a.nonce !== t.tx.nonce) r = { ok: false, error: 'bad_nonce' }
      else if (a.balance < t.tx.amount) r = { ok: false, error: 'insufficient_funds' }
      else {
        this.accounts.set(toHex(from), { balance: a.balance - t.tx.amount, nonce: a.nonce + 1n })
        const to = this.account(t.tx.to)
        this.accounts.set(toHex(t.tx.to), { balance: to.balance + t.tx.amount, nonce: to.nonce })
        r = { ok: true }
      }
      results.push(r)
      this.committed.set(toHex(t.hash), { height, index, ...r })
      events.push({ hash: t.hash, height, index, ...r })
    })
    // governance votes follow the transfers, committed as they are
    const votes = this.governanceVotes.splice(0)
    for (const v of votes) {
      const index = results.length
      results.push({ ok: true })
      this.committed.set(toHex(v.hash), { height, index, ok: true })
      events.push({ hash: v.hash, height, index, ok: true })
    }
    const allTxs = [...txs.map((t) => t.bytes), ...votes.map((v) => v.bytes), ...extraTxs]
    const header = { chainId: this.chainId, height: BigInt(height), time: 1_700_000_000_000 + height * 1000, previousHash: prev, txCount: allTxs.length }
    const hash = sha256(new TextEncoder().encode(JSON.stringify({ height, prev: toHex(prev), n: allTxs.length })))
    const block: BlockInfo = {
      height,
      hash,
      header,
      txs: allTxs,
      results,
      commit: {
        height: BigInt(height),
        round: 0,
        signatures: [{ validator: addressFromPublicKey(this.validatorKey.publicKey), signature: new Uint8Array(64) }],
      },
    }
    this.blocks.push(block)
    for (const l of [...this.blockListeners]) l(block)
    for (const e of events) for (const l of [...this.txListeners]) l(e)
    return block
  }
}
