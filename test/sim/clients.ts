import { addressFromPublicKey, type KeyPair } from '../../crypto/index.js'
import { encodeTransaction, signTransaction, txHash, type DecodedTransaction } from '../../ledger/transaction.js'
import type { Rng } from '../helpers/random.js'
import type { Scheduler } from './scheduler.js'
import type { SimNetwork } from './simNetwork.js'
import type { SimValidator } from './simNode.js'

/**
 * Simulated wallets: each funded genesis account signs transfers with consecutive nonces and submits them to a
 * validator's mempool, as `tx_submit` does; a validator that admits one gossips it to the others (when the run gossips
 * transactions at all: otherwise validators get them only through the proposal's transaction fetch). A wallet reads
 * its committed nonce from a running honest validator now and then and submits its pending transfers again to another
 * validator when they are slow to commit (the one it chose may have crashed with them).
 */

/** Options of the wallets. */
export interface ClientOptions {
  /** Shortest and longest pause between two submissions of one wallet. */
  readonly intervalMs: readonly [number, number]
  /** Validators gossip admitted transactions to each other. */
  readonly txGossip: boolean
  /** Transfers a wallet keeps in flight. */
  readonly maxPending?: number
  /** Submissions stop at this virtual time. */
  readonly untilMs?: number
}

interface Wallet {
  readonly keys: KeyPair
  readonly address: Uint8Array
  next: bigint
  readonly pending: DecodedTransaction[]
  lastSubmit: number
  lastProgress: number
}

export class Clients {
  private readonly wallets: Wallet[]
  /** Transfers submitted (first submissions). */
  submitted = 0

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly chainId: string,
    private readonly nodes: readonly SimValidator[],
    private readonly network: SimNetwork,
    accounts: readonly KeyPair[],
    private readonly o: ClientOptions,
  ) {
    this.wallets = accounts.map((keys) => ({ keys, address: addressFromPublicKey(keys.publicKey), next: 0n, pending: [], lastSubmit: 0, lastProgress: 0 }))
  }

  start(): void {
    for (const w of this.wallets) this.schedule(w)
  }

  private schedule(w: Wallet): void {
    const [lo, hi] = this.o.intervalMs
    const at = this.sched.now + lo + this.rng.int(Math.max(1, hi - lo))
    if (this.o.untilMs !== undefined && at > this.o.untilMs) return
    this.sched.at(at, null, () => {
      void this.tick(w)
      this.schedule(w)
    })
  }

  private running(): SimValidator[] {
    return this.nodes.filter((n) => n.peer() !== undefined && n.inc?.mempool !== undefined)
  }

  private async tick(w: Wallet): Promise<void> {
    const honest = this.running().filter((n) => n.honest && n.inc?.ledger !== undefined)
    if (honest.length > 0) {
      const node = this.rng.pick(honest)
      const account = await node.inc!.ledger!.getAccount(w.address)
      const before = w.pending.length
      while (w.pending.length > 0 && w.pending[0]!.tx.nonce < account.nonce) w.pending.shift()
      if (w.pending.length < before) w.lastProgress = this.sched.now
      if (w.pending.length === 0 && w.next < account.nonce) w.next = account.nonce
    }
    const targets = this.running()
    if (targets.length === 0) return
    const stuck = w.pending.length > 0 && this.sched.now - Math.max(w.lastProgress, w.lastSubmit) > 4_000
    if (stuck) {
      const node = this.rng.pick(targets)
      w.lastSubmit = this.sched.now
      for (const t of [...w.pending]) await this.submit(node, t)
      return
    }
    if (w.pending.length >= (this.o.maxPending ?? 3)) return
    const to = this.rng.chance(0.5) ? this.rng.pick(this.wallets).address : this.rng.bytes(20)
    const signed = signTransaction(
      { chainId: this.chainId, from: w.keys.publicKey, to, amount: BigInt(1 + this.rng.int(100)), nonce: w.next },
      w.keys.secretKey,
    )
    const bytes = encodeTransaction(signed)
    const tx: DecodedTransaction = { tx: signed, bytes, hash: txHash(bytes) }
    w.next++
    w.pending.push(tx)
    w.lastSubmit = this.sched.now
    this.submitted++
    await this.submit(this.rng.pick(targets), tx)
  }

  private async submit(node: SimValidator, tx: DecodedTransaction): Promise<void> {
    const mempool = node.inc?.mempool
    if (mempool === undefined || node.peer() === undefined) return
    const r = await mempool.add(tx.bytes)
    if (!r.ok || !this.o.txGossip || node.peer() === undefined) return
    const targets = node.hooks.gossipTargets?.(node) ?? this.nodes.map((n) => n.index).filter((i) => i !== node.index)
    for (const to of targets) this.network.sendTxs(node.index, to, [tx.bytes])
  }
}
