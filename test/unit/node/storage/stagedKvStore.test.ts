import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryKvStore, type KvOp, type KvStore } from '../../../../ledger/store.js'
import { StagedKvStore } from '../../../../node/storage/stagedKvStore.js'
import { waitFor } from '../../../helpers/waitFor.js'
import { kvStoreContract } from '../../ledger/kvStoreContract.js'

kvStoreContract('StagedKvStore', async () => ({ store: new StagedKvStore(new MemoryKvStore()), close: async () => {} }))

const b = (...xs: number[]) => new Uint8Array(xs)
const put = (k: number, v: number): KvOp => ({ type: 'put', key: b(k), value: b(v) })
const del = (k: number): KvOp => ({ type: 'del', key: b(k) })

/** A store whose writes wait for the test to let each one through, and that records the batches it got. */
class GatedStore implements KvStore {
  readonly inner = new MemoryKvStore()
  readonly batches: KvOp[][] = []
  private readonly gates: { open: () => void; fail: (e: Error) => void }[] = []
  get = (key: Uint8Array) => this.inner.get(key)
  getMany = (keys: readonly Uint8Array[]) => this.inner.getMany(keys)
  readPrefix = (prefix: Uint8Array) => this.inner.readPrefix(prefix)
  async write(ops: readonly KvOp[]): Promise<void> {
    this.batches.push([...ops])
    await new Promise<void>((open, fail) => this.gates.push({ open, fail }))
    await this.inner.write(ops)
  }
  get waiting(): number {
    return this.gates.length
  }
  release(): void {
    this.gates.shift()!.open()
  }
  refuse(): void {
    this.gates.shift()!.fail(new Error('disk full'))
  }
}

const values = async (s: KvStore, keys: number[]) => (await s.getMany(keys.map((k) => b(k)))).map((v) => v?.[0])

test('staged ops read back at once and reach the store with the next write, in one batch', async () => {
  const base = new GatedStore()
  await base.inner.write([put(1, 1), put(2, 2)])
  const s = new StagedKvStore(base)
  s.stage([put(1, 10), del(2), put(3, 30)])
  s.stage([put(3, 31), put(4, 40)])
  assert.equal(s.stagedOps, 5, 'key 3 staged twice')
  assert.deepEqual(await values(s, [1, 2, 3, 4, 5]), [10, undefined, 31, 40, undefined])
  assert.equal((await s.get(b(2))) === undefined && (await s.get(b(3)))?.[0], 31)
  assert.deepEqual(await values(base, [1, 2, 3, 4]), [1, 2, undefined, undefined], 'nothing written yet')
  const written = s.write([put(5, 50), put(1, 11)])
  assert.equal(s.stagedOps, 0)
  await waitFor(() => base.waiting === 1, 'the write at the store')
  // while the store writes, reads see what is on its way
  assert.deepEqual(await values(s, [1, 2, 3, 4, 5]), [11, undefined, 31, 40, 50])
  assert.equal(base.batches.length, 1)
  base.release()
  await written
  assert.deepEqual(await values(base, [1, 2, 3, 4, 5]), [11, undefined, 31, 40, 50])
  assert.deepEqual(await values(s, [1, 2, 3, 4, 5]), [11, undefined, 31, 40, 50])
})

test('writes reach the store one at a time, in the order they were made', async () => {
  const base = new GatedStore()
  const s = new StagedKvStore(base)
  const first = s.write([put(1, 1), put(2, 2)])
  s.stage([put(2, 20)])
  const second = s.write([put(3, 3)])
  await waitFor(() => base.waiting === 1, 'the first write at the store')
  assert.equal(base.batches.length, 1, 'the second waits for the first')
  assert.deepEqual(await values(s, [1, 2, 3]), [1, 20, 3])
  base.release()
  await first
  await waitFor(() => base.waiting === 1, 'the second write at the store')
  assert.deepEqual(await values(s, [1, 2, 3]), [1, 20, 3])
  base.release()
  await second
  assert.deepEqual(
    base.batches.map((ops) => ops.map((op) => op.key[0])),
    [
      [1, 2],
      [2, 3],
    ],
  )
  assert.deepEqual(await values(base, [1, 2, 3]), [1, 20, 3])
  // nothing staged: an empty write waits for the writes under way and writes nothing
  await s.write([])
  assert.equal(base.batches.length, 2)
})

test('a write that fails leaves its ops unwritten and unread; later writes go on', async () => {
  const base = new GatedStore()
  await base.inner.write([put(1, 1)])
  const s = new StagedKvStore(base)
  s.stage([put(1, 10)])
  const failing = s.write([put(2, 20)])
  await waitFor(() => base.waiting === 1, 'the write at the store')
  base.refuse()
  await assert.rejects(failing, /disk full/)
  assert.deepEqual(await values(s, [1, 2]), [1, undefined])
  const next = s.write([put(3, 30)])
  await waitFor(() => base.waiting === 1, 'the next write at the store')
  base.release()
  await next
  assert.deepEqual(await values(s, [1, 2, 3]), [1, undefined, 30])
})

test('reads agree with a model through staging, reads between stages, writes under way and written', async () => {
  // keys of 0-3 bytes over few values: many share their two first bytes, some only their first
  const keys: Uint8Array[] = [b()]
  for (let x = 0; x < 3; x++) {
    keys.push(b(x))
    for (let y = 0; y < 3; y++) {
      keys.push(b(x, y))
      for (let z = 0; z < 2; z++) keys.push(b(x, y, z))
    }
  }
  let seed = 7
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const base = new GatedStore()
  const s = new StagedKvStore(base)
  const model = new Map<string, number | undefined>()
  const id = (k: Uint8Array) => [...k].join(',')
  const writes: Promise<void>[] = []
  for (let step = 0; step < 600; step++) {
    const r = next(10)
    if (r < 5) {
      const ops: KvOp[] = []
      for (let i = next(4); i >= 0; i--) {
        const key = keys[next(keys.length)]!
        const v = next(250) + 1
        ops.push(next(4) === 0 ? { type: 'del', key } : { type: 'put', key, value: b(v) })
      }
      s.stage(ops)
      for (const op of ops) model.set(id(op.key), op.type === 'put' ? op.value[0] : undefined)
    } else if (r < 7) {
      writes.push(s.write([]))
    } else if (r < 8 && base.waiting > 0) {
      base.release()
    } else if (r < 9) {
      // a range read: what the model holds under a prefix of 0-2 bytes, in key order
      const prefix = keys[next(7)]!
      const got = (await s.readPrefix(prefix)).map((e) => `${id(e.key)}=${e.value[0]}`)
      const want = keys
        .filter((k) => k.length >= prefix.length && prefix.every((x, i) => k[i] === x) && model.get(id(k)) !== undefined)
        .sort((x, y) => Buffer.compare(x, y))
        .map((k) => `${id(k)}=${model.get(id(k))}`)
      assert.deepEqual(got, want, `step ${step}: readPrefix ${id(prefix)}`)
    } else {
      const asked = [keys[next(keys.length)]!, keys[next(keys.length)]!]
      const got = await s.getMany(asked)
      assert.deepEqual(
        got.map((v) => v?.[0]),
        asked.map((k) => model.get(id(k))),
        `step ${step}`,
      )
    }
  }
  writes.push(s.write([]))
  let done = false
  const all = Promise.all(writes).then(() => {
    done = true
  })
  while (!done) {
    if (base.waiting > 0) base.release()
    else await new Promise((r) => setImmediate(r))
  }
  await all
  assert.equal(s.stagedOps, 0)
  for (const k of keys) assert.equal((await base.inner.get(k))?.[0], model.get(id(k)), `key ${id(k)} at the store`)
})
