import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTestnet } from '../../../../node/cli/testnetFiles.js'
import { repoRoot } from '../../../helpers/fixtures.js'

/**
 * Files a user names are read only when they are regular files, and only up to their bound: a directory, a FIFO,
 * /dev/zero, a symlink loop or a huge file is one line on stderr and a non-zero exit, never a hang or gigabytes.
 */

const run = (bin: string, args: string[]) => {
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', join(repoRoot, 'bin', bin), ...args], { encoding: 'utf8', timeout: 15_000 })
  return { code: r.status, signal: r.signal, stderr: r.stderr }
}

/** Every kind of not-a-file, under `dir`: name → path. */
function hostileFiles(dir: string): Record<string, string> {
  const files = {
    directory: join(dir, 'a-directory'),
    fifo: join(dir, 'a-fifo'),
    'dev-zero': join(dir, 'dev-zero'),
    'symlink-loop': join(dir, 'loop-a'),
    '2 GB file': join(dir, 'huge'),
  }
  mkdirSync(files.directory)
  assert.equal(spawnSync('mkfifo', [files.fifo]).status, 0)
  symlinkSync('/dev/zero', files['dev-zero'])
  symlinkSync(join(dir, 'loop-b'), files['symlink-loop'])
  symlinkSync(files['symlink-loop'], join(dir, 'loop-b'))
  writeFileSync(files['2 GB file'], '')
  truncateSync(files['2 GB file'], 2 ** 31)
  return files
}

const problem = /is a directory|is a FIFO|is a device|is a symlink loop|larger than \d+ bytes/

test('tallyd refuses key, config and genesis files that are not regular files of a bounded size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-files-'))
  try {
    writeTestnet({ validators: 1, out: join(dir, 'net'), chainId: 'files-1', host: '127.0.0.1', p2pPort: 26656, rpcPort: 8545, accounts: 0, balance: 1000n })
    const hostile = hostileFiles(dir)
    for (const file of ['node_key.json', 'validator_key.json', 'config.json', 'genesis.json']) {
      for (const [what, target] of Object.entries(hostile)) {
        const home = join(dir, `home-${file}-${what.replace(/\W/g, '')}`)
        mkdirSync(home)
        for (const f of ['node_key.json', 'validator_key.json', 'config.json', 'genesis.json']) {
          if (f === file) symlinkSync(target, join(home, f))
          else copyFileSync(join(dir, 'net', 'node0', f), join(home, f))
        }
        // `validator pending --home` loads the whole home (config, genesis, keys) before it asks anything
        const command = file.endsWith('key.json') ? ['genesis', 'show-key', '--home', home] : ['validator', 'pending', '--home', home]
        const r = run('tallyd.js', command)
        assert.equal(r.signal, null, `${file} as ${what}: tallyd hung`)
        assert.equal(r.code, 1, `${file} as ${what}: ${r.stderr}`)
        assert.match(r.stderr, problem, `${file} as ${what}`)
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      }
    }
    for (const [what, target] of Object.entries(hostile)) {
      const r = run('tallyd.js', ['genesis', 'validate', '--genesis', target])
      assert.equal(r.signal, null, `genesis validate of ${what}: tallyd hung`)
      assert.equal(r.code, 1, `genesis validate of ${what}: ${r.stderr}`)
      assert.match(r.stderr, problem, `genesis validate of ${what}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tally refuses key and genesis files that are not regular files of a bounded size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-files-'))
  try {
    const hostile = hostileFiles(dir)
    for (const [what, target] of Object.entries(hostile)) {
      const key = run('tally.js', ['address', '--key', target])
      assert.equal(key.signal, null, `key file as ${what}: tally hung`)
      assert.equal(key.code, 1, `key file as ${what}: ${key.stderr}`)
      assert.match(key.stderr, problem, `key file as ${what}`)
      const genesis = run('tally.js', [
        'balance',
        `0x${'ab'.repeat(20)}`,
        '--rpc',
        'http://127.0.0.1:9',
        '--genesis',
        target,
        '--light-dir',
        join(dir, 'light'),
      ])
      assert.equal(genesis.signal, null, `genesis as ${what}: tally hung`)
      assert.equal(genesis.code, 1, `genesis as ${what}: ${genesis.stderr}`)
      assert.match(genesis.stderr, problem, `genesis as ${what}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
