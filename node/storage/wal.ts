import { createHash, randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'
import type { Logger } from '../logger.js'

/**
 * The consensus write-ahead log: an append-only file of frames, each
 * `word (u32 BE) | crc32 of payload (u32 BE) | crc32 of the previous 8 bytes (u32 BE) | payload`, where the word is
 * the payload's length for a record, {@link WAL_MARKER_FLAG} with the length 16 for a sync marker, and that flag with
 * kind 1 and the length 16 for the log's key, its first frame: 16 random bytes drawn when the file is made. A sync
 * marker's payload is its own offset in the file (u64 BE) and a tag, the first 8 bytes of SHA-256(key | offset): the
 * bytes of a record (a peer's proposal, say) cannot pass for one without the key, which never leaves the file. The
 * header's own checksum tells a damaged length apart from a record cut short.
 *
 * The file is open for synchronized appends (`O_DSYNC`): a write returns once its bytes are on disk, as a write
 * followed by fdatasync would, in one system call, and the next write starts only after it returned. `append` resolves
 * only once the record is on disk; concurrent appends share one write. `write` queues a record without waiting for
 * it, and `sync` resolves once every record queued before it is on disk: a caller that needs durability only at
 * certain points (the consensus host, before it signs) pays one synchronized write per such point instead of one per
 * record. Written records stay in memory until the next `sync`, `append`, `reset` or `stop`, or until
 * {@link WRITE_BEHIND_BYTES} of them are queued.
 *
 * Every write to a log with a key starts with a sync marker, in the same system call: a marker at offset P says that
 * every byte before P was on disk when the write holding it began. So only the last write can be unfinished after a
 * power loss, and a valid marker after a damaged frame proves the damage is in bytes that were synced. `replay`
 * returns the records in order; at the first damaged frame (a partial or checksum-failing header, a payload cut short
 * or failing its checksum) it looks for a valid marker further on. If there is one, the damage is in the middle of
 * the log: replay throws {@link WalCorruptError} and the node stops rather than guess (the inputs behind a signature
 * must never be dropped silently). If there is none, the damage is in the last write (a torn tail, zeros the file
 * system left where an unsynced write had not reached the disk, with more of that write after them): it is truncated
 * and logged. A frame whose header checksum holds but whose length is over the bound, or of an unknown kind, is always
 * corruption. A log without a key (written before markers existed) gets no markers until it is reset, and a log with
 * no marker before the damage keeps the rules such logs were written under: a partial header, a payload cut short, a
 * final payload failing its checksum, zeros from the damage to the end of the file or a zero-filled header are a
 * tail; anything else is corruption. Damage to the last write of a log is cut even when that write had finished:
 * nothing in the file can tell it from a write the power cut short.
 *
 * `reset` starts a new log by renaming a fresh, synced file over the old one (a new key, its records, a marker), so a
 * crash leaves either the old log or the new one. Records carry their height, so the consensus host replays only the
 * current height's and resets the log only once it outgrows a bound ({@link Wal.sizeBytes}), not at every height: a
 * reset costs two fsyncs and a rename.
 */

/** How the log is opened for appending: every write is on disk when it returns. */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC

/** Bytes before each payload: length and checksum. */
export const WAL_FRAME_HEADER = 12

/** The flag in a frame's first word that makes it a sync marker (a record's length never reaches it). */
export const WAL_MARKER_FLAG = 0x80000000

/** Bytes of a sync marker's payload: its own offset (u64 BE) and its tag. */
const MARKER_PAYLOAD = 16

/** The first word of every sync marker. */
const MARKER_WORD = (WAL_MARKER_FLAG | MARKER_PAYLOAD) >>> 0

/** Bytes of the log's key. */
const KEY_BYTES = 16

/** The first word of the key frame: the marker flag, kind 1, the key's length. */
const KEY_WORD = (WAL_MARKER_FLAG | 0x01000000 | KEY_BYTES) >>> 0

/** Bytes of the key frame, the first of a log that has one. */
export const WAL_KEY_BYTES = WAL_FRAME_HEADER + KEY_BYTES

/** Bytes of a sync marker's frame. */
export const WAL_MARKER_BYTES = WAL_FRAME_HEADER + MARKER_PAYLOAD

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

/** Frames a special payload (a marker's or the key's) under `word`. */
function specialFrame(word: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(WAL_FRAME_HEADER + payload.byteLength)
  const view = new DataView(frame.buffer)
  frame.set(payload, WAL_FRAME_HEADER)
  view.setUint32(0, word)
  view.setUint32(4, crc32(payload) >>> 0)
  view.setUint32(8, crc32(frame.subarray(0, 8)) >>> 0)
  return frame
}

/** The tag of the sync marker at `offset` of a log with `key`. */
function markerTag(key: Uint8Array, offset: Uint8Array): Uint8Array {
  return createHash('sha256')
    .update(key)
    .update(offset)
    .digest()
    .subarray(0, MARKER_PAYLOAD - 8)
}

/** Encodes the sync marker written at `offset` of the log with `key`: everything before it is on disk. */
export function encodeWalMarker(offset: number, key: Uint8Array): Uint8Array {
  const payload = new Uint8Array(MARKER_PAYLOAD)
  new DataView(payload.buffer).setBigUint64(0, BigInt(offset))
  payload.set(markerTag(key, payload.subarray(0, 8)), 8)
  return specialFrame(MARKER_WORD, payload)
}

/** Encodes the key frame that starts a log. */
export function encodeWalKey(key: Uint8Array): Uint8Array {
  if (key.byteLength !== KEY_BYTES) throw new RangeError(`a WAL key is ${KEY_BYTES} bytes`)
  return specialFrame(KEY_WORD, key)
}

/** The key of a log whose first frame is a whole key frame, else undefined (a log written before markers, or empty). */
function keyOf(data: Uint8Array): Uint8Array | undefined {
  if (data.byteLength < WAL_KEY_BYTES) return undefined
  const view = new DataView(data.buffer, data.byteOffset, WAL_KEY_BYTES)
  if (view.getUint32(0) !== KEY_WORD || crc32(data.subarray(0, 8)) >>> 0 !== view.getUint32(8)) return undefined
  const key = data.subarray(WAL_FRAME_HEADER, WAL_KEY_BYTES)
  return crc32(key) >>> 0 === view.getUint32(4) ? new Uint8Array(key) : undefined
}

/** The offset of the first valid sync marker of the log with `key` in `data` after `from`, if any. */
function markerAfter(data: Uint8Array, from: number, key: Uint8Array | undefined): number | undefined {
  if (key === undefined) return undefined
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const word = Buffer.alloc(4)
  word.writeUInt32BE(MARKER_WORD)
  for (let at = buf.indexOf(word, from + 1); at >= 0; at = buf.indexOf(word, at + 1)) {
    if (validMarker(data, at, key)) return at
  }
  return undefined
}

/** True when a whole sync marker of the log with `key` naming `at` starts at `at`, its checksums and tag valid. */
function validMarker(data: Uint8Array, at: number, key: Uint8Array | undefined): boolean {
  if (key === undefined || data.byteLength - at < WAL_MARKER_BYTES) return false
  const view = new DataView(data.buffer, data.byteOffset + at, WAL_MARKER_BYTES)
  if (view.getUint32(0) !== MARKER_WORD) return false
  if (crc32(data.subarray(at, at + 8)) >>> 0 !== view.getUint32(8)) return false
  const payload = data.subarray(at + WAL_FRAME_HEADER, at + WAL_MARKER_BYTES)
  if (crc32(payload) >>> 0 !== view.getUint32(4)) return false
  if (view.getBigUint64(WAL_FRAME_HEADER) !== BigInt(at)) return false
  return Buffer.from(markerTag(key, payload.subarray(0, 8))).equals(payload.subarray(8))
}

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
  /** Bytes in the file: where the next write lands (the file is open for appending). */
  private fileBytes = 0
  /** The log's key, which its markers are tagged with; undefined for a log written before markers (none written). */
  private key: Uint8Array | undefined
  /** Whether the key frame is still to be written, at the start of the next write (the file is empty). */
  private keyPending = false
  /** Bytes queued by `write` since the last flush took the queue. */
  private unwritten = 0

  constructor(options: WalOptions, dependencies: WalDependencies) {
    this.path = options.path
    this.maxRecordBytes = options.maxRecordBytes ?? 4 * 1024 * 1024
    this.log = dependencies.logger
  }

  /**
   * Opens (creating if needed) the log for appending. The directory is synced too, so that a log created now is
   * still there after a power loss, with the records synced into it. So is the file: a process killed during its last
   * write may have left bytes only in the page cache, and the first marker written here vouches for every byte before
   * it.
   */
  async start(): Promise<void> {
    if (this.fh !== undefined) return
    await mkdir(dirname(this.path), { recursive: true })
    this.fh = await open(this.path, APPEND_FLAGS)
    this.size = (await this.fh.stat()).size
    this.fileBytes = this.size
    await this.fh.datasync()
    await syncDirectory(dirname(this.path))
    if (this.size === 0) this.newKey()
    else this.key = keyOf(await readHead(this.path, WAL_KEY_BYTES))
  }

  /** Draws a key for an empty log: its frame starts the next write. */
  private newKey(): void {
    this.key = new Uint8Array(randomBytes(KEY_BYTES))
    this.keyPending = true
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
    const key = keyOf(data)
    let off = key === undefined ? 0 : WAL_KEY_BYTES
    /** Whether a valid sync marker was read before `off`: the log's rules, not its legacy ones, judge damage. */
    let marked = false
    /** Why the frame at `off` is damaged, and whether a log without markers would take the damage for a tail. */
    let damage: { reason: string; legacyTail: boolean } | undefined
    const zerosFrom = trailingZerosFrom(data)
    while (off < data.byteLength) {
      if (data.byteLength - off < WAL_FRAME_HEADER) {
        damage = { reason: 'partial frame header', legacyTail: true }
        break
      }
      const word = view.getUint32(off)
      const sum = view.getUint32(off + 4)
      if (crc32(data.subarray(off, off + 8)) >>> 0 !== view.getUint32(off + 8)) {
        // zeros from inside the header to the end: the file grew by a write whose data did not all reach the disk;
        // a zero-filled header: the file system wrote an unsynced write back out of order
        if (zerosFrom < off + WAL_FRAME_HEADER) damage = { reason: 'zero-filled tail', legacyTail: true }
        else if (allZero(data.subarray(off, off + WAL_FRAME_HEADER), 0)) damage = { reason: 'zero-filled header', legacyTail: true }
        else damage = { reason: 'frame header checksum mismatch', legacyTail: false }
        break
      }
      const marker = word >= WAL_MARKER_FLAG
      const len = marker ? word - WAL_MARKER_FLAG : word
      if (marker && len !== MARKER_PAYLOAD) throw new WalCorruptError(this.path, off, `frame of unknown kind ${word.toString(16)}`)
      if (!marker && len > this.maxRecordBytes) throw new WalCorruptError(this.path, off, `record length ${len} exceeds ${this.maxRecordBytes}`)
      const end = off + WAL_FRAME_HEADER + len
      if (end > data.byteLength) {
        damage = { reason: `record of ${len} bytes cut short`, legacyTail: true }
        break
      }
      const payload = data.subarray(off + WAL_FRAME_HEADER, end)
      if (crc32(payload) >>> 0 !== sum) {
        if (end === data.byteLength) damage = { reason: 'checksum mismatch in the final record', legacyTail: true }
        else if (zerosFrom < end) damage = { reason: 'zero-filled tail from inside a record', legacyTail: true }
        else damage = { reason: 'record checksum mismatch with records after it', legacyTail: false }
        break
      }
      if (marker) {
        if (key === undefined) throw new WalCorruptError(this.path, off, 'a sync marker in a log without a key')
        if (!validMarker(data, off, key)) throw new WalCorruptError(this.path, off, 'sync marker names another offset or fails its tag')
        marked = true
      } else {
        records.push(new Uint8Array(payload))
      }
      off = end
    }
    if (damage !== undefined) {
      // a marker after the damage was written once every byte before it was on disk: the damage is to synced records
      const synced = markerAfter(data, off, key)
      if (synced !== undefined) {
        throw new WalCorruptError(this.path, off, `${damage.reason}, in records synced before the write at byte ${synced}`)
      }
      if (!marked && !damage.legacyTail) throw new WalCorruptError(this.path, off, damage.reason)
      this.log.warn({ path: this.path, offset: off, dropped: data.byteLength - off, reason: damage.reason }, 'WAL: truncating torn tail')
      const fh = await open(this.path, 'r+')
      try {
        await fh.truncate(off)
        await fh.sync()
      } finally {
        await fh.close()
      }
      this.size = off
      this.fileBytes = off
    }
    if (data.byteLength > 0) {
      this.key = key
      this.keyPending = false
    }
    if (this.fileBytes === 0) this.newKey()
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
    const key = new Uint8Array(randomBytes(KEY_BYTES))
    let size = 0
    try {
      const keyFrame = encodeWalKey(key)
      await fresh.write(keyFrame)
      size += keyFrame.byteLength
      for (const r of initial) {
        if (r.byteLength > this.maxRecordBytes) throw new RangeError(`WAL record of ${r.byteLength} bytes exceeds ${this.maxRecordBytes}`)
        const frame = encodeWalFrame(r)
        await fresh.write(frame)
        size += frame.byteLength
      }
      // the file is synced before it replaces the log: a marker after its records vouches for them
      if (size > WAL_KEY_BYTES) {
        await fresh.write(encodeWalMarker(size, key))
        size += WAL_MARKER_BYTES
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
    this.fileBytes = size
    this.key = key
    this.keyPending = false
  }

  /** What starts a write at the end of the file: the key frame if the log is empty, then a marker naming its offset. */
  private writeHead(key: Uint8Array): Uint8Array {
    if (!this.keyPending) return encodeWalMarker(this.fileBytes, key)
    const head = new Uint8Array(WAL_KEY_BYTES + WAL_MARKER_BYTES)
    head.set(encodeWalKey(key), 0)
    head.set(encodeWalMarker(this.fileBytes + WAL_KEY_BYTES, key), WAL_KEY_BYTES)
    return head
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
          const records = batch.reduce((n, p) => n + p.frame.byteLength, 0)
          // the write starts with a marker naming where it lands: every byte before it is on disk (the last write
          // returned), which replay needs to tell damage to synced records from an unfinished last write; the first
          // write to an empty log starts with its key
          const head = records === 0 || this.key === undefined ? EMPTY : this.writeHead(this.key)
          const total = records === 0 ? 0 : head.byteLength + records
          const buf = new Uint8Array(total)
          buf.set(head, 0)
          let off = head.byteLength
          this.size += head.byteLength
          for (const p of batch) {
            buf.set(p.frame, off)
            off += p.frame.byteLength
          }
          // synchronized writes: once this loop ends the batch is durable (an empty batch has nothing to wait for)
          let written = 0
          while (written < total) written += (await this.fh!.write(buf, written, total - written)).bytesWritten
          this.fileBytes += total
          if (total > 0) this.keyPending = false
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

/** The first `bytes` bytes of the file at `path` (fewer if it is shorter). */
async function readHead(path: string, bytes: number): Promise<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    const buf = new Uint8Array(bytes)
    const { bytesRead } = await fh.read(buf, 0, bytes, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

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
