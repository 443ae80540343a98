import type { TimerClock } from '../../node/host/timers.js'
import { EventQueue } from './eventQueue.js'

/**
 * The simulator's virtual time. Every timer, sleep, periodic task, network delivery and disk completion of every
 * simulated node is an event in one queue ordered by (virtual time, sequence). The run loop takes one event, runs it,
 * and then lets one macrotask turn pass, which drains every microtask the event started (the node code is async over
 * in-memory stores, so all its work between two events is microtasks). Nothing waits on a real clock, and a run is a
 * pure function of its seed: same events, same order, same outcome.
 */

/** Whoever an event belongs to: events of an owner that is no longer alive (a crashed node) are skipped. */
export interface Owner {
  readonly alive: boolean
}

interface Task {
  readonly owner: Owner | null
  readonly fn: () => void
  cancelled: boolean
}

/** A handle on a scheduled event. */
export interface EventHandle {
  cancel(): void
}

/** Lets the microtasks started by the last event run to completion (one macrotask turn). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** The virtual clock and the run loop. */
export class Scheduler {
  private readonly queue = new EventQueue<Task>()
  private nowMs = 0
  /** Events run so far. */
  events = 0
  /** Errors thrown by event callbacks (the simulation reports them as violations). */
  readonly errors: Error[] = []

  /** The current virtual time in ms. */
  get now(): number {
    return this.nowMs
  }

  /** Schedules `fn` at virtual time `time` (never before now). */
  at(time: number, owner: Owner | null, fn: () => void): EventHandle {
    const task: Task = { owner, fn, cancelled: false }
    this.queue.push(Math.max(this.nowMs, time), task)
    return {
      cancel: () => {
        task.cancelled = true
      },
    }
  }

  /** Schedules `fn` after `ms` of virtual time. */
  after(ms: number, owner: Owner | null, fn: () => void): EventHandle {
    return this.at(this.nowMs + Math.max(0, ms), owner, fn)
  }

  /** A promise that resolves after `ms` of virtual time, or never if its owner dies first. */
  sleep(ms: number, owner: Owner | null): Promise<void> {
    return new Promise((resolve) => this.after(ms, owner, resolve))
  }

  /** Runs `f` every `ms` while its owner lives; the returned function stops it. */
  every(ms: number, owner: Owner | null, f: () => void): () => void {
    let handle: EventHandle | undefined
    let stopped = false
    const tick = () => {
      if (stopped) return
      handle = this.after(ms, owner, tick)
      f()
    }
    handle = this.after(ms, owner, tick)
    return () => {
      stopped = true
      handle?.cancel()
    }
  }

  /** A {@link TimerClock} on virtual time for the host's timer service. */
  timerClock(owner: Owner): TimerClock {
    return {
      setTimeout: (fn, ms) => this.after(ms, owner, fn),
      clearTimeout: (handle) => (handle as EventHandle).cancel(),
    }
  }

  /**
   * Runs events in order until `done()` holds after an event, the queue is empty, or the next event lies past
   * `deadline`. Each event is followed by one macrotask turn, so the promises it resolved settle before the next.
   */
  async run(done: () => boolean, deadline: number): Promise<void> {
    for (;;) {
      let next = this.queue.peekTime()
      if (next === undefined) {
        // work started outside an event (a boot) may still be settling and about to schedule its first event
        await settle()
        next = this.queue.peekTime()
      }
      if (next === undefined || next > deadline) return
      const { time, event: task } = this.queue.pop()!
      if (task.cancelled || (task.owner !== null && !task.owner.alive)) continue
      this.nowMs = time
      this.events++
      try {
        task.fn()
      } catch (e) {
        this.errors.push(e as Error)
      }
      await settle()
      if (done()) return
    }
  }
}
