import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_CONFIG, isNetworkAddress, parseConfig } from '../../../genesis/config.js'

const PEER = '12D3KooWGoLdEnPeEr1111111111111111111111111111111111'

test('an empty config gets every default; given fields are kept', () => {
  const r = parseConfig({})
  assert.ok(r.ok)
  assert.deepEqual(r.value, DEFAULT_CONFIG)
  const full = {
    moniker: 'validator 1',
    p2p: { listen: '/ip4/0.0.0.0/tcp/26656', peers: [{ peerId: PEER, address: 'node1.example.com:26657' }], allowedPeerIds: [PEER] },
    rpc: {
      host: '0.0.0.0',
      port: 0,
      corsOrigins: ['*', 'http://localhost:3000'],
      maxBodyBytes: 2048,
      maxBatch: 5,
      requestTimeoutMs: 1000,
      maxConnections: 64,
      maxBodyBytesInFlight: 4096,
    },
    mempool: {
      maxTxs: 10,
      maxBytes: 4096,
      maxFuturePerSender: 0,
      maxTxsPerSender: 5,
      maxBytesPerSender: 2048,
      gappedSharePercent: 50,
      gappedExpiryHeights: 7,
      verifyWorkers: 2,
    },
    consensus: { minBlockIntervalMs: 0 },
    storage: { blockCacheBytes: 64 * 1024 * 1024 },
    memory: { heapGrowingPercent: 0 },
    logLevel: 'debug',
  }
  const f = parseConfig(full)
  assert.ok(f.ok)
  assert.deepEqual(f.value, full)
  const partial = parseConfig({ rpc: { port: 9000 } })
  assert.ok(partial.ok)
  assert.equal(partial.value.rpc.port, 9000)
  assert.equal(partial.value.rpc.maxBatch, DEFAULT_CONFIG.rpc.maxBatch)
})

test('each problem is reported with its field', () => {
  const rows: [unknown, string, RegExp][] = [
    [{ nick: 'x' }, 'nick', /unknown field/],
    [{ moniker: '' }, 'moniker', /printable/],
    [{ p2p: { listen: 'localhost' } }, 'p2p.listen', /host:port/],
    [{ p2p: { peers: [{ peerId: PEER, address: 'host:0' }] } }, 'p2p.peers[0].address', /port 1-65535/],
    [{ p2p: { peers: [{ peerId: PEER }] } }, 'p2p.peers[0].address', /required/],
    [
      {
        p2p: {
          peers: [
            { peerId: PEER, address: 'a:1' },
            { peerId: PEER, address: 'b:1' },
          ],
        },
      },
      'p2p.peers[1].peerId',
      /duplicates/,
    ],
    [{ p2p: { allowedPeerIds: ['bad id'] } }, 'p2p.allowedPeerIds[0]', /peer id/],
    [{ rpc: { port: 70000 } }, 'rpc.port', /between/],
    [{ rpc: { host: 'a b' } }, 'rpc.host', /host/],
    [{ rpc: { corsOrigins: ['ftp://x'] } }, 'rpc.corsOrigins[0]', /origin/],
    [{ rpc: { maxBatch: 0 } }, 'rpc.maxBatch', /between/],
    [{ rpc: { maxConnections: 7 } }, 'rpc.maxConnections', /between/],
    [{ rpc: { maxBodyBytes: 4096, maxBodyBytesInFlight: 2048 } }, 'rpc.maxBodyBytesInFlight', /at least rpc.maxBodyBytes \(4096\)/],
    [{ mempool: { maxTxs: 1.5 } }, 'mempool.maxTxs', /integer/],
    [{ mempool: { size: 1 } }, 'mempool.size', /unknown/],
    [{ mempool: { verifyWorkers: 65 } }, 'mempool.verifyWorkers', /between/],
    [{ mempool: { verifyWorkers: '2' } }, 'mempool.verifyWorkers', /integer/],
    [{ mempool: { maxTxsPerSender: 0 } }, 'mempool.maxTxsPerSender', /between/],
    [{ mempool: { maxBytesPerSender: 1023 } }, 'mempool.maxBytesPerSender', /between/],
    [{ mempool: { gappedSharePercent: 0 } }, 'mempool.gappedSharePercent', /between/],
    [{ mempool: { gappedSharePercent: 101 } }, 'mempool.gappedSharePercent', /between/],
    [{ mempool: { gappedExpiryHeights: 0 } }, 'mempool.gappedExpiryHeights', /between/],
    [{ mempool: { gappedExpiryHeights: 2.5 } }, 'mempool.gappedExpiryHeights', /integer/],
    [{ storage: { blockCacheBytes: 1024 * 1024 - 1 } }, 'storage.blockCacheBytes', /must be between 1048576 and 2147483648/],
    [{ storage: { blockCacheBytes: 2 * 1024 * 1024 * 1024 + 1 } }, 'storage.blockCacheBytes', /must be between 1048576 and 2147483648/],
    [{ storage: { blockCacheBytes: '8MiB' } }, 'storage.blockCacheBytes', /integer/],
    [{ memory: { heapGrowingPercent: 5 } }, 'memory.heapGrowingPercent', /0 \(V8's own choice\) or an integer from 10 to 300/],
    [{ memory: { heapGrowingPercent: 301 } }, 'memory.heapGrowingPercent', /from 10 to 300/],
    [{ memory: { heapGrowingPercent: 50.5 } }, 'memory.heapGrowingPercent', /from 10 to 300/],
    [{ memory: { heapGrowingPercent: '50' } }, 'memory.heapGrowingPercent', /from 10 to 300/],
    [{ memory: { growth: 50 } }, 'memory.growth', /unknown field/],
    [{ storage: { cacheSize: 1 } }, 'storage.cacheSize', /unknown field/],
    [{ consensus: { minBlockIntervalMs: -1 } }, 'consensus.minBlockIntervalMs', /must be between 0 and 60000/],
    [{ consensus: { minBlockIntervalMs: 1.5 } }, 'consensus.minBlockIntervalMs', /integer/],
    [{ consensus: { timeoutCommit: 1 } }, 'consensus.timeoutCommit', /unknown field/],
    [{ storage: 8388608 }, 'storage', /object/],
    [{ logLevel: 'loud' }, 'logLevel', /one of/],
    [[], '', /object/],
  ]
  for (const [json, path, message] of rows) {
    const r = parseConfig(json)
    assert.ok(!r.ok, path)
    const hit = r.error.errors.find((e) => e.path === path)
    assert.ok(hit !== undefined, `${path}: got ${JSON.stringify(r.error.errors)}`)
    assert.match(hit.message, message)
  }
})

test('network addresses: host:port, [ipv6]:port or a TCP multiaddr', () => {
  for (const ok of ['127.0.0.1:1', 'example.com:65535', '[::1]:26656', '/dns4/example.com/tcp/1', `/ip4/1.2.3.4/tcp/5/p2p/${PEER}`])
    assert.ok(isNetworkAddress(ok, false), ok)
  for (const bad of ['127.0.0.1', ':80', 'host:65536', 'host:-1', 'ho st:1', '/ip4/1.2.3.4/udp/5', '/ip4/1.2.3.4/tcp/99999', 5])
    assert.ok(!isNetworkAddress(bad, false), String(bad))
  assert.ok(isNetworkAddress('0.0.0.0:0', true))
  assert.ok(!isNetworkAddress('0.0.0.0:0', false))
})

test('storage.blockCacheBytes: 8 MiB by default, 1 MiB to 2 GiB accepted', () => {
  const empty = parseConfig({ storage: {} })
  assert.ok(empty.ok)
  assert.equal(empty.value.storage.blockCacheBytes, 8 * 1024 * 1024)
  for (const n of [1024 * 1024, 2 * 1024 * 1024 * 1024]) {
    const r = parseConfig({ storage: { blockCacheBytes: n } })
    assert.ok(r.ok, String(n))
    assert.equal(r.value.storage.blockCacheBytes, n)
  }
})

test('memory.heapGrowingPercent: 100 by default, 0 or 10 to 300 accepted', () => {
  const empty = parseConfig({ memory: {} })
  assert.ok(empty.ok)
  assert.equal(empty.value.memory.heapGrowingPercent, 100)
  for (const n of [0, 10, 300]) {
    const r = parseConfig({ memory: { heapGrowingPercent: n } })
    assert.ok(r.ok, String(n))
    assert.equal(r.value.memory.heapGrowingPercent, n)
  }
})
