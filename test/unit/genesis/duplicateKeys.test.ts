import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeKeyFile, encodeKeyFile } from '../../../crypto/keyfile.js'
import { duplicateJsonKey } from '../../../crypto/strictJson.js'
import { loadHome } from '../../../node/cli/home.js'
import { writeTestnet } from '../../../node/cli/testnetFiles.js'
import { repoRoot } from '../../helpers/fixtures.js'

/**
 * `JSON.parse` keeps the last of two equal keys: a genesis with `"chainId"` twice would be read as one chain by the
 * node and as another by whoever reviewed the file. Files from outside are refused when a key repeats.
 */

test('duplicateJsonKey finds a key twice in one object, at any depth, escapes decoded', () => {
  assert.equal(duplicateJsonKey('{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}'), undefined)
  assert.equal(duplicateJsonKey('{"a":1,"a":2}'), 'a')
  assert.equal(duplicateJsonKey('{"x":[{"k":1,"y":"a,\\"k\\":","k":2}]}'), 'k')
  assert.equal(duplicateJsonKey('{"a":1,"\\u0061":2}'), 'a')
  assert.equal(duplicateJsonKey('{"__proto__":1,"__proto__":2}'), '__proto__')
  assert.equal(duplicateJsonKey('[{"a":"{\\"a\\":1,\\"a\\":2}"}]'), undefined)
  assert.equal(duplicateJsonKey('"a"'), undefined)
})

test('a home whose config or genesis repeats a key is refused, naming the key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-dupkeys-'))
  try {
    writeTestnet({ validators: 1, out: join(dir, 'net'), chainId: 'dup-1', host: '127.0.0.1', p2pPort: 26656, rpcPort: 8545, accounts: 1, balance: 1000n })
    const home = join(dir, 'net', 'node0')
    const config = readFileSync(join(home, 'config.json'), 'utf8')
    const genesis = readFileSync(join(home, 'genesis.json'), 'utf8')
    assert.ok(loadHome(home))
    const edits: [string, string, string, string][] = [
      ['config.json', config, '"port": 8545', '"port": 8545, "port": 9999'],
      ['config.json', config, '"moniker": "node0"', '"moniker": "node0", "moniker": "evil"'],
      ['genesis.json', genesis, '"chainId": "dup-1"', '"chainId": "dup-1", "chainId": "other-1"'],
      ['genesis.json', genesis, '"power": 1', '"power": 1, "power": 1000'],
      ['genesis.json', genesis, '"proposeMs": 3000', '"proposeMs": 3000, "proposeMs": 1'],
    ]
    for (const [file, text, from, to] of edits) {
      assert.ok(text.includes(from), from)
      writeFileSync(join(home, file), text.replace(from, to))
      assert.throws(() => loadHome(home), /appears twice/, `${file}: ${to}`)
      writeFileSync(join(home, file), text)
    }
    // in a balance: found when the balances are read
    const amount = /"amount":"1000"/
    assert.match(genesis, amount)
    writeFileSync(join(home, 'genesis.json'), genesis.replace(amount, '"amount":"1000","amount":"5"'))
    const h = loadHome(home)
    assert.throws(() => h.genesis.file.readAll(), /appears twice/)

    // the CLIs: tallyd genesis validate and the wallet's trusted genesis
    const dupGenesis = join(dir, 'dup.json')
    writeFileSync(dupGenesis, genesis.replace('"chainId": "dup-1"', '"chainId": "dup-1", "chainId": "other-1"'))
    const v = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), 'genesis', 'validate', '--genesis', dupGenesis], { encoding: 'utf8' })
    assert.equal(v.status, 1, v.stdout)
    assert.match(v.stderr, /"chainId" appears twice/)
    const w = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'bin', 'tally.js'),
        'balance',
        `0x${'ab'.repeat(20)}`,
        '--rpc',
        'http://127.0.0.1:9',
        '--genesis',
        dupGenesis,
        '--light-dir',
        join(dir, 'light'),
      ],
      { encoding: 'utf8' },
    )
    assert.equal(w.status, 1)
    assert.match(w.stderr, /"chainId" appears twice/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a key file that repeats a key is malformed', () => {
  const text = encodeKeyFile(new Uint8Array(32).fill(7))
  assert.ok(decodeKeyFile(text).ok)
  const dup = text.replace('"version": 1', '"version": 1, "version": 1')
  const r = decodeKeyFile(dup)
  assert.equal(r.ok, false)
  assert.ok(!r.ok && r.error.code === 'malformed' && /appears twice/.test(r.error.reason), JSON.stringify(r))
})
