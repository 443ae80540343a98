import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fromHex, to0x } from '../crypto/bytes.js'
import { parseAddress } from '../crypto/address.js'
import { keyPairFromSeed } from '../crypto/ed25519.js'
import { encodeTransaction, signTransaction, txHash } from '../ledger/transaction.js'

/**
 * The load benchmark's submitter, a separate process so that submission does not share an event loop with the
 * measurement. Driven over IPC by bench/load.ts:
 *  - `{cmd: 'prepare', dir, accounts, perAccount, chainId}` pre-signs transfers (answers `{prepared}`);
 *  - `{cmd: 'run', urls, rate /* tx/s, 0 = saturation *\/, seconds, batch, maxOutstanding}` submits in JSON-RPC
 *    batches, open loop at `rate` (or, at saturation, closed loop with at most `maxOutstanding` transactions between
 *    submission and commit), round-robin over the nodes, and tracks commit times by following new blocks;
 *    answers `{admitted, rejected, errors, latenciesMs, firstHeight, lastHeight}`.
 */

interface Prepared { hash: string; hex: string }

let queue: Prepared[] = []
let next = 0

async function post(url: string, body: unknown, timeoutMs = 10_000): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) })
  return res.json()
}

function prepare(dir: string, accounts: number, perAccount: number, chainId: string): number {
  const keys = Array.from({ length: accounts }, (_, i) => {
    const k = JSON.parse(readFileSync(join(dir, 'keys', `account${i}.json`), 'utf8')) as { secretKey: string; address: string }
    return keyPairFromSeed(fromHex(k.secretKey, 32)!)
  })
  const sink = parseAddress('0x' + 'be'.repeat(20))!
  queue = []
  // nonce-major order: every account's nonce 0 first, then nonce 1, … so no sender runs far ahead
  for (let n = 0; n < perAccount; n++) {
    for (const k of keys) {
      // the public key is derived once per account: signing is then one OpenSSL call
      const bytes = encodeTransaction(signTransaction({ chainId, from: k.publicKey, to: sink, amount: 1n, nonce: BigInt(n) }, k.secretKey))
      queue.push({ hash: to0x(txHash(bytes)), hex: to0x(bytes) })
    }
  }
  next = 0
  return queue.length
}

async function run(urls: string[], rate: number, seconds: number, batch: number, maxOutstanding: number) {
  const submitted = new Map<string, number>()
  const latenciesMs: number[] = []
  let admitted = 0
  let rejected = 0
  let errors = 0
  const startHeight = (await post(urls[0]!, { jsonrpc: '2.0', id: 1, method: 'node_status', params: [] })).result.height as number
  let followHeight = startHeight
  let following = true
  let drainDeadline = Infinity

  // follow committed blocks on node 0 and stamp commit times
  const follower = (async () => {
    while (following || submitted.size > 0) {
      const r = await post(urls[0]!, { jsonrpc: '2.0', id: 1, method: 'chain_getBlock', params: [followHeight + 1] }).catch(() => null)
      const block = r?.result as { txs: (string | { hash: string })[] } | null | undefined
      if (block) {
        const now = performance.now()
        followHeight++
        for (const t of block.txs) {
          const h = typeof t === 'string' ? t : t.hash
          const at = submitted.get(h)
          if (at !== undefined) {
            latenciesMs.push(now - at)
            submitted.delete(h)
          }
        }
        continue
      }
      if (!following && performance.now() > drainDeadline) break
      await new Promise((r) => setTimeout(r, 20))
    }
  })()

  const t0 = performance.now()
  const end = t0 + seconds * 1000
  let sent = 0
  let rr = 0
  const inflight = new Set<Promise<void>>()
  while (performance.now() < end && next < queue.length) {
    if (rate > 0) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate)
      if (sent >= due) {
        await new Promise((r) => setTimeout(r, 2))
        continue
      }
    } else if (inflight.size >= 8) {
      await Promise.race(inflight)
      continue
    } else if (submitted.size >= maxOutstanding) {
      // closed loop at saturation: keep a bounded number of transactions between submission and commit
      await new Promise((r) => setTimeout(r, 2))
      continue
    }
    const n = rate > 0 ? Math.min(batch, Math.max(1, Math.floor(((performance.now() - t0) / 1000) * rate) - sent)) : batch
    const items = queue.slice(next, next + n)
    next += items.length
    sent += items.length
    const url = urls[rr++ % urls.length]!
    const body = items.map((it, i) => ({ jsonrpc: '2.0', id: i, method: 'tx_submit', params: [it.hex] }))
    const stamp = performance.now()
    for (const it of items) submitted.set(it.hash, stamp)
    const p = post(url, body).then((res: { id: number; error?: unknown }[] | { error?: { message?: string } }) => {
      if (!Array.isArray(res)) throw new Error(`batch refused: ${res.error?.message ?? 'not a batch response'}`)
      for (const r of res) {
        if (r.error) {
          rejected++
          submitted.delete(items[r.id]!.hash)
        } else admitted++
      }
    }, () => {
      errors += items.length
      for (const it of items) submitted.delete(it.hash)
    }).finally(() => inflight.delete(p))
    inflight.add(p)
  }
  await Promise.all(inflight)
  following = false
  drainDeadline = performance.now() + 15_000
  await follower
  return { admitted, rejected, errors, uncommitted: submitted.size, latenciesMs, firstHeight: startHeight + 1, lastHeight: followHeight, elapsedMs: performance.now() - t0 }
}

process.on('message', (m: any) => {
  void (async () => {
    try {
      if (m.cmd === 'prepare') process.send!({ prepared: prepare(m.dir, m.accounts, m.perAccount, m.chainId) })
      else if (m.cmd === 'run') process.send!(await run(m.urls, m.rate, m.seconds, m.batch, m.maxOutstanding ?? Infinity))
      else if (m.cmd === 'exit') process.exit(0)
    } catch (e) {
      process.send!({ error: String((e as Error).stack ?? e) })
    }
  })()
})
