import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesEqual } from '../../../../crypto/bytes.js'
import { LevelKvStore } from '../../../../node/storage/levelKvStore.js'
import { kvStoreContract } from '../../ledger/kvStoreContract.js'

async function openTemp(): Promise<{ store: LevelKvStore; dir: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-level-'))
  const store = await LevelKvStore.open(join(dir, 'db'))
  return {
    store,
    dir,
    close: async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

kvStoreContract('LevelKvStore', openTemp)

test('LevelKvStore: data survives close and reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-level-'))
  try {
    const path = join(dir, 'db')
    const a = await LevelKvStore.open(path)
    await a.write([{ type: 'put', key: new Uint8Array([0x4c, 1]), value: new Uint8Array([7, 8]) }])
    await a.close()
    const b = await LevelKvStore.open(path)
    assert.deepEqual([...(await b.get(new Uint8Array([0x4c, 1])))!], [7, 8])
    await b.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('LevelKvStore: a batch with an invalid op is refused whole and the store stays usable', async () => {
  const { store, close } = await openTemp()
  try {
    const good = { type: 'put' as const, key: new Uint8Array([0x4c, 2]), value: new Uint8Array([1]) }
    const bad = { type: 'put' as const, key: new Uint8Array([0x4c, 3]), value: undefined as unknown as Uint8Array }
    await assert.rejects(store.write([good, bad]))
    assert.equal(await store.get(good.key), undefined)
    await store.write([good])
    assert.deepEqual([...(await store.get(good.key))!], [1])
  } finally {
    await close()
  }
})

test('LevelKvStore: a database open elsewhere is refused with a message that says so', async () => {
  const { dir, close } = await openTemp()
  try {
    await assert.rejects(LevelKvStore.open(join(dir, 'db')), /db is locked: another process \(a tallyd on this home\?\) has it open/)
  } finally {
    await close()
  }
})

test('LevelKvStore: the block cache holds at most its configured size, and reads stay right', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-level-'))
  try {
    const path = join(dir, 'db')
    // 8 MiB of values that compress: their blocks are decompressed into the block cache when read
    const keys = Array.from({ length: 4096 }, (_, i) => new Uint8Array([0x4c, i >> 8, i & 0xff]))
    const value = (i: number) => new Uint8Array(2048).fill(i & 0xff)
    const w = await LevelKvStore.open(path)
    await w.write(keys.map((key, i) => ({ type: 'put' as const, key, value: value(i) })))
    await w.close()
    const held = async (cacheSizeBytes: number) => {
      // reopened, the log is written out to a table file: every read below goes through the cache
      const s = await LevelKvStore.open(path, { cacheSizeBytes })
      try {
        const values = await s.getMany(keys)
        values.forEach((v, i) => {
          assert.ok(v !== undefined && bytesEqual(v, value(i)), `value ${i}`)
        })
        return s.approximateMemoryBytes()
      } finally {
        await s.close()
      }
    }
    const small = await held(1024 * 1024)
    const large = await held(64 * 1024 * 1024)
    // the write buffer of an empty memtable counts too: a few KiB
    assert.ok(small <= 1024 * 1024 + 64 * 1024, `1 MiB cache holds ${small} bytes`)
    assert.ok(large >= 7 * 1024 * 1024, `64 MiB cache holds ${large} bytes after reading 8 MiB`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
