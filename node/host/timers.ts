/**
 * Consensus timeouts for the host. Time is data in the consensus core: it emits `scheduleTimeout({height, round,
 * kind}, duration)` and later receives `timeoutElapsed` with the same value. This service arms the timers and
 * hands each value back through `onTimeout`. A timeout already pending for the same (height, round, kind) is not
 * re-armed (the first deadline stands); `cancelBelow(height)` drops the timeouts of finished heights.
 */

/** A consensus timeout value: which step of which round of which height expired. */
export interface TimeoutValue<K extends string = string> {
  readonly height: bigint
  readonly round: number
  readonly kind: K
}

/** The clock the service uses; tests inject a manual one. */
export interface TimerClock {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** The real clock (Node's timers). */
export const systemClock: TimerClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
}

/** Options of {@link Timers}. */
export interface TimersOptions {
  readonly clock?: TimerClock
}

/** Dependencies of {@link Timers}. */
export interface TimersDependencies<K extends string = string> {
  /** Receives each timeout when it fires (the host feeds it to the consensus core as `timeoutElapsed`). */
  readonly onTimeout: (timeout: TimeoutValue<K>) => void
}

interface Armed<K extends string> {
  readonly value: TimeoutValue<K>
  readonly handle: unknown
}

/** The timer service of the consensus host. */
export class Timers<K extends string = string> {
  private readonly clock: TimerClock
  private readonly onTimeout: (timeout: TimeoutValue<K>) => void
  private readonly armed = new Map<string, Armed<K>>()
  private stopped = false

  constructor(options: TimersOptions, dependencies: TimersDependencies<K>) {
    this.clock = options.clock ?? systemClock
    this.onTimeout = dependencies.onTimeout
  }

  /** Number of timeouts armed. */
  get pending(): number {
    return this.armed.size
  }

  /** Arms a timeout that fires after durationMs (no-op if the same one is pending or the service stopped). */
  schedule(timeout: TimeoutValue<K>, durationMs: number): void {
    if (this.stopped) return
    const key = `${timeout.height}/${timeout.round}/${timeout.kind}`
    if (this.armed.has(key)) return
    const value: TimeoutValue<K> = { height: timeout.height, round: timeout.round, kind: timeout.kind }
    const handle = this.clock.setTimeout(
      () => {
        if (this.armed.get(key)?.handle !== handle) return
        this.armed.delete(key)
        this.onTimeout(value)
      },
      Math.max(0, durationMs),
    )
    this.armed.set(key, { value, handle })
  }

  /** Cancels every pending timeout of a height below `height`. */
  cancelBelow(height: bigint): void {
    for (const [key, a] of this.armed) {
      if (a.value.height < height) {
        this.clock.clearTimeout(a.handle)
        this.armed.delete(key)
      }
    }
  }

  /** Cancels everything; later schedules are ignored. */
  stop(): void {
    this.stopped = true
    for (const a of this.armed.values()) this.clock.clearTimeout(a.handle)
    this.armed.clear()
  }
}
