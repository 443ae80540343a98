import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fromHex, to0x, toHex } from '../../../crypto/bytes.js'
import { decodeCanonical, encodeCanonical } from '../../../crypto/canonical.js'
import { sha256 } from '../../../crypto/hash.js'
import {
  EMPTY_TX_ROOT,
  MAX_BLOCK_BYTES,
  MAX_BLOCK_EVIDENCE,
  ZERO_HASH,
  blockHash,
  decodeBlock,
  decodeBlockHeader,
  decodeBlockStrict,
  encodeBlock,
  encodeBlockHeader,
  txRoot,
  type BlockHeader,
} from '../../../ledger/block.js'
import { MAX_TX_BYTES, createTransfer } from '../../../ledger/transaction.js'
import { loadFixture } from '../../helpers/fixtures.js'
import { Rng } from '../../helpers/random.js'

interface GoldenBlocks {
  header: {
    chainId: string
    height: number
    time: number
    previousBlockHash: string
    txRoot: string
    stateRoot: string
    proposer: string
    validatorSetHash: string
    nextValidatorSetHash: string
    lastCommitHash: string
    evidenceRoot: string
  }
  headerBytes: string
  blockHash: string
  txRoots: { hashes: string[]; root: string }[]
}

const golden = () => loadFixture<GoldenBlocks>('golden/blocks.json')
function goldenHeader(): BlockHeader {
  const g = golden().header
  return {
    chainId: g.chainId,
    height: g.height,
    time: g.time,
    previousBlockHash: fromHex(g.previousBlockHash)!,
    txRoot: fromHex(g.txRoot)!,
    stateRoot: fromHex(g.stateRoot)!,
    proposer: fromHex(g.proposer)!,
    validatorSetHash: fromHex(g.validatorSetHash)!,
    nextValidatorSetHash: fromHex(g.nextValidatorSetHash)!,
    lastCommitHash: fromHex(g.lastCommitHash)!,
    evidenceRoot: fromHex(g.evidenceRoot)!,
  }
}

test('header encoding, block hash and tx roots match the golden vectors (cross-checked with python hashlib)', () => {
  const g = golden()
  const header = goldenHeader()
  assert.equal(toHex(encodeBlockHeader(header)), g.headerBytes)
  assert.equal(to0x(blockHash(header)), g.blockHash)
  for (const t of g.txRoots) assert.equal(to0x(txRoot(t.hashes.map((h) => fromHex(h)!))), t.root, `${t.hashes.length} hashes`)
  assert.equal(toHex(EMPTY_TX_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
})

test('txRoot is the recursive RFC 6962 definition, at every tree shape, whatever the items', () => {
  // the definition as written: split at the largest power of two below n
  const reference = (items: readonly Uint8Array[]): Uint8Array => {
    if (items.length === 0) return sha256(new Uint8Array(0))
    if (items.length === 1) return sha256(new Uint8Array([0]), items[0]!)
    let k = 1
    while (k * 2 < items.length) k *= 2
    return sha256(new Uint8Array([1]), reference(items.slice(0, k)), reference(items.slice(k)))
  }
  const rng = new Rng(5)
  const hashes = Array.from({ length: 1100 }, () => rng.bytes(32))
  for (const n of [...Array.from({ length: 70 }, (_, i) => i), 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025, 1100]) {
    const items = hashes.slice(0, n)
    const root = txRoot(items)
    assert.deepEqual(root, reference(items), `${n} hashes`)
    assert.equal(root.byteLength, 32)
  }
  // items of other lengths (not transaction hashes) follow the same definition
  for (const items of [[rng.bytes(5)], [rng.bytes(32), rng.bytes(31)], [rng.bytes(0), rng.bytes(32), rng.bytes(64)]]) {
    assert.deepEqual(txRoot(items), reference(items))
  }
  // the root is an array of its own; the inputs are untouched
  const items = hashes.slice(0, 9)
  const copy = items.map((h) => new Uint8Array(h))
  const root = txRoot(items)
  assert.equal(root.buffer.byteLength, 32)
  assert.deepEqual(items, copy)
})

test('txRoot: leaves and inner nodes are domain-separated; order matters', () => {
  const a = sha256(new Uint8Array([1]))
  const b = sha256(new Uint8Array([2]))
  assert.deepEqual(txRoot([a]), sha256(new Uint8Array([0]), a))
  assert.deepEqual(txRoot([a, b]), sha256(new Uint8Array([1]), sha256(new Uint8Array([0]), a), sha256(new Uint8Array([0]), b)))
  assert.notDeepEqual(txRoot([a, b]), txRoot([b, a]))
  // An inner node is not a leaf: a one-transaction tree whose "hash" is an inner node's preimage gives another root.
  assert.notDeepEqual(txRoot([a, b]), txRoot([sha256(new Uint8Array([0]), a)]))
})

test('blocks round-trip with their transactions and evidence', () => {
  const txs = [1, 2, 3].map((i) =>
    createTransfer(new Uint8Array(32).fill(i), { chainId: 'tally-test', to: new Uint8Array(20).fill(i), amount: BigInt(i), nonce: 0n }),
  )
  const evidence = [new Uint8Array([1, 2, 3]), new Uint8Array([4])]
  const header = { ...goldenHeader(), txRoot: txRoot(txs.map((t) => t.hash)), evidenceRoot: txRoot(evidence.map((e) => sha256(e))) }
  const bytes = encodeBlock({ header, txs: txs.map((t) => t.bytes), evidence })
  const d = decodeBlock(bytes)
  assert.ok(d.ok)
  assert.deepEqual(d.value.header, header)
  assert.deepEqual(
    d.value.txs.map(toHex),
    txs.map((t) => toHex(t.bytes)),
  )
  assert.deepEqual(d.value.evidence.map(toHex), evidence.map(toHex))
  const tuple = decodeCanonical(encodeBlockHeader(header), 1024)
  assert.ok(tuple.ok)
  const tooMuch = Array.from({ length: MAX_BLOCK_EVIDENCE + 1 }, () => new Uint8Array([1]))
  assert.equal(decodeBlock(encodeCanonical([tuple.value as never, [], tooMuch])).ok, false, 'too much evidence')
})

test('decoding rejects malformed headers and blocks with a reason', () => {
  const h = goldenHeader()
  const tuple = (o: Partial<Record<keyof BlockHeader | 'tag', unknown>>) => {
    const v = { tag: 'tally/header/v2', ...h, ...o }
    const u64 = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? BigInt(x) : x)
    return [
      v.tag,
      v.chainId,
      u64(v.height),
      u64(v.time),
      v.previousBlockHash,
      v.txRoot,
      v.stateRoot,
      v.proposer,
      v.validatorSetHash,
      v.nextValidatorSetHash,
      v.lastCommitHash,
      v.evidenceRoot,
    ]
  }
  const bad: [unknown, string][] = [
    [tuple({ tag: 'tally/header/v1' }), 'tag'],
    [tuple({ nextValidatorSetHash: new Uint8Array(31) }), 'nextValidatorSetHash'],
    [tuple({ evidenceRoot: new Uint8Array(33) }), 'evidenceRoot'],
    [tuple({ chainId: 'a b' }), 'chainId'],
    [tuple({ height: 0 }), 'height'],
    [tuple({ height: 1 }), 'height 1 with a previous hash'],
    [tuple({ time: -1 }), 'time'],
    [tuple({ time: 2n ** 53n }), 'unsafe time'],
    [tuple({ height: '7' }), 'height type'],
    [[...tuple({}).slice(0, 2), 7, ...tuple({}).slice(3)], 'height as a small int instead of u64'],
    [tuple({ stateRoot: new Uint8Array(31) }), 'stateRoot'],
    [tuple({ proposer: new Uint8Array(32) }), 'proposer'],
    [tuple({ previousBlockHash: ZERO_HASH }), 'zero previous hash above height 1'],
    [tuple({}).slice(0, 11), 'field count'],
  ]
  for (const [t, desc] of bad) {
    const r = decodeBlockHeader(encodeCanonical(t as never))
    assert.ok(!r.ok && r.error.code === 'malformed' && r.error.reason.length > 0, desc)
    const b = decodeBlock(encodeCanonical([t as never, [], []]))
    assert.ok(!b.ok, desc)
  }
  const good = tuple({})
  assert.ok(decodeBlockHeader(encodeCanonical(good as never)).ok)
  const blockBad: [Uint8Array, string][] = [
    [encodeCanonical([good as never, []]), 'no evidence list'],
    [encodeCanonical([good as never, [new Uint8Array(0)], []]), 'empty tx'],
    [encodeCanonical([good as never, [new Uint8Array(MAX_TX_BYTES + 1)], []]), 'oversized tx'],
    [encodeCanonical([good as never, ['x'], []]), 'tx not bytes'],
    [encodeCanonical([good as never, [], [new Uint8Array(0)]]), 'empty evidence item'],
    [encodeCanonical([good as never, [], ['x']]), 'evidence not bytes'],
    [new Uint8Array([...encodeCanonical([good as never, [], []]), 0]), 'trailing byte'],
    [new Uint8Array(MAX_BLOCK_BYTES + 1), 'oversized block'],
  ]
  for (const [bytes, desc] of blockBad) assert.equal(decodeBlock(bytes).ok, false, desc)
  assert.equal(decodeBlock(encodeCanonical([good as never, [new Uint8Array(5), new Uint8Array(5)], []]), { maxTxs: 1 }).ok, false)
  assert.equal(decodeBlock(encodeCanonical([good as never, [], []]), { maxBytes: 10 }).ok, false)
  assert.throws(() => encodeBlockHeader({ ...h, height: 1.5 }), RangeError)
})

test('decodeBlock gives what the general strict decoder gives, on valid blocks and on every kind of damage', () => {
  const rng = new Rng(21)
  const header = (chainId: string): BlockHeader => ({ ...goldenHeader(), chainId })
  // items of every size class: 1 byte, a transfer's size, 255, 256 (bin 16) and the bounds
  const item = (max: number) => rng.bytes(Math.min(max, [1, 2, 160, 255, 256, 300, max][rng.int(7)]!))
  const blocks: Uint8Array[] = []
  for (const count of [0, 1, 15, 16, 17, 300]) {
    for (const chainId of ['t', 'tally-test', 'c'.repeat(31), 'c'.repeat(32), 'c'.repeat(64)]) {
      const txs = Array.from({ length: count }, () => item(MAX_TX_BYTES))
      const evidence = Array.from({ length: rng.int(3) === 0 ? 16 : rng.int(3) }, () => item(1024))
      blocks.push(encodeBlock({ header: header(chainId), txs, evidence }))
    }
  }
  const same = (bytes: Uint8Array, limits: { maxBytes?: number; maxTxs?: number }, what: string) => {
    assert.deepEqual(decodeBlock(bytes, limits), decodeBlockStrict(bytes, limits), what)
  }
  // the shortest array and byte-string headers, and the longer ones that are not canonical
  const binHeader = (len: number, form: number) => (form === 8 ? [0xc4, len] : form === 16 ? [0xc5, len >> 8, len & 255] : [0xc6, 0, 0, len >> 8, len & 255])
  const arrHeader = (count: number, form: number) =>
    form === 4 ? [0x90 + count] : form === 16 ? [0xdc, count >> 8, count & 255] : [0xdd, 0, 0, count >> 8, count & 255]
  const h = encodeBlockHeader(header('tally-test'))
  for (const [i, bytes] of blocks.entries()) {
    const d = decodeBlock(bytes)
    assert.ok(d.ok, `block ${i}`)
    same(bytes, {}, `block ${i}`)
    same(bytes, { maxTxs: 15 }, `block ${i} within 15 transactions`)
    same(bytes, { maxBytes: bytes.byteLength - 1 }, `block ${i} a byte over its bound`)
    same(Buffer.from(bytes), {}, `block ${i} as a Buffer`)
    same(bytes.subarray(0, bytes.byteLength - 1 - rng.int(Math.min(bytes.byteLength - 1, 400))), {}, `block ${i} truncated`)
    same(new Uint8Array([...bytes, rng.int(256)]), {}, `block ${i} with a byte after it`)
    for (let k = 0; k < 40; k++) {
      const flipped = new Uint8Array(bytes)
      // mostly in the first bytes, where the headers are
      const at = k < 30 ? rng.int(Math.min(flipped.byteLength, 420)) : rng.int(flipped.byteLength)
      flipped[at] = k % 2 === 0 ? flipped[at]! ^ (1 << rng.int(8)) : rng.int(256)
      same(flipped, {}, `block ${i} with byte ${at} changed`)
    }
  }
  for (const txForm of [8, 16, 32]) {
    for (const arrForm of [4, 16, 32]) {
      for (const len of [5, 255, 256]) {
        if (len > 255 && txForm === 8) continue
        const bytes = new Uint8Array([0x93, ...h, ...arrHeader(1, arrForm), ...binHeader(len, txForm), ...rng.bytes(len), 0x90])
        same(bytes, {}, `a ${len}-byte transaction as bin ${txForm} in array ${arrForm}`)
        assert.equal(decodeBlock(bytes).ok, arrForm === 4 && txForm === (len > 255 ? 16 : 8), `${len} bytes, bin ${txForm}, array ${arrForm}`)
      }
    }
  }
  // a header that reads field by field but is not canonical, or not a header
  for (const fields of [
    [...h.subarray(0, 1), 0xd9, 15, ...h.subarray(2)], // the tag as str 8
    [0x9c, ...h.subarray(1, 17), 0xcc, 5, ...h.subarray(26)], // the height as a small int
    [0x9b, ...h.subarray(1)], // eleven fields announced
  ]) {
    same(new Uint8Array([0x93, ...fields, 0x90, 0x90]), {}, 'a header not as the encoder writes it')
    assert.equal(decodeBlock(new Uint8Array([0x93, ...fields, 0x90, 0x90])).ok, false)
  }
})
