import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesEqual } from '../../../../crypto/bytes.js'
import { FailedVerificationError, TrustError } from '../../../../rpc/light/errors.js'
import { LightClient, trustCheckpoint, type LightClientOptions, type Witnesses } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { DEFAULT_TRUSTING_PERIOD_MS, trustedBlockOf } from '../../../../rpc/light/verifier.js'
import { SyntheticChain, SyntheticProvider, type LieKind, type Member } from './syntheticChain.js'

/**
 * The light client against in-process header chains: sequential and skipping verification, bisection when the
 * trusted set no longer vouches for a header, validator-set changes crossed, the trusting period, verification
 * below the latest trusted block, and a provider lying at the target and at each step of the way.
 */

const four = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))

/** Every 10 heights two of the four validators are replaced: after 20 heights none of a set is left. */
function rotating(h: number): Member[] {
  const k = Math.floor((h - 1) / 10)
  return four(`r${2 * k}`, `r${2 * k + 1}`, `r${2 * k + 2}`, `r${2 * k + 3}`)
}

const rotatingChain = new SyntheticChain(rotating)
const stableChain = new SyntheticChain(() => four('a', 'b', 'c', 'd'))

function genesisBlocks(chain: SyntheticChain): TrustedBlocks {
  return new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(1) }, chain.genesis())
}

function client(chain: SyntheticChain, o: LightClientOptions & { now?: number } = {}, blocks = genesisBlocks(chain)) {
  const saved: number[] = []
  const light = new LightClient(o, {
    blocks,
    now: () => o.now ?? chain.timeOf(1000),
    onChange: (b) => {
      saved.push(b.latest().height)
    },
  })
  return { light, blocks, saved }
}

/** A witness serving the same chain: it confirms every header skipped to, so a skip needs the default trust level. */
function confirmed(): Witnesses {
  return { providers: [new SyntheticProvider(rotatingChain, 'witness')] }
}

async function rejects(p: Promise<unknown>, provider: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FailedVerificationError, `expected a failed verification, got ${String(e)}`)
    assert.equal(e.endpoint, provider)
    assert.match(e.reason, pattern)
    return true
  })
}

describe('light client: forward', () => {
  test('skipping over a stable set: one step, no fetch at all (the genesis set signs the target)', async () => {
    const { light, saved } = client(stableChain)
    const p = new SyntheticProvider(stableChain)
    const t = await light.verify(stableChain.block(500), p)
    assert.equal(t.height, 500)
    assert.deepEqual(p.asked, { blocks: [], validators: [] })
    assert.deepEqual(saved, [500])
    // warm: the next target verifies from the latest trusted block, the set held with it
    await light.verify(stableChain.block(640), p)
    assert.deepEqual(p.asked, { blocks: [], validators: [] })
    assert.equal(light.latest().height, 640)
  })

  test('sequential: every height, crossing the set changes at 11 and 21', async () => {
    const { light, blocks } = client(rotatingChain, { mode: 'sequential' })
    const p = new SyntheticProvider(rotatingChain)
    const t = await light.verify(rotatingChain.block(25), p)
    assert.equal(t.height, 25)
    assert.deepEqual(
      p.asked.blocks,
      Array.from({ length: 24 }, (_, i) => i + 1),
    )
    // a set is fetched only where it changes
    assert.deepEqual(p.asked.validators, [11, 21])
    assert.equal(blocks.all().length, 26)
  })

  test('skipping across one change that leaves half the trusted power: one step, the new set fetched', async () => {
    const { light } = client(rotatingChain)
    const p = new SyntheticProvider(rotatingChain)
    await light.verify(rotatingChain.block(15), p, confirmed())
    assert.deepEqual(p.asked, { blocks: [], validators: [15] })
  })

  test('from one endpoint, a skip needs more than two thirds of the trusted set: across that change it bisects', async () => {
    const { light, blocks } = client(rotatingChain)
    const p = new SyntheticProvider(rotatingChain)
    const t = await light.verify(rotatingChain.block(15), p)
    assert.ok(bytesEqual(t.hash!, rotatingChain.block(15).hash))
    // half the power of the genesis set signed 15: not enough without a witness; the pivots before the change are
    assert.ok(p.asked.blocks.length > 0, 'no pivot asked')
    for (const b of blocks.all().filter((x) => x.height > 0)) {
      assert.ok(bytesEqual(b.hash!, rotatingChain.block(b.height).hash), `height ${b.height} trusted off the chain`)
    }
  })

  test('skipping with bisection when no trusted validator is left, through pivots the provider gives', async () => {
    const { light, blocks } = client(rotatingChain)
    const p = new SyntheticProvider(rotatingChain)
    const t = await light.verify(rotatingChain.block(35), p, confirmed())
    assert.equal(t.height, 35)
    // 0 → 35 lacks trust; pivot 17 verifies; 17 → 35 lacks trust; pivot 26; 26 → 35 verifies
    assert.deepEqual(p.asked.blocks, [17, 26])
    assert.deepEqual(
      blocks.all().map((b) => b.height),
      [0, 17, 26, 35],
    )
    assert.ok(bytesEqual(t.hash!, rotatingChain.block(35).hash))
  })

  test('bisection far ahead: a long rotation from the genesis', async () => {
    const { light } = client(rotatingChain)
    const p = new SyntheticProvider(rotatingChain)
    await light.verify(rotatingChain.block(200), p, confirmed())
    assert.equal(light.latest().height, 200)
    assert.ok(p.asked.blocks.length >= 9 && p.asked.blocks.length <= 40, `pivots: ${p.asked.blocks.join(',')}`)
  })

  test('the trusting period: an expired latest block verifies nothing (a trust error, not a lie)', async () => {
    const { light } = client(stableChain, { now: stableChain.genesisTimeMs + DEFAULT_TRUSTING_PERIOD_MS })
    await assert.rejects(
      light.verify(stableChain.block(5), new SyntheticProvider(stableChain)),
      (e: unknown) => e instanceof TrustError && e.code === 'trust_expired',
    )
    const short = client(stableChain, { trustingPeriodMs: 60_000, now: stableChain.timeOf(130) })
    await assert.rejects(short.light.verify(stableChain.block(120), new SyntheticProvider(stableChain)), TrustError)
    // within the period of a recent trusted block, it works
    const recent = new TrustedBlocks(
      { kind: 'checkpoint', height: 90, hash: stableChain.block(90).hash },
      { ...trustedBlockOf(stableChain.block(90)), nextValidators: stableChain.validators(91) },
    )
    const ok = client(stableChain, { trustingPeriodMs: 60_000, now: stableChain.timeOf(130) }, recent)
    assert.equal((await ok.light.verify(stableChain.block(120), new SyntheticProvider(stableChain))).height, 120)
  })
})

describe('light client: a provider lying', () => {
  const kinds: LieKind[] = ['header', 'signature', 'signers', 'validators', 'forged', 'relinked']

  test('at the target itself, each way, adjacent and skipping: refused, naming the provider', async () => {
    // 20 → 21 is adjacent across a set change (the new set is fetched); 11 → 35 bisects across two changes
    for (const kind of kinds) {
      for (const [from, target] of [
        [20, 21],
        [11, 35],
      ] as const) {
        const { light, blocks } = client(rotatingChain)
        const honest = new SyntheticProvider(rotatingChain)
        await light.verify(rotatingChain.block(from), honest)
        const liar = new SyntheticProvider(rotatingChain, 'liar', new Map([[target, kind]]))
        // relinked is a header its own set signed: only the hash chain of adjacent verification catches it
        if (kind === 'relinked' && target !== from + 1) {
          assert.equal((await light.verify(liar.block(target), liar)).height, target)
          continue
        }
        await rejects(light.verify(liar.block(target), liar), 'liar', /./)
        assert.ok(light.latest().height < target, `${kind}: nothing of the lie is trusted`)
        assert.equal(blocks.at(target), undefined)
        // the honest provider then gets the true block trusted
        assert.equal((await light.verify(rotatingChain.block(target), honest)).height, target)
      }
    }
  })

  test('at a bisection pivot, each way: refused; the part verified before it stays trusted', async () => {
    for (const kind of [...kinds, 'missing' as const]) {
      const { light, blocks } = client(rotatingChain)
      // pivots from 0 to 35 are 17 then 26: lie at 26
      const liar = new SyntheticProvider(rotatingChain, 'liar', new Map([[26, kind]]))
      if (kind === 'relinked') {
        // signed by its own set, reached by skipping: it is trusted as a pivot, and 35 (whose parent is the true
        // 34) still verifies by skipping from it; the lie never shows in what the client returns
        assert.equal((await light.verify(rotatingChain.block(35), liar)).height, 35)
        continue
      }
      await rejects(light.verify(rotatingChain.block(35), liar), 'liar', /./)
      const trusted = blocks.all().map((b) => b.height)
      assert.ok(trusted.includes(17) && trusted.every((h) => h < 26), `${kind}: ${trusted.join(',')}`)
      const honest = new SyntheticProvider(rotatingChain)
      assert.equal((await light.verify(rotatingChain.block(35), honest)).height, 35)
      assert.ok(
        honest.asked.blocks.every((h) => h > trusted.at(-1)!),
        'resumes from the trusted part',
      )
    }
  })

  test('at each height of a sequential walk: refused at that height', async () => {
    for (const kind of kinds) {
      for (const at of [3, 11, 21]) {
        const { light } = client(rotatingChain, { mode: 'sequential' })
        const liar = new SyntheticProvider(rotatingChain, 'liar', new Map([[at, kind]]))
        if (kind === 'validators' && at === 3) {
          // the set of 3 is the one 2 announced and the client holds: the lying set is never asked for
          assert.equal((await light.verify(rotatingChain.block(25), liar)).height, 25)
          assert.ok(!liar.asked.validators.includes(3))
          continue
        }
        await rejects(light.verify(rotatingChain.block(25), liar), 'liar', /./)
        assert.equal(light.latest().height, at - 1, `${kind} at ${at}`)
      }
    }
  })

  test('a set fetched for a skipped-from block that is not the one it announced', async () => {
    const { light, blocks } = client(rotatingChain)
    const honest = new SyntheticProvider(rotatingChain)
    // 15 is trusted without its next set (it changes at 21, not at 16: the same set, kept)
    await light.verify(rotatingChain.block(20), honest)
    assert.equal(blocks.latest().nextValidators, undefined, 'the next set of 20 is another one')
    const liar = new SyntheticProvider(rotatingChain, 'liar', new Map([[21, 'validators']]))
    await rejects(light.verify(rotatingChain.block(29), liar), 'liar', /validator set of height 21 is not the one trusted header 20 announced/)
  })

  test('a block conflicting with a trusted one at the same height', async () => {
    const { light } = client(stableChain)
    const p = new SyntheticProvider(stableChain)
    await light.verify(stableChain.block(10), p)
    const liar = new SyntheticProvider(stableChain, 'liar', new Map([[10, 'header']]))
    await rejects(light.verify(liar.block(10), liar), 'liar', /conflicts with the trusted block/)
    const otherChain = new SyntheticChain(() => four('a', 'b', 'c', 'd'), { chainId: 'other-chain' })
    await rejects(light.verify(otherChain.block(11), new SyntheticProvider(otherChain, 'other')), 'other', /of chain "other-chain"/)
  })
})

describe('light client: below the latest trusted block', () => {
  test('forward from the closest trusted block below', async () => {
    const { light } = client(rotatingChain)
    const p = new SyntheticProvider(rotatingChain)
    await light.verify(rotatingChain.block(35), p)
    const t = await light.verify(rotatingChain.block(30), p)
    assert.equal(t.height, 30)
    assert.equal(light.latest().height, 35)
    assert.equal((await light.verifyHeight(26, p)).height, 26, 'a trusted height is answered from the store')
  })

  test('backwards by the hash chain below a checkpoint, and a lie on the way down', async () => {
    const root = { ...trustedBlockOf(stableChain.block(120)), nextValidators: stableChain.validators(121) }
    const blocks = new TrustedBlocks({ kind: 'checkpoint', height: 120, hash: root.hash! }, root)
    const { light } = client(stableChain, {}, blocks)
    const p = new SyntheticProvider(stableChain)
    assert.equal((await light.verify(stableChain.block(40), p)).height, 40)
    assert.equal(p.asked.blocks.length, 79, 'heights 41 to 119')
    assert.equal(blocks.all()[0]!.height, 120, 'blocks below the root are not kept')
    const liar = new SyntheticProvider(stableChain, 'liar', new Map([[100, 'header']]))
    await rejects(light.verify(stableChain.block(90), liar), 'liar', /not the one trusted header 101 extends/)
    await rejects(light.verify(liar.block(100), liar), 'liar', /not the one trusted header 101 extends/)
    const tooFar = client(stableChain, { maxBackwardHeights: 50 }, new TrustedBlocks(blocks.root, root))
    await assert.rejects(tooFar.light.verify(stableChain.block(40), p), TrustError)
  })
})

describe('trusted blocks and checkpoints', () => {
  test('the store keeps the root and the latest blocks', () => {
    const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32) }, stableChain.genesis(), [], 3)
    for (const h of [5, 9, 7, 12, 20]) blocks.add(trustedBlockOf(stableChain.block(h)))
    assert.deepEqual(
      blocks.all().map((b) => b.height),
      [0, 9, 12, 20],
    )
    assert.equal(blocks.closestBelow(10)!.height, 9)
    assert.equal(blocks.closestAbove(12)!.height, 20)
    assert.throws(() => blocks.add(trustedBlockOf(new SyntheticProvider(stableChain, 'x', new Map([[12, 'header']])).block(12))), /second block/)
  })

  test('a checkpoint: the pinned hash, the period, the announced next set', async () => {
    const p = new SyntheticProvider(rotatingChain)
    const t = await trustCheckpoint(20, rotatingChain.block(20).hash, p, { now: rotatingChain.timeOf(30) })
    assert.ok(bytesEqual(t.nextValidators!.hash, rotatingChain.validators(21).hash))
    await assert.rejects(trustCheckpoint(20, rotatingChain.block(19).hash, p, { now: rotatingChain.timeOf(30) }), /not the pinned/)
    await assert.rejects(trustCheckpoint(20, rotatingChain.block(20).hash, p, { now: rotatingChain.timeOf(30), trustingPeriodMs: 5000 }), TrustError)
    const liar = new SyntheticProvider(rotatingChain, 'liar', new Map([[21, 'validators']]))
    await assert.rejects(trustCheckpoint(20, rotatingChain.block(20).hash, liar, { now: rotatingChain.timeOf(30) }), FailedVerificationError)
  })
})
