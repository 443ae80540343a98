import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Testnet, rpc, runCli, waitFor } from './harness.js'

/** The `tally` wallet as a user runs it, against a real four-validator testnet. */
describe('the tally wallet against a running network', { timeout: 240_000 }, () => {
  let net: Testnet
  const all = [0, 1, 2, 3]
  const password = { TALLY_PASSWORD: 'correct horse battery staple' }

  before(async () => {
    net = await Testnet.create(4)
    net.startAll()
    await net.waitHeight(1)
  })

  after(async () => {
    await net?.destroy()
  })

  const tally = (args: string[], env: Record<string, string> = {}) => runCli('tally', [...args, '--rpc', net.rpcUrl(0), '--genesis', net.genesisFile], { env })

  test('keygen, transfer, and the same balance on every validator', async () => {
    const keyFile = join(net.dir, 'alice.json')
    const gen = await runCli('tally', ['keygen', '--out', keyFile, '--json'], { env: password })
    assert.equal(gen.code, 0, gen.stderr)
    const { address } = JSON.parse(gen.stdout) as { address: string }
    assert.match(address, /^0x[0-9a-f]{40}$/)
    const addr = await runCli('tally', ['address', '--key', keyFile], { env: password })
    assert.equal(addr.code, 0, addr.stderr)
    assert.equal(addr.stdout.trim(), address)

    const t = await tally(['transfer', '--key', net.keyFile('faucet'), '--to', address, '--amount', '1000', '--json'])
    assert.equal(t.code, 0, t.stderr)
    const { height } = JSON.parse(t.stdout) as { height: number }
    await net.waitHeight(height)
    for (const i of all) {
      const b = await runCli('tally', ['balance', address, '--rpc', net.rpcUrl(i), '--genesis', net.genesisFile])
      assert.equal(b.code, 0, b.stderr)
      assert.equal(b.stdout.trim(), '1000', `balance on node${i}`)
      assert.match(b.stderr, /^verified at height \d+/)
    }
    const acct = await tally(['account', address, '--json'])
    const { verifiedHeight, blockHash, ...plain } = JSON.parse(acct.stdout) as { verifiedHeight: number; blockHash: string }
    assert.deepEqual(plain, { address, balance: '1000', nonce: '0' })
    assert.ok(verifiedHeight >= height)
    assert.match(blockHash, /^0x[0-9a-f]{64}$/)

    // spend from the encrypted key
    const back = await tally(['transfer', '--key', keyFile, '--to', `0x${'11'.repeat(20)}`, '--amount', '1', '--json'], password)
    assert.equal(back.code, 0, back.stderr)
    assert.equal((await tally(['balance', address])).stdout.trim(), '999')
  })

  test('a wrong password is a clear error', async () => {
    const keyFile = join(net.dir, 'bob.json')
    assert.equal((await runCli('tally', ['keygen', '--out', keyFile], { env: password })).code, 0)
    const r = await tally(['transfer', '--key', keyFile, '--to', `0x${'22'.repeat(20)}`, '--amount', '1'], { TALLY_PASSWORD: 'wrong' })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /password/i)
  })

  test('an overdraft is refused with its reason', async () => {
    const r = await tally(['transfer', '--key', net.keyFile('account0'), '--to', `0x${'33'.repeat(20)}`, '--amount', '18446744073709551615'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /insufficient_funds|insufficient funds/i)
  })

  test('a bad address and a bad amount are refused before anything is sent', async () => {
    const a = await tally(['transfer', '--key', net.keyFile('account0'), '--to', '0x1234', '--amount', '1'])
    assert.notEqual(a.code, 0)
    assert.match(a.stderr, /address/i)
    const b = await tally(['transfer', '--key', net.keyFile('account0'), '--to', `0x${'33'.repeat(20)}`, '--amount', '-5'])
    assert.notEqual(b.code, 0)
    assert.match(b.stderr, /amount/i)
  })

  test('fails over past a dead first endpoint, and names every endpoint when all are dead', async () => {
    const ok = await runCli('tally', ['status', '--json', '--rpc', `http://127.0.0.1:1,${net.rpcUrl(2)}`])
    assert.equal(ok.code, 0, ok.stderr)
    assert.ok((JSON.parse(ok.stdout) as { height: number }).height >= 1)
    const dead = await runCli('tally', ['status', '--rpc', 'http://127.0.0.1:1,http://127.0.0.1:2'])
    assert.notEqual(dead.code, 0)
    assert.match(dead.stderr, /127\.0\.0\.1:1/)
    assert.match(dead.stderr, /127\.0\.0\.1:2/)
  })

  test('pipelined transfers from one key without waiting all commit', async () => {
    const to = `0x${'44'.repeat(20)}`
    const hashes: string[] = []
    for (let k = 0; k < 3; k++) {
      const r = await tally(['transfer', '--key', net.keyFile('account1'), '--to', to, '--amount', '5', '--no-wait', '--json'])
      assert.equal(r.code, 0, r.stderr)
      hashes.push((JSON.parse(r.stdout) as { hash: string }).hash)
    }
    for (const h of hashes) {
      await waitFor(`tx ${h} committed`, async () => (await rpc<{ status: string }>(net.rpcUrl(3), 'tx_get', [h])).status === 'committed')
    }
    assert.equal(await rpc<string>(net.rpcUrl(1), 'ledger_getBalance', [to]), '15')
  })

  test('offline sign, then send, then look-ups', async () => {
    const status = JSON.parse((await tally(['status', '--json'])).stdout) as { chainId: string }
    const acct = JSON.parse(
      (await tally(['account', (await runCli('tally', ['address', '--key', net.keyFile('account2')])).stdout.trim(), '--json'])).stdout,
    ) as { nonce: string }
    const signed = await runCli('tally', [
      'sign',
      '--key',
      net.keyFile('account2'),
      '--to',
      `0x${'55'.repeat(20)}`,
      '--amount',
      '7',
      '--nonce',
      acct.nonce,
      '--chain-id',
      status.chainId,
      '--rpc',
      'http://127.0.0.1:1',
    ])
    assert.equal(signed.code, 0, signed.stderr)
    const hex = signed.stdout.trim()
    assert.match(hex, /^0x[0-9a-f]+$/)
    const sent = await tally(['send', hex, '--json'])
    assert.equal(sent.code, 0, sent.stderr)
    const { hash } = JSON.parse(sent.stdout) as { hash: string }
    await waitFor('sent tx committed', async () => (await rpc<{ status: string }>(net.rpcUrl(0), 'tx_get', [hash])).status === 'committed')
    const tx = await tally(['tx', hash, '--json'])
    assert.equal((JSON.parse(tx.stdout) as { status: string }).status, 'committed')
    const block = await tally(['block', '--json'])
    assert.equal(block.code, 0, block.stderr)
    const shown = JSON.parse(block.stdout) as { height: number; verifiedHeight: number; txs: unknown[] }
    assert.ok(shown.height >= 1)
    assert.equal(shown.verifiedHeight, shown.height, 'the block is verified')
  })
})
