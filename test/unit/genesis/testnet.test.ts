import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/bytes.js'
import { parseConfig } from '../../../genesis/config.js'
import { MAX_GENESIS_BALANCES, formatGenesis, genesisHash, parseGenesis } from '../../../genesis/genesis.js'
import { makeTestnet, testnetSeedCount, type TestnetOptions } from '../../../genesis/testnet.js'

// A stand-in for the node's libp2p peer id derivation: distinct and base58-shaped.
const peerIdOf = (pk: Uint8Array) => `12D3KooW${toHex(pk).replace(/[0l]/g, 'z').slice(0, 44)}`

function options(over: Partial<TestnetOptions> = {}): TestnetOptions {
  const validators = over.validators ?? 4
  const accounts = over.accounts ?? 2
  return {
    validators,
    accounts,
    chainId: 'tally-local',
    host: '127.0.0.1',
    p2pPort: 26656,
    rpcPort: 8545,
    balance: 1_000_000n,
    genesisTime: '2026-11-22T00:00:00Z',
    seeds: Array.from({ length: testnetSeedCount(validators, accounts) }, (_, i) => new Uint8Array(32).fill(i + 1)),
    ...over,
  }
}

test('a 4-validator testnet: names, ports, full-mesh peers, funded faucet and accounts, a valid genesis', () => {
  const r = makeTestnet(options(), { peerIdOf })
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error.errors))
  const t = r.value
  assert.deepEqual(
    t.validators.map((v) => v.name),
    ['node0', 'node1', 'node2', 'node3'],
  )
  t.validators.forEach((v, i) => {
    assert.equal(v.config.moniker, `node${i}`)
    assert.equal(v.config.p2p.listen, `127.0.0.1:${26656 + i}`)
    assert.equal(v.config.rpc.port, 8545 + i)
    assert.deepEqual(
      v.config.p2p.peers.map((p) => p.peerId).sort(),
      t.validators
        .filter((_, j) => j !== i)
        .map((o) => o.peerId)
        .sort(),
    )
    assert.equal(v.peerId, peerIdOf(v.nodeKey.publicKey))
    assert.notDeepEqual(v.nodeKey.publicKey, v.key.publicKey)
    assert.ok(parseConfig(JSON.parse(JSON.stringify(v.config))).ok)
  })
  assert.equal(t.accounts.length, 2)
  const reparsed = parseGenesis(JSON.parse(JSON.stringify(formatGenesis(t.genesis))))
  assert.ok(reparsed.ok)
  assert.deepEqual(genesisHash(reparsed.value), genesisHash(t.genesis))
  const balances = reparsed.value.balances
  assert.deepEqual(
    t.genesis.validators.map((v) => toHex(v.publicKey)),
    t.validators.map((v) => toHex(v.key.publicKey)),
  )
  const funded = new Set(balances.map((b) => toHex(b.address)))
  for (const a of [t.faucet, ...t.accounts]) assert.ok(funded.has(toHex(a.address)))
  assert.ok(balances.every((b) => b.amount === 1_000_000n))
})

test('unkeyed addresses are funded like the accounts, and have no keys in the testnet', () => {
  const unkeyed = Array.from({ length: 50 }, (_, i) => new Uint8Array(20).fill(i + 1))
  const unkeyedAddresses = new Uint8Array(20 * unkeyed.length)
  unkeyed.forEach((a, i) => {
    unkeyedAddresses.set(a, 20 * i)
  })
  const r = makeTestnet(options({ unkeyedAddresses }), { peerIdOf })
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error.errors))
  const t = r.value
  assert.equal(t.accounts.length, 2)
  assert.equal(t.genesis.balances.count, 1 + 2 + 50)
  const reparsed = parseGenesis(formatGenesis(t.genesis))
  assert.ok(reparsed.ok)
  const funded = new Map(reparsed.value.balances.map((b) => [toHex(b.address), b.amount]))
  assert.equal(funded.size, 1 + 2 + 50)
  for (const a of unkeyed) assert.equal(funded.get(toHex(a)), 1_000_000n)
})

test('the same seeds give the same testnet', () => {
  const a = makeTestnet(options(), { peerIdOf })
  const b = makeTestnet(options(), { peerIdOf })
  assert.ok(a.ok && b.ok)
  assert.deepEqual(genesisHash(a.value.genesis), genesisHash(b.value.genesis))
  assert.deepEqual(JSON.stringify(a.value.validators.map((v) => v.config)), JSON.stringify(b.value.validators.map((v) => v.config)))
})

test('bad options are reported in the genesis error style', () => {
  const cases: [Partial<TestnetOptions>, string][] = [
    [{ validators: 0, seeds: [] }, 'validators'],
    [{ seeds: [new Uint8Array(32)] }, 'seeds'],
    [{ p2pPort: 65534 }, 'p2pPort'],
    [{ p2pPort: 8545, rpcPort: 8545 }, 'rpcPort'],
    [{ p2pPort: 8546, rpcPort: 8545 }, 'rpcPort'],
    [{ p2pPort: 8542, rpcPort: 8545 }, 'rpcPort'],
    [{ chainId: 'bad chain' }, 'chainId'],
    [{ genesisTime: 'yesterday' }, 'genesisTime'],
    [{ balance: 2n ** 63n }, 'balances'],
    [{ host: 'bad host' }, 'node0.rpc.host'],
    [{ unkeyedAddresses: new Uint8Array(19) }, 'unkeyedAddresses'],
    [{ unkeyedAddresses: new Uint8Array(20 * (MAX_GENESIS_BALANCES - 2)) }, 'unkeyedAddresses'],
    [{ unkeyedAddresses: new Uint8Array(40) }, 'balances[4].address'],
  ]
  for (const [over, path] of cases) {
    const r = makeTestnet(options(over), { peerIdOf })
    assert.ok(!r.ok, path)
    assert.ok(
      r.error.errors.some((e) => e.path === path),
      `${path}: ${JSON.stringify(r.error.errors)}`,
    )
  }
})
