import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../../crypto/address.js'
import { to0x } from '../../../../crypto/bytes.js'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { sha256 } from '../../../../crypto/hash.js'
import { createValidatorSet } from '../../../../consensus/index.js'
import { blockHash } from '../../../../ledger/block.js'
import { ConflictingHeadersError, FailedVerificationError, UnconfirmedHeaderError } from '../../../../rpc/light/errors.js'
import type { LightBlock } from '../../../../rpc/light/lightBlock.js'
import { LightClient, type LightClientOptions, type Witnesses } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { SyntheticChain, SyntheticProvider, signCommit, type Member } from './syntheticChain.js'
import { testKey } from './testChain.js'

/**
 * The light client's cross-check of headers verified by skipping against witnesses (other endpoints): what it costs
 * (one header from each witness per skip, nothing for a header the hash chain proves), a fork of more than a third of
 * a trusted set refused from either side, a lying witness passed over, and a witness that is down or behind never
 * holding a true header back: the header is then verified height by height, within a bound.
 */

const four = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))
const members = four('a', 'b', 'c', 'd')
const chain = new SyntheticChain(() => members)
const FORK = 20

/** Block `height` as two of the four validators (more than a third) sign it in a fork, naming themselves its set. */
function forkBlock(height: number): { block: LightBlock; set: ReturnType<typeof pairSet> } {
  const set = pairSet()
  const header = { ...chain.header(height), stateRoot: sha256(encodeCanonical(['fork', height])), validatorSetHash: set.hash }
  const hash = blockHash(header)
  return { block: { header, hash, commit: signCommit(chain.chainId, height, hash, four('a', 'b')) }, set }
}

function pairSet() {
  const s = createValidatorSet(['a', 'b'].map((l) => ({ address: addressFromPublicKey(testKey(l).publicKey), publicKey: testKey(l).publicKey, power: 1 })))
  assert.ok(s.ok)
  return s.value
}

/** A provider that serves the fork at {@link FORK} and the chain elsewhere. */
function forger(name = 'forger'): SyntheticProvider {
  const p = new SyntheticProvider(chain, name)
  const { block, set } = forkBlock(FORK)
  p.block = (h: number) => (h === FORK ? block : chain.block(h))
  const honestSet = p.validators.bind(p)
  p.validators = async (h: number) => (h === FORK ? set : honestSet(h))
  return p
}

/** A witness that does not answer. */
function down(name = 'down'): SyntheticProvider {
  const p = new SyntheticProvider(chain, name)
  p.lightBlock = async () => {
    throw new Error(`connect ECONNREFUSED (${name})`)
  }
  return p
}

/** A witness that never answers: no error, no header. */
function stuck(name = 'stuck'): SyntheticProvider {
  const p = new SyntheticProvider(chain, name)
  p.lightBlock = (h: number) => {
    p.asked.blocks.push(h)
    return new Promise<never>(() => {})
  }
  return p
}

/** `p`, or a rejection once `ms` passed without it. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

function client(options: LightClientOptions = {}): LightClient {
  const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(1) }, chain.genesis())
  return new LightClient(options, { blocks, now: () => chain.timeOf(10_000) })
}

describe('witnesses', () => {
  test('a skip costs one header of each witness; a header the hash chain proves costs none', async () => {
    const light = client()
    const primary = new SyntheticProvider(chain, 'primary')
    const w1 = new SyntheticProvider(chain, 'w1')
    const w2 = new SyntheticProvider(chain, 'w2')
    const witnesses = { providers: [w1, w2] }
    await light.verify(chain.block(10), primary, witnesses)
    assert.deepEqual(w1.asked, { blocks: [10], validators: [] })
    assert.deepEqual(w2.asked, { blocks: [10], validators: [] }, 'every witness is asked, not only the first to confirm')
    await light.verify(chain.block(11), primary, witnesses) // adjacent: the hash chain from 10
    await light.verify(chain.block(5), primary, witnesses) // below a trusted block, backwards by the hash chain
    await light.verify(chain.block(10), primary, witnesses) // trusted already
    assert.deepEqual(w1.asked.blocks, [10])
    await light.verify(chain.block(30), primary, witnesses)
    assert.deepEqual(w1.asked.blocks, [10, 30])
    assert.deepEqual(w2.asked.blocks, [10, 30])
    assert.deepEqual(primary.asked.blocks, [6, 7, 8, 9], 'the primary was asked for the walk down from 10 alone')
  })

  test('every header trusted by skipping in a bisection is confirmed', async () => {
    // the set changes wholly at 15: from 10, block 30 cannot be verified by skipping, block 15's set is new too
    const moving = new SyntheticChain((h) => (h < 15 ? members : four('e', 'f', 'g', 'h')), { chainId: 'light-moving' })
    const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(2) }, moving.genesis())
    const light = new LightClient({}, { blocks, now: () => moving.timeOf(10_000) })
    const primary = new SyntheticProvider(moving, 'primary')
    const w = new SyntheticProvider(moving, 'w')
    await light.verify(moving.block(30), primary, { providers: [w] })
    const skipped = light.blocks
      .all()
      .map((b) => b.height)
      .filter((h) => h > 0)
    assert.ok(skipped.includes(30) && skipped.includes(14) && skipped.includes(15), `trusted: ${skipped}`)
    // adjacent steps need no witness: each header the witness was asked for is one trusted by a skip
    const adjacent = new Set(skipped.filter((h, i) => i > 0 && skipped[i - 1] === h - 1))
    assert.deepEqual(
      [...w.asked.blocks].sort((x, y) => x - y),
      skipped.filter((h) => !adjacent.has(h) && h !== 1 && h !== 0).sort((x, y) => x - y),
    )
  })

  test('a fork above the latest trusted block, from the primary or from a witness: refused, nothing trusted', async () => {
    for (const [primary, witness] of [
      [forger(), new SyntheticProvider(chain, 'honest')],
      [new SyntheticProvider(chain, 'honest'), forger()],
    ] as const) {
      const light = client()
      await light.verify(chain.block(10), primary, { providers: [witness] })
      await assert.rejects(light.verify(primary.block(FORK), primary, { providers: [witness] }), (e: unknown) => {
        assert.ok(e instanceof ConflictingHeadersError, String(e))
        assert.deepEqual(
          [e.code, e.height, e.primary, e.witness, e.trustedHeight, e.primaryHash, e.witnessHash],
          ['conflicting_headers', FORK, primary.name, witness.name, 10, to0x(primary.block(FORK).hash), to0x(witness.block(FORK).hash)],
        )
        return true
      })
      assert.equal(light.blocks.at(FORK), undefined)
      assert.equal(light.latest().height, 10)
    }
  })

  test('a fork far below a trusted block, verified forward from one below: refused', async () => {
    const light = client()
    const honest = new SyntheticProvider(chain, 'honest')
    await light.verify(chain.block(10), honest)
    await light.verify(chain.block(FORK + 150), honest)
    const f = forger()
    await assert.rejects(light.verify(f.block(FORK), f, { providers: [honest] }), ConflictingHeadersError)
    assert.equal(light.blocks.at(FORK), undefined)
  })

  test('a witness that confirms the fork does not outvote a later one that holds the true header', async () => {
    // the forger and its accomplice serve the same fork, the honest endpoint is listed after the accomplice
    for (const order of [
      ['accomplice', 'honest'],
      ['honest', 'accomplice'],
    ]) {
      const light = client()
      const primary = forger('forger')
      const providers = order.map((name) => (name === 'accomplice' ? forger('accomplice') : new SyntheticProvider(chain, 'honest')))
      await light.verify(chain.block(10), primary, { providers })
      const r = await light.verify(primary.block(FORK), primary, { providers }).then(
        (b) => `trusted the fork at height ${b.height}`,
        (e: unknown) => e,
      )
      assert.ok(r instanceof ConflictingHeadersError, `${order.join(', ')}: ${String(r)}`)
      assert.deepEqual([r.primary, r.witness, r.height, r.trustedHeight], ['forger', 'honest', FORK, 10])
      assert.equal(light.blocks.at(FORK), undefined)
    }
  })

  test('witnesses are asked at once, not one after another', async () => {
    const light = client()
    const primary = new SyntheticProvider(chain, 'primary')
    let pending = 0
    let most = 0
    const slow = (name: string) => {
      const p = new SyntheticProvider(chain, name)
      p.lightBlock = async (h: number) => {
        most = Math.max(most, ++pending)
        await new Promise((resolve) => setTimeout(resolve, 20))
        pending--
        return chain.block(h)
      }
      return p
    }
    await light.verify(chain.block(10), primary, { providers: [slow('w1'), slow('w2'), slow('w3')] })
    assert.equal(most, 3)
  })

  test('without witnesses the fork is refused: from one endpoint a skip needs more than two thirds of the trusted set', async () => {
    const light = client()
    const f = forger()
    await light.verify(chain.block(10), f)
    await assert.rejects(light.verify(f.block(FORK), f), FailedVerificationError)
    assert.equal(light.blocks.at(FORK), undefined)
  })

  test('a witness whose other header fails verification is reported and passed over', async () => {
    const light = client()
    const primary = new SyntheticProvider(chain, 'primary')
    // outsiders' block at 10: another hash, and it does not verify from the genesis
    const liar = new SyntheticProvider(chain, 'liar', new Map([[10, 'forged']]))
    const w = new SyntheticProvider(chain, 'w')
    const lies: FailedVerificationError[] = []
    const witnesses: Witnesses = { providers: [liar, w], onLie: (e) => lies.push(e) }
    assert.equal((await light.verify(chain.block(10), primary, witnesses)).height, 10)
    assert.deepEqual(
      lies.map((e) => e.endpoint),
      ['liar'],
    )
    assert.deepEqual(w.asked.blocks, [10])
  })

  test('witnesses down or behind: the header is verified height by height instead, within the bound', async () => {
    const light = client({ witnessLagMs: 50 })
    const primary = new SyntheticProvider(chain, 'primary')
    const behind = new SyntheticProvider(chain, 'behind')
    behind.lightBlock = async (h: number) => {
      behind.asked.blocks.push(h)
      return undefined
    }
    const unconfirmed: UnconfirmedHeaderError[] = []
    const witnesses: Witnesses = { providers: [down(), behind], onUnconfirmed: (e) => unconfirmed.push(e) }
    assert.equal((await light.verify(chain.block(10), primary, witnesses)).height, 10)
    assert.equal(unconfirmed.length, 1)
    assert.deepEqual(
      unconfirmed[0]!.witnesses.map((w) => w.endpoint),
      ['down', 'behind'],
    )
    assert.match(unconfirmed[0]!.message, /no other endpoint confirmed header 10 of primary: down \(connect ECONNREFUSED.*\), behind \(no block at height 10/)
    assert.ok(behind.asked.blocks.length >= 2, 'the witness behind was asked again')
    assert.deepEqual(primary.asked.blocks, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'heights 1 to 9, each adjacent to the one before')
    // the fork cannot pass that way: its block is not signed by more than two thirds of the set of its height
    const f = forger()
    await assert.rejects(light.verify(f.block(FORK), f, { providers: [down()] }), FailedVerificationError)
    assert.equal(light.blocks.at(FORK), undefined)
    // beyond the bound, refused
    const bounded = client({ unconfirmedSequentialHeights: 5 })
    await assert.rejects(bounded.verify(chain.block(10), primary, { providers: [down()] }), UnconfirmedHeaderError)
    assert.equal(bounded.latest().height, 0)
  })

  test('a witness one block behind confirms once it has the block', async () => {
    const light = client({ witnessLagMs: 5000 })
    const primary = new SyntheticProvider(chain, 'primary')
    const w = new SyntheticProvider(chain, 'w')
    let calls = 0
    w.lightBlock = async (h: number) => (++calls === 1 ? undefined : chain.block(h))
    await light.verify(chain.block(10), primary, { providers: [w] })
    assert.equal(calls, 2)
    assert.deepEqual(primary.asked.blocks, [], 'confirmed: no walk')
  })

  test('a witness that does not answer counts as unavailable after its own deadline', async () => {
    const bounded = { witnessLagMs: 50, witnessTimeoutMs: 200 }
    const primary = new SyntheticProvider(chain, 'primary')
    // confirmed by the witness that answers, whatever the other does
    const light = client(bounded)
    assert.equal((await within(light.verify(chain.block(10), primary, { providers: [stuck(), new SyntheticProvider(chain, 'w')] }), 2000)).height, 10)
    assert.deepEqual(primary.asked.blocks, [], 'confirmed: no walk')
    // the only witness stuck: verified height by height, the witness named
    const alone = client(bounded)
    const unconfirmed: UnconfirmedHeaderError[] = []
    const s = stuck()
    const witnesses: Witnesses = { providers: [s], onUnconfirmed: (e) => unconfirmed.push(e) }
    assert.equal((await within(alone.verify(chain.block(10), primary, witnesses), 2000)).height, 10)
    assert.match(unconfirmed[0]?.message ?? '', /: stuck \(no answer within 200 ms\)/)
    await within(alone.verify(chain.block(40), primary, witnesses), 2000)
    assert.deepEqual(s.asked.blocks, [10, 40], 'one request per header, nothing asked past its deadline')
  })

  test('a witness past its deadline is not asked again within the same verification', async () => {
    // the set changes wholly at 15: from the genesis, block 30 takes a bisection, more than one skip
    const moving = new SyntheticChain((h) => (h < 15 ? members : four('e', 'f', 'g', 'h')), { chainId: 'light-moving' })
    const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(2) }, moving.genesis())
    const light = new LightClient({ witnessTimeoutMs: 100 }, { blocks, now: () => moving.timeOf(10_000) })
    const s = new SyntheticProvider(moving, 'stuck')
    s.lightBlock = (h: number) => {
      s.asked.blocks.push(h)
      return new Promise<never>(() => {})
    }
    const w = new SyntheticProvider(moving, 'w')
    await within(light.verify(moving.block(30), new SyntheticProvider(moving, 'primary'), { providers: [s, w] }), 3000)
    assert.ok(w.asked.blocks.length > 1, `the witness that answers checked every skip: ${w.asked.blocks}`)
    assert.equal(s.asked.blocks.length, 1, `asked for ${s.asked.blocks}`)
  })

  test('a witness slow on each check has its deadline for all its checks in one verification', async () => {
    // four checks in the bisection to 30; the slow witness answers each in 60 ms, within 100 ms, but not twice
    const moving = new SyntheticChain((h) => (h < 15 ? members : four('e', 'f', 'g', 'h')), { chainId: 'light-moving' })
    const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(2) }, moving.genesis())
    const light = new LightClient({ witnessTimeoutMs: 100 }, { blocks, now: () => moving.timeOf(10_000) })
    const slow = new SyntheticProvider(moving, 'slow')
    slow.lightBlock = async (h: number) => {
      slow.asked.blocks.push(h)
      await new Promise((resolve) => setTimeout(resolve, 60))
      return moving.block(h)
    }
    const w = new SyntheticProvider(moving, 'w')
    await within(light.verify(moving.block(30), new SyntheticProvider(moving, 'primary'), { providers: [slow, w] }), 3000)
    assert.equal(w.asked.blocks.length, 4, `the witness that answers at once checked every skip: ${w.asked.blocks}`)
    assert.ok(slow.asked.blocks.length <= 2, `the slow witness was asked for ${slow.asked.blocks}`)
  })
})
