import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fromHex } from '../../../../crypto/bytes.js'
import { keyPairFromSeed, sign, verify } from '../../../../crypto/ed25519.js'
import { silentLogger } from '../../../../node/logger.js'
import { VerifyPool } from '../../../../node/mempool/verifyPool.js'
import { repoRoot } from '../../../helpers/fixtures.js'
import { Rng } from '../../../helpers/random.js'

const fixtures = join(repoRoot, 'test', 'fixtures', 'vectors')

interface Case {
  publicKey: Uint8Array
  message: Uint8Array
  signature: Uint8Array
}

/** Valid and invalid signatures: good ones, flipped bits, and every Wycheproof case. */
function cases(): Case[] {
  const rng = new Rng(11)
  const out: Case[] = []
  for (let i = 0; i < 300; i++) {
    const kp = keyPairFromSeed(rng.bytes(32))
    const message = rng.bytes(i % 120)
    const signature = sign(kp.secretKey, message)
    if (i % 3 === 1) signature[i % 64]! ^= 1
    out.push({ publicKey: kp.publicKey, message, signature })
  }
  const wy = JSON.parse(readFileSync(join(fixtures, 'wycheproof-ed25519_test.json'), 'utf8')) as {
    testGroups: { publicKey: { pk: string }; tests: { msg: string; sig: string }[] }[]
  }
  for (const g of wy.testGroups) {
    for (const t of g.tests) {
      const publicKey = fromHex(g.publicKey.pk)
      const signature = fromHex(t.sig)
      const message = fromHex(t.msg)
      if (publicKey && signature && message) out.push({ publicKey, message, signature })
    }
  }
  return out
}

describe('VerifyPool', () => {
  it('gives the inline verdict for every case, in request order, across several workers', async () => {
    const pool = new VerifyPool({ workers: 2, maxBatch: 16 }, silentLogger())
    try {
      const all = cases()
      const order: number[] = []
      const verdicts = await Promise.all(
        all.map((c, i) =>
          pool.verify(c.publicKey, c.message, c.signature).then((v) => {
            order.push(i)
            return v
          }),
        ),
      )
      assert.deepEqual(
        verdicts,
        all.map((c) => verify(c.publicKey, c.message, c.signature)),
      )
      assert.ok(verdicts.includes(true) && verdicts.includes(false))
      assert.deepEqual(
        order,
        all.map((_, i) => i),
      )
      assert.ok(pool.stats.batches >= all.length / 16, `${pool.stats.batches} batches`)
      assert.equal(pool.stats.inline, 0)
    } finally {
      await pool.stop()
    }
  })

  it('verifies inline with no workers and after stop', async () => {
    const kp = keyPairFromSeed(new Uint8Array(32).fill(3))
    const msg = new Uint8Array([1, 2, 3])
    const sig = sign(kp.secretKey, msg)
    const inline = new VerifyPool({ workers: 0 }, silentLogger())
    assert.equal(await inline.verify(kp.publicKey, msg, sig), true)
    assert.equal(await inline.verify(kp.publicKey, new Uint8Array([9]), sig), false)
    assert.equal(inline.stats.inline, 2)
    const pool = new VerifyPool({ workers: 1 }, silentLogger())
    assert.equal(await pool.verify(kp.publicKey, msg, sig), true)
    await pool.stop()
    assert.equal(await pool.verify(kp.publicKey, msg, sig), true)
    assert.equal(pool.workers, 0)
    assert.throws(() => new VerifyPool({ workers: -1 }, silentLogger()), RangeError)
  })

  it('a failed worker hands its batches back to the main thread', async () => {
    const pool = new VerifyPool({ workers: 1 }, silentLogger())
    try {
      const kp = keyPairFromSeed(new Uint8Array(32).fill(4))
      const msg = new Uint8Array([7])
      const sig = sign(kp.secretKey, msg)
      const pending = Promise.all(Array.from({ length: 50 }, () => pool.verify(kp.publicKey, msg, sig)))
      // the batch is posted on the next turn; the worker dies before answering
      await new Promise((r) => setImmediate(r))
      await (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!.worker.terminate()
      assert.deepEqual(await pending, new Array(50).fill(true))
      assert.equal(pool.workers, 0)
    } finally {
      await pool.stop()
    }
  })
})
