import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { loadFile, loadFileSync, saveAtomic, saveAtomicSync } from '../../../../node/storage/atomicFile.js'
import { silentLogger } from '../../../../node/logger.js'
import { Wal, WalCorruptError, WAL_FRAME_HEADER, WAL_KEY_BYTES, WAL_MARKER_BYTES, WRITE_BEHIND_BYTES } from '../../../../node/storage/wal.js'
import { repoRoot } from '../../../helpers/fixtures.js'
import { Rng } from '../../../helpers/random.js'
import { waitFor } from '../../../helpers/waitFor.js'

const dirs: string[] = []
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tally-wal-'))
  dirs.push(d)
  return d
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function openWal(path: string, maxRecordBytes?: number): Promise<Wal> {
  const wal = new Wal({ path, maxRecordBytes }, { logger: silentLogger() })
  await wal.start()
  return wal
}

function records(n: number, seed = 1): Uint8Array[] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, () => rng.bytes(1 + rng.int(200)))
}

describe('wal', () => {
  it('replays appended records in order, across restarts', async () => {
    const path = join(tempDir(), 'wal', 'cs.wal')
    const wal = await openWal(path)
    assert.deepEqual(await wal.replay(), [])
    const rs = records(50)
    await Promise.all(rs.map((r) => wal.append(r))) // concurrent appends share syncs, keep order
    await wal.append(new Uint8Array(0))
    await wal.stop()
    const again = await openWal(path)
    assert.deepEqual(await again.replay(), [...rs, new Uint8Array(0)])
    await again.append(new Uint8Array([9]))
    await again.stop()
    const third = await openWal(path)
    assert.deepEqual((await third.replay()).at(-1), new Uint8Array([9]))
    await third.stop()
  })

  it('recovers every full record from a torn tail and truncates it', async () => {
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    const rs = records(10, 2)
    for (const r of rs) await wal.append(r)
    await wal.stop()
    const full = statSync(path).size
    const lastLen = rs[9]!.byteLength + WAL_FRAME_HEADER
    for (const cut of [1, WAL_FRAME_HEADER - 2, WAL_FRAME_HEADER + 1, lastLen - 1]) {
      const copy = join(tempDir(), 'copy.wal')
      writeFileSync(copy, readFileSync(path))
      truncateSync(copy, full - lastLen + cut)
      const w = await openWal(copy)
      assert.deepEqual(await w.replay(), rs.slice(0, 9), `cut at ${cut}`)
      assert.equal(statSync(copy).size, full - lastLen)
      await w.append(new Uint8Array([7]))
      await w.stop()
      const w2 = await openWal(copy)
      assert.deepEqual(await w2.replay(), [...rs.slice(0, 9), new Uint8Array([7])])
      await w2.stop()
    }
    // a zero-filled region after the last record (file grown, data never written) is a torn tail too
    appendFileSync(path, new Uint8Array(4096))
    const w = await openWal(path)
    assert.deepEqual(await w.replay(), rs)
    await w.stop()
    // and so is a hole of zeros where the next header should be, with unsynced data written back after it
    const holed = join(tempDir(), 'holed.wal')
    writeFileSync(holed, readFileSync(path))
    appendFileSync(holed, new Uint8Array([...new Uint8Array(4096), ...records(3, 9).flatMap((r) => [...r])]))
    const w3 = await openWal(holed)
    assert.deepEqual(await w3.replay(), rs)
    assert.equal(statSync(holed).size, statSync(path).size)
    await w3.stop()
  })

  it('treats zeros from any byte of an unsynced batch to the end of the file as a torn tail', async () => {
    // A power loss during a batch's synchronized write can leave the file grown to the batch's end with only a prefix
    // of it on disk: zeros from any point inside the batch (inside a header or a payload, with more records of the
    // batch after it) to the end. None of the batch was acknowledged, so it is a tail, not damage to the log.
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    const synced = records(3, 21)
    for (const r of synced) await wal.append(r)
    const durable = statSync(path).size
    const batch = records(12, 22)
    for (const r of batch) wal.write(r)
    await wal.sync()
    await wal.stop()
    const full = readFileSync(path)
    const copy = join(tempDir(), 'zeros.wal')
    for (let at = durable; at < full.length; at++) {
      const b = Buffer.from(full)
      b.fill(0, at)
      writeFileSync(copy, b)
      const w = await openWal(copy)
      const got = await w.replay().catch((e: Error) => e)
      await w.stop()
      assert.ok(Array.isArray(got), `zeros from byte ${at} of ${full.length}: ${(got as Error).message}`)
      // every record wholly before the zeros is kept, and the file is cut after the last of them (or, when the zeros
      // start inside the batch's sync marker, where the batch starts)
      assert.deepEqual(got.slice(0, synced.length), synced, `zeros from byte ${at}`)
      assert.deepEqual(got.slice(synced.length), batch.slice(0, got.length - synced.length), `zeros from byte ${at}`)
      const keptOfBatch = got.slice(synced.length).reduce((n, r) => n + WAL_FRAME_HEADER + r.byteLength, 0)
      assert.equal(statSync(copy).size, at < durable + WAL_MARKER_BYTES ? durable : durable + WAL_MARKER_BYTES + keptOfBatch, `zeros from byte ${at}`)
    }
  })

  it('detects a flipped byte in the middle of the log loudly', async () => {
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    const rs = records(5, 3)
    for (const r of rs) await wal.append(r)
    await wal.stop()
    const bytes = readFileSync(path)
    // the log's key, then each append as one write: its sync marker, then its record
    const second = WAL_KEY_BYTES + WAL_MARKER_BYTES + WAL_FRAME_HEADER + rs[0]!.byteLength + WAL_MARKER_BYTES
    for (const at of [second + WAL_FRAME_HEADER, second + 1, second + 5, second + 9]) {
      const copy = join(tempDir(), 'flip.wal')
      const b = Buffer.from(bytes)
      b[at]! ^= 0x10
      writeFileSync(copy, b)
      const w = await openWal(copy)
      await assert.rejects(w.replay(), WalCorruptError)
      await w.stop()
      assert.equal(statSync(copy).size, bytes.length) // nothing truncated
    }
  })

  it('writes records without waiting and makes them durable at the next sync', async () => {
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    const rs = records(20, 7)
    for (const r of rs.slice(0, 10)) wal.write(r)
    await wal.sync()
    assert.ok(statSync(path).size >= rs.slice(0, 10).reduce((n, r) => n + WAL_FRAME_HEADER + r.byteLength, 0))
    for (const r of rs.slice(10)) wal.write(r)
    assert.throws(() => wal.write(new Uint8Array(5 * 1024 * 1024)), RangeError)
    await wal.stop() // stopping drains what is queued
    const again = await openWal(path)
    assert.deepEqual(await again.replay(), rs)
    await again.stop()
    await assert.rejects(again.sync(), /not started/)
  })

  it('keeps written records in memory until a sync, or until enough of them are queued', async () => {
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    wal.write(new Uint8Array(100))
    await new Promise((r) => setImmediate(r))
    assert.equal(statSync(path).size, 0)
    await wal.sync()
    assert.equal(statSync(path).size, WAL_KEY_BYTES + WAL_MARKER_BYTES + WAL_FRAME_HEADER + 100)
    const big = new Uint8Array(WRITE_BEHIND_BYTES)
    wal.write(big)
    // a megabyte queued starts a write without any sync asked for
    await waitFor(() => statSync(path).size === WAL_KEY_BYTES + 2 * (WAL_MARKER_BYTES + WAL_FRAME_HEADER) + 100 + WRITE_BEHIND_BYTES, 'the write-behind')
    await wal.stop()
  })

  it('answers a sync with nothing queued at once, and every sync after it', async () => {
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    const rs = records(3, 11)
    // syncs with nothing to write finish without touching the disk: none may leave the log unable to flush again
    await wal.sync()
    await Promise.all([wal.sync(), wal.sync()])
    for (const r of rs) {
      wal.write(r)
      await wal.sync()
      await wal.sync()
    }
    await wal.append(rs[0]!)
    const all = [...rs, rs[0]!]
    // the log's key, then one write (a sync marker and its record) per record: the syncs with nothing queued wrote
    // nothing
    assert.equal(
      statSync(path).size,
      all.reduce((n, r) => n + WAL_MARKER_BYTES + WAL_FRAME_HEADER + r.byteLength, WAL_KEY_BYTES),
    )
    await wal.stop()
    const again = await openWal(path)
    assert.deepEqual(await again.replay(), all)
    await again.stop()
  })
  it('bounds record sizes', async () => {
    const wal = await openWal(join(tempDir(), 'cs.wal'), 16)
    await assert.rejects(wal.append(new Uint8Array(17)), RangeError)
    await wal.append(new Uint8Array(16))
    await wal.stop()
  })

  it('rotates to a new log holding only the initial records', async () => {
    const path = join(tempDir(), 'cs.wal')
    const wal = await openWal(path)
    for (const r of records(5, 4)) await wal.append(r)
    assert.equal(wal.sizeBytes, statSync(path).size)
    await wal.reset([new Uint8Array([1, 2])])
    // a new key, the initial records and the sync marker that vouches for them
    assert.equal(wal.sizeBytes, WAL_KEY_BYTES + WAL_FRAME_HEADER + 2 + WAL_MARKER_BYTES)
    await wal.append(new Uint8Array([3]))
    assert.equal(wal.sizeBytes, WAL_KEY_BYTES + 2 * WAL_FRAME_HEADER + 3 + 2 * WAL_MARKER_BYTES)
    await wal.stop()
    const again = await openWal(path)
    assert.equal(again.sizeBytes, WAL_KEY_BYTES + 2 * WAL_FRAME_HEADER + 3 + 2 * WAL_MARKER_BYTES)
    assert.deepEqual(await again.replay(), [new Uint8Array([1, 2]), new Uint8Array([3])])
    await again.stop()
  })

  it('keeps every acknowledged append across a SIGKILL mid-append', async () => {
    const path = join(tempDir(), 'crash.wal')
    const walUrl = pathToFileURL(join(repoRoot, 'dist', 'node', 'storage', 'wal.js')).href
    const logUrl = pathToFileURL(join(repoRoot, 'dist', 'node', 'logger.js')).href
    const script = `
      const { Wal } = await import(${JSON.stringify(walUrl)})
      const { silentLogger } = await import(${JSON.stringify(logUrl)})
      const wal = new Wal({ path: ${JSON.stringify(path)} }, { logger: silentLogger() })
      await wal.start()
      let i = 0
      for (;;) {
        const batch = []
        for (let k = 0; k < 8; k++, i++) {
          const n = i
          const rec = new Uint8Array(100 + (n % 50)).fill(n % 251)
          new DataView(rec.buffer).setUint32(0, n)
          batch.push(wal.append(rec).then(() => process.stdout.write(n + '\\n')))
        }
        await Promise.all(batch)
      }
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let acked = -1
    let buffered = ''
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject)
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString()
        const lines = buffered.split('\n')
        buffered = lines.pop()!
        for (const l of lines) acked = Math.max(acked, Number(l))
        if (acked >= 300 && child.exitCode === null && !child.killed) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.on('exit', () => resolve())
    })
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)))
    const wal = await openWal(path)
    const got = await wal.replay()
    await wal.stop()
    assert.ok(got.length > acked, `replayed ${got.length} records, ${acked + 1} acknowledged`)
    got.forEach((r, n) => {
      assert.equal(new DataView(r.buffer, r.byteOffset).getUint32(0), n)
      assert.equal(r.byteLength, 100 + (n % 50))
    })
  })
})

describe('atomicFile', () => {
  it('saves and loads, replacing the file whole', async () => {
    const dir = tempDir()
    const path = join(dir, 'guard.bin')
    assert.equal(await loadFile(path), undefined)
    assert.equal(loadFileSync(path), undefined)
    await saveAtomic(path, new Uint8Array([1, 2, 3]))
    assert.deepEqual(await loadFile(path), new Uint8Array([1, 2, 3]))
    saveAtomicSync(path, new Uint8Array([4, 5]))
    assert.deepEqual(loadFileSync(path), new Uint8Array([4, 5]))
    assert.deepEqual(await loadFile(path), new Uint8Array([4, 5]))
    await assert.rejects(loadFile(dir))
  })
})
