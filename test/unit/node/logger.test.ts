import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { componentLogger, createLogger } from '../../../node/logger.js'

describe('logger', () => {
  it('writes JSON lines at or above its level, with the component of child loggers', () => {
    const lines: string[] = []
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString())
        cb()
      },
    })
    const log = createLogger({ level: 'info', base: { moniker: 'n0' }, destination: destination as never })
    componentLogger(log, 'p2p').info({ peers: 3 }, 'peer connected')
    log.debug('hidden')
    assert.equal(lines.length, 1)
    const line = JSON.parse(lines[0]!) as Record<string, unknown>
    assert.equal(line.msg, 'peer connected')
    assert.equal(line.component, 'p2p')
    assert.equal(line.moniker, 'n0')
    assert.equal(line.peers, 3)
    assert.equal(typeof line.time, 'string')
  })
})
