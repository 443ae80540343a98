import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HomeError, loadHome, walPath } from '../../../../node/cli/home.js'
import { writeTestnet } from '../../../../node/cli/testnetFiles.js'

test('the WAL lives beside the guard record, and a WAL left in data/wal is moved there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-home-'))
  try {
    assert.equal(walPath(dir), join(dir, 'consensus.wal'))
    mkdirSync(join(dir, 'data', 'wal'), { recursive: true })
    writeFileSync(join(dir, 'data', 'wal', 'consensus.wal'), 'records')
    assert.equal(walPath(dir), join(dir, 'consensus.wal'))
    assert.equal(readFileSync(join(dir, 'consensus.wal'), 'utf8'), 'records')
    assert.equal(existsSync(join(dir, 'data', 'wal', 'consensus.wal')), false)
    // a WAL already in place is never replaced by one found in data/
    writeFileSync(join(dir, 'data', 'wal', 'consensus.wal'), 'older')
    walPath(dir)
    assert.equal(readFileSync(join(dir, 'consensus.wal'), 'utf8'), 'records')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('peer ids libp2p cannot read, in config.json or the genesis, are refused at load with the field named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-home-'))
  try {
    writeTestnet({ validators: 2, out: join(dir, 'net'), chainId: 'tally-unit', host: '127.0.0.1', p2pPort: 1, rpcPort: 1000, accounts: 0, balance: 10n })
    const home = join(dir, 'net', 'node0')
    assert.doesNotThrow(() => loadHome(home))
    const fake = '1'.repeat(41)
    const configPath = join(home, 'config.json')
    const config = JSON.parse(readFileSync(configPath, 'utf8'))
    const withConfig = (p2p: object) => writeFileSync(configPath, JSON.stringify({ ...config, p2p: { ...config.p2p, ...p2p } }))
    const refusal = () => {
      try {
        loadHome(home)
      } catch (e) {
        assert.ok(e instanceof HomeError)
        return e.message
      }
      return assert.fail('loaded')
    }
    withConfig({ peers: [{ ...config.p2p.peers[0], peerId: fake }] })
    assert.match(refusal(), /p2p\.peers\[0\]\.peerId: .*not a libp2p peer id/)
    // a peer id of another key type is a peer id: a full node's, say
    withConfig({ allowedPeerIds: ['QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'] })
    assert.doesNotThrow(() => loadHome(home))
    withConfig({ allowedPeerIds: [config.p2p.peers[0].peerId, fake] })
    assert.match(refusal(), /p2p\.allowedPeerIds\[1\]: .*not a libp2p peer id/)
    withConfig({})
    const genesisPath = join(home, 'genesis.json')
    const genesis = JSON.parse(readFileSync(genesisPath, 'utf8'))
    genesis.validators[1].peerId = fake
    writeFileSync(genesisPath, JSON.stringify(genesis))
    assert.match(refusal(), /validators\[1\]\.peerId: .*not a libp2p peer id/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a key file with a field the format does not have is refused at load, naming the file and the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-home-'))
  try {
    writeTestnet({ validators: 1, out: join(dir, 'net'), chainId: 'tally-unit', host: '127.0.0.1', p2pPort: 1, rpcPort: 1000, accounts: 0, balance: 10n })
    const home = join(dir, 'net', 'node0')
    for (const file of ['validator_key.json', 'node_key.json']) {
      const path = join(home, file)
      const text = readFileSync(path, 'utf8')
      writeFileSync(path, JSON.stringify({ ...JSON.parse(text), secret_key: '0x00' }))
      assert.throws(
        () => loadHome(home),
        (e: unknown) => e instanceof HomeError && e.message.includes(`${file}: secret_key: unknown field`),
        file,
      )
      writeFileSync(path, text)
      assert.doesNotThrow(() => loadHome(home))
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
