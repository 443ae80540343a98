import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { toHex } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { LedgerState } from '../../../ledger/ledgerState.js'
import type { Receipt } from '../../../ledger/receipt.js'
import { MemoryKvStore, type KvStore } from '../../../ledger/store.js'
import {
  U64_MAX,
  decodeTransaction,
  encodeTransaction,
  signTransaction,
  type DecodedTransaction,
  type UnsignedTransaction,
} from '../../../ledger/transaction.js'
import { VerifiedTxCache } from '../../../ledger/verifiedTxCache.js'
import { LevelKvStore } from '../../../node/storage/levelKvStore.js'
import { Rng } from '../../helpers/random.js'

const CHAIN = 'tally-determinism'
const ACCOUNTS = 1000
const TXS = 10_000
const BLOCK = 500

interface Scenario {
  genesis: { address: Uint8Array; balance: bigint }[]
  blocks: DecodedTransaction[][]
  /** Receipts computed by the test's own model of the rules, independently of the ledger. */
  expected: Receipt[][]
}

/** A seeded workload: mostly valid transfers, plus bad nonces, overdrafts, bad signatures, wrong chain, overflows. */
function makeScenario(seed: number): Scenario {
  const rng = new Rng(seed)
  const keys = Array.from({ length: ACCOUNTS }, (_, i) => {
    const s = rng.bytes(32)
    s[0] = i & 0xff
    return keyPairFromSeed(s)
  })
  const addresses = keys.map((k) => addressFromPublicKey(k.publicKey))
  const model = new Map<string, { balance: bigint; nonce: bigint }>()
  const get = (a: Uint8Array) => model.get(toHex(a)) ?? { balance: 0n, nonce: 0n }
  const genesis = addresses.map((address, i) => ({ address, balance: i % 10 === 9 ? 0n : i === 3 ? U64_MAX - 10n : BigInt(1 + rng.int(1_000_000)) }))
  for (const g of genesis) if (g.balance > 0n) model.set(toHex(g.address), { balance: g.balance, nonce: 0n })
  const fresh = Array.from({ length: 50 }, () => rng.bytes(20))
  // First the fields and the model's receipts; signing comes after, grouped by sender (the signer's key cache is small).
  const plan: { from: number; fields: UnsignedTransaction; badSig: number | undefined }[] = []
  const receipts: Receipt[] = []
  for (let i = 0; i < TXS; i++) {
    const from = rng.int(ACCOUNTS)
    const sender = get(addresses[from]!)
    const to = rng.chance(0.05) ? rng.pick(fresh) : rng.chance(0.02) ? addresses[3]! : rng.chance(0.01) ? addresses[from]! : addresses[rng.int(ACCOUNTS)]!
    const kind = rng.float()
    let nonce = sender.nonce
    let amount = BigInt(1 + rng.int(2000))
    let chainId = CHAIN
    if (kind < 0.05) nonce += BigInt(1 + rng.int(3))
    else if (kind < 0.08 && nonce > 0n) nonce -= 1n
    else if (kind < 0.12) amount = sender.balance + 1n + BigInt(rng.int(10))
    else if (kind < 0.15) chainId = 'other-chain'
    const badSig = kind >= 0.15 && kind < 0.18 ? rng.int(256) : undefined
    plan.push({ from, fields: { chainId, from: keys[from]!.publicKey, to, amount, nonce }, badSig })
    // The model, straight from the rules in docs/formats.md.
    const s = get(addresses[from]!)
    const r = get(to)
    const self = toHex(to) === toHex(addresses[from]!)
    if (chainId !== CHAIN) receipts.push({ ok: false, code: 'wrong_chain' })
    else if (badSig !== undefined) receipts.push({ ok: false, code: 'invalid_signature' })
    else if (nonce !== s.nonce) receipts.push({ ok: false, code: 'bad_nonce' })
    else if (s.balance < amount) receipts.push({ ok: false, code: 'insufficient_funds' })
    else if (!self && r.balance + amount > U64_MAX) receipts.push({ ok: false, code: 'balance_overflow' })
    else {
      receipts.push({ ok: true })
      if (self) model.set(toHex(to), { balance: s.balance, nonce: s.nonce + 1n })
      else {
        model.set(toHex(addresses[from]!), { balance: s.balance - amount, nonce: s.nonce + 1n })
        model.set(toHex(to), { balance: r.balance + amount, nonce: r.nonce })
      }
    }
  }
  const txs: DecodedTransaction[] = new Array(TXS)
  const order = plan.map((_, i) => i).sort((a, b) => plan[a]!.from - plan[b]!.from || a - b)
  for (const i of order) {
    const p = plan[i]!
    const tx = signTransaction(p.fields, keys[p.from]!.secretKey)
    // A bad signature: one bit flipped (in R or S), re-encoded so it still decodes.
    const signature = new Uint8Array(tx.signature)
    if (p.badSig !== undefined) signature[p.badSig >> 3]! ^= 1 << (p.badSig & 7)
    const d = decodeTransaction(encodeTransaction({ ...tx, signature }))
    assert.ok(d.ok)
    txs[i] = d.value
  }
  const blocks: DecodedTransaction[][] = []
  const expected: Receipt[][] = []
  for (let b = 0; b < TXS; b += BLOCK) {
    blocks.push(txs.slice(b, b + BLOCK))
    expected.push(receipts.slice(b, b + BLOCK))
  }
  return { genesis, blocks, expected }
}

async function run(
  store: KvStore,
  s: Scenario,
  verified?: VerifiedTxCache,
  reopenEvery?: number,
): Promise<{ receipts: Receipt[][]; roots: string[]; opsDigest: string[] }> {
  let state = await LedgerState.open(store)
  const g = await state.setAccounts(s.genesis.map(({ address, balance }) => ({ address, account: { balance, nonce: 0n } })))
  await store.write(g.ops)
  state.commit(g)
  const roots = [toHex(state.root())]
  const receipts: Receipt[][] = []
  const opsDigest: string[] = []
  for (const [i, block] of s.blocks.entries()) {
    // opened again from the store alone: the tree's resident levels computed from what is stored
    if (reopenEvery !== undefined && i % reopenEvery === reopenEvery - 1) state = await LedgerState.open(store)
    const r = await state.execute(block, { chainId: CHAIN, verified })
    await store.write(r.ops)
    state.commit(r)
    receipts.push(r.receipts)
    roots.push(toHex(r.stateRoot))
    opsDigest.push(r.ops.map((o) => `${o.type}${toHex(o.key)}${o.type === 'put' ? toHex(o.value) : ''}`).join(','))
  }
  return { receipts, roots, opsDigest }
}

test("10,000 seeded transfers over 1,000 accounts give the model's receipts and identical roots and ops through both stores, twice", async () => {
  const scenario = makeScenario(20261122)
  const failures: string[] = scenario.expected.flat().map((r) => (r.ok ? 'ok' : r.code))
  for (const code of ['wrong_chain', 'invalid_signature', 'bad_nonce', 'insufficient_funds', 'balance_overflow']) {
    assert.ok(failures.includes(code), `workload exercises ${code}`)
  }
  const cache = new VerifiedTxCache()
  const memory = await run(new MemoryKvStore(), scenario, cache)
  assert.deepEqual(memory.receipts, scenario.expected)

  const dir = mkdtempSync(join(tmpdir(), 'tally-determinism-'))
  try {
    const level = await LevelKvStore.open(join(dir, 'db'))
    try {
      // Through classic-level, with signatures already verified by the first run, opened again every seventh block:
      // same outcome.
      const onLevel = await run(level, scenario, cache, 7)
      assert.deepEqual(onLevel, memory)
    } finally {
      await level.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  // A second run over a fresh store (signatures found in the cache, bad ones checked again): the same again.
  const again = await run(new MemoryKvStore(), scenario, cache)
  assert.deepEqual(again, memory)
})
