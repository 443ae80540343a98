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
  const kv = await LevelKvStore.open(path)
  try {
    const gHash = genesisHash(genesis)
    const stored = await kv.get(GENESIS_KEY)
    let ledger: LedgerState
    if (stored === undefined) {
      ledger = await genesisState(genesis, kv)
      await kv.write([{ type: 'put', key: GENESIS_KEY, value: gHash }])
      logger.info({ chainId: genesis.chainId, genesisHash: toHex(gHash) }, 'initialised the genesis state')
    } else {
      if (!bytesEqual(stored, gHash)) throw new Error(`${path} belongs to another genesis; move it away to start this chain`)
      ledger = await LedgerState.open(kv)
    }
    return { kv, ledger, chain: new ChainStore(kv) }
  } catch (e) {
    await kv.close()
    throw e
  }
}
