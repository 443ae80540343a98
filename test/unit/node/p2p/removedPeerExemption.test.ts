import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import { waitFor } from '../../../helpers/waitFor.js'
import { startNet, type TestNet } from './p2pNet.js'

/**
 * A validator's address is exempt from the per-address limits on unauthenticated sockets once it connected from it.
 * Governance removes a validator (often for misbehaving); from then on its address must count like any other, or the
 * removed operator keeps the exemption, and its 64 sockets of 3 s each, until the node restarts.
 */
describe('a peer no longer admitted', () => {
  const nets: TestNet[] = []
  const sockets: Socket[] = []
  after(async () => {
    for (const s of sockets) s.destroy()
    await Promise.all(nets.map((n) => n.stop()))
  })

  it('loses the exemption of the address it connected from', async () => {
    const net = await startNet(2)
    nets.push(net)
    const [node, removed] = net.nodes as [(typeof net.nodes)[0], (typeof net.nodes)[0]]
    // node 1 dialed node 0, so on node 0 it is a peer of the validator sets, not a static one
    await removed.stop()
    node.setAllowed([])
    const before = { ...node.inboundStats }
    const port = Number(node.addresses()[0]!.split('/')[4])
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    await waitFor(() => node.inboundStats.exempt + node.inboundStats.admitted > before.exempt + before.admitted, 'the socket judged')
    assert.equal(node.inboundStats.exempt, before.exempt, 'a removed validator’s address is still exempt')
    assert.equal(node.inboundStats.admitted, before.admitted + 1)
  })
})
