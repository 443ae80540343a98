import { fork, type ChildProcess } from 'node:child_process'
import { Agent } from 'node:http'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { to0x } from '../crypto/bytes.js'
import { keyPairFromSeed } from '../crypto/ed25519.js'
import { sha256 } from '../crypto/hash.js'
import { ok } from '../crypto/result.js'
import { encodeTransaction, signTransaction } from '../ledger/transaction.js'
import type { RpcBackend, SubmitResult } from '../rpc/backend.js'
import { RpcClient } from '../rpc/client.js'
import { Metrics } from '../rpc/metrics.js'
import { RpcServer } from '../rpc/server.js'
import { postJson } from './postJson.js'

/**
 * `node dist/bench/rpcRequests.js`: the CPU one JSON-RPC HTTP request costs the node's RPC server, and the client
 * that sends it, apart from what the node does with the transactions.
 *
 * The server runs in this process against a backend that admits every transaction at once (its hash is the answer),
 * so what is measured is the HTTP and JSON-RPC layer: koa, body reading, parsing, dispatch, metrics, the response.
 * A child process is the client: it sends `tx_submit` requests of real signed transfers over one keep-alive
 * connection, one request at a time (as a wallet does; `--concurrency` keeps more in flight over as many
 * connections; `--rpc-client` sends through the wallet's `RpcClient` instead), first single calls, then batches of
 * `--batch`. Each kind runs `--rounds` measured rounds after one unmeasured warm-up round, alternating kinds, and
 * reports each round's server and client CPU (user + system, from `process.cpuUsage`, not wall time) per request.
 * The server process does nothing else during a round, so its whole CPU is the server's.
 *
 * `node --cpu-prof dist/bench/rpcRequests.js` profiles the server only (the client is started without the flag).
 */

const program = new Command()
  .name('rpc-requests')
  .option('--requests <n>', 'requests per round', '5000')
  .option('--batch <n>', 'transfers in a batch request', '7')
  .option('--rounds <n>', 'measured rounds of each kind (after one warm-up round)', '3')
  .option('--concurrency <n>', 'requests in flight, each on its own keep-alive connection', '1')
  .option('--rpc-client', "send through the wallet's RpcClient instead of the submitter's request code")
  .option('--json', 'print the results as JSON')

/** What the parent asks the client to do. */
type ClientCommand = { cmd: 'run'; url: string; requests: number; batch: number; concurrency: number; rpcClient: boolean } | { cmd: 'exit' }

/** What the client reports for a run. */
interface ClientReport {
  readonly cpuUs: number
  readonly wallMs: number
  readonly errors: number
}

/** A round's figures. */
interface Round {
  readonly kind: string
  readonly serverUsPerRequest: number
  readonly clientUsPerRequest: number
  readonly serverSystemShare: number
  readonly requestsPerSecond: number
}

/** Signed transfers for the request bodies: real wire sizes, signed once at start-up. */
function transfers(count: number): string[] {
  const k = keyPairFromSeed(new Uint8Array(32).fill(3))
  const to = new Uint8Array(20).fill(0xbe)
  return Array.from({ length: count }, (_, n) =>
    to0x(encodeTransaction(signTransaction({ chainId: 'tally-bench', from: k.publicKey, to, amount: 1n, nonce: BigInt(n) }, k.secretKey))),
  )
}

/** The client: HTTP requests as the load bench's submitter makes them (Node's client, one keep-alive agent). */
async function client(): Promise<void> {
  const pool = transfers(512)
  process.on('message', (m: ClientCommand) => {
    if (m.cmd === 'exit') process.exit(0)
    void runClient(m, pool).then((r) => process.send!(r))
  })
  process.send!({ ready: true })
}

async function runClient(m: Extract<ClientCommand, { cmd: 'run' }>, pool: readonly string[]): Promise<ClientReport> {
  const agent = new Agent({ keepAlive: true, maxSockets: m.concurrency })
  const bodies = Array.from({ length: 64 }, (_, i) => {
    const members = Array.from({ length: m.batch }, (_, j) => ({ jsonrpc: '2.0', id: j, method: 'tx_submit', params: [pool[(i * m.batch + j) % pool.length]] }))
    return m.batch === 1 ? members[0] : members
  })
  const post = (body: unknown): Promise<unknown> => postJson(m.url, body, agent)
  /** Sends request `i` on lane `lane`; how many of its calls failed. */
  let lanePost = async (_lane: number, i: number): Promise<number> => {
    const res = (await post(bodies[i % bodies.length]).catch(() => undefined)) as { error?: unknown } | { error?: unknown }[] | undefined
    if (res === undefined) return 1
    if (Array.isArray(res)) return res.filter((r) => r.error !== undefined).length
    return res.error !== undefined ? 1 : 0
  }
  if (m.rpcClient) {
    // the wallet's client: one per lane, as each user has their own
    const clients = Array.from({ length: m.concurrency }, () => new RpcClient({ endpoints: [m.url], retries: 0 }))
    const calls = Array.from({ length: bodies.length }, (_, i) =>
      Array.from({ length: m.batch }, (_, j) => ({ method: 'tx_submit', params: [pool[(i * m.batch + j) % pool.length]!] })),
    )
    lanePost = async (lane, i) => {
      const c = clients[lane]!
      const members = calls[i % calls.length]!
      if (members.length === 1)
        return c.call('tx_submit', members[0]!.params).then(
          () => 0,
          () => 1,
        )
      return (await c.batch(members)).filter((a) => !a.ok).length
    }
  }
  let errors = 0
  let sent = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const lane = async (index: number) => {
    while (sent < m.requests) errors += await lanePost(index, sent++)
  }
  await Promise.all(Array.from({ length: m.concurrency }, (_, i) => lane(i)))
  const cpu = process.cpuUsage(cpu0)
  const wallMs = performance.now() - t0
  agent.destroy()
  return { cpuUs: cpu.user + cpu.system, wallMs, errors }
}

/** A backend that admits every transaction at once: the RPC layer's cost without the node's. */
function admittingBackend(): RpcBackend {
  const unserved = (): never => {
    throw new Error('not served by the benchmark backend')
  }
  return {
    status: unserved,
    getAccount: unserved,
    getNextNonce: unserved,
    submitTx: (bytes: Uint8Array): Promise<SubmitResult> => Promise.resolve(ok(sha256(bytes))),
    getTx: unserved,
    getBlock: unserved,
    getCommit: unserved,
    getValidators: unserved,
    getPendingChanges: unserved,
    health: () => ({ healthy: true }),
    onNewBlock: () => () => {},
    onTxCommitted: () => () => {},
  }
}

async function main(): Promise<void> {
  program.parse()
  const opts = program.opts<{ requests: string; batch: string; rounds: string; concurrency: string; rpcClient?: boolean; json?: boolean }>()
  const requests = Number(opts.requests)
  const rounds = Number(opts.rounds)
  const concurrency = Number(opts.concurrency)
  const kinds = [
    { kind: 'single', batch: 1 },
    { kind: `batch of ${opts.batch}`, batch: Number(opts.batch) },
  ]

  // the client's connections all come from loopback: as many as it opens
  const server = new RpcServer(
    { host: '127.0.0.1', port: 0, maxBatch: 100, maxConnectionsPerAddress: Math.max(concurrency, 1) },
    { backend: admittingBackend(), metrics: new Metrics() },
  )
  await server.start()
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--client'], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const replies: ((m: unknown) => void)[] = []
  child.on('message', (m) => replies.shift()?.(m))
  const next = () => new Promise<unknown>((r) => replies.push(r))
  await next()

  const round = async (batch: number): Promise<{ server: NodeJS.CpuUsage; client: ClientReport }> => {
    const reply = next()
    const cpu0 = process.cpuUsage()
    child.send({ cmd: 'run', url: server.url, requests, batch, concurrency, rpcClient: opts.rpcClient === true } satisfies ClientCommand)
    const client = (await reply) as ClientReport
    return { server: process.cpuUsage(cpu0), client }
  }

  const results: Round[] = []
  try {
    for (const k of kinds) await round(k.batch)
    for (let r = 0; r < rounds; r++) {
      for (const k of kinds) {
        const { server: cpu, client: c } = await round(k.batch)
        if (c.errors > 0) throw new Error(`${c.errors} requests failed`)
        const serverUs = cpu.user + cpu.system
        results.push({
          kind: k.kind,
          serverUsPerRequest: serverUs / requests,
          clientUsPerRequest: c.cpuUs / requests,
          serverSystemShare: cpu.system / serverUs,
          requestsPerSecond: requests / (c.wallMs / 1000),
        })
      }
    }
  } finally {
    child.send({ cmd: 'exit' } satisfies ClientCommand)
    await server.stop()
  }

  if (opts.json === true) {
    console.log(JSON.stringify({ requests, rounds, concurrency, results }))
    return
  }
  const via = opts.rpcClient === true ? "the wallet's RpcClient" : "the submitter's client"
  console.log(`${requests} requests per round through ${via}, ${concurrency} in flight; CPU µs per request (user + system)`)
  for (const k of kinds) {
    const rs = results.filter((r) => r.kind === k.kind)
    const fmt = (xs: number[]) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`
    console.log(
      `${k.kind.padEnd(11)} server ${fmt(rs.map((r) => r.serverUsPerRequest))} (system ${(100 * median(rs.map((r) => r.serverSystemShare))).toFixed(0)}%)` +
        `  client ${fmt(rs.map((r) => r.clientUsPerRequest))}  ${median(rs.map((r) => r.requestsPerSecond)).toFixed(0)} req/s`,
    )
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

if (process.argv.includes('--client')) await client()
else await main()
