import { spawn, type ChildProcess } from 'node:child_process'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer } from 'node:net'
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nodeProcessEnv } from '../../node/memorySettings.js'
import { repoRoot } from '../helpers/fixtures.js'
import { forgeAccountAnswer } from '../unit/rpc/light/forge.js'

/**
 * The e2e harness: real `tallyd` and `tally` processes started through the real CLI, on 127.0.0.1,
 * in a temp dir that is removed at the end. Every wait is on a condition with a deadline, never a fixed sleep.
 */

const TALLYD = join(repoRoot, 'bin', 'tallyd.js')
const TALLY = join(repoRoot, 'bin', 'tally.js')

const live = new Set<ChildProcess>()
/** The wallet's light store for every `tally` this process runs (never the user's ~/.tally), removed at exit. */
let lightDir: string | undefined
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL')
  if (lightDir !== undefined) rmSync(lightDir, { recursive: true, force: true })
})

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v as T
    } catch (e) {
      lastError = e
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * Finds `count` consecutive free ports, starting from a pid-dependent base to keep parallel runs apart, below the
 * range Linux hands out as source ports of outgoing connections (32768 and up), so that a port found free is not
 * taken by some connection before a validator (re)starts on it.
 */
export async function freePortRange(count: number): Promise<number> {
  let base = 20000 + ((process.pid * 37) % 12000)
  for (let attempt = 0; attempt < 200; attempt++, base += count + 7) {
    let ok = true
    for (let i = 0; i < count && ok; i++) ok = await portFree(base + i)
    if (ok) return base
  }
  throw new Error('no free port range')
}

/** One JSON-RPC call over HTTP; returns `result` or throws with the error message and reason. */
export async function rpc<T = any>(url: string, method: string, params: unknown[] = [], timeoutMs = 5_000): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(timeoutMs),
  })
  const body = (await res.json()) as { result?: T; error?: { code: number; message: string; data?: { reason?: string } } }
  if (body.error) {
    const err = new Error(`${method}: ${body.error.message}`) as Error & { code?: number; reason?: string }
    err.code = body.error.code
    err.reason = body.error.data?.reason
    throw err
  }
  return body.result as T
}

/** The outcome of a finished CLI run. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs a CLI (`tallyd` or `tally`) to completion with a deadline. `tally` keeps its light store in a directory of
 * this test process (`TALLY_LIGHT_DIR`) unless `opts.env` names one.
 */
export function runCli(
  bin: 'tallyd' | 'tally',
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  if (bin === 'tally') lightDir ??= mkdtempSync(join(tmpdir(), 'tally-e2e-light-'))
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin === 'tallyd' ? TALLYD : TALLY, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...(bin === 'tally' ? { TALLY_LIGHT_DIR: lightDir! } : {}), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    live.add(p)
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    p.stdin.end(opts.input ?? '')
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      reject(new Error(`${bin} ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, opts.timeoutMs ?? 60_000)
    p.on('close', (code) => {
      clearTimeout(timer)
      live.delete(p)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}

/** A block as `chain_getBlock` returns it (the fields the tests read). */
export interface BlockView {
  height: number
  hash: string
  header: { stateRoot: string; previousBlockHash: string; [k: string]: unknown }
  txs: string[]
  commit: unknown
}

/** A local testnet of real validator processes. */
export class Testnet {
  readonly dir: string
  readonly p2pPort: number
  readonly rpcPort: number
  readonly procs: (ChildProcess | undefined)[]

  private constructor(
    readonly size: number,
    dir: string,
    p2pPort: number,
    rpcPort: number,
  ) {
    this.dir = dir
    this.p2pPort = p2pPort
    this.rpcPort = rpcPort
    this.procs = new Array(size).fill(undefined)
  }

  /**
   * Generates a testnet with `tallyd testnet` in a fresh temp dir (not started). `spareNodes` reserves the ports of
   * that many more nodes (index `size` and up, see {@link initNode}).
   */
  static async create(size = 4, extraArgs: string[] = [], options: { spareNodes?: number } = {}): Promise<Testnet> {
    const dir = mkdtempSync(join(tmpdir(), 'tally-e2e-'))
    const nodes = size + (options.spareNodes ?? 0)
    const base = await freePortRange(nodes * 2 + 2)
    const net = new Testnet(size, dir, base, base + nodes + 1)
    const r = await runCli('tallyd', [
      'testnet',
      '--validators',
      String(size),
      '--out',
      dir,
      '--chain-id',
      'tally-e2e',
      '--p2p-port',
      String(net.p2pPort),
      '--rpc-port',
      String(net.rpcPort),
      '--accounts',
      '4',
      ...extraArgs,
    ])
    if (r.code !== 0) throw new Error(`tallyd testnet failed: ${r.stderr}`)
    return net
  }

  /**
   * Rewrites `params` of the genesis (every home's copy and the testnet's own) before the first start: short
   * timeouts keep a test's heights short. Fields not given keep their values.
   */
  setGenesisParams(params: Record<string, unknown>): void {
    const path = join(this.dir, 'genesis.json')
    const g = JSON.parse(readFileSync(path, 'utf8')) as { params: Record<string, unknown> }
    for (const [k, v] of Object.entries(params)) {
      const old = g.params[k]
      g.params[k] = typeof v === 'object' && v !== null && typeof old === 'object' && old !== null ? { ...old, ...v } : v
    }
    const text = `${JSON.stringify(g, null, 2)}\n`
    writeFileSync(path, text)
    for (let i = 0; i < this.size; i++) writeFileSync(join(this.home(i), 'genesis.json'), text)
  }

  /** Reads and rewrites node i's config.json. */
  editConfig(i: number, edit: (config: Record<string, any>) => void): void {
    const path = join(this.home(i), 'config.json')
    const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>
    edit(config)
    writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`)
  }

  /**
   * Creates the home of node i (i >= size, on the ports {@link create} reserved) as an operator joining the running
   * network does: `tallyd init` (a validator key unless `fullNode`), the network's genesis copied in, the
   * testnet's validators listed as peers. Returns what `init --json` printed.
   */
  async initNode(i: number, options: { fullNode?: boolean } = {}): Promise<{ peerId: string; publicKey?: string; address?: string }> {
    const r = await runCli('tallyd', [
      'init',
      '--home',
      this.home(i),
      '--moniker',
      `node${i}`,
      '--p2p-port',
      String(this.p2pPort + i),
      '--rpc-port',
      String(this.rpcPort + i),
      ...(options.fullNode ? ['--full-node'] : []),
      '--json',
    ])
    if (r.code !== 0) throw new Error(`tallyd init failed: ${r.stderr}`)
    copyFileSync(join(this.dir, 'genesis.json'), join(this.home(i), 'genesis.json'))
    const node0 = JSON.parse(readFileSync(join(this.home(0), 'config.json'), 'utf8')) as Record<string, any>
    const own = JSON.parse((await runCli('tallyd', ['genesis', 'show-key', '--home', this.home(0)])).stdout) as { peerId: string }
    this.editConfig(i, (c) => {
      c.p2p.listen = `127.0.0.1:${this.p2pPort + i}`
      c.p2p.peers = [{ peerId: own.peerId, address: node0.p2p.listen }, ...node0.p2p.peers]
      c.rpc.host = '127.0.0.1'
      c.mempool = { ...c.mempool, ...(node0.mempool?.verifyWorkers === undefined ? {} : { verifyWorkers: node0.mempool.verifyWorkers }) }
    })
    return JSON.parse(r.stdout) as { peerId: string; publicKey?: string; address?: string }
  }

  /** Deletes node i's `data/` (it must be stopped): on restart it syncs the chain from its peers. */
  wipeData(i: number): void {
    if (this.procs[i]) throw new Error(`node${i} is running`)
    rmSync(join(this.home(i), 'data'), { recursive: true, force: true })
  }

  home(i: number): string {
    return join(this.dir, `node${i}`)
  }

  /** The testnet's genesis file: the trusted starting point of the wallet's verification. */
  get genesisFile(): string {
    return join(this.dir, 'genesis.json')
  }

  rpcUrl(i: number): string {
    return `http://127.0.0.1:${this.rpcPort + i}`
  }

  keyFile(name: string): string {
    return join(this.dir, 'keys', `${name}.json`)
  }

  /** Starts validator i (`tallyd start --home …`), logging to node{i}/tallyd.log. */
  start(i: number): void {
    if (this.procs[i]) throw new Error(`node${i} already running`)
    const log = openSync(join(this.dir, `node${i}.log`), 'a')
    const p = spawn(process.execPath, [TALLYD, 'start', '--home', this.home(i)], { cwd: repoRoot, env: nodeProcessEnv(), stdio: ['ignore', log, log] })
    closeSync(log)
    live.add(p)
    p.on('exit', () => live.delete(p))
    this.procs[i] = p
  }

  startAll(): void {
    for (let i = 0; i < this.size; i++) this.start(i)
  }

  /** Kills validator i with SIGKILL (a crash) and waits for the process to be gone. */
  async kill9(i: number): Promise<void> {
    await this.stopProc(i, 'SIGKILL')
  }

  /** Stops validator i with SIGTERM (a clean shutdown), falling back to SIGKILL after 10 s. */
  async stop(i: number): Promise<void> {
    await this.stopProc(i, 'SIGTERM')
  }

  private async stopProc(i: number, signal: NodeJS.Signals): Promise<void> {
    const p = this.procs[i]
    this.procs[i] = undefined
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const gone = new Promise<void>((r) => p.once('exit', () => r()))
    p.kill(signal)
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await gone
    clearTimeout(t)
  }

  /** Height reported by node i, or undefined when it does not answer. */
  async height(i: number): Promise<number | undefined> {
    try {
      return (await rpc<{ height: number }>(this.rpcUrl(i), 'node_status', [], 2_000)).height
    } catch {
      return undefined
    }
  }

  /** `node_status` of node i. */
  status(i: number): Promise<{ height: number; validator: string | null; catchingUp: boolean; peers: number; nodeId: string }> {
    return rpc(this.rpcUrl(i), 'node_status', [], 2_000)
  }

  /** Waits until every listed node reports at least `height`. */
  async waitHeight(height: number, nodes: number[] = [...Array(this.size).keys()], timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `height ${height} on nodes ${nodes.join(',')}`,
      async () => {
        for (const i of nodes) if (((await this.height(i)) ?? -1) < height) return false
        return true
      },
      timeoutMs,
      200,
    )
  }

  /** Block `height` from node i. */
  block(i: number, height?: number): Promise<BlockView | null> {
    return rpc<BlockView | null>(this.rpcUrl(i), 'chain_getBlock', height === undefined ? [] : [height])
  }

  /**
   * Asserts-by-throwing that the listed nodes hold identical blocks (hash and state root) at heights 1..upTo. Waits
   * first until each of them holds upTo: a node that restarted or synced may still be a block or two behind.
   */
  async checkSameChain(upTo: number, nodes: number[] = [...Array(this.size).keys()]): Promise<void> {
    await this.waitHeight(upTo, nodes, 60_000)
    for (let h = 1; h <= upTo; h++) {
      let first: BlockView | null = null
      for (const i of nodes) {
        const b = await this.block(i, h)
        if (!b) throw new Error(`node${i} has no block ${h}`)
        if (first === null) first = b
        else if (b.hash !== first.hash || b.header.stateRoot !== first.header.stateRoot) {
          throw new Error(`fork at height ${h}: node${nodes[0]} ${first.hash} vs node${i} ${b.hash}`)
        }
      }
    }
  }

  /** The tail of node i's log, for failure messages. */
  logTail(i: number, lines = 40): string {
    const f = join(this.dir, `node${i}.log`)
    if (!existsSync(f)) return ''
    return readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n')
  }

  /** Stops every node and removes the temp dir (kept, with its logs, when TALLY_E2E_KEEP is set). */
  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((_, i) => this.stopProc(i, 'SIGKILL')))
    if (process.env.TALLY_E2E_KEEP) console.log(`# kept ${this.dir}`)
    else rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * The ways {@link LyingProxy} alters a node's answers (one at a time):
 * - `balance` / `nonce`: the account's balance or nonce in `ledger_getAccount`/`ledger_getBalance` (plain or proof);
 * - `status`: a committed transaction reported failed in `tx_get`;
 * - `header`: an account proof answer rewritten whole for a larger balance: a proof that holds, a header with the
 *   state root it implies, the commit naming that header (only the signatures cannot follow);
 * - `certificate`: the commit of every proof answer and `chain_getCommit` cut to one signature;
 * - `signature`: one byte of every signature of those commits flipped.
 */
export type LieMode = 'balance' | 'nonce' | 'status' | 'header' | 'certificate' | 'signature'

type Json = Record<string, any>

/**
 * A JSON-RPC endpoint that lies: an HTTP proxy in front of one node (POST only; no WebSocket) that passes every call
 * on and alters the answers one way, counting the answers it altered.
 */
export class LyingProxy {
  /** Answers altered so far. */
  lies = 0

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly target: string,
    public mode: LieMode,
  ) {}

  static async start(target: string, mode: LieMode): Promise<LyingProxy> {
    let proxy: LyingProxy | undefined
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        void proxy!.relay(Buffer.concat(chunks).toString('utf8')).then(
          (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(body),
          () => res.writeHead(502).end(),
        )
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    proxy = new LyingProxy(server, `http://127.0.0.1:${port}`, target, mode)
    return proxy
  }

  private async relay(text: string): Promise<string> {
    const request = JSON.parse(text) as Json | Json[]
    const res = await fetch(`${this.target}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: text,
      signal: AbortSignal.timeout(5_000),
    })
    const answer = (await res.json()) as Json | Json[]
    const calls = new Map<unknown, Json>()
    for (const r of Array.isArray(request) ? request : [request]) calls.set(r.id, r)
    const alter = (a: Json) => {
      const call = calls.get(a.id)
      if (call === undefined || a.result === undefined || a.result === null) return a
      const result = this.alter(call.method as string, (call.params ?? []) as unknown[], a.result)
      if (result !== a.result) this.lies++
      return { ...a, result }
    }
    return JSON.stringify(Array.isArray(answer) ? answer.map(alter) : alter(answer))
  }

  private alter(method: string, params: unknown[], result: any): any {
    const isAccount = method === 'ledger_getAccount' || method === 'ledger_getBalance'
    const withProof = (params[1] as Json | undefined)?.proof === true
    const commitOf = (r: Json, change: (c: Json) => Json) => (r.commit === undefined ? r : { ...r, commit: change(r.commit as Json) })
    const flip = (hex: string) => hex.slice(0, 20) + (hex[20] === '0' ? '1' : '0') + hex.slice(21)
    switch (this.mode) {
      case 'balance':
        if (!isAccount) return result
        if (typeof result === 'string') return (BigInt(result) + 1000n).toString()
        return { ...result, balance: (BigInt(result.balance) + 1000n).toString() }
      case 'nonce':
        return method === 'ledger_getAccount' ? { ...result, nonce: (BigInt(result.nonce) + 5n).toString() } : result
      case 'status':
        return method === 'tx_get' && result.status === 'committed' ? { ...result, ok: false, error: 'insufficient_funds' } : result
      case 'header':
        return isAccount && withProof ? forgeAccountAnswer(result, BigInt(result.balance) + 1000n) : result
      case 'certificate':
        return withProof || method === 'chain_getCommit' ? commitOf(result, (c) => ({ ...c, signatures: c.signatures.slice(0, 1) })) : result
      case 'signature':
        return withProof || method === 'chain_getCommit'
          ? commitOf(result, (c) => ({ ...c, signatures: c.signatures.map((s: Json) => ({ ...s, signature: flip(s.signature) })) }))
          : result
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
