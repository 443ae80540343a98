import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { Stream } from '@libp2p/interface'
import type { P2p } from '../../../../node/p2p/p2p.js'
import { waitFor } from '../../../helpers/waitFor.js'
import { startNet, type TestNet } from './p2pNet.js'

const MiB = 1024 * 1024
const nets: TestNet[] = []
after(async () => {
  await Promise.all(nets.map((n) => n.stop()))
})

/** One request frame (u32 length, then the bytes), as a peer's request stream carries it. */
function requestFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(4 + body.byteLength)
  new DataView(frame.buffer).setUint32(0, body.byteLength)
  frame.set(body, 4)
  return frame
}

/** A victim serving `/tally/big/1` with responses of `size` bytes, holding at most `budget` per peer for 1 s. */
async function serving(size: number, budget: number) {
  const net = await startNet(2, { requestTimeoutMs: 1_000, responseWriteTimeoutMs: 1_000, maxResponseBytesInFlight: budget })
  nets.push(net)
  const [victim, attacker] = net.nodes as [P2p, P2p]
  let count = 0
  await victim.handle('/tally/big/1', () => {
    count++
    return new Uint8Array(size)
  })
  return { victim, attacker, served: () => count }
}

test('a peer that asks for large responses and never reads them holds a bounded amount, for a bounded time', async () => {
  const { victim, attacker, served } = await serving(MiB, 4 * MiB)
  const stalled: Stream[] = []
  let most = 0
  for (let i = 0; i < 12; i++) {
    const s = await attacker.openStream(victim.peerId, '/tally/big/1', AbortSignal.timeout(2_000))
    s.pause() // never read: its receive window is not opened again
    s.send(requestFrame(Uint8Array.of(i)))
    stalled.push(s)
    await waitFor(() => served() + victim.busyAnswers > i, 'the request answered')
    most = Math.max(most, victim.responseBytesInFlight(attacker.peerId))
  }
  assert.ok(most <= 4 * MiB + 1024, `${most} bytes of responses held for one peer`)
  assert.ok(most >= 2 * MiB, 'the stalled responses were held while they could be')
  // past the write deadline the victim drops them with their streams, none of them read
  await waitFor(() => victim.responseBytesInFlight(attacker.peerId) === 0, 'the stalled responses dropped', 5_000)
  // and a peer that reads is served again
  const r = await attacker.request(victim.peerId, '/tally/big/1', new Uint8Array(1), { timeoutMs: 5_000, maxResponseBytes: 2 * MiB })
  assert.ok(r.ok, r.ok ? '' : r.error.reason)
  assert.equal(r.value.byteLength, MiB)
})

test('a peer that reads the start of each large response and stops holds no more than its budget either', async () => {
  const { victim, attacker } = await serving(4 * MiB, 8 * MiB)
  // each stream reads until it has seen the response's status byte and some of its body, then reads no more
  const statuses: number[] = []
  let most = 0
  for (let i = 0; i < 12; i++) {
    const s = await attacker.openStream(victim.peerId, '/tally/big/1', AbortSignal.timeout(2_000))
    let seen = 0
    s.addEventListener('message', (evt) => {
      const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      if (seen <= 4 && seen + data.byteLength > 4) statuses.push(data[4 - seen]!)
      seen += data.byteLength
      if (seen >= 768 * 1024) s.pause()
    })
    s.send(requestFrame(Uint8Array.of(i)))
    await waitFor(() => statuses.length > i, 'the response begun')
    most = Math.max(most, victim.responseBytesInFlight(attacker.peerId))
  }
  assert.ok(most <= 8 * MiB + 1024, `${most} bytes of responses held for one peer`)
  const ok = statuses.filter((x) => x === 0).length
  assert.ok(ok >= 1 && ok <= 2, `${ok} of 12 large responses begun while the first ones were not read (busy for the rest)`)
  await waitFor(() => victim.responseBytesInFlight(attacker.peerId) === 0, 'the stalled responses dropped', 5_000)
})

test('a peer holding half its budget unread is answered busy without its requests being served', async () => {
  const size = 1.5 * MiB
  const { victim, attacker, served } = await serving(size, 4 * MiB)
  // two large responses never read: more than half the peer's budget held, too little room for a third
  for (let i = 0; i < 2; i++) {
    const s = await attacker.openStream(victim.peerId, '/tally/big/1', AbortSignal.timeout(2_000))
    s.pause()
    s.send(requestFrame(Uint8Array.of(i)))
    await waitFor(() => victim.responseBytesInFlight(attacker.peerId) >= (i + 1) * size, 'the response held')
  }
  // each further request would make (read from disk, encode) a response only to refuse it for the budget: it is
  // refused first
  for (let i = 0; i < 20; i++) {
    const r = await attacker.request(victim.peerId, '/tally/big/1', new Uint8Array(1), { timeoutMs: 5_000, maxResponseBytes: 2 * MiB })
    assert.ok(!r.ok && /busy/.test(r.error.reason), r.ok ? 'served' : r.error.reason)
  }
  assert.equal(served(), 2, 'requests served while half the budget was unread')
  await waitFor(() => victim.responseBytesInFlight(attacker.peerId) === 0, 'the stalled responses dropped', 5_000)
  const r = await attacker.request(victim.peerId, '/tally/big/1', new Uint8Array(1), { timeoutMs: 5_000, maxResponseBytes: 2 * MiB })
  assert.ok(r.ok, r.ok ? '' : r.error.reason)
})
