import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { DirectStreams } from '../../../../node/p2p/directStreams.js'
import { silentLogger } from '../../../../node/logger.js'
import type { GossipVerdict, P2p } from '../../../../node/p2p/p2p.js'
import { startNet, type TestNet } from './p2pNet.js'
import { waitFor } from '../../../helpers/waitFor.js'

const PROTOCOL = '/tally/test-direct/1'

describe('direct streams', () => {
  const nets: TestNet[] = []
  const all: DirectStreams[] = []
  after(async () => {
    for (const d of all) d.stop()
    await Promise.all(nets.map((n) => n.stop()))
  })

  async function setup(n: number, limits: { maxMessageBytes?: number }[] = [], verdict: (data: Uint8Array) => GossipVerdict = () => 'accept') {
    const net = await startNet(n)
    nets.push(net)
    const got: { text: string; from: string }[][] = net.nodes.map(() => [])
    const directs = net.nodes.map((node, i) => new DirectStreams(node, silentLogger(), limits[i] ?? {}))
    all.push(...directs)
    await Promise.all(
      directs.map((d, i) =>
        d.subscribe(PROTOCOL, (data, from) => {
          got[i]!.push({ text: Buffer.from(data).toString(), from })
          return verdict(data)
        }),
      ),
    )
    return { net, directs, got }
  }

  it('delivers every message once, in order, to every connected peer, without relaying', async () => {
    const { net, directs, got } = await setup(3)
    for (let k = 0; k < 200; k++) assert.equal(await directs[0]!.publish(PROTOCOL, Buffer.from(`m${k}`)), 2)
    await waitFor(() => got[1]!.length === 200 && got[2]!.length === 200, 'all messages at both peers')
    for (const i of [1, 2]) {
      assert.deepEqual(
        got[i]!.map((g) => g.text),
        Array.from({ length: 200 }, (_, k) => `m${k}`),
      )
      assert.ok(got[i]!.every((g) => g.from === net.nodes[0]!.peerId))
    }
    assert.equal(got[0]!.length, 0)
    assert.equal(directs[0]!.stats.sent, 400)
    assert.equal(directs[1]!.stats.sent, 0)
  })

  it("keeps order and message boundaries when a turn's messages go out together, across the coalescing bound", async () => {
    const { net, directs, got } = await setup(2, [{ maxMessageBytes: 200 * 1024 }, { maxMessageBytes: 200 * 1024 }])
    // sizes around the 64 KiB a write may hold: tiny, exactly the bound, above it, and many small ones between
    const sizes = [1, 65_536, 3, 65_535, 2, 150_000, ...Array.from({ length: 300 }, (_, k) => 1 + (k % 700)), 70_000, 1]
    const peer = net.nodes[1]!.peerId
    sizes.forEach((n, k) => {
      assert.equal(directs[0]!.sendTo(peer, PROTOCOL, Buffer.alloc(n, String.fromCharCode(48 + (k % 64)))), true)
    })
    await waitFor(() => got[1]!.length === sizes.length, 'every message delivered')
    assert.deepEqual(
      got[1]!.map((g) => g.text.length),
      sizes,
    )
    got[1]!.forEach((g, k) => {
      assert.ok(g.text === String.fromCharCode(48 + (k % 64)).repeat(sizes[k]!), `message ${k} intact`)
    })
    assert.equal(directs[0]!.stats.sent, sizes.length)
  })

  it('penalizes a peer whose message is rejected or oversized, and recovers the stream after a bad frame', async () => {
    const { net, directs, got } = await setup(2, [{ maxMessageBytes: 1024 }, { maxMessageBytes: 100 }], (d) => (d[0] === 0x21 ? 'reject' : 'accept'))
    const [a, b] = net.nodes
    directs[0]!.sendTo(b!.peerId, PROTOCOL, Buffer.from('!bad'))
    await waitFor(() => directs[1]!.stats.rejected === 1, 'rejected message')
    const afterReject = b!.penaltyOf(a!.peerId)
    assert.ok(afterReject > 0)
    directs[0]!.sendTo(b!.peerId, PROTOCOL, new Uint8Array(500).fill(65))
    await waitFor(() => b!.penaltyOf(a!.peerId) > afterReject, 'oversized frame penalized')
    assert.ok(got[1]!.every((g) => g.text.length < 100))
    // the receiver ended that stream; the sender notices and opens a new one
    await waitFor(() => {
      directs[0]!.sendTo(b!.peerId, PROTOCOL, Buffer.from('ok'))
      return got[1]!.some((g) => g.text === 'ok')
    }, 'a later message arrives')
  })

  it('holds a fast sender back while the receiver is slow, losing nothing', async () => {
    const net = await startNet(2)
    nets.push(net)
    const [sender, receiver] = [
      new DirectStreams(net.nodes[0]!, silentLogger(), { maxMessageBytes: 128 * 1024 }),
      new DirectStreams(net.nodes[1]!, silentLogger(), { maxMessageBytes: 128 * 1024 }),
    ]
    all.push(sender, receiver)
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    const got: number[] = []
    await receiver.subscribe(PROTOCOL, async (data): Promise<GossipVerdict> => {
      await gate
      got.push(data[0]!)
      return 'accept'
    })
    // 12 MiB in 100 messages: three times what a stream may buffer unread before libp2p aborts it
    for (let k = 0; k < 100; k++) assert.equal(sender.sendTo(net.nodes[1]!.peerId, PROTOCOL, new Uint8Array(120 * 1024).fill(k)), true)
    await waitFor(() => sender.stats.sent > 5, 'some messages sent')
    release()
    await waitFor(() => got.length === 100, 'every message delivered', 20_000)
    assert.deepEqual(
      got,
      Array.from({ length: 100 }, (_, k) => k),
    )
    assert.equal(sender.stats.dropped, 0)
  })

  it('drops messages beyond the per-peer queue bound', async () => {
    const net = await startNet(2)
    nets.push(net)
    const d = new DirectStreams(net.nodes[0]!, silentLogger(), { maxQueuedBytes: 100 })
    all.push(d)
    const peer = net.nodes[1]!.peerId
    assert.equal(d.sendTo(peer, PROTOCOL, new Uint8Array(60)), true)
    assert.equal(d.sendTo(peer, PROTOCOL, new Uint8Array(60)), false)
    assert.equal(d.stats.dropped, 1)
    // nobody serves the protocol there: the queued message is dropped when the stream cannot open
    await waitFor(() => d.stats.dropped === 2, 'unsupported protocol drops the queue')
    assert.throws(() => d.sendTo(peer, PROTOCOL, new Uint8Array(2 * 1024 * 1024)), RangeError)
  })
})

describe('direct streams: the budget of ignored messages', () => {
  const nets: TestNet[] = []
  const all: DirectStreams[] = []
  after(async () => {
    for (const d of all) d.stop()
    await Promise.all(nets.map((n) => n.stop()))
  })

  it("is the peer's over all its streams: a fresh stream for each burst does not renew it", async () => {
    // never disconnected here, so that the penalty it earns can be read
    const net = await startNet(2, { disconnectThreshold: 1_000_000 })
    nets.push(net)
    const [victim, sender] = net.nodes as [P2p, P2p]
    const ds = new DirectStreams(victim, silentLogger(), { ignoredPerSecond: 50 })
    all.push(ds)
    let handled = 0
    await ds.subscribe('/tally/ignored-test/1', () => {
      handled++
      return 'ignore'
    })
    // five streams, each carrying just under the burst of 200 one stream was allowed: 950 ignored messages in all
    const message = Uint8Array.of(3, 1, 2, 3) // varint length, then the message
    for (let k = 0; k < 5; k++) {
      const before = handled
      const s = await sender.openStream(victim.peerId, '/tally/ignored-test/1', AbortSignal.timeout(2_000))
      const burst = new Uint8Array(190 * message.byteLength)
      for (let i = 0; i < 190; i++) burst.set(message, i * message.byteLength)
      s.send(burst)
      await waitFor(() => handled >= before + 190, 'the burst delivered')
      s.abort(new Error('a fresh stream for the next burst'))
    }
    assert.ok(victim.penaltyOf(sender.peerId) > 100, `penalty ${victim.penaltyOf(sender.peerId)}`)
  })
})
