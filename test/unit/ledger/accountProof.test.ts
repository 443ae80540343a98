import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeCanonical, encodeCanonical } from '../../../crypto/canonical.js'
import { verifyAccountProof } from '../../../ledger/accountProof.js'
import { LedgerState } from '../../../ledger/ledgerState.js'
import { MemoryKvStore } from '../../../ledger/store.js'
import { Rng } from '../../helpers/random.js'

async function populated(n: number, rng: Rng) {
  const store = new MemoryKvStore()
  const state = await LedgerState.open(store)
  const entries = Array.from({ length: n }, () => ({ address: rng.bytes(20), account: { balance: BigInt(1 + rng.int(1e9)), nonce: BigInt(rng.int(5)) } }))
  const r = await state.setAccounts(entries)
  await store.write(r.ops)
  state.commit(r)
  return { state, entries }
}

test('membership and absence proofs verify against the root alone', async () => {
  const rng = new Rng(42)
  const { state, entries } = await populated(500, rng)
  const root = state.root()
  for (const { address, account } of entries.slice(0, 60)) {
    const p = await state.proveAccount(address)
    assert.deepEqual(p.account, account)
    assert.deepEqual(verifyAccountProof(root, address, p.proof), { ok: true, value: account })
  }
  for (let i = 0; i < 60; i++) {
    const address = rng.bytes(20)
    const p = await state.proveAccount(address)
    assert.equal(p.account, null)
    assert.deepEqual(verifyAccountProof(root, address, p.proof), { ok: true, value: null })
  }
})

test('the empty state proves every address absent, and a one-account state proves it', async () => {
  const empty = await LedgerState.open(new MemoryKvStore())
  const a = new Uint8Array(20).fill(1)
  assert.deepEqual(verifyAccountProof(empty.root(), a, (await empty.proveAccount(a)).proof), { ok: true, value: null })
  const { state, entries } = await populated(1, new Rng(1))
  const p = await state.proveAccount(entries[0]!.address)
  assert.deepEqual(verifyAccountProof(state.root(), entries[0]!.address, p.proof), { ok: true, value: entries[0]!.account })
  assert.deepEqual(verifyAccountProof(state.root(), a, (await state.proveAccount(a)).proof), { ok: true, value: null })
})

test('tampered proofs, forged accounts, wrong roots and other addresses fail', async () => {
  const rng = new Rng(9)
  const { state, entries } = await populated(300, rng)
  const root = state.root()
  const member = entries[7]!
  const membership = (await state.proveAccount(member.address)).proof
  // Every single-bit flip of a membership proof breaks it (or its encoding).
  for (let i = 0; i < membership.byteLength; i++) {
    const bad = new Uint8Array(membership)
    bad[i]! ^= 1 << rng.int(8)
    assert.equal(verifyAccountProof(root, member.address, bad).ok, false, `flip at byte ${i}`)
  }
  // A flipped absence proof may at most prove absence (never an account).
  const outsider = rng.bytes(20)
  const absence = (await state.proveAccount(outsider)).proof
  for (let i = 0; i < absence.byteLength; i++) {
    const bad = new Uint8Array(absence)
    bad[i]! ^= 1 << rng.int(8)
    const v = verifyAccountProof(root, outsider, bad)
    if (v.ok) assert.equal(v.value, null)
  }
  // A well-formed proof with a forged balance fails.
  const decoded = decodeCanonical(membership, 1 << 16)
  assert.ok(decoded.ok)
  const [siblings, terminal] = decoded.value as [Uint8Array[], [number, [bigint, bigint]]]
  const forged = encodeCanonical([siblings, [1, [terminal[1][0] + 1n, terminal[1][1]]]])
  assert.match((verifyAccountProof(root, member.address, forged) as { error: { reason: string } }).error.reason, /does not match the root/)
  const wrongRoot = new Uint8Array(root)
  wrongRoot[0]! ^= 1
  assert.equal(verifyAccountProof(wrongRoot, member.address, membership).ok, false)
  assert.equal(verifyAccountProof(root, entries[8]!.address, membership).ok, false)
})

test('malformed proof bytes are rejected with a reason, never thrown', () => {
  const root = new Uint8Array(32)
  const a = new Uint8Array(20)
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([0xc1]),
    encodeCanonical([[], [9]]),
    encodeCanonical([[new Uint8Array(31)], [0]]),
    encodeCanonical([[new Uint8Array(32)], [0]]), // the empty hash must be written as empty bytes
    encodeCanonical([Array.from({ length: 257 }, () => new Uint8Array(0)), [0]]),
    encodeCanonical([[], [1, [0n, 0n]]]),
    encodeCanonical([[], [1, [1n]]]),
    encodeCanonical([[], [2, new Uint8Array(32), new Uint8Array(31)]]),
    new Uint8Array(20_000),
  ]
  for (const c of cases) {
    const v = verifyAccountProof(root, a, c)
    assert.equal(v.ok, false)
    assert.ok(!v.ok && v.error.reason.length > 0)
  }
  assert.equal(verifyAccountProof(new Uint8Array(31), a, encodeCanonical([[], [0]])).ok, false)
  assert.equal(verifyAccountProof(root, new Uint8Array(19), encodeCanonical([[], [0]])).ok, false)
  assert.deepEqual(verifyAccountProof(root, a, encodeCanonical([[], [0]])), { ok: true, value: null })
})
