import { Worker } from 'node:worker_threads'
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, verify } from '../../crypto/ed25519.js'
import type { Logger } from '../logger.js'

/**
 * Ed25519 verification on worker threads, so the event loop that runs consensus, gossip and JSON-RPC is not held
 * up by the one cost every transaction pays at every validator (as Lodestar verifies BLS signatures in a worker
 * pool). Requests made in the same turn of the event loop travel to a worker as one message; each worker runs the
 * same `crypto/ed25519.ts` rule as the rest of the node, so verdicts are identical to verifying inline.
 *
 * Batch wire format (one ArrayBuffer, transferred): per item `publicKey(32) ‖ signature(64) ‖ u16 BE message
 * length ‖ message`; the reply is one byte per item, 1 for valid. Verdicts are handed out in request order, even
 * across workers, so callers that admit a sender's transactions together see them complete in order. With
 * `workers: 0`, or after every worker failed, verification runs inline.
 */

/** Options of {@link VerifyPool}. */
export interface VerifyPoolOptions {
  /** Worker threads (0 verifies inline on the caller's thread). */
  readonly workers: number
  /** Most signatures in one message to a worker (default 512). */
  readonly maxBatch?: number
}

interface Pending {
  readonly publicKey: Uint8Array
  readonly message: Uint8Array
  readonly signature: Uint8Array
  readonly resolve: (valid: boolean) => void
  /** A verdict known without a worker (malformed lengths, or a message too long for the batch format). */
  readonly known?: boolean
}

interface Batch {
  readonly items: Pending[]
  /** The verdicts once known; batches resolve in the order they were sent. */
  results?: boolean[]
}

interface WorkerSlot {
  readonly worker: Worker
  /** Batches sent and not yet answered, by id. */
  readonly inFlight: Map<number, Batch>
  items: number
  alive: boolean
}

/** Most worker threads a node gives itself by default: beyond this, verification is not what limits it. */
export const MAX_DEFAULT_VERIFY_WORKERS = 4

/** Largest message the batch format carries (u16 length); transaction sign bytes are far smaller. */
const MAX_MESSAGE_BYTES = 0xffff

/** Counters for metrics and tests. */
export interface VerifyPoolStats {
  batches: number
  verified: number
  inline: number
}

export class VerifyPool {
  private readonly slots: WorkerSlot[] = []
  private readonly maxBatch: number
  private queue: Pending[] = []
  /** Batches in the order they were sent, until their verdicts are handed out. */
  private readonly order: Batch[] = []
  private flushScheduled = false
  private nextId = 1
  private stopped = false
  readonly stats: VerifyPoolStats = { batches: 0, verified: 0, inline: 0 }

  constructor(
    options: VerifyPoolOptions,
    private readonly log: Logger,
  ) {
    if (!Number.isSafeInteger(options.workers) || options.workers < 0) throw new RangeError('workers must be a non-negative integer')
    this.maxBatch = options.maxBatch ?? 512
    for (let i = 0; i < options.workers; i++) this.slots.push(this.spawn())
  }

  /** Number of live worker threads. */
  get workers(): number {
    return this.slots.filter((s) => s.alive).length
  }

  /** Verifies one Ed25519 signature; resolves with the verdict (never rejects). */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (this.stopped || this.workers === 0) {
      this.stats.inline++
      return Promise.resolve(verify(publicKey, message, signature))
    }
    const odd = publicKey.byteLength !== PUBLIC_KEY_LENGTH || signature.byteLength !== SIGNATURE_LENGTH || message.byteLength > MAX_MESSAGE_BYTES
    return new Promise<boolean>((resolve) => {
      // queued even when the verdict is known, so verdicts still come out in request order
      this.queue.push({ publicKey, message, signature, resolve, ...(odd ? { known: verify(publicKey, message, signature) } : {}) })
      if (this.queue.length >= this.maxBatch) this.flush()
      else if (!this.flushScheduled) {
        this.flushScheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Stops the workers; what they still hold is verified inline. */
  async stop(): Promise<void> {
    this.stopped = true
    this.flush()
    await Promise.all(
      this.slots.map(async (s) => {
        this.retire(s, undefined)
        await s.worker.terminate()
      }),
    )
  }

  private flush(): void {
    this.flushScheduled = false
    while (this.queue.length > 0) {
      const items = this.queue.splice(0, this.maxBatch)
      const batch: Batch = { items }
      this.order.push(batch)
      const slot = this.leastBusy()
      if (slot === undefined) {
        this.verifyInline(batch)
        continue
      }
      const work = items.filter((p) => p.known === undefined)
      let size = 0
      for (const p of work) size += PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH + 2 + p.message.byteLength
      const buf = new Uint8Array(size)
      let off = 0
      for (const p of work) {
        buf.set(p.publicKey, off)
        buf.set(p.signature, off + PUBLIC_KEY_LENGTH)
        off += PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH
        buf[off] = p.message.byteLength >>> 8
        buf[off + 1] = p.message.byteLength & 0xff
        buf.set(p.message, off + 2)
        off += 2 + p.message.byteLength
      }
      const id = this.nextId++
      slot.inFlight.set(id, batch)
      slot.items += items.length
      this.stats.batches++
      slot.worker.postMessage({ id, count: work.length, buf }, [buf.buffer])
    }
  }

  private leastBusy(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined
    for (const s of this.slots) if (s.alive && (best === undefined || s.items < best.items)) best = s
    return best
  }

  private verifyInline(batch: Batch): void {
    this.stats.inline += batch.items.length
    this.answer(
      batch,
      batch.items.map((p) => p.known ?? verify(p.publicKey, p.message, p.signature)),
    )
  }

  private answer(batch: Batch, results: boolean[]): void {
    batch.results = results
    while (this.order.length > 0 && this.order[0]!.results !== undefined) {
      const done = this.order.shift()!
      done.items.forEach((p, i) => {
        p.resolve(done.results![i]!)
      })
    }
  }

  private spawn(): WorkerSlot {
    const worker = new Worker(new URL('./verifyWorker.js', import.meta.url))
    worker.unref()
    const slot: WorkerSlot = { worker, inFlight: new Map(), items: 0, alive: true }
    worker.on('message', (m: { id: number; results: Uint8Array }) => {
      const batch = slot.inFlight.get(m.id)
      if (batch === undefined) return
      slot.inFlight.delete(m.id)
      slot.items -= batch.items.length
      this.stats.verified += batch.items.length
      let k = 0
      this.answer(
        batch,
        batch.items.map((p) => p.known ?? m.results[k++] === 1),
      )
    })
    worker.on('error', (e) => this.retire(slot, e))
    worker.on('exit', (code) => {
      if (slot.alive) this.retire(slot, new Error(`verify worker exited with code ${code}`))
    })
    return slot
  }

  /** Takes a worker out of service; its unanswered batches are verified inline. */
  private retire(slot: WorkerSlot, error: Error | undefined): void {
    if (!slot.alive) return
    slot.alive = false
    if (error !== undefined && !this.stopped) this.log.error({ err: error.message }, 'signature verification worker failed: verifying on the main thread')
    for (const batch of slot.inFlight.values()) this.verifyInline(batch)
    slot.inFlight.clear()
    slot.items = 0
  }
}
