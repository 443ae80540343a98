/**
 * Decides which reports of a repeated event reach the log: the first per key (a peer id, an address) in each
 * window, so a flood of sockets from one source is one line a minute, not one line per socket. It tracks at most
 * `maxKeys` keys; when more sources misbehave within a window than that, the excess is reported as one line under
 * the key `*` (so a flood from many addresses cannot flood the log either).
 */

/** Options of {@link ThrottledLog}. */
export interface ThrottledLogOptions {
  /** Length of a window, in ms. */
  readonly windowMs: number
  /** Distinct keys reported per window before the rest are summarized under `*`. */
  readonly maxKeys: number
}

/** Dependencies of {@link ThrottledLog}. */
export interface ThrottledLogDependencies {
  /** The clock (default `Date.now`). */
  readonly now?: () => number
}

interface Entry {
  at: number
  suppressed: number
}

/** See the module comment. */
export class ThrottledLog {
  private readonly entries = new Map<string, Entry>()
  private readonly now: () => number

  constructor(
    private readonly options: ThrottledLogOptions,
    dependencies: ThrottledLogDependencies = {},
  ) {
    this.now = dependencies.now ?? Date.now
  }

  /**
   * Notes one event under `key`. Returns undefined when it is not to be logged, or the key to log it under
   * (`key`, or `*` when too many keys are active) and how many events of that key were left out since its last line.
   */
  note(key: string): { key: string; suppressed: number } | undefined {
    const now = this.now()
    let k = key
    if (!this.entries.has(k) && this.entries.size >= this.options.maxKeys) {
      this.sweep(now)
      if (this.entries.size >= this.options.maxKeys) k = '*'
    }
    const e = this.entries.get(k)
    if (e !== undefined && now - e.at < this.options.windowMs) {
      e.suppressed++
      return undefined
    }
    this.entries.set(k, { at: now, suppressed: 0 })
    return { key: k, suppressed: e?.suppressed ?? 0 }
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (now - e.at >= this.options.windowMs) this.entries.delete(k)
  }
}
