import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../../../../node/logger.js'
import { InboundGuard, MAX_PENDING_PER_EXEMPT_IP, type InboundSocket } from '../../../../node/p2p/inboundGuard.js'

/**
 * An admitted validator's address is exempt from every per-address limit once it connected from it (`seen:<peer id>`),
 * so that outsiders on the same host cannot lock it out. A Byzantine validator holds that address: it opens sockets
 * from it that never start Noise. Each lives for the upgrade timeout (3 s), is never rate-limited, never counted and
 * never penalized (no identity is known before Noise), so at a few thousand sockets a second it holds more sockets
 * of the honest node than a process may have file descriptors (1,024 by default on many systems), and the node can
 * open neither sockets nor database files.
 */

/** A socket that stays open, idle, until the upgrade timeout. */
function idleSocket(ip: string): InboundSocket {
  return { remoteAddr: multiaddr(`/ip4/${ip}/tcp/40000`), status: 'open', addEventListener: () => undefined }
}

describe('sockets from a validator address exempt from the limits', () => {
  it('are bounded in number while unauthenticated', () => {
    const clock = { now: 0 }
    const g = new InboundGuard({ maxPendingPerIp: 4, maxPending: 64, perIpPerSecond: 5, logWindowMs: 60_000 }, { logger: silentLogger(), now: () => clock.now })
    // the Byzantine validator connected once from 10.0.0.66: P2p marks the address it was seen at
    g.setExempt('seen:byzantine', ['10.0.0.66'])
    let admitted = 0
    const open: InboundSocket[] = []
    // 3,000 sockets a second for the 3 s each stays pending
    for (let i = 0; i < 9_000; i++) {
      const socket = idleSocket('10.0.0.66')
      if (g.open(socket)) {
        admitted++
        open.push(socket)
      }
      if (i % 3 === 0) clock.now++
    }
    assert.ok(admitted <= 1_024, `${admitted} idle sockets from one validator's address held at once`)
    assert.equal(admitted, MAX_PENDING_PER_EXEMPT_IP)
    // one that completes Noise (or closes) makes room for the next; other addresses, exempt or not, are not held back
    assert.equal(g.open(idleSocket('10.0.0.66')), false)
    g.settle(open[0]!)
    assert.equal(g.open(idleSocket('10.0.0.66')), true)
    assert.equal(g.open(idleSocket('10.0.0.66')), false)
    g.setExempt('static', ['10.0.0.7'])
    assert.equal(g.open(idleSocket('10.0.0.7')), true)
    assert.equal(g.open(idleSocket('10.0.0.8')), true)
  })
})
