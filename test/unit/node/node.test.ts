import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
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

test('the RPC server options config.json sets reach the server: one address past its connection bound gets 503', async () => {
  const dir = testnet()
  const home = join(dir, 'net', 'node0')
  const held: Socket[] = []
  let node: TallyNode | undefined
  try {
    const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))
    config.p2p.listen = '/ip4/127.0.0.1/tcp/0'
    config.rpc = { ...config.rpc, host: '127.0.0.1', port: 0, maxConnectionsPerAddress: 1 }
    writeFileSync(join(home, 'config.json'), JSON.stringify(config))
    node = await TallyNode.start(home, { logger: silentLogger() })
    const url = new URL(node.rpcUrl)
    const connect = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = createConnection({ host: url.hostname, port: Number(url.port) }, () => resolve(s))
        s.once('error', reject)
        held.push(s)
      })
    await connect()
    const second = await connect()
    const answer = await new Promise<string>((resolve) => {
      let got = ''
      second.on('data', (d) => {
        got += d.toString()
      })
      second.on('close', () => resolve(got))
      second.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')
    })
    assert.match(answer, /^HTTP\/1\.1 503/, `the second connection from one address: ${answer.slice(0, 80)}`)
  } finally {
    for (const s of held) s.destroy()
    await node?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
