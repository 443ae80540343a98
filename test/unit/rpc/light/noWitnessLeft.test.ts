import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ValidatorSet } from '../../../../consensus/index.js'
import { LightClient, type LightProvider } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { SyntheticChain, type Member } from './syntheticChain.js'

/**
 * A wallet with two endpoints, one of them down, asks the other with a list of witnesses that is empty (the one down
 * is left out as unanswered). The light client then takes a skip only on more than two thirds of the trusted set, as
 * from a lone endpoint: a header that stands on that is trusted as it is with no witnesses at all, and the wallet
 * with an endpoint down verifies what the same wallet with that endpoint left out of its settings verifies.
 */

const power1 = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))
const chain = new SyntheticChain(() => power1('a', 'b', 'c', 'd'))

const honest: LightProvider = {
  name: 'honest',
  lightBlocks: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => chain.block(from + i)),
  lightBlock: async (h) => chain.block(h),
  validators: async (h): Promise<ValidatorSet> => chain.validators(h),
}

function client(): LightClient {
  const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(1) }, chain.genesis())
  return new LightClient({ unconfirmedSequentialHeights: 5 }, { blocks, now: () => chain.timeOf(40) + 1000 })
}

test('a header signed by the whole trusted set is trusted from a lone endpoint whose witnesses are all left out', async () => {
  const height = 40
  // with no witnesses at all: trusted, by one skip on the whole trusted set
  const alone = await client().verify(chain.block(height), honest)
  assert.equal(alone.height, height)
  // the same endpoint with a witness list that is empty: the same header, the same set, the same level of trust
  const t = await client().verify(chain.block(height), honest, { providers: [] })
  assert.equal(t.height, height)
})
