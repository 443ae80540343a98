import { bytesEqual, compareBytes } from '../crypto/bytes.js'
import { decodeCanonical, encodeCanonical, type Canonical } from '../crypto/canonical.js'
import { malformed, type DecodeResult } from '../crypto/decodeError.js'
import { HASH_LENGTH, sha256 } from '../crypto/hash.js'
import { ok } from '../crypto/result.js'
import { LEDGER_KEY_PREFIX, type KvOp, type KvStore } from './store.js'

/**
 * The state commitment: a sparse Merkle tree over 256-bit keys with compressed paths.
 *
 * Shape (a pure function of the set of (key, value-hash) leaves, whatever order they were inserted in):
 *  - a subtree holding no leaf is EMPTY, whose hash is {@link EMPTY_HASH} (32 zero bytes);
 *  - a subtree holding exactly one leaf is that leaf, stored at the subtree's position (the shortest prefix of its
 *    key no other key shares), hash `SHA-256(0x00 || key || valueHash)`;
 *  - a subtree holding two or more leaves is an internal node, hash `SHA-256(0x01 || left || right)`, where the
 *    left child holds the keys whose next bit (most significant first) is 0.
 * The 0x00/0x01 prefixes separate leaves from internal nodes, so no leaf can pass as a node or the reverse.
 *
 * Storage: each node sits at its position, key `'L' tag || prefix (32 bytes, bits past depth zero) || depth
 * (u16 BE)`, value = the 65 bytes it hashes (`0x00 || key || valueHash` or `0x01 || left || right`); the tag is 'u'
 * ({@link TOP_KEY_TAG}) at depths up to {@link RESIDENT_DEPTH} and 't' below. The internal nodes above
 * RESIDENT_DEPTH are resident: kept in memory by the {@link TreeNodeCache} every update and read goes through, never
 * stored, and computed again from the 'u' range when a store is opened ({@link loadResidentLevels}). A batch update
 * reads only the nodes on the changed keys' paths (level by level, one getMany per level), rewrites them, and
 * deletes every position that no longer holds a node in the same batch, so storage holds the latest tree only.
 */

/** Hash of the empty subtree, and so the root of the empty tree: 32 zero bytes. */
export const EMPTY_HASH: Uint8Array = new Uint8Array(HASH_LENGTH)
/** Domain byte of a leaf's hash preimage. */
export const LEAF_DOMAIN = 0x00
/** Domain byte of an internal node's hash preimage. */
export const NODE_DOMAIN = 0x01
/** Keys are 256 bits: SHA-256 outputs. */
export const KEY_BITS = 256
/** Second byte of the store keys of tree nodes below {@link RESIDENT_DEPTH} ('t'). */
export const TREE_KEY_TAG = 0x74
/** Second byte of the store keys of tree nodes at {@link RESIDENT_DEPTH} and above ('u'). */
export const TOP_KEY_TAG = 0x75
/**
 * The internal nodes at depths below this one are resident: in memory only (a {@link TreeNodeCache} holds them), not
 * stored. What is stored from this depth up (every node at it, the leaves above it) is what they are computed from.
 * A block rewrites the upper levels of every path it touches, which are most of its node writes at a few thousand
 * accounts and about two fifths at a million; their 2^16 − 1 positions take at most 4.2 MB of memory.
 */
export const RESIDENT_DEPTH = 16
/** Bound on an encoded proof's size: 256 siblings of 33 bytes plus framing. */
export const MAX_PROOF_BYTES = 9 * 1024

/** One change to the tree: set the leaf of `key` to `valueHash`, or remove it (`valueHash` null). */
export interface TreeUpdate {
  readonly key: Uint8Array
  readonly valueHash: Uint8Array | null
}

/** Where a path ends in a proof. */
export type ProofTerminal =
  /** the path reaches an empty subtree: the key is absent */
  | { readonly kind: 'empty' }
  /** the path reaches the key's own leaf, whose value the caller supplies (e.g. an account) */
  | { readonly kind: 'leaf'; readonly valueHash: Uint8Array }
  /** the path reaches another key's leaf: the key is absent */
  | { readonly kind: 'other'; readonly key: Uint8Array; readonly valueHash: Uint8Array }

/** A path from the root to where a key is or would be: sibling hashes from the root down, and the end. */
export interface TreePath {
  readonly siblings: Uint8Array[]
  readonly terminal: ProofTerminal
}

/** The bit of `key` at `index` (0 = most significant bit of byte 0). */
export function keyBit(key: Uint8Array, index: number): number {
  return (key[index >> 3]! >> (7 - (index & 7))) & 1
}

/**
 * The store key of the node at `depth` on the path of `key`: `'L' tag || prefix (32 bytes, bits from depth on zero)
 * || depth (u16 BE)`, the tag {@link TOP_KEY_TAG} at depths up to {@link RESIDENT_DEPTH}, else {@link TREE_KEY_TAG}.
 * Prefix first, so every subtree is one contiguous key range: the nodes on an account's path below the resident
 * levels share a few LevelDB blocks.
 */
export function nodeStoreKey(depth: number, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 32)
  out[0] = LEDGER_KEY_PREFIX
  out[1] = depth <= RESIDENT_DEPTH ? TOP_KEY_TAG : TREE_KEY_TAG
  const full = depth >> 3
  out.set(key.subarray(0, full), 2)
  const rest = depth & 7
  if (rest !== 0) out[2 + full] = key[full]! & (0xff << (8 - rest))
  out[34] = depth >> 8
  out[35] = depth & 0xff
  return out
}

/** The depth of the node a tree store key names. */
export function nodeStoreKeyDepth(storeKey: Uint8Array): number {
  return (storeKey[34]! << 8) | storeKey[35]!
}

/** Hash of a leaf. */
export function leafHash(key: Uint8Array, valueHash: Uint8Array): Uint8Array {
  return sha256(taggedBytes(LEAF_DOMAIN, key, valueHash))
}

/** Hash of an internal node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(taggedBytes(NODE_DOMAIN, left, right))
}

/** The 65 hashed bytes of a node: its domain tag, then two 32-byte halves. */
function taggedBytes(domain: number, first: Uint8Array, second: Uint8Array): Uint8Array {
  const b = new Uint8Array(65)
  b[0] = domain
  b.set(first, 1)
  b.set(second, 33)
  return b
}

function isEmpty(hash: Uint8Array): boolean {
  for (let i = 0; i < HASH_LENGTH; i++) if (hash[i] !== 0) return false
  return true
}

function corrupt(what: string): never {
  throw new Error(`state tree corrupt: ${what}`)
}

/** Decodes a stored node, throwing on bytes the tree never writes (a corrupt store is a broken invariant). */
function parseNode(bytes: Uint8Array | undefined, where: string): Uint8Array {
  if (bytes === undefined) corrupt(`missing node at ${where}`)
  if (bytes.byteLength !== 65 || (bytes[0] !== LEAF_DOMAIN && bytes[0] !== NODE_DOMAIN)) corrupt(`bad node at ${where}`)
  return bytes
}

/** A subtree after an update. A floating leaf is not yet stored: its final position is decided by its parent. */
type Sub =
  | { readonly kind: 'empty' }
  | { readonly kind: 'leaf'; readonly bytes: Uint8Array; readonly key: Uint8Array; readonly vacated: readonly Uint8Array[] }
  | { readonly kind: 'node'; readonly hash: Uint8Array; readonly internal: boolean | undefined }

const EMPTY_SUB: Sub = { kind: 'empty' }

/** Bytes of a tree node's store key: 'L', its tag, the 32-byte prefix, the u16 depth. */
const NODE_KEY_BYTES = 36
/** Bytes of a packed op: its {@link TreeOpKind}, the key, the value (zeros for a del). */
const PACKED_OP_BYTES = 1 + NODE_KEY_BYTES + 65
/** Packed ops per buffer of a {@link PackedTreeOps} (about 64 KiB). */
const PACKED_OPS_PER_CHUNK = 640

/**
 * What a tree op does: to the store, and to the {@link TreeNodeCache} that mirrors the committed tree.
 *  - DEL: the position holds no node (the store's key and the cache's entry go);
 *  - PUT: a stored node (written to the store, and to the cache at the depths it holds);
 *  - RESIDENT: a resident internal node (cache only; nothing was stored at its position);
 *  - RESIDENT_OVER_LEAF: a resident internal node where a stored leaf was (cache; the store deletes the leaf).
 */
export const TreeOpKind = { DEL: 0, PUT: 1, RESIDENT: 2, RESIDENT_OVER_LEAF: 3 } as const
export type TreeOpKind = (typeof TreeOpKind)[keyof typeof TreeOpKind]

/**
 * Ops of tree nodes packed back to back in 64 KiB buffers, 102 bytes an op (its kind, the 36-byte key, the 65-byte
 * value): a block's tens of thousands of node ops held as a few hundred buffers instead of three objects and two
 * buffers each. Written in order by a tree update; read back in that order, as views: the store's ops
 * ({@link toOps}) or every op with its kind ({@link forEach}, what the cache applies).
 */
export class PackedTreeOps {
  private readonly chunks: Uint8Array[] = []
  private count = 0

  /** Number of ops. */
  get length(): number {
    return this.count
  }

  /** Appends a put of a stored node (its 36-byte key and 65-byte value, both copied). */
  put(key: Uint8Array, value: Uint8Array): void {
    this.node(TreeOpKind.PUT, key, value)
  }

  /** Appends a resident node, `overLeaf` when a stored leaf was at its position (key and value copied). */
  resident(key: Uint8Array, value: Uint8Array, overLeaf: boolean): void {
    this.node(overLeaf ? TreeOpKind.RESIDENT_OVER_LEAF : TreeOpKind.RESIDENT, key, value)
  }

  private node(kind: TreeOpKind, key: Uint8Array, value: Uint8Array): void {
    if (value.byteLength !== 65) throw new RangeError('PackedTreeOps: a node is 65 bytes')
    const [chunk, at] = this.slot(key)
    chunk[at] = kind
    chunk.set(value, at + 1 + NODE_KEY_BYTES)
  }

  /** Appends a delete of a node's key (copied). */
  del(key: Uint8Array): void {
    const [chunk, at] = this.slot(key)
    chunk[at] = TreeOpKind.DEL
  }

  private slot(key: Uint8Array): [Uint8Array, number] {
    if (key.byteLength !== NODE_KEY_BYTES) throw new RangeError('PackedTreeOps: a node key is 36 bytes')
    const k = this.count % PACKED_OPS_PER_CHUNK
    if (k === 0) this.chunks.push(new Uint8Array(PACKED_OP_BYTES * PACKED_OPS_PER_CHUNK))
    const chunk = this.chunks[this.chunks.length - 1]!
    const at = PACKED_OP_BYTES * k
    chunk.set(key, at + 1)
    this.count++
    return [chunk, at]
  }

  /** Calls `f` for each op in order with its kind and views of its key and value (zeros for a delete). */
  forEach(f: (kind: TreeOpKind, key: Uint8Array, value: Uint8Array) => void): void {
    for (let n = 0; n < this.count; n++) {
      const chunk = this.chunks[Math.floor(n / PACKED_OPS_PER_CHUNK)]!
      const at = PACKED_OP_BYTES * (n % PACKED_OPS_PER_CHUNK)
      f(chunk[at] as TreeOpKind, chunk.subarray(at + 1, at + 1 + NODE_KEY_BYTES), chunk.subarray(at + 1 + NODE_KEY_BYTES, at + PACKED_OP_BYTES))
    }
  }

  /**
   * The store's ops as {@link KvOp}s whose keys and values are views of these buffers (which never change once
   * written): resident nodes are not stored, and one over a stored leaf deletes it.
   */
  toOps(): KvOp[] {
    const out: KvOp[] = []
    for (let n = 0; n < this.count; n++) {
      const chunk = this.chunks[Math.floor(n / PACKED_OPS_PER_CHUNK)]!
      const at = PACKED_OP_BYTES * (n % PACKED_OPS_PER_CHUNK)
      const kind = chunk[at]
      if (kind === TreeOpKind.RESIDENT) continue
      const key = chunk.subarray(at + 1, at + 1 + NODE_KEY_BYTES)
      out.push(kind === TreeOpKind.PUT ? { type: 'put', key, value: chunk.subarray(at + 1 + NODE_KEY_BYTES, at + PACKED_OP_BYTES) } : { type: 'del', key })
    }
    return out
  }
}

/** Bytes of a stored node: its domain byte and two 32-byte hashes. */
const NODE_BYTES = 65
/** Deepest level a {@link TreeNodeCache} may hold: its positions are indexed by the first 24 bits of a key. */
export const MAX_TREE_CACHE_DEPTH = 24

/**
 * The tree's upper levels in memory (depth ≤ `maxDepth`, so at most 2^(maxDepth+1) − 1 nodes), which every block reads.
 * It mirrors the COMMITTED tree: filled by {@link loadResidentLevels} and from store reads, and changed only by
 * {@link applyPacked} (or {@link apply}) with a committed batch's ops. Each apply starts a new generation; a read
 * issued in an older generation (it may have raced a commit) is not cached. The tree's own updates and reads need
 * one loaded and of `maxDepth` RESIDENT_DEPTH or more: it is the only copy of the resident nodes.
 *
 * Its size is fixed in bytes: each level is one buffer of 65 bytes per position (2^depth positions), allocated when
 * the level is first filled, plus one byte per position saying whether it holds a node, {@link bytesFor} in all;
 * no object per node, so a full cache costs the garbage collector nothing. Nodes are copied in, and {@link lookup}
 * answers with a view of the level's buffer, which callers only read.
 */
export class TreeNodeCache {
  /** Level d's nodes, 65 bytes per position, position i at 65 × i. */
  private readonly levels: (Uint8Array | undefined)[]
  /** Level d's occupancy, one byte per position (1: holds a node). */
  private readonly present: (Uint8Array | undefined)[]
  private count = 0
  private gen = 0

  constructor(readonly maxDepth = 16) {
    if (!Number.isSafeInteger(maxDepth) || maxDepth < -1 || maxDepth > MAX_TREE_CACHE_DEPTH)
      throw new RangeError(`TreeNodeCache: maxDepth must be an integer from -1 to ${MAX_TREE_CACHE_DEPTH}`)
    this.levels = new Array<Uint8Array | undefined>(maxDepth + 1).fill(undefined)
    this.present = new Array<Uint8Array | undefined>(maxDepth + 1).fill(undefined)
  }

  /** The most bytes a cache of levels 0…`maxDepth` holds: 66 per position (the node and its occupancy byte). */
  static bytesFor(maxDepth: number): number {
    return maxDepth < 0 ? 0 : (2 ** (maxDepth + 1) - 1) * (NODE_BYTES + 1)
  }

  /** Changes with every {@link apply}. */
  get generation(): number {
    return this.gen
  }

  /** Number of cached nodes. */
  get size(): number {
    return this.count
  }

  /** The position within its level of the node a store key names: the first `depth` bits of its prefix. */
  private static position(storeKey: Uint8Array, depth: number): number {
    if (depth === 0) return 0
    const bits = (storeKey[2]! << 16) | (storeKey[3]! << 8) | storeKey[4]!
    return bits >>> (24 - depth)
  }

  /** The index within its level of a cached node, or -1. */
  private find(storeKey: Uint8Array, depth: number): number {
    if (depth > this.maxDepth) return -1
    const present = this.present[depth]
    if (present === undefined) return -1
    const i = TreeNodeCache.position(storeKey, depth)
    return present[i] === 0 ? -1 : i
  }

  /** A copy of the cached node at a position, if any. */
  lookup(storeKey: Uint8Array, depth: number): Uint8Array | undefined {
    const i = this.find(storeKey, depth)
    return i < 0 ? undefined : this.levels[depth]!.slice(NODE_BYTES * i, NODE_BYTES * (i + 1))
  }

  /**
   * Copies of the cached nodes at several positions (undefined where none), cut from one buffer: a commit that changes
   * the cache later leaves them as they were.
   */
  lookupAll(storeKeys: readonly Uint8Array[], depths: readonly number[]): (Uint8Array | undefined)[] {
    const at: number[] = []
    let hits = 0
    for (let j = 0; j < storeKeys.length; j++) {
      const i = this.find(storeKeys[j]!, depths[j]!)
      if (i >= 0) hits++
      at.push(i)
    }
    const copies = new Uint8Array(NODE_BYTES * hits)
    const out: (Uint8Array | undefined)[] = []
    let used = 0
    for (let j = 0; j < at.length; j++) {
      const i = at[j]!
      if (i < 0) {
        out.push(undefined)
        continue
      }
      const node = copies.subarray(used, used + NODE_BYTES)
      used += NODE_BYTES
      node.set(this.levels[depths[j]!]!.subarray(NODE_BYTES * i, NODE_BYTES * (i + 1)))
      out.push(node)
    }
    return out
  }

  /** Caches a node read from the store in `generation`, unless a commit happened since. */
  fill(storeKey: Uint8Array, depth: number, node: Uint8Array, generation: number): void {
    if (generation === this.gen && depth <= this.maxDepth) this.set(storeKey, depth, node)
  }

  /**
   * Applies nodes as a store holds them (other keys than tree nodes are ignored). A store's ops carry no resident
   * node, so a committed tree update is applied with {@link applyPacked}; this is for nodes known by their stored form.
   */
  apply(ops: Iterable<KvOp>): void {
    this.gen++
    for (const op of ops) {
      const k = op.key
      if (k.byteLength !== 36 || k[0] !== LEDGER_KEY_PREFIX || (k[1] !== TREE_KEY_TAG && k[1] !== TOP_KEY_TAG)) continue
      const depth = nodeStoreKeyDepth(k)
      if (depth > this.maxDepth) continue
      if (op.type === 'put') this.set(k, depth, op.value)
      else this.unset(k, depth)
    }
  }

  /** {@link apply} for ops in their packed form. */
  applyPacked(ops: PackedTreeOps): void {
    this.gen++
    ops.forEach(this.applyPackedOp)
  }

  private readonly applyPackedOp = (kind: TreeOpKind, key: Uint8Array, value: Uint8Array): void => {
    const depth = nodeStoreKeyDepth(key)
    if (depth > this.maxDepth) return
    if (kind === TreeOpKind.DEL) this.unset(key, depth)
    else this.set(key, depth, value)
  }

  /** Holds a stored node at depth ≤ RESIDENT_DEPTH, as {@link loadResidentLevels} reads it (no new generation). */
  place(storeKey: Uint8Array, depth: number, node: Uint8Array): void {
    this.set(storeKey, depth, node)
  }

  /**
   * Computes the resident levels (depths below RESIDENT_DEPTH) bottom-up from what is held at RESIDENT_DEPTH and the
   * leaves above it, and returns the root's hash. Throws when a leaf has nodes below it (a corrupt store).
   */
  computeResident(): Uint8Array {
    if (this.maxDepth < RESIDENT_DEPTH) throw new RangeError(`TreeNodeCache: the resident levels need maxDepth ≥ ${RESIDENT_DEPTH}`)
    for (let depth = RESIDENT_DEPTH - 1; depth >= 0; depth--) {
      const below = this.present[depth + 1]
      if (below === undefined) continue
      const nodes = this.levels[depth + 1]!
      for (let i = 0; i < below.length; i += 2) {
        if (below[i] === 0 && below[i + 1] === 0) continue
        const left = below[i] === 0 ? EMPTY_HASH : sha256(nodes.subarray(NODE_BYTES * i, NODE_BYTES * (i + 1)))
        const right = below[i + 1] === 0 ? EMPTY_HASH : sha256(nodes.subarray(NODE_BYTES * (i + 1), NODE_BYTES * (i + 2)))
        if (this.present[depth]?.[i >> 1] === 1) corrupt(`a leaf at depth ${depth} has nodes below it`)
        this.setAt(depth, i >> 1, taggedBytes(NODE_DOMAIN, left, right))
      }
    }
    return this.present[0]?.[0] === 1 ? sha256(this.levels[0]!.subarray(0, NODE_BYTES)) : new Uint8Array(EMPTY_HASH)
  }

  private set(storeKey: Uint8Array, depth: number, node: Uint8Array): void {
    if (node.byteLength !== NODE_BYTES) return // never a node the tree wrote: parseNode refuses it on the read path
    this.setAt(depth, TreeNodeCache.position(storeKey, depth), node)
  }

  private setAt(depth: number, i: number, node: Uint8Array): void {
    let present = this.present[depth]
    if (present === undefined) {
      present = new Uint8Array(2 ** depth)
      this.present[depth] = present
      this.levels[depth] = new Uint8Array(NODE_BYTES * 2 ** depth)
    }
    if (present[i] === 0) {
      present[i] = 1
      this.count++
    }
    this.levels[depth]!.set(node, NODE_BYTES * i)
  }

  private unset(storeKey: Uint8Array, depth: number): void {
    const present = this.present[depth]
    if (present === undefined) return
    const i = TreeNodeCache.position(storeKey, depth)
    if (present[i] === 1) {
      present[i] = 0
      this.count--
    }
  }

  /** Forgets everything (and frees the levels' buffers). */
  clear(): void {
    this.gen++
    this.levels.fill(undefined)
    this.present.fill(undefined)
    this.count = 0
  }
}

/**
 * Orders tree updates by key. Like the other callbacks on a block's hot paths it is made once, not per call: V8
 * drops the optimized code of closures made per call at its full collections and compiles the next ones again
 * (docs/performance.md, "Compilation").
 */
function byKey(a: TreeUpdate, b: TreeUpdate): number {
  return compareBytes(a.key, b.key)
}

/** A batch update's result: the new root and its ops, packed. */
export interface PackedTreeUpdateResult {
  readonly root: Uint8Array
  readonly ops: PackedTreeOps
}

/**
 * Applies a batch of updates to the tree whose root is `root`, stored in `store` with its resident levels in `cache`
 * (loaded, mirroring the same committed tree), reading only nodes on the updated keys' paths. Keys must be distinct
 * and 32 bytes. Returns the new root and the ops that take the store and the cache from the old tree to the new one,
 * at most one per position, in an order fixed by the data (so identical on every node), packed
 * ({@link PackedTreeOps}: what the ledger holds while a block waits for its decision). Nothing is written.
 */
export async function updateTreePacked(
  store: KvStore,
  root: Uint8Array,
  updates: readonly TreeUpdate[],
  cache: TreeNodeCache,
): Promise<PackedTreeUpdateResult> {
  if (cache.maxDepth < RESIDENT_DEPTH) throw new RangeError(`updateTree: the cache must hold the resident levels (maxDepth ≥ ${RESIDENT_DEPTH})`)
  const sorted = [...updates].sort(byKey)
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.key.byteLength !== 32) throw new RangeError('updateTree: keys are 32 bytes')
    if (i > 0 && bytesEqual(sorted[i - 1]!.key, sorted[i]!.key)) throw new RangeError('updateTree: duplicate key')
  }
  if (sorted.length === 0) return { root: new Uint8Array(root), ops: new PackedTreeOps() }
  const batch = new Batch(sorted)

  // Phase 1: read every node the update touches, one getMany per level. A subtree without updates is read only
  // when its sibling holds deletes (it may then have to move up, so we must know whether it is a leaf).
  type Visit = { depth: number; key: Uint8Array; lo: number; hi: number; id: number }
  let frontier: Visit[] = isEmpty(root) ? [] : [{ depth: 0, key: sorted[0]!.key, lo: 0, hi: sorted.length, id: visitId(0, 0, 0, false) }]
  while (frontier.length > 0) {
    const storeKeys: Uint8Array[] = []
    const depths: number[] = []
    for (const v of frontier) {
      depths.push(v.depth)
      storeKeys.push(nodeStoreKey(v.depth, v.key))
    }
    const values = cache.lookupAll(storeKeys, depths)
    const missing: number[] = []
    for (let i = 0; i < values.length; i++) if (values[i] === undefined) missing.push(i)
    if (missing.length > 0) {
      const generation = cache.generation
      const keys: Uint8Array[] = []
      for (const i of missing) keys.push(storeKeys[i]!)
      const read = await store.getMany(keys)
      for (let j = 0; j < missing.length; j++) {
        const i = missing[j]!
        values[i] = read[j]
        if (read[j] !== undefined) cache.fill(storeKeys[i]!, depths[i]!, read[j]!, generation)
      }
    }
    const next: Visit[] = []
    for (let i = 0; i < frontier.length; i++) {
      const v = frontier[i]!
      const node = parseNode(values[i], `depth ${v.depth}`)
      batch.loaded.set(v.id, node)
      if (node[0] !== NODE_DOMAIN || v.lo === v.hi) continue
      const mid = batch.split(v.lo, v.hi, v.depth)
      const d = v.depth + 1
      if (!isEmpty(node.subarray(1, 33)) && (v.lo < mid || batch.hasDelete(mid, v.hi))) {
        const probe = v.lo === mid
        next.push({ depth: d, key: probe ? withBit(sorted[mid]!.key, v.depth, 0) : sorted[v.lo]!.key, lo: v.lo, hi: mid, id: visitId(d, v.lo, 0, probe) })
      }
      if (!isEmpty(node.subarray(33, 65)) && (mid < v.hi || batch.hasDelete(v.lo, mid))) {
        const probe = mid === v.hi
        next.push({ depth: d, key: probe ? withBit(sorted[v.lo]!.key, v.depth, 1) : sorted[mid]!.key, lo: mid, hi: v.hi, id: visitId(d, mid, 1, probe) })
      }
    }
    frontier = next
  }

  // Phase 2: compute the new tree bottom-up, synchronously, over the loaded nodes.
  const newRoot = batch.settle(batch.update(0, sorted[0]!.key, root, 0, sorted.length, 0), 0)
  return { root: new Uint8Array(newRoot), ops: batch.ops }
}

/**
 * A visited subtree is identified by (depth, first update index, side, probe): unique within one update, and a
 * number, so the two phases share nodes without hashing keys to strings.
 */
function visitId(depth: number, lo: number, side: number, probe: boolean): number {
  return lo * 2048 + depth * 4 + side * 2 + (probe ? 1 : 0)
}

/**
 * One batch update's state and its recursive rewrite (phase 2 of {@link updateTreePacked}). Methods of a class rather
 * than closures made per call, so V8 compiles them once for the process. Every position gets at most one op: a leaf
 * that moves carries the positions it vacated, deleted when it settles elsewhere (an internal node that takes a
 * leaf's place overwrites it, or above RESIDENT_DEPTH deletes it from the store).
 */
class Batch {
  /** Nodes read in phase 1, by {@link visitId}. */
  readonly loaded = new Map<number, Uint8Array>()
  readonly ops = new PackedTreeOps()
  /** deletesBefore[i] = number of deletes among sorted[0..i): "does a range hold a delete" in O(1). */
  private readonly deletesBefore: Uint32Array

  constructor(private readonly sorted: readonly TreeUpdate[]) {
    this.deletesBefore = new Uint32Array(sorted.length + 1)
    for (let i = 0; i < sorted.length; i++) this.deletesBefore[i + 1] = this.deletesBefore[i]! + (sorted[i]!.valueHash === null ? 1 : 0)
  }

  hasDelete(lo: number, hi: number): boolean {
    return this.deletesBefore[hi]! > this.deletesBefore[lo]!
  }

  /** Splits [lo, hi) (all sharing the first `depth` bits) at the first key whose bit `depth` is 1. */
  split(lo: number, hi: number, depth: number): number {
    let a = lo
    let b = hi
    while (a < b) {
      const m = (a + b) >> 1
      if (keyBit(this.sorted[m]!.key, depth) === 0) a = m + 1
      else b = m
    }
    return a
  }

  private del(key: Uint8Array): void {
    this.ops.del(key)
  }

  private put(key: Uint8Array, value: Uint8Array): void {
    this.ops.put(key, value)
  }

  /** Stores a subtree at its position (materialising a floating leaf) and returns its hash. */
  settle(sub: Sub, depth: number): Uint8Array {
    if (sub.kind === 'empty') return EMPTY_HASH
    if (sub.kind === 'node') return sub.hash
    const at = nodeStoreKey(depth, sub.key)
    this.put(at, sub.bytes)
    for (const v of sub.vacated) if (!bytesEqual(v, at)) this.del(v)
    return sha256(sub.bytes)
  }

  private combine(depth: number, key: Uint8Array, left: Sub, right: Sub, vacates: boolean, overLeaf: boolean): Sub {
    const here = nodeStoreKey(depth, key)
    if (left.kind === 'empty' && right.kind === 'empty') {
      if (vacates) this.del(here)
      return EMPTY_SUB
    }
    const lone = left.kind === 'empty' ? right : right.kind === 'empty' ? left : undefined
    if (lone !== undefined) {
      if (lone.kind === 'leaf') return vacates ? { kind: 'leaf', bytes: lone.bytes, key: lone.key, vacated: [...lone.vacated, here] } : lone
      if (lone.kind === 'node' && lone.internal !== true) corrupt('a subtree of unknown kind beside an emptied one')
    }
    const bytes = taggedBytes(NODE_DOMAIN, this.settle(left, depth + 1), this.settle(right, depth + 1))
    if (depth < RESIDENT_DEPTH) this.ops.resident(here, bytes, overLeaf)
    else this.put(here, bytes)
    return { kind: 'node', hash: sha256(bytes), internal: true }
  }

  /** Builds a fresh subtree at `depth` from leaves (sorted, distinct, sharing the first `depth` bits). */
  private build(depth: number, leaves: { key: Uint8Array; bytes: Uint8Array }[], vacated: Uint8Array[]): Sub {
    if (leaves.length === 0) {
      for (const v of vacated) this.del(v)
      return EMPTY_SUB
    }
    if (leaves.length === 1) return { kind: 'leaf', bytes: leaves[0]!.bytes, key: leaves[0]!.key, vacated }
    if (depth >= KEY_BITS) throw new Error('updateTree: distinct keys cannot share 256 bits')
    let m = 0
    while (m < leaves.length && keyBit(leaves[m]!.key, depth) === 0) m++
    // Two or more leaves always make an internal node here, which takes the place of any vacated position (this one:
    // a leaf stood here)
    const left = this.build(depth + 1, leaves.slice(0, m), [])
    return this.combine(depth, leaves[0]!.key, left, this.build(depth + 1, leaves.slice(m), []), false, vacated.length > 0)
  }

  /** The subtree at (depth, path of `key`) whose hash was `hash`, after applying sorted[lo..hi). */
  update(depth: number, key: Uint8Array, hash: Uint8Array, lo: number, hi: number, side: number): Sub {
    const sorted = this.sorted
    if (isEmpty(hash)) {
      const leaves = []
      for (let i = lo; i < hi; i++) {
        const u = sorted[i]!
        if (u.valueHash !== null) leaves.push({ key: u.key, bytes: taggedBytes(LEAF_DOMAIN, u.key, u.valueHash) })
      }
      return this.build(depth, leaves, [])
    }
    const node = this.loaded.get(visitId(depth, lo, side, lo === hi))
    if (node === undefined) return { kind: 'node', hash, internal: undefined } // untouched, unread, stays in place
    if (node[0] === LEAF_DOMAIN) {
      // The leaf's position is vacated unless something is stored there again.
      const oldKey = node.subarray(1, 33)
      const leaves: { key: Uint8Array; bytes: Uint8Array }[] = []
      let replaced = false
      for (let i = lo; i < hi; i++) {
        const u = sorted[i]!
        if (bytesEqual(u.key, oldKey)) replaced = true
        if (u.valueHash !== null) leaves.push({ key: u.key, bytes: taggedBytes(LEAF_DOMAIN, u.key, u.valueHash) })
      }
      if (!replaced) {
        leaves.push({ key: oldKey, bytes: node })
        leaves.sort((a, b) => compareBytes(a.key, b.key))
      }
      return this.build(depth, leaves, [nodeStoreKey(depth, key)])
    }
    if (lo === hi) return { kind: 'node', hash, internal: true }
    const mid = this.split(lo, hi, depth)
    const left = this.update(depth + 1, lo < mid ? sorted[lo]!.key : withBit(sorted[mid]!.key, depth, 0), node.subarray(1, 33), lo, mid, 0)
    const right = this.update(depth + 1, mid < hi ? sorted[mid]!.key : withBit(sorted[lo]!.key, depth, 1), node.subarray(33, 65), mid, hi, 1)
    return this.combine(depth, key, left, right, true, false)
  }
}

/** A copy of `key` with bit `index` set to `bit`: a key on the path of the sibling subtree. */
function withBit(key: Uint8Array, index: number, bit: number): Uint8Array {
  const out = new Uint8Array(key)
  const mask = 1 << (7 - (index & 7))
  if (bit === 1) out[index >> 3]! |= mask
  else out[index >> 3]! &= ~mask
  return out
}

/**
 * Leaves of a tree built from nothing: `count` leaves whose 32-byte keys lie back to back in `keys`, strictly
 * increasing; `valueHash(i)` is the i-th leaf's value hash.
 */
export interface SortedLeaves {
  readonly count: number
  readonly keys: Uint8Array
  valueHash(i: number): Uint8Array
}

/** Leaves below which {@link buildTree} builds a subtree in one synchronous step. */
const BUILD_STEP_LEAVES = 2048
/** Bytes of the buffers node values are cut from while building. */
const SLAB_BYTES = 64 * 1024

/**
 * Builds the tree of `leaves` into a store that holds no tree, bottom-up: every node is computed once and written
 * once (the resident ones not at all: {@link loadResidentLevels} computes them when the store is opened), nothing is
 * read. Returns the root, which is the one {@link updateTreePacked} gives for the same leaves on the empty tree, with
 * the same nodes at the same positions (the shape is a function of the leaves). The nodes go to `write` in batches of
 * about `opsPerWrite` ops, subtree by subtree (so in key order); the root is not stored.
 */
export async function buildTree(leaves: SortedLeaves, write: (ops: KvOp[]) => Promise<void>, opsPerWrite = 50_000): Promise<Uint8Array> {
  const { count, keys } = leaves
  if (keys.byteLength !== 32 * count) throw new RangeError('buildTree: keys must hold count keys of 32 bytes')
  for (let i = 1; i < count; i++) {
    if (compareKeysAt(keys, 32 * (i - 1), 32 * i) >= 0) throw new RangeError('buildTree: keys must be strictly increasing')
  }
  const builder = new TreeBuilder(leaves, write, opsPerWrite)
  const root = builder.settle(await builder.buildAsync(0, 0, count), 0)
  await builder.flush()
  return root
}

function compareKeysAt(keys: Uint8Array, x: number, y: number): number {
  for (let k = 0; k < 32; k++) {
    const d = keys[x + k]! - keys[y + k]!
    if (d !== 0) return d
  }
  return 0
}

/** A built subtree: empty (null), a single leaf not yet placed (its index), or a stored node (its hash). */
type Built = null | number | Uint8Array

/** The state of one {@link buildTree}: the pending ops and the buffer node values are cut from. */
class TreeBuilder {
  private ops: KvOp[] = []
  private slab = new Uint8Array(SLAB_BYTES)
  private used = 0

  constructor(
    private readonly leaves: SortedLeaves,
    private readonly write: (ops: KvOp[]) => Promise<void>,
    private readonly opsPerWrite: number,
  ) {}

  private key(i: number): Uint8Array {
    return this.leaves.keys.subarray(32 * i, 32 * i + 32)
  }

  /** 65 bytes for a node's value, a view of a shared buffer (one allocation per {@link SLAB_BYTES}). */
  private nodeBytes(domain: number, first: Uint8Array, second: Uint8Array): Uint8Array {
    if (this.used + 65 > this.slab.byteLength) {
      this.slab = new Uint8Array(SLAB_BYTES)
      this.used = 0
    }
    const b = this.slab.subarray(this.used, this.used + 65)
    this.used += 65
    b[0] = domain
    b.set(first, 1)
    b.set(second, 33)
    return b
  }

  /** The first index of [lo, hi) whose key has bit `depth` set (hi when none). */
  private split(lo: number, hi: number, depth: number): number {
    const keys = this.leaves.keys
    const byte = depth >> 3
    const mask = 0x80 >> (depth & 7)
    let a = lo
    let b = hi
    while (a < b) {
      const m = (a + b) >> 1
      if ((keys[32 * m + byte]! & mask) === 0) a = m + 1
      else b = m
    }
    return a
  }

  /** Places a subtree at `depth` (storing a single leaf there) and returns its hash. */
  settle(built: Built, depth: number): Uint8Array {
    if (built === null) return EMPTY_HASH
    if (typeof built !== 'number') return built
    const key = this.key(built)
    const bytes = this.nodeBytes(LEAF_DOMAIN, key, this.leaves.valueHash(built))
    this.ops.push({ type: 'put', key: nodeStoreKey(depth, key), value: bytes })
    return sha256(bytes)
  }

  /** The subtree at `depth` of the leaves [lo, hi), which share their first `depth` bits. */
  build(depth: number, lo: number, hi: number): Built {
    if (lo === hi) return null
    if (hi - lo === 1) return lo
    if (depth >= KEY_BITS) throw new Error('buildTree: distinct keys cannot share 256 bits')
    const mid = this.split(lo, hi, depth)
    return this.node(depth, lo, this.build(depth + 1, lo, mid), this.build(depth + 1, mid, hi))
  }

  /** Two leaves or more make an internal node at `depth`, even when one side is empty (stored below the resident). */
  private node(depth: number, lo: number, left: Built, right: Built): Uint8Array {
    const bytes = this.nodeBytes(NODE_DOMAIN, this.settle(left, depth + 1), this.settle(right, depth + 1))
    if (depth >= RESIDENT_DEPTH) this.ops.push({ type: 'put', key: nodeStoreKey(depth, this.key(lo)), value: bytes })
    return sha256(bytes)
  }

  /** {@link build}, writing the ops gathered so far whenever a step leaves enough of them. */
  async buildAsync(depth: number, lo: number, hi: number): Promise<Built> {
    if (hi - lo <= BUILD_STEP_LEAVES) {
      const built = this.build(depth, lo, hi)
      if (this.ops.length >= this.opsPerWrite) await this.flush()
      return built
    }
    if (depth >= KEY_BITS) throw new Error('buildTree: distinct keys cannot share 256 bits')
    const mid = this.split(lo, hi, depth)
    const left = await this.buildAsync(depth + 1, lo, mid)
    const right = await this.buildAsync(depth + 1, mid, hi)
    return this.node(depth, lo, left, right)
  }

  /** Writes the ops gathered so far. */
  async flush(): Promise<void> {
    if (this.ops.length === 0) return
    const ops = this.ops
    this.ops = []
    await this.write(ops)
  }
}

/**
 * Reads the path of `key` from the root `root` (the tree in `store`, its resident levels in `cache`): the siblings from
 * the root down and where the path ends.
 */
export async function readPath(store: KvStore, cache: TreeNodeCache, root: Uint8Array, key: Uint8Array): Promise<TreePath> {
  const siblings: Uint8Array[] = []
  let hash = root
  for (let depth = 0; ; depth++) {
    if (isEmpty(hash)) return { siblings, terminal: { kind: 'empty' } }
    if (depth > KEY_BITS) corrupt('path longer than 256')
    const at = nodeStoreKey(depth, key)
    const node = parseNode(cache.lookup(at, depth) ?? (await store.get(at)), `depth ${depth}`)
    if (node[0] === LEAF_DOMAIN) {
      const leafKey = node.slice(1, 33)
      const valueHash = node.slice(33, 65)
      if (bytesEqual(leafKey, key)) return { siblings, terminal: { kind: 'leaf', valueHash } }
      return { siblings, terminal: { kind: 'other', key: leafKey, valueHash } }
    }
    const bit = keyBit(key, depth)
    siblings.push(node.slice(bit === 0 ? 33 : 1, bit === 0 ? 65 : 33))
    hash = node.subarray(bit === 0 ? 1 : 33, bit === 0 ? 33 : 65)
  }
}

/**
 * Fills `cache` (emptied first) with the tree stored in `store`: what is stored at RESIDENT_DEPTH and above (one range
 * read), then the resident levels computed from it. Returns the root they give, which the caller checks against the
 * root it stored; an empty store gives {@link EMPTY_HASH}. Throws on a stored node the tree never writes there.
 */
export async function loadResidentLevels(store: KvStore, cache: TreeNodeCache): Promise<Uint8Array> {
  if (cache.maxDepth < RESIDENT_DEPTH) throw new RangeError(`loadResidentLevels: the cache must hold ${RESIDENT_DEPTH} levels or more`)
  cache.clear()
  for (const { key, value } of await store.readPrefix(new Uint8Array([LEDGER_KEY_PREFIX, TOP_KEY_TAG]))) {
    if (key.byteLength !== NODE_KEY_BYTES) corrupt(`a key of ${key.byteLength} bytes among the resident levels' nodes`)
    const depth = nodeStoreKeyDepth(key)
    const node = parseNode(value, `depth ${depth}`)
    if (depth > RESIDENT_DEPTH || (depth < RESIDENT_DEPTH && node[0] !== LEAF_DOMAIN))
      corrupt(`a stored ${node[0] === LEAF_DOMAIN ? 'leaf' : 'internal node'} at depth ${depth} under the resident tag`)
    cache.place(key, depth, node)
  }
  return cache.computeResident()
}

/**
 * Recomputes the root a path implies for `key`, given the value hash of the key's own leaf when the path claims
 * membership. Returns undefined when the path is inconsistent (another leaf that is the key itself or off the path).
 */
export function rootFromPath(key: Uint8Array, path: TreePath): Uint8Array | undefined {
  const depth = path.siblings.length
  if (depth > KEY_BITS) return undefined
  let hash: Uint8Array
  const t = path.terminal
  if (t.kind === 'empty') hash = EMPTY_HASH
  else if (t.kind === 'leaf') hash = leafHash(key, t.valueHash)
  else {
    if (bytesEqual(t.key, key)) return undefined
    // The other leaf sits on the key's path, so it shares the key's first `depth` bits.
    for (let i = 0; i < depth; i++) if (keyBit(t.key, i) !== keyBit(key, i)) return undefined
    hash = leafHash(t.key, t.valueHash)
  }
  for (let i = depth - 1; i >= 0; i--) {
    const sibling = path.siblings[i]!
    hash = keyBit(key, i) === 0 ? nodeHash(hash, sibling) : nodeHash(sibling, hash)
  }
  return hash
}

/**
 * Encodes a path canonically: `[siblings, terminal]`, each sibling a 32-byte hash or an empty byte string for
 * {@link EMPTY_HASH}; terminal `[0]` (empty), `[1, value]` (the key's own leaf, value = the caller's canonical
 * value, e.g. an account), or `[2, key, valueHash]` (another leaf).
 */
export function encodePath(path: TreePath, value: Canonical | undefined): Canonical {
  const siblings = path.siblings.map((s) => (isEmpty(s) ? new Uint8Array(0) : s))
  const t = path.terminal
  const terminal: Canonical = t.kind === 'empty' ? [0] : t.kind === 'other' ? [2, t.key, t.valueHash] : [1, value === undefined ? null : value]
  return [siblings, terminal]
}

/** The decoded parts of an encoded path; the own-leaf value is returned undecoded for the caller. */
export type DecodedPath = DecodeResult<{
  readonly siblings: Uint8Array[]
  readonly terminal: { kind: 'empty' } | { kind: 'leaf'; value: unknown } | { kind: 'other'; key: Uint8Array; valueHash: Uint8Array }
}>

/** Validates the shape of an encoded path (see {@link encodePath}). */
export function decodePath(value: unknown): DecodedPath {
  const fail = malformed
  if (!Array.isArray(value) || value.length !== 2) return fail('a path is [siblings, terminal]')
  const [rawSiblings, terminal] = value as unknown[]
  if (!Array.isArray(rawSiblings) || rawSiblings.length > KEY_BITS) return fail(`siblings must be an array of at most ${KEY_BITS}`)
  const siblings: Uint8Array[] = []
  for (const s of rawSiblings as unknown[]) {
    if (!(s instanceof Uint8Array)) return fail('sibling is not bytes')
    if (s.byteLength === 0) siblings.push(EMPTY_HASH)
    else if (s.byteLength === 32 && !isEmpty(s)) siblings.push(s)
    else return fail('sibling must be 32 bytes (non-zero) or empty')
  }
  if (!Array.isArray(terminal) || terminal.length === 0) return fail('terminal must be a non-empty array')
  const t = terminal as unknown[]
  if (t[0] === 0 && t.length === 1) return ok({ siblings, terminal: { kind: 'empty' } })
  if (t[0] === 1 && t.length === 2) return ok({ siblings, terminal: { kind: 'leaf', value: t[1] } })
  if (t[0] === 2 && t.length === 3) {
    const [, key, valueHash] = t
    if (!(key instanceof Uint8Array) || key.byteLength !== 32) return fail('other leaf key must be 32 bytes')
    if (!(valueHash instanceof Uint8Array) || valueHash.byteLength !== 32) return fail('other leaf value hash must be 32 bytes')
    return ok({ siblings, terminal: { kind: 'other', key, valueHash } })
  }
  return fail('unknown terminal')
}

/** Encodes a path as bytes (the canonical encoding of {@link encodePath}). */
export function encodePathBytes(path: TreePath, value: Canonical | undefined): Uint8Array {
  return encodeCanonical(encodePath(path, value))
}

/** Decodes path bytes, bounded by {@link MAX_PROOF_BYTES}. */
export function decodePathBytes(bytes: Uint8Array): DecodedPath {
  const d = decodeCanonical(bytes, MAX_PROOF_BYTES)
  if (!d.ok) return d
  return decodePath(d.value)
}
