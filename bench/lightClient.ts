import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { parseAddress } from '../crypto/address.js'
import { genesisHash, parseGenesis } from '../genesis/genesis.js'
import { RpcClient } from '../rpc/client.js'
import { LightClient } from '../rpc/light/lightClient.js'
import { lightStorePath, saveLightStore } from '../rpc/light/lightStore.js'
import { checkAccountAnswer } from '../rpc/light/proofs.js'
import { RpcLightProvider } from '../rpc/light/rpcProvider.js'
import { TrustedBlocks } from '../rpc/light/trustedBlocks.js'
import { trustedGenesis } from '../rpc/light/verifier.js'
import { VerifiedRpc } from '../rpc/light/verifiedClient.js'

/**
 * `node dist/bench/lightClient.js [--validators N] [--queries Q] [--cli-runs R] [--json FILE]`: what verification adds to a
 * balance query.
 *
 * Starts a local testnet (blocks every second, as a devnet makes them), then, in one process with a warm light
 * client (its store on disk, as the wallet keeps it), runs Q plain `ledger_getBalance` calls and Q verified ones,
 * interleaved, and times each; then times the verified query's parts: the round trip with the proof, the client's
 * checks (the proof against the header, a header not seen before by the light client: 2f+1 signatures; a skip from the
 * genesis, alone and cross-checked with a second endpoint as witness) and the store write.
 * Last, `tally balance` as a user runs it (a new process each time), with `--no-verify`, verified with one endpoint,
 * and verified with two (the second a witness).
 */

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..')
const TALLYD = join(root, 'bin', 'tallyd.js')
const TALLY = join(root, 'bin', 'tally.js')

const program = new Command()
  .name('lightClient')
  .option('--validators <n>', 'validators to start', '4')
  .option('--queries <n>', 'queries of each kind, measured', '300')
  .option('--cli-runs <n>', 'runs of the tally CLI of each kind', '10')
  .option('--json <file>', 'write the results as JSON')
  .parse()
const opts = program.opts<{ validators: string; queries: string; cliRuns: string; json?: string }>()
const N = positive(opts.validators, '--validators')
const Q = positive(opts.queries, '--queries')
const CLI_RUNS = positive(opts.cliRuns, '--cli-runs')

function positive(v: string, name: string): number {
  const n = Number(v)
  if (!/^[1-9][0-9]{0,6}$/.test(v.trim()) || !Number.isSafeInteger(n)) {
    console.error(`bench: ${name} must be a positive integer`)
    process.exit(2)
  }
  return n
}

/** Milliseconds: median, mean and 99th percentile. */
interface Stats {
  p50: number
  mean: number
  p99: number
}

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b)
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!
  const round = (x: number) => Math.round(x * 1000) / 1000
  return { p50: round(at(0.5)), mean: round(s.reduce((a, b) => a + b, 0) / s.length), p99: round(at(0.99)) }
}

const show = (name: string, s: Stats) =>
  console.log(`  ${name.padEnd(46)} p50 ${s.p50.toFixed(3).padStart(8)} ms   mean ${s.mean.toFixed(3).padStart(8)} ms   p99 ${s.p99.toFixed(3).padStart(8)} ms`)

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-light-'))
  const procs: ChildProcess[] = []
  try {
    const base = 36000 + (process.pid % 4000)
    const gen = spawnSync(
      process.execPath,
      [
        TALLYD,
        'testnet',
        '--validators',
        String(N),
        '--out',
        join(dir, 'net'),
        '--chain-id',
        'tally-bench',
        '--p2p-port',
        String(base),
        '--rpc-port',
        String(base + 100),
        '--accounts',
        '1',
      ],
      { stdio: 'ignore' },
    )
    if (gen.status !== 0) throw new Error('tallyd testnet failed')
    for (let i = 0; i < N; i++) {
      const log = openSync(join(dir, `node${i}.log`), 'a')
      procs.push(spawn(process.execPath, [TALLYD, 'start', '--home', join(dir, 'net', `node${i}`)], { stdio: ['ignore', log, log] }))
      closeSync(log)
    }
    const urls = Array.from({ length: N }, (_, i) => `http://127.0.0.1:${base + 100 + i}`)
    const plain = new RpcClient({ endpoints: urls })
    const deadline = Date.now() + 60_000
    while (
      (await plain.status().then(
        (s) => s.height,
        () => 0,
      )) < 2
    ) {
      if (Date.now() > deadline) throw new Error('the testnet did not reach height 2 within 60 s')
      await new Promise((r) => setTimeout(r, 250))
    }
    const genesisFile = join(dir, 'net', 'genesis.json')
    const g = parseGenesis(JSON.parse(readFileSync(genesisFile, 'utf8')))
    if (!g.ok) throw new Error('bad genesis')
    const address = (JSON.parse(readFileSync(join(dir, 'net', 'keys', 'account0.json'), 'utf8')) as { address: string }).address
    const storePath = lightStorePath(join(dir, 'light'), g.value.chainId)
    const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: genesisHash(g.value) }, trustedGenesis(g.value))
    const light = new LightClient({}, { blocks, now: Date.now, onChange: (b) => saveLightStore(storePath, b) })
    const verified = new VerifiedRpc({ endpoints: urls }, { light })
    console.log(`bench: ${N} validators on loopback, ${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}); ${Q} queries of each kind`)

    // warm: the store holds a recent header and the set
    for (let i = 0; i < 20; i++) {
      await plain.getBalance(address)
      await verified.balance(address)
    }
    const plainMs: number[] = []
    const verifiedMs: number[] = []
    const heights = new Set<number>()
    for (let i = 0; i < Q; i++) {
      let t = performance.now()
      await plain.getBalance(address)
      plainMs.push(performance.now() - t)
      t = performance.now()
      const v = await verified.balance(address)
      verifiedMs.push(performance.now() - t)
      heights.add(v.verifiedHeight)
    }
    // the verified query's parts, on the same endpoint
    const client = new RpcClient({ endpoints: [urls[0]!] })
    const provider = new RpcLightProvider(client)
    const a = parseAddress(address)!
    const proofTrip: number[] = []
    const checkMs: number[] = []
    const headerMs: number[] = []
    const skipMs: number[] = []
    const skipWitnessMs: number[] = []
    const saveMs: number[] = []
    const witness = new RpcLightProvider(new RpcClient({ endpoints: [urls[1] ?? urls[0]!] }))
    for (let i = 0; i < Q; i++) {
      let t = performance.now()
      const answer = await client.call('ledger_getBalance', [address, { proof: true }])
      proofTrip.push(performance.now() - t)
      t = performance.now()
      const c = checkAccountAnswer(a, answer, false)
      checkMs.push(performance.now() - t)
      if (!c.ok) throw new Error(c.error.reason)
      // a header the client has not seen yet, from the trusted block below it (as after a new block): its signatures
      const h = c.value.block.header.height
      const below = light.blocks.closestBelow(h) ?? light.blocks.rootBlock
      const fresh = new LightClient({}, { blocks: new TrustedBlocks(light.blocks.root, light.blocks.rootBlock, [below]), now: Date.now })
      t = performance.now()
      await fresh.verify(c.value.block, provider)
      headerMs.push(performance.now() - t)
      // a skip from the genesis (as for a store far behind), alone and cross-checked with a second endpoint
      const fromRoot = () => new LightClient({}, { blocks: new TrustedBlocks(light.blocks.root, light.blocks.rootBlock), now: Date.now })
      const alone = fromRoot()
      t = performance.now()
      await alone.verify(c.value.block, provider)
      skipMs.push(performance.now() - t)
      const checked = fromRoot()
      t = performance.now()
      await checked.verify(c.value.block, provider, { providers: [witness] })
      skipWitnessMs.push(performance.now() - t)
      await light.verify(c.value.block, provider)
      t = performance.now()
      await saveLightStore(storePath, light.blocks)
      saveMs.push(performance.now() - t)
    }

    // the CLI as a user runs it: a new process each time, the light store warm
    const cli = (args: string[], rpc = urls[0]!) => {
      const t = performance.now()
      const r = spawnSync(process.execPath, [TALLY, 'balance', address, '--rpc', rpc, ...args], {
        env: { ...process.env, TALLY_LIGHT_DIR: join(dir, 'light') },
      })
      if (r.status !== 0) throw new Error(`tally balance failed: ${String(r.stderr)}`)
      return performance.now() - t
    }
    cli(['--genesis', genesisFile])
    const cliPlain: number[] = []
    const cliVerified: number[] = []
    const cliVerifiedTwo: number[] = []
    for (let i = 0; i < CLI_RUNS; i++) {
      cliPlain.push(cli(['--no-verify']))
      cliVerified.push(cli([]))
      cliVerifiedTwo.push(cli([], urls.slice(0, 2).join(',')))
    }

    const results = {
      validators: N,
      queries: Q,
      distinctHeights: heights.size,
      plainQueryMs: stats(plainMs),
      verifiedQueryMs: stats(verifiedMs),
      proofRoundTripMs: stats(proofTrip),
      proofCheckMs: stats(checkMs),
      headerVerifyMs: stats(headerMs),
      skipFromGenesisMs: stats(skipMs),
      skipFromGenesisWitnessMs: stats(skipWitnessMs),
      storeSaveMs: stats(saveMs),
      cliPlainMs: stats(cliPlain),
      cliVerifiedMs: stats(cliVerified),
      cliVerifiedTwoEndpointsMs: stats(cliVerifiedTwo),
    }
    console.log('in one process, warm light client:')
    show('ledger_getBalance (plain)', results.plainQueryMs)
    show('verified balance (proof, checks, store)', results.verifiedQueryMs)
    console.log(`  (${results.distinctHeights} distinct tips: a query at a tip already verified skips the signatures and the store write)`)
    console.log('the verified query in parts:')
    show('ledger_getBalance with {"proof": true}', results.proofRoundTripMs)
    show('proof against the header', results.proofCheckMs)
    show('a new header by the light client (2f+1 sigs)', results.headerVerifyMs)
    show('a skip from the genesis, no witness', results.skipFromGenesisMs)
    show('the same skip, checked with a witness', results.skipFromGenesisWitnessMs)
    show('light store write', results.storeSaveMs)
    console.log('tally balance, a new process each run:')
    show('--no-verify', results.cliPlainMs)
    show('verified', results.cliVerifiedMs)
    show('verified, two endpoints (the second a witness)', results.cliVerifiedTwoEndpointsMs)
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`)
  } finally {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null) return r()
            p.once('exit', () => r())
            p.kill('SIGTERM')
            setTimeout(() => p.kill('SIGKILL'), 5000).unref()
          }),
      ),
    )
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`)
  process.exitCode = 1
})
