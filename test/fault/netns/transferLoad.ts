import { parseAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { rpc } from '../../e2e/harness.js'

/**
 * A background load for the faults: signs transfers of 1 from one key in-process and submits them over JSON-RPC,
 * one every `intervalMs`, to the validators `urls()` names at that moment, in turn. Keeps the hash of every
 * transfer a validator admitted, for the audit. On a refusal or an unreachable validator it reads the next nonce
 * again and goes on. Bounded: it stops by itself after `maxTransfers` admissions.
 */
export class TransferLoad {
  readonly admitted: string[] = []
  private stopped = false
  private done: Promise<void> | undefined
  private nonce = 0n

  constructor(
    private readonly key: { secretKey: Uint8Array; address: string },
    private readonly chainId: string,
    private readonly urls: () => string[],
    private readonly to: string,
    private readonly maxTransfers = 20_000,
  ) {}

  /** Starts submitting. */
  async start(intervalMs = 20): Promise<void> {
    const first = this.urls()[0]!
    this.nonce = BigInt(await rpc<string>(first, 'ledger_getNextNonce', [this.key.address], 5_000))
    const to = parseAddress(this.to)!
    this.done = (async () => {
      let i = 0
      while (!this.stopped && this.admitted.length < this.maxTransfers) {
        const urls = this.urls()
        const url = urls[i++ % urls.length]!
        const t = createTransfer(this.key.secretKey, { chainId: this.chainId, to, amount: 1n, nonce: this.nonce })
        try {
          const r = await rpc<{ hash: string }>(url, 'tx_submit', [to0x(t.bytes)], 2_000)
          this.admitted.push(r.hash)
          this.nonce++
        } catch {
          try {
            this.nonce = BigInt(await rpc<string>(urls[i % urls.length]!, 'ledger_getNextNonce', [this.key.address], 2_000))
          } catch {
            /* next round */
          }
        }
        await new Promise((r) => setTimeout(r, intervalMs))
      }
    })()
  }

  /** Stops submitting and waits for the submission under way. */
  async stop(): Promise<void> {
    this.stopped = true
    await this.done
  }
}
