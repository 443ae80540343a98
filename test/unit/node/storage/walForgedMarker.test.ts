import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { silentLogger } from '../../../../node/logger.js'
import { encodeWalMarker, Wal, WAL_FRAME_HEADER, WAL_MARKER_BYTES } from '../../../../node/storage/wal.js'
import { Rng } from '../../../helpers/random.js'

/**
 * A record's payload holds bytes others chose (a transaction, a proposal): bytes that read as a sync marker naming
 * their own offset must not turn a torn last write into corruption that stops the node. Whoever crafts them does not
 * know the log's key, which a marker's tag is made with.
 */
const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function tempPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'tally-walforged-'))
  dirs.push(d)
  return join(d, 'cs.wal')
}

/** A key the crafter might guess: not the log's, which is drawn at random. */
const GUESSED_KEY = new Uint8Array(16)

describe('wal sync markers inside records', () => {
  it('cuts a torn last write whose record holds bytes that read as a marker', async () => {
    const path = tempPath()
    const rng = new Rng(7)
    const synced = [rng.bytes(300), rng.bytes(300)]
    const wal = new Wal({ path }, { logger: silentLogger() })
    await wal.start()
    for (const r of synced) await wal.append(r)
    const before = statSync(path).size
    // the next write lands at `before`: its marker, the record's header, then the payload
    const payloadAt = before + WAL_MARKER_BYTES + WAL_FRAME_HEADER
    const crafted = rng.bytes(2000)
    const k = 100
    crafted.set(encodeWalMarker(payloadAt + k, GUESSED_KEY), k)
    await wal.append(crafted)
    await wal.stop()
    // the power fails while that write is under way: only part of its payload reaches the disk
    const full = readFileSync(path)
    writeFileSync(path, full.subarray(0, payloadAt + 1000))
    const w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    assert.deepEqual(await w.replay(), synced)
    await w.stop()
  })

  it('cuts a last write with a hole before a record that holds bytes that read as a marker', async () => {
    const path = tempPath()
    const rng = new Rng(8)
    const synced = [rng.bytes(300), rng.bytes(300)]
    const wal = new Wal({ path }, { logger: silentLogger() })
    await wal.start()
    for (const r of synced) await wal.append(r)
    const before = statSync(path).size
    // one write of two records: a vote, then a proposal carrying the crafted bytes
    const vote = rng.bytes(200)
    const voteAt = before + WAL_MARKER_BYTES
    const payloadAt = voteAt + WAL_FRAME_HEADER + vote.byteLength + WAL_FRAME_HEADER
    const crafted = rng.bytes(2000)
    const k = 500
    crafted.set(encodeWalMarker(payloadAt + k, GUESSED_KEY), k)
    wal.write(vote)
    wal.write(crafted)
    await wal.sync()
    await wal.stop()
    // the power fails during that write, and the sector of the vote's header never reached the disk
    const b = Buffer.from(readFileSync(path))
    b.fill(0, voteAt, voteAt + WAL_FRAME_HEADER)
    writeFileSync(path, b)
    const w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    assert.deepEqual(await w.replay(), synced)
    assert.equal(statSync(path).size, voteAt, 'cut where the damaged write starts to be unreadable')
    await w.stop()
  })

  it('still refuses damage that a marker written with the key shows to be in synced records', async () => {
    const path = tempPath()
    const rng = new Rng(9)
    const recs = Array.from({ length: 4 }, () => rng.bytes(300))
    const wal = new Wal({ path }, { logger: silentLogger() })
    await wal.start()
    for (const r of recs) await wal.append(r)
    await wal.stop()
    const b = Buffer.from(readFileSync(path))
    const second = b.indexOf(Buffer.from(recs[1]!))
    b.fill(0, second + 10, second + 50)
    writeFileSync(path, b)
    const w = new Wal({ path }, { logger: silentLogger() })
    await w.start()
    await assert.rejects(w.replay(), /corrupt/)
    assert.equal(statSync(path).size, b.length, 'nothing is cut')
    await w.stop()
  })
})
