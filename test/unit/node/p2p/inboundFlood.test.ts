import '../../../../node/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import { tcp, type TCPSocketOptions } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { createLogger, silentLogger, type Logger } from '../../../../node/logger.js'
import { P2p, type P2pOptions } from '../../../../node/p2p/p2p.js'
import { libp2pPrivateKeyFromSeed } from '../../../../node/p2p/peerId.js'
import { waitFor } from '../../../helpers/waitFor.js'
import { idleFlood, type IdleFlood } from './idleFlood.js'
import { identities } from './p2pNet.js'

/** The default inbound upgrade timeout (docs/p2p.md): an idle socket must be gone by then, plus scheduling slack. */
const UPGRADE_TIMEOUT_MS = 3_000
const SLACK_MS = 750
/** How long a peer may take to get in while a flood runs. */
const ADMIT_WITHIN_MS = 3_000

interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [field: string]: unknown
}

/** A debug-level logger whose lines the test can read. */
function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (line: string) => {
        lines.push(JSON.parse(line) as LogLine)
      },
    },
  })
  return { logger, lines }
}

function portOf(node: P2p): number {
  return Number(
    multiaddr(node.addresses()[0]!)
      .getComponents()
      .find((c) => c.name === 'tcp')!.value,
  )
}

describe('p2p under inbound floods', () => {
  const nodes: P2p[] = []
  const raw: Libp2p[] = []
  const floods: IdleFlood[] = []
  after(async () => {
    for (const f of floods) f.stop()
    await Promise.all([...nodes.map((n) => n.stop()), ...raw.map((n) => n.stop())])
  })

  function node(seed: Uint8Array, options: Partial<P2pOptions> & Pick<P2pOptions, 'allow'>, logger: Logger = silentLogger()): P2p {
    const p = new P2p({ seed, listen: ['/ip4/127.0.0.1/tcp/0'], ...options }, { logger })
    nodes.push(p)
    return p
  }

  /** A bare libp2p node with a given identity dialing from `from`, for attacks the P2p class would never make. */
  async function rawNode(seed: Uint8Array, from: string): Promise<Libp2p> {
    const n = await createLibp2p({
      privateKey: libp2pPrivateKeyFromSeed(seed),
      transports: [tcp({ dialOpts: { localAddress: from } as TCPSocketOptions })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    })
    raw.push(n)
    return n
  }

  /** Waits until every socket of the flood open now has been closed by the node, and checks none outlived the timeout. */
  async function idleSocketsClosed(flood: IdleFlood): Promise<void> {
    const pending = flood.openSince()
    const oldest = Math.min(...pending, Date.now())
    await waitFor(
      () => {
        const still = new Set(flood.openSince())
        return pending.every((t) => !still.has(t))
      },
      'idle sockets closed by the node',
      Math.max(0, oldest + UPGRADE_TIMEOUT_MS + SLACK_MS - Date.now()) + 100,
    )
    assert.ok(flood.lifetimes.length > 0)
    const longest = Math.max(...flood.lifetimes)
    assert.ok(longest <= UPGRADE_TIMEOUT_MS + SLACK_MS, `an idle socket lived ${longest} ms`)
  }

  it('admits a fresh and a restarted peer within seconds while an outsider keeps idle sockets open', async () => {
    const [ida, idb] = identities(2, 31) as [{ seed: Uint8Array; peerId: string }, { seed: Uint8Array; peerId: string }]
    const allow = [ida.peerId, idb.peerId]
    const { logger, lines } = capturingLogger()
    // a never redials b within the test: b must get in by dialing a
    const a = node(ida.seed, { allow, redialMinMs: 60_000, redialMaxMs: 60_000 }, logger)
    await a.start()
    const flood = idleFlood({ port: portOf(a), from: '127.0.0.2', sockets: 16 })
    floods.push(flood)
    await waitFor(() => flood.connects >= 16, 'idle sockets open')

    const b = node(idb.seed, { allow, peers: [{ peerId: ida.peerId, multiaddr: a.addresses()[0]! }] })
    await b.start()
    await waitFor(() => a.peerCount === 1, 'fresh peer admitted during the flood', ADMIT_WITHIN_MS)

    const port = portOf(b)
    await b.stop()
    await waitFor(() => a.peerCount === 0, 'peer gone')
    const restarted = node(idb.seed, { allow, listen: [`/ip4/127.0.0.1/tcp/${port}`], peers: [{ peerId: ida.peerId, multiaddr: a.addresses()[0]! }] })
    await restarted.start()
    await waitFor(() => a.peerCount === 1 && restarted.peerCount === 1, 'restarted peer admitted during the flood', ADMIT_WITHIN_MS)

    await idleSocketsClosed(flood)
    flood.stop()
    assert.ok(a.inboundStats.refused.address_pending > 0)
    // the flood is reported, once for its address, not once per socket
    const reports = lines.filter((l) => l.level >= 40 && JSON.stringify(l).includes('127.0.0.2'))
    assert.equal(reports.length, 1, JSON.stringify(reports))
  })

  it('keeps room for a static peer on the same address as the flood', async () => {
    const [ida, idb] = identities(2, 32) as [{ seed: Uint8Array; peerId: string }, { seed: Uint8Array; peerId: string }]
    const allow = [ida.peerId, idb.peerId]
    const b = node(idb.seed, { allow })
    await b.start()
    const port = portOf(b)
    // b is a's configured static peer at 127.0.0.1, the address every local validator shares
    const a = node(ida.seed, { allow, peers: [{ peerId: idb.peerId, multiaddr: b.addresses()[0]! }], redialMinMs: 60_000, redialMaxMs: 60_000 })
    await a.start()
    await waitFor(() => a.peerCount === 1, 'connected')
    const flood = idleFlood({ port: portOf(a), from: '127.0.0.1', sockets: 16 })
    floods.push(flood)
    await waitFor(() => flood.connects >= 16, 'idle sockets open')

    await b.stop()
    await waitFor(() => a.peerCount === 0, 'peer gone')
    const restarted = node(idb.seed, { allow, listen: [`/ip4/127.0.0.1/tcp/${port}`], peers: [{ peerId: ida.peerId, multiaddr: a.addresses()[0]! }] })
    await restarted.start()
    await waitFor(() => a.peerCount === 1 && restarted.peerCount === 1, 'static peer admitted during the flood', ADMIT_WITHIN_MS)
    await idleSocketsClosed(flood)
  })

  it('reports an outsider that completes the handshake once, and keeps serving members', async () => {
    const [ida, idb, stranger] = identities(3, 33) as [
      { seed: Uint8Array; peerId: string },
      { seed: Uint8Array; peerId: string },
      { seed: Uint8Array; peerId: string },
    ]
    const allow = [ida.peerId, idb.peerId]
    const { logger, lines } = capturingLogger()
    const a = node(ida.seed, { allow }, logger)
    await a.start()
    const outsider = await rawNode(stranger.seed, '127.0.0.2')
    // its side of Noise completes before the node's gater refuses it, so a dial may seem to succeed for a moment
    for (let i = 0; i < 8; i++) {
      await outsider.dial(multiaddr(a.addresses()[0]!), { force: true, signal: AbortSignal.timeout(2_000) }).catch(() => undefined)
    }
    await waitFor(() => outsider.getConnections().length === 0, 'every outsider connection closed by the node')
    assert.equal(a.peerCount, 0)
    // a refused handshake costs its address two seconds of its rate: the next attempts end before Noise
    assert.ok(a.inboundStats.refusedPeers < 8, `${a.inboundStats.refusedPeers} handshakes`)
    assert.ok(a.inboundStats.refused.address_rate > 0)
    const b = node(idb.seed, { allow, peers: [{ peerId: ida.peerId, multiaddr: a.addresses()[0]! }] })
    await b.start()
    await waitFor(() => a.peerCount === 1, 'member admitted', ADMIT_WITHIN_MS)
    const reports = lines.filter((l) => JSON.stringify(l).includes(stranger.peerId))
    assert.equal(reports.length, 1, JSON.stringify(reports))
    assert.ok(reports[0]!.level >= 40, 'the outsider is reported at warn level')
  })

  it('caps the connections one admitted peer may hold and penalizes it for more', async () => {
    const [ida, idc] = identities(2, 34) as [{ seed: Uint8Array; peerId: string }, { seed: Uint8Array; peerId: string }]
    const allow = [ida.peerId, idc.peerId]
    const { logger, lines } = capturingLogger()
    const a = node(ida.seed, { allow }, logger)
    await a.start()
    const greedy = await rawNode(idc.seed, '127.0.0.2')
    const target = multiaddr(a.addresses()[0]!)
    // three too many: 30 penalty points, below the ban threshold of 50
    let opened = 0
    for (let i = 0; i < 6; i++) {
      await greedy.dial(target, { force: true, signal: AbortSignal.timeout(2_000) }).then(
        () => {
          opened++
        },
        () => undefined,
      )
    }
    await waitFor(() => greedy.getConnections().filter((c) => c.status === 'open').length === 3, 'excess connections closed')
    assert.ok(opened >= 3)
    assert.ok(a.penaltyOf(idc.peerId) > 0, 'the greedy peer is penalized')
    const reports = lines.filter((l) => l.level >= 40 && JSON.stringify(l).includes(idc.peerId))
    assert.equal(reports.length, 1, JSON.stringify(reports))
  })
})
