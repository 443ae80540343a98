import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { DeadlineQueue } from '../../../rpc/deadlineQueue.js'

const moduleUrl = new URL('../../../rpc/deadlineQueue.js', import.meta.url).href

/** A deadline started on `q` and a promise of the time (performance.now) it expired at. */
function started(q: DeadlineQueue, log?: string[], name?: string) {
  let expired!: (at: number) => void
  const at = new Promise<number>((r) => {
    expired = r
  })
  const t0 = performance.now()
  const d = q.start(() => {
    if (log !== undefined && name !== undefined) log.push(name)
    expired(performance.now())
  })
  return { d, at, t0 }
}

test('pending deadlines expire in start order, no sooner than their length; finished ones never', async () => {
  const q = new DeadlineQueue(40)
  const log: string[] = []
  const a = started(q, log, 'a')
  const b = started(q, log, 'b')
  const c = started(q, log, 'c')
  b.d.done()
  b.d.done()
  const cAt = await c.at
  assert.ok(cAt - c.t0 >= 39, `expired after ${cAt - c.t0} ms`)
  assert.ok((await a.at) - a.t0 >= 39)
  assert.deepEqual(log, ['a', 'c'])
  assert.equal(q.pending, 0)
  // the queue keeps working after it emptied and its timer fired
  const d = started(q, log, 'd')
  await d.at
  assert.deepEqual(log, ['a', 'c', 'd'])
})

test('deadlines finished at the front are dropped; the rest expire in order', async () => {
  const q = new DeadlineQueue(30)
  const log: string[] = []
  const all = Array.from({ length: 3000 }, (_, i) => started(q, log, String(i)))
  for (let i = 0; i < 2000; i++) all[i]!.d.done()
  assert.equal(q.pending, 1000)
  all[2500]!.d.done()
  await Promise.all(all.filter((_, i) => i >= 2000 && i !== 2500).map((x) => x.at))
  assert.deepEqual(
    log,
    Array.from({ length: 1000 }, (_, i) => String(2000 + i)).filter((n) => n !== '2500'),
  )
  assert.equal(q.pending, 0)
})

test('a deadline started later than the timer was set for still expires on time', async () => {
  const q = new DeadlineQueue(60)
  const first = started(q)
  const second = started(q)
  first.d.done()
  const at = await second.at
  assert.ok(at - second.t0 >= 59, `expired after ${at - second.t0} ms`)
})

test('the timer holds the process open only while a deadline is pending', () => {
  const run = (body: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `import { DeadlineQueue } from '${moduleUrl}'\n${body}`], { timeout: 20_000, encoding: 'utf8' })
  // nothing pending: the process exits long before the minute-long deadline would
  const idle = run('const q = new DeadlineQueue(60_000); q.start(() => console.log("expired")).done(); console.log("exiting")')
  assert.equal(idle.signal, null, 'exited by itself')
  assert.equal(idle.stdout.trim(), 'exiting')
  // a pending deadline keeps it open until it expires
  const pending = run('const q = new DeadlineQueue(100); q.start(() => console.log("expired"))')
  assert.equal(pending.signal, null)
  assert.equal(pending.stdout.trim(), 'expired')
})
