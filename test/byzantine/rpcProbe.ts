import { Worker } from 'node:worker_threads'

/**
 * Measures how long honest nodes take to answer `node_status` while an attack runs. The requests go out from a
 * worker thread, so the latency measured is the nodes' and not the test process's, whose event loop is busy
 * sending the attack.
 */

/** What a probe saw for one URL. */
export interface ProbeResult {
  readonly url: string
  readonly samples: number
  /** Slowest answer, in ms (a request that failed or passed its deadline counts as its deadline). */
  readonly maxMs: number
  /** Requests that failed or passed their deadline. */
  readonly failures: number
}

export class RpcProbe {
  private readonly worker: Worker
  private readonly done: Promise<ProbeResult[]>

  /** Starts polling every URL every `intervalMs`, each request with a `deadlineMs` deadline. */
  constructor(urls: readonly string[], intervalMs = 250, deadlineMs = 3_000) {
    this.worker = new Worker(new URL('./rpcProbeWorker.js', import.meta.url), { workerData: { urls, intervalMs, deadlineMs } })
    // a probe a failed test never stopped must not keep the test process alive
    this.worker.unref()
    this.done = new Promise((resolve, reject) => {
      this.worker.once('message', (m: ProbeResult[]) => resolve(m))
      this.worker.once('error', reject)
    })
  }

  /** Stops polling and returns what each URL did. */
  async stop(): Promise<ProbeResult[]> {
    this.worker.postMessage('stop')
    const r = await this.done
    await this.worker.terminate()
    return r
  }
}
