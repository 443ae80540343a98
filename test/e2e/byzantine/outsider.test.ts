import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { parseAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { rpc, waitFor } from '../harness.js'
import { readDevKey } from '../load.js'
import { AttackNet, Verdict } from './attackNet.js'

/**
 * Attacks that need no validator key, against four real `tallyd` validators: idle TCP connections that hold the
 * p2p listener's slots, and transfers whose nonces lie far ahead that fill a small mempool. Each attack is preceded
 * by its control (the same flow without the attack), which must pass.
 */

/** A small mempool, so that a few accounts can fill it. */
const MEMPOOL_MAX_TXS = 100
/** Idle connections kept open to each validator. */
const IDLE_SOCKETS = 32
/** How soon a restarted validator must be back at two peers once it serves RPC. */
const RECONNECT_MS = 10_000

/** Keeps `count` idle TCP connections open from 127.0.0.2 to each port, opening a new one whenever one closes. */
class IdleSockets {
  private readonly sockets = new Set<Socket>()
  private stopped = false
  opened = 0

  constructor(private readonly ports: readonly number[], private readonly count: number) {
    for (const port of ports) for (let k = 0; k < count; k++) this.open(port)
  }

  /** Connections currently established. */
  get established(): number {
    let n = 0
    for (const s of this.sockets) if (!s.connecting && !s.destroyed) n++
    return n
  }

  private open(port: number): void {
    if (this.stopped) return
    const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
    this.opened++
    this.sockets.add(s)
    s.on('error', () => undefined)
    s.on('close', () => {
      this.sockets.delete(s)
      // at once, give or take a tick: a listener that closes idle connections meets a new one straight away
      if (!this.stopped) setTimeout(() => this.open(port), 10).unref()
    })
  }

  stop(): void {
    this.stopped = true
    for (const s of this.sockets) s.destroy()
  }
}

describe('attacks from outside the validator set', { timeout: 300_000 }, () => {
  let a: AttackNet
  let chainId: string

  before(async () => {
    a = await AttackNet.start({ noAttacker: true, configure: (config) => { config.mempool.maxTxs = MEMPOOL_MAX_TXS } })
    chainId = (await rpc<{ chainId: string }>(a.net.rpcUrl(0), 'node_status')).chainId
    console.log(`# testnet ${a.net.dir}`)
  })

  after(async () => {
    await a?.destroy()
  })

  /**
   * Restarts validator 1 and returns how long it took, once it answers RPC (its last component to start; how long
   * a process takes to start is the machine's business), to report two peers. Throws past the deadline.
   */
  async function restartValidator1(): Promise<{ startMs: number; peersMs: number }> {
    await a.net.stop(1)
    const t0 = Date.now()
    a.net.start(1)
    await waitFor('validator 1 to answer RPC after its start', () => a.height(1).then((h) => h !== undefined), 60_000, 100)
    const t1 = Date.now()
    await waitFor('validator 1 to be back at two or more peers', async () => {
      const s = await rpc<{ peers: number }>(a.net.rpcUrl(1), 'node_status', [], 1_000)
      return s.peers >= 2
    }, RECONNECT_MS, 200)
    return { startMs: t1 - t0, peersMs: Date.now() - t1 }
  }

  test('control: a restarted validator is back at two peers in time', async () => {
    await a.beginPhase()
    const r = await restartValidator1()
    console.log(`# control: validator 1 answered RPC ${r.startMs} ms after its start, and had 2+ peers ${r.peersMs} ms later`)
    await a.assertHealthy()
  })

  test(`idle sockets: ${IDLE_SOCKETS} idle connections to each validator, reopened as they close; a restarted validator reconnects`, async () => {
    await a.beginPhase()
    const ports = a.honest.map((i) => a.net.p2pPort + i)
    const idle = new IdleSockets(ports, IDLE_SOCKETS)
    const v = new Verdict()
    try {
      await waitFor('the idle connections to be established', () => idle.established >= ports.length * 20, 10_000)
      await v.check('validator 1 reconnects', async () => {
        const r = await restartValidator1()
        console.log(`# idle sockets: validator 1 answered RPC ${r.startMs} ms after its start, and had 2+ peers ${r.peersMs} ms later`)
      })
      console.log(`# idle sockets: ${idle.opened} connections opened, ${idle.established} established now`)
    } finally {
      idle.stop()
    }
    await v.check('after the idle sockets', () => a.assertHealthy())
    v.done()
  })

  test('gapped-nonce flood through RPC: payable transfers from another account still get in and commit', async () => {
    await a.beginPhase()
    const faucet = readDevKey(a.net.keyFile('faucet'))
    const to = parseAddress(readDevKey(a.net.keyFile('account3')).address)!
    const urls = a.honest.map((i) => a.net.rpcUrl(i))
    const pay = async (url: string) => {
      const nonce = BigInt(await rpc<string>(url, 'ledger_getNextNonce', [faucet.address]))
      const t = createTransfer(faucet.secretKey, { chainId, to, amount: 3n, nonce })
      await rpc(url, 'tx_submit', [to0x(t.bytes)])
      return to0x(t.hash)
    }
    const committedWithin = async (hash: string, heights: number) => {
      const start = await a.maxHeight()
      const r = await waitFor(`transfer ${hash} to commit`, async () => {
        const got = await rpc<{ status: string; height?: number }>(urls[0]!, 'tx_get', [hash])
        return got.status === 'committed' ? got : false
      }, 30_000)
      assert.ok(r.height! <= start + heights, `committed at ${r.height}, more than ${heights} heights after ${start}`)
    }

    // control: a payable transfer commits within a few heights
    await committedWithin(await pay(urls[0]!), 4)

    // the flood: three accounts queue transfers whose nonces skip their next one, so none can ever execute
    const outcomes = new Map<string, number>()
    for (const k of [0, 1, 2]) {
      const key = readDevKey(a.net.keyFile(`account${k}`))
      const next = BigInt((await rpc<{ nonce: string }>(urls[0]!, 'ledger_getAccount', [key.address])).nonce)
      for (let gap = 1n; gap <= 64n; gap++) {
        const t = createTransfer(key.secretKey, { chainId, to, amount: 1n, nonce: next + gap })
        const url = urls[Number(gap) % urls.length]!
        const code = await rpc(url, 'tx_submit', [to0x(t.bytes)]).then(() => 'admitted', (e: { reason?: string }) => e.reason ?? 'error')
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1)
      }
    }
    console.log(`# gapped-nonce flood: ${JSON.stringify(Object.fromEntries(outcomes))}`)

    const v = new Verdict()
    for (const url of urls) {
      await v.check(`a payable transfer through ${url}`, async () => {
        const hash = await pay(url)
        await committedWithin(hash, 4)
      })
    }
    await v.check('after the flood', () => a.assertHealthy())
    v.done()
  })
})
