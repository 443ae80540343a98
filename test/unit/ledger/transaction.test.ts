import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fromHex, to0x, toHex } from '../../../crypto/bytes.js'
import { encodeCanonical } from '../../../crypto/canonical.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import {
  MAX_TX_BYTES,
  U64_MAX,
  createTransfer,
  decodeTransaction,
  decodeTransactionStrict,
  encodeTransaction,
  readCanonicalLayout,
  signGovernanceTransaction,
  signedBytesOf,
  signedBytesOfDecoded,
  txSignBytes,
  verifyDecodedSignature,
  verifyTransactionSignature,
  type AnyTransaction,
  type Transaction,
} from '../../../ledger/transaction.js'
import { loadFixture } from '../../helpers/fixtures.js'
import { Rng } from '../../helpers/random.js'

interface GoldenTx {
  seed: string
  chainId: string
  to: string
  amount: string
  nonce: string
  signBytes: string
  wire: string
  hash: string
}

test('transaction encoding, sign bytes and hash match the golden vectors', () => {
  const golden = loadFixture<{ transactions: GoldenTx[] }>('golden/transactions.json')
  for (const g of golden.transactions) {
    const t = createTransfer(fromHex(g.seed)!, { chainId: g.chainId, to: fromHex(g.to)!, amount: BigInt(g.amount), nonce: BigInt(g.nonce) })
    assert.equal(toHex(txSignBytes(t.tx)), g.signBytes)
    assert.equal(to0x(t.bytes), g.wire)
    assert.equal(to0x(t.hash), g.hash)
    const d = decodeTransaction(fromHex(g.wire)!)
    assert.ok(d.ok)
    assert.equal(to0x(d.value.hash), g.hash)
    assert.ok(verifyTransactionSignature(d.value.tx))
    assert.equal(toHex(signedBytesOfDecoded(d.value)), g.signBytes)
    assert.ok(verifyDecodedSignature(d.value))
  }
})

const base = () => createTransfer(new Uint8Array(32).fill(3), { chainId: 'tally-test', to: new Uint8Array(20).fill(7), amount: 10n, nonce: 0n })

test('decode rejects each kind of malformed input with a reason', () => {
  const good = base().tx
  const raw = (fields: unknown[]) => encodeCanonical(fields as never)
  const f = (o: Partial<Record<keyof Transaction | 'version', unknown>>) => {
    const t = { version: 1, ...good, ...o }
    return raw([t.version, t.chainId, t.from, t.to, t.amount, t.nonce, t.signature])
  }
  const bad: [Uint8Array, string][] = [
    [f({ version: 2 }), 'version'],
    [f({ chainId: '' }), 'empty chain id'],
    [f({ chainId: 'x'.repeat(65) }), 'long chain id'],
    [f({ chainId: 'a b' }), 'chain id charset'],
    [f({ from: new Uint8Array(31) }), 'short key'],
    [f({ to: new Uint8Array(21) }), 'long address'],
    [f({ amount: 0n }), 'zero amount'],
    [f({ amount: 5 }), 'amount as a small int'],
    [f({ nonce: 'x' }), 'nonce type'],
    [f({ signature: new Uint8Array(63) }), 'short signature'],
    [raw([1, good.chainId]), 'too few fields'],
    [new Uint8Array([...base().bytes, 0]), 'trailing byte'],
    [new Uint8Array(MAX_TX_BYTES + 1), 'oversized'],
  ]
  for (const [bytes, why] of bad) {
    const d = decodeTransaction(bytes)
    assert.equal(d.ok, false, why)
    if (!d.ok) {
      assert.equal(d.error.code, 'malformed')
      assert.ok(d.error.reason.length > 0)
    }
  }
})

test('a tampered field breaks the signature; the original verifies', () => {
  const t = base()
  assert.ok(verifyTransactionSignature(t.tx))
  assert.equal(verifyTransactionSignature({ ...t.tx, amount: 11n }), false)
  assert.equal(verifyTransactionSignature({ ...t.tx, chainId: 'other' }), false)
})

test('sign bytes from the wire: a tampered field breaks the signature; a governance vote is encoded as before', () => {
  const t = base()
  assert.ok(verifyDecodedSignature(t))
  // the amount's last byte, and the last byte of the chain id: re-decoded, each is another transfer under the old signature
  for (const at of [t.bytes.byteLength - 66 - 9 - 1, 3]) {
    const bytes = t.bytes.slice()
    bytes[at]! ^= 1
    const d = decodeTransaction(bytes)
    assert.ok(d.ok)
    assert.deepEqual(signedBytesOfDecoded(d.value), signedBytesOf(d.value.tx))
    assert.equal(verifyDecodedSignature(d.value), false)
  }
  const seed = new Uint8Array(32).fill(3)
  const vote = signGovernanceTransaction(
    { chainId: 'tally-test', from: keyPairFromSeed(seed).publicKey, nonce: 4n, action: { type: 'remove', address: new Uint8Array(20).fill(2) } },
    seed,
  )
  const bytes = encodeTransaction(vote)
  const d = decodeTransaction(bytes)
  assert.ok(d.ok)
  assert.deepEqual(signedBytesOfDecoded(d.value), signedBytesOf(vote))
  assert.ok(verifyDecodedSignature(d.value))
})

test('encode refuses out-of-range values', () => {
  const t = base().tx
  assert.throws(() => encodeTransaction({ ...t, amount: 1n << 64n }), RangeError)
  assert.throws(() => encodeTransaction({ ...t, nonce: -1n }), RangeError)
})

test('100,000 random and mutated byte strings yield only typed errors or canonical transactions', () => {
  const rng = new Rng(42)
  const seeds = Array.from(
    { length: 8 },
    (_, i) =>
      createTransfer(new Uint8Array(32).fill(i + 1), {
        chainId: 'fuzz',
        to: new Uint8Array(20).fill(i),
        amount: BigInt(1 + i) << BigInt(8 * i),
        nonce: BigInt(i),
      }).bytes,
  )
  let accepted = 0
  for (let i = 0; i < 100_000; i++) {
    let input: Uint8Array
    if (i % 4 === 0) {
      input = rng.bytes(rng.int(300))
    } else {
      input = new Uint8Array(rng.pick(seeds))
      const edits = 1 + rng.int(4)
      for (let e = 0; e < edits; e++) {
        const op = rng.int(3)
        const at = rng.int(input.length)
        if (op === 0) input[at] = rng.nextU32() & 0xff
        else if (op === 1) input = new Uint8Array([...input.subarray(0, at), ...input.subarray(at + 1)])
        else input = new Uint8Array([...input.subarray(0, at), rng.nextU32() & 0xff, ...input.subarray(at)])
      }
    }
    const d = decodeTransaction(input)
    if (d.ok) {
      accepted++
      assert.equal(toHex(encodeTransaction(d.value.tx)), toHex(input), 'an accepted input is the canonical encoding')
    } else {
      assert.equal(d.error.code, 'malformed')
      assert.equal(typeof d.error.reason, 'string')
    }
  }
  assert.ok(accepted < 100_000)
})

/** The fields of a decoded transaction as comparable text. */
function fields(tx: AnyTransaction): string[] {
  if (tx.kind === 'governance') return [tx.chainId, toHex(tx.from), tx.nonce.toString(), toHex(tx.signature)]
  return [tx.chainId, toHex(tx.from), toHex(tx.to), tx.amount.toString(), tx.nonce.toString(), toHex(tx.signature)]
}

test("the layout reader takes every valid transaction, at every field boundary, with the strict decoder's value", () => {
  const chainIds = ['a', 'Z', '9', 'tally-test', 'a.b_c-d', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(63), 'w'.repeat(64)]
  const u64s = [
    0n,
    1n,
    127n,
    128n,
    255n,
    256n,
    65_535n,
    65_536n,
    (1n << 31n) - 1n,
    1n << 31n,
    (1n << 32n) - 1n,
    1n << 32n,
    (1n << 53n) + 1n,
    (1n << 63n) - 1n,
    1n << 63n,
    (1n << 63n) + 1n,
    U64_MAX - 1n,
    U64_MAX,
  ]
  let checked = 0
  for (const chainId of chainIds) {
    for (const amount of u64s) {
      if (amount === 0n) continue
      for (const nonce of [0n, amount - 1n, U64_MAX]) {
        const t = createTransfer(new Uint8Array(32).fill(5), { chainId, to: new Uint8Array(20).fill(9), amount, nonce })
        const fast = readCanonicalLayout(t.bytes)
        assert.ok(fast !== undefined, `layout reader refused ${chainId} ${amount} ${nonce}`)
        const strict = decodeTransactionStrict(t.bytes)
        assert.ok(strict.ok)
        assert.deepEqual(fields(fast), fields(strict.value.tx))
        assert.deepEqual(fields(fast), fields(t.tx))
        // a transfer's sign bytes are copied from its wire bytes: the same bytes as encoding its fields
        const decoded = decodeTransaction(t.bytes)
        assert.ok(decoded.ok)
        for (const d of [decoded.value, strict.value, t]) assert.deepEqual(signedBytesOfDecoded(d), txSignBytes(t.tx))
        assert.ok(verifyDecodedSignature(decoded.value))
        checked++
      }
    }
  }
  assert.equal(checked, chainIds.length * (u64s.length - 1) * 3)
  // a Buffer in (as the network hands them) gives plain Uint8Arrays out, like the strict decoder
  const t = createTransfer(new Uint8Array(32).fill(5), { chainId: 'tally-test', to: new Uint8Array(20).fill(9), amount: 5n, nonce: 1n })
  const fromBuffer = readCanonicalLayout(Buffer.concat([Buffer.from([1, 2, 3]), t.bytes]).subarray(3))!
  for (const field of [fromBuffer.from, fromBuffer.to, fromBuffer.signature]) assert.equal(Object.getPrototypeOf(field), Uint8Array.prototype)
  assert.deepEqual(fields(fromBuffer), fields(t.tx))
})

test('the layout reader never takes bytes the strict decoder refuses, nor reads them differently (100,000 mutations)', () => {
  const rng = new Rng(7)
  const seeds = [
    ...Array.from(
      { length: 6 },
      (_, i) =>
        createTransfer(new Uint8Array(32).fill(i + 1), {
          chainId: ['a', 'tally-test', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(64), 'A.b_c-9'][i]!,
          to: new Uint8Array(20).fill(i),
          amount: [1n, 2n ** 63n - 1n, 2n ** 63n, U64_MAX, 300n, 1n << 40n][i]!,
          nonce: BigInt(i) << BigInt(10 * i),
        }).bytes,
    ),
  ]
  let fastAccepted = 0
  for (let i = 0; i < 100_000; i++) {
    let input = new Uint8Array(rng.pick(seeds))
    const edits = 1 + rng.int(3)
    for (let e = 0; e < edits; e++) {
      const op = rng.int(4)
      const at = rng.int(input.length)
      if (op === 0) input[at] = rng.nextU32() & 0xff
      else if (op === 1) input[at] = input[at]! ^ (1 << rng.int(8))
      else if (op === 2) input = new Uint8Array([...input.subarray(0, at), ...input.subarray(at + 1)])
      else input = new Uint8Array([...input.subarray(0, at), rng.nextU32() & 0xff, ...input.subarray(at)])
    }
    const fast = readCanonicalLayout(input)
    const strict = decodeTransactionStrict(input)
    if (fast !== undefined) {
      fastAccepted++
      assert.ok(strict.ok, `layout reader took bytes the strict decoder refuses: ${toHex(input)}`)
      assert.deepEqual(fields(fast), fields(strict.value.tx))
    }
    const d = decodeTransaction(input)
    assert.equal(d.ok, strict.ok)
    if (d.ok && strict.ok) assert.deepEqual(fields(d.value.tx), fields(strict.value.tx))
    else if (!d.ok && !strict.ok) assert.equal(d.error.reason, strict.error.reason)
  }
  assert.ok(fastAccepted > 1000, `mutations that stay valid exercise the layout reader (${fastAccepted})`)
})

test('the public key of a golden seed', () => {
  assert.equal(toHex(keyPairFromSeed(new Uint8Array(32)).publicKey), '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29')
})
