import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { writeTestnet } from '../../../../node/cli/testnetFiles.js'
import { repoRoot } from '../../../helpers/fixtures.js'

/**
 * `tallyd devnet` reads the files of its `--dir` (the genesis, each validator's config, a dev key) and appends to each
 * validator's log there: a FIFO or a directory in their place is one line on stderr and exit code 1, before any
 * validator is started, never a hang.
 */

const files = ['genesis.json', join('node0', 'config.json'), join('keys', 'account0.json'), 'node0.log']

test('tallyd devnet refuses files in its directory that are not regular files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-devnet-files-'))
  try {
    const net = join(dir, 'net')
    // ports no other test binds: a devnet that started its validators anyway must not take anyone's
    writeTestnet({ validators: 1, out: net, chainId: 'tally-devnet', host: '127.0.0.1', p2pPort: 41_731, rpcPort: 41_741, accounts: 1, balance: 1000n })
    for (const file of files) {
      for (const kind of ['FIFO', 'directory']) {
        const copy = join(dir, `${file.replace(/\W/g, '-')}-${kind}`)
        cpSync(net, copy, { recursive: true })
        rmSync(join(copy, file), { force: true })
        if (kind === 'FIFO') assert.equal(spawnSync('mkfifo', [join(copy, file)]).status, 0)
        else mkdirSync(join(copy, file))
        const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), 'devnet', '--dir', copy], { encoding: 'utf8', timeout: 15_000 })
        assert.equal(r.signal, null, `${file} as a ${kind}: tallyd devnet hung (${r.stdout})`)
        assert.equal(r.status, 1, `${file} as a ${kind}: ${r.stdout}${r.stderr}`)
        assert.match(r.stderr, new RegExp(`${join(copy, file).replace(/[.\\]/g, '\\$&')} is a ${kind}, not a regular file`), file)
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
        assert.doesNotMatch(r.stdout, /running with/, `${file} as a ${kind}: validators were started`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tallyd devnet refuses a config.json with a key twice, as tallyd start does, before any validator starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-devnet-dup-'))
  try {
    const net = join(dir, 'net')
    writeTestnet({ validators: 1, out: net, chainId: 'tally-devnet', host: '127.0.0.1', p2pPort: 41_751, rpcPort: 41_761, accounts: 1, balance: 1000n })
    const path = join(net, 'node0', 'config.json')
    // the devnet would print one port while the validator, reading the last value, listens on another
    writeFileSync(path, readFileSync(path, 'utf8').replace(/^\{/, '{"rpc":{"port":41771},'))
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), 'devnet', '--dir', net], { encoding: 'utf8', timeout: 15_000 })
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`)
    assert.match(r.stderr, /appears twice/)
    assert.doesNotMatch(r.stdout, /running with/, 'validators were started')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
