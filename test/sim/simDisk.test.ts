import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Scheduler, settle } from './scheduler.js'
import { DiskRate, DurableState, Power, SimConsensusLog, SimKvStore, SimSafetyStore, type CutPhase, type StoreOp } from './simDisk.js'

/**
 * The simulated disk keeps exactly what a machine that loses power keeps: synced WAL records, whole commit batches,
 * the guard's last saved record; and a powered-off incarnation's operations never complete.
 */

function machine(durable: DurableState, cutAt?: { op: StoreOp; phase: CutPhase }) {
  const sched = new Scheduler()
  let cuts = 0
  const power = new Power(
    (op, phase) => cutAt !== undefined && op === cutAt.op && phase === cutAt.phase,
    () => {
      cuts++
    },
  )
  const o = { durable, power, scheduler: sched, latencyMs: 0 }
  return { sched, power, wal: new SimConsensusLog(o), kv: new SimKvStore(o), safety: new SimSafetyStore(o), cuts: () => cuts }
}

/** True when the promise settled within a macrotask turn. */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let done = false
  void p.then(
    () => {
      done = true
    },
    () => {
      done = true
    },
  )
  await settle()
  return done
}

const record = (n: number) => new Uint8Array([n, n, n])

test('WAL records written but not synced are lost when the power goes', async () => {
  const durable = new DurableState()
  const m = machine(durable)
  m.wal.write(record(1))
  m.wal.write(record(2))
  await m.wal.sync()
  m.wal.write(record(3))
  m.power.cut()
  const again = machine(durable)
  assert.deepEqual(await again.wal.replay(), [record(1), record(2)])
  assert.equal(again.wal.sizeBytes, 2 * (12 + 3))
})

test('a cut before a WAL sync keeps nothing of it, a cut after it keeps it; neither sync returns', async () => {
  for (const phase of ['before', 'after'] as const) {
    const durable = new DurableState()
    const m = machine(durable, { op: 'walSync', phase })
    m.wal.write(record(7))
    assert.equal(await settles(m.wal.sync()), false)
    assert.equal(m.power.alive, false)
    assert.equal(m.cuts(), 1)
    assert.equal(durable.wal.length, phase === 'after' ? 1 : 0)
  }
})

test('a commit batch is whole or absent, and a machine that is off reads nothing', async () => {
  for (const phase of ['before', 'after'] as const) {
    const durable = new DurableState()
    const m = machine(durable, { op: 'kvWrite', phase })
    const key = new Uint8Array([1])
    const write = m.kv.write([
      { type: 'put', key, value: new Uint8Array([9]) },
      { type: 'put', key: new Uint8Array([2]), value: new Uint8Array([8]) },
    ])
    assert.equal(await settles(write), false)
    assert.equal(durable.kv.size, phase === 'after' ? 2 : 0)
    assert.equal(await settles(m.kv.get(key)), false)
  }
})

test('the guard record is the last one saved before the cut', async () => {
  const durable = new DurableState()
  const m = machine(durable, { op: 'guardSave', phase: 'before' })
  const r = { height: 1, round: 0, step: 'prevote' as const, signBytes: new Uint8Array(1), signature: new Uint8Array(64) }
  assert.equal(await settles(m.safety.saveAsync(r)), false)
  assert.equal(durable.safety, undefined)
  const next = machine(durable)
  await next.safety.saveAsync(r)
  assert.deepEqual(new SimSafetyStore({ durable, power: next.power, scheduler: next.sched, latencyMs: 0 }).load(), r)
})

test('wiping data/ deletes the chain database, not the WAL or the guard record', () => {
  const durable = new DurableState()
  durable.wal.push(record(1))
  durable.safety = { height: 3, round: 1, step: 'precommit', signBytes: new Uint8Array(1), signature: new Uint8Array(64) }
  void durable.kv.write([{ type: 'put', key: new Uint8Array([1]), value: new Uint8Array([1]) }])
  durable.wipeData()
  assert.equal(durable.kv.size, 0)
  assert.deepEqual(durable.wal, [record(1)])
  assert.equal(durable.safety?.height, 3)
})

test('the scheduler runs events in time order and skips those of a dead owner', async () => {
  const sched = new Scheduler()
  const seen: string[] = []
  const owner = { alive: true }
  sched.at(20, null, () => seen.push('b'))
  sched.at(10, owner, () => {
    seen.push('a')
    owner.alive = false
  })
  sched.at(15, owner, () => seen.push('skipped'))
  sched.at(20, null, () => seen.push('c'))
  const stop = sched.every(5, null, () => seen.push('tick'))
  sched.at(12, null, stop)
  await sched.run(() => false, 100)
  // at 10, 'a' (scheduled first) runs before the tick scheduled at 5
  assert.deepEqual(seen, ['tick', 'a', 'tick', 'b', 'c'])
  assert.equal(sched.now, 20)
})

test('a disk of zero latency completes a burst at one instant, then its rate per millisecond of virtual time', async () => {
  const sched = new Scheduler()
  const power = new Power(
    () => false,
    () => {},
  )
  const o = { durable: new DurableState(), power, scheduler: sched, latencyMs: 0, rate: new DiskRate(4, 1) }
  const safety = new SimSafetyStore(o)
  const wal = new SimConsensusLog(o)
  const kv = new SimKvStore(o)
  const r = { height: 1, round: 0, step: 'prevote' as const, signBytes: new Uint8Array(1), signature: new Uint8Array(64) }
  // a node that waits on nothing else: one operation after another, in one event
  const done: number[] = []
  sched.at(100, null, () => {
    void (async () => {
      for (let k = 0; k < 8; k++) {
        if (k % 3 === 0) await safety.saveAsync(r)
        else if (k % 3 === 1) await wal.sync()
        else await kv.write([{ type: 'put', key: new Uint8Array([k]), value: new Uint8Array([k]) }])
        done.push(sched.now)
      }
    })()
  })
  await sched.run(() => false, 1_000)
  assert.deepEqual(done, [100, 100, 100, 100, 101, 102, 103, 104])
  // idle time refills the burst
  const later: number[] = []
  sched.at(200, null, () => {
    void (async () => {
      for (let k = 0; k < 5; k++) {
        await safety.saveAsync(r)
        later.push(sched.now)
      }
    })()
  })
  await sched.run(() => false, 1_000)
  assert.deepEqual(later, [200, 200, 200, 200, 201])
})

/** Starts work on an incarnation whose power the work cuts, and returns only a weak reference to what it holds. */
function abandon(durable: DurableState, op: 'kvWrite' | 'walSync' | 'guardSave'): WeakRef<object> {
  const m = machine(durable, { op, phase: 'before' })
  const state = { incarnation: m, ballast: new Uint8Array(1024) }
  const waiting = async () => {
    if (op === 'kvWrite') await m.kv.write([{ type: 'put', key: new Uint8Array([1]), value: state.ballast }])
    else if (op === 'walSync') await m.wal.sync()
    else await m.safety.saveAsync({ height: 1, round: 0, step: 'prevote', signBytes: state.ballast, signature: new Uint8Array(64) })
    return state
  }
  void waiting()
  assert.equal(m.power.alive, false)
  void m.kv.get(new Uint8Array([2])).then(() => state)
  return new WeakRef(state)
}

test('work left waiting by a power cut is garbage once its incarnation is dropped', async () => {
  // a campaign runs thousands of incarnations in one process: what a dead one left waiting must not outlive it
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const durable = new DurableState()
  const refs = (['kvWrite', 'walSync', 'guardSave'] as const).map((op) => abandon(durable, op))
  await settle()
  gc()
  assert.deepEqual(
    refs.map((r) => r.deref() === undefined),
    [true, true, true],
  )
})
