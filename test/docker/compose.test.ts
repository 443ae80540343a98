import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePortRange, runCli, waitFor } from '../e2e/harness.js'
import { buildImage } from './buildImage.js'
import { ComposeNet, VALIDATORS, detectDocker } from './composeNet.js'
import { mustRun, runCommand } from './runCommand.js'

/**
 * `npm run test:docker`: the image and the compose devnet end to end, as a user runs them. Builds the image, checks
 * what it carries and how it treats a bind-mounted home, brings the four validators up with the repository's
 * docker-compose.yml, and checks that they commit blocks with rotated logs, that `/health` and Docker's HEALTHCHECK
 * say healthy, that a transfer from the host's wallet commits through a published port, that
 * the chain goes on while one validator's container is stopped and that the validator catches up once started again,
 * and that `down -v` leaves no container, network or volume behind. The image stays (tag {@link IMAGE}) so the next
 * run reuses Docker's build cache. Skips, with the reason, where no Docker engine is reachable.
 */

const IMAGE = 'tally:docker-test'
const PROJECT = 'tally-docker-test'
const RECIPIENT = `0x${'5a'.repeat(20)}`

const log = (s: string) => console.log(`# ${new Date().toISOString().slice(11, 19)} ${s}`)

const title = 'the image and the compose devnet'
const support = await detectDocker()
if ('skip' in support) {
  const skip = `${support.skip}; skipping the Docker end-to-end test`
  console.log(`# ${skip}`)
  test(title, { skip }, () => {})
} else {
  describeDevnet(support.compose)
}

/** The steps, in order, run with `compose` (`docker compose` or `docker-compose`). */
function describeDevnet(compose: readonly string[]): void {
  describe(title, { timeout: 30 * 60_000 }, () => {
    let net: ComposeNet
    let scratch: string
    /** Set when a step fails: the steps after it depend on it and are skipped rather than left to time out. */
    let failed = false
    /** Set once the last step has run `down -v`, so the after-hook need not run it again. */
    let downDone = false

    // an interrupted run (Ctrl-C, a killed runner) still removes what it started
    const onSignal = (signal: NodeJS.Signals) => {
      if (net !== undefined && !downDone) net.downSync()
      process.kill(process.pid, signal)
    }

    const step = (name: string, fn: (t: TestContext) => Promise<void>, timeoutMs: number) =>
      test(name, { timeout: timeoutMs }, async (t) => {
        if (failed) return t.skip('an earlier step failed')
        try {
          await fn(t)
        } catch (e) {
          failed = true
          throw e
        }
      })

    before(async () => {
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      scratch = mkdtempSync(join(tmpdir(), 'tally-docker-'))
      const t0 = Date.now()
      log(`building ${IMAGE}`)
      await buildImage(IMAGE, log)
      log(`built in ${Math.round((Date.now() - t0) / 1000)} s`)
      const base = await freePortRange(VALIDATORS.length)
      net = new ComposeNet(
        compose,
        PROJECT,
        IMAGE,
        VALIDATORS.map((_, i) => base + i),
      )
      // what an interrupted earlier run may have left
      await net.down()
    })

    after(async () => {
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
      if (net !== undefined && !downDone) {
        if (failed) log(`the validators' last log lines:\n${await net.logs(20)}`)
        await net.down()
      }
      if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
    })

    step(
      'the image carries the node, the RPC and the wallet, not the tests or the benchmarks',
      async () => {
        const dist = await mustRun('docker', ['run', '--rm', '--entrypoint', 'ls', IMAGE, '/app/dist'], { timeoutMs: 60_000 })
        assert.deepEqual(
          dist
            .split('\n')
            .filter((l) => l !== '')
            .sort(),
          ['consensus', 'crypto', 'genesis', 'ledger', 'node', 'rpc', 'wallet'],
        )
      },
      2 * 60_000,
    )

    step(
      "a bind-mounted home: another owner's directory is refused with a hint, --user its owner works",
      async () => {
        const home = mkdtempSync(join(scratch, 'home-'))
        const owner = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`
        if (process.getuid?.() !== 1000) {
          // mode 700 and not owned by the image's uid 1000
          const r = await runCommand('docker', ['run', '--rm', '-v', `${home}:/data`, IMAGE, 'init', '--home', '/data'], { timeoutMs: 60_000 })
          assert.notEqual(r.code, 0)
          assert.match(r.stderr, /\/data is not writable by uid 1000: chown the host directory to 1000:1000, or run with --user/)
        }
        const r = await runCommand('docker', ['run', '--rm', '--user', owner, '-v', `${home}:/data`, IMAGE, 'init', '--home', '/data', '--json'], {
          timeoutMs: 60_000,
        })
        assert.equal(r.code, 0, r.stderr)
        assert.match((JSON.parse(r.stdout) as { peerId: string }).peerId, /^12D3Koo/)
        for (const f of ['config.json', 'validator_key.json', 'node_key.json']) {
          const st = statSync(join(home, f))
          assert.equal(`${st.uid}:${st.gid}`, owner, `owner of ${f}`)
        }
      },
      2 * 60_000,
    )

    step(
      'compose up: the one-shot genesis, then four validators that all commit blocks',
      async () => {
        const t0 = Date.now()
        await net.up()
        log(`up in ${Math.round((Date.now() - t0) / 1000)} s`)
        await waitFor(
          'height 3 on every validator',
          async () => {
            for (let i = 0; i < VALIDATORS.length; i++) if (((await net.height(i)) ?? -1) < 3) return false
            return true
          },
          120_000,
          250,
        )
        // one chain: every validator holds the same block 2
        const hashes = await Promise.all(VALIDATORS.map((_, i) => net.call<{ hash: string }>(i, 'chain_getBlock', [2])))
        assert.equal(new Set(hashes.map((b) => b.hash)).size, 1, `block 2 differs: ${hashes.map((b) => b.hash).join(' ')}`)
        // the compose file's log rotation reaches every container
        for (const s of VALIDATORS) {
          const logging = await mustRun('docker', ['inspect', '--format', '{{json .HostConfig.LogConfig}}', await net.containerId(s)], { timeoutMs: 30_000 })
          assert.deepEqual(JSON.parse(logging), { Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } }, `logging of ${s}`)
        }
      },
      6 * 60_000,
    )

    step(
      "/health answers 200 on every published port and Docker's HEALTHCHECK says healthy",
      async () => {
        await waitFor(
          'GET /health 200 from every validator',
          async () => {
            for (let i = 0; i < VALIDATORS.length; i++) if ((await net.health(i)) !== 200) return false
            return true
          },
          30_000,
          250,
        )
        // the first check runs one interval (10 s) after the start
        await waitFor(
          'every container healthy',
          async () => {
            for (const s of VALIDATORS) if ((await net.dockerHealth(s)) !== 'healthy') return false
            return true
          },
          90_000,
          500,
        )
      },
      2 * 60_000,
    )

    let faucetKey = ''
    let genesisFile = ''
    step(
      "a transfer from the host's wallet commits through a published port",
      async () => {
        faucetKey = join(scratch, 'faucet.json')
        writeFileSync(faucetKey, await net.readFile('validator0', '/data/keys/faucet.json'), { mode: 0o600 })
        genesisFile = join(scratch, 'genesis.json')
        writeFileSync(genesisFile, await net.readFile('validator0', '/data/genesis.json'))
        const r = await runCli('tally', [
          'transfer',
          '--key',
          faucetKey,
          '--to',
          RECIPIENT,
          '--amount',
          '7',
          '--rpc',
          net.rpcUrl(1),
          '--json',
          '--genesis',
          genesisFile,
        ])
        assert.equal(r.code, 0, r.stderr)
        const done = JSON.parse(r.stdout) as { status: string; height: number }
        assert.equal(done.status, 'committed')
        // every replica answers the same once it has the block
        for (let i = 0; i < VALIDATORS.length; i++) {
          await waitFor(`validator${i} at height ${done.height}`, async () => ((await net.height(i)) ?? -1) >= done.height, 30_000, 250)
          assert.equal(await net.call(i, 'ledger_getBalance', [RECIPIENT]), '7', `balance on validator${i}`)
        }
      },
      2 * 60_000,
    )

    step(
      'docker stop of one validator: the chain goes on; docker start: it catches up',
      async () => {
        await net.docker('stop', 'validator3')
        assert.equal(await net.height(3), undefined, 'validator3 still answers after docker stop')
        const stoppedAt = (await net.height(0)) ?? -1
        await waitFor('3 more blocks with validator3 stopped', async () => ((await net.height(0)) ?? -1) >= stoppedAt + 3, 60_000, 250)
        // a wallet listing the stopped validator first goes on to the next endpoint
        const r = await runCli('tally', [
          'transfer',
          '--key',
          faucetKey,
          '--to',
          RECIPIENT,
          '--amount',
          '3',
          '--rpc',
          `${net.rpcUrl(3)},${net.rpcUrl(0)}`,
          '--json',
          '--genesis',
          genesisFile,
        ])
        assert.equal(r.code, 0, r.stderr)
        const { height: committed } = JSON.parse(r.stdout) as { height: number }

        await net.docker('start', 'validator3')
        const target = Math.max(committed, (await net.height(0)) ?? -1)
        await waitFor(`validator3 back at height ${target}`, async () => ((await net.height(3)) ?? -1) >= target, 120_000, 250)
        const [b0, b3] = (await Promise.all([0, 3].map((i) => net.call<{ hash: string }>(i, 'chain_getBlock', [target])))) as [
          { hash: string },
          { hash: string },
        ]
        assert.equal(b3.hash, b0.hash, `block ${target} on validator3`)
        assert.equal(await net.call(3, 'ledger_getBalance', [RECIPIENT]), '10')
        await waitFor('validator3 healthy again', async () => (await net.health(3)) === 200, 60_000, 250)
      },
      5 * 60_000,
    )

    step(
      'down -v removes every container, network and volume of the project',
      async () => {
        const running = await net.leftovers()
        for (const kind of ['container', 'network', 'volume'])
          assert.ok(
            running.some((l) => l.startsWith(kind)),
            `no ${kind} of the project found while it runs`,
          )
        await net.down()
        downDone = true
        assert.deepEqual(await net.leftovers(), [])
      },
      4 * 60_000,
    )
  })
}
