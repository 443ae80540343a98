import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fromHex, to0x, toHex } from '../../../crypto/bytes.js'
import { encodeCanonical } from '../../../crypto/canonical.js'
import { sha256 } from '../../../crypto/hash.js'
import {
  EMPTY_TX_ROOT, MAX_BLOCK_BYTES, ZERO_HASH, blockHash, decodeBlock, decodeBlockHeader, decodeBlockTransactions,
  encodeBlock, encodeBlockHeader, txRoot, type BlockHeader,
} from '../../../ledger/block.js'
import { MAX_TX_BYTES, createTransfer } from '../../../ledger/transaction.js'
import { loadFixture } from '../../helpers/fixtures.js'

interface GoldenBlocks {
  header: { chainId: string; height: number; time: number; previousBlockHash: string; txRoot: string; stateRoot: string; proposer: string; validatorSetHash: string; lastCommitHash: string }
  headerBytes: string
  blockHash: string
  txRoots: { hashes: string[]; root: string }[]
}

const golden = () => loadFixture<GoldenBlocks>('golden/blocks.json')
function goldenHeader(): BlockHeader {
  const g = golden().header
  return {
    chainId: g.chainId, height: g.height, time: g.time, previousBlockHash: fromHex(g.previousBlockHash)!, txRoot: fromHex(g.txRoot)!,
    stateRoot: fromHex(g.stateRoot)!, proposer: fromHex(g.proposer)!, validatorSetHash: fromHex(g.validatorSetHash)!, lastCommitHash: fromHex(g.lastCommitHash)!,
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

test('txRoot: leaves and inner nodes are domain-separated; order matters', () => {
  const a = sha256(new Uint8Array([1]))
  const b = sha256(new Uint8Array([2]))
  assert.deepEqual(txRoot([a]), sha256(new Uint8Array([0]), a))
  assert.deepEqual(txRoot([a, b]), sha256(new Uint8Array([1]), sha256(new Uint8Array([0]), a), sha256(new Uint8Array([0]), b)))
  assert.notDeepEqual(txRoot([a, b]), txRoot([b, a]))
  // An inner node is not a leaf: a one-transaction tree whose "hash" is an inner node's preimage gives another root.
  assert.notDeepEqual(txRoot([a, b]), txRoot([sha256(new Uint8Array([0]), a)]))
})

test('blocks round-trip; decodeBlockTransactions checks the txs against the header', () => {
  const txs = [1, 2, 3].map((i) => createTransfer(new Uint8Array(32).fill(i), { chainId: 'tally-test', to: new Uint8Array(20).fill(i), amount: BigInt(i), nonce: 0n }))
  const header = { ...goldenHeader(), txRoot: txRoot(txs.map((t) => t.hash)) }
  const bytes = encodeBlock({ header, txs: txs.map((t) => t.bytes) })
  const d = decodeBlock(bytes)
  assert.ok(d.ok)
  assert.deepEqual(d.value.header, header)
  assert.deepEqual(d.value.txs.map(toHex), txs.map((t) => toHex(t.bytes)))
  const checked = decodeBlockTransactions(d.value)
  assert.ok(checked.ok)
  assert.deepEqual(checked.txs.map((t) => toHex(t.hash)), txs.map((t) => toHex(t.hash)))
  const swapped = decodeBlockTransactions({ header, txs: [txs[1]!.bytes, txs[0]!.bytes, txs[2]!.bytes] })
  assert.ok(!swapped.ok && /txRoot/.test(swapped.error.reason))
  const twice = decodeBlockTransactions({ header: { ...header, txRoot: txRoot([txs[0]!.hash, txs[0]!.hash]) }, txs: [txs[0]!.bytes, txs[0]!.bytes] })
  assert.ok(!twice.ok && /repeats/.test(twice.error.reason))
  const junk = decodeBlockTransactions({ header, txs: [new Uint8Array([1, 2, 3])] })
  assert.ok(!junk.ok && /tx 0/.test(junk.error.reason))
})

test('decoding rejects malformed headers and blocks with a reason', () => {
  const h = goldenHeader()
  const tuple = (o: Partial<Record<keyof BlockHeader | 'tag', unknown>>) => {
    const v = { tag: 'tally/header/v1', ...h, ...o }
    const u64 = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? BigInt(x) : x)
    return [v.tag, v.chainId, u64(v.height), u64(v.time), v.previousBlockHash, v.txRoot, v.stateRoot, v.proposer, v.validatorSetHash, v.lastCommitHash]
  }
  const bad: [unknown, string][] = [
    [tuple({ tag: 'tally/header/v2' }), 'tag'],
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
    [tuple({}).slice(0, 9), 'field count'],
  ]
  for (const [t, desc] of bad) {
    const r = decodeBlockHeader(encodeCanonical(t as never))
    assert.ok(!r.ok && r.error.code === 'malformed' && r.error.reason.length > 0, desc)
    const b = decodeBlock(encodeCanonical([t as never, []]))
    assert.ok(!b.ok, desc)
  }
  const good = tuple({})
  assert.ok(decodeBlockHeader(encodeCanonical(good as never)).ok)
  const blockBad: [Uint8Array, string][] = [
    [encodeCanonical([good as never]), 'no txs'],
    [encodeCanonical([good as never, [new Uint8Array(0)]]), 'empty tx'],
    [encodeCanonical([good as never, [new Uint8Array(MAX_TX_BYTES + 1)]]), 'oversized tx'],
    [encodeCanonical([good as never, ['x']]), 'tx not bytes'],
    [new Uint8Array([...encodeCanonical([good as never, []]), 0]), 'trailing byte'],
    [new Uint8Array(MAX_BLOCK_BYTES + 1), 'oversized block'],
  ]
  for (const [bytes, desc] of blockBad) assert.equal(decodeBlock(bytes).ok, false, desc)
  assert.equal(decodeBlock(encodeCanonical([good as never, [new Uint8Array(5), new Uint8Array(5)]]), { maxTxs: 1 }).ok, false)
  assert.equal(decodeBlock(encodeCanonical([good as never, []]), { maxBytes: 10 }).ok, false)
  assert.throws(() => encodeBlockHeader({ ...h, height: 1.5 }), RangeError)
})
