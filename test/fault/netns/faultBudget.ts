/**
 * The time a fault may take, and what it did with it. A fault runs within a budget shorter than its test's
 * timeout: every wait of the fault is cut short at the budget's end and fails with what it was waiting for, so
 * the fault heals its network and fails with a diagnosis before the test runner gives up on it (a test the runner
 * times out is abandoned mid-await, and prints nothing of where it stood). The budget also keeps a trace of the
 * fault's steps, with the time each began, for the failure message.
 */
export class FaultBudget {
  private deadline = Infinity
  private budgetMs = 0
  private startedAt = Date.now()
  private trace: string[] = []
  private readonly waits: string[] = []
  /** Describes the network when a wait fails (before the fault heals it); set by the owner of the network. */
  snapshot?: () => Promise<string>

  /** Starts a fault's budget of `budgetMs` (and a new trace). */
  begin(budgetMs: number): void {
    this.budgetMs = budgetMs
    this.startedAt = Date.now()
    this.deadline = this.startedAt + budgetMs
    this.trace = []
  }

  /** Ends the budget: waits are bounded only by their own timeouts again. */
  end(): void {
    this.deadline = Infinity
  }

  /** Milliseconds since the budget began. */
  get elapsedMs(): number {
    return Date.now() - this.startedAt
  }

  /** Records a step of the fault in the trace. */
  mark(step: string): void {
    this.trace.push(`+${String(this.elapsedMs).padStart(6)} ms  ${step}`)
  }

  /** What the fault is waiting for right now (innermost last). */
  get waitingFor(): readonly string[] {
    return this.waits
  }

  /** The trace of the current (or last) fault, one step a line. */
  get steps(): string {
    return this.trace.join('\n')
  }

  /** The time a wait of `timeoutMs` may take: its own timeout, or what is left of the budget if less. */
  limit(timeoutMs: number): number {
    return Math.max(0, Math.min(timeoutMs, this.deadline - Date.now()))
  }

  /**
   * Runs a wait for `what` of at most `timeoutMs` (`run` gets the milliseconds it may take, which the budget may
   * cut short). A wait that fails says so with a snapshot of the network; when the budget cut it short, its error
   * says that too.
   */
  async wait<T>(what: string, timeoutMs: number, run: (ms: number) => Promise<T>): Promise<T> {
    const ms = this.limit(timeoutMs)
    const cut = ms < timeoutMs
    this.waits.push(what)
    this.mark(`waiting for ${what}${cut ? ` (${ms} ms left of the budget)` : ''}`)
    try {
      const v = await run(ms)
      this.mark(`done: ${what}`)
      return v
    } catch (e) {
      this.mark(`failed: ${what}`)
      const why = cut ? ` (cut short: the fault's budget of ${this.budgetMs} ms ran out)` : ''
      const state =
        this.snapshot === undefined
          ? ''
          : `\nthe network when the wait failed:\n${await this.snapshot().catch((err: unknown) => `(no snapshot: ${String(err)})`)}`
      throw new Error(`${(e as Error).message}${why}${state}`, { cause: e })
    } finally {
      this.waits.splice(this.waits.lastIndexOf(what), 1)
    }
  }
}
