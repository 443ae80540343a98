import { bytesKey } from '../../crypto/bytes.js'
import type { KvOp, KvStore } from '../../ledger/store.js'

/**
 * A {@link KvStore} over another whose writes can be staged: staged ops read back at once, as if written, and reach
 * the store with the next write, in the same atomic batch. The node stages the heights block sync applies back to back,
 * so that they share one synced write (node/host/consensusHost.ts); every other write goes through as it is.
 *
 * Reads see the staged ops, then those of a write under way (until the store has them), then the store. Writes reach
 * the store one at a time, in the order they were made. A write that fails leaves what it carried unwritten and
 * unread (the node stops on it). Staged ops are read back as they were given: their buffers must not change until they
 * are written.
 */
export class StagedKvStore implements KvStore {
  /** Staged ops by key, the latest one for each. */
  private staged = new Map<string, KvOp>()
  /** The ops of the writes under way, oldest first. */
  private readonly writing: Map<string, KvOp>[] = []
  private tail: Promise<void> = Promise.resolve()

  constructor(private readonly base: KvStore) {}

  /** Number of keys staged and not written yet. */
  get stagedKeys(): number {
    return this.staged.size
  }

  /** Stages ops to go with the next write (a later op on the same key wins). */
  stage(ops: readonly KvOp[]): void {
    for (const op of ops) {
      const k = bytesKey(op.key)
      this.staged.delete(k)
      this.staged.set(k, op)
    }
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const op = this.find(bytesKey(key))
    if (op !== undefined) return op.type === 'put' ? op.value : undefined
    return this.base.get(key)
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (this.staged.size === 0 && this.writing.length === 0) return this.base.getMany(keys)
    const out: (Uint8Array | undefined)[] = new Array(keys.length)
    const rest: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const op = this.find(bytesKey(keys[i]!))
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

  /** Writes the staged ops and then `ops` (a later op on the same key wins) in one atomic batch. */
  write(ops: readonly KvOp[]): Promise<void> {
    this.stage(ops)
    if (this.staged.size === 0) return this.tail
    const batch = this.staged
    this.staged = new Map()
    this.writing.push(batch)
    const done = this.tail.then(() => this.base.write([...batch.values()]))
    const settled = done.finally(() => {
      const i = this.writing.indexOf(batch)
      if (i >= 0) this.writing.splice(i, 1)
    })
    this.tail = settled.catch(() => undefined)
    return settled
  }

  /** The latest staged or unwritten op on a key. */
  private find(k: string): KvOp | undefined {
    const op = this.staged.get(k)
    if (op !== undefined) return op
    for (let i = this.writing.length - 1; i >= 0; i--) {
      const w = this.writing[i]!.get(k)
      if (w !== undefined) return w
    }
    return undefined
  }
}
