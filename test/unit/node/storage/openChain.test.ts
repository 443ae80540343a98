import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toHex } from '../../../../crypto/bytes.js'
import { genesisState, initialStateOps, parseGenesis, type GenesisJson } from '../../../../genesis/genesis.js'
import { accountStoreKey } from '../../../../ledger/account.js'
import { HomeError, loadGenesisHeader, type HomeGenesis } from '../../../../node/cli/home.js'
import { formatGenesisText } from '../../../../node/cli/testnetFiles.js'
import { silentLogger } from '../../../../node/logger.js'
import { LevelKvStore } from '../../../../node/storage/levelKvStore.js'
import { openChain, type GenesisWork } from '../../../../node/storage/openChain.js'
import { loadFixture } from '../../../helpers/fixtures.js'

const golden = () => loadFixture<{ genesis: GenesisJson; stateRoot: string }>('golden/genesis.json')

/** A temporary directory, removed after `f` whatever happens. */
async function inTemp(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-open-chain-'))
  try {
    await f(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The home genesis of `text`, counting how often its balances are read whole. */
function homeGenesis(path: string, text: string): { genesis: HomeGenesis; reads: () => number } {
  writeFileSync(path, text)
  const loaded = loadGenesisHeader(path)
  let reads = 0
  const file = {
    ...loaded.file,
    readAll: () => {
      reads++
      return loaded.file.readAll()
    },
  }
  return { genesis: { ...loaded, file }, reads: () => reads }
}

async function open(db: string, genesis: HomeGenesis, work: GenesisWork) {
  const c = await openChain(db, genesis, silentLogger(), { work })
  const root = toHex(c.ledger.root())
  await c.kv.close()
  return root
}

for (const work of ['inline', 'child'] as const) {
  test(`${work}: a new database is seeded; the same file is not read again; a rewritten file of the same genesis is checked once`, async () => {
    await inTemp(async (dir) => {
      const path = join(dir, 'genesis.json')
      const db = join(dir, 'data', 'chain')
      const g = golden()
      const first = homeGenesis(path, formatGenesisText(g.genesis))
      assert.equal(await open(db, first.genesis, work), g.stateRoot.slice(2))
      assert.equal(first.reads(), work === 'inline' ? 1 : 0) // the child reads the file on its own
      const again = homeGenesis(path, formatGenesisText(g.genesis))
      assert.equal(await open(db, again.genesis, work), g.stateRoot.slice(2))
      assert.equal(again.reads(), 0, 'the file the database was seeded from is not read again')
      const rewritten = homeGenesis(path, JSON.stringify({ ...g.genesis, balances: [...g.genesis.balances].reverse() }))
      assert.equal(await open(db, rewritten.genesis, 'inline'), g.stateRoot.slice(2))
      assert.equal(rewritten.reads(), 1, 'another file of the same genesis is read whole once')
      const later = homeGenesis(path, JSON.stringify({ ...g.genesis, balances: [...g.genesis.balances].reverse() }))
      await open(db, later.genesis, work)
      assert.equal(later.reads(), 0, '... and then remembered')
    })
  })

  test(`${work}: another genesis is refused, and an invalid one creates no database`, async () => {
    await inTemp(async (dir) => {
      const path = join(dir, 'genesis.json')
      const db = join(dir, 'data', 'chain')
      const g = golden().genesis
      await open(db, homeGenesis(path, formatGenesisText(g)).genesis, work)
      const other = homeGenesis(path, formatGenesisText({ ...g, balances: g.balances.slice(1) }))
      await assert.rejects(open(db, other.genesis, work), /belongs to another genesis/)
      const db2 = join(dir, 'other', 'chain')
      const bad = homeGenesis(path, formatGenesisText({ ...g, balances: [...g.balances, { address: '0x12', amount: '1' }] }))
      await assert.rejects(open(db2, bad.genesis, work), (e: Error) => {
        assert.match(e.message, /genesis\.json is invalid:\n {2}balances\[5\]\.address: must be 0x \+ 40 hex digits/)
        if (work === 'inline') assert.ok(e instanceof HomeError)
        return true
      })
      assert.equal(existsSync(join(dir, 'other')), false)
    })
  })
}

test('a genesis file changed under a starting node is refused by the child that seeds', async () => {
  await inTemp(async (dir) => {
    const path = join(dir, 'genesis.json')
    const g = golden().genesis
    const { genesis } = homeGenesis(path, formatGenesisText(g))
    writeFileSync(path, JSON.stringify(g))
    await assert.rejects(open(join(dir, 'data', 'chain'), genesis, 'child'), /changed while the node was starting/)
  })
})

test('a seeding cut short is started over: records of another genesis left behind are gone', async () => {
  await inTemp(async (dir) => {
    const path = join(dir, 'genesis.json')
    const db = join(dir, 'data', 'chain')
    const g = golden()
    const stray = accountStoreKey(new Uint8Array(20).fill(0x33))
    const kv = await LevelKvStore.open(db)
    await kv.write([{ type: 'put', key: stray, value: new Uint8Array([1, 2, 3]) }])
    await kv.close()
    assert.equal(await open(db, homeGenesis(path, formatGenesisText(g.genesis)).genesis, 'inline'), g.stateRoot.slice(2))
    const reopened = await LevelKvStore.open(db)
    try {
      assert.equal(await reopened.get(stray), undefined)
      const parsed = parseGenesis(g.genesis)
      assert.ok(parsed.ok)
      for (const op of (await initialStateOps(parsed.value)).ops) {
        assert.ok(op.type === 'put')
        const stored = await reopened.get(op.key)
        assert.equal(stored === undefined ? undefined : toHex(stored), toHex(op.value))
      }
    } finally {
      await reopened.close()
    }
  })
})

test('a seeding cut short after the state root, before the genesis hash, is started over', async () => {
  await inTemp(async (dir) => {
    const path = join(dir, 'genesis.json')
    const db = join(dir, 'data', 'chain')
    const g = golden()
    const parsed = parseGenesis(g.genesis)
    assert.ok(parsed.ok)
    // what a kill -9 between the seeding's last (unsynced) write, the root's, and the synced write of the genesis
    // hash leaves: the whole state with its root, and no genesis hash
    const kv = await LevelKvStore.open(db)
    await genesisState(parsed.value, kv)
    await kv.close()
    assert.equal(await open(db, homeGenesis(path, formatGenesisText(g.genesis)).genesis, 'inline'), g.stateRoot.slice(2))
  })
})
