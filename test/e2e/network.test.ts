import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { Testnet, rpc, runCli, waitFor } from './harness.js'
import { Load, readDevKey } from './load.js'

/**
 * The networked validator end to end: four real `tallyd` processes on 127.0.0.1, crashes with kill -9,
 * a deleted data/ directory, and restarts. One testnet serves the whole file; each test leaves all four running.
 */
describe('a four-validator network', { timeout: 300_000 }, () => {
  let net: Testnet
  let chainId: string
  const all = [0, 1, 2, 3]
  const urlsExcept = (down: number[]) => all.filter((i) => !down.includes(i)).map((i) => net.rpcUrl(i))

  before(async () => {
    net = await Testnet.create(4)
    net.startAll()
    await net.waitHeight(2)
    chainId = (await rpc<{ chainId: string }>(net.rpcUrl(0), 'node_status')).chainId
  })

  after(async () => {
    await net?.destroy()
  })

  test('commits transfers, and every validator reports the same blocks and state roots', async () => {
    const faucet = readDevKey(net.keyFile('faucet'))
    const to = readDevKey(net.keyFile('account0')).address
    const before = BigInt(await rpc<string>(net.rpcUrl(1), 'ledger_getBalance', [to]))
    const r = await runCli('tally', [
      'transfer',
      '--key',
      net.keyFile('faucet'),
      '--to',
      to,
      '--amount',
      '25',
      '--rpc',
      net.rpcUrl(0),
      '--json',
      '--genesis',
      net.genesisFile,
    ])
    assert.equal(r.code, 0, r.stderr)
    const { hash, height } = JSON.parse(r.stdout) as { hash: string; height: number }
    assert.match(hash, /^0x[0-9a-f]{64}$/)
    await net.waitHeight(height + 1)
    for (const i of all) {
      assert.equal(BigInt(await rpc<string>(net.rpcUrl(i), 'ledger_getBalance', [to])), before + 25n, `balance on node${i}`)
      const tx = await rpc<{ status: string; height: number; ok: boolean }>(net.rpcUrl(i), 'tx_get', [hash])
      assert.equal(tx.status, 'committed')
      assert.equal(tx.height, height)
      assert.equal(tx.ok, true)
    }
    assert.ok(faucet.address)
    await net.checkSameChain(height + 1)
  })

  test("serves /health and Prometheus /metrics, with the node's and the process's own metrics", async () => {
    const health = await fetch(`${net.rpcUrl(2)}/health`)
    assert.equal(health.status, 200)
    assert.deepEqual(await health.json(), { healthy: true })
    const text = await (await fetch(`${net.rpcUrl(2)}/metrics`)).text()
    const value = (name: string) => {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
      assert.ok(m, `${name} in /metrics`)
      return Number(m[1])
    }
    assert.ok(value('tally_height') >= 2)
    assert.ok(value('tally_peers') >= 2)
    assert.ok(value('tally_process_resident_memory_bytes') > 10 * 2 ** 20)
    assert.ok(value('tally_nodejs_heap_size_used_bytes') > 0)
  })

  test('kill -9 of one validator under load: the others go on, and it catches up after a restart', async () => {
    const load = new Load(readDevKey(net.keyFile('account1')), chainId, () => urlsExcept([3]), readDevKey(net.keyFile('account2')).address)
    await load.start()
    try {
      await waitFor('some load admitted', () => load.admitted > 20)
      await net.kill9(3)
      const h = (await net.height(0))!
      await net.waitHeight(h + 3, [0, 1, 2])
      net.start(3)
      const target = (await net.height(0))! + 1
      await net.waitHeight(target, all, 90_000)
    } finally {
      await load.stop()
    }
    assert.ok(load.admitted > 20)
    await net.checkSameChain((await net.height(0))! - 1)
  })

  test('kill -9 of two of four: progress stops without a fork, and resumes after restarts', async () => {
    await net.kill9(2)
    await net.kill9(3)
    const stalledAt = Math.max((await net.height(0))!, (await net.height(1))!)
    // With 2 of 4 validators, no block can gather 2f+1 = 3 precommits. Watch for a while that none appears
    // beyond the one that may already have been decided when the kill landed.
    const watchUntil = Date.now() + 4_000
    while (Date.now() < watchUntil) {
      assert.ok((await net.height(0))! <= stalledAt + 1, 'node0 advanced without a quorum')
      assert.ok((await net.height(1))! <= stalledAt + 1, 'node1 advanced without a quorum')
      await new Promise((r) => setTimeout(r, 250))
    }
    net.start(2)
    net.start(3)
    await net.waitHeight(stalledAt + 3, all, 90_000)
    await net.checkSameChain(stalledAt + 2)
  })

  test('a validator whose data/ is deleted syncs back to the same chain', async () => {
    await net.stop(1)
    rmSync(join(net.home(1), 'data'), { recursive: true, force: true })
    const h = (await net.height(0))!
    net.start(1)
    await net.waitHeight(h + 1, all, 90_000)
    await net.checkSameChain(h)
  })

  test('a validator killed mid-round, again and again, never signs a conflicting vote', async () => {
    const load = new Load(readDevKey(net.keyFile('account3')), chainId, () => urlsExcept([2]), readDevKey(net.keyFile('account0')).address)
    await load.start()
    try {
      for (let k = 0; k < 4; k++) {
        const h = (await net.height(0))!
        // kill at a different point of the round each time: after 0, 1, 2 or 3 further blocks plus a step
        await net.waitHeight(h + (k % 2), [0])
        await net.kill9(2)
        net.start(2)
        await net.waitHeight(h + 2, all, 90_000)
      }
    } finally {
      await load.stop()
    }
    for (const i of all) {
      const evidence = await rpc<unknown[]>(net.rpcUrl(i), 'chain_getEvidence')
      assert.deepEqual(evidence, [], `node${i} holds evidence of equivocation`)
    }
    await net.checkSameChain((await net.height(0))! - 1)
  })

  test('a libp2p peer outside the validator set is refused', async () => {
    // A node initialised with its own key, with the validators as peers, is not in the genesis set.
    const home = join(net.dir, 'outsider')
    const init = await runCli('tallyd', ['init', '--home', home, '--json'])
    assert.equal(init.code, 0, init.stderr)
    const created = JSON.parse(init.stdout) as { publicKey: string; address: string; peerId: string }
    assert.match(created.publicKey, /^0x[0-9a-f]{64}$/)
    assert.match(created.address, /^0x[0-9a-f]{40}$/)
    assert.match(created.peerId, /^12D3KooW/)
    const again = await runCli('tallyd', ['init', '--home', home])
    assert.notEqual(again.code, 0, 'init must refuse to overwrite a key')
    assert.match(again.stderr, /already exists/)
    const status = await rpc<{ peers: number }>(net.rpcUrl(0), 'node_status')
    const outsider = await import('./outsider.js')
    const refused = await outsider.dialRefused(join(net.dir, 'genesis.json'), net.p2pPort)
    assert.equal(refused, true, 'the outsider kept a connection to a validator')
    const after = await rpc<{ peers: number }>(net.rpcUrl(0), 'node_status')
    assert.equal(after.peers, status.peers)
    assert.equal(after.peers, 3)
  })
})
