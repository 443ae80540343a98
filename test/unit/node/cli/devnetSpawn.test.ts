import assert from 'node:assert/strict'
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { DevnetError, runDevnet } from '../../../../node/cli/devnet.js'
import { writeTestnet } from '../../../../node/cli/testnetFiles.js'

/**
 * `tallyd devnet` starting a validator fails (spawn throws, e.g. ENOMEM, or the child reports that it could not start,
 * e.g. EAGAIN or ENOENT): the log files it opened are closed, the validators started are stopped, and the failure is a
 * {@link DevnetError} naming the validator, which `tallyd` prints as one line with exit code 1.
 */

/** The paths this process holds open under `dir`. */
function openUnder(dir: string): string[] {
  const open: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(join('/proc/self/fd', fd))
      if (target.startsWith(dir)) open.push(target)
    } catch {
      // closed meanwhile (the fd of readdirSync itself)
    }
  }
  return open
}

const running = (c: ChildProcess) => c.pid !== undefined && c.exitCode === null && c.signalCode === null

/** A validator stand-in: a process that runs until stopped, with the devnet's stdio (the log files). */
const idle = (options: SpawnOptions) => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], options)

async function devnetFailing(
  label: string,
  ports: number,
  failAt: (options: SpawnOptions) => ChildProcess,
): Promise<{ error: unknown; children: ChildProcess[]; open: string[]; lines: string[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `tally-devnet-spawn-${label}-`))
  const net = join(dir, 'net')
  // ports no other test binds, and no validator listens on them here
  writeTestnet({ validators: 3, out: net, chainId: 'tally-devnet', host: '127.0.0.1', p2pPort: ports, rpcPort: ports + 10, accounts: 1, balance: 1000n })
  const children: ChildProcess[] = []
  const lines: string[] = []
  const error = await runDevnet({
    validators: 3,
    dir: net,
    reset: false,
    p2pPort: ports,
    rpcPort: ports + 10,
    createTestnet: async () => assert.fail('the testnet exists'),
    out: (line) => lines.push(line),
    spawn: (_command, _args, options) => {
      const c = children.length === 1 ? failAt(options) : idle(options)
      children.push(c)
      return c
    },
  }).then(
    (code) => `resolved with ${code}`,
    (e: unknown) => e,
  )
  return { error, children, open: openUnder(net), lines, dir }
}

/** Kills what a devnet under test left running (none when it stopped them), and removes its directory. */
async function cleanUp(children: readonly ChildProcess[], dir: string): Promise<void> {
  await Promise.all(
    children.filter(running).map(
      (c) =>
        new Promise<void>((resolve) => {
          c.once('exit', () => resolve())
          c.kill('SIGKILL')
        }),
    ),
  )
  rmSync(dir, { recursive: true, force: true })
}

test('tallyd devnet: spawn throwing for the second validator closes the logs and stops the first', async () => {
  const signals = process.listenerCount('SIGINT')
  const { error, children, open, lines, dir } = await devnetFailing('throws', 41_781, () => {
    throw Object.assign(new Error('spawn ENOMEM'), { code: 'ENOMEM', errno: -12, syscall: 'spawn' })
  })
  try {
    assert.deepEqual(open, [], 'log files left open')
    assert.equal(children.length, 1, 'a validator was started after the failure')
    assert.ok(!running(children[0]!), 'the validator started before the failure is still running')
    assert.ok(error instanceof DevnetError, `not a DevnetError: ${String(error)}`)
    assert.match(error.message, /^cannot start node1: ENOMEM$/)
    assert.equal(process.listenerCount('SIGINT'), signals, 'a signal listener was left behind')
    assert.deepEqual(
      lines.filter((l) => / exited /.test(l)),
      [],
      'a validator the devnet stopped was reported as exiting by itself',
    )
  } finally {
    await cleanUp(children, dir)
  }
})

test('tallyd devnet: a validator whose process fails to start stops the others and fails the devnet', async () => {
  const signals = process.listenerCount('SIGINT')
  const { error, children, open, lines, dir } = await devnetFailing('error', 41_801, (options) =>
    spawn(join(tmpdir(), 'tally-no-such-program', 'tallyd'), [], options),
  )
  try {
    assert.deepEqual(open, [], 'log files left open')
    assert.equal(children.length, 3)
    assert.deepEqual(
      children.map((c) => running(c)),
      [false, false, false],
      'validators left running',
    )
    assert.ok(error instanceof DevnetError, `not a DevnetError: ${String(error)}`)
    assert.match(error.message, /^cannot start node1: ENOENT$/)
    assert.equal(process.listenerCount('SIGINT'), signals, 'a signal listener was left behind')
    assert.deepEqual(
      lines.filter((l) => / exited /.test(l)),
      [],
      'a validator the devnet stopped was reported as exiting by itself',
    )
  } finally {
    await cleanUp(children, dir)
  }
})
