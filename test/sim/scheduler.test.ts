import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Scheduler } from './scheduler.js'

/**
 * A run whose virtual time cannot move on is halted with the reason, never left to grow without end: the work of one
 * event that never waits on an event, and events that keep scheduling events at one instant.
 */

const LIMITS = { schedulesPerEvent: 1_000, eventsPerInstant: 5_000 }

test('an event whose work never waits on an event is halted, and the halt stops that work', async () => {
  const sched = new Scheduler(LIMITS)
  let stopped = false
  let iterations = 0
  const halts: string[] = []
  sched.whenHalted((reason) => {
    halts.push(reason)
    stopped = true
  })
  // a node alone: every step resolves at once (a store of zero latency) and sends to a peer (an event far ahead)
  sched.at(10, null, () => {
    void (async () => {
      while (!stopped && iterations < 100_000) {
        iterations++
        sched.after(50, null, () => {})
        await Promise.resolve()
      }
    })()
  })
  await sched.run(() => false, 1_000_000)
  assert.match(sched.halted ?? 'not halted', /virtual time stood still at 10 ms: one event scheduled more than 1000 events/)
  assert.equal(halts.length, 1)
  assert.ok(iterations <= LIMITS.schedulesPerEvent + 1, `the work went on for ${iterations} steps after the halt`)
  assert.equal(sched.now, 10)
})

test('events that keep scheduling events at one instant are halted', async () => {
  const sched = new Scheduler(LIMITS)
  const again = (): void => {
    sched.after(0, null, again)
  }
  sched.at(7, null, again)
  await sched.run(() => false, 1_000_000)
  assert.match(sched.halted ?? 'not halted', /virtual time stood still at 7 ms: more than 5000 events ran at that instant/)
  assert.equal(sched.events, LIMITS.eventsPerInstant)
})

test('a run within the bounds is not halted, and a halted run runs no further event', async () => {
  const sched = new Scheduler(LIMITS)
  let ran = 0
  for (let t = 0; t < 3_000; t++) sched.at(t, null, () => ran++)
  await sched.run(() => false, 10_000)
  assert.equal(sched.halted, undefined)
  assert.equal(ran, 3_000)
  sched.at(20_000, null, () => ran++)
  sched.halt('stopped by the test')
  await sched.run(() => false, 30_000)
  assert.equal(ran, 3_000)
  assert.equal(sched.halted, 'stopped by the test')
})
