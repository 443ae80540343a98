import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_CONFIG, isNetworkAddress, parseConfig } from '../../../genesis/config.js'

const PEER = '12D3KooWGoLdEnPeEr1111111111111111111111111111111111'
const PEER2 = '12D3KooWGoLdEnPeEr2222222222222222222222222222222222'
const PEER3 = '12D3KooWGoLdEnPeEr3333333333333333333333333333333333'
const PEER4 = '12D3KooWGoLdEnPeEr4444444444444444444444444444444444'

test('an empty config gets every default; given fields are kept', () => {
  const r = parseConfig({})
  assert.ok(r.ok)
  assert.deepEqual(r.value, DEFAULT_CONFIG)
  const full = {
    moniker: 'validator 1',
    p2p: {
      listen: '/ip4/0.0.0.0/tcp/26656',
      peers: [
        { peerId: PEER, address: 'node1.example.com:26657' },
        { peerId: PEER2, address: `/dns4/node1.example.com/tcp/26658/p2p/${PEER2}` },
      ],
      allowedPeerIds: [PEER],
    },
    rpc: {
      host: '0.0.0.0',
      port: 0,
      corsOrigins: ['*', 'http://localhost:3000', 'https://a.example:65535', 'http://[::1]:1', 'http://b.example'],
      maxBodyBytes: 2048,
      maxBatch: 5,
      requestTimeoutMs: 1000,
      maxConnections: 64,
      maxBodyBytesInFlight: 4096,
      maxConnectionsPerAddress: 16,
      maxResponseBytesInFlight: 8 * 1024 * 1024,
      maxResultBytesInFlight: 16 * 1024 * 1024,
      responseStallMs: 5000,
      wsPingIntervalMs: 15_000,
      wsMessageTimeoutMs: 20_000,
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
    [{ p2p: { allowedPeerIds: [PEER, PEER2, PEER] } }, 'p2p.allowedPeerIds[2]', /^duplicates p2p\.allowedPeerIds\[0\]$/],
    [
      {
        p2p: {
          peers: [
            { peerId: PEER, address: 'a:1' },
            { peerId: PEER2, address: 'a:1' },
          ],
        },
      },
      'p2p.peers[1].address',
      /^duplicates p2p\.peers\[0\]\.address$/,
    ],
    // one address in two spellings
    [
      {
        p2p: {
          peers: [
            { peerId: PEER, address: 'Node1.example:02665' },
            { peerId: PEER2, address: '/dns4/node1.example/tcp/2665' },
          ],
        },
      },
      'p2p.peers[1].address',
      /^duplicates p2p\.peers\[0\]\.address$/,
    ],
    [
      {
        p2p: {
          peers: [
            { peerId: PEER, address: '[::1]:7' },
            { peerId: PEER2, address: `/ip6/::1/tcp/7/p2p/${PEER2}` },
          ],
        },
      },
      'p2p.peers[1].address',
      /^duplicates p2p\.peers\[0\]\.address$/,
    ],
    // one IPv6 address in two of its textual forms (RFC 5952): zeros written out or compressed, letter case, an IPv4 tail
    ...(
      [
        ['/ip6/::1/tcp/1', '/ip6/0::1/tcp/1'],
        ['[::1]:1', '/ip6/0:0:0:0:0:0:0:1/tcp/1'],
        ['[2001:DB8::A]:5', '/ip6/2001:db8:0:0::a/tcp/5'],
        ['/ip6/2001:db8::1:0:0:1/tcp/5', '[2001:0db8:0000:0000:0001:0000:0000:0001]:5'],
        ['[::ffff:10.0.0.1]:9', '/ip6/::ffff:a00:1/tcp/9'],
      ] as const
    ).map(([a, b]): [unknown, string, RegExp] => [
      {
        p2p: {
          peers: [
            { peerId: PEER, address: a },
            { peerId: PEER2, address: b },
          ],
        },
      },
      'p2p.peers[1].address',
      /^duplicates p2p\.peers\[0\]\.address$/,
    ]),
    // the address names another peer than the entry's peer id: one of them is never dialed
    [{ p2p: { peers: [{ peerId: PEER, address: `/ip4/1.2.3.4/tcp/5/p2p/${PEER2}` }] } }, 'p2p.peers[0].address', /names peer .* not p2p\.peers\[0\]\.peerId/],
    [{ rpc: { corsOrigins: ['http://a:1', 'http://b', 'http://a:1'] } }, 'rpc.corsOrigins[2]', /^duplicates rpc\.corsOrigins\[0\]$/],
    [{ rpc: { port: 70000 } }, 'rpc.port', /between/],
    [{ rpc: { host: 'a b' } }, 'rpc.host', /host/],
    [{ rpc: { corsOrigins: ['ftp://x'] } }, 'rpc.corsOrigins[0]', /origin/],
    [{ rpc: { corsOrigins: ['http://a:0'] } }, 'rpc.corsOrigins[0]', /port from 1 to 65535/],
    [{ rpc: { corsOrigins: ['*', 'http://a:65536'] } }, 'rpc.corsOrigins[1]', /port from 1 to 65535/],
    [{ rpc: { corsOrigins: ['https://a.example:99999'] } }, 'rpc.corsOrigins[0]', /port from 1 to 65535/],
    [{ rpc: { corsOrigins: ['http://[::1]:0'] } }, 'rpc.corsOrigins[0]', /port from 1 to 65535/],
    [{ rpc: { corsOrigins: ['http://a.example:80'] } }, 'rpc.corsOrigins[0]', /as a browser sends it: http:\/\/a\.example$/],
    [{ rpc: { corsOrigins: ['https://a.example:443'] } }, 'rpc.corsOrigins[0]', /as a browser sends it: https:\/\/a\.example$/],
    [{ rpc: { corsOrigins: ['http://a.example:03000'] } }, 'rpc.corsOrigins[0]', /as a browser sends it: http:\/\/a\.example:3000$/],
    [{ rpc: { corsOrigins: ['http://App.Example'] } }, 'rpc.corsOrigins[0]', /as a browser sends it: http:\/\/app\.example$/],
    [{ rpc: { corsOrigins: ['http://[0:0::1]:3000'] } }, 'rpc.corsOrigins[0]', /as a browser sends it: http:\/\/\[::1\]:3000$/],
    [{ rpc: { corsOrigins: ['http://999.1.1.1'] } }, 'rpc.corsOrigins[0]', /origin like/],
    [{ rpc: { corsOrigins: ['http://[1::2::3]:3000'] } }, 'rpc.corsOrigins[0]', /origin like/],
    [{ rpc: { corsOrigins: ['http://127.1:3000'] } }, 'rpc.corsOrigins[0]', /as a browser sends it: http:\/\/127\.0\.0\.1:3000$/],
    [{ rpc: { maxBatch: 0 } }, 'rpc.maxBatch', /between/],
    [{ rpc: { maxConnections: 7 } }, 'rpc.maxConnections', /between/],
    [{ rpc: { host: '256.256.256.256' } }, 'rpc.host', /host/],
    [{ rpc: { host: '[:::::]' } }, 'rpc.host', /host/],
    [{ p2p: { listen: '256.1.1.1:80' } }, 'p2p.listen', /host:port/],
    [{ p2p: { listen: '/ip4/notanip/tcp/1' } }, 'p2p.listen', /host:port/],
    [{ p2p: { listen: '/ip6/1::2::3/tcp/1' } }, 'p2p.listen', /host:port/],
    [{ p2p: { peers: [{ peerId: PEER, address: '[:::::]:1' }] } }, 'p2p.peers[0].address', /host:port/],
    [{ rpc: { maxBodyBytes: 4096, maxBodyBytesInFlight: 2048 } }, 'rpc.maxBodyBytesInFlight', /at least rpc.maxBodyBytes \(4096\)/],
    [{ rpc: { maxConnectionsPerAddress: 0 } }, 'rpc.maxConnectionsPerAddress', /between/],
    [{ rpc: { maxConnections: 64, maxConnectionsPerAddress: 65 } }, 'rpc.maxConnectionsPerAddress', /at most rpc.maxConnections \(64\)/],
    [{ rpc: { maxResponseBytesInFlight: 1024 } }, 'rpc.maxResponseBytesInFlight', /between/],
    [{ rpc: { maxResultBytesInFlight: 1024 } }, 'rpc.maxResultBytesInFlight', /between/],
    [{ rpc: { responseStallMs: 999 } }, 'rpc.responseStallMs', /between/],
    [{ rpc: { wsPingIntervalMs: 999 } }, 'rpc.wsPingIntervalMs', /between/],
    [{ rpc: { wsMessageTimeoutMs: 600_001 } }, 'rpc.wsMessageTimeoutMs', /between/],
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
  const good = [
    '127.0.0.1:1',
    '255.255.255.255:1',
    'example.com:65535',
    'node-1:80',
    '[::1]:26656',
    '[2001:db8::8a2e:370:7334]:1',
    '[1:2:3:4:5:6:7:8]:1',
    '[::ffff:10.0.0.1]:1',
    '[::]:1',
    '/dns4/example.com/tcp/1',
    `/ip4/1.2.3.4/tcp/5/p2p/${PEER}`,
    '/ip6/fe80::1/tcp/1',
    '/dns4/tally_node0/tcp/26656',
    '/dns/example.com./tcp/1',
    '127.1:80',
  ]
  for (const ok of good) assert.ok(isNetworkAddress(ok, false), ok)
  const bad = [
    '127.0.0.1',
    ':80',
    'host:65536',
    'host:-1',
    'ho st:1',
    '/ip4/1.2.3.4/udp/5',
    '/ip4/1.2.3.4/tcp/99999',
    '256.1.1.1:1',
    '[1:2:3:4:5:6:7:8:9]:1',
    '[1::2::3]:1',
    '[12345::]:1',
    '[::ffff:10.0.0.256]:1',
    '/ip4/example.com/tcp/1',
    '/ip6/1.2.3.4/tcp/1',
    // a part with a leading zero: multiaddr refuses it when the node starts, and some parsers read it as octal
    '010.0.0.1:1',
    '/ip4/1.2.3.04/tcp/1',
    '[::ffff:10.0.0.01]:1',
    5,
  ]
  for (const b of bad) assert.ok(!isNetworkAddress(b, false), String(b))
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

test('p2p.peers: IPv6 addresses that differ in their groups or ports are distinct', () => {
  const r = parseConfig({
    p2p: {
      peers: [
        { peerId: PEER, address: '[::1]:1' },
        { peerId: PEER2, address: '/ip6/::2/tcp/1' },
        { peerId: PEER3, address: '[::1]:2' },
        { peerId: PEER4, address: '/ip6/1::/tcp/1' },
      ],
    },
  })
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error.errors))
  // the addresses are kept as written: only the duplicate check reads them in canonical form
  assert.deepEqual(
    r.value.p2p.peers.map((p) => p.address),
    ['[::1]:1', '/ip6/::2/tcp/1', '[::1]:2', '/ip6/1::/tcp/1'],
  )
})
