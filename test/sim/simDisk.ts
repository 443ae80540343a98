import type { SafetyRecord, SafetyStore } from '../../consensus/index.js'
import { MemoryKvStore, type KvEntry, type KvOp, type KvStore } from '../../ledger/store.js'
import type { ConsensusLog } from '../../node/storage/wal.js'
import type { Owner, Scheduler } from './scheduler.js'

/**
 * A simulated validator's disk: what survives a crash (the chain database, the synced part of the consensus WAL, the
 * safety guard's record) and the stores one incarnation of the node uses over it. An incarnation runs on a
 * {@link Power}: the simulator can cut it at any store operation, before or after the operation takes effect. Once
 * cut, nothing the incarnation does reaches the disk and its pending operations never complete, exactly as if the
 * machine lost power there: records written to the WAL but not yet synced are gone, a commit batch is whole or
 * absent, the guard's record is the last one saved.
 */

/** The store operations the simulator can cut power at. */
export type StoreOp = 'walWrite' | 'walSync' | 'guardSave' | 'kvWrite'

/** Before the operation takes effect, or after it took effect and before the caller continues. */
export type CutPhase = 'before' | 'after'

/** Everything a node keeps across a crash. */
export class DurableState {
  /** The chain database (ledger state, blocks, certificates, indexes). */
  kv = new MemoryKvStore()
  /** The WAL records that were synced. */
  wal: Uint8Array[] = []
  /** The safety guard's record. */
  safety: SafetyRecord | undefined

  /** What deleting a home's `data/` does: the chain database goes; the WAL and the guard's record stay beside it. */
  wipeData(): void {
    this.kv = new MemoryKvStore()
  }
}

/**
 * A promise that never settles: what an operation of a powered-off machine returns. A new one each time: whatever
 * awaits it (the dead incarnation's pending work) is then garbage with it, where one shared promise would keep every
 * waiter of every run reachable for the life of the process.
 */
function never(): Promise<never> {
  return new Promise<never>(() => {})
}

/** Bytes a WAL frame adds to each record (node/storage/wal.ts). */
const WAL_FRAME_HEADER = 12

/**
 * The power of one incarnation. `point` is called at every store operation; the node's crash plan decides whether the
 * power goes off there. Once off, `alive` is false and the scheduler skips the incarnation's events.
 */
export class Power implements Owner {
  alive = true

  constructor(
    private readonly plan: (op: StoreOp, phase: CutPhase) => boolean,
    private readonly onCut: () => void,
  ) {}

  /** True while the power is on after this point (the plan may cut it here). */
  point(op: StoreOp, phase: CutPhase): boolean {
    if (!this.alive) return false
    if (this.plan(op, phase)) this.cut()
    return this.alive
  }

  /** Cuts the power now. */
  cut(): void {
    if (!this.alive) return
    this.alive = false
    this.onCut()
  }
}

/**
 * The rate of a disk of zero latency. Its writes, syncs and saves complete in the same turn, as long as the node waits
 * on something else between them (the network, a timer): up to `burst` of them at one instant, then `perMs` per
 * millisecond of virtual time, the next one waiting its turn. Without a rate, a node that waits on nothing else (the
 * only validator of its set, proposing at once and pausing for nothing after a commit) would decide heights at one
 * instant without end: virtual time would never move, and the run never reach its end. Sound runs never wait on it
 * (at most a dozen operations of a node at one instant, and one every few milliseconds).
 */
export class DiskRate {
  private tokens: number
  private at = 0

  constructor(
    private readonly burst = 100,
    private readonly perMs = 1,
  ) {
    this.tokens = burst
  }

  /** Takes the next operation's turn at `now`: the virtual time it waits (0 within the burst). */
  delay(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.perMs)
    this.at = now
    this.tokens -= 1
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.perMs)
  }
}

/** Options shared by the stores of one incarnation. */
export interface DiskOptions {
  readonly durable: DurableState
  readonly power: Power
  readonly scheduler: Scheduler
  /** Virtual time a write, sync or save takes (0: it completes in the same turn, within `rate`). */
  readonly latencyMs: number
  /** The rate of a disk of zero latency (none: unbounded). */
  readonly rate?: DiskRate
}

async function diskDelay(o: DiskOptions): Promise<void> {
  const ms = o.latencyMs > 0 ? o.latencyMs : (o.rate?.delay(o.scheduler.now) ?? 0)
  if (ms > 0) await o.scheduler.sleep(ms, o.power)
}

/** The chain database of one incarnation: reads and atomic batches over the durable store. */
export class SimKvStore implements KvStore {
  constructor(private readonly o: DiskOptions) {}

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.o.power.alive ? this.o.durable.kv.get(key) : never()
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.o.power.alive ? this.o.durable.kv.getMany(keys) : never()
  }

  readPrefix(prefix: Uint8Array): Promise<KvEntry[]> {
    return this.o.power.alive ? this.o.durable.kv.readPrefix(prefix) : never()
  }

  async write(ops: readonly KvOp[]): Promise<void> {
    const { power, durable } = this.o
    if (!power.point('kvWrite', 'before')) return never()
    await diskDelay(this.o)
    if (!power.alive) return never()
    await durable.kv.write(ops)
    if (!power.point('kvWrite', 'after')) return never()
  }
}

/**
 * The consensus WAL of one incarnation, in memory: `write` queues a record, `sync` makes every queued record durable,
 * and a crash loses what was queued but not synced (node/storage/wal.ts has the same contract on a file).
 */
export class SimConsensusLog implements ConsensusLog {
  private pending: Uint8Array[] = []
  private size: number
  /** Records written, syncs and resets done, for diagnostics. */
  writes = 0
  syncs = 0
  resets = 0

  constructor(private readonly o: DiskOptions) {
    this.size = o.durable.wal.reduce((n, r) => n + WAL_FRAME_HEADER + r.byteLength, 0)
  }

  get sizeBytes(): number {
    return this.size
  }

  write(record: Uint8Array): void {
    const { power } = this.o
    if (!power.point('walWrite', 'before')) return
    this.pending.push(new Uint8Array(record))
    this.size += WAL_FRAME_HEADER + record.byteLength
    this.writes++
    power.point('walWrite', 'after')
  }

  async sync(): Promise<void> {
    const { power, durable } = this.o
    if (!power.point('walSync', 'before')) return never()
    const batch = this.pending.length
    await diskDelay(this.o)
    if (!power.alive) return never()
    durable.wal.push(...this.pending.splice(0, batch))
    this.syncs++
    if (!power.point('walSync', 'after')) return never()
  }

  async replay(): Promise<Uint8Array[]> {
    if (!this.o.power.alive) return never()
    return this.o.durable.wal.map((r) => new Uint8Array(r))
  }

  async reset(initial: readonly Uint8Array[] = []): Promise<void> {
    const { power, durable } = this.o
    if (!power.alive) return never()
    await diskDelay(this.o)
    if (!power.alive) return never()
    durable.wal = initial.map((r) => new Uint8Array(r))
    this.pending = []
    this.size = durable.wal.reduce((n, r) => n + WAL_FRAME_HEADER + r.byteLength, 0)
    this.resets++
  }
}

/** The safety guard's record store of one incarnation; `saveAsync` is what the host's signers use. */
export class SimSafetyStore implements SafetyStore {
  constructor(private readonly o: DiskOptions) {}

  load(): SafetyRecord | undefined {
    return this.o.durable.safety
  }

  save(record: SafetyRecord): void {
    if (!this.o.power.point('guardSave', 'before')) throw new Error('the machine is off')
    this.o.durable.safety = record
    if (!this.o.power.point('guardSave', 'after')) throw new Error('the machine is off')
  }

  async saveAsync(record: SafetyRecord): Promise<void> {
    const { power, durable } = this.o
    if (!power.point('guardSave', 'before')) return never()
    await diskDelay(this.o)
    if (!power.alive) return never()
    durable.safety = record
    if (!power.point('guardSave', 'after')) return never()
  }
}
