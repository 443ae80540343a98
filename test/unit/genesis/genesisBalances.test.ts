import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseAddress } from '../../../crypto/address.js'
import { toHex } from '../../../crypto/bytes.js'
import { FieldErrors, join, type FieldError } from '../../../genesis/fieldErrors.js'
import { genesisHash, parseCompactGenesis, parseGenesis, parseGenesisHeader, type GenesisJson } from '../../../genesis/genesis.js'
import { AMOUNT_RE, GenesisBalances, MAX_GENESIS_BALANCES } from '../../../genesis/genesisBalances.js'
import { U64_MAX } from '../../../ledger/transaction.js'
import { loadFixture } from '../../helpers/fixtures.js'
import { Rng } from '../../helpers/random.js'

const golden = () => loadFixture<{ genesis: GenesisJson }>('golden/genesis.json').genesis
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

// The balances' checks as parseGenesis made them on the whole parsed array (one object per balance, a map of the
// addresses seen): the reference the compact list's problems are held to, path for path and in order.
function referenceErrors(balances: unknown[]): FieldError[] {
  const e = new FieldErrors()
  if (balances.length > MAX_GENESIS_BALANCES) {
    e.add('balances', `must list at most ${MAX_GENESIS_BALANCES} balances`)
    return e.list
  }
  const seen = new Map<string, number>()
  let supply = 0n
  balances.forEach((b: unknown, i: number) => {
    const p = join('balances', i)
    if (!e.object(p, b, ['address', 'amount'], ['address', 'amount'])) return
    const address = typeof b.address === 'string' ? parseAddress(b.address) : undefined
    if (address === undefined) e.add(join(p, 'address'), 'must be 0x + 40 hex digits')
    else {
      const first = seen.get(toHex(address))
      if (first !== undefined) e.add(join(p, 'address'), `duplicates balances[${first}].address`)
      else seen.set(toHex(address), i)
    }
    if (typeof b.amount !== 'string' || !AMOUNT_RE.test(b.amount)) e.add(join(p, 'amount'), 'must be a decimal string (no sign, no leading zeros)')
    else {
      const amount = BigInt(b.amount)
      if (amount > U64_MAX) e.add(join(p, 'amount'), 'must be below 2^64')
      else if (amount === 0n) e.add(join(p, 'amount'), 'must be positive (an unlisted address already holds zero)')
      else supply += amount
    }
  })
  if (supply > U64_MAX) e.add('balances', `total supply ${supply} exceeds 2^64-1`)
  return e.list
}

function randomBalance(rng: Rng, addresses: string[]): unknown {
  const address = () => {
    const r = rng.int(10)
    if (r < 3 && addresses.length > 0) {
      const a = rng.pick(addresses)
      return rng.chance(0.5) ? a.toUpperCase().replace('0X', '0x') : a // an earlier one, maybe in another case
    }
    if (r === 3) return rng.pick(['0x12', '', 5, null, `0x${'g'.repeat(40)}`, `1x${'1'.repeat(40)}`, `0X${'a'.repeat(40)}`])
    const a = `0x${toHex(rng.bytes(20))}`
    addresses.push(a)
    return a
  }
  const amount = () =>
    rng.pick<unknown>(['1', '5', '0', '05', '-5', 5, '18446744073709551615', '18446744073709551616', '99999999999999999999', 'x', String(rng.int(1e9) + 1)])
  switch (rng.int(12)) {
    case 0:
      return rng.pick<unknown>([null, 5, 'b', [1]])
    case 1:
      return { address: address(), amount: amount(), extra: 1 }
    case 2:
      return rng.chance(0.5) ? { address: address() } : { amount: amount() }
    default:
      return { address: address(), amount: amount() }
  }
}

test('the compact list reports what the whole-array checks report, path for path and in order', () => {
  const rng = new Rng(5)
  for (let round = 0; round < 300; round++) {
    const addresses: string[] = []
    const balances = Array.from({ length: rng.int(round % 10 === 0 ? 400 : 12) }, () => randomBalance(rng, addresses))
    const list = new GenesisBalances()
    for (const b of balances) list.add(b)
    const r = list.finish()
    const expected = referenceErrors(balances)
    if (expected.length === 0) assert.ok(r.ok, `round ${round}`)
    else {
      assert.ok(!r.ok, `round ${round}: expected ${JSON.stringify(expected)}`)
      assert.deepEqual(r.error.errors, expected, `round ${round}`)
    }
    const g = clone(golden()) as unknown as Record<string, unknown>
    g.balances = balances
    const whole = parseGenesis(g)
    assert.deepEqual(whole.ok ? [] : whole.error.errors, expected, `round ${round}, parseGenesis`)
  }
})

test('valid balances come out sorted by address whatever the file order, with their amounts', () => {
  const rng = new Rng(9)
  const entries = Array.from({ length: 3000 }, () => ({ address: `0x${toHex(rng.bytes(20))}`, amount: String(rng.int(1e9) + 1) }))
  for (const order of [entries, [...entries].sort((a, b) => (a.address < b.address ? -1 : 1))]) {
    const list = new GenesisBalances()
    for (const b of order) list.add(b)
    const r = list.finish()
    assert.ok(r.ok)
    assert.equal(r.value.count, entries.length)
    const want = [...entries].sort((a, b) => (a.address < b.address ? -1 : 1))
    for (let i = 0; i < want.length; i++) {
      assert.equal(`0x${toHex(r.value.addresses.subarray(20 * i, 20 * i + 20))}`, want[i]!.address)
      assert.equal(r.value.amounts[i], BigInt(want[i]!.amount))
    }
  }
})

test('past the bound only the bound is reported', () => {
  const list = new GenesisBalances()
  const b = { address: `0x${'11'.repeat(20)}`, amount: '1' }
  for (let i = 0; i <= MAX_GENESIS_BALANCES; i++) list.add(i % 2 === 0 ? b : 'junk')
  const r = list.finish()
  assert.ok(!r.ok)
  assert.deepEqual(r.error.errors, [{ path: 'balances', message: `must list at most ${MAX_GENESIS_BALANCES} balances` }])
})

test('a genesis fed balance by balance is the genesis parsed whole; a header is checked without its balances', () => {
  const g = golden()
  for (const balances of [g.balances, [...g.balances].reverse(), []]) {
    const list = new GenesisBalances()
    for (const b of balances) list.add(b)
    const compact = parseCompactGenesis({ ...g, balances: true }, list)
    const whole = parseGenesis({ ...g, balances })
    assert.ok(compact.ok && whole.ok)
    assert.deepEqual(genesisHash(compact.value), genesisHash(whole.value))
    assert.equal(compact.value.balances.count, whole.value.balances.length)
    const { balances: _, ...header } = whole.value
    const parsedHeader = parseGenesisHeader({ ...g, balances: 'not looked at' })
    assert.ok(parsedHeader.ok)
    assert.deepEqual(parsedHeader.value, header)
  }
  // the header's own problems, and a missing balances field, are still reported
  const bad = clone(g) as unknown as Record<string, unknown>
  bad.chainId = 'no spaces'
  delete bad.balances
  const h = parseGenesisHeader(bad)
  assert.ok(!h.ok)
  assert.deepEqual(
    h.error.errors.map((e) => e.path),
    ['balances', 'chainId'],
  )
  const list = new GenesisBalances()
  list.add({ address: '0x12', amount: '1' })
  const c = parseCompactGenesis({ ...g, chainId: 'no spaces', balances: true }, list)
  const w = parseGenesis({ ...g, chainId: 'no spaces', balances: [{ address: '0x12', amount: '1' }] })
  assert.ok(!c.ok && !w.ok)
  assert.deepEqual(c.error.errors, w.error.errors)
})
