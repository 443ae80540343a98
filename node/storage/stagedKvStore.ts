import { bytesEqual, bytesKey } from '../../crypto/bytes.js'
import type { KvEntry, KvOp, KvStore } from '../../ledger/store.js'

/**
 * A {@link KvStore} over another whose writes can be staged: staged ops read back at once, as if written, and reach
 * the store with the next write, in the same atomic batch. The node stages the heights block sync applies back to back,
 * so that they share one synced write (node/host/consensusHost.ts); every other write goes through as it is.
 *
 * Reads see the staged ops, then those of a write under way (until the store has them), then the store. Writes reach
 * the store one at a time, in the order they were made. A write that fails leaves what it carried unwritten and
 * unread (the node stops on it). Staged ops are read back as they were given: their buffers must not change until they
 * are written.
 *
 * Staging is cheap, since most staged ops are never read here (a synced height's block, transaction locations and
 * receipts): ops are kept in the order given and go to the store that way, a later op on a key overriding an earlier
 * one within the batch as the store applies them. A batch's index by key is built on the first read that may find
 * something in it; a read of a key whose two first bytes start none of a batch's keys skips the batch without one
 * (the stores' keys begin with a prefix per kind of record: a tree node's differs from an account's).
 */
export class StagedKvStore implements KvStore {
  private staged = new Batch()
  /** The batches of the writes under way, oldest first. */
  private readonly writing: Batch[] = []
  private tail: Promise<void> = Promise.resolve()

  constructor(private readonly base: KvStore) {}

  /** Number of ops staged and not written yet (an op on a key staged again counts twice). */
  get stagedOps(): number {
    return this.staged.ops.length
  }

  /** Stages ops to go with the next write (a later op on the same key wins). */
  stage(ops: readonly KvOp[]): void {
    this.staged.add(ops)
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const op = this.find(key)
    if (op !== undefined) return op.type === 'put' ? op.value : undefined
    return this.base.get(key)
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (this.staged.ops.length === 0 && this.writing.length === 0) return this.base.getMany(keys)
    const out: (Uint8Array | undefined)[] = new Array(keys.length)
    const rest: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const op = this.find(keys[i]!)
      if (op === undefined) rest.push(i)
      else out[i] = op.type === 'put' ? op.value : undefined
    }
    if (rest.length > 0) {
      const values = await this.base.getMany(rest.map((i) => keys[i]!))
      rest.forEach((i, k) => {
        out[i] = values[k]
      })
    }
    return out
  }

  /** The store's entries under `prefix` as the staged ops and the writes under way leave them. */
  async readPrefix(prefix: Uint8Array): Promise<KvEntry[]> {
    const batches = [...this.writing, this.staged]
    const entries = await this.base.readPrefix(prefix)
    const byKey = new Map<string, KvEntry>()
    for (const e of entries) byKey.set(bytesKey(e.key), e)
    let changed = false
    for (const batch of batches) {
      for (const op of batch.ops) {
        if (op.key.length < prefix.length || !bytesEqual(op.key.subarray(0, prefix.length), prefix)) continue
        changed = true
        if (op.type === 'put') byKey.set(bytesKey(op.key), { key: op.key, value: op.value })
        else byKey.delete(bytesKey(op.key))
      }
    }
    if (!changed) return entries
    return [...byKey.keys()].sort().map((k) => byKey.get(k)!)
  }

  /** Writes the staged ops and then `ops` (a later op on the same key wins) in one atomic batch. */
  write(ops: readonly KvOp[]): Promise<void> {
    this.stage(ops)
    if (this.staged.ops.length === 0) return this.tail
    const batch = this.staged
    this.staged = new Batch()
    this.writing.push(batch)
    const done = this.tail.then(() => this.base.write(batch.ops))
    const settled = done.finally(() => {
      const i = this.writing.indexOf(batch)
      if (i >= 0) this.writing.splice(i, 1)
    })
    this.tail = settled.catch(() => undefined)
    return settled
  }

  /** The latest staged or unwritten op on a key. */
  private find(key: Uint8Array): KvOp | undefined {
    let k: string | undefined
    for (let i = this.writing.length; i >= 0; i--) {
      const batch = i === this.writing.length ? this.staged : this.writing[i]!
      if (!batch.mayHold(key)) continue
      k ??= bytesKey(key)
      const op = batch.latest(k)
      if (op !== undefined) return op
    }
    return undefined
  }
}

/** Ops in the order given, with the two first bytes of their keys, and an index by key built when first needed. */
class Batch {
  readonly ops: KvOp[] = []
  /** The {@link head}s of the ops' keys. */
  private readonly heads = new Set<number>()
  /** The latest op by key among ops[0, indexed). */
  private readonly index = new Map<string, KvOp>()
  private indexed = 0

  add(ops: readonly KvOp[]): void {
    for (const op of ops) {
      this.ops.push(op)
      this.heads.add(head(op.key))
    }
  }

  mayHold(key: Uint8Array): boolean {
    return this.heads.has(head(key))
  }

  latest(k: string): KvOp | undefined {
    for (; this.indexed < this.ops.length; this.indexed++) {
      const op = this.ops[this.indexed]!
      this.index.set(bytesKey(op.key), op)
    }
    return this.index.get(k)
  }
}

/** A key's two first bytes as a number, distinct for shorter keys. */
function head(key: Uint8Array): number {
  const n = key.length
  return n >= 2 ? (key[0]! << 8) | key[1]! : n === 1 ? 0x10000 | key[0]! : 0x20000
}
