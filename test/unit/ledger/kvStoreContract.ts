import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { KvStore } from '../../../ledger/store.js'

/** A store under test and how to dispose of it. */
export interface StoreHandle {
  readonly store: KvStore
  close(): Promise<void>
}

const b = (...xs: number[]) => new Uint8Array(xs)

/**
 * The one contract every {@link KvStore} implementation passes: registers its tests under `name`, each on a fresh
 * store from `open`.
 */
export function kvStoreContract(name: string, open: () => Promise<StoreHandle>): void {
  const withStore = (title: string, body: (store: KvStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const h = await open()
      try {
        await body(h.store)
      } finally {
        await h.close()
      }
    })

  withStore('a missing key reads as undefined, alone and in getMany', async (s) => {
    assert.equal(await s.get(b(1)), undefined)
    assert.deepEqual(await s.getMany([b(1), b(2)]), [undefined, undefined])
    assert.deepEqual(await s.getMany([]), [])
  })

  withStore('put values read back byte for byte, as Uint8Array', async (s) => {
    const value = new Uint8Array(300).map((_, i) => (i * 7) & 0xff)
    await s.write([
      { type: 'put', key: b(0x4c, 0, 255), value },
      { type: 'put', key: b(0x4c, 1), value: new Uint8Array(0) },
    ])
    const got = await s.get(b(0x4c, 0, 255))
    assert.ok(got instanceof Uint8Array)
    assert.deepEqual(new Uint8Array(got), value)
    const many = await s.getMany([b(0x4c, 1), b(9), b(0x4c, 0, 255)])
    assert.equal(many.length, 3)
    assert.deepEqual(new Uint8Array(many[0]!), new Uint8Array(0))
    assert.equal(many[1], undefined)
    assert.deepEqual(new Uint8Array(many[2]!), value)
  })

  withStore('keys are compared as bytes: prefixes and zero bytes are distinct keys', async (s) => {
    await s.write([
      { type: 'put', key: b(1), value: b(10) },
      { type: 'put', key: b(1, 0), value: b(11) },
      { type: 'put', key: b(0, 1), value: b(12) },
    ])
    assert.deepEqual(
      (await s.getMany([b(1), b(1, 0), b(0, 1)])).map((v) => v?.[0]),
      [10, 11, 12],
    )
  })

  withStore('del removes; a later op on the same key in one batch wins', async (s) => {
    await s.write([
      { type: 'put', key: b(1), value: b(1) },
      { type: 'put', key: b(2), value: b(2) },
    ])
    await s.write([
      { type: 'del', key: b(1) },
      { type: 'put', key: b(2), value: b(20) },
      { type: 'del', key: b(2) },
      { type: 'put', key: b(2), value: b(21) },
      { type: 'put', key: b(3), value: b(3) },
      { type: 'del', key: b(3) },
      { type: 'del', key: b(4) },
    ])
    assert.deepEqual(
      (await s.getMany([b(1), b(2), b(3), b(4)])).map((v) => v?.[0]),
      [undefined, 21, undefined, undefined],
    )
  })

  withStore('the caller may reuse its buffers after a write', async (s) => {
    const key = b(5, 5)
    const value = b(1, 2, 3)
    await s.write([{ type: 'put', key, value }])
    key[0] = 6
    value[0] = 9
    assert.deepEqual([...(await s.get(b(5, 5)))!], [1, 2, 3])
  })

  withStore('readPrefix gives the entries under a prefix in key order, as written last', async (s) => {
    await s.write([
      { type: 'put', key: b(0x4c, 0x72, 2), value: b(2) },
      { type: 'put', key: b(0x4c, 0x72), value: b(0) },
      { type: 'put', key: b(0x4c, 0x72, 1, 0xff), value: b(1) },
      { type: 'put', key: b(0x4c, 0x71, 0xff), value: b(9) },
      { type: 'put', key: b(0x4c, 0x73), value: b(9) },
      { type: 'put', key: b(0x4c, 0x72, 0xff, 0xff), value: b(3) },
      { type: 'put', key: b(0xff, 0xff), value: b(4) },
    ])
    await s.write([
      { type: 'del', key: b(0x4c, 0x72, 2) },
      { type: 'put', key: b(0x4c, 0x72, 1, 0xff), value: b(5) },
    ])
    const read = async (...prefix: number[]) => (await s.readPrefix(b(...prefix))).map((e) => `${[...e.key].join('.')}=${e.value[0]}`)
    assert.deepEqual(await read(0x4c, 0x72), ['76.114=0', '76.114.1.255=5', '76.114.255.255=3'])
    assert.deepEqual(await read(0xff), ['255.255=4'])
    assert.deepEqual(await read(0xff, 0xff), ['255.255=4'])
    assert.deepEqual(await read(0x4c, 0x74), [])
    const all = await s.readPrefix(b())
    assert.equal(all.length, 6)
    assert.ok(all.every((e) => e.key instanceof Uint8Array && e.value instanceof Uint8Array))
  })

  withStore('an empty batch is a no-op', async (s) => {
    await s.write([])
    assert.equal(await s.get(b(0)), undefined)
  })
}
