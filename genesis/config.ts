import { ok } from '../crypto/result.js'
import { FieldErrors, join, type ParseResult } from './fieldErrors.js'
import { PEER_ID_RE } from './genesis.js'

/**
 * A node's `config.json`: its name, networking, RPC, mempool, storage, memory and logging settings. Every field may be left out
 * (defaults: {@link DEFAULT_CONFIG}); unknown fields are errors, so a typo never passes silently.
 * Format: docs/formats.md, "Node configuration".
 */

/** Log levels, as pino names them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** A peer to dial: its libp2p peer id and its address (`host:port` or a multiaddr). */
export interface PeerAddress {
  readonly peerId: string
  readonly address: string
}

/** A validated node configuration. */
export interface NodeConfig {
  /** A human-readable node name, shown by `node_status`. */
  readonly moniker: string
  readonly p2p: {
    /** Where libp2p listens: `host:port` or a multiaddr (`/ip4/0.0.0.0/tcp/26656`). */
    readonly listen: string
    /** Peers to dial and keep connected (normally every other validator). */
    readonly peers: readonly PeerAddress[]
    /** Peer ids admitted besides the genesis validators (e.g. non-validator full nodes). */
    readonly allowedPeerIds: readonly string[]
    /**
     * An inbound socket that has not completed the Noise and Yamux handshakes within this many ms is closed;
     * absent: the p2p layer's default (docs/p2p.md). Raise it only for links with very high latency.
     */
    readonly inboundUpgradeTimeoutMs?: number
  }
  readonly rpc: {
    readonly host: string
    /** 0 picks a free port (tests). */
    readonly port: number
    /** Origins allowed by CORS: `*` or `http(s)://host[:port]`; empty = no CORS headers. */
    readonly corsOrigins: readonly string[]
    readonly maxBodyBytes: number
    /** Most requests in one JSON-RPC batch. */
    readonly maxBatch: number
    readonly requestTimeoutMs: number
    /** Most connections at once, HTTP and WebSocket together. */
    readonly maxConnections: number
    /** Most request-body bytes held at once over all requests (at least `maxBodyBytes`). */
    readonly maxBodyBytesInFlight: number
    /**
     * The server options below, when set; unset, the server's defaults (docs/rpc.md, "Limits"). Most connections at
     * once from one client address (by default a quarter of `maxConnections`; behind a reverse proxy, every client's).
     */
    readonly maxConnectionsPerAddress?: number
    /** Most answer bytes held at once for clients that have not taken them. */
    readonly maxResponseBytesInFlight?: number
    /** Most result bytes held at once by requests still running (a batch's answered members wait for the batch). */
    readonly maxResultBytesInFlight?: number
    /** How long a connection may take none of its answer before it is closed. */
    readonly responseStallMs?: number
    /** How often WebSocket clients are pinged; one that did not answer the previous ping is closed. */
    readonly wsPingIntervalMs?: number
    /** How long a WebSocket message may take to arrive whole. */
    readonly wsMessageTimeoutMs?: number
  }
  readonly mempool: {
    readonly maxTxs: number
    readonly maxBytes: number
    /** Most transactions one sender may have waiting beyond its next nonce. */
    readonly maxFuturePerSender: number
    /** Most pending transactions of one sender, so no single account can take the pool. */
    readonly maxTxsPerSender: number
    /** Most pending bytes of one sender. */
    readonly maxBytesPerSender: number
    /**
     * Most of the pool's count and bytes, in percent, that gapped transactions (an earlier nonce of their sender
     * missing) may hold, so they can never crowd out transactions a block could include.
     */
    readonly gappedSharePercent: number
    /** Committed heights after which a transaction still gapped leaves the pool as `expired`. */
    readonly gappedExpiryHeights: number
    /** Signature verification worker threads; absent: one less than the machine's cores, from 1 to 4. */
    readonly verifyWorkers?: number
  }
  readonly consensus: {
    /**
     * Pacing of this validator's proposals: in a round 0 it proposes no sooner than this many ms after the height
     * started, unless its mempool holds a full block (0: at once). Bounded at run time by half the propose timeout.
     */
    readonly minBlockIntervalMs: number
  }
  readonly storage: {
    /**
     * LevelDB's block cache, in bytes: decompressed copies of the chain database's blocks (nearly all are stored
     * compressed, the state tree's included).
     */
    readonly blockCacheBytes: number
  }
  readonly memory: {
    /**
     * How far V8 lets the old generation grow past what survived its last full collection before the next one, in
     * percent (0: V8's own choice, up to 4 times). Process-wide: `tallyd start` applies it at start.
     */
    readonly heapGrowingPercent: number
  }
  readonly logLevel: LogLevel
}

/** Bounds of `storage.blockCacheBytes`: 1 MiB to 2 GiB (LevelDB takes the size as a 32-bit number). */
export const BLOCK_CACHE_BYTES_RANGE: readonly [number, number] = [1024 * 1024, 2 * 1024 * 1024 * 1024]

/** Bounds of `memory.heapGrowingPercent` other than 0 (V8's own choice). */
export const HEAP_GROWING_PERCENT_RANGE: readonly [number, number] = [10, 300]

/** Default of `consensus.minBlockIntervalMs` (docs/performance.md, "What each change measured"). */
export const DEFAULT_MIN_BLOCK_INTERVAL_MS = 50

/** The configuration of a node whose `config.json` is `{}`. */
/** The `rpc` fields that set server options a node otherwise leaves at the server's defaults. */
const RPC_SERVER_FIELDS = [
  'maxConnectionsPerAddress',
  'maxResponseBytesInFlight',
  'maxResultBytesInFlight',
  'responseStallMs',
  'wsPingIntervalMs',
  'wsMessageTimeoutMs',
] as const

export const DEFAULT_CONFIG: NodeConfig = Object.freeze({
  moniker: 'tally-node',
  p2p: Object.freeze({ listen: '0.0.0.0:26656', peers: Object.freeze([]), allowedPeerIds: Object.freeze([]) }),
  rpc: Object.freeze({
    host: '127.0.0.1',
    port: 8545,
    corsOrigins: Object.freeze([]),
    maxBodyBytes: 1024 * 1024,
    maxBatch: 100,
    requestTimeoutMs: 10_000,
    maxConnections: 512,
    maxBodyBytesInFlight: 64 * 1024 * 1024,
  }),
  mempool: Object.freeze({
    maxTxs: 100_000,
    maxBytes: 32 * 1024 * 1024,
    maxFuturePerSender: 64,
    maxTxsPerSender: 10_000,
    maxBytesPerSender: 2 * 1024 * 1024,
    gappedSharePercent: 25,
    gappedExpiryHeights: 100,
  }),
  consensus: Object.freeze({ minBlockIntervalMs: DEFAULT_MIN_BLOCK_INTERVAL_MS }),
  storage: Object.freeze({ blockCacheBytes: 8 * 1024 * 1024 }),
  memory: Object.freeze({ heapGrowingPercent: 100 }),
  logLevel: 'info' as LogLevel,
})

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/
const MULTIADDR_RE = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/\s]+\/tcp\/(\d{1,5})(\/p2p\/[1-9A-HJ-NP-Za-km-z]+)?$/
const ORIGIN_RE = /^(\*|https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?|https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$/

/** `text` as browsers send an origin (the WHATWG URL serialization), or undefined when it is no URL at all. */
function browserOrigin(text: string): string | undefined {
  try {
    return new URL(text).origin
  } catch {
    return undefined
  }
}

/**
 * True when `text` is a dotted-quad IPv4 address: each part 0-255, without leading zeros (multiaddr refuses them, and
 * `inet_aton` and the WHATWG URL parser read `010` as octal: one text, two addresses).
 */
function isIPv4(text: string): boolean {
  const parts = text.split('.')
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)
}

/** True when `text` is an IPv6 address: eight groups of 1-4 hex digits, `::` once for a run of zeros, an IPv4 tail. */
function isIPv6(text: string): boolean {
  let s = text
  const v4 = /(?:^|:)(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4 !== null) {
    if (!isIPv4(v4[1]!)) return false
    s = `${s.slice(0, s.length - v4[1]!.length)}0:0` // the IPv4 tail stands for two groups
  }
  const halves = s.split('::')
  if (halves.length > 2) return false
  const groups = (h: string) => (h === '' ? [] : h.split(':'))
  const all = [...groups(halves[0]!), ...(halves.length === 2 ? groups(halves[1]!) : [])]
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false
  return halves.length === 2 ? all.length <= 7 : all.length === 8
}

/**
 * True when `text` is a host: a name, an IPv4 address (four parts of digits must each be 0-255: `256.1.1.1` is
 * refused here, not when the node starts), or a bracketed IPv6 address.
 */
function isHost(text: string): boolean {
  if (!HOST_RE.test(text)) return false
  if (text.startsWith('[')) return isIPv6(text.slice(1, -1))
  return /^\d+(\.\d+){3}$/.test(text) ? isIPv4(text) : true
}

/** True when `text` is `host:port` (host a name, IPv4 or [IPv6]) or a TCP multiaddr, with a port in range. */
export function isNetworkAddress(text: unknown, allowPortZero: boolean): text is string {
  if (typeof text !== 'string' || text.length > 256) return false
  let port: string
  const m = MULTIADDR_RE.exec(text)
  if (m !== null) {
    const host = text.split('/')[2]!
    // a DNS name is the resolver's to judge (Docker's service names hold underscores, a name may end in a dot)
    if (m[1] === 'ip4' ? !isIPv4(host) : m[1] === 'ip6' && !isIPv6(host)) return false
    port = m[2]!
  } else {
    const i = text.lastIndexOf(':')
    if (i <= 0 || !isHost(text.slice(0, i))) return false
    port = text.slice(i + 1)
  }
  if (!/^\d{1,5}$/.test(port)) return false
  const n = Number(port)
  return n <= 65535 && (allowPortZero || n > 0)
}

/**
 * Records that element `i` repeats an earlier element of its list (`value` seen at `pathOf(j)`) and remembers the
 * first element of each value. A repeat is never needed, so it stands for an entry that was meant to be another.
 */
function duplicate(e: FieldErrors, seen: Map<string, number>, value: string, i: number, pathOf: (j: number) => string): void {
  const first = seen.get(value)
  if (first === undefined) seen.set(value, i)
  else e.add(pathOf(i), `duplicates ${pathOf(first)}`)
}

/**
 * An IPv6 address {@link isIPv6} accepts in its canonical text (RFC 5952, as the WHATWG URL parser serializes it:
 * lowercase, leading zeros dropped, the longest run of zero groups compressed, an IPv4 tail in hex), so that
 * `0::1`, `0:0:0:0:0:0:0:1` and `::1` compare equal.
 */
function canonicalIPv6(text: string): string {
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1)
  } catch {
    return text.toLowerCase()
  }
}

/**
 * The parts of an address {@link isNetworkAddress} accepts, so that two spellings of one address compare equal: the
 * host in lowercase without brackets (an IPv6 address in canonical form), the port as a number, and the peer id of a
 * multiaddr's `/p2p/` part.
 */
function addressParts(address: string): { host: string; port: number; peer: string | undefined } {
  const m = MULTIADDR_RE.exec(address)
  if (m !== null) {
    const host = address.split('/')[2]!
    return { host: m[1] === 'ip6' ? canonicalIPv6(host) : host.toLowerCase(), port: Number(m[2]), peer: m[3]?.slice('/p2p/'.length) }
  }
  const i = address.lastIndexOf(':')
  const host = address.slice(0, i)
  return {
    host: host.startsWith('[') ? canonicalIPv6(host.slice(1, -1)) : host.toLowerCase(),
    port: Number(address.slice(i + 1)),
    peer: undefined,
  }
}

/** Validates a parsed `config.json`, filling defaults, or lists every problem, each naming its field. */
export function parseConfig(json: unknown): ParseResult<NodeConfig, 'invalid_config'> {
  const e = new FieldErrors()
  if (!e.object('', json, ['moniker', 'p2p', 'rpc', 'mempool', 'consensus', 'storage', 'memory', 'logLevel'])) return e.fail('invalid_config')
  const d = DEFAULT_CONFIG
  const moniker =
    json.moniker === undefined ? d.moniker : (e.string('moniker', json.moniker, /^[\x20-\x7e]{1,64}$/, '1-64 printable ASCII characters') ?? d.moniker)

  let p2p = d.p2p
  if (json.p2p !== undefined && e.object('p2p', json.p2p, ['listen', 'peers', 'allowedPeerIds', 'inboundUpgradeTimeoutMs'])) {
    const v = json.p2p
    let listen = d.p2p.listen
    if (v.listen !== undefined) {
      if (isNetworkAddress(v.listen, true)) listen = v.listen
      else e.add('p2p.listen', 'must be host:port or a TCP multiaddr')
    }
    const peers: PeerAddress[] = []
    if (v.peers !== undefined) {
      if (!Array.isArray(v.peers)) e.add('p2p.peers', 'must be an array')
      else {
        const seen = new Map<string, number>()
        // two peers at one address (in any spelling): one of them is never dialed where it listens
        const seenAddress = new Map<string, number>()
        v.peers.forEach((p: unknown, i: number) => {
          const path = join('p2p.peers', i)
          if (!e.object(path, p, ['peerId', 'address'], ['peerId', 'address'])) return
          const peerId = e.string(join(path, 'peerId'), p.peerId, PEER_ID_RE, 'a libp2p peer id (base58btc)')
          const address = isNetworkAddress(p.address, false) ? p.address : undefined
          if (address === undefined) e.add(join(path, 'address'), 'must be host:port or a TCP multiaddr (port 1-65535)')
          else {
            const { host, port, peer } = addressParts(address)
            duplicate(e, seenAddress, `${host}:${port}`, i, (j) => join(join('p2p.peers', j), 'address'))
            if (peer !== undefined && peerId !== undefined && peer !== peerId) e.add(join(path, 'address'), `names peer ${peer}, not ${join(path, 'peerId')}`)
          }
          if (peerId !== undefined) {
            duplicate(e, seen, peerId, i, (j) => join(join('p2p.peers', j), 'peerId'))
            if (address !== undefined) peers.push({ peerId, address })
          }
        })
      }
    }
    const allowedPeerIds: string[] = []
    if (v.allowedPeerIds !== undefined) {
      if (!Array.isArray(v.allowedPeerIds)) e.add('p2p.allowedPeerIds', 'must be an array')
      else {
        const seen = new Map<string, number>()
        v.allowedPeerIds.forEach((id: unknown, i: number) => {
          const ok = e.string(join('p2p.allowedPeerIds', i), id, PEER_ID_RE, 'a libp2p peer id (base58btc)')
          if (ok === undefined) return
          duplicate(e, seen, ok, i, (j) => join('p2p.allowedPeerIds', j))
          allowedPeerIds.push(ok)
        })
      }
    }
    const upgradeTimeout =
      v.inboundUpgradeTimeoutMs === undefined ? undefined : e.integer('p2p.inboundUpgradeTimeoutMs', v.inboundUpgradeTimeoutMs, 500, 60_000)
    p2p = { listen, peers, allowedPeerIds, ...(upgradeTimeout === undefined ? {} : { inboundUpgradeTimeoutMs: upgradeTimeout }) }
  }

  let rpc = d.rpc
  if (
    json.rpc !== undefined &&
    e.object('rpc', json.rpc, [
      'host',
      'port',
      'corsOrigins',
      'maxBodyBytes',
      'maxBatch',
      'requestTimeoutMs',
      'maxConnections',
      'maxBodyBytesInFlight',
      ...RPC_SERVER_FIELDS,
    ])
  ) {
    const v = json.rpc
    const int = (f: string, min: number, max: number, fallback: number) =>
      v[f] === undefined ? fallback : (e.integer(join('rpc', f), v[f], min, max) ?? fallback)
    let host = d.rpc.host
    if (v.host !== undefined) {
      if (typeof v.host === 'string' && v.host.length <= 253 && isHost(v.host)) host = v.host
      else e.add('rpc.host', 'must be a host name, an IPv4 address or a bracketed IPv6 address')
    }
    const corsOrigins: string[] = []
    if (v.corsOrigins !== undefined) {
      if (!Array.isArray(v.corsOrigins)) e.add('rpc.corsOrigins', 'must be an array')
      else {
        const seen = new Map<string, number>()
        v.corsOrigins.forEach((o: unknown, i: number) => {
          const path = join('rpc.corsOrigins', i)
          const ok = e.string(path, o, ORIGIN_RE, '"*" or an origin like http://localhost:3000')
          if (ok === undefined) return
          const port = /:(\d+)$/.exec(ok)?.[1]
          if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
            e.add(path, 'must have a port from 1 to 65535: no browser sends another')
            return
          }
          // the server compares origins as text, so one written otherwise than browsers send it never matches
          const sent = ok === '*' ? ok : browserOrigin(ok)
          if (sent === undefined) {
            e.add(path, 'must be "*" or an origin like http://localhost:3000')
            return
          }
          if (sent !== ok) {
            e.add(path, `must be written as a browser sends it: ${sent}`)
            return
          }
          duplicate(e, seen, ok, i, (j) => join('rpc.corsOrigins', j))
          corsOrigins.push(ok)
        })
      }
    }
    const maxBodyBytes = int('maxBodyBytes', 1024, 64 * 1024 * 1024, d.rpc.maxBodyBytes)
    const maxBodyBytesInFlight = int('maxBodyBytesInFlight', 1024, 4 * 1024 * 1024 * 1024, d.rpc.maxBodyBytesInFlight)
    if (maxBodyBytesInFlight < maxBodyBytes) e.add('rpc.maxBodyBytesInFlight', `must be at least rpc.maxBodyBytes (${maxBodyBytes})`)
    const maxConnections = int('maxConnections', 8, 65_535, d.rpc.maxConnections)
    // the server's own options, set only when given: unset, the server's defaults apply
    const optional = (f: (typeof RPC_SERVER_FIELDS)[number], min: number, max: number): { [k: string]: number } =>
      v[f] === undefined ? {} : { [f]: e.integer(join('rpc', f), v[f], min, max) ?? min }
    const perAddress = optional('maxConnectionsPerAddress', 1, 65_535)
    if ((perAddress.maxConnectionsPerAddress ?? 0) > maxConnections) {
      e.add('rpc.maxConnectionsPerAddress', `must be at most rpc.maxConnections (${maxConnections})`)
    }
    rpc = {
      host,
      port: int('port', 0, 65535, d.rpc.port),
      corsOrigins,
      maxBodyBytes,
      maxBatch: int('maxBatch', 1, 10_000, d.rpc.maxBatch),
      requestTimeoutMs: int('requestTimeoutMs', 100, 600_000, d.rpc.requestTimeoutMs),
      maxConnections,
      maxBodyBytesInFlight,
      ...perAddress,
      ...optional('maxResponseBytesInFlight', 1024 * 1024, 4 * 1024 * 1024 * 1024),
      ...optional('maxResultBytesInFlight', 1024 * 1024, 4 * 1024 * 1024 * 1024),
      ...optional('responseStallMs', 1000, 600_000),
      ...optional('wsPingIntervalMs', 1000, 3_600_000),
      ...optional('wsMessageTimeoutMs', 1000, 600_000),
    }
  }

  let mempool = d.mempool
  const mempoolFields = [
    'maxTxs',
    'maxBytes',
    'maxFuturePerSender',
    'maxTxsPerSender',
    'maxBytesPerSender',
    'gappedSharePercent',
    'gappedExpiryHeights',
    'verifyWorkers',
  ]
  if (json.mempool !== undefined && e.object('mempool', json.mempool, mempoolFields)) {
    const v = json.mempool
    const int = (f: string, min: number, max: number, fallback: number) =>
      v[f] === undefined ? fallback : (e.integer(join('mempool', f), v[f], min, max) ?? fallback)
    mempool = {
      maxTxs: int('maxTxs', 1, 10_000_000, d.mempool.maxTxs),
      maxBytes: int('maxBytes', 1024, 4 * 1024 * 1024 * 1024, d.mempool.maxBytes),
      maxFuturePerSender: int('maxFuturePerSender', 0, 100_000, d.mempool.maxFuturePerSender),
      maxTxsPerSender: int('maxTxsPerSender', 1, 10_000_000, d.mempool.maxTxsPerSender),
      maxBytesPerSender: int('maxBytesPerSender', 1024, 4 * 1024 * 1024 * 1024, d.mempool.maxBytesPerSender),
      gappedSharePercent: int('gappedSharePercent', 1, 100, d.mempool.gappedSharePercent),
      gappedExpiryHeights: int('gappedExpiryHeights', 1, 1_000_000, d.mempool.gappedExpiryHeights),
      ...(v.verifyWorkers === undefined ? {} : { verifyWorkers: int('verifyWorkers', 0, 64, 0) }),
    }
  }

  let consensus = d.consensus
  if (json.consensus !== undefined && e.object('consensus', json.consensus, ['minBlockIntervalMs'])) {
    const v = json.consensus.minBlockIntervalMs
    consensus = { minBlockIntervalMs: v === undefined ? d.consensus.minBlockIntervalMs : (e.integer('consensus.minBlockIntervalMs', v, 0, 60_000) ?? 0) }
  }

  let storage = d.storage
  if (json.storage !== undefined && e.object('storage', json.storage, ['blockCacheBytes'])) {
    const v = json.storage
    const [min, max] = BLOCK_CACHE_BYTES_RANGE
    storage = {
      blockCacheBytes:
        v.blockCacheBytes === undefined
          ? d.storage.blockCacheBytes
          : (e.integer('storage.blockCacheBytes', v.blockCacheBytes, min, max) ?? d.storage.blockCacheBytes),
    }
  }

  let memory = d.memory
  if (json.memory !== undefined && e.object('memory', json.memory, ['heapGrowingPercent'])) {
    const v = json.memory.heapGrowingPercent
    const [min, max] = HEAP_GROWING_PERCENT_RANGE
    if (v !== undefined) {
      if (typeof v === 'number' && (v === 0 || (Number.isSafeInteger(v) && v >= min && v <= max))) memory = { heapGrowingPercent: v }
      else e.add('memory.heapGrowingPercent', `must be 0 (V8's own choice) or an integer from ${min} to ${max}`)
    }
  }

  let logLevel = d.logLevel
  if (json.logLevel !== undefined) {
    if ((LOG_LEVELS as readonly unknown[]).includes(json.logLevel)) logLevel = json.logLevel as LogLevel
    else e.add('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`)
  }

  if (!e.empty) return e.fail('invalid_config')
  return ok({ moniker, p2p, rpc, mempool, consensus, storage, memory, logLevel })
}
