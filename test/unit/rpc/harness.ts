import { request } from 'node:http'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { Metrics } from '../../../rpc/metrics.js'
import { DEFAULT_RPC_SERVER_OPTIONS, RpcServer, type RpcServerOptions } from '../../../rpc/server.js'
import { TestBackend } from './testBackend.js'

/** Shared set-up for the RPC and wallet tests: funded keys, a test backend and a server on port 0. */

export const aliceSeed = new Uint8Array(32).fill(1)
export const bobSeed = new Uint8Array(32).fill(2)
export const alice = keyPairFromSeed(aliceSeed)
export const bob = keyPairFromSeed(bobSeed)
export const aliceAddress = addressFromPublicKey(alice.publicKey)
export const bobAddress = addressFromPublicKey(bob.publicKey)

/**
 * Options under which one client address may hold all of each byte budget, as behind a reverse proxy
 * (maxConnectionsPerAddress as high as maxConnections): for the tests of the bounds over all clients, whose clients all
 * come from 127.0.0.1.
 */
export const ONE_ADDRESS: Partial<RpcServerOptions> = Object.freeze({ maxConnectionsPerAddress: DEFAULT_RPC_SERVER_OPTIONS.maxConnections })

/** A running server over a fresh TestBackend. */
export interface Harness {
  backend: TestBackend
  server: RpcServer
  metrics: Metrics
  url: string
  close(): Promise<void>
}

export async function startHarness(
  options: Partial<RpcServerOptions> = {},
  backendOptions: ConstructorParameters<typeof TestBackend>[0] = {},
): Promise<Harness> {
  const backend = new TestBackend({ balances: [[aliceAddress, 1_000_000n]], ...backendOptions })
  const metrics = new Metrics()
  const server = new RpcServer({ host: '127.0.0.1', port: 0, ...options }, { backend, metrics })
  await server.start()
  return {
    backend,
    server,
    metrics,
    url: server.url,
    async close() {
      await server.stop()
      backend.close()
    },
  }
}

/** A raw HTTP exchange (status, headers, body text), for protocol-level assertions. */
export function httpRequest(
  url: string,
  options: { method?: string; path?: string; body?: string | Buffer; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method: options.method ?? 'POST',
        path: options.path ?? '/',
        headers: { 'content-type': 'application/json', ...options.headers },
        agent: false,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

/**
 * POSTs a JSON-RPC body and parses the answer (undefined for an empty 204); `localAddress` (127.0.0.2, …) makes the
 * request come from another loopback address.
 */
export async function rpc(url: string, body: unknown, localAddress?: string): Promise<{ status: number; json: any }> {
  const r = await httpRequest(url, { body: typeof body === 'string' ? body : JSON.stringify(body), localAddress })
  return { status: r.status, json: r.text === '' ? undefined : JSON.parse(r.text) }
}

/** Waits until `check` holds, polling, or throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The counts of `tally_rpc_refused_total` by reason (reasons never counted are absent). */
export async function refusals(metrics: Metrics): Promise<Record<string, number>> {
  const metric = metrics.registry.getSingleMetric('tally_rpc_refused_total')
  if (metric === undefined) return {}
  const out: Record<string, number> = {}
  for (const v of (await metric.get()).values) if (v.value > 0) out[String(v.labels.reason)] = v.value
  return out
}
