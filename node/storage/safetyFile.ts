import { closeSync, constants, openSync, write, writeSync } from 'node:fs'
import { promisify } from 'node:util'
import { crc32 } from 'node:zlib'
import { decodeCanonical, encodeCanonical } from '../../crypto/index.js'
import type { SafetyRecord, SafetyStore } from '../../consensus/index.js'
import { loadFileSync, saveAtomic, saveAtomicSync } from './atomicFile.js'

const writeAsync = promisify(write)
/** How the file is opened for saves: every write is on disk when it returns, as a write followed by fdatasync. */
const SAVE_FLAGS = constants.O_RDWR | constants.O_DSYNC

/**
 * The safety guard's record on disk (`validator_state.json`), durable before the guard releases a signature, at the
 * cost of one synchronized write (`O_DSYNC`) per signature.
 *
 * The file is two fixed slots of {@link SLOT_BYTES} bytes. Each save writes the next sequence number's slot in
 * place (sequence mod 2) and syncs it, so the other slot always holds the previous record intact: a crash mid-write
 * can only tear the slot being written, whose signature was never released. Loading takes the valid slot with the
 * higher sequence; a file where neither slot is valid is refused (the guard must not sign without its record).
 * A slot is `length (u32 BE) | crc32 of payload (u32 BE) | payload | zero padding`, the payload canonical
 * `[sequence, height, round, step, signBytes, signature]`.
 *
 * The file is created (or converted from the earlier format, one canonical `[height, round, step, signBytes,
 * signature]`) by an atomic whole-file write, after which its size never changes, so a synchronized in-place write is
 * durable.
 */

/** Bytes of one slot; the file is two of them. */
export const SLOT_BYTES = 512
const SLOT_HEADER = 8
const STEPS = new Set(['proposal', 'prevote', 'precommit'])

interface Slot {
  readonly sequence: number
  readonly record: SafetyRecord
}

function encodeSlot(sequence: number, r: SafetyRecord): Uint8Array {
  const payload = encodeCanonical([sequence, r.height, r.round, r.step, r.signBytes, r.signature])
  if (payload.byteLength > SLOT_BYTES - SLOT_HEADER) throw new RangeError(`safety record of ${payload.byteLength} bytes does not fit a slot`)
  const slot = new Uint8Array(SLOT_BYTES)
  const view = new DataView(slot.buffer)
  view.setUint32(0, payload.byteLength)
  view.setUint32(4, crc32(payload) >>> 0)
  slot.set(payload, SLOT_HEADER)
  return slot
}

function asRecord(v: unknown): SafetyRecord | undefined {
  if (!Array.isArray(v) || v.length !== 5) return undefined
  const [height, round, step, signBytes, signature] = v as unknown[]
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(round) || !STEPS.has(step as string)) return undefined
  if (!(signBytes instanceof Uint8Array) || !(signature instanceof Uint8Array)) return undefined
  return { height: height as number, round: round as number, step: step as SafetyRecord['step'], signBytes, signature }
}

function decodeSlot(bytes: Uint8Array): Slot | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const len = view.getUint32(0)
  if (len === 0 || len > SLOT_BYTES - SLOT_HEADER) return undefined
  const payload = bytes.subarray(SLOT_HEADER, SLOT_HEADER + len)
  if (crc32(payload) >>> 0 !== view.getUint32(4)) return undefined
  const d = decodeCanonical(payload, SLOT_BYTES)
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 6) return undefined
  const [sequence, ...rest] = d.value as unknown[]
  const record = asRecord(rest)
  return Number.isSafeInteger(sequence) && record ? { sequence: sequence as number, record } : undefined
}

/** A two-slot file holding `slot` at `offset` and an empty (invalid) other slot. */
function wholeFile(slot: Uint8Array, offset: number): Uint8Array {
  const file = new Uint8Array(2 * SLOT_BYTES)
  file.set(slot, offset)
  return file
}

/** Reads the record a file holds, in either format; throws when the file exists but holds no valid record. */
function readRecordFile(path: string): { record: SafetyRecord; sequence: number; slotted: boolean } | undefined {
  const bytes = loadFileSync(path)
  if (bytes === undefined) return undefined
  if (bytes.byteLength === 2 * SLOT_BYTES) {
    const slots = [decodeSlot(bytes.subarray(0, SLOT_BYTES)), decodeSlot(bytes.subarray(SLOT_BYTES))].filter((s): s is Slot => s !== undefined)
    if (slots.length === 0) throw new Error(`${path} is corrupt (no valid slot): refusing to sign without it`)
    const best = slots.reduce((a, b) => (b.sequence > a.sequence ? b : a))
    return { record: best.record, sequence: best.sequence, slotted: true }
  }
  const d = decodeCanonical(bytes, 4096)
  const record = d.ok ? asRecord(d.value) : undefined
  if (!record) throw new Error(`${path} is corrupt: refusing to sign without it`)
  return { record, sequence: 0, slotted: false }
}

/** A {@link SafetyStore} on the file at `path` (see the module comment). */
export class FileSafetyStore implements SafetyStore {
  private sequence = 0
  private fd?: number
  private saving?: Promise<void>

  constructor(readonly path: string) {}

  load(): SafetyRecord | undefined {
    const r = readRecordFile(this.path)
    if (r === undefined) return undefined
    this.sequence = r.sequence
    if (r.slotted) this.fd ??= openSync(this.path, SAVE_FLAGS)
    return r.record
  }

  save(record: SafetyRecord): void {
    const { sequence, slot, offset } = this.next(record)
    if (this.fd === undefined) {
      // first save, or a file of the earlier format: write the whole two-slot file atomically
      saveAtomicSync(this.path, wholeFile(slot, offset))
      this.fd = openSync(this.path, SAVE_FLAGS)
    } else {
      let off = 0
      while (off < SLOT_BYTES) off += writeSync(this.fd, slot, off, SLOT_BYTES - off, offset + off)
    }
    this.sequence = sequence
  }

  /** {@link save} on the thread pool: the caller's thread is free while the disk syncs. Calls must not overlap. */
  saveAsync(record: SafetyRecord): Promise<void> {
    const saving = this.writeAsync(record)
    this.saving = saving
    return saving.finally(() => {
      if (this.saving === saving) this.saving = undefined
    })
  }

  private async writeAsync(record: SafetyRecord): Promise<void> {
    const { sequence, slot, offset } = this.next(record)
    const fd = this.fd
    if (fd === undefined) {
      await saveAtomic(this.path, wholeFile(slot, offset))
      this.fd = openSync(this.path, SAVE_FLAGS)
    } else {
      let off = 0
      while (off < SLOT_BYTES) off += (await writeAsync(fd, slot, off, SLOT_BYTES - off, offset + off)).bytesWritten
    }
    this.sequence = sequence
  }

  /** The next sequence number, its encoded slot and where in the file that slot lies. */
  private next(record: SafetyRecord): { sequence: number; slot: Uint8Array; offset: number } {
    const sequence = this.sequence + 1
    return { sequence, slot: encodeSlot(sequence, record), offset: (sequence % 2) * SLOT_BYTES }
  }

  /** Closes the file, once a save under way has finished (saves after this reopen it). */
  close(): void {
    const fd = this.fd
    this.fd = undefined
    if (fd === undefined) return
    // never close the descriptor under a write: its number could be reused by another file meanwhile
    if (this.saving) void this.saving.catch(() => undefined).then(() => closeSync(fd))
    else closeSync(fd)
  }
}
