import { toHex } from '../crypto/bytes.js'

/**
 * The narrow storage interface the ledger reads and writes through.
 *
 * Async because the node's implementation is classic-level (node/storage/levelKvStore.ts). The ledger owns every key
 * whose first byte is {@link LEDGER_KEY_PREFIX} ('L'); other first bytes belong to the node (blocks, indexes), which
 * shares the same database. The ledger never writes during execution: it returns {@link KvOp}s, and the node writes
 * them in ONE atomic batch together with its block, so a crash leaves either the whole height or none of it.
 */

/** First byte of every key the ledger owns (ASCII 'L'). */
export const LEDGER_KEY_PREFIX = 0x4c

/** One write in an atomic batch. Within a batch, a later op on the same key wins. */
export type KvOp = { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array } | { readonly type: 'del'; readonly key: Uint8Array }

/** A byte-keyed, byte-valued store with batched atomic writes. Returned values must not be mutated by callers. */
export interface KvStore {
  /** The value under `key`, or undefined. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  /** The values under `keys`, in the same order; undefined where absent. */
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>
  /** Applies all ops atomically, in order (a later op on the same key wins). */
  write(ops: readonly KvOp[]): Promise<void>
  /** Every entry whose key begins with `prefix`, in key order (bytewise). */
  readPrefix(prefix: Uint8Array): Promise<KvEntry[]>
}

/** A key and its value, as {@link KvStore.readPrefix} returns them. */
export interface KvEntry {
  readonly key: Uint8Array
  readonly value: Uint8Array
}

/** The first key after every key that begins with `prefix` (undefined when none is: the prefix is all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = new Uint8Array(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++
      return end.subarray(0, i + 1)
    }
  }
  return undefined
}

/**
 * An in-memory {@link KvStore}: the reference implementation for tests, simulations and pure computations
 * (genesis state roots). Values are copied on write, so callers may reuse their buffers.
 */
export class MemoryKvStore implements KvStore {
  private readonly map = new Map<string, { key: Uint8Array; value: Uint8Array }>()

  /** Number of keys stored. */
  get size(): number {
    return this.map.size
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.map.get(toHex(key))?.value
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return keys.map((k) => this.map.get(toHex(k))?.value)
  }

  async write(ops: readonly KvOp[]): Promise<void> {
    // Validate the whole batch before applying any of it: all or nothing.
    for (const op of ops) {
      if (!(op.key instanceof Uint8Array)) throw new TypeError('MemoryKvStore: key must be a Uint8Array')
      if (op.type === 'put' && !(op.value instanceof Uint8Array)) throw new TypeError('MemoryKvStore: value must be a Uint8Array')
      if (op.type !== 'put' && op.type !== 'del') throw new TypeError('MemoryKvStore: unknown op type')
    }
    for (const op of ops) {
      const id = toHex(op.key)
      if (op.type === 'put') this.map.set(id, { key: new Uint8Array(op.key), value: new Uint8Array(op.value) })
      else this.map.delete(id)
    }
  }

  async readPrefix(prefix: Uint8Array): Promise<KvEntry[]> {
    return this.sorted(toHex(prefix))
  }

  /** Every entry, sorted by key bytes. For tests and debugging. */
  entries(): KvEntry[] {
    return this.sorted('')
  }

  /** The entries whose hex key begins with `hexPrefix`, sorted by key bytes (hex order equals byte order). */
  private sorted(hexPrefix: string): KvEntry[] {
    const out: [string, KvEntry][] = []
    for (const [id, e] of this.map) if (id.startsWith(hexPrefix)) out.push([id, e])
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e)
  }
}
