import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Timers, type TimerClock, type TimeoutValue } from '../../../../node/host/timers.js'

/** A manual clock: time moves only when the test advances it; timers fire in deadline order. */
class ManualClock implements TimerClock {
  now = 0
  private next = 0
  private readonly timers = new Map<number, { at: number; fn: () => void }>()
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++
    this.timers.set(id, { at: this.now + ms, fn })
    return id
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number)
  }
  advance(ms: number): void {
    const until = this.now + ms
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
      if (due === undefined) break
      this.timers.delete(due[0])
      this.now = due[1].at
      due[1].fn()
    }
    this.now = until
  }
}

describe('timers', () => {
  it('fires timeouts in deadline order with their values, once', () => {
    const clock = new ManualClock()
    const fired: TimeoutValue[] = []
    const t = new Timers({ clock }, { onTimeout: (v) => fired.push(v) })
    t.schedule({ height: 1n, round: 0, kind: 'propose' }, 300)
    t.schedule({ height: 1n, round: 0, kind: 'prevote' }, 100)
    t.schedule({ height: 1n, round: 0, kind: 'propose' }, 50) // already pending: the first deadline stands
    assert.equal(t.pending, 2)
    clock.advance(99)
    assert.deepEqual(fired, [])
    clock.advance(1)
    assert.deepEqual(fired, [{ height: 1n, round: 0, kind: 'prevote' }])
    clock.advance(1000)
    assert.deepEqual(
      (fired as TimeoutValue[]).map((f) => f.kind),
      ['prevote', 'propose'],
    )
    assert.equal(t.pending, 0)
  })

  it('cancels lower heights and stops', () => {
    const clock = new ManualClock()
    const fired: TimeoutValue[] = []
    const t = new Timers({ clock }, { onTimeout: (v) => fired.push(v) })
    t.schedule({ height: 1n, round: 2, kind: 'precommit' }, 10)
    t.schedule({ height: 2n, round: 0, kind: 'propose' }, 10)
    t.cancelBelow(2n)
    clock.advance(10)
    assert.deepEqual(fired, [{ height: 2n, round: 0, kind: 'propose' }])
    t.schedule({ height: 3n, round: 0, kind: 'propose' }, 10)
    t.stop()
    t.schedule({ height: 4n, round: 0, kind: 'propose' }, 10)
    clock.advance(100)
    assert.equal(fired.length, 1)
  })

  it('runs on the real clock', async () => {
    const got = await new Promise<TimeoutValue>((resolve) => {
      const t = new Timers({}, { onTimeout: resolve })
      t.schedule({ height: 5n, round: 1, kind: 'prevote' }, 5)
    })
    assert.deepEqual(got, { height: 5n, round: 1, kind: 'prevote' })
  })
})
