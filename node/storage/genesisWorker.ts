import { toHex } from '../../crypto/bytes.js'
import { loadGenesisHeader } from '../cli/home.js'
import { seedOrCheckGenesis, type GenesisWorkerReply } from './openChain.js'

/**
 * The child process that reads a large genesis whole and seeds (or checks) a chain database with it, for
 * `openChain` (node/storage/openChain.ts): arguments `DB_PATH GENESIS_PATH DIGEST_HEX` (the digest of the file the node loaded; another
 * file is refused), one {@link GenesisWorkerReply} over IPC, then exit. It stops when the node goes away.
 */

async function run(): Promise<GenesisWorkerReply> {
  const [dbPath, genesisPath, digest] = process.argv.slice(2)
  if (dbPath === undefined || genesisPath === undefined || digest === undefined) return { ok: false, message: 'genesis worker: missing arguments' }
  try {
    const genesis = loadGenesisHeader(genesisPath)
    if (toHex(genesis.file.digest) !== digest) return { ok: false, message: `${genesisPath} changed while the node was starting; start it again` }
    const r = await seedOrCheckGenesis(dbPath, genesis)
    return { ok: true, genesisHash: toHex(r.genesisHash), outcome: r.outcome, accounts: r.accounts }
  } catch (e) {
    return { ok: false, message: (e as Error).message }
  }
}

if (process.send !== undefined) {
  process.once('disconnect', () => process.exit(1))
  const reply = await run()
  process.send(reply, () => process.exit(0))
}
