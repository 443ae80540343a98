import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TallyNode } from '../../../node/node.js'
import { silentLogger } from '../../../node/logger.js'
import { writeTestnet } from '../../../node/cli/testnetFiles.js'

function testnet(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-node-'))
  writeTestnet({ validators: 2, out: join(dir, 'net'), chainId: 'tally-unit', host: '127.0.0.1', p2pPort: 1, rpcPort: 1000, accounts: 0, balance: 10n })
  return dir
}

test('a validator whose node key is not the peer id its genesis lists refuses to start', async () => {
  const dir = testnet()
  try {
    copyFileSync(join(dir, 'net', 'node1', 'node_key.json'), join(dir, 'net', 'node0', 'node_key.json'))
    await assert.rejects(TallyNode.start(join(dir, 'net', 'node0'), { logger: silentLogger() }), /the genesis lists this validator as/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an invalid config.json is refused with the field named', async () => {
  const dir = testnet()
  try {
    writeFileSync(join(dir, 'net', 'node0', 'config.json'), JSON.stringify({ rpc: { port: 'eighty' } }))
    await assert.rejects(TallyNode.start(join(dir, 'net', 'node0'), { logger: silentLogger() }), /rpc\.port/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a genesis that does not parse is refused with the problem named', async () => {
  const dir = testnet()
  try {
    writeFileSync(join(dir, 'net', 'node0', 'genesis.json'), JSON.stringify({ chainId: 'x', validators: [] }))
    await assert.rejects(TallyNode.start(join(dir, 'net', 'node0'), { logger: silentLogger() }), /genesis\.json is invalid/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
