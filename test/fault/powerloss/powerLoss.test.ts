import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Testnet, rpc, runCli, waitFor } from '../../e2e/harness.js'
import { readDevKey } from '../../e2e/load.js'
import { PowerCutFs } from './powerCutFs.js'
import { WalletLoad, type CommittedTransfer } from './walletLoad.js'

/**
 * Power loss: each validator's home lives on powerCutFs, which keeps written data in memory until it is fsync'd,
 * and a cut of the power discards what was not. A validator whose chain is gone while its safety record survived
 * (what an unsynced commit batch leaves behind) must sync from its peers and vote again. Four validators under
 * wallet load lose power together, three times; after each the chain must resume, every validator must come back
 * at a height at least the one it reported, every transfer the wallet was told was committed must be committed at
 * the same height on every validator, the money supply must be unchanged, and the validators must hold one chain.
 *
 * Skipped, with the reason, where FUSE cannot run (not root, no /dev/fuse, no fusermount3, gcc or libfuse3 headers).
 */

const work = mkdtempSync(join(tmpdir(), 'tally-powerloss-'))
const prepared = await PowerCutFs.prepare(work).catch((e: unknown) => {
  rmSync(work, { recursive: true, force: true })
  throw e
})
const skip = 'unavailable' in prepared ? `needs FUSE: ${prepared.unavailable}` : false
if (skip) rmSync(work, { recursive: true, force: true })

/** The highest height each node reported, polled while the network runs. */
class HeightWatch {
  readonly reported: number[]
  private stopped = false
  private readonly done: Promise<void>

  constructor(net: Testnet) {
    const reported: number[] = new Array(net.size).fill(0)
    this.reported = reported
    this.done = (async () => {
      while (!this.stopped) {
        await Promise.all(
          reported.map(async (_, i) => {
            const h = await net.height(i)
            if (h !== undefined && h > reported[i]!) reported[i] = h
          }),
        )
        await new Promise((r) => setTimeout(r, 200))
      }
    })()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.done
  }
}

describe('validators on disks that lose unsynced writes when the power fails', { skip, timeout: 300_000 }, () => {
  const all = [0, 1, 2, 3]
  const binary = 'binary' in prepared ? prepared.binary : ''
  let net: Testnet | undefined
  const disks: string[] = []
  const mounts: (PowerCutFs | undefined)[] = []
  let chainId: string
  let supply = 0n
  const addresses: string[] = []
  const recipients = [`0x${'a1'.repeat(20)}`, `0x${'b2'.repeat(20)}`, `0x${'c3'.repeat(20)}`]
  /** Every transfer the wallet was told was committed, over the whole file. */
  const committed: CommittedTransfer[] = []

  const urls = (nodes = all) => nodes.map((i) => net!.rpcUrl(i))

  /** The warnings and errors near the end of each listed node's log, for a failure message. */
  function trouble(nodes = all): string {
    return nodes
      .map((i) => {
        const lines = net!
          .logTail(i, 200)
          .split('\n')
          .flatMap((line) => {
            if (line.trim() === '') return []
            try {
              const j = JSON.parse(line) as { level: number; time: string; msg: string; height?: number; reason?: string; err?: string }
              if (j.level < 40 && !/cannot rebuild/.test(j.msg)) return []
              return [`  ${j.time} h${j.height ?? '?'} ${j.msg}${j.reason ? ` (${j.reason})` : ''}${j.err ? `: ${j.err}` : ''}`]
            } catch {
              return [`  ${line}`]
            }
          })
        return `node${i}:\n${lines.slice(-8).join('\n')}`
      })
      .join('\n')
  }

  /** The power fails on `nodes`: their file systems lose what was not synced, then the processes die. */
  async function powerCut(nodes: number[]): Promise<void> {
    await Promise.all(nodes.map((i) => mounts[i]!.cut()))
    await Promise.all(nodes.map((i) => net!.kill9(i)))
  }

  /** The power comes back on `nodes`: each disk is mounted again and the validator started. */
  async function powerOn(nodes: number[], beforeStart: (i: number) => void = () => undefined): Promise<void> {
    for (const i of nodes) {
      await mounts[i]!.unmount()
      mounts[i] = undefined
      beforeStart(i)
      mounts[i] = await PowerCutFs.mount(binary, disks[i]!, net!.home(i))
      net!.start(i)
    }
  }

  /** Every recorded transfer is committed at its recorded height, with its outcome, on every validator. */
  async function assertNothingLost(): Promise<void> {
    await net!.waitHeight(Math.max(0, ...committed.map((t) => t.height)), all, 60_000)
    await Promise.all(
      all.map(async (i) => {
        for (const t of committed) {
          const r = await rpc<{ status: string; height?: number; ok?: boolean }>(net!.rpcUrl(i), 'tx_get', [t.hash])
          assert.equal(r.status, 'committed', `node${i}: transfer ${t.hash}, reported committed at height ${t.height} by ${t.url}, is ${r.status}`)
          assert.equal(r.height, t.height, `node${i}: transfer ${t.hash} at height ${r.height}, reported at ${t.height}`)
          assert.equal(r.ok, t.ok, `node${i}: transfer ${t.hash} outcome`)
        }
      }),
    )
  }

  /** The balances of every account that ever held money add up to the genesis supply on every validator. */
  async function assertSupply(): Promise<void> {
    await Promise.all(
      all.map(async (i) => {
        let last = 0n
        // a transfer committing between two balance reads skews one sum: read again until a stable block
        await waitFor(
          `node${i}'s balances to add up to the supply`,
          async () => {
            const balances = await Promise.all(addresses.map((a) => rpc<string>(net!.rpcUrl(i), 'ledger_getBalance', [a])))
            last = balances.reduce((sum, b) => sum + BigInt(b), 0n)
            return last === supply
          },
          15_000,
        ).catch((e: Error) => {
          throw new Error(`${e.message} (last sum ${last}, supply ${supply})`)
        })
      }),
    )
  }

  before(async () => {
    net = await Testnet.create(4)
    // a restarted network waits out a propose timeout whenever a round's proposer is not up yet: keep it short
    for (const file of [join(net.dir, 'genesis.json'), ...all.map((i) => join(net!.home(i), 'genesis.json'))]) {
      const g = JSON.parse(readFileSync(file, 'utf8')) as { params: { timeouts: { proposeMs: number } } }
      g.params.timeouts.proposeMs = 1_000
      writeFileSync(file, `${JSON.stringify(g, null, 2)}\n`)
    }
    for (const i of all) {
      disks[i] = join(work, `disk${i}`)
      renameSync(net.home(i), disks[i]!)
      mounts[i] = await PowerCutFs.mount(binary, disks[i]!, net.home(i))
    }
    const genesis = JSON.parse(readFileSync(join(net.dir, 'genesis.json'), 'utf8')) as { balances: { address: string; amount: string }[] }
    for (const b of genesis.balances) {
      supply += BigInt(b.amount)
      addresses.push(b.address)
    }
    addresses.push(...recipients)
    net.startAll()
    await net.waitHeight(2, all, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${all.map((i) => `--- node${i}\n${net!.logTail(i, 15)}`).join('\n')}`)
    })
    chainId = (await rpc<{ chainId: string }>(net.rpcUrl(0), 'node_status')).chainId
  })

  after(async () => {
    if (net) for (const i of all) await net.kill9(i)
    for (const m of mounts) await m?.unmount()
    await net?.destroy()
    rmSync(work, { recursive: true, force: true })
  })

  test('a validator whose chain is gone but whose safety record survived syncs from its peers and votes again', async () => {
    const senders = ['account3'].map((n) => readDevKey(net!.keyFile(n)))
    const load = new WalletLoad(senders, chainId, urls([1, 2]), recipients)
    const watch = new HeightWatch(net!)
    load.start()
    try {
      await waitFor('transfers reported committed under load', () => load.committed.length >= 4, 60_000)
      // what a commit batch that never reached the disk leaves: the chain lost, validator_state.json kept
      await powerCut([3])
      const top = Math.max(...watch.reported)
      await powerOn([3], (i) => {
        assert.ok(existsSync(join(disks[i]!, 'validator_state.json')), 'the safety record is on disk')
        rmSync(join(disks[i]!, 'data'), { recursive: true, force: true })
      })
      await net!.waitHeight(top + 1, [3], 60_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${trouble([3])}`)
      })
      // with node0 down, a block needs node3's precommit (3 of 4): the chain advancing shows that it votes again
      await net!.kill9(0)
      const h = Math.max(...(await Promise.all([1, 2, 3].map(async (i) => (await net!.height(i)) ?? 0))))
      await net!.waitHeight(h + 3, [1, 2, 3], 60_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${trouble([1, 2, 3])}`)
      })
      net!.start(0)
      await net!.waitHeight(h + 4, all, 60_000)
    } finally {
      await load.stop()
      await watch.stop()
    }
    committed.push(...load.committed)
    for (const i of all) {
      assert.deepEqual(await rpc<unknown[]>(net!.rpcUrl(i), 'chain_getEvidence'), [], `node${i} holds evidence of equivocation`)
    }
    await assertNothingLost()
    await assertSupply()
    const heights = await Promise.all(all.map((i) => net!.height(i)))
    await net!.checkSameChain(Math.min(...heights.map((h) => h ?? 0)))
  })

  test('all four lose power under load, three times: the chain resumes and keeps every reported commit', async (t) => {
    const senders = ['account0', 'account1', 'account2'].map((n) => readDevKey(net!.keyFile(n)))
    const faucet = readDevKey(net!.keyFile('faucet')).address
    for (let cycle = 0; cycle < 3; cycle++) {
      const watch = new HeightWatch(net!)
      const load = new WalletLoad(senders, chainId, urls(), recipients)
      const before = committed.length
      load.start()
      try {
        // one transfer through the wallet CLI, as a user makes it, then more load before the cut
        const amount = 100n + BigInt(cycle)
        const cli = await runCli(
          'tally',
          [
            'transfer',
            '--key',
            net!.keyFile('faucet'),
            '--to',
            recipients[cycle]!,
            '--amount',
            String(amount),
            '--rpc',
            urls().join(','),
            '--json',
            '--genesis',
            net!.genesisFile,
          ],
          { timeoutMs: 60_000 },
        )
        assert.equal(cli.code, 0, cli.stderr)
        const r = JSON.parse(cli.stdout) as { hash: string; height: number }
        committed.push({ hash: r.hash, height: r.height, from: faucet, to: recipients[cycle]!, amount, ok: true, url: 'the tally CLI' })
        await waitFor('transfers reported committed under load', () => load.committed.length >= 8, 60_000)
        // cut at a different point each time: right away, or once one or two more heights have been reported
        const h = Math.max(...watch.reported)
        await waitFor(`height ${h + cycle}`, () => Math.max(...watch.reported) >= h + cycle, 30_000)
        await powerCut(all)
      } finally {
        await load.stop()
        await watch.stop()
      }
      committed.push(...load.committed)
      const top = Math.max(...watch.reported)
      t.diagnostic(`cut ${cycle + 1}: all four at height ${top}, ${committed.length - before} more transfers reported committed`)
      await powerOn(all)

      // a height a validator reported is still its height when it comes back
      for (const i of all) {
        const first = await waitFor(`node${i} to answer after the power cut`, () => net!.height(i), 60_000)
        assert.ok(first >= watch.reported[i]!, `node${i} came back at height ${first}, below the ${watch.reported[i]} it reported before the power cut`)
      }
      // the chain moves on past every height reported before the cut
      await net!.waitHeight(top + 2, all, 60_000).catch((e: Error) => {
        throw new Error(`the chain did not resume after power cut ${cycle + 1} at height ${top}: ${e.message}\n${trouble()}`)
      })
      await assertNothingLost()
      await assertSupply()
      const heights = await Promise.all(all.map((i) => net!.height(i)))
      await net!.checkSameChain(Math.min(...heights.map((h) => h ?? 0)))
    }
  })
})
