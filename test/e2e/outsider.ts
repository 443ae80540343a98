import '../../node/p2p/polyfill.js'
import { readFileSync } from 'node:fs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { waitFor } from './harness.js'

/**
 * Dials validator 0 from a libp2p node with a fresh key that is not in the genesis, and reports whether the
 * validator refused it: the dial fails, or the connection is closed by the remote shortly after the handshake.
 */
export async function dialRefused(genesisPath: string, p2pPort: number): Promise<boolean> {
  const genesis = JSON.parse(readFileSync(genesisPath, 'utf8')) as { validators: { peerId: string }[] }
  const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  try {
    const target = multiaddr(`/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${genesis.validators[0]!.peerId}`)
    try {
      await node.dial(target, { signal: AbortSignal.timeout(5_000) })
    } catch {
      return true
    }
    await waitFor('the validator to close the outsider connection', () => node.getConnections().length === 0, 5_000)
    return true
  } catch {
    return false
  } finally {
    await node.stop()
  }
}
