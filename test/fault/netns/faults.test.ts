import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { FaultNetwork } from './faultNetwork.js'
import { addedLatency, isolatedCatchesUp, killUnderLoad, oneWayLoss, partitionTwoTwo, pausedValidatorAndEndpoint, skewedClock } from './faultScenarios.js'
import { releaseLock } from './hostNetwork.js'

/**
 * The fault suite: four real validators, each in its own network namespace on a Linux bridge, started with the real
 * CLI and reached over RPC from the root namespace. One testnet serves every fault; each fault heals before the
 * next, and after each the validators must agree block by block, hold every transfer a client saw committed at the
 * same height, and keep the genesis supply. Needs root; each fault that needs a tool this machine lacks is skipped
 * with the Debian package that brings it.
 *
 * `npm test` runs a core set (a partition, a clock fault, kill -9 under load) to stay short; the other faults run
 * in the soak (`npm run test:fault:soak`), and here too with TALLY_FAULT_ALL=1.
 */
const pre = await FaultNetwork.preflight()
const everyFault = process.env.TALLY_FAULT_ALL === '1'
const SOAK_ONLY = 'runs in the soak (npm run test:fault:soak); TALLY_FAULT_ALL=1 runs it here'
/** A fault's skip reason: the suite's own, else that of the tool it needs, else (outside the core set) the soak's. */
const skip = (tool?: string, o: { core: boolean } = { core: true }): string | false => pre.suite ?? tool ?? (o.core || everyFault ? false : SOAK_ONLY)
const soak = { core: false }
/** How long after a fault's budget the test runner's own timeout fires: room to heal and report. */
const BACKSTOP_MS = 30_000

describe('faults on network-namespace hosts', { timeout: 600_000 }, () => {
  let f: FaultNetwork | undefined

  before(async () => {
    if (pre.suite === undefined) f = await FaultNetwork.start({ withIptables: pre.iptables === undefined })
  })

  after(async () => {
    try {
      await f?.destroy()
    } finally {
      releaseLock()
    }
  })

  /**
   * Registers a fault as a test. The fault runs within `budgetMs` (its waits are cut short at the end, it heals
   * and fails saying what it waited for, with the validators' state and log tails); the test's own timeout, a
   * little later, only backs that up, and prints the same report should it ever fire.
   */
  const fault = (name: string, o: { skip: string | false; budgetMs: number }, run: (f: FaultNetwork) => Promise<string>) =>
    test(name, { skip: o.skip, timeout: o.budgetMs + BACKSTOP_MS }, async (t: TestContext) => {
      assert.ok(f, 'the network did not start')
      const net = f
      let finished = false
      // the runner aborts the signal when the test ends, also in time: only an unfinished fault is reported
      t.signal.addEventListener('abort', () => {
        if (!finished) void net.report().then((r) => process.stderr.write(`# '${name}' timed out in the test runner:\n${r}\n`))
      })
      try {
        t.diagnostic(await net.within(o.budgetMs, () => run(net)))
      } finally {
        finished = true
      }
    })

  fault('validators on separate hosts commit a wallet transfer and agree', { skip: skip(), budgetMs: 60_000 }, async (f) => {
    const w = await f.transfer([0, 1])
    assert.equal(w.code, 0, w.stderr)
    assert.equal(w.status, 'committed')
    const upTo = await f.settle()
    return `committed at ${w.height} in ${w.elapsedMs} ms; agreed up to ${upTo}`
  })

  fault('a 2|2 partition commits nothing, forks nothing, and resumes when healed', { skip: skip(pre.iptables), budgetMs: 100_000 }, partitionTwoTwo)

  fault('an isolated validator catches up after healing', { skip: skip(pre.iptables, soak), budgetMs: 100_000 }, (f) => isolatedCatchesUp(f))

  fault('one-way loss: a validator that cannot send is left out, then agrees', { skip: skip(pre.iptables, soak), budgetMs: 100_000 }, (f) => oneWayLoss(f))

  fault('a paused validator and a paused wallet endpoint', { skip: skip(undefined, soak), budgetMs: 100_000 }, (f) => pausedValidatorAndEndpoint(f))

  fault("added latency on one validator's links", { skip: skip(pre.iptables, soak), budgetMs: 100_000 }, (f) => addedLatency(f))

  fault('a validator clock 10 minutes fast', { skip: skip(pre.clock), budgetMs: 100_000 }, (f) => skewedClock(f, '+10m'))

  fault('a validator clock 10 minutes slow', { skip: skip(pre.clock, soak), budgetMs: 100_000 }, (f) => skewedClock(f, '-10m'))

  fault('repeated kill -9 under load', { skip: skip(), budgetMs: 150_000 }, killUnderLoad)
})
