import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { Metrics } from '../../../rpc/metrics.js'
import { RpcServer } from '../../../rpc/server.js'
import { runTally } from './runTally.js'
import { type Json, jsonRpcRelay } from '../rpc/light/relay.js'
import { TestChain, testKey } from '../rpc/light/testChain.js'

/**
 * `tally block` verified (docs/wallet.md, "Blocks"): everything it shows is made from what it verified, whichever
 * endpoint answers and whatever the light store already trusts.
 */

const alice = testKey('alice')
const aliceAddress = addressFromPublicKey(alice.publicKey)

describe('tally block shows only what it verified', () => {
  let dir: string
  let chain: TestChain
  let honest: RpcServer
  let genesisFile: string
  const relays: Server[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-block-verify-'))
    chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commit()
    genesisFile = join(dir, 'genesis.json')
    writeFileSync(genesisFile, JSON.stringify(chain.genesisJson))
    honest = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend: chain.backend, metrics: new Metrics() })
    await honest.start()
  })
  after(async () => {
    await honest.stop()
    await Promise.all(relays.map((s) => new Promise((resolve) => s.close(resolve))))
    rmSync(dir, { recursive: true, force: true })
  })

  /** An endpoint in front of the honest one whose `chain_getBlock` results `change` rewrites. */
  async function tampering(change: (result: Json) => void): Promise<string> {
    const r = await jsonRpcRelay(honest.url, async (request, passOn) => {
      const answer = await passOn(request)
      if (request.method === 'chain_getBlock' && answer.result !== null && typeof answer.result === 'object') change(answer.result as Json)
      return answer
    })
    relays.push(r.server)
    return r.url
  }

  const tally = (argv: string[]) => runTally(argv, { env: {}, rpcTimeoutMs: 2000 })

  test('the certificate shown is verified even when the light store already trusts the block', async () => {
    const sent = createTransfer(alice.secretKey, {
      chainId: chain.genesis.chainId,
      to: addressFromPublicKey(testKey('bob').publicKey),
      amount: 5n,
      nonce: 0n,
    })
    const block = await chain.commit([sent.bytes])
    const light = join(dir, 'light-known')
    const first = await tally(['block', String(block.height), '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light, '--json'])
    assert.equal(first.code, 0, first.err)
    const verified = JSON.parse(first.out).commit as { signatures: { validator: string; signature: string }[] }
    // the same block and header, with a certificate whose signatures no validator made
    const forged = await tampering((result) => {
      const commit = result.commit as { signatures: { signature: string }[] }
      for (const s of commit.signatures) s.signature = to0x(new Uint8Array(64).fill(7))
    })
    const again = await tally(['block', String(block.height), '--rpc', forged, '--light-dir', light, '--json'])
    if (again.code === 0) {
      const shown = JSON.parse(again.out).commit as { signatures: { validator: string; signature: string }[] }
      assert.deepEqual(shown.signatures, verified.signatures, 'the certificate shown is not the one verified')
    }
    assert.deepEqual([again.code, again.out], [1, ''])
    assert.match(again.err, new RegExp(`the certificate of block ${block.height} does not verify`))
    // with the honest endpoint after it, the block is shown from there
    const both = await tally(['block', String(block.height), '--rpc', `${forged},${honest.url}`, '--light-dir', light, '--json'])
    assert.equal(both.code, 0, both.err)
    assert.deepEqual(JSON.parse(both.out).commit.signatures, verified.signatures)
  })

  test('the certificate shown is verified for a block below the trusted tip, whose header is trusted by its hash chain', async () => {
    const below = await chain.commit()
    await chain.commitEmpty(3)
    const light = join(dir, 'light-below')
    const tip = await tally(['block', '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light, '--json'])
    assert.equal(tip.code, 0, tip.err)
    assert.equal(JSON.parse(tip.out).height, chain.height)
    // the block below the trusted tip, its header intact and its certificate signed by no validator
    const forged = await tampering((result) => {
      const commit = result.commit as { signatures: { signature: string }[] }
      for (const s of commit.signatures) s.signature = to0x(new Uint8Array(64).fill(9))
    })
    const r = await tally(['block', String(below.height), '--rpc', forged, '--light-dir', light, '--json'])
    if (r.code === 0) {
      const shown = JSON.parse(r.out).commit as { signatures: { signature: string }[] }
      const bad = shown.signatures.filter((s) => s.signature === to0x(new Uint8Array(64).fill(9)))
      assert.deepEqual(bad, [], 'signatures no validator made are shown as the verified certificate')
    }
    assert.deepEqual([r.code, r.out], [1, ''])
    assert.match(r.err, new RegExp(`the certificate of block ${below.height} does not verify`))
  })
})
