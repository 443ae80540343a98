import { constants } from 'node:fs'
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'
import type { Logger } from '../logger.js'

/**
 * The consensus write-ahead log: an append-only file of records, each framed as
 * `length (u32 BE) | crc32 of payload (u32 BE) | crc32 of the previous 8 bytes (u32 BE) | payload`.
 * The header's own checksum tells a damaged length apart from a record cut short by a crash.
 *
 * The file is open for synchronized appends (`O_DSYNC`): a write returns once its bytes are on disk, as a write
 * followed by fdatasync would, in one system call. `append` resolves only once the record is on disk; concurrent
 * appends share one write. `write` queues a record without waiting for it, and `sync` resolves once every record
 * queued before it is on disk: a caller that needs durability only at certain points (the consensus host, before it
 * signs) pays one synchronized write per such point instead of one per record. Written records stay in memory until
 * the next `sync`, `append`, `reset` or `stop`, or until {@link WRITE_BEHIND_BYTES} of them are queued.
 * `replay` returns the records in order. A torn tail is what a crash mid-append leaves: a partial header, an intact
 * header whose payload is cut short, a final payload failing its checksum, a region of zeros to the end of the
 * file (starting anywhere, in a header or a payload), or a zero-filled header with data after it (an unsynced tail the
 * file system wrote back out of order). It is truncated and logged. Anything else (a header or payload failing its
 * checksum with more data after it, zeros inside a record with intact records after it, which the log cannot tell
 * from damage to records already synced, an intact header with a length over the bound) is corruption in the middle of the log: replay throws
 * {@link WalCorruptError} and the node stops rather than guess. `reset` starts a new empty log by renaming a fresh
 * file over the old one, so a crash leaves either the old log or the new one. Records carry their height, so the
 * consensus host replays only the current height's and resets the log only once it outgrows a bound
 * ({@link Wal.sizeBytes}), not at every height: a reset costs two fsyncs and a rename.
 */

/** How the log is opened for appending: every write is on disk when it returns. */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC

/** Bytes before each payload: length and checksum. */
export const WAL_FRAME_HEADER = 12

/** Thrown when the log is damaged in a way a crash cannot explain. */
export class WalCorruptError extends Error {
  constructor(
    readonly path: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`WAL ${path} is corrupt at byte ${offset}: ${reason}`)
    this.name = 'WalCorruptError'
  }
}

/** Options of {@link Wal}. */
export interface WalOptions {
  /** The log file (its directory is created). */
  readonly path: string
  /** Largest record accepted (default 4 MiB); a larger length in the file is corruption. */
  readonly maxRecordBytes?: number
}

/** Dependencies of {@link Wal}. */
export interface WalDependencies {
  readonly logger: Logger
}

interface Pending {
  /** The record's frame; empty for a bare sync request. */
  readonly frame: Uint8Array
  /** Waiters on durability; absent for a record written with {@link Wal.write}. */
  readonly resolve?: () => void
  readonly reject?: (e: unknown) => void
}

/** Bytes of records queued by `write` that start a write to the file without waiting for a sync. */
export const WRITE_BEHIND_BYTES = 1024 * 1024

/** Encodes one record's frame. */
export function encodeWalFrame(record: Uint8Array): Uint8Array {
  const frame = new Uint8Array(WAL_FRAME_HEADER + record.byteLength)
  const view = new DataView(frame.buffer)
  view.setUint32(0, record.byteLength)
  view.setUint32(4, crc32(record) >>> 0)
  view.setUint32(8, crc32(frame.subarray(0, 8)) >>> 0)
  frame.set(record, WAL_FRAME_HEADER)
  return frame
}

/**
 * What the consensus host needs of its log: records queued with `write`, made durable by `sync`, read back in order by
 * `replay`, and replaced by `reset`. {@link Wal} is the file implementation; simulations use one in memory.
 */
export interface ConsensusLog {
  write(record: Uint8Array): void
  sync(): Promise<void>
  replay(): Promise<Uint8Array[]>
  reset(initial?: readonly Uint8Array[]): Promise<void>
  /** Bytes in the log, written or queued. */
  readonly sizeBytes: number
}

/** An append-only, crash-safe log of records. */
export class Wal implements ConsensusLog {
  readonly path: string
  private readonly maxRecordBytes: number
  private readonly log: Logger
  private fh?: FileHandle
  private queue: Pending[] = []
  private flushing?: Promise<void>
  private failed?: Error
  private size = 0
  /** Bytes queued by `write` since the last flush took the queue. */
  private unwritten = 0

  constructor(options: WalOptions, dependencies: WalDependencies) {
    this.path = options.path
    this.maxRecordBytes = options.maxRecordBytes ?? 4 * 1024 * 1024
    this.log = dependencies.logger
  }

  /**
   * Opens (creating if needed) the log for appending. The directory is synced too, so that a log created now is
   * still there after a power loss, with the records synced into it.
   */
  async start(): Promise<void> {
    if (this.fh !== undefined) return
    await mkdir(dirname(this.path), { recursive: true })
    this.fh = await open(this.path, APPEND_FLAGS)
    this.size = (await this.fh.stat()).size
    await syncDirectory(dirname(this.path))
  }

  /** Bytes in the log: what is on disk plus what has been appended since. */
  get sizeBytes(): number {
    return this.size
  }

  /** Waits for pending appends and closes the file. */
  async stop(): Promise<void> {
    await this.drain()
    await this.fh?.close()
    this.fh = undefined
  }

  /**
   * Reads every complete record in order, truncating a torn tail. Call after start and before appending.
   * Throws {@link WalCorruptError} on damage in the middle of the log.
   */
  async replay(): Promise<Uint8Array[]> {
    let data: Uint8Array
    try {
      data = await readFile(this.path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
    const records: Uint8Array[] = []
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
    let off = 0
    let torn: string | undefined
    const zerosFrom = trailingZerosFrom(data)
    while (off < data.byteLength) {
      if (data.byteLength - off < WAL_FRAME_HEADER) {
        torn = 'partial frame header'
        break
      }
      const len = view.getUint32(off)
      const sum = view.getUint32(off + 4)
      if (crc32(data.subarray(off, off + 8)) >>> 0 !== view.getUint32(off + 8)) {
        // zeros from inside the header to the end: the file grew by a write whose data did not all reach the disk
        if (zerosFrom < off + WAL_FRAME_HEADER) {
          torn = 'zero-filled tail'
          break
        }
        // A file system may write an unsynced tail back out of order: a hole of zeros where the next record's header
        // should be, with later (never acknowledged) data after it. A sync covers everything before it, so what
        // follows a zero header was never durable: a tail, not damage to the log.
        if (allZero(data.subarray(off, off + WAL_FRAME_HEADER), 0)) {
          torn = 'zero-filled header (a tail written back out of order)'
          break
        }
        throw new WalCorruptError(this.path, off, 'frame header checksum mismatch')
      }
      if (len > this.maxRecordBytes) throw new WalCorruptError(this.path, off, `record length ${len} exceeds ${this.maxRecordBytes}`)
      const end = off + WAL_FRAME_HEADER + len
      if (end > data.byteLength) {
        torn = `record of ${len} bytes cut short`
        break
      }
      const payload = data.subarray(off + WAL_FRAME_HEADER, end)
      if (crc32(payload) >>> 0 !== sum) {
        if (end === data.byteLength) {
          torn = 'checksum mismatch in the final record'
          break
        }
        // zeros from inside this record to the end: the file grew by a write whose data did not all reach the disk
        if (zerosFrom < end) {
          torn = 'zero-filled tail from inside a record'
          break
        }
        throw new WalCorruptError(this.path, off, 'record checksum mismatch with records after it')
      }
      records.push(new Uint8Array(payload))
      off = end
    }
    if (torn !== undefined) {
      this.log.warn({ path: this.path, offset: off, dropped: data.byteLength - off, reason: torn }, 'WAL: truncating torn tail')
      const fh = await open(this.path, 'r+')
      try {
        await fh.truncate(off)
        await fh.sync()
      } finally {
        await fh.close()
      }
      this.size = off
    }
    return records
  }

  /** Appends a record; resolves once it is durable. Throws RangeError on an oversized record (a caller bug). */
  append(record: Uint8Array): Promise<void> {
    const refused = this.refuse(record)
    if (refused) return Promise.reject(refused)
    return new Promise<void>((resolve, reject) => this.enqueue({ frame: this.frame(record), resolve, reject }))
  }

  /**
   * Queues a record to be written with the next flush, without waiting for it to be durable: a later {@link sync}
   * (or {@link append}) covers it. A failure to write it fails that later call. Throws like {@link append}.
   */
  write(record: Uint8Array): void {
    const refused = this.refuse(record)
    if (refused) throw refused
    const frame = this.frame(record)
    this.queue.push({ frame })
    this.unwritten += frame.byteLength
    if (this.unwritten >= WRITE_BEHIND_BYTES) this.startFlush()
  }

  /** Resolves once every record queued before the call is on disk. */
  sync(): Promise<void> {
    if (this.fh === undefined) return Promise.reject(new Error('WAL: not started'))
    if (this.failed !== undefined) return Promise.reject(this.failed)
    return new Promise<void>((resolve, reject) => this.enqueue({ frame: EMPTY, resolve, reject }))
  }

  private refuse(record: Uint8Array): Error | undefined {
    if (record.byteLength > this.maxRecordBytes) return new RangeError(`WAL record of ${record.byteLength} bytes exceeds ${this.maxRecordBytes}`)
    if (this.fh === undefined) return new Error('WAL: not started')
    return this.failed
  }

  private frame(record: Uint8Array): Uint8Array {
    const frame = encodeWalFrame(record)
    this.size += frame.byteLength
    return frame
  }

  private enqueue(p: Pending): void {
    this.queue.push(p)
    this.startFlush()
  }

  /**
   * Replaces the log with a new one holding `initial` records (e.g. a marker for the new height), crash-safely:
   * the new file is written and synced beside the old one, then renamed over it.
   */
  async reset(initial: readonly Uint8Array[] = []): Promise<void> {
    await this.drain()
    if (this.fh === undefined) throw new Error('WAL: not started')
    const tmp = `${this.path}.new`
    const fresh = await open(tmp, 'w')
    let size = 0
    try {
      for (const r of initial) {
        if (r.byteLength > this.maxRecordBytes) throw new RangeError(`WAL record of ${r.byteLength} bytes exceeds ${this.maxRecordBytes}`)
        const frame = encodeWalFrame(r)
        await fresh.write(frame)
        size += frame.byteLength
      }
      await fresh.sync()
    } finally {
      await fresh.close()
    }
    await rename(tmp, this.path)
    await syncDirectory(dirname(this.path))
    await this.fh.close()
    this.fh = await open(this.path, APPEND_FLAGS)
    this.size = size
  }

  /** Writes what is queued and waits for every write under way. */
  private async drain(): Promise<void> {
    if (this.queue.length > 0 && this.failed === undefined) this.startFlush()
    while (this.flushing !== undefined) await this.flushing
  }

  /**
   * Starts writing the queue unless a flush is under way (it takes what is queued meanwhile). The loop starts in a
   * later microtask, after `flushing` is stored: a batch with nothing to write finishes without awaiting, and the
   * loop's own clearing of `flushing` must come after that store, or a settled flush would block every later one.
   */
  private startFlush(): void {
    if (this.flushing === undefined) this.flushing = Promise.resolve().then(() => this.flushLoop())
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue
        this.queue = []
        this.unwritten = 0
        try {
          const total = batch.reduce((n, p) => n + p.frame.byteLength, 0)
          const buf = new Uint8Array(total)
          let off = 0
          for (const p of batch) {
            buf.set(p.frame, off)
            off += p.frame.byteLength
          }
          // synchronized writes: once this loop ends the batch is durable (an empty batch has nothing to wait for)
          let written = 0
          while (written < total) written += (await this.fh!.write(buf, written, total - written)).bytesWritten
          for (const p of batch) p.resolve?.()
        } catch (e) {
          // a failed write leaves the file in an unknown state: refuse further appends (the node must stop)
          this.failed = new Error(`WAL append failed: ${(e as Error).message}`)
          this.log.error({ path: this.path, err: (e as Error).message }, 'WAL append failed')
          for (const p of [...batch, ...this.queue]) p.reject?.(this.failed)
          this.queue = []
          this.unwritten = 0
        }
      }
    } finally {
      this.flushing = undefined
    }
  }
}

const EMPTY = new Uint8Array(0)

/** Makes a directory's entries (a file created or renamed in it) durable. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

/** Where the run of zero bytes that ends the file starts (the file's length when its last byte is not zero). */
function trailingZerosFrom(data: Uint8Array): number {
  let i = data.byteLength
  while (i > 0 && data[i - 1] === 0) i--
  return i
}

function allZero(data: Uint8Array, from: number): boolean {
  for (let i = from; i < data.byteLength; i++) if (data[i] !== 0) return false
  return true
}
