import { to0x } from '../../../crypto/bytes.js'
import { parseAddress } from '../../../crypto/address.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { rpc } from '../../e2e/harness.js'

/** A transfer a node reported committed, with the height it reported. */
export interface CommittedTransfer {
  readonly hash: string
  readonly height: number
  readonly from: string
  readonly to: string
  readonly amount: bigint
  /** Whether it executed (a committed transfer can have failed). */
  readonly ok: boolean
  /** The node that reported the commit. */
  readonly url: string
}

/** A sender's key, as `tallyd testnet` writes dev keys. */
export interface SenderKey {
  readonly secretKey: Uint8Array
  readonly address: string
}

/**
 * Wallet load that remembers what it was told: each sender signs a few transfers with consecutive nonces, submits
 * them with `tx_submit` to one node (a different node each round), and follows each with `tx_get` on that node until
 * it is reported committed, which it records in {@link committed} with its height. Failures (a node down, a nonce
 * taken by a transfer that committed after a restart) end the round; the next one starts from the node's next nonce.
 * A transfer whose commit was never reported is not recorded, whatever became of it.
 */
export class WalletLoad {
  /** Every transfer reported committed, in the order the reports arrived. */
  readonly committed: CommittedTransfer[] = []
  private stopped = false
  private running: Promise<void>[] = []
  private round = 0

  constructor(
    private readonly senders: readonly SenderKey[],
    private readonly chainId: string,
    private readonly urls: readonly string[],
    private readonly recipients: readonly string[],
    private readonly perRound = 4,
  ) {}

  /** Starts one submitting loop per sender. */
  start(): void {
    this.running = this.senders.map((s, i) => this.run(s, i))
  }

  /** Stops the loops and waits for them (each in-flight call has a short deadline). */
  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.running)
  }

  private async run(sender: SenderKey, index: number): Promise<void> {
    while (!this.stopped) {
      const url = this.urls[(index + this.round++) % this.urls.length]!
      try {
        await this.oneRound(sender, url)
      } catch {
        // the node is down or refused the transfer: back off briefly, then try the next node
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }

  private async oneRound(sender: SenderKey, url: string): Promise<void> {
    const nonce = BigInt(await rpc<string>(url, 'ledger_getNextNonce', [sender.address], 2_000))
    const sent: { hash: string; to: string; amount: bigint }[] = []
    for (let k = 0; k < this.perRound; k++) {
      const to = this.recipients[(this.round + k) % this.recipients.length]!
      const amount = BigInt(1 + ((this.round + k) % 9))
      const t = createTransfer(sender.secretKey, { chainId: this.chainId, to: parseAddress(to)!, amount, nonce: nonce + BigInt(k) })
      await rpc(url, 'tx_submit', [to0x(t.bytes)], 2_000)
      sent.push({ hash: to0x(t.hash), to, amount })
    }
    const deadline = Date.now() + 15_000
    while (sent.length > 0 && !this.stopped && Date.now() < deadline) {
      const { hash, to, amount } = sent[0]!
      const r = await rpc<{ status: string; height?: number; ok?: boolean }>(url, 'tx_get', [hash], 2_000)
      if (r.status === 'committed') {
        this.committed.push({ hash, height: r.height!, from: sender.address, to, amount, ok: r.ok === true, url })
        sent.shift()
      } else if (r.status === 'pending') {
        await new Promise((resolve) => setTimeout(resolve, 100))
      } else {
        return // rejected or unknown: it will not commit through this node
      }
    }
  }
}
