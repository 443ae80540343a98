/**
 * Deadlines of one fixed length, for work started one after another (the RPC server's calls), on a single timer.
 *
 * A Node timer per call costs, when calls come one at a time, the creation and removal of the timer list for the
 * duration on each call. Since every deadline here is the same length after its start, deadlines come due in the
 * order they were started: they wait in a first-in-first-out queue, and one timer, set for the oldest pending one,
 * serves them all. Finishing work only marks its deadline (and drops finished ones from the front); the timer is left
 * running, and when it fires it expires what is due and sets itself for the next pending deadline, so a server under
 * steady load sets about one timer per deadline length. The timer holds the process open only while a deadline is
 * pending.
 */

/** A started deadline. */
export interface Deadline {
  /** The work finished: the deadline will not expire. Idempotent. */
  done(): void
}

interface Entry extends Deadline {
  readonly at: number
  readonly expire: () => void
  finished: boolean
}

/** Past this many finished entries at the front, the queue's array is compacted. */
const COMPACT_AFTER = 1024

/** A queue of deadlines `ms` long. */
export class DeadlineQueue {
  private entries: Entry[] = []
  /** Index of the first entry not yet finished or expired (those before it are garbage). */
  private head = 0
  private timer: NodeJS.Timeout | undefined

  /**
   * @param ms every deadline's length
   * @param now the monotonic clock in ms (a parameter for tests)
   */
  constructor(
    private readonly ms: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Deadlines started and neither finished nor expired yet (finished ones behind a pending one may count). */
  get pending(): number {
    return this.entries.length - this.head
  }

  /** Starts a deadline: `expire` runs once it passes, unless `done` was called first. */
  start(expire: () => void): Deadline {
    const entry: Entry = {
      at: this.now() + this.ms,
      expire,
      finished: false,
      done: () => {
        if (entry.finished) return
        entry.finished = true
        this.dropFinished()
      },
    }
    this.entries.push(entry)
    if (this.timer === undefined) this.arm(this.ms)
    else this.timer.ref()
    return entry
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(delay)))
  }

  /** Drops finished entries from the front; lets the process exit when nothing is pending. */
  private dropFinished(): void {
    const entries = this.entries
    while (this.head < entries.length && entries[this.head]!.finished) this.head++
    if (this.head === entries.length) {
      this.entries = []
      this.head = 0
      this.timer?.unref()
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= entries.length) {
      this.entries = entries.slice(this.head)
      this.head = 0
    }
  }

  private fire(): void {
    this.timer = undefined
    // a timer fires no earlier than asked, but in whole milliseconds of another clock: allow that rounding
    const now = this.now() + 1
    // re-read the queue on each step: an expiry may finish other work, which may compact it
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!
      if (!e.finished && e.at > now) break
      this.head++
      if (!e.finished) {
        e.finished = true
        e.expire()
      }
    }
    this.dropFinished()
    if (this.head < this.entries.length) this.arm(this.entries[this.head]!.at - this.now())
  }
}
