import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey, formatAddress } from '../../../../crypto/address.js'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { to0x } from '../../../../crypto/bytes.js'
import { decodeEvidence, evidenceHeight, evidenceOffender, verifyEvidence } from '../../../../consensus/index.js'
import { RpcClient } from '../../../../rpc/client.js'
import type { ConflictingHeadersError, UnconfirmedHeaderError } from '../../../../rpc/light/errors.js'
import { LightClient, type LightClientOptions } from '../../../../rpc/light/lightClient.js'
import { RpcLightProvider } from '../../../../rpc/light/rpcProvider.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { trustedBlockOf } from '../../../../rpc/light/verifier.js'
import { VerifiedRpc } from '../../../../rpc/light/verifiedClient.js'
import { Metrics } from '../../../../rpc/metrics.js'
import { RpcServer } from '../../../../rpc/server.js'
import { forkEndpoint, type ForkEndpoint } from './forkEndpoint.js'
import { jsonRpcRelay } from './relay.js'
import { TestChain, testKey } from './testChain.js'

/**
 * A primary endpoint serving a fork that two of four validators signed (more than a third of the trusted set: beyond
 * the f-fault model, within what skipping verification accepts), listed before an honest endpoint. A header the light
 * client verified by skipping is compared with the other endpoint's header at its height before it is trusted: the
 * fork is refused with both endpoints and the height named, and nothing of it joins the trusted blocks.
 */

const alice = testKey('alice')
const aliceAddress = addressFromPublicKey(alice.publicKey)
const A = formatAddress(aliceAddress)
const STALE_HEIGHT = 5
const TIP = STALE_HEIGHT + 130

/** The error a fork between two endpoints raises: its code, the height, and both endpoints named. */
function isConflict(e: unknown, primary: string, witness: string, height: number): boolean {
  const c = e as { name?: unknown; code?: unknown; height?: unknown; message?: unknown }
  return (
    e instanceof Error &&
    c.name === 'ConflictingHeadersError' &&
    c.code === 'conflicting_headers' &&
    c.height === height &&
    String(c.message).includes(primary) &&
    String(c.message).includes(witness) &&
    String(c.message).includes(`height ${height}`)
  )
}

/**
 * An endpoint that passes every request on to `target`, each answer after `delayMs`; `chain_getCommit` answers null
 * (no block yet) when `behind`; a balance answer is garbled (it fails verification) when `garbled`.
 */
async function relay(target: string, o: { delayMs?: number; behind?: boolean; garbled?: boolean } = {}): Promise<{ url: string; server: Server }> {
  return jsonRpcRelay(target, async (request, passOn) => {
    await new Promise((resolve) => setTimeout(resolve, o.delayMs ?? 0))
    if (o.behind && request.method === 'chain_getCommit') return { jsonrpc: '2.0', id: request.id, result: null }
    if (o.garbled && request.method === 'ledger_getBalance') return { jsonrpc: '2.0', id: request.id, result: { balance: '1' } }
    return passOn(request)
  })
}

/** A light client trusting block `height` of `chain` (a pinned checkpoint) and its next set. */
function lightClientAt(chain: TestChain, height: number, options: LightClientOptions = {}): LightClient {
  const b = chain.blocks[height - 1]!
  const root = { ...trustedBlockOf({ header: b.header, hash: b.hash, commit: b.certificate }), nextValidators: chain.sets.at(height + 1) }
  return new LightClient(options, { blocks: new TrustedBlocks({ kind: 'checkpoint', height, hash: b.hash }, root), now: () => Date.now() })
}

function close(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

/** What a look-up gave: its error, or the answer it showed (for the failure message). */
async function outcome(p: Promise<{ balance: bigint; verifiedHeight: number }>): Promise<unknown> {
  return p.then(
    (b) => ({ accepted: `balance ${b.balance} verified at height ${b.verifiedHeight}` }),
    (e: unknown) => e,
  )
}

describe('a fork signed by more than a third of a trusted set, with an honest second endpoint', () => {
  let chain: TestChain
  let honest: RpcServer
  let stale: Record<string, unknown>
  const forgers: ForkEndpoint[] = []

  before(async () => {
    chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commitEmpty(STALE_HEIGHT)
    honest = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend: chain.backend, metrics: new Metrics() })
    await honest.start()
    stale = await new RpcClient({ endpoints: [honest.url] }).call('ledger_getBalance', [A, { proof: true }])
    await chain.commitEmpty(TIP - STALE_HEIGHT)
  })
  after(async () => {
    for (const f of forgers) await f.close()
    await honest.stop()
  })

  const lightFrom = (height: number, options: LightClientOptions = {}) => lightClientAt(chain, height, options)

  async function forger(answer?: () => Record<string, unknown>): Promise<ForkEndpoint> {
    const f = await forkEndpoint(honest.url, {
      chainId: chain.genesis.chainId,
      signers: [testKey('v0'), testKey('v1')],
      balance: 1_000_000n,
      ...(answer ? { answer } : {}),
    })
    forgers.push(f)
    return f
  }

  test('above the latest trusted block (skipping from it): refused, both endpoints and the height named', async () => {
    const light = lightFrom(2)
    const f = await forger()
    const rpc = new VerifiedRpc({ endpoints: [f.url, honest.url], timeoutMs: 2000 }, { light })
    const r = await outcome(rpc.balance(A))
    assert.ok(isConflict(r, f.url, honest.url, TIP), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
    assert.equal(f.forgedHeight, TIP, 'the forger served its fork')
    assert.equal(light.blocks.at(TIP), undefined, 'the forged header joined the trusted blocks')
    assert.equal(light.latest().height, 2)
  })

  test('an endpoint serving the same fork, listed before the honest one: refused, the honest one named', async () => {
    const light = lightFrom(2)
    const f = await forger()
    const accomplice = await relay(f.url)
    try {
      const rpc = new VerifiedRpc({ endpoints: [f.url, accomplice.url, honest.url], timeoutMs: 2000 }, { light })
      const r = await outcome(rpc.balance(A))
      assert.ok(isConflict(r, f.url, honest.url, TIP), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
      assert.equal(light.blocks.at(TIP), undefined, 'the forged header joined the trusted blocks')
    } finally {
      await close(accomplice.server)
    }
  })

  test('an endpoint rejected for a bad answer is still a witness: its header of the chain stops a confirmed fork', async () => {
    // the first endpoint serves the chain but garbles its answer (a bug, or a corruption on the way): rejected, it is
    // asked last as a witness, and a header of it that verifies from the trusted block is a fork all the same, which
    // an accomplice's confirmation of the forged header does not outweigh
    const light = lightFrom(2)
    const f = await forger()
    const garbled = await relay(honest.url, { garbled: true })
    const accomplice = await relay(f.url)
    try {
      const rpc = new VerifiedRpc({ endpoints: [garbled.url, f.url, accomplice.url], timeoutMs: 2000 }, { light })
      const r = await outcome(rpc.balance(A))
      assert.deepEqual(rpc.rejectedEndpoints, [garbled.url])
      assert.ok(isConflict(r, f.url, garbled.url, TIP), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
      assert.equal(light.blocks.at(TIP), undefined, 'the forged header joined the trusted blocks')
    } finally {
      await close(garbled.server)
      await close(accomplice.server)
    }
  })

  test('a slow witness counts as unavailable: the answer comes within its own deadline', async () => {
    // answers each request just within the transport timeout, and has no block at the height for longer than the
    // answer may take
    const slow = await relay(honest.url, { delayMs: 150, behind: true })
    try {
      const bounded = { witnessTimeoutMs: 500 }
      const light = lightFrom(2, bounded)
      const unconfirmed: UnconfirmedHeaderError[] = []
      const rpc = new VerifiedRpc(
        { endpoints: [honest.url, slow.url], timeoutMs: 300, answerTimeoutMs: 2500, retries: 0 },
        { light, onUnconfirmed: (e) => unconfirmed.push(e) },
      )
      const b = await rpc.balance(A)
      assert.deepEqual([b.balance, b.verifiedHeight], [1000n, TIP])
      assert.match(unconfirmed[0]?.message ?? '', new RegExp(`${slow.url} \\(no answer within 500 ms\\)`))
    } finally {
      await close(slow.server)
    }
  })

  test('the other endpoint down or hanging: the true answer in bounded time, walked or on two thirds of the trusted set', async () => {
    const hanging = createServer(() => {})
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    const hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`
    try {
      for (const other of ['http://127.0.0.1:9', hangingUrl]) {
        for (const endpoints of [
          [honest.url, other],
          [other, honest.url],
        ]) {
          const light = lightFrom(2)
          const unconfirmed: UnconfirmedHeaderError[] = []
          const rpc = new VerifiedRpc({ endpoints, timeoutMs: 300, backoffMs: 10 }, { light, onUnconfirmed: (e) => unconfirmed.push(e) })
          const t = performance.now()
          const b = await rpc.balance(A)
          const ms = performance.now() - t
          assert.deepEqual([b.balance, b.verifiedHeight], [1000n, TIP], endpoints.join(' '))
          assert.ok(ms < 3000, `${endpoints.join(' ')}: ${Math.round(ms)} ms`)
          if (endpoints[0] === honest.url) {
            // asked as a witness, the other does not answer: the header is walked to, height by height
            assert.equal(unconfirmed.length, 1)
            assert.equal(unconfirmed[0]!.endpoint, honest.url)
            assert.ok(light.blocks.at(TIP - 1) !== undefined, 'verified height by height')
          } else {
            // the other did not answer first, so it is no witness: the skip stands on more than two thirds of the
            // trusted set, as from a lone endpoint, with nothing to confirm
            assert.deepEqual(unconfirmed, [], endpoints.join(' '))
            assert.equal(light.blocks.at(TIP - 1), undefined, 'one skip')
          }
        }
      }
    } finally {
      hanging.closeAllConnections()
      hanging.close()
    }
  })

  test('the other endpoint down and the header further up than the walk allowed: trusted once no witness is left', async () => {
    const light = lightFrom(2, { unconfirmedSequentialHeights: 100 })
    const unconfirmed: UnconfirmedHeaderError[] = []
    const rpc = new VerifiedRpc(
      { endpoints: [honest.url, 'http://127.0.0.1:9'], timeoutMs: 300, backoffMs: 10 },
      { light, onUnconfirmed: (e) => unconfirmed.push(e) },
    )
    // the first attempt asks the other as a witness, finds no one to confirm the header and walks no further than
    // allowed; the next leaves out the endpoint that did not answer, and from the honest one alone the header stands
    // on more than two thirds of the trusted set, as with that endpoint alone in the settings
    const b = await rpc.balance(A)
    assert.deepEqual([b.balance, b.verifiedHeight], [1000n, TIP])
    assert.equal(light.latest().height, TIP)
    assert.equal(light.blocks.at(TIP - 1), undefined, 'one skip, no walk')
    assert.deepEqual(unconfirmed, [])
    assert.deepEqual(rpc.rejectedEndpoints, [], 'an endpoint whose header no other confirmed is no liar')
  })

  test('more than 100 heights below a trusted block above (forward from below): refused the same way', async () => {
    const light = lightFrom(2)
    await light.verifyHeight(TIP, new RpcLightProvider(new RpcClient({ endpoints: [honest.url] })))
    assert.equal(light.latest().height, TIP)
    const f = await forger(() => stale)
    const rpc = new VerifiedRpc({ endpoints: [f.url, honest.url], timeoutMs: 2000 }, { light })
    const r = await outcome(rpc.balance(A))
    assert.ok(isConflict(r, f.url, honest.url, STALE_HEIGHT), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
    assert.equal(f.forgedHeight, STALE_HEIGHT)
    assert.equal(light.blocks.at(STALE_HEIGHT), undefined, 'the forged header joined the trusted blocks')
  })
})

describe('accountability for a fork: the evidence two commits of one round prove, sent to every endpoint', () => {
  let chain: TestChain
  let honest: RpcServer
  /** Evidence the honest endpoint took, each verified against the chain's set of its height. */
  const taken = new Map<string, { offender: string; height: number }>()
  const forgers: ForkEndpoint[] = []
  /** What the honest endpoint makes of evidence it is not judging itself (default: it judges). */
  let cannotJudge: 'ahead' | 'expired' | undefined

  before(async () => {
    chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commitEmpty(TIP)
    const backend = chain.backendWith({
      submitEvidence: async (bytes) => {
        const d = decodeEvidence(bytes)
        if (!d.ok) return { invalid: d.error.reason }
        if (cannotJudge === 'ahead') return 'ahead'
        if (cannotJudge === 'expired') return { expired: `evidence of height ${evidenceHeight(d.value)} is older than the evidence window` }
        const v = verifyEvidence(d.value, chain.genesis.chainId, chain.sets.at(evidenceHeight(d.value)))
        if (!v.ok) return { invalid: v.error.reason }
        const key = to0x(bytes)
        if (taken.has(key)) return 'known'
        taken.set(key, { offender: formatAddress(evidenceOffender(d.value)), height: evidenceHeight(d.value) })
        return 'new'
      },
    })
    honest = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend, metrics: new Metrics() })
    await honest.start()
  })
  after(async () => {
    for (const f of forgers) await f.close()
    await honest.stop()
  })

  const lightFrom = (height: number, options: LightClientOptions = {}) => lightClientAt(chain, height, options)

  async function forger(round: number): Promise<ForkEndpoint> {
    const f = await forkEndpoint(honest.url, { chainId: chain.genesis.chainId, signers: [testKey('v0'), testKey('v1')], balance: 1_000_000n, round })
    forgers.push(f)
    return f
  }

  test('signed in the round the chain committed: evidence against both signers, taken by the honest endpoint', async () => {
    taken.clear()
    const f = await forger(0)
    const rpc = new VerifiedRpc({ endpoints: [f.url, honest.url], timeoutMs: 2000 }, { light: lightFrom(2) })
    const r = await outcome(rpc.balance(A))
    assert.ok(isConflict(r, f.url, honest.url, TIP), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
    const a = (r as ConflictingHeadersError).accountability
    assert.ok(a !== undefined, 'no accountability on the conflict')
    const signers = [testKey('v0'), testKey('v1')].map((k) => formatAddress(addressFromPublicKey(k.publicKey))).sort()
    assert.deepEqual(a.rounds, [0, 0])
    assert.deepEqual(a.validators, signers)
    assert.equal(a.evidence.length, 2)
    // the honest endpoint verified each item against its own set and kept it; the forger passed its copy on to the
    // same node, which had it already
    assert.deepEqual(
      [...taken.values()].sort((x, y) => (x.offender < y.offender ? -1 : 1)),
      signers.map((offender) => ({ offender, height: TIP })),
    )
    assert.deepEqual(new Set(taken.keys()), new Set(a.evidence))
    assert.deepEqual(
      [...a.submitted].sort((x, y) => (x.endpoint < y.endpoint ? -1 : 1)),
      [f.url, honest.url].sort().map((endpoint) => ({ endpoint, accepted: 2 })),
    )
    assert.match((r as Error).message, /signed both blocks in round 0 was submitted to 2 of 2 endpoints/)
  })

  /** A balance asked of a forger at round 0 and the honest endpoint: refused as a conflict, with its accountability. */
  async function forkRefused() {
    const f = await forger(0)
    const rpc = new VerifiedRpc({ endpoints: [f.url, honest.url], timeoutMs: 2000 }, { light: lightFrom(2) })
    const r = await outcome(rpc.balance(A))
    assert.ok(isConflict(r, f.url, honest.url, TIP), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
    return { f, r, a: (r as ConflictingHeadersError).accountability }
  }

  test('an endpoint behind the fork says the evidence is ahead of it: shown, and not counted as taken', async () => {
    taken.clear()
    cannotJudge = 'ahead'
    try {
      const { f, r, a } = await forkRefused()
      assert.equal(a?.evidence.length, 2)
      assert.equal(taken.size, 0)
      assert.deepEqual(
        [...(a?.submitted ?? [])].sort((x, y) => (x.endpoint < y.endpoint ? -1 : 1)),
        [f.url, honest.url].sort().map((endpoint) => ({ endpoint, accepted: 0, ahead: 2 })),
      )
      assert.match((r as Error).message, /submitted to 0 of 2 endpoints; 2 have not reached its height/)
    } finally {
      cannotJudge = undefined
    }
  })

  test('an endpoint past the evidence window refuses it as expired: shown with its reason', async () => {
    taken.clear()
    cannotJudge = 'expired'
    try {
      const { a } = await forkRefused()
      const byEndpoint = new Map(a?.submitted.map((s) => [s.endpoint, s]))
      const s = byEndpoint.get(honest.url)
      assert.equal(s?.accepted, 0, JSON.stringify(a?.submitted))
      assert.equal(s?.reason, 'evidence_expired', JSON.stringify(a?.submitted))
      assert.match(s?.error ?? '', new RegExp(`height ${TIP}\\b.*evidence window`))
    } finally {
      cannotJudge = undefined
    }
  })

  test('signed in another round: no validator shown to sign twice, nothing sent', async () => {
    taken.clear()
    const f = await forger(1)
    const rpc = new VerifiedRpc({ endpoints: [f.url, honest.url], timeoutMs: 2000 }, { light: lightFrom(2) })
    const r = await outcome(rpc.balance(A))
    assert.ok(isConflict(r, f.url, honest.url, TIP), `the fork was not refused as a conflict: ${JSON.stringify(r) ?? String(r)}`)
    assert.deepEqual((r as ConflictingHeadersError).accountability, { rounds: [1, 0], validators: [], evidence: [], submitted: [] })
    assert.equal(taken.size, 0)
    assert.match((r as Error).message, /rounds 1 and 0: they show no validator signing twice, so no evidence was sent/)
  })

  test('an endpoint that holds evidence_submit open does not turn the fork into a timeout', async () => {
    // the honest witness takes most of its witness budget to show its header (within it), and the forging endpoint
    // never answers the evidence sent to it: the fork must still be reported as a conflict within the answer's own
    // deadline, which the witness budget is meant to leave room for (a witness timeout of two thirds of it)
    taken.clear()
    const f = await forger(0)
    const forging = await stallingRelay(f.url, { firstDelayMs: 0, stall: 'evidence_submit' })
    const witness = await stallingRelay(honest.url, { firstDelayMs: 1300 })
    try {
      const light = lightFrom(2, { witnessTimeoutMs: 2000 })
      const rpc = new VerifiedRpc({ endpoints: [forging.url, witness.url], timeoutMs: 5000, answerTimeoutMs: 3000, retries: 0 }, { light })
      const r = await outcome(rpc.balance(A))
      assert.ok(
        isConflict(r, forging.url, witness.url, TIP),
        `the fork was not refused as a conflict: ${r instanceof Error ? `${r.name}: ${r.message}` : JSON.stringify(r)}`,
      )
      // the evidence reached the endpoint that answers, within what was left of the witnesses' time
      const a = (r as ConflictingHeadersError).accountability
      assert.equal(a?.evidence.length, 2)
      assert.equal(taken.size, 2)
      const byEndpoint = new Map(a?.submitted.map((s) => [s.endpoint, s]))
      assert.equal(byEndpoint.get(witness.url)?.accepted, 2)
      assert.equal(byEndpoint.get(forging.url)?.accepted, 0)
      assert.match(byEndpoint.get(forging.url)?.error ?? '', /witness timeout/)
    } finally {
      await close(forging.server)
      await close(witness.server)
    }
  })

  test('a witness that never answers does not keep the evidence from the endpoint that answers', async () => {
    // the honest witness shows the fork at once; a third endpoint never answers, so the witnesses' look-up ends only
    // when its witness timeout runs out: the evidence must still reach the honest endpoint
    taken.clear()
    const f = await forger(0)
    const forging = await stallingRelay(f.url, { firstDelayMs: 0 })
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    try {
      const light = lightFrom(2, { witnessTimeoutMs: 1000 })
      const rpc = new VerifiedRpc({ endpoints: [forging.url, honest.url, silentUrl], timeoutMs: 5000, answerTimeoutMs: 4000, retries: 0 }, { light })
      const r = await outcome(rpc.balance(A))
      assert.ok(
        isConflict(r, forging.url, honest.url, TIP),
        `the fork was not refused as a conflict: ${r instanceof Error ? `${r.name}: ${r.message}` : JSON.stringify(r)}`,
      )
      const a = (r as ConflictingHeadersError).accountability
      const byEndpoint = new Map(a?.submitted.map((s) => [s.endpoint, s]))
      assert.equal(a?.evidence.length, 2)
      assert.equal(byEndpoint.get(honest.url)?.accepted, 2, JSON.stringify(a?.submitted))
    } finally {
      await close(forging.server)
      await close(silent)
    }
  })
})

/**
 * An endpoint that passes requests on to `target`: its first request answered after `firstDelayMs`, and requests of
 * the method `stall`, if given, never answered (held until the server closes).
 */
async function stallingRelay(target: string, o: { firstDelayMs: number; stall?: string }): Promise<{ url: string; server: Server }> {
  let first = true
  return jsonRpcRelay(target, async (request, passOn) => {
    if (request.method === o.stall) await new Promise(() => {})
    if (first) {
      first = false
      await new Promise((resolve) => setTimeout(resolve, o.firstDelayMs))
    }
    return passOn(request)
  })
}
