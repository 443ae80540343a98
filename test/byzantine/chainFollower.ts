import { bytesEqual } from '../../crypto/bytes.js'
import { encodeCommitCertificate, verifyCommit, type CommitCertificate, type ValidatorSet } from '../../consensus/index.js'
import { genesisState, type Genesis } from '../../genesis/genesis.js'
import { ZERO_HASH, blockHash, txRoot } from '../../ledger/block.js'
import type { LedgerState } from '../../ledger/ledgerState.js'
import { MemoryKvStore } from '../../ledger/store.js'
import { decodeTransaction, type DecodedTransaction } from '../../ledger/transaction.js'
import { VerifiedTxCache } from '../../ledger/verifiedTxCache.js'
import type { P2p } from '../../node/p2p/p2p.js'
import { BLOCK_PROTOCOL } from '../../node/sync/blockSync.js'
import { decodeBlockResponse, encodeHeightRequest } from '../../node/sync/blockSyncMessages.js'
import { encodeStoredBlock, type StoredBlock } from '../../node/storage/storedBlock.js'

/**
 * The attacker's copy of the chain: certified blocks fetched from honest peers over `/tally/block/1`, each checked
 * (certificate, parent hash, transaction root) and executed with signature checks into an in-memory ledger, whose
 * state root must then equal the header's. It gives the attacker what an honest proposer needs to build a block the
 * honest validators would accept: the tip, the state to execute candidate transactions on, and the certificate of
 * the tip (the next block's last commit).
 */

/** A block the follower holds, with the bytes it serves for it. */
export interface FollowedBlock {
  readonly height: number
  readonly hash: Uint8Array
  readonly stored: StoredBlock
  readonly certificate: CommitCertificate
  /** The response bytes exactly as the honest peer sent them (stored block, certificate). */
  readonly storedBytes: Uint8Array
  readonly certificateBytes: Uint8Array
}

/** Options of {@link ChainFollower}. */
export interface ChainFollowerOptions {
  readonly genesis: Genesis
  readonly validatorSet: ValidatorSet
  /** Peers to fetch from (the honest validators), tried in turn. */
  readonly sources: () => readonly string[]
}

export class ChainFollower {
  private readonly blocks = new Map<number, FollowedBlock>()
  private readonly verified = new VerifiedTxCache()
  private fetching: Promise<void> | undefined
  private listeners: ((b: FollowedBlock) => void)[] = []
  private turn = 0

  private constructor(
    private readonly o: ChainFollowerOptions,
    private readonly p2p: P2p,
    private readonly kv: MemoryKvStore,
    private readonly ledger: LedgerState,
  ) {}

  /** A follower at the genesis state. */
  static async create(o: ChainFollowerOptions, p2p: P2p): Promise<ChainFollower> {
    const kv = new MemoryKvStore()
    return new ChainFollower(o, p2p, kv, await genesisState(o.genesis, kv))
  }

  /** Height of the highest block held (0 at genesis). */
  get height(): number {
    return this.blocks.size
  }

  /** The highest block held, undefined at genesis. */
  get tip(): FollowedBlock | undefined {
    return this.blocks.get(this.blocks.size)
  }

  block(height: number): FollowedBlock | undefined {
    return this.blocks.get(height)
  }

  /** Calls `listener` with every block the follower adds, in height order. */
  onBlock(listener: (b: FollowedBlock) => void): void {
    this.listeners.push(listener)
  }

  /** The account of an address in the followed state. */
  async account(address: Uint8Array): Promise<{ balance: bigint; nonce: bigint }> {
    return this.ledger.getAccount(address)
  }

  /** Executes transactions on the followed state without committing them (what a proposer does to get the root). */
  async execute(txs: readonly DecodedTransaction[]): Promise<{ stateRoot: Uint8Array; receipts: readonly { ok: boolean; code?: string }[] }> {
    const r = await this.ledger.execute(txs, { chainId: this.o.genesis.chainId, verified: new VerifiedTxCache(), block: this.blockContext(this.height + 1) })
    return { stateRoot: r.stateRoot, receipts: r.receipts }
  }

  /** The execution context of a block of `height` (the attack testnet never removes offenders, so none are passed). */
  private blockContext(height: number) {
    return { height, governance: this.o.genesis.params.governance }
  }

  /** Fetches every block the sources hold beyond the tip (one run at a time; concurrent callers share it). */
  catchUp(): Promise<void> {
    this.fetching ??= this.fetchAll().finally(() => {
      this.fetching = undefined
    })
    return this.fetching
  }

  private async fetchAll(): Promise<void> {
    for (;;) {
      const next = await this.fetchOne(this.height + 1)
      if (next === undefined) return
      await this.apply(next)
    }
  }

  private async fetchOne(height: number): Promise<FollowedBlock | undefined> {
    const sources = this.o.sources()
    for (let k = 0; k < sources.length; k++) {
      const peer = sources[(this.turn + k) % sources.length]!
      const r = await this.p2p.request(peer, BLOCK_PROTOCOL, encodeHeightRequest(height), {
        timeoutMs: 3_000,
        maxResponseBytes: this.o.genesis.params.block.maxBytes + 256 * 1024,
      })
      if (!r.ok) continue
      const d = decodeBlockResponse(r.value, this.o.genesis.params.block)
      if (!d.ok) throw new Error(`honest peer ${peer} sent an undecodable block ${height}: ${d.error.reason}`)
      if (d.value === null) continue
      this.turn++
      const { stored, certificate } = d.value
      const hash = blockHash(stored.block.header)
      const v = verifyCommit(this.o.validatorSet, this.o.genesis.chainId, height, hash, certificate)
      if (!v.ok) throw new Error(`honest peer ${peer} sent block ${height} with a bad certificate: ${v.error.reason}`)
      // strict canonical decoding means re-encoding gives back exactly the bytes the peer served
      return { height, hash, stored, certificate, storedBytes: encodeStoredBlock(stored), certificateBytes: encodeCommitCertificate(certificate) }
    }
    return undefined
  }

  private async apply(b: FollowedBlock): Promise<void> {
    const header = b.stored.block.header
    const parent = this.tip
    if (header.height !== b.height || !bytesEqual(header.previousBlockHash, parent?.hash ?? ZERO_HASH)) {
      throw new Error(`block ${b.height} does not extend the followed chain`)
    }
    const txs: DecodedTransaction[] = []
    for (const bytes of b.stored.block.txs) {
      const d = decodeTransaction(bytes)
      if (!d.ok) throw new Error(`block ${b.height} holds an undecodable transaction`)
      txs.push(d.value)
    }
    if (!bytesEqual(txRoot(txs.map((t) => t.hash)), header.txRoot)) throw new Error(`block ${b.height}: transaction root mismatch`)
    const result = await this.ledger.execute(txs, { chainId: this.o.genesis.chainId, verified: this.verified, block: this.blockContext(b.height) })
    if (!bytesEqual(result.stateRoot, header.stateRoot)) {
      throw new Error(`block ${b.height}: the followed state root differs from the certified header`)
    }
    await this.kv.write(result.ops)
    this.ledger.commit(result)
    this.blocks.set(b.height, b)
    for (const l of this.listeners) l(b)
  }
}
