import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeTransaction, encodeTransaction, signGovernanceTransaction, type DecodedTransaction } from '../../../../ledger/transaction.js'
import { CHAIN_ID, HostWorld } from './hostFixture.js'

/**
 * Block sync across a set change: validators 1-3 vote validator 0 out in block 1, so the set of heights 1 and 2 is the
 * genesis four and from height 3 on it is validators 1-3. A lying peer serves height 3 with a certificate of the old
 * set (0, 1 and 2: three of the four); it must be judged by the set of height 3 and refused, while the same quorum
 * still certifies height 2.
 */
describe('consensus host: sync across a set change', () => {
  it('judges each certificate by the set of its own height, on both sides of the change', async () => {
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const t = await w.boot({ self: null })
    const removal = (i: number): DecodedTransaction => {
      const v = w.validators[i]!
      const tx = signGovernanceTransaction(
        { chainId: CHAIN_ID, from: v.publicKey, nonce: 0n, action: { type: 'remove', address: w.validators[0]!.address } },
        v.secretKey,
      )
      const d = decodeTransaction(encodeTransaction(tx))
      assert.ok(d.ok)
      return d.value
    }
    const chain = await w.chain(4, { txs: (h) => (h === 1 ? [removal(1), removal(2), removal(3)] : []), signers: [1, 2, 3] })
    const old = (h: number) => w.certificate(h, 0, chain[h - 1]!.hash, [0, 1, 2])
    // before block 1 is applied, the set of height 3 is not known
    assert.equal(t.host.verifyBlockCertificate(3, chain[2]!.stored, old(3)), undefined)
    const apply = async (h: number) => {
      const c = await t.host.checkSyncedBlock(h, chain[h - 1]!.stored, chain[h - 1]!.certificate)
      assert.ok(c.ok, c.ok ? '' : c.error.reason)
      assert.equal(await t.host.applySyncedBlock(c.value), true)
    }
    await apply(1)
    assert.equal(t.host.validatorSetAt(3)?.validators.length, 3)
    // height 2: still the four, so the old quorum certifies it; height 3: the three, so it does not
    assert.equal(t.host.verifyBlockCertificate(2, chain[1]!.stored, old(2)), true)
    assert.equal(t.host.verifyBlockCertificate(3, chain[2]!.stored, old(3)), false)
    await apply(2)
    const lie = await t.host.checkSyncedBlock(3, chain[2]!.stored, old(3))
    assert.equal(lie.ok, false)
    if (!lie.ok) assert.equal(lie.error.code, 'certificate', lie.error.reason)
    // two of the three remaining (no more than two thirds of three) do not certify it either
    const two = await t.host.checkSyncedBlock(3, chain[2]!.stored, w.certificate(3, 0, chain[2]!.hash, [1, 2]))
    assert.equal(two.ok, false)
    await apply(3)
    // the block of height 4 carries the new set's certificate of height 3, as the header names it
    await apply(4)
    assert.equal(t.host.tip?.height, 4)
    t.stop()
    assert.deepEqual(t.fatal, [])
  })
})
