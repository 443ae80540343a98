import { ClassicLevel } from 'classic-level'
import { prefixEnd, type KvEntry, type KvOp, type KvStore } from '../../ledger/store.js'

/**
 * LevelDB's block cache of a node's database by default: 8 MiB (`storage.blockCacheBytes` in config.json).
 *
 * On a 64-bit system LevelDB memory-maps its table files (up to 1,000 of them) and reads every block through the
 * mapping. Nearly every block is stored Snappy-compressed, the state tree's too (a node's store key is mostly zero
 * bytes), so the cache holds decompressed copies, and a miss costs one decompression of a block already in the page
 * cache. Under load at a million accounts a larger cache filled with copies that saved no execution time
 * (docs/performance.md, "Memory").
 */
export const DEFAULT_BLOCK_CACHE_BYTES = 8 * 1024 * 1024

/**
 * {@link KvStore} over classic-level (LevelDB), keys and values as Uint8Array ('view' encodings).
 *
 * The node opens one database per home (`DIR/data/`), gives it to the ledger as a KvStore, and keeps its own keys
 * (blocks, indexes) under first bytes other than the ledger's 'L'; `db` is exposed for the node's own range reads.
 */
export class LevelKvStore implements KvStore {
  private constructor(
    /** The underlying database, for the node's own reads (iterators). Write through {@link write}. */
    readonly db: ClassicLevel<Uint8Array, Uint8Array>,
  ) {}

  /**
   * Opens (creating if missing) the database at `path`. `cacheSizeBytes` is LevelDB's block cache (default
   * {@link DEFAULT_BLOCK_CACHE_BYTES}).
   */
  static async open(path: string, options: { cacheSizeBytes?: number } = {}): Promise<LevelKvStore> {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(path, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      cacheSize: options.cacheSizeBytes ?? DEFAULT_BLOCK_CACHE_BYTES,
    })
    try {
      await db.open()
    } catch (e) {
      // LevelDB's lock file: the usual cause is a second tallyd on the same home, which must never run
      if ((e as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED')
        throw new Error(`${path} is locked: another process (a tallyd on this home?) has it open`)
      throw e
    }
    return new LevelKvStore(db)
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return (await this.db.get(key)) ?? undefined
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return []
    const values = await this.db.getMany(keys as Uint8Array[])
    return values.map((v) => v ?? undefined)
  }

  async readPrefix(prefix: Uint8Array): Promise<KvEntry[]> {
    const end = prefixEnd(prefix)
    const entries = await this.db.iterator(end === undefined ? { gte: prefix } : { gte: prefix, lt: end }).all()
    return entries.map(([key, value]) => ({ key, value }))
  }

  /**
   * Writes the ops as one atomic LevelDB batch and resolves once it is on disk (`sync`: LevelDB fsyncs its log before
   * answering). Every caller relies on that: a committed height is reported (to RPC, to the mempool, to the next
   * height's signatures) only after this resolves, so a power failure cannot take back a block the node announced
   * while its safety record, synced too, remembers the votes that followed it.
   * Built with a chained batch: each op goes to the native batch as it is added, where the array form has native
   * code read every op object's fields back, on the main thread.
   */
  async write(ops: readonly KvOp[]): Promise<void> {
    if (ops.length === 0) return
    const batch = this.db.batch()
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value)
        else batch.del(op.key)
      }
    } catch (e) {
      await batch.close()
      throw e
    }
    await batch.write({ sync: true })
  }

  /**
   * LevelDB's own memory, in bytes: what its block cache holds and its write buffers (the memtables). The mapped table
   * files are not counted: they are the operating system's page cache.
   */
  approximateMemoryBytes(): number {
    return Number(this.db.getProperty('leveldb.approximate-memory-usage'))
  }

  /** Closes the database. */
  async close(): Promise<void> {
    await this.db.close()
  }
}
