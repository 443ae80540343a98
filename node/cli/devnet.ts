import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nodeProcessEnv } from '../memorySettings.js'

/**
 * `tallyd devnet`: a local network in one command. Creates a testnet in `dir` when it has none, runs every validator
 * as a child process (`tallyd start --home dir/nodeI`, logs in dir/nodeI.log), prints the RPC URLs and a
 * ready-to-paste `tally transfer`, and stops them all on Ctrl-C.
 */

export interface DevnetOptions {
  readonly validators: number
  readonly dir: string
  readonly reset: boolean
  readonly p2pPort: number
  readonly rpcPort: number
  /** Writes a testnet (the `tallyd testnet` command's implementation). */
  readonly createTestnet: (opts: { validators: number; out: string; p2pPort: number; rpcPort: number; accounts: number }) => Promise<void>
  readonly out: (line: string) => void
}

const TALLYD = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'bin', 'tallyd.js')

async function rpcHeight(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_status', params: [] }),
      signal: AbortSignal.timeout(1_000),
    })
    const body = (await res.json()) as { result?: { height: number } }
    return body.result?.height
  } catch {
    return undefined
  }
}

/** Runs the devnet until SIGINT/SIGTERM; resolves with the exit code. */
export async function runDevnet(o: DevnetOptions): Promise<number> {
  const dir = resolve(o.dir)
  if (o.reset) rmSync(dir, { recursive: true, force: true })
  if (!existsSync(join(dir, 'genesis.json'))) {
    o.out(`creating a ${o.validators}-validator testnet in ${dir}`)
    await o.createTestnet({ validators: o.validators, out: dir, p2pPort: o.p2pPort, rpcPort: o.rpcPort, accounts: 4 })
  }
  const genesis = JSON.parse(readFileSync(join(dir, 'genesis.json'), 'utf8')) as { chainId: string; validators: unknown[] }
  const n = genesis.validators.length
  const urls: string[] = []
  for (let i = 0; i < n; i++) {
    const cfg = JSON.parse(readFileSync(join(dir, `node${i}`, 'config.json'), 'utf8')) as { rpc: { port: number } }
    urls.push(`http://127.0.0.1:${cfg.rpc.port}`)
  }

  const children: ChildProcess[] = []
  let stopping = false
  for (let i = 0; i < n; i++) {
    const log = openSync(join(dir, `node${i}.log`), 'a')
    const child = spawn(process.execPath, [TALLYD, 'start', '--home', join(dir, `node${i}`)], { stdio: ['ignore', log, log], env: nodeProcessEnv() })
    closeSync(log)
    child.on('exit', (code, signal) => {
      if (!stopping) o.out(`node${i} exited (${signal ?? code}); see ${join(dir, `node${i}.log`)}`)
    })
    children.push(child)
  }

  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    o.out('stopping validators…')
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r()
            c.once('exit', () => r())
            c.kill('SIGTERM')
            setTimeout(() => c.kill('SIGKILL'), 10_000).unref()
          }),
      ),
    )
  }

  const stopped = new Promise<number>((resolveExit) => {
    const onSignal = () => void stop().then(() => resolveExit(0))
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })

  // Wait (with a deadline) until every validator answers and the chain has its first block.
  const deadline = Date.now() + 60_000
  let ready = false
  while (!stopping && Date.now() < deadline) {
    const heights = await Promise.all(urls.map(rpcHeight))
    if (heights.every((h) => h !== undefined && h >= 1)) {
      ready = true
      break
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  if (stopping) return stopped
  if (!ready) o.out('warning: the network did not reach height 1 within 60 s; check the node logs')

  const account0 = JSON.parse(readFileSync(join(dir, 'keys', 'account0.json'), 'utf8')) as { address: string }
  o.out('')
  o.out(`Tally devnet "${genesis.chainId}" is running with ${n} validators (logs: ${dir}/node*.log)`)
  urls.forEach((u, i) => {
    o.out(`  node${i}  RPC ${u}`)
  })
  o.out('')
  o.out('Try a transfer from the faucet (the wallet verifies every answer from the genesis: TALLY_GENESIS or --genesis):')
  o.out(`  export TALLY_GENESIS=${join(o.dir, 'genesis.json')}`)
  o.out(`  npx tally transfer --key ${join(o.dir, 'keys', 'faucet.json')} --to ${account0.address} --amount 100 --rpc ${urls.join(',')}`)
  o.out(`  npx tally balance ${account0.address} --rpc ${urls[n - 1]}`)
  o.out('')
  o.out('Press Ctrl-C to stop all validators.')
  return stopped
}
