/**
 * Micro benchmarks of the ledger's hot paths (not a test): `npm run bench:micro [-- --accounts N --blocks B]`.
 *
 *  1. Ed25519 verifications per second: `verify` (OpenSSL, warm key cache) vs `verifyPureJs`;
 *  2. transaction decodes per second;
 *  3. seeding N accounts (default 1,000,000) into a classic-level store, then `execute` + write + `commit` of
 *     10,000-transfer blocks over them, with signatures already verified (the mempool's cache: the normal path)
 *     and with every signature verified during execution; per block and per transfer (the state-root update is part
 *     of `execute`, and is also timed alone: the block's changed accounts staged again on the same state), with the
 *     process's memory after the blocks.
 * Prints a table and a JSON line; numbers are single-threaded.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { addressFromPublicKey } from '../crypto/address.js'
import { keyPairFromSeed, verify, verifyPureJs } from '../crypto/ed25519.js'
import { bytesEqual } from '../crypto/bytes.js'
import { sha256 } from '../crypto/hash.js'
import { GENESIS_SEED_BATCH } from '../genesis/genesis.js'
import { LedgerState } from '../ledger/ledgerState.js'
import { decodeTransaction, encodeTransaction, signTransaction, txHash, txSignBytes, type DecodedTransaction } from '../ledger/transaction.js'
import { VerifiedTxCache } from '../ledger/verifiedTxCache.js'
import { LevelKvStore } from '../node/storage/levelKvStore.js'

const args = process.argv.slice(2)
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const ACCOUNTS = arg('accounts', 1_000_000)
const BLOCKS = arg('blocks', 4)
const BLOCK_TXS = 10_000
const SENDERS = 2_000
const CHAIN = 'tally-bench'

let peakRss = 0
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}

/** Runs `fn` repeatedly for at least `ms` milliseconds; returns calls per second. */
function rate(fn: (i: number) => void, ms: number): number {
  let n = 0
  const start = performance.now()
  let now = start
  while (now - start < ms) {
    for (let k = 0; k < 100; k++) fn(n++)
    now = performance.now()
  }
  return (n * 1000) / (now - start)
}

function dirBytes(dir: string): number {
  let total = 0
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const s = statSync(p)
    total += s.isDirectory() ? dirBytes(p) : s.size
  }
  return total
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

async function main(): Promise<void> {
  const results: Record<string, number> = {}

  // 1. Verification.
  const keys = Array.from({ length: 64 }, (_, i) => keyPairFromSeed(sha256(new Uint8Array([i, 1]))))
  const signed = Array.from({ length: 1024 }, (_, i) => {
    const k = keys[i % keys.length]!
    const tx = signTransaction(
      { chainId: CHAIN, from: k.publicKey, to: new Uint8Array(20).fill(i & 0xff), amount: BigInt(i + 1), nonce: BigInt(i) },
      k.secretKey,
    )
    return { pk: k.publicKey, msg: txSignBytes(tx), sig: tx.signature, bytes: encodeTransaction(tx) }
  })
  for (const s of signed) if (!verify(s.pk, s.msg, s.sig)) throw new Error('bench: signature does not verify') // warms the key cache
  results.verifyPerSec = rate((i) => {
    const s = signed[i & 1023]!
    verify(s.pk, s.msg, s.sig)
  }, 2000)
  results.verifyPureJsPerSec = rate((i) => {
    const s = signed[i & 1023]!
    verifyPureJs(s.pk, s.msg, s.sig)
  }, 2000)
  // 2. Decoding.
  results.decodePerSec = rate((i) => {
    if (!decodeTransaction(signed[i & 1023]!.bytes).ok) throw new Error('bench: decode failed')
  }, 2000)
  console.log(`verify (OpenSSL, warm key cache): ${fmt(results.verifyPerSec)}/s`)
  console.log(`verifyPureJs:                     ${fmt(results.verifyPureJsPerSec)}/s`)
  console.log(`decodeTransaction:                ${fmt(results.decodePerSec)}/s`)

  // 3. State: seed, then execute blocks.
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-'))
  try {
    const store = await LevelKvStore.open(join(dir, 'db'))
    const state = await LedgerState.open(store)
    const senders = Array.from({ length: SENDERS }, (_, i) => keyPairFromSeed(sha256(new Uint8Array([i & 0xff, i >> 8, 2]))))
    const senderAddresses = senders.map((k) => addressFromPublicKey(k.publicKey))
    const addressOf = (i: number) => (i < SENDERS ? senderAddresses[i]! : sha256(new Uint8Array([i & 0xff, (i >> 8) & 0xff, i >> 16, 3])).slice(0, 20))
    const SEED_BATCH = GENESIS_SEED_BATCH
    const seedStart = performance.now()
    for (let start = 0; start < ACCOUNTS; start += SEED_BATCH) {
      const entries = []
      for (let i = start; i < Math.min(ACCOUNTS, start + SEED_BATCH); i++)
        entries.push({ address: addressOf(i), account: { balance: 1_000_000_000n, nonce: 0n } })
      const r = await state.setAccounts(entries)
      await store.write(r.ops)
      state.commit(r)
      sampleRss()
    }
    results.seedAccounts = ACCOUNTS
    results.seedSeconds = (performance.now() - seedStart) / 1000
    results.dbBytesAfterSeed = dirBytes(dir)
    ;(globalThis as { gc?: () => void }).gc?.() // with --expose-gc: heap after seeding without its garbage
    results.rssAfterSeedMb = process.memoryUsage().rss / 1e6
    results.heapAfterSeedMb = process.memoryUsage().heapUsed / 1e6
    console.log(
      `seeded ${fmt(ACCOUNTS)} accounts in ${results.seedSeconds.toFixed(1)} s (${(results.dbBytesAfterSeed / 1e6).toFixed(0)} MB on disk, RSS ${results.rssAfterSeedMb.toFixed(0)} MB, heap ${results.heapAfterSeedMb.toFixed(0)} MB)`,
    )

    // Blocks of 10,000 transfers: each sender sends 5 per block, to random accounts among all.
    const perSender = BLOCK_TXS / SENDERS
    let rnd = 12345
    const next = () => (rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0)
    const signStart = performance.now()
    const blocks: DecodedTransaction[][] = []
    for (let b = 0; b < BLOCKS; b++) {
      const txs: DecodedTransaction[] = []
      for (let s = 0; s < SENDERS; s++) {
        for (let k = 0; k < perSender; k++) {
          const tx = signTransaction(
            {
              chainId: CHAIN,
              from: senders[s]!.publicKey,
              to: addressOf(next() % ACCOUNTS),
              amount: 1n + BigInt(next() % 1000),
              nonce: BigInt(b * perSender + k),
            },
            senders[s]!.secretKey,
          )
          const bytes = encodeTransaction(tx)
          txs.push({ tx, bytes, hash: txHash(bytes) })
        }
      }
      blocks.push(txs)
    }
    console.log(`(signed ${fmt(BLOCKS * BLOCK_TXS)} transfers in ${((performance.now() - signStart) / 1000).toFixed(1)} s)`)

    const cache = new VerifiedTxCache({ maxEntries: 1_000_000 })
    const timings: { cached: boolean; executeMs: number; rootMs: number; writeMs: number; ok: number }[] = []
    for (let b = 0; b < BLOCKS; b++) {
      // Half the blocks arrive with signatures verified by the mempool (the cache), half are verified in execution.
      const cached = b % 2 === 0
      if (cached) for (const t of blocks[b]!) cache.add(t.hash)
      const t0 = performance.now()
      const r = await state.execute(blocks[b]!, { chainId: CHAIN, verified: cached ? cache : undefined })
      const t1 = performance.now()
      // the state-root update alone: the block's changed accounts staged again on the same committed state (the
      // accounts hashed, the tree rewritten; its nodes were just read by execute, so this is the warm cost)
      const rootStart = performance.now()
      const again = await state.setAccounts(r.changed)
      const rootMs = performance.now() - rootStart
      if (!bytesEqual(again.stateRoot, r.stateRoot)) throw new Error('bench: staging the changed accounts gave another root')
      const t1b = performance.now()
      await store.write(r.ops)
      state.commit(r)
      const t2 = performance.now()
      sampleRss()
      const ok = r.receipts.filter((x) => x.ok).length
      if (ok !== BLOCK_TXS) throw new Error(`bench: only ${ok} of ${BLOCK_TXS} transfers applied`)
      timings.push({ cached, executeMs: t1 - t0, rootMs, writeMs: t2 - t1b, ok })
      console.log(
        `block ${b + 1}: ${cached ? 'signatures cached ' : 'signatures checked'} execute ${(t1 - t0).toFixed(0)} ms (state-root update alone ${rootMs.toFixed(0)} ms), write+commit ${(t2 - t1b).toFixed(0)} ms, ${r.ops.length} ops`,
      )
    }
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const c = timings.filter((t) => t.cached)
    const v = timings.filter((t) => !t.cached)
    results.blockTxs = BLOCK_TXS
    results.executeCachedMs = avg(c.map((t) => t.executeMs))
    results.executeVerifyingMs = avg(v.map((t) => t.executeMs))
    results.writeCommitMs = avg(timings.map((t) => t.writeMs))
    results.stateRootMs = avg(timings.map((t) => t.rootMs))
    // per transfer: execute (the state-root update included) and the write + commit of its block
    results.executeCachedUsPerTx = (1000 * results.executeCachedMs) / BLOCK_TXS
    results.executeVerifyingUsPerTx = (1000 * results.executeVerifyingMs) / BLOCK_TXS
    results.writeCommitUsPerTx = (1000 * results.writeCommitMs) / BLOCK_TXS
    results.stateRootUsPerTx = (1000 * results.stateRootMs) / BLOCK_TXS
    results.tpsCached = (BLOCK_TXS * 1000) / (results.executeCachedMs + results.writeCommitMs)
    results.tpsVerifying = (BLOCK_TXS * 1000) / (results.executeVerifyingMs + results.writeCommitMs)
    results.dbBytesAfterBlocks = dirBytes(dir)
    // a restart's cost: the state opened again, its tree's resident levels computed from the store
    const openStart = performance.now()
    const reopened = await LedgerState.open(store)
    results.openMs = performance.now() - openStart
    if (!bytesEqual(reopened.root(), state.root())) throw new Error('bench: the state opened again has another root')
    console.log(`state opened again (the tree's upper levels computed from the store): ${results.openMs.toFixed(0)} ms`)
    results.peakRssMb = peakRss / 1e6
    console.log(
      `execute+commit, 10,000 transfers over ${fmt(ACCOUNTS)} accounts: ${fmt(results.tpsCached)} tx/s (signatures cached), ${fmt(results.tpsVerifying)} tx/s (verifying)`,
    )
    console.log(
      `per transfer: execute ${fmt(results.executeCachedUsPerTx)} µs (signatures cached), ${fmt(results.executeVerifyingUsPerTx)} µs (verifying), of which the state-root update ~${fmt(results.stateRootUsPerTx)} µs (warm); write + commit ${fmt(results.writeCommitUsPerTx)} µs`,
    )
    const mem = process.memoryUsage()
    results.heapUsedMb = mem.heapUsed / 1e6
    results.arrayBuffersMb = mem.arrayBuffers / 1e6
    results.levelDbMb = store.approximateMemoryBytes() / 1e6
    console.log(
      `peak RSS ${results.peakRssMb.toFixed(0)} MB; now V8 heap ${results.heapUsedMb.toFixed(0)} MB, array buffers ${results.arrayBuffersMb.toFixed(0)} MB, LevelDB ${results.levelDbMb.toFixed(0)} MB`,
    )
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(results))
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
