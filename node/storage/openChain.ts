import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { bytesEqual, toHex } from '../../crypto/bytes.js'
import { genesisHash, genesisState, type Genesis } from '../../genesis/genesis.js'
import { LedgerState } from '../../ledger/ledgerState.js'
import type { Logger } from '../logger.js'
import { ChainStore } from './chainStore.js'
import { LevelKvStore } from './levelKvStore.js'

/** Key of the genesis hash the database was initialised with: 'Mgen'. */
const GENESIS_KEY = new Uint8Array([0x4d, 0x67, 0x65, 0x6e])

/** The chain database of a home, opened. */
export interface OpenedChain {
  readonly kv: LevelKvStore
  readonly ledger: LedgerState
  readonly chain: ChainStore
}

/**
 * Opens the chain database at `path`, initialising it with the genesis state on first start. A database initialised
 * with another genesis is refused (it belongs to another chain).
 */
export async function openChain(path: string, genesis: Genesis, logger: Logger): Promise<OpenedChain> {
  mkdirSync(dirname(path), { recursive: true })
  const gHash = genesisHash(genesis)
  await seedGenesis(path, genesis, gHash, logger)
  const kv = await LevelKvStore.open(path)
  try {
    const stored = await kv.get(GENESIS_KEY)
    if (stored === undefined || !bytesEqual(stored, gHash)) throw new Error(`${path} belongs to another genesis; move it away to start this chain`)
    return { kv, ledger: await LedgerState.open(kv), chain: new ChainStore(kv) }
  } catch (e) {
    await kv.close()
    throw e
  }
}

/** LevelDB's block cache while seeding: the seeding reads back little, and a node's cache is sized for blocks. */
const SEEDING_CACHE_BYTES = 8 * 1024 * 1024

/**
 * Writes the genesis state into a database that has none, with a small block cache; the database is closed again, so
 * what seeding a large genesis allocated inside LevelDB is released before the node opens it for good.
 */
async function seedGenesis(path: string, genesis: Genesis, gHash: Uint8Array, logger: Logger): Promise<void> {
  const kv = await LevelKvStore.open(path, { cacheSizeBytes: SEEDING_CACHE_BYTES })
  try {
    if ((await kv.get(GENESIS_KEY)) !== undefined) return
    await genesisState(genesis, kv)
    await kv.write([{ type: 'put', key: GENESIS_KEY, value: gHash }])
    logger.info({ chainId: genesis.chainId, genesisHash: toHex(gHash), accounts: genesis.balances.length }, 'initialised the genesis state')
  } finally {
    await kv.close()
  }
}
