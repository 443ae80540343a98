import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromHex, to0x } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { DEFAULT_GOVERNANCE_PARAMS, PEER_ID_RE, castVote, endBlock, genesisGovernance, rosterAt, type GovernanceAction } from '../../../ledger/governance.js'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { admittedPeers } from '../../../node/p2p/admittedPeers.js'
import { P2p } from '../../../node/p2p/p2p.js'
import { peerIdOf } from '../../../node/p2p/peerId.js'
import { encodeTransaction, signGovernanceTransaction } from '../../../ledger/transaction.js'
import { writeTestnet } from '../../../node/cli/testnetFiles.js'
import { silentLogger } from '../../../node/logger.js'
import { TallyNode } from '../../../node/node.js'
import { publicKeyOfPeerId } from '../../../node/p2p/peerId.js'

/**
 * A validator's vote to add a member whose peer id has the form of one (PEER_ID_RE) but is no libp2p peer id: the
 * ledger accepts it, and the pending add's peer id joins the peers the gater admits. One Byzantine validator's vote
 * must not stop the node that commits it, nor keep it from starting again.
 */

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const body = (await res.json()) as { result?: T; error?: { message: string } }
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`)
  return body.result as T
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('a committed vote to add a member with a malformed peer id neither stops the node nor keeps it from restarting', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-peerid-'))
  const home = join(dir, 'net', 'node0')
  let node: TallyNode | undefined
  try {
    writeTestnet({ validators: 1, out: join(dir, 'net'), chainId: 'tally-unit', host: '127.0.0.1', p2pPort: 1, rpcPort: 1000, accounts: 0, balance: 10n })
    // power 3, so that adding power 1 moves no more than a third of it
    const genesis = JSON.parse(readFileSync(join(home, 'genesis.json'), 'utf8'))
    genesis.validators[0].power = 3
    genesis.params.emptyBlockIntervalMs = 100
    writeFileSync(join(home, 'genesis.json'), JSON.stringify(genesis, null, 2))
    const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))
    config.p2p.listen = '127.0.0.1:0'
    config.rpc.port = 0
    config.logLevel = 'silent'
    writeFileSync(join(home, 'config.json'), JSON.stringify(config, null, 2))
    const key = JSON.parse(readFileSync(join(home, 'validator_key.json'), 'utf8'))
    const seed = fromHex(key.secretKey.slice(2))!

    const badPeerId = '2'.repeat(40)
    assert.ok(PEER_ID_RE.test(badPeerId) && publicKeyOfPeerId(badPeerId) === undefined)
    const action: GovernanceAction = {
      type: 'add',
      publicKey: keyPairFromSeed(new Uint8Array(32).fill(5)).publicKey,
      power: 1,
      peerId: badPeerId,
      name: 'ghost',
    }
    const tx = signGovernanceTransaction({ chainId: 'tally-unit', from: keyPairFromSeed(seed).publicKey, nonce: 0n, action }, seed)

    const fatals: Error[] = []
    node = await TallyNode.start(home, { logger: silentLogger() })
    node.onFatal((e) => fatals.push(e))
    const url = node.rpcUrl
    const tip = async () => (await rpc<{ height: number }>(url, 'node_status')).height
    await waitFor('height 1', async () => ((await tip()) >= 1 ? true : undefined), 20_000)
    await rpc(url, 'tx_submit', [to0x(encodeTransaction(tx))])
    const pending = await waitFor(
      'the vote to be committed',
      async () => {
        const p = await rpc<{ changes: { action: { peerId?: string } }[]; scheduled: { validators: { peerId: string }[] } | null }>(
          url,
          'chain_getPendingChanges',
        )
        // one validator holds all the power here: its vote completes the change at once, and two heights later the
        // change is in force (no longer listed as pending or scheduled: a poll late on a busy machine sees only that)
        const named = p.changes.some((c) => c.action.peerId === badPeerId) || p.scheduled?.validators.some((v) => v.peerId === badPeerId)
        const inForce = !named && (await rpc<{ peerId: string }[]>(url, 'chain_getValidators')).some((v) => v.peerId === badPeerId)
        return named || inForce || fatals.length > 0 ? p : undefined
      },
      20_000,
    )
    assert.ok(pending !== undefined)
    const at = await tip()
    // the chain goes on
    await waitFor(`height ${at + 3}`, async () => (fatals.length > 0 || (await tip()) >= at + 3 ? true : undefined), 20_000)
    assert.deepEqual(
      fatals.map((e) => e.message),
      [],
    )
    await node.stop()
    node = undefined
    // and the node starts again on the state that holds the vote
    node = await TallyNode.start(home, { logger: silentLogger() })
  } finally {
    await node?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('pending votes for an add with a malformed peer id: the peers admitted still build a gater', () => {
  const seeds = [1, 2, 3, 4].map((i) => new Uint8Array(32).fill(i))
  const members = seeds.map((seed, i) => {
    const { publicKey } = keyPairFromSeed(seed)
    return { address: addressFromPublicKey(publicKey), publicKey, power: 1, peerId: peerIdOf(publicKey), name: `v${i}` }
  })
  const badPeerId = '2'.repeat(40)
  const action: GovernanceAction = { type: 'add', publicKey: keyPairFromSeed(new Uint8Array(32).fill(9)).publicKey, power: 1, peerId: badPeerId, name: 'ghost' }
  const voted = castVote(genesisGovernance(members), 1, members[0]!.address, action, DEFAULT_GOVERNANCE_PARAMS)
  assert.ok(voted.ok)
  // a second vote: a pending add is admitted with votes of more than a third of the power
  const second = castVote(voted.value, 1, members[1]!.address, action, DEFAULT_GOVERNANCE_PARAMS)
  assert.ok(second.ok)
  const state = endBlock(second.value, 1, [], DEFAULT_GOVERNANCE_PARAMS)
  assert.equal(state.pending.length, 1) // two votes of four: pending
  const allow = admittedPeers(1, (h) => rosterAt(state, h), state, [])
  assert.ok(allow.includes(badPeerId))
  const p2p = new P2p({ seed: seeds[1]!, listen: [], allow }, { logger: silentLogger() })
  p2p.setAllowed(allow)
})
