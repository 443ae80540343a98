import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { FaultNetwork } from './faultNetwork.js'
import {
  addedLatency, isolatedCatchesUp, killUnderLoad, oneWayLoss, partitionTwoTwo, pausedValidatorAndEndpoint, skewedClock,
} from './faultScenarios.js'
import { releaseLock } from './hostNetwork.js'

/**
 * The fault suite: four real validators, each in its own network namespace on a Linux bridge, started with the real
 * CLI and reached over RPC from the root namespace. One testnet serves every fault; each fault heals before the
 * next, and after each the validators must agree block by block, hold every transfer a client saw committed at the
 * same height, and keep the genesis supply. Needs root; each fault that needs a tool this machine lacks is skipped
 * with the Debian package that brings it.
 */
const pre = await FaultNetwork.preflight()
/** A fault's skip reason: the suite's own, else that of the tool it needs. */
const skip = (tool?: string): string | false => pre.suite ?? tool ?? false

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

  /** Runs a fault; a failure carries the validators' log tails. */
  const fault = (run: (f: FaultNetwork) => Promise<string>) => async (t: TestContext) => {
    assert.ok(f, 'the network did not start')
    try {
      t.diagnostic(await run(f))
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${f.logs()}`, { cause: e })
    }
  }

  test('validators on separate hosts commit a wallet transfer and agree', { skip: skip() }, fault(async (f) => {
    const w = await f.transfer([0, 1])
    assert.equal(w.code, 0, w.stderr)
    assert.equal(w.status, 'committed')
    const upTo = await f.settle()
    return `committed at ${w.height} in ${w.elapsedMs} ms; agreed up to ${upTo}`
  }))

  test('a 2|2 partition commits nothing, forks nothing, and resumes when healed', { skip: skip(pre.iptables), timeout: 120_000 }, fault(partitionTwoTwo))

  test('an isolated validator catches up after healing', { skip: skip(pre.iptables), timeout: 120_000 }, fault((f) => isolatedCatchesUp(f)))

  test('one-way loss: a validator that cannot send is left out, then agrees', { skip: skip(pre.iptables), timeout: 120_000 }, fault((f) => oneWayLoss(f)))

  test('a paused validator and a paused wallet endpoint', { skip: skip(), timeout: 120_000 }, fault((f) => pausedValidatorAndEndpoint(f)))

  test('added latency on one validator\'s links', { skip: skip(pre.iptables), timeout: 120_000 }, fault((f) => addedLatency(f)))

  test('a validator clock 10 minutes fast', { skip: skip(pre.clock), timeout: 120_000 }, fault((f) => skewedClock(f, '+10m')))

  test('a validator clock 10 minutes slow', { skip: skip(pre.clock), timeout: 120_000 }, fault((f) => skewedClock(f, '-10m')))

  test('repeated kill -9 under load', { skip: skip(), timeout: 180_000 }, fault(killUnderLoad))
})
