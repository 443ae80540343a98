import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { addressFromPublicKey, formatAddress } from '../../../../crypto/address.js'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { sha256 } from '../../../../crypto/hash.js'
import { fromHex, to0x } from '../../../../crypto/bytes.js'
import { sign } from '../../../../crypto/ed25519.js'
import { buildCommitCertificate, createValidatorSet, voteSignBytes } from '../../../../consensus/index.js'
import { genesisHash } from '../../../../genesis/genesis.js'
import { encodeAccountProof } from '../../../../ledger/accountProof.js'
import { decodePathBytes } from '../../../../ledger/smt.js'
import { checkAccountAnswer } from '../../../../rpc/light/proofs.js'
import { RpcLightProvider } from '../../../../rpc/light/rpcProvider.js'
import { blockHash } from '../../../../ledger/block.js'
import { RpcClient } from '../../../../rpc/client.js'
import { Metrics } from '../../../../rpc/metrics.js'
import { RpcServer } from '../../../../rpc/server.js'
import { FailedVerificationError } from '../../../../rpc/light/errors.js'
import { LightClient } from '../../../../rpc/light/lightClient.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { trustedBlockOf, trustedGenesis } from '../../../../rpc/light/verifier.js'
import { NoVerifiedAnswerError, VerifiedRpc } from '../../../../rpc/light/verifiedClient.js'
import { SyntheticChain, SyntheticProvider, signCommit, type Member } from './syntheticChain.js'
import { TestChain, testKey } from './testChain.js'

/**
 * Attacks on the verifying client by an endpoint: a true but stale answer, an answer no client should spend seconds
 * parsing, and (beyond the threat model: more than f keys) a fork between two trusted blocks.
 */

const alice = testKey('alice')
const aliceAddress = addressFromPublicKey(alice.publicKey)
const A = formatAddress(aliceAddress)

/** A JSON-RPC endpoint whose answers `answer` writes as raw text (a liar), given the parsed request. */
async function rawEndpoint(answer: (request: { id: unknown; method: string }) => string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(answer(request))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

describe('attacks by an endpoint on the verifying client', () => {
  let chain: TestChain
  let honest: RpcServer
  let stale: unknown
  const servers: Server[] = []

  before(async () => {
    chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commitEmpty(2)
    honest = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend: chain.backend, metrics: new Metrics() })
    await honest.start()
    // a true answer, with its proof and certificate, as of height 2
    stale = await new RpcClient({ endpoints: [honest.url] }).call('ledger_getBalance', [A, { proof: true }])
    await chain.commitEmpty(10)
  })
  after(async () => {
    await honest.stop()
    for (const s of servers) s.close()
  })

  /** A light client trusting block `height` of the chain (a pinned checkpoint). */
  function lightFrom(height: number, maxBackwardHeights?: number): LightClient {
    const b = chain.blocks[height - 1]!
    const block = { header: b.header, hash: b.hash, commit: b.certificate }
    const root = { ...trustedBlockOf(block), nextValidators: chain.sets.at(height + 1) }
    const blocks = new TrustedBlocks({ kind: 'checkpoint', height, hash: b.hash }, root)
    return new LightClient(maxBackwardHeights === undefined ? {} : { maxBackwardHeights }, { blocks, now: () => Date.now() })
  }

  test('a stale answer too far below the trusted blocks is that endpoint failing: the next endpoint is asked', async () => {
    // the liar replays a true answer of height 2; the client trusts height 10 and verifies at most 5 heights backwards
    // (10,000 by default: on a chain older than that, any endpoint can answer at height 1)
    const liar = await rawEndpoint((r) => JSON.stringify({ jsonrpc: '2.0', id: r.id, result: stale }))
    servers.push(liar.server)
    const rpc = new VerifiedRpc({ endpoints: [liar.url, honest.url], timeoutMs: 2000 }, { light: lightFrom(10, 5) })
    const b = await rpc.balance(A)
    assert.equal(b.balance, 1000n)
    assert.equal(b.verifiedHeight, chain.height)
    // alone, it is an endpoint that gave no verified answer, not a trusted starting point the user must replace
    const alone = new VerifiedRpc({ endpoints: [liar.url], timeoutMs: 2000 }, { light: lightFrom(10, 5) })
    await assert.rejects(alone.balance(A), (e: unknown) => e instanceof NoVerifiedAnswerError && /too old to verify|stale/.test(e.message))
  })

  test('an endpoint slower than the time for one verified answer is given up, and the next is asked', async () => {
    // every request answered truly, 400 ms late: a verified answer needs three of them
    const slow = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        setTimeout(async () => {
          const r = await fetch(honest.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(await r.text())
        }, 400)
      })
    })
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve))
    servers.push(slow)
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`
    const options = { timeoutMs: 2000, answerTimeoutMs: 300, backoffMs: 10 }
    const b = await new VerifiedRpc({ endpoints: [url, honest.url], ...options }, { light: lightFrom(10) }).balance(A)
    assert.equal(b.balance, 1000n)
    const alone = new VerifiedRpc({ endpoints: [url], ...options }, { light: lightFrom(10) })
    await assert.rejects(alone.balance(A), (e: unknown) => e instanceof Error && /no verified answer within 300 ms/.test(e.message))
  })

  test('an answer nested a million levels deep is refused without parsing it', async () => {
    const depth = 4 * 1024 * 1024
    const liar = await rawEndpoint(() => `${'['.repeat(depth)}${']'.repeat(depth)}`)
    servers.push(liar.server)
    // alone, the endpoint fails for its nesting (parsed, the 8 MiB would hold the client for seconds, then fail as an
    // answer of the wrong shape); beside an honest endpoint, the answer comes from that one
    const alone = new VerifiedRpc({ endpoints: [liar.url], timeoutMs: 2000, answerTimeoutMs: 60_000 }, { light: lightFrom(10) })
    await assert.rejects(alone.balance(A), (e: unknown) => e instanceof Error && /nested deeper than 64/.test(e.message))
    const rpc = new VerifiedRpc({ endpoints: [liar.url, honest.url], timeoutMs: 2000 }, { light: lightFrom(10) })
    assert.equal((await rpc.balance(A)).balance, 1000n)
  })
})

describe('attacks the client already resists', () => {
  test('an absence proof for an existing account, odd hex, a certificate of another chain id or height', async () => {
    const chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commitEmpty(3)
    const server = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend: chain.backend, metrics: new Metrics() })
    await server.start()
    try {
      const answer = (await new RpcClient({ endpoints: [server.url] }).call('ledger_getAccount', [A, { proof: true }])) as Record<string, unknown>
      const d = decodePathBytes(fromHex(String(answer.proof))!)
      assert.ok(d.ok)
      const absent = to0x(encodeAccountProof({ siblings: d.value.siblings, terminal: { kind: 'empty' } }, null))
      const r1 = checkAccountAnswer(aliceAddress, { ...answer, balance: '0', nonce: '0', proof: absent }, true)
      assert.ok(!r1.ok && r1.error.code === 'unproven', 'absence of an existing account')
      const r2 = checkAccountAnswer(aliceAddress, { ...answer, proof: `${String(answer.proof)}0` }, true)
      assert.ok(!r2.ok && r2.error.code === 'malformed', 'odd hex')
      const light = new LightClient(
        {},
        { blocks: new TrustedBlocks({ kind: 'genesis', genesisHash: genesisHash(chain.genesis) }, trustedGenesis(chain.genesis)), now: () => Date.now() },
      )
      const provider = new RpcLightProvider(new RpcClient({ endpoints: [server.url] }))
      const block = checkAccountAnswer(aliceAddress, answer, true)
      assert.ok(block.ok)
      const b = block.value.block
      const members = chain.sets.at(b.header.height).validators.map((v) => ({ label: '', power: v.power, address: v.address }))
      const resign = (chainId: string, height: number) =>
        buildCommitCertificate(
          height,
          0,
          b.hash,
          members.map((m) => {
            const body = { type: 'precommit' as const, height, round: 0, valueId: b.hash }
            return { ...body, validator: m.address, signature: sign(chain.keyOf(m.address).secretKey, voteSignBytes(chainId, body)) }
          }),
        )
      await assert.rejects(light.verify({ ...b, commit: resign('other-chain', b.header.height) }, provider), /bad signature/)
      await assert.rejects(light.verify({ ...b, commit: resign(chain.genesis.chainId, b.header.height - 1) }, provider), /height/)
      const far = { ...b, header: { ...b.header, height: 2 ** 52 } }
      await assert.rejects(light.verify({ ...far, hash: blockHash(far.header) }, provider), FailedVerificationError)
      assert.equal((await light.verify(b, provider)).height, chain.height)
    } finally {
      await server.stop()
    }
  })
})

describe('a fork between two trusted blocks (more than f keys)', () => {
  const four = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))
  const chain = new SyntheticChain(() => four('a', 'b', 'c', 'd'))

  test('a header signed by two of four validators that the trusted block above does not extend is refused', async () => {
    const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(1) }, chain.genesis())
    const light = new LightClient({}, { blocks, now: () => chain.timeOf(1000) })
    const honest = new SyntheticProvider(chain)
    await light.verify(chain.block(10), honest)
    await light.verify(chain.block(20), honest)
    // a and b (two keys: more than f = 1, fewer than 2f + 1) sign another block 15, naming themselves its set
    const pair = createValidatorSet(['a', 'b'].map((l) => ({ address: addressFromPublicKey(testKey(l).publicKey), publicKey: testKey(l).publicKey, power: 1 })))
    assert.ok(pair.ok)
    const header = { ...chain.header(15), stateRoot: sha256(encodeCanonical(['fork'])), validatorSetHash: pair.value.hash }
    const hash = blockHash(header)
    const forged = { header, hash, commit: signCommit(chain.chainId, 15, hash, four('a', 'b')) }
    const forger = new SyntheticProvider(chain, 'forger')
    forger.validators = async (h: number) => (h === 15 ? pair.value : chain.validators(h))
    await assert.rejects(light.verify(forged, forger), (e: unknown) => e instanceof FailedVerificationError && e.endpoint === 'forger')
    assert.equal(light.blocks.at(15), undefined, 'the fork joined the trusted blocks, beside the block 20 that contradicts it')
  })
})
