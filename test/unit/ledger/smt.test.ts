import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { fromHex, toHex } from '../../../crypto/bytes.js'
import {
  EMPTY_HASH,
  MAX_TREE_CACHE_DEPTH,
  PackedTreeOps,
  RESIDENT_DEPTH,
  TOP_KEY_TAG,
  TREE_KEY_TAG,
  TreeNodeCache,
  TreeOpKind,
  buildTree,
  loadResidentLevels,
  nodeStoreKey,
  nodeStoreKeyDepth,
  readPath,
  rootFromPath,
  updateTreePacked,
  type TreeUpdate,
} from '../../../ledger/smt.js'
import { MemoryKvStore, type KvOp } from '../../../ledger/store.js'
import { Rng } from '../../helpers/random.js'

// An independent reference: the tree's root and node count computed from scratch over the whole key set,
// straight from the definition (empty = zeros, one leaf = leaf hash, more = H(0x01 || left || right)).
const h = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest())
const bit = (k: Uint8Array, i: number) => (k[i >> 3]! >> (7 - (i & 7))) & 1
// `stored` leaves out the internal nodes above RESIDENT_DEPTH, which live in memory only.
function reference(leaves: [Uint8Array, Uint8Array][], depth = 0): { root: Uint8Array; nodes: number; stored: number } {
  if (leaves.length === 0) return { root: new Uint8Array(32), nodes: 0, stored: 0 }
  if (leaves.length === 1) return { root: h(new Uint8Array([0]), leaves[0]![0], leaves[0]![1]), nodes: 1, stored: 1 }
  const l = reference(
    leaves.filter(([k]) => bit(k, depth) === 0),
    depth + 1,
  )
  const r = reference(
    leaves.filter(([k]) => bit(k, depth) === 1),
    depth + 1,
  )
  const stored = l.stored + r.stored + (depth >= RESIDENT_DEPTH ? 1 : 0)
  return { root: h(new Uint8Array([1]), l.root, r.root), nodes: l.nodes + r.nodes + 1, stored }
}

const isTreeKey = (k: Uint8Array) => k[0] === 0x4c && (k[1] === TREE_KEY_TAG || k[1] === TOP_KEY_TAG)

function treeNodeCount(store: MemoryKvStore): number {
  return store.entries().filter((e) => isTreeKey(e.key)).length
}

/** The resident levels of each store's tree, as a ledger keeps them beside its store. */
const caches = new WeakMap<MemoryKvStore, TreeNodeCache>()
function cacheOf(store: MemoryKvStore): TreeNodeCache {
  let cache = caches.get(store)
  if (cache === undefined) {
    cache = new TreeNodeCache(RESIDENT_DEPTH)
    caches.set(store, cache)
  }
  return cache
}

/** Commits a batch of updates to a store and its cache; checks that the store alone gives the cache's levels again. */
async function apply(store: MemoryKvStore, root: Uint8Array, updates: TreeUpdate[]): Promise<Uint8Array> {
  const cache = cacheOf(store)
  const r = await updateTreePacked(store, root, updates, cache)
  // At most one op per position, every key a tree key, no stored node an internal one above RESIDENT_DEPTH.
  const keys: string[] = []
  r.ops.forEach((_, key) => {
    keys.push(toHex(key))
  })
  assert.equal(new Set(keys).size, keys.length, 'one op per position')
  const ops = r.ops.toOps()
  assert.ok(ops.every((o) => isTreeKey(o.key) && (o.key[1] === TOP_KEY_TAG) === nodeStoreKeyDepth(o.key) <= RESIDENT_DEPTH))
  assert.ok(ops.every((o) => o.type === 'del' || nodeStoreKeyDepth(o.key) >= RESIDENT_DEPTH || o.value[0] === 0))
  await store.write(ops)
  cache.applyPacked(r.ops)
  const fresh = new TreeNodeCache(RESIDENT_DEPTH)
  assert.equal(toHex(await loadResidentLevels(store, fresh)), toHex(r.root), 'the resident levels computed from the store')
  for (const k of keys) {
    const key = fromHex(k)!
    const depth = nodeStoreKeyDepth(key)
    if (depth > RESIDENT_DEPTH) continue
    const [a, b] = [cache.lookup(key, depth), fresh.lookup(key, depth)]
    assert.equal(a && toHex(a), b && toHex(b), `depth ${depth}: the cache as committed and as loaded`)
  }
  return r.root
}

test('the empty tree has the zero root, and removing the last leaf returns to it', async () => {
  const store = new MemoryKvStore()
  assert.deepEqual(EMPTY_HASH, new Uint8Array(32))
  const key = h(new Uint8Array([1]))
  let root = await apply(store, EMPTY_HASH, [{ key, valueHash: h(new Uint8Array([2])) }])
  assert.deepEqual(root, reference([[key, h(new Uint8Array([2]))]]).root)
  root = await apply(store, root, [{ key, valueHash: null }])
  assert.deepEqual(root, EMPTY_HASH)
  assert.equal(store.size, 0)
})

test('random batches of inserts, updates and deletes match the from-scratch reference; no stale nodes remain', async () => {
  const rng = new Rng(7)
  const store = new MemoryKvStore()
  const live = new Map<string, [Uint8Array, Uint8Array]>()
  const pool = Array.from({ length: 300 }, (_, i) => h(new Uint8Array([i & 0xff, i >> 8])))
  // Keys sharing long prefixes exercise deep, compressed paths.
  const base = h(new Uint8Array([99]))
  for (let i = 0; i < 12; i++) {
    const k = new Uint8Array(base)
    k[31]! ^= 1 << (i % 8)
    if (i >= 8) k[20]! ^= 1 << (i - 8)
    pool.push(k)
  }
  let root: Uint8Array = EMPTY_HASH
  for (let round = 0; round < 60; round++) {
    const batch = new Map<string, TreeUpdate>()
    const n = 1 + rng.int(round % 5 === 0 ? 120 : 12)
    for (let i = 0; i < n; i++) {
      const key = rng.pick(pool)
      const del = live.has(toHex(key)) && rng.chance(0.4)
      batch.set(toHex(key), { key, valueHash: del ? null : rng.bytes(32) })
    }
    root = await apply(store, root, [...batch.values()])
    for (const [id, u] of batch) {
      if (u.valueHash === null) live.delete(id)
      else live.set(id, [u.key, u.valueHash])
    }
    const ref = reference([...live.values()])
    assert.deepEqual(root, ref.root, `round ${round}`)
    assert.equal(treeNodeCount(store), ref.stored, `round ${round}: stored nodes`)
  }
  // Deleting everything empties the store.
  root = await apply(
    store,
    root,
    [...live.values()].map(([key]) => ({ key, valueHash: null })),
  )
  assert.deepEqual(root, EMPTY_HASH)
  assert.equal(store.size, 0)
})

test('the root does not depend on how the leaves were batched', async () => {
  const rng = new Rng(11)
  const leaves = Array.from({ length: 200 }, () => ({ key: rng.bytes(32), valueHash: rng.bytes(32) }))
  const a = new MemoryKvStore()
  const ra = await apply(a, EMPTY_HASH, leaves)
  const b = new MemoryKvStore()
  let rb: Uint8Array = EMPTY_HASH
  for (let i = leaves.length - 1; i >= 0; i -= 7) rb = await apply(b, rb, leaves.slice(Math.max(0, i - 6), i + 1))
  assert.deepEqual(ra, rb)
  assert.deepEqual(
    a.entries().map((e) => toHex(e.key) + toHex(e.value)),
    b.entries().map((e) => toHex(e.key) + toHex(e.value)),
  )
})

/** Leaves sorted by key, flattened for buildTree. */
function sortedLeaves(leaves: { key: Uint8Array; valueHash: Uint8Array }[]) {
  const sorted = [...leaves].sort((a, b) => (toHex(a.key) < toHex(b.key) ? -1 : 1))
  const keys = new Uint8Array(32 * sorted.length)
  sorted.forEach((l, i) => {
    keys.set(l.key, 32 * i)
  })
  return { count: sorted.length, keys, valueHash: (i: number) => sorted[i]!.valueHash }
}

test('a tree built bottom-up is the tree updateTree makes from the same leaves, node for node, in any write size', async () => {
  const rng = new Rng(13)
  // keys sharing long prefixes make chains of internal nodes with an empty side
  const base = h(new Uint8Array([42]))
  const close = Array.from({ length: 6 }, (_, i) => {
    const k = new Uint8Array(base)
    k[31]! ^= 1 << i
    return { key: k, valueHash: rng.bytes(32) }
  })
  for (const n of [0, 1, 2, 3, 5, 16, 17, 255, 2049, 5001]) {
    const leaves = Array.from({ length: n }, () => ({ key: rng.bytes(32), valueHash: rng.bytes(32) }))
    for (const withClose of n === 0 ? [false] : [false, true]) {
      const all = withClose ? [...leaves, ...close] : leaves
      const updated = new MemoryKvStore()
      const root = await apply(updated, EMPTY_HASH, all)
      for (const opsPerWrite of [1, 7, 1_000_000]) {
        const built = new MemoryKvStore()
        const writes: KvOp[][] = []
        const r = await buildTree(
          sortedLeaves(all),
          async (ops) => {
            writes.push(ops)
            await built.write(ops)
          },
          opsPerWrite,
        )
        const what = `${all.length} leaves, ${opsPerWrite} ops per write`
        assert.deepEqual(r, root, what)
        assert.deepEqual(
          built.entries().map((e) => toHex(e.key) + toHex(e.value)),
          updated.entries().map((e) => toHex(e.key) + toHex(e.value)),
          what,
        )
        const keys = writes.flat().map((o) => toHex(o.key))
        assert.equal(new Set(keys).size, keys.length, `${what}: each node written once`)
        assert.ok(writes.every((w) => w.length > 0 && w.every((o) => o.type === 'put')))
      }
    }
  }
})

test('buildTree refuses keys out of order, repeated or of another length', async () => {
  const rng = new Rng(17)
  const a = { key: rng.bytes(32), valueHash: rng.bytes(32) }
  const b = { key: rng.bytes(32), valueHash: rng.bytes(32) }
  const [lo, hi] = toHex(a.key) < toHex(b.key) ? [a, b] : [b, a]
  const flat = (...ks: Uint8Array[]) => {
    const keys = new Uint8Array(32 * ks.length)
    ks.forEach((k, i) => {
      keys.set(k, 32 * i)
    })
    return { count: ks.length, keys, valueHash: () => a.valueHash }
  }
  const none = async () => {}
  await assert.rejects(buildTree(flat(hi.key, lo.key), none), /strictly increasing/)
  await assert.rejects(buildTree(flat(lo.key, lo.key), none), /strictly increasing/)
  await assert.rejects(buildTree({ count: 2, keys: new Uint8Array(63), valueHash: () => a.valueHash }, none), /32 bytes/)
})

test('paths prove membership and absence; the path for a key reproduces the root', async () => {
  const rng = new Rng(3)
  const store = new MemoryKvStore()
  const leaves = Array.from({ length: 100 }, () => ({ key: rng.bytes(32), valueHash: rng.bytes(32) }))
  const root = await apply(store, EMPTY_HASH, leaves)
  for (const l of leaves.slice(0, 20)) {
    const p = await readPath(store, cacheOf(store), root, l.key)
    assert.equal(p.terminal.kind, 'leaf')
    assert.deepEqual(rootFromPath(l.key, p), root)
  }
  for (let i = 0; i < 20; i++) {
    const key = rng.bytes(32)
    const p = await readPath(store, cacheOf(store), root, key)
    assert.notEqual(p.terminal.kind, 'leaf')
    assert.deepEqual(rootFromPath(key, p), root)
  }
})

test('updateTree rejects duplicate or mis-sized keys and a cache without the resident levels, and writes nothing', async () => {
  const store = new MemoryKvStore()
  const cache = new TreeNodeCache(RESIDENT_DEPTH)
  const key = new Uint8Array(32)
  await assert.rejects(
    updateTreePacked(
      store,
      EMPTY_HASH,
      [
        { key, valueHash: key },
        { key, valueHash: null },
      ],
      cache,
    ),
    RangeError,
  )
  await assert.rejects(updateTreePacked(store, EMPTY_HASH, [{ key: new Uint8Array(31), valueHash: key }], cache), RangeError)
  await assert.rejects(updateTreePacked(store, EMPTY_HASH, [{ key, valueHash: key }], new TreeNodeCache(RESIDENT_DEPTH - 1)), RangeError)
  await updateTreePacked(store, EMPTY_HASH, [{ key, valueHash: key }], cache)
  assert.equal(store.size, 0)
  assert.equal(cache.size, 0)
})

test('the node cache mirrors committed ops, bounds its depth and ignores reads that raced a commit', async () => {
  const rng = new Rng(5)
  const store = new MemoryKvStore()
  const cache = new TreeNodeCache(RESIDENT_DEPTH + 1)
  // keys sharing 250 bits put nodes far below the cached levels
  const base = rng.bytes(32)
  let root: Uint8Array = EMPTY_HASH
  for (let round = 0; round < 10; round++) {
    const updates = Array.from({ length: 20 }, () => ({ key: rng.bytes(32), valueHash: rng.bytes(32) }))
    const close = new Uint8Array(base)
    close[31]! ^= 1 << (round % 6)
    updates.push({ key: close, valueHash: rng.bytes(32) })
    const r = await updateTreePacked(store, root, updates, cache)
    await store.write(r.ops.toOps())
    cache.applyPacked(r.ops)
    root = r.root
    // Every cached node equals the stored one, and only depths 0-17 are cached.
    for (const e of store.entries()) {
      if (!isTreeKey(e.key)) continue
      const depth = nodeStoreKeyDepth(e.key)
      const cached = cache.lookup(e.key, depth)
      if (depth > RESIDENT_DEPTH + 1) assert.equal(cached, undefined)
      else if (cached !== undefined) assert.equal(toHex(cached), toHex(e.value))
    }
  }
  assert.ok(store.entries().some((e) => nodeStoreKeyDepth(e.key) > 200))
  assert.ok(cache.size > 0 && cache.size < 2 ** (RESIDENT_DEPTH + 2))
  const key = nodeStoreKey(2, new Uint8Array(32))
  const stale = cache.generation
  cache.apply([])
  cache.fill(key, 2, new Uint8Array(65), stale)
  assert.equal(cache.lookup(key, 2) === undefined || toHex(cache.lookup(key, 2)!) !== toHex(new Uint8Array(65)), true)
})

test('packed tree ops read back in order, byte for byte, across buffers', () => {
  const rng = new Rng(11)
  const packed = new PackedTreeOps()
  const given: KvOp[] = []
  const kinds: TreeOpKind[] = []
  for (let i = 0; i < 1500; i++) {
    const key = nodeStoreKey(i % 40, rng.bytes(32))
    const value = rng.bytes(65)
    const kind = i % 7 === 3 ? TreeOpKind.DEL : i % 11 === 5 ? TreeOpKind.RESIDENT : i % 13 === 6 ? TreeOpKind.RESIDENT_OVER_LEAF : TreeOpKind.PUT
    kinds.push(kind)
    // what the store gets: nothing for a resident node, a delete of the leaf one replaced
    if (kind === TreeOpKind.PUT) given.push({ type: 'put', key, value })
    else if (kind !== TreeOpKind.RESIDENT) given.push({ type: 'del', key })
    if (kind === TreeOpKind.PUT) packed.put(key, value)
    else if (kind === TreeOpKind.DEL) packed.del(key)
    else packed.resident(key, value, kind === TreeOpKind.RESIDENT_OVER_LEAF)
  }
  assert.equal(packed.length, 1500)
  assert.ok(kinds.includes(TreeOpKind.RESIDENT) && kinds.includes(TreeOpKind.RESIDENT_OVER_LEAF))
  const hex = (ops: KvOp[]) => ops.map((o) => `${o.type}:${toHex(o.key)}:${o.type === 'put' ? toHex(o.value) : ''}`)
  assert.deepEqual(hex(packed.toOps()), hex(given))
  const seen: KvOp[] = []
  const seenKinds: TreeOpKind[] = []
  packed.forEach((kind, key, value) => {
    seenKinds.push(kind)
    if (kind === TreeOpKind.PUT) seen.push({ type: 'put', key: key.slice(), value: value.slice() })
    else if (kind !== TreeOpKind.RESIDENT) seen.push({ type: 'del', key: key.slice() })
  })
  assert.deepEqual(hex(seen), hex(given))
  assert.deepEqual(seenKinds, kinds)
  // what was given was copied: changing it afterwards changes nothing packed
  ;(given[0] as { value: Uint8Array }).value.fill(0xee)
  assert.notEqual(
    toHex(packed.toOps()[0]!.type === 'put' ? (packed.toOps()[0] as { value: Uint8Array }).value : new Uint8Array()),
    toHex(new Uint8Array(65).fill(0xee)),
  )
  assert.throws(() => packed.put(new Uint8Array(35), new Uint8Array(65)), RangeError)
  assert.throws(() => packed.put(nodeStoreKey(1, new Uint8Array(32)), new Uint8Array(64)), RangeError)
})

test('the node cache answers with copies: a later commit at the same position leaves them unchanged', async () => {
  const cache = new TreeNodeCache(4)
  const key = nodeStoreKey(3, new Uint8Array(32).fill(0xa0))
  const first = new Uint8Array(65).fill(1)
  cache.apply([{ type: 'put', key, value: first }])
  const one = cache.lookup(key, 3)!
  const [many] = cache.lookupAll([key], [3])
  first.fill(9) // the cache copied what it was given
  cache.apply([{ type: 'put', key, value: new Uint8Array(65).fill(2) }])
  assert.equal(toHex(one), toHex(new Uint8Array(65).fill(1)))
  assert.equal(toHex(many!), toHex(new Uint8Array(65).fill(1)))
  assert.equal(toHex(cache.lookup(key, 3)!), toHex(new Uint8Array(65).fill(2)))
  assert.equal(cache.size, 1)
  cache.apply([{ type: 'del', key }])
  assert.equal(cache.lookup(key, 3), undefined)
  assert.equal(cache.size, 0)
  // positions are per level: the same prefix at another depth is another node
  cache.apply([{ type: 'put', key: nodeStoreKey(4, new Uint8Array(32).fill(0xa0)), value: new Uint8Array(65).fill(3) }])
  assert.equal(cache.lookup(key, 3), undefined)
  assert.deepEqual(
    cache.lookupAll([key, nodeStoreKey(4, new Uint8Array(32).fill(0xa0))], [3, 4]).map((v) => v && toHex(v)),
    [undefined, toHex(new Uint8Array(65).fill(3))],
  )
  cache.clear()
  assert.equal(cache.size, 0)
})

test('the node cache is sized in bytes: 66 per position of its levels', () => {
  assert.equal(TreeNodeCache.bytesFor(-1), 0)
  assert.equal(TreeNodeCache.bytesFor(0), 66)
  assert.equal(TreeNodeCache.bytesFor(16), (2 ** 17 - 1) * 66)
  assert.throws(() => new TreeNodeCache(MAX_TREE_CACHE_DEPTH + 1), RangeError)
  // positions span byte boundaries: depth 12 holds the first 12 bits of a prefix
  const cache = new TreeNodeCache(12)
  const key = nodeStoreKey(12, new Uint8Array(32).fill(0xff))
  cache.apply([{ type: 'put', key, value: new Uint8Array(65).fill(4) }])
  assert.equal(toHex(cache.lookup(key, 12)!), toHex(new Uint8Array(65).fill(4)))
  assert.equal(cache.lookup(nodeStoreKey(12, new Uint8Array([0xff, 0xef, ...new Uint8Array(30)])), 12), undefined)
  assert.equal(toHex(cache.lookup(nodeStoreKey(12, new Uint8Array([0xff, 0xf0, ...new Uint8Array(30)])), 12)!), toHex(new Uint8Array(65).fill(4)))
})
