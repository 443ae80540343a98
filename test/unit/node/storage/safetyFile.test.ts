import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import type { SafetyRecord } from '../../../../consensus/index.js'
import { FileSafetyStore, SLOT_BYTES } from '../../../../node/storage/safetyFile.js'

const dirs: string[] = []
function tempFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'tally-safety-'))
  dirs.push(d)
  return join(d, 'validator_state.json')
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function record(height: number, step: SafetyRecord['step'] = 'prevote', round = 0): SafetyRecord {
  return { height, round, step, signBytes: new Uint8Array(120).fill(height & 0xff), signature: new Uint8Array(64).fill(7) }
}

describe('FileSafetyStore', () => {
  it('returns nothing for a missing file and the last saved record after a reopen', () => {
    const path = tempFile()
    const store = new FileSafetyStore(path)
    assert.equal(store.load(), undefined)
    for (let h = 1; h <= 5; h++) {
      store.save(record(h, 'prevote'))
      store.save(record(h, 'precommit'))
    }
    store.close()
    assert.equal(statSync(path).size, 2 * SLOT_BYTES)
    const again = new FileSafetyStore(path)
    assert.deepEqual(again.load(), record(5, 'precommit'))
    again.save(record(6, 'proposal', 2))
    again.close()
    assert.deepEqual(new FileSafetyStore(path).load(), record(6, 'proposal', 2))
  })

  it('falls back to the previous record when the newest slot is torn', () => {
    const path = tempFile()
    const store = new FileSafetyStore(path)
    store.load()
    store.save(record(1)) // sequence 1: slot 1
    store.save(record(2)) // sequence 2: slot 0
    store.close()
    const bytes = readFileSync(path)
    bytes[20]! ^= 0xff // tear slot 0 (the newest)
    writeFileSync(path, bytes)
    const again = new FileSafetyStore(path)
    assert.deepEqual(again.load(), record(1))
    // the next save overwrites the torn slot; the record read back is the new one
    again.save(record(3))
    again.close()
    assert.deepEqual(new FileSafetyStore(path).load(), record(3))
  })

  it('refuses a file with no valid slot, or a damaged file of any other size', () => {
    const path = tempFile()
    writeFileSync(path, new Uint8Array(2 * SLOT_BYTES))
    assert.throws(() => new FileSafetyStore(path).load(), /corrupt/)
    writeFileSync(path, new Uint8Array([1, 2, 3]))
    assert.throws(() => new FileSafetyStore(path).load(), /corrupt/)
  })

  it('reads the earlier single-record format and converts it on the next save', () => {
    const path = tempFile()
    const r = record(9, 'precommit', 1)
    writeFileSync(path, encodeCanonical([r.height, r.round, r.step, r.signBytes, r.signature]))
    const store = new FileSafetyStore(path)
    assert.deepEqual(store.load(), r)
    store.save(record(10))
    store.close()
    assert.equal(statSync(path).size, 2 * SLOT_BYTES)
    assert.deepEqual(new FileSafetyStore(path).load(), record(10))
  })

  it('refuses a record too large for a slot', () => {
    const store = new FileSafetyStore(tempFile())
    store.load()
    assert.throws(() => store.save({ ...record(1), signBytes: new Uint8Array(SLOT_BYTES) }), RangeError)
    store.close()
  })
})

describe('FileSafetyStore.saveAsync', () => {
  it('writes the same file as save, readable by either', async () => {
    const path = tempFile()
    const store = new FileSafetyStore(path)
    store.load()
    await store.saveAsync(record(1)) // creates the file
    store.save(record(2))
    await store.saveAsync(record(3))
    store.close()
    assert.equal(statSync(path).size, 2 * SLOT_BYTES)
    const again = new FileSafetyStore(path)
    assert.deepEqual(again.load(), record(3))
    await again.saveAsync(record(4, 'precommit'))
    again.close()
    assert.deepEqual(new FileSafetyStore(path).load(), record(4, 'precommit'))
  })

  it('closing while a save is under way lets the save finish first', async () => {
    const path = tempFile()
    const store = new FileSafetyStore(path)
    store.load()
    store.save(record(1))
    const pending = store.saveAsync(record(2))
    store.close()
    await pending
    assert.deepEqual(new FileSafetyStore(path).load(), record(2))
  })
})
