import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { sharedHostVerifyWorkers, writeTestnet } from '../../../../node/cli/testnetFiles.js'
import { repoRoot } from '../../../helpers/fixtures.js'

const tallyd = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('tallyd init, then genesis new / add-validator / add-balance / validate, as docs/operations.md describes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'))
  try {
    const homes = ['alice', 'bob'].map((name) => {
      const r = tallyd('init', '--home', join(dir, name), '--moniker', name, '--json')
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as { publicKey: string; address: string; peerId: string }
    })
    const g = join(dir, 'genesis.json')
    assert.equal(tallyd('genesis', 'new', '--chain-id', 'acme-1', '--out', g).code, 0)
    homes.forEach((h, i) => {
      const r = tallyd('genesis', 'add-validator', '--genesis', g, '--name', `v${i}`, '--public-key', h.publicKey, '--peer-id', h.peerId)
      assert.equal(r.code, 0, r.stderr)
    })
    assert.equal(tallyd('genesis', 'add-balance', '--genesis', g, '--address', homes[0]!.address, '--amount', '1000').code, 0)
    const v = tallyd('genesis', 'validate', '--genesis', g)
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stdout, /2 validators, 1 balances/)
    assert.match(v.stdout, /genesis hash 0x[0-9a-f]{64}/)
    const written = JSON.parse(readFileSync(g, 'utf8')) as { validators: { peerId: string }[] }
    assert.deepEqual(
      written.validators.map((x) => x.peerId),
      homes.map((h) => h.peerId),
    )
    const shown = tallyd('genesis', 'show-key', '--home', join(dir, 'alice'))
    assert.deepEqual(JSON.parse(shown.stdout), { publicKey: homes[0]!.publicKey, address: homes[0]!.address, peerId: homes[0]!.peerId })

    // bad input: one line on stderr, non-zero exit, the file unchanged
    const before = readFileSync(g, 'utf8')
    const badKey = tallyd('genesis', 'add-validator', '--genesis', g, '--name', 'x', '--public-key', '0x1234', '--peer-id', homes[0]!.peerId)
    assert.notEqual(badKey.code, 0)
    assert.match(badKey.stderr, /--public-key/)
    const dupe = tallyd('genesis', 'add-validator', '--genesis', g, '--name', 'v0', '--public-key', homes[1]!.publicKey, '--peer-id', homes[1]!.peerId)
    assert.notEqual(dupe.code, 0)
    assert.match(dupe.stderr, /invalid/)
    const overflow = tallyd('genesis', 'add-balance', '--genesis', g, '--address', homes[1]!.address, '--amount', '18446744073709551616')
    assert.notEqual(overflow.code, 0)
    assert.equal(readFileSync(g, 'utf8'), before)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd init refuses a moniker tallyd start would refuse, and writes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'))
  try {
    for (const moniker of ['', 'x'.repeat(65), 'h\u00e9llo', 'tab\there']) {
      const r = tallyd('init', '--home', join(dir, 'h'), '--moniker', moniker)
      assert.equal(r.code, 1, `moniker ${JSON.stringify(moniker)}`)
      assert.match(r.stderr, /--moniker: must be 1-64 printable ASCII characters/)
      assert.equal(existsSync(join(dir, 'h')), false)
    }
    assert.equal(tallyd('init', '--home', join(dir, 'h'), '--moniker', 'a fine name').code, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('every command of tallyd and tally prints its help and exits 0', () => {
  const tally = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tally.js'), ...args], { encoding: 'utf8', timeout: 30_000 })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const daemon = [
    [],
    ['testnet'],
    ['start'],
    ['init'],
    ['devnet'],
    ['genesis'],
    ...['new', 'add-validator', 'add-balance', 'validate', 'show-key'].map((c) => ['genesis', c]),
  ]
  for (const c of daemon) {
    const r = tallyd(...c, '--help')
    assert.equal(r.code, 0, `tallyd ${c.join(' ')} --help: ${r.stderr}`)
    assert.match(r.stdout, /^Usage: tallyd/)
  }
  assert.match(tallyd('testnet', '--help').stdout, /default:\s+1000000000000\)/)
  for (const c of [[], ['keygen'], ['address'], ['balance'], ['account'], ['transfer'], ['sign'], ['send'], ['tx'], ['block'], ['status']]) {
    const r = tally(...c, '--help')
    assert.equal(r.code, 0, `tally ${c.join(' ')} --help: ${r.stderr}`)
    assert.match(r.stdout, /^Usage: tally/)
  }
})

test('tallyd testnet refuses bad arguments and a non-empty output directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'))
  try {
    assert.notEqual(tallyd('testnet', '--validators', '0', '--out', join(dir, 'a')).code, 0)
    assert.notEqual(tallyd('testnet', '--validators', '2', '--out', join(dir, 'b'), '--chain-id', 'bad id').code, 0)
    assert.equal(tallyd('testnet', '--validators', '2', '--out', join(dir, 'c')).code, 0)
    const again = tallyd('testnet', '--validators', '2', '--out', join(dir, 'c'))
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /not empty/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd testnet sizes verification threads for validators sharing this machine, or as told', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'))
  const workers = (out: string, i: number) =>
    (JSON.parse(readFileSync(join(out, `node${i}`, 'config.json'), 'utf8')) as { mempool: { verifyWorkers?: number } }).mempool.verifyWorkers
  try {
    const shared = join(dir, 'shared')
    assert.equal(tallyd('testnet', '--validators', '2', '--out', shared).code, 0)
    assert.equal(workers(shared, 0), sharedHostVerifyWorkers(2, availableParallelism()))
    assert.equal(workers(shared, 1), workers(shared, 0))
    const told = join(dir, 'told')
    assert.equal(tallyd('testnet', '--validators', '2', '--out', told, '--verify-workers', '3').code, 0)
    assert.deepEqual([workers(told, 0), workers(told, 1)], [3, 3])
    const hosts = join(dir, 'hosts')
    assert.equal(tallyd('testnet', '--validators', '2', '--out', hosts, '--hosts', 'a.example,b.example').code, 0)
    assert.equal(workers(hosts, 0), undefined, 'validators on their own hosts take the node default')
    // containers on one machine: named hosts, shared cores
    const containers = join(dir, 'containers')
    assert.equal(tallyd('testnet', '--validators', '2', '--out', containers, '--hosts', 'a.example,b.example', '--verify-workers', 'shared').code, 0)
    assert.deepEqual([workers(containers, 0), workers(containers, 1)], [workers(shared, 0), workers(shared, 0)])
    for (const bad of ['-1', '65', 'x', 'Shared', '', '1.5']) {
      const r = tallyd('testnet', '--validators', '2', '--out', join(dir, `bad${bad}`), '--verify-workers', bad)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /--verify-workers/)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('each validator sharing a machine gets the cores it has to itself, less one', () => {
  assert.equal(sharedHostVerifyWorkers(1, 1), 0)
  assert.equal(sharedHostVerifyWorkers(1, 2), 1)
  assert.equal(sharedHostVerifyWorkers(4, 2), 0)
  assert.equal(sharedHostVerifyWorkers(4, 8), 1)
  assert.equal(sharedHostVerifyWorkers(4, 16), 3)
  assert.equal(sharedHostVerifyWorkers(3, 8), 1)
  // never more than a node would give itself (and always a value config.json accepts)
  assert.equal(sharedHostVerifyWorkers(1, 16), 4)
  assert.equal(sharedHostVerifyWorkers(1, 256), 4)
})

test('tallyd start: an unexpected error is logged as fatal, the node stops cleanly, and the exit code is 70', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'))
  const child = { proc: undefined as ChildProcess | undefined }
  try {
    writeTestnet({ validators: 1, out: join(dir, 'net'), chainId: 'tally-unit', host: '127.0.0.1', p2pPort: 1, rpcPort: 1000, accounts: 0, balance: 10n })
    const home = join(dir, 'net', 'node0')
    const configPath = join(home, 'config.json')
    const config = JSON.parse(readFileSync(configPath, 'utf8'))
    writeFileSync(configPath, JSON.stringify({ ...config, p2p: { ...config.p2p, listen: '127.0.0.1:0', peers: [] }, rpc: { ...config.rpc, port: 0 } }))
    // a fault planted in the process: a rejection nothing handles, on SIGUSR2
    const planted = join(dir, 'planted.mjs')
    writeFileSync(planted, "process.on('SIGUSR2', () => { Promise.reject(new Error('planted fault')) })\n")
    const proc = spawn(process.execPath, ['--import', pathToFileURL(planted).href, join(repoRoot, 'bin', 'tallyd.js'), 'start', '--home', home], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.proc = proc
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8')
    })
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
    })
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
    const deadline = Date.now() + 30_000
    while (!stdout.includes('"height":2') && !stdout.includes('"height": 2')) {
      if (Date.now() > deadline) assert.fail(`the node did not commit height 2: ${stdout.slice(-2000)} ${stderr.slice(-2000)}`)
      if (proc.exitCode !== null) assert.fail(`the node exited early (${proc.exitCode}): ${stderr.slice(-2000)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    proc.kill('SIGUSR2')
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000).unref())])
    assert.equal(code, 70, stderr.slice(-2000))
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } })
    const fatal = lines.find((l) => l.level === 60)
    assert.ok(fatal !== undefined, 'a fatal line')
    assert.match(JSON.stringify(fatal), /planted fault/)
    assert.ok(
      lines.some((l) => /stopped/.test(l.msg) && lines.indexOf(l) > lines.indexOf(fatal)),
      'the node stopped after the fatal line',
    )
  } finally {
    child.proc?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
