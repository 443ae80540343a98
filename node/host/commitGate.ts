/**
 * Keeps reads of the committed state apart from the commits that change it. The ledger keeps one version of its
 * state, rewritten in place by each commit, so a read that takes several store reads (an account proof: the tree path,
 * then the account) must not have a commit land between them. Reads share the gate; a commit waits for the reads under
 * way and holds back new ones until it is done, so a stream of reads cannot starve it. Commits come one at a time (the
 * consensus host's ledger lock); the gate does not order them.
 */
export class CommitGate {
  private readers = 0
  /** Settles when the commit under way (or waiting for readers) is done. */
  private committing: Promise<void> | undefined
  private readersDone: (() => void) | undefined

  /** Runs `f` with no commit under way. */
  async read<T>(f: () => Promise<T>): Promise<T> {
    while (this.committing !== undefined) await this.committing
    this.readers++
    try {
      return await f()
    } finally {
      this.readers--
      if (this.readers === 0) this.readersDone?.()
    }
  }

  /** Runs `f` once the reads under way are done, with no read starting until it is. */
  async commit<T>(f: () => Promise<T> | T): Promise<T> {
    let done!: () => void
    this.committing = new Promise<void>((resolve) => {
      done = resolve
    })
    try {
      if (this.readers > 0) {
        await new Promise<void>((resolve) => {
          this.readersDone = resolve
        })
        this.readersDone = undefined
      }
      return await f()
    } finally {
      this.committing = undefined
      done()
    }
  }
}
