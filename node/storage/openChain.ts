import { fork } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js'
import { encodeCanonical } from '../../crypto/canonical.js'
import { GENESIS_HASH_TAG, genesisHash, genesisState, type CompactGenesis, type Genesis, type GenesisHeader } from '../../genesis/genesis.js'
import { LedgerState } from '../../ledger/ledgerState.js'
import type { KvOp, KvStore } from '../../ledger/store.js'
import type { Logger } from '../logger.js'
import { ChainStore } from './chainStore.js'
import { DEFAULT_BLOCK_CACHE_BYTES, LevelKvStore } from './levelKvStore.js'
import { StagedKvStore } from './stagedKvStore.js'

/** Key of the genesis hash the database was initialised with: 'Mgen'. */
const GENESIS_KEY = new Uint8Array([0x4d, 0x67, 0x65, 0x6e])
/**
 * Key of the genesis file the database's genesis hash was computed from: 'Mgfi' → `canonical([format tag, SHA-256 of
 * the file's bytes])`, the format tag being the genesis hash's (genesis/genesis.ts), so that another genesis format
 * checks the file again.
 */
const GENESIS_FILE_KEY = new Uint8Array([0x4d, 0x67, 0x66, 0x69])

/**
 * The genesis a chain database is opened with: its header, and its file, read whole only when the database needs its
 * balances (node/cli/home.ts, `HomeGenesis`).
 */
export interface GenesisSource extends GenesisHeader {
  readonly file: {
    readonly path: string
    /** SHA-256 of the file's bytes, those the header was read from. */
    readonly digest: Uint8Array
    /** The file's length in bytes. */
    readonly size: number
    /** The whole genesis from those same bytes, validated; throws naming every problem. */
    readAll(): Genesis | CompactGenesis
  }
}

/** The chain database of a home, opened. */
export interface OpenedChain {
  /** The database itself (to close it). */
  readonly kv: LevelKvStore
  /** The database as the node reads and writes it: the ledger and the chain store read through it. */
  readonly staged: StagedKvStore
  readonly ledger: LedgerState
  readonly chain: ChainStore
}

/** Where a genesis is read whole, when it must be: in this process, or in a child process that exits afterwards. */
export type GenesisWork = 'inline' | 'child'

/**
 * Genesis files from this size on are read whole, and their state seeded, in a child process by default: what a
 * large genesis allocates (V8's heap grown to hold it, LevelDB's and malloc's buffers) then goes away with that
 * process instead of staying in the node's resident memory for its whole life. About 11,000 balances.
 */
export const CHILD_GENESIS_BYTES = 1024 * 1024

/** How {@link openChain} opens a chain database. */
export interface OpenChainOptions {
  /** Where a genesis is read whole when it must be (default: `'child'` from {@link CHILD_GENESIS_BYTES} on). */
  readonly work?: GenesisWork
  /** LevelDB's block cache of the open database (default {@link DEFAULT_BLOCK_CACHE_BYTES}; `storage.blockCacheBytes`). */
  readonly blockCacheBytes?: number
}

/**
 * Opens the chain database at `path`, initialising it with the genesis state on first start. A database initialised
 * with another genesis is refused (it belongs to another chain).
 *
 * The database keeps its genesis hash and the digest of the genesis file it was computed from. At a start with the
 * same file (same bytes), the stored hash is the file's: its balances were validated and hashed when the database was
 * seeded, so they are not read again. Another file (edited, or another genesis) is read whole, validated and hashed
 * as on the first start: the same genesis hash is accepted (and its digest kept), another refused. That reading and
 * the seeding happen in a child process for a large file (`options.work`).
 */
export async function openChain(path: string, genesis: GenesisSource, logger: Logger, options: OpenChainOptions = {}): Promise<OpenedChain> {
  const work = options.work ?? (genesis.file.size >= CHILD_GENESIS_BYTES ? 'child' : 'inline')
  const gHash = await prepareGenesis(path, genesis, logger, work)
  const kv = await LevelKvStore.open(path, { cacheSizeBytes: options.blockCacheBytes ?? DEFAULT_BLOCK_CACHE_BYTES })
  try {
    const stored = await kv.get(GENESIS_KEY)
    if (stored === undefined || !bytesEqual(stored, gHash)) throw new Error(`${path} belongs to another genesis; move it away to start this chain`)
    const staged = new StagedKvStore(kv)
    return { kv, staged, ledger: await LedgerState.open(staged), chain: new ChainStore(staged) }
  } catch (e) {
    await kv.close()
    throw e
  }
}

/** LevelDB's block cache while seeding or checking a genesis: the seeding reads back little. */
const SEEDING_CACHE_BYTES = 8 * 1024 * 1024

/** What the database keeps of the genesis file it was seeded from (see {@link GENESIS_FILE_KEY}). */
function fileRecord(digest: Uint8Array): Uint8Array {
  return encodeCanonical([GENESIS_HASH_TAG, digest])
}

/** What reading a genesis whole did to the database. */
export interface GenesisWorkResult {
  readonly genesisHash: Uint8Array
  /** `seeded`: the database was new (`accounts` funded); `checked`: it held this genesis, from another file. */
  readonly outcome: 'seeded' | 'checked'
  readonly accounts: number
}

/**
 * Makes sure the database holds the state of `genesis` and returns its genesis hash. The database's genesis file is
 * checked here; when it is not this very file, the genesis is read whole (as `work` says) to seed or check it.
 */
async function prepareGenesis(path: string, genesis: GenesisSource, logger: Logger, work: GenesisWork): Promise<Uint8Array> {
  if (existsSync(join(path, 'CURRENT'))) {
    const kv = await LevelKvStore.open(path, { cacheSizeBytes: SEEDING_CACHE_BYTES })
    try {
      const stored = await kv.get(GENESIS_KEY)
      const record = await kv.get(GENESIS_FILE_KEY)
      if (stored !== undefined && record !== undefined && bytesEqual(record, fileRecord(genesis.file.digest))) return stored
    } finally {
      await kv.close()
    }
  }
  const r = work === 'child' ? await readGenesisInChild(path, genesis) : await seedOrCheckGenesis(path, genesis)
  const facts = { chainId: genesis.chainId, genesisHash: toHex(r.genesisHash), accounts: r.accounts }
  if (r.outcome === 'seeded') logger.info(facts, 'initialised the genesis state')
  else logger.info(facts, 'the genesis file is not the one the database was seeded from, but its genesis is')
  return r.genesisHash
}

/**
 * Reads `genesis` whole and seeds the database at `path` with it (a new database, created only once the genesis has
 * passed validation), or checks that the database holds its genesis hash and records this file as its genesis file.
 * Runs with a small block cache and closes the database again, so that what seeding allocated inside LevelDB is
 * released before the node opens it for good.
 */
export async function seedOrCheckGenesis(path: string, genesis: GenesisSource): Promise<GenesisWorkResult> {
  const exists = existsSync(join(path, 'CURRENT'))
  const whole = genesis.file.readAll()
  const gHash = genesisHash(whole)
  const record = fileRecord(genesis.file.digest)
  const accounts = Array.isArray(whole.balances) ? whole.balances.length : (whole as CompactGenesis).balances.count
  if (!exists) mkdirSync(dirname(path), { recursive: true })
  const kv = await LevelKvStore.open(path, { cacheSizeBytes: SEEDING_CACHE_BYTES })
  try {
    const stored = await kv.get(GENESIS_KEY)
    if (stored !== undefined) {
      if (!bytesEqual(gHash, stored)) throw new Error(`${path} belongs to another genesis; move it away to start this chain`)
      await kv.write([{ type: 'put', key: GENESIS_FILE_KEY, value: record }])
      return { genesisHash: gHash, outcome: 'checked', accounts }
    }
    // The genesis hash is written last, synced, once the seeding is complete: a database without it holds a seeding
    // cut short (by a crash, even one after the state's root was written), maybe of another genesis. Start from nothing.
    await kv.db.clear()
    await genesisState(whole, unsyncedWrites(kv))
    // synced: what the seeding wrote before is on disk too (LevelDB's log keeps writes in order)
    await kv.write([
      { type: 'put', key: GENESIS_KEY, value: gHash },
      { type: 'put', key: GENESIS_FILE_KEY, value: record },
    ])
    return { genesisHash: gHash, outcome: 'seeded', accounts }
  } finally {
    await kv.close()
  }
}

/**
 * The database as a store whose writes are not synced one by one: a seeding cut short by a crash is seeded again
 * from nothing, and the write that completes it (the genesis hash) is synced.
 */
function unsyncedWrites(kv: LevelKvStore): KvStore {
  return {
    get: (key) => kv.get(key),
    getMany: (keys) => kv.getMany(keys),
    readPrefix: (prefix) => kv.readPrefix(prefix),
    write: async (ops: readonly KvOp[]) => {
      const batch = kv.db.batch()
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value)
        else batch.del(op.key)
      }
      await batch.write()
    },
  }
}

/** The reply of the child process (node/storage/genesisWorker.ts). */
export type GenesisWorkerReply =
  | { readonly ok: true; readonly genesisHash: string; readonly outcome: 'seeded' | 'checked'; readonly accounts: number }
  | { readonly ok: false; readonly message: string }

/** {@link seedOrCheckGenesis} in a child process, which reads the genesis file again and checks it is the same. */
async function readGenesisInChild(path: string, genesis: GenesisSource): Promise<GenesisWorkResult> {
  const child = fork(new URL('./genesisWorker.js', import.meta.url), [path, genesis.file.path, toHex(genesis.file.digest)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // the node's flags, but a debugger's port, which the node holds
    execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
  })
  let reply: GenesisWorkerReply | undefined
  child.on('message', (m) => {
    reply = m as GenesisWorkerReply
  })
  const exit = await new Promise<string>((resolve) => {
    child.once('error', (e) => resolve(e.message))
    child.once('exit', (code, signal) => resolve(signal !== null ? `signal ${signal}` : `exit code ${code}`))
  })
  if (reply === undefined) throw new Error(`reading the genesis in a child process failed (${exit})`)
  if (!reply.ok) throw new Error(reply.message)
  return { genesisHash: fromHex(reply.genesisHash)!, outcome: reply.outcome, accounts: reply.accounts }
}
