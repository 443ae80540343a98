import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createLogger, silentLogger } from '../../../../node/logger.js'
import { encodeWalFrame, Wal, WalCorruptError, WAL_FRAME_HEADER, WAL_KEY_BYTES, WAL_MARKER_BYTES } from '../../../../node/storage/wal.js'
import { Rng } from '../../../helpers/random.js'

/**
 * What a power loss can leave in the last write of the log (its records were never acknowledged) against damage to
 * records a later write proves were synced: a file system may write an unsynced write back out of order, so a hole of
 * zeros inside it, with more of it after the hole, is a tail; the same hole inside records synced before a later write
 * began is corruption, wherever it falls (a payload or a header).
 */
const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function tempPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'tally-waltail-'))
  dirs.push(d)
  return join(d, 'cs.wal')
}

function collectingLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: 'warn', destination: { write: (s: string) => lines.push(JSON.parse(s)) } as never })
  return { logger, lines }
}

/** The offset of `needle` in the file (a record's payload is found by its bytes). */
function offsetOf(file: Uint8Array, needle: Uint8Array): number {
  const at = Buffer.from(file).indexOf(Buffer.from(needle))
  assert.ok(at >= 0, 'record not found in the file')
  return at
}

describe('wal tail after a power loss', () => {
  it('cuts a hole of zeros inside the last, unsynced write with more of it after the hole, with a warning', async () => {
    const path = tempPath()
    const rng = new Rng(31)
    const synced = Array.from({ length: 3 }, () => rng.bytes(1500))
    const batch = Array.from({ length: 8 }, () => rng.bytes(1500))
    const wal = new Wal({ path }, { logger: silentLogger() })
    await wal.start()
    for (const r of synced) await wal.append(r)
    for (const r of batch) wal.write(r)
    await wal.sync() // the batch goes out in one synchronized write: the power fails before it returns
    await wal.stop()
    const full = readFileSync(path)
    // a sector inside the third record of the batch never reached the disk; the sectors after it did
    const third = offsetOf(full, batch[2]!)
    const at = Math.ceil((third + 100) / 512) * 512
    const b = Buffer.from(full)
    b.fill(0, at, at + 512)
    writeFileSync(path, b)
    const { logger, lines } = collectingLogger()
    const w = new Wal({ path }, { logger })
    await w.start()
    const got = await w.replay().catch((e: Error) => e)
    assert.ok(Array.isArray(got), `expected the tail cut; got ${String(got)}`)
    assert.deepEqual(got, [...synced, ...batch.slice(0, 2)])
    assert.equal(statSync(path).size, third - WAL_FRAME_HEADER, 'the file is cut where the damaged record starts')
    assert.ok(
      lines.some((l) => l.level === 40 && String(l.msg).includes('torn tail')),
      `a warning names the cut: ${JSON.stringify(lines)}`,
    )
    // the log goes on after the cut
    await w.append(new Uint8Array([5]))
    await w.stop()
    const again = new Wal({ path }, { logger: silentLogger() })
    await again.start()
    assert.deepEqual(await again.replay(), [...synced, ...batch.slice(0, 2), new Uint8Array([5])])
    await again.stop()
  })

  it('refuses a zeroed sector over a synced record header with synced records after it', async () => {
    const path = tempPath()
    const rng = new Rng(32)
    const recs = Array.from({ length: 10 }, () => rng.bytes(1500))
    const wal = new Wal({ path }, { logger: silentLogger() })
    await wal.start()
    for (const r of recs) await wal.append(r)
    await wal.stop()
    const full = readFileSync(path)
    // the sector holding the fourth record's header reads back as zeros
    const header = offsetOf(full, recs[3]!) - WAL_FRAME_HEADER
    const b = Buffer.from(full)
    b.fill(0, header, header + 512)
    writeFileSync(path, b)
    const w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    const got = await w.replay().catch((e: Error) => e)
    await w.stop()
    const kept = Array.isArray(got) ? `${got.length} records kept` : String(got)
    assert.ok(got instanceof WalCorruptError, `expected WalCorruptError; got ${kept}`)
    assert.equal(statSync(path).size, full.length, 'nothing is cut')
  })

  it('keeps its rules for a log written without sync markers', async () => {
    const path = tempPath()
    const rng = new Rng(33)
    const recs = Array.from({ length: 6 }, () => rng.bytes(1500))
    const frames = recs.map(encodeWalFrame)
    const legacy = Buffer.concat(frames)
    // a hole inside a payload with whole records after it: corruption
    const holed = Buffer.from(legacy)
    const at = offsetOf(legacy, recs[2]!) + 200
    holed.fill(0, at, at + 512)
    writeFileSync(path, holed)
    let w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    await assert.rejects(w.replay(), WalCorruptError)
    await w.stop()
    // a zero-filled header with data after it: a tail
    const zeroHeader = Buffer.from(legacy)
    const h = offsetOf(legacy, recs[4]!) - WAL_FRAME_HEADER
    zeroHeader.fill(0, h, h + WAL_FRAME_HEADER)
    writeFileSync(path, zeroHeader)
    w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    assert.deepEqual(await w.replay(), recs.slice(0, 4))
    await w.stop()
  })

  it('appends no markers to a log written without them until it is reset with a key', async () => {
    const path = tempPath()
    const rng = new Rng(34)
    const recs = Array.from({ length: 3 }, () => rng.bytes(500))
    const legacy = Buffer.concat(recs.map(encodeWalFrame))
    writeFileSync(path, legacy)
    const w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    assert.deepEqual(await w.replay(), recs)
    const more = rng.bytes(500)
    await w.append(more)
    assert.equal(statSync(path).size, legacy.length + WAL_FRAME_HEADER + more.byteLength, 'a record alone, no marker')
    await w.reset([more])
    assert.equal(statSync(path).size, WAL_KEY_BYTES + WAL_FRAME_HEADER + more.byteLength + WAL_MARKER_BYTES, 'a key, the record, a marker')
    await w.stop()
    const again = new Wal({ path }, { logger: silentLogger() })
    await again.start()
    assert.deepEqual(await again.replay(), [more])
    await again.stop()
  })

  it('refuses a frame of an unknown kind', async () => {
    const path = tempPath()
    const frame = encodeWalFrame(new Uint8Array(3))
    const view = new DataView(frame.buffer)
    view.setUint32(0, 0x80000000 | 3) // the sync-marker flag on a length no marker has
    const { crc32 } = await import('node:zlib')
    view.setUint32(8, crc32(frame.subarray(0, 8)) >>> 0)
    writeFileSync(path, Buffer.concat([encodeWalFrame(new Uint8Array([1])), frame, encodeWalFrame(new Uint8Array([2]))]))
    const w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    await assert.rejects(w.replay(), WalCorruptError)
    await w.stop()
  })
})
