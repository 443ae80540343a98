import '../../../../node/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { ComponentLogger, ConnectionEncrypter, Logger, MessageStream, Stream, Upgrader } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { cheapFraming, fewerWindowUpdates, halfWindowUpdates, quietLengthDecoder, quietVarintDecoder } from '../../../../node/p2p/framing.js'
import { libp2pPrivateKeyFromSeed } from '../../../../node/p2p/peerId.js'
import { waitFor } from '../../../helpers/waitFor.js'

function quietLog(): Logger {
  const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => log })
  return log as unknown as Logger
}
const logger: ComponentLogger = { forComponent: () => quietLog() }

function encrypter(seed: number, framed: boolean): ConnectionEncrypter {
  const privateKey = libp2pPrivateKeyFromSeed(new Uint8Array(32).fill(seed))
  const components = { privateKey, peerId: peerIdFromPrivateKey(privateKey), logger, upgrader: { getStreamMuxers: () => new Map() } as unknown as Upgrader }
  const e = noise()(components)
  return framed ? cheapFraming(e) : e
}

/** Collects what arrives on a secured stream. */
function collect(stream: MessageStream): { bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = []
  stream.addEventListener('message', (evt) => {
    chunks.push(evt.data.subarray())
  })
  return { bytes: () => Buffer.concat(chunks) }
}

describe('cheap framing', () => {
  it('talks to plain Noise both ways, one socket write per send, small and multi-frame messages alike', async () => {
    const [outbound, inbound] = multiaddrConnectionPair()
    // what the raw connection under the framed side is asked to write, send by send
    const chunksPerSend: number[] = []
    const raw = outbound as unknown as { sendData: (data: { bufs: Uint8Array[] }) => unknown }
    const sendData = raw.sendData.bind(outbound)
    raw.sendData = (data) => {
      chunksPerSend.push(data.bufs.length)
      return sendData(data)
    }
    const framed = encrypter(1, true)
    const plain = encrypter(2, false)
    const [a, b] = await Promise.all([framed.secureOutbound(outbound), plain.secureInbound(inbound)])
    assert.equal(a.remotePeer.toString(), peerIdFromPrivateKey(libp2pPrivateKeyFromSeed(new Uint8Array(32).fill(2))).toString())

    const atPlain = collect(b.connection)
    const atFramed = collect(a.connection)
    const small = Array.from({ length: 50 }, (_, i) => new Uint8Array(i + 1).fill(i))
    const large = new Uint8Array(200_000).map((_, i) => i % 251)
    const expected = Buffer.concat([...small, large])
    chunksPerSend.length = 0
    for (const m of small) a.connection.send(m)
    a.connection.send(large)
    for (const m of small) b.connection.send(m)
    b.connection.send(large)
    await waitFor(() => atPlain.bytes().byteLength === expected.byteLength && atFramed.bytes().byteLength === expected.byteLength, 'both ends received')
    assert.deepEqual(atPlain.bytes(), expected)
    assert.deepEqual(atFramed.bytes(), expected)
    assert.ok(chunksPerSend.length > 0)
    assert.deepEqual(
      chunksPerSend.filter((n) => n !== 1),
      [],
      'every send reaches the raw connection as one chunk',
    )
  })

  it("replaces the Noise stream's length decoder with one that builds no error while waiting", async () => {
    const [outbound, inbound] = multiaddrConnectionPair()
    const [a] = await Promise.all([encrypter(1, true).secureOutbound(outbound), encrypter(2, false).secureInbound(inbound)])
    const decoder = (a.connection as unknown as { decoder?: { lengthDecoder?: (data: Uint8Array) => number } }).decoder
    assert.ok(decoder?.lengthDecoder !== undefined, 'the Noise stream keeps its frame decoder where cheapFraming looks for it')
    const thrown = (data: Uint8Array) => {
      try {
        decoder.lengthDecoder!(data)
      } catch (e) {
        return e
      }
      assert.fail('expected a throw')
    }
    const first = thrown(new Uint8Array(1))
    assert.ok(first instanceof RangeError)
    assert.equal(thrown(new Uint8Array(0)), first, 'the same prebuilt error each time')
    assert.equal(decoder.lengthDecoder(new Uint8Array([0x01, 0x02])), 0x0102)
  })

  it('quiet length decoders decode like the ones they wrap and throw one RangeError while short', () => {
    let short: unknown
    try {
      quietVarintDecoder(new Uint8Array(0))
    } catch (e) {
      short = e
    }
    assert.ok(short instanceof RangeError)
    assert.equal(quietVarintDecoder(new Uint8Array([0xac, 0x02])), 300)
    const two = quietLengthDecoder((d: Uint8Array) => d.length, 2)
    assert.throws(
      () => two(new Uint8Array(1)),
      (e) => e === short,
    )
    assert.equal(two(new Uint8Array(3)), 3)
  })

  it('Yamux streams send a window update once half the receive window is used, not after every frame', async () => {
    /** Yamux window-update frames (type 1) among what a raw connection is asked to send. */
    const countUpdates = (conn: unknown): { count: () => number } => {
      let n = 0
      const raw = conn as { sendData: (data: { subarray: () => Uint8Array }) => unknown }
      const sendData = raw.sendData.bind(conn)
      raw.sendData = (data) => {
        const bytes = data.subarray()
        // frames are 12-byte headers (version, type, flags, stream id, length), data frames followed by their data
        for (let at = 0; at + 12 <= bytes.byteLength; ) {
          const type = bytes[at + 1]
          const length = new DataView(bytes.buffer, bytes.byteOffset + at + 8, 4).getUint32(0)
          if (type === 1) n++
          at += 12 + (type === 0 ? length : 0)
        }
        return sendData(data)
      }
      return { count: () => n }
    }
    const run = async (tuned: boolean): Promise<number> => {
      const [outbound, inbound] = multiaddrConnectionPair()
      const updates = countUpdates(inbound)
      const factory = (f: ReturnType<ReturnType<typeof yamux>>) => (tuned ? fewerWindowUpdates(f) : f)
      const dialer = factory(yamux()()).createStreamMuxer(outbound)
      const listener = factory(yamux()()).createStreamMuxer(inbound)
      const incoming = new Promise<Stream>((resolve) => {
        listener.addEventListener('stream', (evt) => resolve(evt.detail), { once: true })
      })
      const stream = await dialer.createStream()
      let received = 0
      const remote = await incoming
      remote.addEventListener('message', (evt) => {
        received += evt.data.byteLength
      })
      const total = 300 * 100
      for (let i = 0; i < 300; i++) {
        stream.send(new Uint8Array(100).fill(i))
        await new Promise<void>((r) => setImmediate(r))
      }
      // and one message larger than the window, which needs updates to get through
      const large = 1024 * 1024
      stream.send(new Uint8Array(large))
      await waitFor(() => received === total + large, 'all data received')
      dialer.abort(new Error('done'))
      listener.abort(new Error('done'))
      return updates.count()
    }
    const plain = await run(false)
    const tuned = await run(true)
    assert.ok(plain >= 300, `plain Yamux answers every frame (${plain} updates)`)
    assert.ok(tuned < 40, `at most a few dozen updates, for the large message (${tuned})`)
  })

  it('halfWindowUpdates passes flagged updates and those past half the window through', () => {
    const calls: string[] = []
    const stream = {
      state: 3,
      recvWindow: 1000,
      recvWindowCapacity: 1000,
      sendWindowUpdate() {
        calls.push(`${this.state}:${this.recvWindowCapacity}`)
      },
    }
    halfWindowUpdates(stream)
    stream.recvWindowCapacity = 600
    stream.sendWindowUpdate()
    assert.deepEqual(calls, [], 'less than half used: no update')
    stream.recvWindowCapacity = 500
    stream.sendWindowUpdate()
    stream.state = 2
    stream.recvWindowCapacity = 990
    stream.sendWindowUpdate()
    assert.deepEqual(calls, ['3:500', '2:990'], 'half used, or a stream whose update carries a flag')
  })
})
