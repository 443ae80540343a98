import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ThrottledLog } from '../../../../node/p2p/throttledLog.js'

describe('ThrottledLog', () => {
  it('lets the first event per key and window through and counts the rest', () => {
    let now = 0
    const log = new ThrottledLog({ windowMs: 1000, maxKeys: 10 }, { now: () => now })
    assert.deepEqual(log.note('a'), { key: 'a', suppressed: 0 })
    assert.equal(log.note('a'), undefined)
    assert.equal(log.note('a'), undefined)
    assert.deepEqual(log.note('b'), { key: 'b', suppressed: 0 })
    now = 999
    assert.equal(log.note('a'), undefined)
    now = 1000
    assert.deepEqual(log.note('a'), { key: 'a', suppressed: 3 })
  })

  it('summarizes keys beyond maxKeys under *', () => {
    let now = 0
    const log = new ThrottledLog({ windowMs: 1000, maxKeys: 2 }, { now: () => now })
    assert.equal(log.note('a')?.key, 'a')
    assert.equal(log.note('b')?.key, 'b')
    assert.deepEqual(log.note('c'), { key: '*', suppressed: 0 })
    assert.equal(log.note('d'), undefined)
    now = 1000
    // expired keys make room again
    assert.deepEqual(log.note('e'), { key: 'e', suppressed: 0 })
  })
})
