import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const LOAD = fileURLToPath(new URL('../../../bench/load.js', import.meta.url))

test('the load benchmark refuses bad options with one line, exit 2, before it prints or starts anything', () => {
  for (const args of [
    ['--verify-workers', '99'],
    ['--verify-workers', '-1'],
    ['--verify-workers', 'x'],
    ['--validators', '0'],
    ['--seconds', '1.5'],
    ['--warmup', '-1'],
    ['--warmup', '1e9'],
    ['--rate', ''],
  ]) {
    const r = spawnSync(process.execPath, [LOAD, ...args], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.equal(r.stdout, '', args.join(' '))
    assert.match(r.stderr, new RegExp(`^bench: ${args[0]} must be `), args.join(' '))
    assert.equal(r.stderr.trim().split('\n').length, 1, args.join(' '))
  }
})
