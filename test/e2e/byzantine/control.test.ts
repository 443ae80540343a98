import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { createTransfer } from '../../../ledger/transaction.js'
import { rpc, waitFor } from '../harness.js'
import { readDevKey } from '../load.js'
import { AttackNet } from './attackNet.js'

/**
 * The control of the Byzantine suite: the attacker, behaving well, is a validator like any other. Its proposals
 * (with a transaction the honest validators fetch from it) commit, its votes complete quorums with validator 2
 * down, it serves the blocks a wiped validator syncs from, and no honest validator logs it as an offender. The
 * attack tests assert the opposite outcomes with the same machinery, so a failure there is the attack's doing.
 */
describe('control: the Byzantine harness with an attacker that behaves', { timeout: 240_000 }, () => {
  let a: AttackNet

  before(async () => {
    a = await AttackNet.start()
  })

  after(async () => {
    await a?.destroy()
  })

  test('the attacker\'s proposals commit, with a transaction the others fetch from it', async () => {
    const start = Date.now()
    const attacker = a.attacker
    const faucet = readDevKey(a.net.keyFile('faucet'))
    const to = readDevKey(a.net.keyFile('account0')).address
    let txHash = ''
    attacker.behaviour.plan = async (_height, rounds) => {
      if (rounds[0] !== 0) return { txs: [] }
      const { nonce } = await rpc<{ nonce: string }>(a.net.rpcUrl(0), 'ledger_getAccount', [faucet.address])
      const t = createTransfer(faucet.secretKey, { chainId: attacker.genesis.chainId, to: parseAddress(to)!, amount: 7n, nonce: BigInt(nonce) })
      txHash = to0x(t.hash)
      attacker.behaviour.plan = () => ({ txs: [] })
      return { txs: [t] }
    }
    const committed = await waitFor('a block the attacker proposed, with its transaction, to commit', async () => {
      if (txHash === '') return false
      const tx = await rpc<{ status: string; height?: number; ok?: boolean }>(a.net.rpcUrl(1), 'tx_get', [txHash])
      return tx.status === 'committed' ? tx : false
    }, 30_000)
    assert.equal(committed.ok, true)
    const block = await a.net.block(2, committed.height)
    assert.equal(String(block!.header.proposer).toLowerCase(), to0x(attacker.address))
    await waitFor('a second block proposed by the attacker', async () => {
      const mine = attacker.sent.filter((s) => s.height > committed.height!)
      for (const s of mine) {
        const b = await a.net.block(0, s.height).catch(() => null)
        if (b && b.hash === to0x(s.valueId)) return true
      }
      return false
    }, 30_000)
    await a.assertHealthy()
    console.log(`# attacker proposals commit: ${Date.now() - start} ms`)
  })

  test('with validator 2 down, the attacker\'s votes keep the chain going, and 2 syncs back after a wipe', async () => {
    const start = Date.now()
    await a.net.stop(2)
    await a.waitProgress(8, [0, 1], 60_000)
    await a.wipeAndRestart(2)
    const target = await a.maxHeight([0, 1])
    await a.net.waitHeight(target, [2], 30_000)
    console.log(`# 8 heights without validator 2, then its catch-up: ${Date.now() - start} ms`)
    await a.assertHealthy()
  })

  test('no honest validator logs the attacker as an offender or holds evidence against it', async () => {
    const attacker = a.attacker
    for (const i of a.honest) {
      assert.deepEqual(a.offenderLines(i, [attacker.peerId, to0x(attacker.address).slice(2)]).map((l) => l.raw), [], `node${i} logged the attacker`)
      assert.deepEqual(await rpc<unknown[]>(a.net.rpcUrl(i), 'chain_getEvidence'), [], `node${i} holds evidence`)
    }
    assert.deepEqual(attacker.errors, [])
  })
})
