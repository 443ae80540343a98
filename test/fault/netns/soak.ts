import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { FaultNetwork } from './faultNetwork.js'
import { addedLatency, isolatedCatchesUp, killUnderLoad, oneWayLoss, partitionTwoTwo, pausedValidatorAndEndpoint, skewedClock } from './faultScenarios.js'
import { releaseLock } from './hostNetwork.js'
import { TransferLoad } from './transferLoad.js'

/**
 * The fault soak (`npm run test:fault:soak`): the fault suite's faults over and over on one testnet, for
 * TALLY_SOAK_MINUTES minutes (default 15), under a background load of transfers, each round on other validators
 * (the partition's sides, the isolated, muted, paused, delayed and skewed validator rotate). After every fault the
 * same audit as the suite's: agreement block by block, every transfer seen committed in place, the genesis supply.
 * The load's every admitted transfer is audited at the end. Not part of `npm test`.
 */
const minutes = Number(process.env.TALLY_SOAK_MINUTES ?? 15)
const pre = await FaultNetwork.preflight()

describe('fault soak on network-namespace hosts', { skip: pre.suite ?? false, timeout: (minutes + 10) * 60_000 }, () => {
  let f: FaultNetwork | undefined

  before(async () => {
    f = await FaultNetwork.start({ withIptables: pre.iptables === undefined })
  })

  after(async () => {
    try {
      await f?.destroy()
    } finally {
      releaseLock()
    }
  })

  test(`faults in rotation for ${minutes} minutes under load`, async (t) => {
    assert.ok(Number.isFinite(minutes) && minutes > 0, 'TALLY_SOAK_MINUTES must be a positive number')
    assert.ok(f, 'the network did not start')
    const net = f.net
    const partitions: [number[], number[]][] = [
      [
        [0, 1],
        [2, 3],
      ],
      [
        [0, 2],
        [1, 3],
      ],
      [
        [0, 3],
        [1, 2],
      ],
    ]
    const faults: { name: string; needs?: string; budgetMs?: number; run: (round: number) => Promise<string> }[] = [
      { name: 'partition', needs: pre.iptables, run: (r) => partitionTwoTwo(f!, partitions[r % partitions.length]!) },
      { name: 'isolation', needs: pre.iptables, run: (r) => isolatedCatchesUp(f!, r % 4) },
      { name: 'one-way loss', needs: pre.iptables, run: (r) => oneWayLoss(f!, (r + 1) % 4) },
      { name: 'pause', run: (r) => pausedValidatorAndEndpoint(f!, (r + 2) % 4, (r + 3) % 4) },
      { name: 'latency', needs: pre.iptables, run: (r) => addedLatency(f!, (r + 3) % 4) },
      { name: 'clock +10m', needs: pre.clock, run: (r) => skewedClock(f!, '+10m', r % 4) },
      { name: 'clock -10m', needs: pre.clock, run: (r) => skewedClock(f!, '-10m', (r + 1) % 4) },
      { name: 'kill -9', budgetMs: 150_000, run: () => killUnderLoad(f!) },
    ]
    for (const x of faults) if (x.needs !== undefined) t.diagnostic(`${x.name} skipped: ${x.needs}`)
    const load = new TransferLoad(
      f.key('account3'),
      f.chainId,
      () => net.all.filter((i) => net.running(i)).map((i) => net.rpcUrl(i)),
      f.key('account0').address,
    )
    await load.start(50)
    const deadline = Date.now() + minutes * 60_000
    let done = 0
    try {
      for (let round = 0; Date.now() < deadline; round++) {
        for (const x of faults) {
          if (x.needs !== undefined || Date.now() >= deadline) continue
          const t0 = Date.now()
          try {
            const seen = await f.within(x.budgetMs ?? 100_000, () => x.run(round))
            // live progress: a test's diagnostics only print when it ends
            process.stderr.write(`# round ${round} ${x.name} (${Date.now() - t0} ms): ${seen}\n`)
          } catch (e) {
            throw new Error(`round ${round}, ${x.name}: ${(e as Error).message}`, { cause: e })
          }
          done++
        }
      }
    } finally {
      await load.stop()
      f.audit.sawAdmitted(load.admitted)
    }
    const upTo = await f.settle()
    t.diagnostic(
      `${done} faults, ${load.admitted.length} background transfers admitted, ${f.audit.committedCount} wallet transfers seen committed; agreed up to ${upTo}`,
    )
  })
})
