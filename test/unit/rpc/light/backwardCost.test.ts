import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LightClient } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { SyntheticChain, SyntheticProvider, type Member } from './syntheticChain.js'

/**
 * An old block far below the latest trusted block, with a trusted block below it in the trusting period: verified
 * forward from below (a stable set: no fetch at all), not by walking the hash chain down from the latest, 50 headers
 * a request, again on each such look-up.
 */
const four = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))
const chain = new SyntheticChain(() => four('a', 'b', 'c', 'd'))
const LATEST = 3000

test('an old block far below the latest trusted block is verified from a trusted block below, without a walk down', async () => {
  for (let h = 1; h <= LATEST + 1; h++) chain.block(h)
  const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(1) }, chain.genesis())
  const light = new LightClient({}, { blocks, now: () => chain.timeOf(LATEST + 10) })
  const warm = new SyntheticProvider(chain)
  await light.verify(chain.block(LATEST), warm)
  assert.equal(light.latest().height, LATEST)
  let requests = 0
  const p = new SyntheticProvider(chain)
  const orig = p.lightBlocks.bind(p)
  p.lightBlocks = async (from, to) => {
    requests++
    return orig(from, to)
  }
  await light.verify(chain.block(100), p)
  const first = requests
  await light.verify(chain.block(101), p)
  const second = requests - first
  console.log(`verify(100): ${first} requests, ${p.asked.blocks.length} headers; then verify(101): ${second} requests`)
  // the genesis set signs every block of this chain: forward from genesis needs no fetch
  assert.equal(first, 0, `verify(100) made ${first} requests (${p.asked.blocks.length} headers) where forward from below needs none`)
})
