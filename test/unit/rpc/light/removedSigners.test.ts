import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { sha256 } from '../../../../crypto/hash.js'
import type { ValidatorSet } from '../../../../consensus/index.js'
import { blockHash } from '../../../../ledger/block.js'
import type { LightBlock } from '../../../../rpc/light/lightBlock.js'
import { LightClient, type LightProvider } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { SyntheticChain, signCommit, type Member } from './syntheticChain.js'

/**
 * Validators removed by governance hold nothing at stake and can no longer be convicted (evidence names a validator of
 * the set of its height): a light client that still trusts a set they belonged to must not let them vouch alone for a
 * header they signed after leaving.
 */

const power1 = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))

/**
 * The chain: a, b, c, d at genesis; a removed from height 3 and b from height 4, each step within the one-third
 * limit of ledger/governance.ts (one of four, then one of three); c and d decide every later height.
 */
const chain = new SyntheticChain((h) => (h <= 2 ? power1('a', 'b', 'c', 'd') : h === 3 ? power1('b', 'c', 'd') : power1('c', 'd')))
/** The two removed validators as a set of their own, the one the forged header names. */
const removedOnly = new SyntheticChain(() => power1('a', 'b'))

test('a header signed after their removal by validators that left the set is not trusted from one endpoint', async () => {
  const height = 20
  const honest = chain.block(height)
  const header = {
    ...honest.header,
    stateRoot: sha256(encodeCanonical(['forged by removed validators', height])),
    validatorSetHash: removedOnly.validators(height).hash,
    nextValidatorSetHash: removedOnly.validators(height).hash,
  }
  const hash = blockHash(header)
  const forged: LightBlock = { header, hash, commit: signCommit(chain.chainId, height, hash, power1('a', 'b')) }
  const provider: LightProvider = {
    name: 'forger',
    lightBlocks: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => (from + i === height ? forged : chain.block(from + i))),
    lightBlock: async (h) => (h === height ? forged : chain.block(h)),
    validators: async (h): Promise<ValidatorSet> => (h === height ? removedOnly.validators(h) : chain.validators(h)),
  }
  const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(1) }, chain.genesis())
  // within a minute of the genesis: far inside the trusting period
  const light = new LightClient({}, { blocks, now: () => chain.timeOf(height) + 1000 })
  await assert.rejects(light.verify(forged, provider), 'the forged header of height 20 is trusted')
  // what the client trusts on the way (the pivots of its bisection) is the chain's, and not the forged height
  assert.equal(light.blocks.at(height), undefined)
  for (const b of light.blocks.all().filter((x) => x.height > 0)) {
    assert.ok(b.hash != null && Buffer.from(b.hash).equals(chain.block(b.height).hash), `height ${b.height} trusted off the chain`)
  }
})
