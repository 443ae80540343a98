import { keyPairFromSeed } from '../../../../crypto/index.js'
import { silentLogger } from '../../../../node/logger.js'
import { P2p, type P2pOptions } from '../../../../node/p2p/p2p.js'
import { peerIdOf } from '../../../../node/p2p/peerId.js'
import { Rng } from '../../../helpers/random.js'
import { waitFor } from '../../../helpers/waitFor.js'

/** Test helper: a small network of real libp2p nodes on 127.0.0.1, all allow-listing each other. */
export interface TestNet {
  readonly nodes: P2p[]
  readonly ids: string[]
  stop(): Promise<void>
}

/** Seeds and peer ids of n test identities (deterministic). */
export function identities(n: number, seed = 1): { seed: Uint8Array; peerId: string }[] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, () => {
    const s = rng.bytes(32)
    return { seed: s, peerId: peerIdOf(keyPairFromSeed(s).publicKey) }
  })
}

/** Starts n fully meshed nodes (each dials the ones before it) and waits until all are connected. */
export async function startNet(n: number, extra: Partial<P2pOptions> = {}, setup?: (node: P2p, i: number) => void): Promise<TestNet> {
  const ids = identities(n)
  const allow = ids.map((i) => i.peerId)
  const nodes = ids.map((id) => new P2p({ seed: id.seed, listen: ['/ip4/127.0.0.1/tcp/0'], allow, ...extra }, { logger: silentLogger() }))
  const stop = async () => {
    await Promise.all(nodes.map((x) => x.stop()))
  }
  try {
    nodes.forEach((node, i) => {
      setup?.(node, i)
    })
    await Promise.all(nodes.map((x) => x.start()))
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) nodes[i]!.addStaticPeer({ peerId: ids[j]!.peerId, multiaddr: nodes[j]!.addresses()[0]! })
    }
    await waitFor(() => nodes.every((x) => x.peerCount === n - 1), 'full mesh')
  } catch (e) {
    await stop()
    throw e
  }
  return { nodes, ids: ids.map((i) => i.peerId), stop }
}
