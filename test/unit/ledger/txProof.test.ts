import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sha256 } from '../../../crypto/hash.js'
import { decodeCanonical, encodeCanonical } from '../../../crypto/canonical.js'
import { txRoot } from '../../../ledger/block.js'
import { txInclusionProof, verifyTxInclusion } from '../../../ledger/txProof.js'

const hashes = (n: number) => Array.from({ length: n }, (_, i) => sha256(new Uint8Array([i & 0xff, i >> 8])))

test('every transaction of blocks of 1 to 70 transactions has a proof that verifies against the root', () => {
  for (let n = 1; n <= 70; n++) {
    const hs = hashes(n)
    const root = txRoot(hs)
    for (let i = 0; i < n; i++) {
      const r = verifyTxInclusion(root, hs[i]!, txInclusionProof(hs, i))
      assert.ok(r.ok, `n=${n} i=${i}`)
      assert.deepEqual(r.value, { index: i, count: n })
    }
  }
})

/** RFC 6962's audit path by its recursive definition (§2.1.1), as the reference the tree's proofs must equal. */
function referencePath(hs: readonly Uint8Array[], index: number): Uint8Array[] {
  const split = (n: number) => {
    let k = 1
    while (k * 2 < n) k *= 2
    return k
  }
  const root = (lo: number, hi: number): Uint8Array =>
    hi - lo === 1 ? sha256(new Uint8Array([0]), hs[lo]!) : sha256(new Uint8Array([1]), root(lo, lo + split(hi - lo)), root(lo + split(hi - lo), hi))
  const path: Uint8Array[] = []
  const walk = (lo: number, hi: number): void => {
    if (hi - lo === 1) return
    const k = split(hi - lo)
    if (index < lo + k) {
      walk(lo, lo + k)
      path.push(root(lo + k, hi))
    } else {
      walk(lo + k, hi)
      path.push(root(lo, lo + k))
    }
  }
  walk(0, hs.length)
  return path
}

test('proofs are RFC 6962 audit paths, sibling for sibling by the recursive definition, for 1 to 70 and 1,000 to 1,030 leaves', () => {
  for (const n of [...Array.from({ length: 70 }, (_, i) => i + 1), ...Array.from({ length: 31 }, (_, i) => 1000 + i)]) {
    const hs = hashes(n)
    for (let i = 0; i < n; i += n > 100 ? 37 : 1) {
      assert.deepEqual(txInclusionProof(hs, i), encodeCanonical([i, n, referencePath(hs, i)]), `n=${n} i=${i}`)
    }
    if (n > 100) assert.deepEqual(txInclusionProof(hs, n - 1), encodeCanonical([n - 1, n, referencePath(hs, n - 1)]), `n=${n} last`)
  }
  assert.throws(() => txInclusionProof(hashes(3), 3), RangeError)
  assert.throws(() => txInclusionProof([new Uint8Array(31)], 0), RangeError)
})

test('a proof does not verify another transaction, index or root; tampered siblings fail', () => {
  const hs = hashes(13)
  const root = txRoot(hs)
  const proof = txInclusionProof(hs, 5)
  assert.ok(!verifyTxInclusion(root, hs[6]!, proof).ok, 'another transaction')
  assert.ok(!verifyTxInclusion(txRoot(hashes(12)), hs[5]!, proof).ok, 'another root')
  const d = decodeCanonical(proof, 4096)
  assert.ok(d.ok && Array.isArray(d.value))
  const [index, count, siblings] = d.value as [number, number, Uint8Array[]]
  const rows: [unknown, string][] = [
    [[index + 1, count, siblings], 'index'],
    [[index, count, siblings.slice(1)], 'a sibling fewer'],
    [[index, count, [...siblings, siblings[0]!]], 'a sibling more'],
    [[index, count, siblings.map((s, i) => (i === 1 ? sha256(s) : s))], 'a tampered sibling'],
    [[index, 0, siblings], 'zero count'],
    [[-1, count, siblings], 'negative index'],
  ]
  for (const [v, desc] of rows) assert.equal(verifyTxInclusion(root, hs[5]!, encodeCanonical(v as never)).ok, false, desc)
  assert.equal(verifyTxInclusion(root, hs[5]!, new Uint8Array([1, 2, 3])).ok, false, 'garbage')
})
