import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compareBytes, to0x, toHex } from '../../../crypto/bytes.js'
import { encodeCanonical } from '../../../crypto/canonical.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { sha256 } from '../../../crypto/hash.js'
import {
  DEFAULT_PARAMS,
  canonicalArrayHeader,
  encodeBalanceEntries,
  formatGenesis,
  genesisHash,
  genesisState,
  initialStateOps,
  parseCompactGenesis,
  parseGenesis,
  type Genesis,
  type GenesisJson,
} from '../../../genesis/genesis.js'
import { GenesisBalances, sortBalances } from '../../../genesis/genesisBalances.js'
import { LedgerState } from '../../../ledger/ledgerState.js'
import { EMPTY_HASH } from '../../../ledger/smt.js'
import { MemoryKvStore, type KvStore } from '../../../ledger/store.js'
import { loadFixture } from '../../helpers/fixtures.js'
import { Rng } from '../../helpers/random.js'

interface GoldenGenesis {
  genesis: GenesisJson
  genesisTimeMs: number
  stateRoot: string
  genesisHash: string
}
const golden = () => loadFixture<GoldenGenesis>('golden/genesis.json')
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

test('the golden genesis parses; its state root and hash match (cross-checked with python hashlib)', async () => {
  const g = golden()
  const r = parseGenesis(g.genesis)
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error.errors))
  assert.equal(r.value.genesisTimeMs, g.genesisTimeMs)
  assert.equal(r.value.params.timeouts.proposeMs, 2000)
  assert.equal(r.value.params.timeouts.prevoteMs, DEFAULT_PARAMS.timeouts.prevoteMs)
  assert.equal(r.value.params.block.maxTxs, 5000)
  assert.equal(to0x(genesisHash(r.value)), g.genesisHash)
  const { stateRoot, ops } = await initialStateOps(r.value)
  assert.equal(to0x(stateRoot), g.stateRoot)
  const store = new MemoryKvStore()
  const state = await genesisState(r.value, store)
  assert.equal(to0x(state.root()), g.stateRoot)
  assert.equal(store.size, ops.length)
  assert.equal(to0x((await LedgerState.open(store)).root()), g.stateRoot)
  await assert.rejects(genesisState(r.value, store), /already holds a state/)
})

test('genesis state seeded in batches of any size is the state computed in one piece, key for key', async () => {
  const r = parseGenesis(golden().genesis)
  assert.ok(r.ok)
  assert.ok(r.value.balances.length >= 2, 'the golden genesis has balances to split')
  const whole = new MemoryKvStore()
  await whole.write((await initialStateOps(r.value)).ops)
  for (const batch of [1, 2, r.value.balances.length]) {
    const store = new MemoryKvStore()
    const state = await genesisState(r.value, store, batch)
    assert.equal(to0x(state.root()), golden().stateRoot)
    assert.equal(store.size, whole.size, `batch ${batch}`)
  }
})

/** The genesis hash as its definition reads: one canonical encoding of the whole tuple. */
function referenceGenesisHash(genesis: Genesis): Uint8Array {
  const t = genesis.params.timeouts
  const g = genesis.params.governance
  const v = genesis.params.evidence
  return sha256(
    encodeCanonical([
      'tally/genesis/v2',
      genesis.chainId,
      BigInt(genesis.genesisTimeMs),
      genesis.validators.map((v) => [v.name, v.publicKey, BigInt(v.power), v.peerId]),
      [...genesis.balances].sort((a, b) => compareBytes(a.address, b.address)).map((b) => [b.address, b.amount]),
      [
        t.proposeMs,
        t.proposeDeltaMs,
        t.prevoteMs,
        t.prevoteDeltaMs,
        t.precommitMs,
        t.precommitDeltaMs,
        t.commitMs,
        genesis.params.block.maxTxs,
        genesis.params.block.maxBytes,
        genesis.params.emptyBlockIntervalMs,
        g.voteExpiryHeights,
        g.maxOpenVotes,
        v.maxAgeHeights,
        v.maxPerBlock,
      ].map((n) => BigInt(n)),
      g.removeOffenders,
    ]),
  )
}

const parsedGolden = (): Genesis => {
  const r = parseGenesis(golden().genesis)
  assert.ok(r.ok)
  return r.value
}

/**
 * The golden genesis with `n` random balances instead of its own: random amounts, all the same amount, or the
 * encoding's edge amounts first (their total exceeds a u64: for hashing only).
 */
function withBalances(n: number, seed: number, amounts: 'random' | 'same' | 'edges'): Genesis {
  const rng = new Rng(seed)
  const edges = [1n, 2n ** 31n, 2n ** 32n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]
  const amount = (i: number) => (amounts === 'same' ? 7n : amounts === 'edges' && i < edges.length ? edges[i]! : BigInt(1 + rng.int(1e9)))
  return { ...parsedGolden(), balances: Array.from({ length: n }, (_, i) => ({ address: rng.bytes(20), amount: amount(i) })) }
}

test('the genesis hash, encoded in pieces, is the hash of the whole encoding, at every array header size', () => {
  for (const n of [0, 1, 2, 15, 16, 17, 4097, 65536]) {
    const g = withBalances(n, n, 'edges')
    assert.deepEqual(genesisHash(g), referenceGenesisHash(g), `${n} balances`)
  }
  for (const n of [0, 15, 16, 65535, 65536, 1_000_000]) {
    const nils = encodeCanonical(new Array(n).fill(null))
    assert.deepEqual(canonicalArrayHeader(n), nils.subarray(0, nils.byteLength - n), `header of ${n}`)
  }
  const g = withBalances(40, 1, 'edges')
  const entries = encodeBalanceEntries(sortBalances(g.balances))
  const sorted = [...g.balances].sort((a, b) => compareBytes(a.address, b.address))
  assert.equal(entries.map((e) => toHex(e)).join(''), sorted.map((b) => toHex(encodeCanonical([b.address, b.amount]))).join(''))
  assert.equal(to0x(referenceGenesisHash(parsedGolden())), golden().genesisHash)
})

test('the genesis state built bottom-up is the state the ledger stages, key for key, for any number of balances', async () => {
  for (const n of [0, 1, 2, 3, 17, 1000]) {
    for (const amounts of ['random', 'same'] as const) {
      const g = withBalances(n, 100 + n, amounts)
      const reference = new MemoryKvStore()
      const { stateRoot, ops } = await initialStateOps(g)
      await reference.write(ops)
      const store = new MemoryKvStore()
      const state = await genesisState(g, store, 64)
      assert.deepEqual(state.root(), stateRoot, `${n} balances`)
      assert.deepEqual(
        store.entries().map((e) => toHex(e.key) + toHex(e.value)),
        reference.entries().map((e) => toHex(e.key) + toHex(e.value)),
        `${n} balances`,
      )
      // the same genesis read compactly seeds the same state
      const list = new GenesisBalances()
      for (const b of formatGenesis(g).balances) list.add(b)
      const compact = parseCompactGenesis({ ...formatGenesis(g), balances: true }, list)
      assert.ok(compact.ok)
      const again = new MemoryKvStore()
      assert.deepEqual((await genesisState(compact.value, again)).root(), stateRoot)
      assert.equal(again.size, reference.size)
    }
  }
})

test('a genesis seeding cut short leaves no state, and seeding that store again gives the genesis state', async () => {
  const r = parseGenesis(golden().genesis)
  assert.ok(r.ok)
  const store = new MemoryKvStore()
  let writes = 0
  const cut: KvStore = {
    get: (k) => store.get(k),
    getMany: (ks) => store.getMany(ks),
    readPrefix: (p) => store.readPrefix(p),
    write: async (ops) => {
      if (++writes === 2) throw new Error('power cut')
      await store.write(ops)
    },
  }
  await assert.rejects(genesisState(r.value, cut, 1), /power cut/)
  assert.ok(store.size > 0, 'the first batch was written')
  assert.equal(to0x((await LedgerState.open(store)).root()), to0x(EMPTY_HASH))
  const state = await genesisState(r.value, store, 1)
  assert.equal(to0x(state.root()), golden().stateRoot)
  assert.equal(to0x((await LedgerState.open(store)).root()), golden().stateRoot)
})

test('balance order in the file changes neither the state root nor the genesis hash; formatGenesis round-trips', async () => {
  const g = golden()
  const a = parseGenesis(g.genesis)
  const shuffled = clone(g.genesis)
  shuffled.balances.reverse()
  const b = parseGenesis(shuffled)
  assert.ok(a.ok && b.ok)
  assert.deepEqual(genesisHash(a.value), genesisHash(b.value))
  assert.deepEqual((await initialStateOps(a.value)).stateRoot, (await initialStateOps(b.value)).stateRoot)
  const again = parseGenesis(JSON.parse(JSON.stringify(formatGenesis(a.value))))
  assert.ok(again.ok)
  assert.deepEqual(again.value, a.value)
})

test('each problem is reported with the field it concerns', () => {
  const pk = (i: number) => to0x(keyPairFromSeed(new Uint8Array(32).fill(i)).publicKey)
  const small = `0x${'00'.repeat(32)}` // a small-order point (the identity's y = 0 is not canonical... either way rejected)
  const rows: { desc: string; edit: (g: Record<string, any>) => void; path: string; message: RegExp }[] = [
    {
      desc: 'unknown top-level field',
      edit: (g) => {
        g.extra = 1
      },
      path: 'extra',
      message: /unknown field/,
    },
    {
      desc: 'unknown validator field',
      edit: (g) => {
        g.validators[0].stake = 1
      },
      path: 'validators[0].stake',
      message: /unknown field/,
    },
    {
      desc: 'unknown params field',
      edit: (g) => {
        g.params.timeouts.foo = 1
      },
      path: 'params.timeouts.foo',
      message: /unknown field/,
    },
    {
      desc: 'missing chain id',
      edit: (g) => {
        delete g.chainId
      },
      path: 'chainId',
      message: /required/,
    },
    {
      desc: 'bad chain id',
      edit: (g) => {
        g.chainId = 'no spaces'
      },
      path: 'chainId',
      message: /A-Za-z0-9/,
    },
    {
      desc: 'bad timestamp',
      edit: (g) => {
        g.genesisTime = '2026-02-30T00:00:00Z'
      },
      path: 'genesisTime',
      message: /day 30/,
    },
    {
      desc: 'timestamp without zone',
      edit: (g) => {
        g.genesisTime = '2026-11-22T00:00:00'
      },
      path: 'genesisTime',
      message: /RFC 3339/,
    },
    {
      desc: 'no validators',
      edit: (g) => {
        g.validators = []
      },
      path: 'validators',
      message: /at least one/,
    },
    {
      desc: 'zero power',
      edit: (g) => {
        g.validators[1].power = 0
      },
      path: 'validators[1].power',
      message: /between 1/,
    },
    {
      desc: 'fractional power',
      edit: (g) => {
        g.validators[1].power = 1.5
      },
      path: 'validators[1].power',
      message: /integer/,
    },
    {
      desc: 'total power',
      edit: (g) => {
        g.validators[0].power = 2 ** 50 - 5
        g.validators[1].power = 2 ** 50 - 5
      },
      path: 'validators',
      message: /total power/,
    },
    {
      desc: 'malformed key',
      edit: (g) => {
        g.validators[0].publicKey = '0x1234'
      },
      path: 'validators[0].publicKey',
      message: /64 hex/,
    },
    {
      desc: 'small-order key',
      edit: (g) => {
        g.validators[0].publicKey = small
      },
      path: 'validators[0].publicKey',
      message: /acceptable/,
    },
    {
      desc: 'duplicate key',
      edit: (g) => {
        g.validators[1].publicKey = g.validators[0].publicKey
      },
      path: 'validators[1].publicKey',
      message: /duplicates validators\[0\]/,
    },
    {
      desc: 'duplicate name',
      edit: (g) => {
        g.validators[1].name = 'node0'
        g.validators[1].publicKey = pk(9)
      },
      path: 'validators[1].name',
      message: /duplicates/,
    },
    {
      desc: 'duplicate peer id',
      edit: (g) => {
        g.validators[1].peerId = g.validators[0].peerId
      },
      path: 'validators[1].peerId',
      message: /duplicates/,
    },
    {
      desc: 'bad peer id',
      edit: (g) => {
        g.validators[1].peerId = 'not a peer id'
      },
      path: 'validators[1].peerId',
      message: /peer id/,
    },
    {
      desc: 'bad address',
      edit: (g) => {
        g.balances[0].address = '0x12'
      },
      path: 'balances[0].address',
      message: /40 hex/,
    },
    {
      desc: 'duplicate address (any case)',
      edit: (g) => {
        g.balances[2].address = g.balances[2].address.toLowerCase()
        g.balances.push({ ...g.balances[2], address: g.balances[2].address.toUpperCase().replace('0X', '0x') })
      },
      path: 'balances[5].address',
      message: /duplicates balances\[2\]/,
    },
    {
      desc: 'amount not a string',
      edit: (g) => {
        g.balances[1].amount = 5
      },
      path: 'balances[1].amount',
      message: /decimal string/,
    },
    {
      desc: 'negative amount',
      edit: (g) => {
        g.balances[1].amount = '-5'
      },
      path: 'balances[1].amount',
      message: /decimal string/,
    },
    {
      desc: 'leading zero',
      edit: (g) => {
        g.balances[1].amount = '05'
      },
      path: 'balances[1].amount',
      message: /leading zeros/,
    },
    {
      desc: 'amount above u64',
      edit: (g) => {
        g.balances[1].amount = '18446744073709551616'
      },
      path: 'balances[1].amount',
      message: /below 2\^64/,
    },
    {
      desc: 'zero amount',
      edit: (g) => {
        g.balances[1].amount = '0'
      },
      path: 'balances[1].amount',
      message: /positive/,
    },
    {
      desc: 'supply overflow',
      edit: (g) => {
        g.balances[1].amount = '18446744073709551615'
      },
      path: 'balances',
      message: /total supply/,
    },
    {
      desc: 'timeout too small',
      edit: (g) => {
        g.params.timeouts.proposeMs = 0
      },
      path: 'params.timeouts.proposeMs',
      message: /between 1/,
    },
    {
      desc: 'block too large',
      edit: (g) => {
        g.params.block.maxBytes = 1e9
      },
      path: 'params.block.maxBytes',
      message: /between/,
    },
  ]
  for (const row of rows) {
    const g = clone(golden().genesis) as Record<string, any>
    row.edit(g)
    const r = parseGenesis(g)
    assert.ok(!r.ok, row.desc)
    const hit = r.error.errors.find((e) => e.path === row.path)
    assert.ok(hit !== undefined, `${row.desc}: no error at ${row.path}, got ${JSON.stringify(r.error.errors)}`)
    assert.match(hit.message, row.message, row.desc)
  }
})

test('several problems are all reported at once; non-objects are rejected', () => {
  const g = clone(golden().genesis) as Record<string, any>
  g.chainId = ''
  g.validators[0].power = -1
  g.balances[0].amount = 'x'
  const r = parseGenesis(g)
  assert.ok(!r.ok)
  assert.deepEqual(r.error.errors.map((e) => e.path).sort(), ['balances[0].amount', 'chainId', 'validators[0].power'])
  for (const bad of [null, [], 'genesis', 5]) {
    const x = parseGenesis(bad)
    assert.ok(!x.ok && x.error.errors[0]!.path === '' && /object/.test(x.error.errors[0]!.message))
  }
})
