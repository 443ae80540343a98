import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../../../../node/logger.js'
import { InboundGuard, type InboundGuardOptions, type InboundSocket } from '../../../../node/p2p/inboundGuard.js'

/** A socket the test closes by hand. */
class FakeSocket implements InboundSocket {
  readonly remoteAddr
  status = 'open'
  private readonly listeners: (() => void)[] = []
  constructor(ip: string) {
    this.remoteAddr = multiaddr(`/ip4/${ip}/tcp/40000`)
  }
  addEventListener(_type: 'close', listener: () => void): void {
    this.listeners.push(listener)
  }
  close(): void {
    this.status = 'closed'
    for (const l of this.listeners.splice(0)) l()
  }
}

function guard(options: Partial<InboundGuardOptions> = {}) {
  const clock = { now: 0 }
  const g = new InboundGuard(
    { maxPendingPerIp: 2, maxPending: 5, perIpPerSecond: 100, logWindowMs: 60_000, ...options },
    {
      logger: silentLogger(),
      now: () => clock.now,
    },
  )
  return { g, clock }
}

describe('InboundGuard', () => {
  it('limits pending sockets per address and frees a slot when one closes or authenticates', () => {
    const { g } = guard()
    const [a, b, c] = [new FakeSocket('10.0.0.1'), new FakeSocket('10.0.0.1'), new FakeSocket('10.0.0.1')]
    assert.equal(g.open(a), true)
    assert.equal(g.open(b), true)
    assert.equal(g.open(c), false)
    assert.equal(g.open(new FakeSocket('10.0.0.2')), true, 'another address has its own budget')
    a.close()
    assert.equal(g.open(c), true)
    g.settle(b)
    assert.equal(g.open(new FakeSocket('10.0.0.1')), true)
    assert.equal(g.stats.refused.address_pending, 1)
  })

  it('limits pending sockets in all', () => {
    const { g } = guard()
    for (let i = 1; i <= 5; i++) assert.equal(g.open(new FakeSocket(`10.0.1.${i}`)), true)
    assert.equal(g.open(new FakeSocket('10.0.1.6')), false)
    assert.equal(g.pending, 5)
    assert.equal(g.stats.refused.pending, 1)
  })

  it('exempts known addresses from every limit, until the exemption is withdrawn', () => {
    const { g } = guard({ perIpPerSecond: 1 })
    g.setExempt('static:x', ['127.0.0.1'])
    for (let i = 0; i < 50; i++) assert.equal(g.open(new FakeSocket('127.0.0.1')), true)
    assert.equal(g.pending, 0)
    g.setExempt('static:x', [])
    assert.equal(g.open(new FakeSocket('127.0.0.1')), true)
    assert.equal(g.open(new FakeSocket('127.0.0.1')), true)
    assert.equal(g.open(new FakeSocket('127.0.0.1')), false)
  })

  it('rate-limits new sockets per address, and charges an address whose peer was refused after the handshake', () => {
    const { g, clock } = guard({ maxPendingPerIp: 100, maxPending: 100, perIpPerSecond: 2 })
    const opened = () => {
      const s = new FakeSocket('10.0.0.9')
      const ok = g.open(s)
      s.close()
      return ok
    }
    // a burst of twice the rate, then one per 1/rate seconds
    assert.deepEqual([opened(), opened(), opened(), opened(), opened()], [true, true, true, true, false])
    clock.now += 500
    assert.equal(opened(), true)
    assert.equal(opened(), false)
    clock.now += 2_000
    const s = new FakeSocket('10.0.0.9')
    assert.equal(g.open(s), true)
    g.refusedPeer(s)
    // the refused handshake costs two seconds' worth: of the three tokens left, none remains
    assert.equal(opened(), false)
    clock.now += 500
    assert.equal(opened(), false)
    clock.now += 500
    assert.equal(opened(), true)
    assert.equal(g.stats.refusedPeers, 1)
  })
})
