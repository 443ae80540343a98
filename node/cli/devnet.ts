import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { closeSync, constants, existsSync, fstatSync, openSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MAX_KEY_FILE_LENGTH } from '../../crypto/keyfile.js'
import { parseStrictJson } from '../../crypto/strictJson.js'
import { DEFAULT_CONFIG } from '../../genesis/config.js'
import { nodeProcessEnv } from '../memorySettings.js'
import { checkRegularFile, FileReadError, readBoundedFileSync } from './boundedFile.js'
import { MAX_GENESIS_FILE_BYTES } from './genesisFile.js'

/**
 * `tallyd devnet`: a local network in one command. Creates a testnet in `dir` when it has none, runs every validator
 * as a child process (`tallyd start --home dir/nodeI`, logs in dir/nodeI.log), prints the RPC URLs and a
 * ready-to-paste `tally transfer`, and stops them all on Ctrl-C. Every file it reads in `dir` and every log it appends
 * to must be a regular file (a FIFO would block it, a device never end), and is checked before any validator starts.
 */

/** Why `tallyd devnet` cannot use its directory; `message` names the file. */
export class DevnetError extends Error {}

/** Largest config or genesis file read: the bound `tallyd start` reads them with. */
const MAX_JSON_BYTES = MAX_GENESIS_FILE_BYTES

/**
 * The JSON document in the regular file at `path`, read as `tallyd start` reads it (a key twice is an error: a reader
 * taking another value than the validator would print what the validator does not use); throws
 * {@link FileReadError} or {@link DevnetError}.
 */
function readJson(path: string, maxBytes: number): unknown {
  const text = readBoundedFileSync(path, maxBytes).toString('utf8')
  try {
    return parseStrictJson(text)
  } catch (e) {
    throw new DevnetError(`${path} is not valid JSON: ${(e as Error).message}`)
  }
}

/**
 * Opens a validator's log for appending: a regular file or none yet. Non-blocking, so that a FIFO put there after the
 * check fails the open instead of waiting for a reader; the open file is checked again.
 */
function openLog(path: string): number {
  try {
    checkRegularFile(path, Number.MAX_SAFE_INTEGER)
  } catch (e) {
    if (!(e instanceof FileReadError && e.code === 'missing')) throw e
  }
  let fd: number
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (constants.O_NONBLOCK ?? 0), 0o644)
  } catch (e) {
    throw new DevnetError(`${path} cannot be opened for appending: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd)
    throw new FileReadError(path, 'changed', 'changed while it was opened: not a regular file')
  }
  return fd
}

export interface DevnetOptions {
  readonly validators: number
  readonly dir: string
  readonly reset: boolean
  readonly p2pPort: number
  readonly rpcPort: number
  /** Writes a testnet (the `tallyd testnet` command's implementation). */
  readonly createTestnet: (opts: { validators: number; out: string; p2pPort: number; rpcPort: number; accounts: number }) => Promise<void>
  readonly out: (line: string) => void
  /** Starts a validator's process: `node:child_process` `spawn` unless given (tests pass one that fails). */
  readonly spawn?: (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess
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

/**
 * Stops the validators: SIGTERM, then SIGKILL for one still running 10 s later; resolves once every one exited. One
 * whose process never started (no pid) has nothing to stop and sends no exit.
 */
async function stopAll(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return r()
          c.once('exit', () => r())
          c.kill('SIGTERM')
          setTimeout(() => c.kill('SIGKILL'), 10_000).unref()
        }),
    ),
  )
}

/**
 * Runs the devnet until SIGINT/SIGTERM; resolves with the exit code. A validator that cannot be started (spawn throws,
 * or its process reports that it could not start) rejects it with a {@link DevnetError}, once the logs opened are
 * closed and the validators started are stopped.
 */
export async function runDevnet(o: DevnetOptions): Promise<number> {
  const dir = resolve(o.dir)
  if (o.reset) rmSync(dir, { recursive: true, force: true })
  if (!existsSync(join(dir, 'genesis.json'))) {
    o.out(`creating a ${o.validators}-validator testnet in ${dir}`)
    await o.createTestnet({ validators: o.validators, out: dir, p2pPort: o.p2pPort, rpcPort: o.rpcPort, accounts: 4 })
  }
  const genesisPath = join(dir, 'genesis.json')
  const genesis = readJson(genesisPath, MAX_JSON_BYTES) as { chainId?: unknown; validators?: unknown }
  if (typeof genesis?.chainId !== 'string' || !Array.isArray(genesis.validators)) {
    throw new DevnetError(`${genesisPath} is not a genesis: it needs a chainId and a validators array`)
  }
  const n = genesis.validators.length
  const urls: string[] = []
  for (let i = 0; i < n; i++) {
    const path = join(dir, `node${i}`, 'config.json')
    const port = (readJson(path, MAX_JSON_BYTES) as { rpc?: { port?: unknown } } | null)?.rpc?.port ?? DEFAULT_CONFIG.rpc.port
    if (typeof port !== 'number') throw new DevnetError(`${path}: rpc.port must be a number`)
    urls.push(`http://127.0.0.1:${port}`)
  }
  // the dev key the transfer hint pays: absent from a testnet written with --accounts 0
  const accountPath = join(dir, 'keys', 'account0.json')
  const account0 = existsSync(accountPath) ? (readJson(accountPath, MAX_KEY_FILE_LENGTH) as { address?: unknown } | null)?.address : undefined
  const payee = typeof account0 === 'string' ? account0 : '<address>'
  const logs: number[] = []
  try {
    for (let i = 0; i < n; i++) logs.push(openLog(join(dir, `node${i}.log`)))
  } catch (e) {
    for (const fd of logs) closeSync(fd)
    throw e
  }

  const children: ChildProcess[] = []
  let stopping = false
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    o.out('stopping validators…')
    await stopAll(children)
  }
  // settled by SIGINT or SIGTERM (exit code 0), or by a validator whose process could not be started
  let finish: (outcome: number | DevnetError) => void = () => {}
  const onSignal = () => void stop().then(() => finish(0))
  const stopped = new Promise<number>((resolveExit, rejectExit) => {
    finish = (outcome) => {
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
      if (typeof outcome === 'number') resolveExit(outcome)
      else rejectExit(outcome)
    }
  })
  // a failure can settle it while the wait for the first block runs, before anything awaits it
  stopped.catch(() => {})

  for (let i = 0; i < n; i++) {
    const log = logs[i]!
    let child: ChildProcess
    try {
      child = (o.spawn ?? spawn)(process.execPath, [TALLYD, 'start', '--home', join(dir, `node${i}`)], { stdio: ['ignore', log, log], env: nodeProcessEnv() })
    } catch (e) {
      // the logs no child holds yet are closed here, and no validator runs on without the devnet that stops it
      for (const fd of logs.slice(i)) closeSync(fd)
      stopping = true
      await stopAll(children)
      throw new DevnetError(`cannot start node${i}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    closeSync(log)
    child.on('exit', (code, signal) => {
      if (!stopping) o.out(`node${i} exited (${signal ?? code}); see ${join(dir, `node${i}.log`)}`)
    })
    // what spawn reports after it returned (EAGAIN, EMFILE, ENOENT, …): that validator never ran, and the others stop
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (stopping) return
      const why = e.code ?? e.message
      void stop().then(() => finish(new DevnetError(child.pid === undefined ? `cannot start node${i}: ${why}` : `node${i}: ${why}`)))
    })
    children.push(child)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

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

  o.out('')
  o.out(`Tally devnet "${genesis.chainId}" is running with ${n} validators (logs: ${dir}/node*.log)`)
  urls.forEach((u, i) => {
    o.out(`  node${i}  RPC ${u}`)
  })
  o.out('')
  o.out('Try a transfer from the faucet (the wallet verifies every answer from the genesis: TALLY_GENESIS or --genesis):')
  o.out(`  export TALLY_GENESIS=${join(o.dir, 'genesis.json')}`)
  o.out(`  npx tally transfer --key ${join(o.dir, 'keys', 'faucet.json')} --to ${payee} --amount 100 --rpc ${urls.join(',')}`)
  o.out(`  npx tally balance ${payee} --rpc ${urls[n - 1]}`)
  o.out('')
  o.out('Press Ctrl-C to stop all validators.')
  return stopped
}
