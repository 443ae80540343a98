import { readFileSync } from 'node:fs'
import type { BlockView } from '../../e2e/harness.js'
import { rpcBatch, type NamespaceTestnet } from './namespaceTestnet.js'

/** A transfer a client saw committed: its hash and the height it was told. */
export interface SeenCommit {
  readonly hash: string
  readonly height: number
}

type TxView = { status: string; height?: number; ok?: boolean }

const BATCH = 100

function chunks<T>(items: readonly T[], size = BATCH): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

function must<T>(v: unknown): T {
  if (v instanceof Error) throw v
  return v as T
}

/**
 * What must hold after every fault, checked over RPC against the validators named:
 * - agreement: every validator holds the same block (hash and state root) at every height up to the lowest tip,
 *   and each block names its predecessor's hash;
 * - durability: every transfer a client saw committed is committed at the same height on every validator, inside
 *   that block; every transfer a load had admitted is, once any validator reports it committed, committed at the
 *   same height on all of them;
 * - conservation: the balances of the genesis accounts (every transfer in the suite stays among them) add up to
 *   the genesis total, read on each validator at one height.
 */
export class ChainAudit {
  private readonly seen: SeenCommit[] = []
  private readonly admitted: string[] = []
  /** The genesis accounts and their total. */
  readonly accounts: readonly string[]
  readonly supply: bigint

  constructor(private readonly net: NamespaceTestnet) {
    const genesis = JSON.parse(readFileSync(net.genesisFile(), 'utf8')) as { balances: { address: string; amount: string }[] }
    this.accounts = genesis.balances.map((b) => b.address)
    this.supply = genesis.balances.reduce((s, b) => s + BigInt(b.amount), 0n)
  }

  /** Records a transfer a client saw committed. */
  sawCommitted(c: SeenCommit): void {
    this.seen.push(c)
  }

  /** Records transfers a load had admitted (committed or not). */
  sawAdmitted(hashes: readonly string[]): void {
    this.admitted.push(...hashes)
  }

  /** Transfers seen committed so far. */
  get committedCount(): number {
    return this.seen.length
  }

  /** Runs every check on `nodes`; resolves with the height agreed up to. Throws naming the first violation. */
  async check(nodes: readonly number[]): Promise<number> {
    const wanted = Math.max(0, ...this.seen.map((c) => c.height))
    await this.net.waitHeight(wanted, nodes, 60_000)
    const heights = await Promise.all(nodes.map((i) => this.net.height(i, 5_000)))
    if (heights.some((h) => h === undefined)) throw new Error(`a validator does not answer: ${heights.join(',')}`)
    const upTo = Math.min(...(heights as number[]))
    const chain = await this.checkSameChain(nodes, upTo)
    await this.checkSeen(nodes, chain)
    await this.checkAdmitted(nodes)
    for (const i of nodes) await this.checkSupply(i)
    return upTo
  }

  /** Blocks 1..upTo of `nodes`, compared; returns the first node's, with the transaction hashes of each. */
  async checkSameChain(nodes: readonly number[], upTo: number): Promise<Map<number, Set<string>>> {
    const txsAt = new Map<number, Set<string>>()
    const heights = Array.from({ length: upTo }, (_, k) => k + 1)
    for (const part of chunks(heights)) {
      const views = await Promise.all(
        nodes.map(async (i) => {
          const answers = await rpcBatch(
            this.net.rpcUrl(i),
            part.map((h) => ({ method: 'chain_getBlock', params: [h] })),
            20_000,
          )
          return answers.map((a, k) => {
            const b = must<BlockView | null>(a)
            if (b === null) throw new Error(`node${i} has no block ${part[k]}`)
            return b
          })
        }),
      )
      for (let k = 0; k < part.length; k++) {
        const h = part[k]!
        const first = views[0]![k]!
        for (let n = 1; n < nodes.length; n++) {
          const b = views[n]![k]!
          if (b.hash !== first.hash || b.header.stateRoot !== first.header.stateRoot) {
            throw new Error(
              `fork at height ${h}: node${nodes[0]} ${first.hash} (state ${first.header.stateRoot}) vs node${nodes[n]} ${b.hash} (state ${b.header.stateRoot})`,
            )
          }
        }
        txsAt.set(h, new Set((first.txs as unknown as { hash: string }[]).map((t) => t.hash)))
      }
    }
    // the hash chain: each block names the one before it
    let previous: string | undefined
    for (const part of chunks(heights)) {
      const answers = await rpcBatch(
        this.net.rpcUrl(nodes[0]!),
        part.map((h) => ({ method: 'chain_getBlock', params: [h] })),
        20_000,
      )
      for (const a of answers) {
        const b = must<BlockView>(a)
        if (previous !== undefined && b.header.previousBlockHash !== previous)
          throw new Error(`block ${b.height} does not name block ${b.height - 1} (${previous}) as its predecessor`)
        previous = b.hash
      }
    }
    return txsAt
  }

  private async checkSeen(nodes: readonly number[], txsAt: Map<number, Set<string>>): Promise<void> {
    for (const c of this.seen) {
      if (!txsAt.get(c.height)?.has(c.hash)) throw new Error(`transfer ${c.hash}, seen committed at height ${c.height}, is not in that block`)
    }
    for (const i of nodes) {
      for (const part of chunks(this.seen)) {
        const answers = await rpcBatch(
          this.net.rpcUrl(i),
          part.map((c) => ({ method: 'tx_get', params: [c.hash] })),
        )
        answers.forEach((a, k) => {
          const t = must<TxView>(a)
          const c = part[k]!
          if (t.status !== 'committed' || t.height !== c.height || t.ok !== true) {
            throw new Error(`node${i}: transfer ${c.hash}, seen committed at height ${c.height}, is ${JSON.stringify(t)}`)
          }
        })
      }
    }
  }

  private async checkAdmitted(nodes: readonly number[]): Promise<void> {
    const committedAt = new Map<string, number>()
    for (const part of chunks(this.admitted)) {
      const answers = await rpcBatch(
        this.net.rpcUrl(nodes[0]!),
        part.map((hash) => ({ method: 'tx_get', params: [hash] })),
      )
      answers.forEach((a, k) => {
        const t = must<TxView>(a)
        if (t.status === 'committed') committedAt.set(part[k]!, t.height!)
      })
    }
    const hashes = [...committedAt.keys()]
    for (const i of nodes.slice(1)) {
      for (const part of chunks(hashes)) {
        const answers = await rpcBatch(
          this.net.rpcUrl(i),
          part.map((hash) => ({ method: 'tx_get', params: [hash] })),
        )
        answers.forEach((a, k) => {
          const t = must<TxView>(a)
          const hash = part[k]!
          if (t.status !== 'committed' || t.height !== committedAt.get(hash)) {
            throw new Error(`node${i}: transfer ${hash}, committed at height ${committedAt.get(hash)} on node${nodes[0]}, is ${JSON.stringify(t)}`)
          }
        })
      }
    }
  }

  /**
   * The genesis accounts' balances on validator i add up to the genesis total. The balances are read in one
   * batch between two status requests (one after the other); a read across a commit (the heights differ) is taken
   * again.
   */
  async checkSupply(i: number): Promise<void> {
    const url = this.net.rpcUrl(i)
    const status = async () => must<{ height: number }>((await rpcBatch(url, [{ method: 'node_status' }]))[0]).height
    for (let attempt = 0; attempt < 20; attempt++) {
      const before = await status()
      const balances = await rpcBatch(
        url,
        this.accounts.map((a) => ({ method: 'ledger_getBalance', params: [a] })),
      )
      if ((await status()) !== before) continue
      const total = balances.reduce<bigint>((s, a) => s + BigInt(must<string>(a)), 0n)
      if (total !== this.supply) throw new Error(`node${i} at height ${before}: the genesis accounts hold ${total}, genesis gave them ${this.supply}`)
      return
    }
    throw new Error(`node${i}: no read of the balances within one height in 20 attempts`)
  }
}
