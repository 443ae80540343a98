import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { walPath } from '../../../../node/cli/home.js'

test('the WAL lives beside the guard record, and a WAL left in data/wal is moved there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-home-'))
  try {
    assert.equal(walPath(dir), join(dir, 'consensus.wal'))
    mkdirSync(join(dir, 'data', 'wal'), { recursive: true })
    writeFileSync(join(dir, 'data', 'wal', 'consensus.wal'), 'records')
    assert.equal(walPath(dir), join(dir, 'consensus.wal'))
    assert.equal(readFileSync(join(dir, 'consensus.wal'), 'utf8'), 'records')
    assert.equal(existsSync(join(dir, 'data', 'wal', 'consensus.wal')), false)
    // a WAL already in place is never replaced by one found in data/
    writeFileSync(join(dir, 'data', 'wal', 'consensus.wal'), 'older')
    walPath(dir)
    assert.equal(readFileSync(join(dir, 'consensus.wal'), 'utf8'), 'records')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
