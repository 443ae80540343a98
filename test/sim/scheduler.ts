import type { TimerClock } from '../../node/host/timers.js'
import { EventQueue } from './eventQueue.js'

/**
 * The simulator's virtual time. Every timer, sleep, periodic task, network delivery and disk completion of every
 * simulated node is an event in one queue ordered by (virtual time, sequence). The run loop takes one event, runs it,
 * and then lets one macrotask turn pass, which drains every microtask the event started (the node code is async over
 * in-memory stores, so all its work between two events is microtasks). Nothing waits on a real clock, and a run is a
 * pure function of its seed: same events, same order, same outcome.
 *
 * That holds while the work an event starts is finite and virtual time moves on. Node code that never waits on an
 * event (a loop of microtasks) would keep the run loop from ever regaining control, and events that keep scheduling
 * events at one instant would keep the clock from ever reaching a deadline: either way the run would never end while
 * its queue and records grew. {@link SchedulerLimits} bound both; a run past a bound is halted with the reason.
 */

/** Bounds on the work of a run at one instant of virtual time; past either, the scheduler halts the run. */
export interface SchedulerLimits {
  /** Events one event (with the microtasks it starts) may schedule before the run loop regains control. */
  readonly schedulesPerEvent: number
  /** Events that may run at one instant of virtual time. */
  readonly eventsPerInstant: number
}

/**
 * Far above what an event or an instant of a sound run does: with ten validators, an event schedules up to about
 * 1,300 events and an instant runs up to about 900 (repair gossip to every peer), growing with the square of n.
 */
export const DEFAULT_SCHEDULER_LIMITS: SchedulerLimits = { schedulesPerEvent: 50_000, eventsPerInstant: 200_000 }

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
  /** Why the run was halted (a bound of {@link SchedulerLimits} was passed), or undefined while it runs. */
  halted: string | undefined
  private readonly onHalt: ((reason: string) => void)[] = []
  /** Events scheduled since the run loop last took an event, counted while it runs. */
  private schedules = 0
  private running = false
  private instant = -1
  private instantEvents = 0

  constructor(private readonly limits: SchedulerLimits = DEFAULT_SCHEDULER_LIMITS) {}

  /**
   * Halts the run: no event runs after this, and `f` is called (the simulation cuts every node's power there, so
   * work that never waits on an event stops at its next store operation).
   */
  whenHalted(f: (reason: string) => void): void {
    this.onHalt.push(f)
  }

  /** Halts the run for `reason` (the first reason is kept). */
  halt(reason: string): void {
    if (this.halted !== undefined) return
    this.halted = reason
    for (const f of this.onHalt) f(reason)
  }

  /** The current virtual time in ms. */
  get now(): number {
    return this.nowMs
  }

  /** Schedules `fn` at virtual time `time` (never before now). */
  at(time: number, owner: Owner | null, fn: () => void): EventHandle {
    const task: Task = { owner, fn, cancelled: false }
    this.queue.push(Math.max(this.nowMs, time), task)
    if (this.running && ++this.schedules > this.limits.schedulesPerEvent && this.halted === undefined) {
      this.halt(
        `virtual time stood still at ${this.nowMs} ms: one event scheduled more than ${this.limits.schedulesPerEvent} events ` +
          `(${this.queue.size} pending) without the run loop regaining control, work that never waits on an event`,
      )
    }
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
   * Runs events in order until `done()` holds after an event, the queue is empty, the next event lies past
   * `deadline`, or the run is halted. Each event is followed by one macrotask turn, so the promises it resolved settle
   * before the next.
   */
  async run(done: () => boolean, deadline: number): Promise<void> {
    this.running = true
    try {
      await this.loop(done, deadline)
    } finally {
      this.running = false
    }
  }

  private async loop(done: () => boolean, deadline: number): Promise<void> {
    for (;;) {
      this.schedules = 0
      if (this.halted !== undefined) return
      let next = this.queue.peekTime()
      if (next === undefined) {
        // work started outside an event (a boot) may still be settling and about to schedule its first event
        await settle()
        next = this.queue.peekTime()
      }
      if (next === undefined || next > deadline) return
      const { time, event: task } = this.queue.pop()!
      if (task.cancelled || (task.owner !== null && !task.owner.alive)) continue
      if (time !== this.instant) {
        this.instant = time
        this.instantEvents = 0
      }
      if (++this.instantEvents > this.limits.eventsPerInstant) {
        this.halt(`virtual time stood still at ${time} ms: more than ${this.limits.eventsPerInstant} events ran at that instant`)
        return
      }
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
