import { readFileSync } from 'node:fs'
import { fromHex, to0x } from '../../crypto/bytes.js'
import { parseAddress } from '../../crypto/address.js'
import { createTransfer } from '../../ledger/transaction.js'
import { rpc } from './harness.js'

/** Reads the secret key of a plaintext dev key file (as `tallyd testnet` writes them). */
export function readDevKey(path: string): { secretKey: Uint8Array; address: string } {
  const k = JSON.parse(readFileSync(path, 'utf8')) as { secretKey: string; address: string }
  return { secretKey: fromHex(k.secretKey, 32)!, address: k.address }
}

/**
 * A background load: signs transfers from one key in-process and submits them over JSON-RPC to a rotating set of
 * nodes until stopped. Counts what was admitted.
 */
export class Load {
  admitted = 0
  private stopped = false
  private done: Promise<void> | undefined
  private nonce = 0n

  constructor(
    private readonly key: { secretKey: Uint8Array; address: string },
    private readonly chainId: string,
    private readonly urls: () => string[],
    private readonly to: string,
  ) {}

  /** Starts submitting, one transaction per `intervalMs`. */
  async start(intervalMs = 20): Promise<void> {
    const acct = await rpc<{ nonce: string }>(this.urls()[0]!, 'ledger_getAccount', [this.key.address])
    this.nonce = BigInt(acct.nonce)
    this.done = (async () => {
      let i = 0
      while (!this.stopped) {
        const urls = this.urls()
        const t = createTransfer(this.key.secretKey, { chainId: this.chainId, to: parseAddress(this.to)!, amount: 1n, nonce: this.nonce })
        try {
          await rpc(urls[i++ % urls.length]!, 'tx_submit', [to0x(t.bytes)], 2_000)
          this.nonce++
          this.admitted++
        } catch {
          // a node may be down or the nonce raced a restart: re-read it and go on
          try {
            const a = await rpc<{ nonce: string }>(urls[i % urls.length]!, 'ledger_getAccount', [this.key.address], 2_000)
            const pending = await rpc<string>(urls[i % urls.length]!, 'ledger_getNextNonce', [this.key.address], 2_000).catch(() => a.nonce)
            this.nonce = BigInt(pending)
          } catch {
            /* next round */
          }
        }
        await new Promise((r) => setTimeout(r, intervalMs))
      }
    })()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.done
  }
}
