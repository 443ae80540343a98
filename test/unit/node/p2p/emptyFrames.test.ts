import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { silentLogger } from '../../../../node/logger.js'
import { DirectStreams } from '../../../../node/p2p/directStreams.js'
import { waitFor } from '../../../helpers/waitFor.js'
import { startNet, type TestNet } from './p2pNet.js'

/**
 * A direct stream carries varint-length-prefixed messages. A frame of length 0 (a single zero byte) is dropped by the
 * length-prefixed decoder without reaching the handler: it is neither counted, nor judged, nor penalized, and since no
 * message waits for the handler the stream is never paused. Decoding costs the receiver's main thread about 150 to
 * 350 ns a byte of such frames (against about 9 ns a byte of real messages), so one Byzantine validator that streams
 * zero bytes at a few MB/s on its direct streams holds an honest node's event loop for good, with no penalty.
 */

const PROTOCOL = '/tally/test-empty-frames/1'

/** Writes bytes on a raw stream, waiting for the muxer to drain when its buffer is full; false once it is closed. */
async function write(stream: Stream, bytes: Uint8Array): Promise<boolean> {
  if (stream.status !== 'open') return false
  try {
    if (stream.send(bytes)) return true
  } catch {
    return false
  }
  await new Promise<void>((resolve) => {
    stream.addEventListener('drain', () => resolve(), { once: true })
    stream.addEventListener('close', () => resolve(), { once: true })
  })
  return stream.status === 'open'
}

describe('empty frames on a direct stream', () => {
  const nets: TestNet[] = []
  const directs: DirectStreams[] = []
  after(async () => {
    for (const d of directs) d.stop()
    await Promise.all(nets.map((n) => n.stop()))
  })

  it('cost their sender a penalty', async () => {
    const net = await startNet(2)
    nets.push(net)
    const [honest, byzantine] = net.nodes
    const direct = new DirectStreams(honest!, silentLogger())
    directs.push(direct)
    const got: string[] = []
    await direct.subscribe(PROTOCOL, (data) => {
      got.push(Buffer.from(data).toString())
      return 'accept'
    })
    const stream = await byzantine!.openStream(honest!.peerId, PROTOCOL, AbortSignal.timeout(5_000))
    const emptyFrames = 4 * 1024 * 1024
    const chunk = new Uint8Array(64 * 1024)
    const t0 = Date.now()
    for (let sent = 0; sent < emptyFrames && (await write(stream, chunk)); sent += chunk.byteLength) {}
    // then one real message: once it is delivered, every empty frame before it was read
    await write(stream, Uint8Array.of(2, 0x6f, 0x6b))
    const penalized = () => honest!.penaltyOf(byzantine!.peerId) > 0 || honest!.isBanned(byzantine!.peerId)
    await waitFor(() => got.length === 1 || penalized(), 'the message after the empty frames, or a penalty', 60_000)
    const ms = Date.now() - t0
    stream.abort(new Error('done'))
    assert.ok(penalized(), `${emptyFrames} empty frames read in ${ms} ms, messages handled: ${got.length}, no penalty`)
  })
})
