import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { silentLogger } from '../../../../node/logger.js'
import { Wal, WalCorruptError, WAL_FRAME_HEADER } from '../../../../node/storage/wal.js'
import { Rng } from '../../../helpers/random.js'

/**
 * Review check: every record here was appended with `append` (synced and acknowledged one by one). A sector of zeros
 * inside an early record, with synced records after it, cannot be a crash's torn tail (a sync covers everything
 * before it): it is damage to the middle of the log, which replay must refuse rather than cut away.
 */
const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

it('a zeroed sector inside a synced record, with synced records after it, is corruption, not a torn tail', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-walhole-'))
  dirs.push(dir)
  const path = join(dir, 'cs.wal')
  const rng = new Rng(7)
  const recs = Array.from({ length: 10 }, () => rng.bytes(1500))
  const wal = new Wal({ path }, { logger: silentLogger() })
  await wal.start()
  for (const r of recs) await wal.append(r) // each synced before it is acknowledged
  await wal.stop()
  const full = readFileSync(path)
  // a sector inside the second record's payload reads back as zeros (a lost write, a bad sector remapped)
  const secondPayload = WAL_FRAME_HEADER + recs[0]!.byteLength + WAL_FRAME_HEADER
  const at = Math.ceil(secondPayload / 512) * 512
  const b = Buffer.from(full)
  b.fill(0, at, at + 512)
  writeFileSync(path, b)
  const w = new Wal({ path }, { logger: silentLogger() })
  await w.start()
  const got = await w.replay().catch((e: Error) => e)
  await w.stop()
  const kept = Array.isArray(got) ? `${got.length} records kept, file cut from ${full.length} to ${statSync(path).size} bytes` : String(got)
  console.log(kept)
  assert.ok(got instanceof WalCorruptError, `expected WalCorruptError; got ${kept}`)
})
