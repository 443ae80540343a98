import assert from 'node:assert/strict'
import { after, describe, it, mock } from 'node:test'
import { keyPairFromSeed } from '../../../../crypto/index.js'
import { parseConfig } from '../../../../genesis/config.js'
import { DirectStreams } from '../../../../node/p2p/directStreams.js'
import { silentLogger } from '../../../../node/logger.js'
import { P2P_INBOUND_LIMITS, P2p } from '../../../../node/p2p/p2p.js'
import { libp2pPrivateKeyFromSeed, peerIdOf, publicKeyOfPeerId } from '../../../../node/p2p/peerId.js'
import { Rng } from '../../../helpers/random.js'
import { identities, startNet, type TestNet } from './p2pNet.js'
import { waitFor } from '../../../helpers/waitFor.js'

const PROTOCOL = '/tally/test/1'

describe('peerId', () => {
  it('binds the libp2p identity to the Ed25519 key', () => {
    const seed = new Rng(7).bytes(32)
    const { publicKey } = keyPairFromSeed(seed)
    const id = peerIdOf(publicKey)
    assert.match(id, /^12D3KooW/)
    assert.deepEqual(publicKeyOfPeerId(id), publicKey)
    assert.equal(libp2pPrivateKeyFromSeed(seed).publicKey.toString(), id)
    assert.equal(publicKeyOfPeerId('not a peer id'), undefined)
  })
})

describe('p2p options', () => {
  it('bounds the inbound limits, and config.json accepts exactly the upgrade timeouts the p2p layer does', () => {
    const [id] = identities(1, 5)
    const make = (extra: Record<string, number>) => new P2p({ seed: id!.seed, listen: [], allow: [], ...extra }, { logger: silentLogger() })
    for (const [name, [min, max, fallback]] of Object.entries(P2P_INBOUND_LIMITS)) {
      assert.ok(min <= fallback && fallback <= max, name)
      make({ [name]: min })
      make({ [name]: max })
      assert.throws(() => make({ [name]: min - 1 }), RangeError, name)
      assert.throws(() => make({ [name]: max + 1 }), RangeError, name)
      assert.throws(() => make({ [name]: min + 0.5 }), RangeError, name)
    }
    const [min, max] = P2P_INBOUND_LIMITS.inboundUpgradeTimeoutMs
    const timeout = (v: number) => {
      const r = parseConfig({ p2p: { inboundUpgradeTimeoutMs: v } })
      return r.ok ? r.value.p2p.inboundUpgradeTimeoutMs : undefined
    }
    assert.equal(timeout(min), min)
    assert.equal(timeout(max), max)
    assert.equal(timeout(min - 1), undefined)
    assert.equal(timeout(max + 1), undefined)
    const absent = parseConfig({ p2p: {} })
    assert.equal(absent.ok && absent.value.p2p.inboundUpgradeTimeoutMs, undefined)
  })
})

describe('p2p', () => {
  const nets: TestNet[] = []
  const loose: P2p[] = []
  const streams: DirectStreams[] = []
  after(async () => {
    for (const d of streams) d.stop()
    await Promise.all([...nets.map((n) => n.stop()), ...loose.map((n) => n.stop())])
  })

  it('four nodes connect and direct streams reach all of them', async () => {
    const got: string[][] = [[], [], [], []]
    const net = await startNet(4)
    nets.push(net)
    const ds = net.nodes.map((n) => new DirectStreams(n, silentLogger()))
    streams.push(...ds)
    await Promise.all(
      ds.map((d, i) =>
        d.subscribe(PROTOCOL, (data, from) => {
          got[i]!.push(`${Buffer.from(data).toString()}<${from}`)
          return 'accept'
        }),
      ),
    )
    for (let i = 0; i < 4; i++) assert.equal(await ds[i]!.publish(PROTOCOL, Buffer.from(`hello from ${i}`)), 3)
    await waitFor(() => got.every((g) => g.length === 3), 'every message at every node')
    for (let i = 0; i < 4; i++) {
      const texts = got[i]!.map((g) => g.split('<')[0]).sort()
      assert.deepEqual(
        texts,
        [0, 1, 2, 3].filter((j) => j !== i).map((j) => `hello from ${j}`),
      )
    }
    assert.equal(net.nodes[0]!.peerCount, 3)
  })

  it('refuses a peer outside the allow-list in both directions', async () => {
    const got: string[] = []
    const net = await startNet(2)
    nets.push(net)
    const ds = net.nodes.map((n) => new DirectStreams(n, silentLogger()))
    streams.push(...ds)
    await ds[0]!.subscribe(PROTOCOL, (data) => {
      got.push(Buffer.from(data).toString())
      return 'accept'
    })
    await ds[1]!.subscribe(PROTOCOL, () => 'accept')
    const [stranger] = identities(1, 99)
    const outsider = new P2p(
      {
        seed: stranger!.seed,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        allow: net.ids,
        redialMinMs: 50,
        redialMaxMs: 100,
      },
      { logger: silentLogger() },
    )
    loose.push(outsider)
    await outsider.start()
    const outsiderStreams = new DirectStreams(outsider, silentLogger())
    streams.push(outsiderStreams)
    let connects = 0
    net.nodes[0]!.on('peer:connect', () => connects++)
    outsider.addStaticPeer({ peerId: net.ids[0]!, multiaddr: net.nodes[0]!.addresses()[0]! })
    // the outsider keeps redialing; every attempt must be refused
    const r = await outsider.request(net.ids[0]!, '/tally/none/1', new Uint8Array([1]), { timeoutMs: 2000 })
    assert.equal(r.ok, false)
    outsiderStreams.sendTo(net.ids[0]!, PROTOCOL, Buffer.from('from the outsider'))
    await ds[1]!.publish(PROTOCOL, Buffer.from('from a member'))
    await waitFor(() => got.includes('from a member'), 'member message')
    assert.equal(connects, 0)
    assert.equal(net.nodes[0]!.peerCount, 1)
    assert.deepEqual(net.nodes[0]!.peers(), [net.ids[1]])
    assert.ok(!got.includes('from the outsider'))
    // and a member does not dial the stranger
    const dial = await net.nodes[0]!.request(stranger!.peerId, '/tally/none/1', new Uint8Array([1]))
    assert.equal(dial.ok, false)
    assert.equal(!dial.ok && dial.error.code, 'not_allowed')
  })

  it('request/response works, with typed failures for oversized responses, errors and timeouts', async () => {
    const net = await startNet(2)
    nets.push(net)
    const [a, b] = net.nodes as [P2p, P2p]
    await b.handle('/tally/echo/1', (req, from) => {
      assert.equal(from, a.peerId)
      return new Uint8Array([...req, ...req])
    })
    await b.handle('/tally/big/1', () => new Uint8Array(100_000))
    await b.handle('/tally/fail/1', () => {
      throw new Error('no such block')
    })
    await b.handle('/tally/slow/1', () => new Promise<Uint8Array>(() => undefined))
    const ok = await a.request(b.peerId, '/tally/echo/1', new Uint8Array([1, 2, 3]))
    assert.deepEqual(ok, { ok: true, value: new Uint8Array([1, 2, 3, 1, 2, 3]) })
    const big = await a.request(b.peerId, '/tally/big/1', new Uint8Array([0]), { maxResponseBytes: 1000 })
    assert.equal(big.ok, false)
    assert.equal(!big.ok && big.error.code, 'too_large')
    const bigOk = await a.request(b.peerId, '/tally/big/1', new Uint8Array([0]), { maxResponseBytes: 200_000 })
    assert.equal(bigOk.ok && bigOk.value.byteLength, 100_000)
    const fail = await a.request(b.peerId, '/tally/fail/1', new Uint8Array([0]))
    assert.deepEqual(fail, { ok: false, error: { code: 'remote_error', reason: 'no such block' } })
    const slow = await a.request(b.peerId, '/tally/slow/1', new Uint8Array([0]), { timeoutMs: 300 })
    assert.equal(!slow.ok && slow.error.code, 'timeout')
    const none = await a.request(b.peerId, '/tally/none/1', new Uint8Array([0]))
    assert.equal(!none.ok && none.error.code, 'unreachable')
  })

  it('disconnects a peer that sends invalid messages, then re-admits it', async () => {
    const net = await startNet(2, { disconnectThreshold: 25, banMs: 400, redialMinMs: 50 })
    nets.push(net)
    const [a, b] = net.nodes as [P2p, P2p]
    const [da, db] = [new DirectStreams(a, silentLogger(), { rejectPenalty: 10 }), new DirectStreams(b, silentLogger(), { rejectPenalty: 10 })]
    streams.push(da, db)
    await db.subscribe(PROTOCOL, (data) => (data[0] === 0xff ? 'reject' : 'accept'))
    const banned: string[] = []
    b.on('peer:banned', (id) => banned.push(id))
    for (let i = 0; i < 3; i++) da.sendTo(b.peerId, PROTOCOL, new Uint8Array([0xff, i]))
    await waitFor(() => banned.length === 1 && b.peerCount === 0, 'garbage sender banned')
    assert.deepEqual(banned, [a.peerId])
    await waitFor(() => a.peerCount === 1 && b.peerCount === 1, 'redialed after the ban', 5_000)
  })

  it('forgives penalties a second at a time: faults within a second add up whole, and reach the threshold', async () => {
    const net = await startNet(2, { disconnectThreshold: 50, penaltyDecayPerSecond: 1 })
    nets.push(net)
    const [a, b] = net.nodes as [P2p, P2p]
    const banned: string[] = []
    b.on('peer:banned', (id) => banned.push(id))
    // the clock moved by hand, only around the calls (the nodes' networking keeps the real one)
    mock.timers.enable({ apis: ['Date'], now: Date.now() })
    try {
      b.penalize(a.peerId, 25, 'a first bad answer')
      mock.timers.tick(999)
      assert.equal(b.penaltyOf(a.peerId), 25)
      b.penalize(a.peerId, 20, 'a second bad answer, 999 ms later')
      assert.equal(b.penaltyOf(a.peerId), 45)
      mock.timers.tick(1)
      assert.equal(b.penaltyOf(a.peerId), 44, 'a second on, one point is forgiven')
      mock.timers.tick(1_500)
      assert.equal(b.penaltyOf(a.peerId), 43)
      assert.deepEqual(banned, [])
      b.penalize(a.peerId, 7, 'a third, reaching 50')
      assert.deepEqual(banned, [a.peerId])
      // a score forgiven whole starts its seconds afresh: two faults ms apart, long after an old one, add up whole
      mock.timers.tick(60_000) // past the ban
      b.penalize(a.peerId, 10, 'an old fault')
      mock.timers.tick(100_999)
      b.penalize(a.peerId, 25, 'a lie')
      mock.timers.tick(2)
      b.penalize(a.peerId, 25, 'another lie, 2 ms later')
      assert.deepEqual(banned, [a.peerId, a.peerId])
    } finally {
      mock.timers.reset()
    }
  })
})
