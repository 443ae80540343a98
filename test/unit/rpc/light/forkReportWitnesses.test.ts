import assert from 'node:assert/strict'
import type { Server } from 'node:http'
import { after, before, test } from 'node:test'
import { decodeEvidence, evidenceHeight, evidenceOffender, verifyEvidence } from '../../../../consensus/index.js'
import { addressFromPublicKey, formatAddress } from '../../../../crypto/address.js'
import { to0x } from '../../../../crypto/bytes.js'
import type { ConflictingHeadersError } from '../../../../rpc/light/errors.js'
import { LightClient } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { trustedBlockOf } from '../../../../rpc/light/verifier.js'
import { VerifiedRpc } from '../../../../rpc/light/verifiedClient.js'
import { Metrics } from '../../../../rpc/metrics.js'
import { RpcServer } from '../../../../rpc/server.js'
import { forkEndpoint, type ForkEndpoint } from './forkEndpoint.js'
import { jsonRpcRelay } from './relay.js'
import { TestChain, testKey } from './testChain.js'

/**
 * Two witnesses both show a fork whose primary header two of four validators signed, each with its own certificate of
 * the real block (a node keeps the precommits it collected, so certificates of one block may name other signers).
 * The client makes and sends the evidence of each comparison; the fork report must name every validator it accused.
 */

const alice = testKey('alice')
const aliceAddress = addressFromPublicKey(alice.publicKey)
const TIP = 12
const [v0, v1] = [testKey('v0'), testKey('v1')].map((k) => formatAddress(addressFromPublicKey(k.publicKey)))

let chain: TestChain
let honest: RpcServer
let trimmed: { url: string; server: Server }
let forger: ForkEndpoint
/** Evidence the honest node was sent (directly, or passed on by the other endpoints), by hex. */
const taken = new Map<string, string>()

before(async () => {
  chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
  await chain.commitEmpty(TIP)
  const backend = chain.backendWith({
    submitEvidence: async (bytes) => {
      const d = decodeEvidence(bytes)
      if (!d.ok) return { invalid: d.error.reason }
      const v = verifyEvidence(d.value, chain.genesis.chainId, chain.sets.at(evidenceHeight(d.value)))
      if (!v.ok) return { invalid: v.error.reason }
      const key = to0x(bytes)
      if (taken.has(key)) return 'known'
      taken.set(key, formatAddress(evidenceOffender(d.value)))
      return 'new'
    },
  })
  honest = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend, metrics: new Metrics() })
  await honest.start()
  // the same node, whose certificate of the tip lacks v1's precommit (three of four still certify it)
  trimmed = await jsonRpcRelay(honest.url, async (request, passOn) => {
    const r = await passOn(request)
    const params = request.params as unknown[] | undefined
    const result = r.result as { commit?: { signatures?: { validator: string }[] } } | null | undefined
    if (request.method === 'chain_getCommit' && params?.[0] === TIP && result?.commit?.signatures !== undefined) {
      result.commit.signatures = result.commit.signatures.filter((s) => s.validator.toLowerCase() !== v1!.toLowerCase())
    }
    return r
  })
  forger = await forkEndpoint(honest.url, { chainId: chain.genesis.chainId, signers: [testKey('v0'), testKey('v1')], balance: 1_000_000n, round: 0 })
})

after(async () => {
  await forger?.close()
  await new Promise<void>((resolve) => {
    trimmed?.server.closeAllConnections()
    trimmed?.server.close(() => resolve())
  })
  await honest?.stop()
})

test('a fork two witnesses show with different certificates: the report names every validator evidence was sent against', async () => {
  const b = chain.blocks[1]!
  const root = { ...trustedBlockOf({ header: b.header, hash: b.hash, commit: b.certificate }), nextValidators: chain.sets.at(3) }
  const light = new LightClient({}, { blocks: new TrustedBlocks({ kind: 'checkpoint', height: 2, hash: b.hash }, root), now: () => Date.now() })
  const rpc = new VerifiedRpc({ endpoints: [forger.url, trimmed.url, honest.url], timeoutMs: 2000 }, { light })
  const r = await rpc.balance(formatAddress(aliceAddress)).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.equal((r as { code?: unknown } | undefined)?.code, 'conflicting_headers', String(r))
  const a = (r as ConflictingHeadersError).accountability
  assert.ok(a !== undefined, 'no accountability on the conflict')
  // both comparisons made evidence, and the honest node was sent all of it: against v0, and against v1
  assert.deepEqual([...new Set(taken.values())].sort(), [v0, v1].sort())
  assert.deepEqual([...a.validators].sort(), [...new Set(taken.values())].sort(), 'the report names every accused validator')
  assert.deepEqual(new Set(a.evidence), new Set(taken.keys()), 'the report lists every item submitted')
})
