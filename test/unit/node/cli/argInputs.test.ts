import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { to0x } from '../../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../../crypto/index.js'
import { peerIdOf } from '../../../../node/p2p/peerId.js'
import { repoRoot } from '../../../helpers/fixtures.js'

/** Arguments of `tallyd` that must be refused: each gets one line on stderr, a non-zero exit, and nothing written. */

const tallyd = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('tallyd genesis new refuses a --genesis-time that is not an RFC 3339 time, and writes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    for (const time of ['not a time', '1960-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T00:00:00Z\u001b[2J']) {
      const out = join(dir, 'genesis.json')
      const r = tallyd('genesis', 'new', '--chain-id', 'acme-1', '--out', out, '--genesis-time', time)
      assert.notEqual(r.code, 0, `${JSON.stringify(time)} accepted: ${r.stdout}`)
      assert.match(r.stderr, /--genesis-time/)
      assert.equal(existsSync(out), false)
    }
    assert.equal(tallyd('genesis', 'new', '--chain-id', 'acme-1', '--out', join(dir, 'ok.json'), '--genesis-time', '2026-01-01T00:00:00Z').code, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd genesis add-validator refuses a --peer-id that is not the peer id of an Ed25519 key, and leaves the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    const init = tallyd('init', '--home', join(dir, 'home'), '--json')
    assert.equal(init.code, 0, init.stderr)
    const { publicKey, peerId } = JSON.parse(init.stdout) as { publicKey: string; peerId: string }
    const g = join(dir, 'genesis.json')
    assert.equal(tallyd('genesis', 'new', '--chain-id', 'acme-1', '--out', g).code, 0)
    const before = readFileSync(g, 'utf8')
    // each matches the base58btc pattern the genesis checks, but none decodes to an Ed25519 public key
    for (const bad of ['1'.repeat(41), `12D3KooW${'z'.repeat(44)}`, `Qm${'a'.repeat(44)}`]) {
      const r = tallyd('genesis', 'add-validator', '--genesis', g, '--name', 'v0', '--public-key', publicKey, '--peer-id', bad)
      assert.notEqual(r.code, 0, `${bad} accepted: ${r.stdout}`)
      assert.match(r.stderr, /--peer-id/)
      assert.equal(readFileSync(g, 'utf8'), before)
    }
    assert.equal(tallyd('genesis', 'add-validator', '--genesis', g, '--name', 'v0', '--public-key', publicKey, '--peer-id', peerId).code, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd testnet names a bad host in --hosts instead of exiting without a word', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    for (const hosts of ['a,', 'a,b c', 'a,-x']) {
      const out = join(dir, 'net')
      const r = tallyd('testnet', '--validators', '2', '--out', out, '--hosts', hosts)
      assert.notEqual(r.code, 0, `${hosts} accepted`)
      assert.match(r.stderr, /--hosts/, `${JSON.stringify(hosts)}: stderr ${JSON.stringify(r.stderr)}`)
      assert.equal(existsSync(out), false)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd genesis add-validator / add-balance name a genesis of the wrong shape in one line, and leave it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    const g = join(dir, 'genesis.json')
    const key = keyPairFromSeed(new Uint8Array(32).fill(7)).publicKey
    const peer = peerIdOf(keyPairFromSeed(new Uint8Array(32).fill(8)).publicKey)
    const addr = `0x${'11'.repeat(20)}`
    for (const text of ['"str"', 'null', '[]', '{"validators": 5}', '{"balances": {"a": 1}}']) {
      writeFileSync(g, text)
      for (const r of [
        tallyd('genesis', 'add-validator', '--genesis', g, '--name', 'v0', '--public-key', to0x(key), '--peer-id', peer),
        tallyd('genesis', 'add-balance', '--genesis', g, '--address', addr, '--amount', '5'),
      ]) {
        assert.notEqual(r.code, 0, text)
        assert.doesNotMatch(r.stderr, /TypeError|is not iterable|Cannot (read|create) propert|\n\s+at /, `${text}: ${r.stderr}`)
        assert.match(r.stderr, /genesis\.json/, `${text}: ${r.stderr}`)
        assert.equal(readFileSync(g, 'utf8'), text)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd testnet --out and init --home name a directory they cannot create, at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const targets: [string, RegExp][] = [
      [file, /a-file is a regular file, not a directory/],
      [join(file, 'sub'), /a-file is a regular file, not a directory/],
    ]
    // procfs answers ENOENT to a new entry in a directory that exists: Node's recursive mkdir retries it forever
    if (existsSync('/proc/self')) targets.push(['/proc/tally-test/net', /\/proc( is not writable|\/tally-test cannot be created)/])
    for (const [target, message] of targets) {
      for (const args of [
        ['testnet', '--validators', '1', '--out', target],
        ['init', '--home', target],
      ]) {
        const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), ...args], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' })
        assert.equal(r.signal, null, `${args.join(' ')}: tallyd hung`)
        assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}`)
        assert.match(r.stderr, message, args.join(' '))
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd init and genesis new never write through a symlink to nothing where their file goes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    const home = join(dir, 'home')
    mkdirSync(home)
    for (const [args, link] of [
      [['init', '--home', home], join(home, 'validator_key.json')],
      [['init', '--home', home], join(home, 'node_key.json')],
      [['genesis', 'new', '--chain-id', 'acme-1', '--out', join(dir, 'genesis.json')], join(dir, 'genesis.json')],
    ] as [string[], string][]) {
      const target = join(dir, 'elsewhere')
      symlinkSync(target, link)
      const r = tallyd(...args)
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`)
      assert.match(r.stderr, /already exists/, args.join(' '))
      assert.equal(existsSync(target), false, `${args.join(' ')} wrote through ${link}`)
      rmSync(link)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd genesis new names the --out whose directory is missing or not a directory, and writes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-args-'))
  try {
    writeFileSync(join(dir, 'a-file'), '')
    for (const [out, fault, reason] of [
      [join(dir, 'missing', 'genesis.json'), join(dir, 'missing'), 'does not exist'],
      [join(dir, 'missing', 'deeper', 'genesis.json'), join(dir, 'missing', 'deeper'), 'does not exist'],
      [join(dir, 'a-file', 'genesis.json'), join(dir, 'a-file'), 'is a regular file, not a directory'],
    ] as const) {
      const r = tallyd('genesis', 'new', '--chain-id', 'acme-1', '--out', out)
      assert.equal(r.code, 1, `${out}: ${r.stdout}`)
      assert.equal(r.stderr, `tallyd: --out ${out}: ${fault} ${reason}\n`)
      assert.equal(existsSync(join(dir, 'missing')), false)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
