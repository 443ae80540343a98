import { readFileSync } from 'node:fs'
import { Agent } from 'node:http'
import WebSocket from 'ws'
import { join } from 'node:path'
import { fromHex, to0x } from '../crypto/bytes.js'
import { parseAddress } from '../crypto/address.js'
import { keyPairFromSeed } from '../crypto/ed25519.js'
import { encodeTransaction, signTransaction, txHash } from '../ledger/transaction.js'
import { postJson } from './postJson.js'

/**
 * The load benchmark's submitter, a separate process so that submission does not share an event loop with the
 * measurement. Driven over IPC by bench/load.ts:
 *  - `{cmd: 'prepare', dir, accounts, perAccount, chainId, spread}` pre-signs transfers from the first `accounts` key
 *    files (answers `{prepared}`), to one sink address, or with `spread` to addresses drawn from every genesis balance;
 *  - `{cmd: 'run', urls, rate /* tx/s, 0 = saturation *\/, seconds, batch, maxOutstanding}` submits in JSON-RPC
 *    batches, open loop at `rate` (or, at saturation, closed loop with at most `maxOutstanding` transactions between
 *    submission and commit), round-robin over the nodes, and tracks commit times through node 0's `newBlocks`
 *    WebSocket subscription; answers `{admitted, rejected, errors, errorReasons, latenciesMs, firstHeight,
 *    lastHeight}`. A request that got no answer is sent once more.
 *
 * Open loop sends every {@link TICK_MS} the transactions that have come due (as one batch, up to `batch`), and a
 * transaction's latency counts from the moment it came due, so the wait for the next tick is part of it.
 */

interface Prepared {
  hash: string
  hex: string
}

/** Open loop: how often due transactions are sent. */
const TICK_MS = 5

let queue: Prepared[] = []
let next = 0

/**
 * One keep-alive connection pool for every request: the submitter stands in for clients on other machines, so what
 * it costs the shared cores should be what a lean client costs (Node's own HTTP client, no per-request set-up).
 * Its connections are used in turn (`fifo`): with the default `lifo`, connections opened while a node was slow sat
 * idle until the server closed them (its keep-alive timeout, 5 s), and a later burst that picked one as it closed
 * failed with `ECONNRESET`.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 16, scheduling: 'fifo' })

function post(url: string, body: unknown, timeoutMs = 10_000): Promise<any> {
  return postJson(url, body, agent, timeoutMs)
}

function prepare(dir: string, accounts: number, perAccount: number, chainId: string, spread: boolean): number {
  const keys = Array.from({ length: accounts }, (_, i) => {
    const k = JSON.parse(readFileSync(join(dir, 'keys', `account${i}.json`), 'utf8')) as { secretKey: string; address: string }
    return keyPairFromSeed(fromHex(k.secretKey, 32)!)
  })
  const sink = parseAddress(`0x${'be'.repeat(20)}`)!
  const recipients = spread
    ? (JSON.parse(readFileSync(join(dir, 'genesis.json'), 'utf8')) as { balances: { address: string }[] }).balances.map((b) => parseAddress(b.address)!)
    : [sink]
  let rnd = 12345
  const recipient = () => {
    rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0
    return recipients[rnd % recipients.length]!
  }
  // queued nonce-major (every account's nonce 0 first, then nonce 1, …) so no sender runs far ahead, but signed
  // account-major, so each account's signing key is imported into OpenSSL once and then reused from its small cache
  queue = new Array<Prepared>(accounts * perAccount)
  keys.forEach((k, a) => {
    for (let n = 0; n < perAccount; n++) {
      const bytes = encodeTransaction(signTransaction({ chainId, from: k.publicKey, to: recipient(), amount: 1n, nonce: BigInt(n) }, k.secretKey))
      queue[n * accounts + a] = { hash: to0x(txHash(bytes)), hex: to0x(bytes) }
    }
  })
  next = 0
  return queue.length
}

async function run(urls: string[], rate: number, seconds: number, batch: number, maxOutstanding: number) {
  const submitted = new Map<string, number>()
  const latenciesMs: number[] = []
  let admitted = 0
  let rejected = 0
  let errors = 0
  /** Why requests failed, with how often (a request sent twice counts twice). */
  const errorReasons: Record<string, number> = {}
  const noteError = (e: Error) => {
    errorReasons[e.message] = (errorReasons[e.message] ?? 0) + 1
  }
  // sent once more when it got no answer, as the batches below are: a phase's first request may take a keep-alive
  // connection that idled between phases while the node closed it (its keep-alive timeout)
  const status = { jsonrpc: '2.0', id: 1, method: 'node_status', params: [] }
  const startHeight = (
    await post(urls[0]!, status).catch((e: Error) => {
      noteError(e)
      return post(urls[0]!, status)
    })
  ).result.height as number
  let followHeight = startHeight
  let drained: () => void = () => {}
  const allCommitted = new Promise<void>((r) => {
    drained = r
  })
  let following = true

  // follow committed blocks on node 0 and stamp commit times
  const ws = new WebSocket(`${urls[0]!.replace(/^http/, 'ws')}/ws`)
  await new Promise<void>((resolveOpen, rejectOpen) => {
    ws.once('open', () => resolveOpen())
    ws.once('error', rejectOpen)
  })
  let subscribed: () => void = () => {}
  const subscription = new Promise<void>((r) => {
    subscribed = r
  })
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { id?: number; method?: string; params?: { result: { height: number; txs: string[] } } }
    if (m.id === 1) subscribed()
    if (m.method !== 'chain_subscription' || !m.params) return
    const now = performance.now()
    const block = m.params.result
    if (block.height <= startHeight) return
    followHeight = Math.max(followHeight, block.height)
    for (const h of block.txs) {
      const at = submitted.get(h)
      if (at !== undefined) {
        latenciesMs.push(now - at)
        submitted.delete(h)
      }
    }
    if (!following && submitted.size === 0) drained()
  })
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribe', params: ['newBlocks'] }))
  await subscription

  const t0 = performance.now()
  const end = t0 + seconds * 1000
  let sent = 0
  let rr = 0
  const inflight = new Set<Promise<void>>()
  while (performance.now() < end && next < queue.length) {
    let n = batch
    let dueAt = performance.now()
    if (rate > 0) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate)
      if (sent >= due) {
        await new Promise((r) => setTimeout(r, TICK_MS))
        continue
      }
      n = Math.min(batch, due - sent)
    } else if (inflight.size >= 8) {
      await Promise.race(inflight)
      continue
    } else if (submitted.size >= maxOutstanding) {
      // closed loop at saturation: keep a bounded number of transactions between submission and commit
      await new Promise((r) => setTimeout(r, 2))
      continue
    }
    const items = queue.slice(next, next + n)
    next += items.length
    const url = urls[rr++ % urls.length]!
    const body = items.map((it, i) => ({ jsonrpc: '2.0', id: i, method: 'tx_submit', params: [it.hex] }))
    items.forEach((it, i) => {
      // open loop: from the moment the transaction came due; closed loop: from now
      if (rate > 0) dueAt = t0 + ((sent + i + 1) / rate) * 1000
      submitted.set(it.hash, dueAt)
    })
    sent += items.length
    // a request that got no answer (the connection failed) is sent once more, as a client would: a transaction the
    // first one did admit then comes back `duplicate`, and counts as admitted
    let retried = false
    const p = post(url, body)
      .catch((e: Error) => {
        noteError(e)
        retried = true
        return post(url, body)
      })
      .then(
        (res: { id: number; error?: unknown }[] | { error?: { message?: string } }) => {
          if (!Array.isArray(res)) throw new Error(`batch refused: ${res.error?.message ?? 'not a batch response'}`)
          for (const r of res) {
            if (r.error && !(retried && (r.error as { data?: { reason?: string } }).data?.reason === 'duplicate')) {
              rejected++
              submitted.delete(items[r.id]!.hash)
            } else admitted++
          }
        },
        (e: Error) => {
          noteError(e)
          errors += items.length
          for (const it of items) submitted.delete(it.hash)
        },
      )
      .finally(() => inflight.delete(p))
    inflight.add(p)
  }
  await Promise.all(inflight)
  following = false
  if (submitted.size > 0) await Promise.race([allCommitted, new Promise((r) => setTimeout(r, 15_000))])
  ws.close()
  return {
    admitted,
    rejected,
    errors,
    errorReasons,
    uncommitted: submitted.size,
    latenciesMs,
    firstHeight: startHeight + 1,
    lastHeight: followHeight,
    elapsedMs: performance.now() - t0,
  }
}

process.on('message', (m: any) => {
  void (async () => {
    try {
      if (m.cmd === 'prepare') process.send!({ prepared: prepare(m.dir, m.accounts, m.perAccount, m.chainId, m.spread === true) })
      else if (m.cmd === 'run') process.send!(await run(m.urls, m.rate, m.seconds, m.batch, m.maxOutstanding ?? Infinity))
      else if (m.cmd === 'exit') process.exit(0)
    } catch (e) {
      process.send!({ error: String((e as Error).stack ?? e) })
    }
  })()
})
