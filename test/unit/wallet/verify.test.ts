import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressFromPublicKey, formatAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { encodeKeyFile } from '../../../crypto/keyfile.js'
import { createTransfer, txHash } from '../../../ledger/transaction.js'
import type { RpcBackend } from '../../../rpc/backend.js'
import { Metrics } from '../../../rpc/metrics.js'
import { RpcServer } from '../../../rpc/server.js'
import type { CliIo } from '../../../wallet/cli.js'
import { runTally } from './runTally.js'
import { loadLightStore } from '../../../rpc/light/lightStore.js'
import { forkEndpoint } from '../rpc/light/forkEndpoint.js'
import { jsonRpcRelay } from '../rpc/light/relay.js'
import { TestChain, testKey } from '../rpc/light/testChain.js'

/**
 * The wallet verifies by default (docs/wallet.md, "Verification"), against nodes serving a real in-process chain:
 * `verified at height H`, the JSON fields, the light store reused by the next run, the errors without a trusted
 * starting point or with an expired one, a corrupt store rebuilt, and an endpoint that lies reported and skipped.
 */

const alice = testKey('alice')
const aliceAddress = addressFromPublicKey(alice.publicKey)
const A = formatAddress(aliceAddress)
const B = formatAddress(addressFromPublicKey(testKey('bob').publicKey))

/** Serves `backend` over HTTP on a free port. */
async function serve(backend: RpcBackend): Promise<RpcServer> {
  const s = new RpcServer({ host: '127.0.0.1', port: 0 }, { backend, metrics: new Metrics() })
  await s.start()
  return s
}

/** The backend with some methods replaced: a node that lies. */
function lying(backend: RpcBackend, replace: Partial<RpcBackend>): RpcBackend {
  return new Proxy(backend, {
    get(target, key) {
      if (key in replace) return (replace as Record<string | symbol, unknown>)[key]
      const v = (target as unknown as Record<string | symbol, unknown>)[key]
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
}

/**
 * An endpoint in front of `target` that has no block yet at any height (`chain_getCommit` answers null): a witness one
 * block behind, for ever. Everything else is passed on.
 */
async function behindRelay(target: string): Promise<{ url: string; server: Server }> {
  return jsonRpcRelay(target, async (request, passOn) =>
    request.method === 'chain_getCommit' ? { jsonrpc: '2.0', id: request.id, result: null } : passOn(request),
  )
}

describe('the wallet verifies what it shows', () => {
  let dir: string
  let chain: TestChain
  let honest: RpcServer
  let other: RpcServer
  let liar: RpcServer
  let genesisFile: string
  let aliceKey: string
  let commits = Promise.resolve()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-wallet-verify-'))
    chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commit()
    genesisFile = join(dir, 'genesis.json')
    writeFileSync(genesisFile, JSON.stringify(chain.genesisJson))
    aliceKey = join(dir, 'alice.json')
    writeFileSync(aliceKey, encodeKeyFile(alice.secretKey))
    // a node that takes transfers: each is committed in its own block, in turn
    const pending = new Set<string>()
    const accepting = chain.backendWith({
      submit: async (bytes) => {
        const hash = txHash(bytes)
        pending.add(to0x(hash))
        commits = commits.then(async () => {
          await chain.commit([bytes])
          pending.delete(to0x(hash))
        })
        return { ok: true, value: hash }
      },
      pending: (h) => pending.has(to0x(h)),
      nextNonce: async (a) => (await chain.ledger.getAccount(a)).nonce + BigInt(pending.size),
    })
    honest = await serve(accepting)
    other = await serve(accepting)
    liar = await serve(
      lying(accepting, {
        proveAccount: async (a) => {
          const p = await chain.backend.proveAccount(a)
          return 'unavailable' in p ? p : { ...p, account: { balance: p.account.balance + 1_000_000n, nonce: p.account.nonce } }
        },
        proveTx: async (h) => {
          const r = await chain.backend.proveTx(h)
          return r.lookup.status === 'committed' ? { ...r, lookup: { ...r.lookup, ok: false, error: 'insufficient_funds' } } : r
        },
      }),
    )
  })
  after(async () => {
    await commits
    await Promise.all([honest.stop(), other.stop(), liar.stop()])
    rmSync(dir, { recursive: true, force: true })
  })

  let lightDirs = 0
  /** A fresh light store directory. */
  const freshLight = () => join(dir, `light${lightDirs++}`)

  const tally = (argv: string[], env: Record<string, string> = {}, io: Partial<CliIo> = {}) =>
    runTally(argv, { env: { TALLY_LIGHT_DIR: join(dir, 'light-default'), ...env }, waitTimeoutMs: 10_000, rpcTimeoutMs: 2000, ...io })

  test('balance and account: verified at the tip, and the light store carries over to the next run', async () => {
    const light = freshLight()
    const b = await tally(['balance', A, '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light])
    assert.equal(b.code, 0, b.err)
    assert.equal(b.out, '1000\n', 'stdout keeps its form: the balance alone')
    assert.match(b.err, new RegExp(`^verified at height ${chain.height} \\(block 0x[0-9a-f]{64}\\)\\n$`))
    assert.ok(existsSync(join(light, `${chain.genesis.chainId}.json`)))
    await chain.commit()
    // no genesis this time: the store is the trusted starting point
    const j = await tally(['account', A, '--rpc', honest.url, '--light-dir', light, '--json'])
    assert.equal(j.code, 0, j.err)
    const a = JSON.parse(j.out)
    assert.deepEqual(a, { address: A, balance: '1000', nonce: '0', verifiedHeight: chain.height, blockHash: to0x(chain.blocks.at(-1)!.hash) })
    assert.equal(j.err, '')
    const human = await tally(['account', A, '--rpc', honest.url], { TALLY_GENESIS: genesisFile })
    assert.equal(human.code, 0, human.err)
    assert.match(human.out, /^address {2}0x[0-9a-f]{40}\nbalance {2}1000\nnonce {4}0\n$/)
    assert.match(human.err, /^verified at height \d+/)
  })

  test('without a trusted starting point: one line saying what to pass', async () => {
    const r = await tally(['balance', A, '--rpc', honest.url, '--light-dir', freshLight()])
    assert.equal(r.code, 1)
    assert.equal(r.out, '')
    assert.equal(r.err.trim().split('\n').length, 1)
    assert.match(r.err, /^error: no trusted starting point to verify answers of chain "light-test".*--genesis FILE.*TALLY_GENESIS.*--no-verify/)
    const j = await tally(['balance', A, '--rpc', honest.url, '--light-dir', freshLight(), '--json'])
    assert.equal(JSON.parse(j.err).error.reason, 'no_trust_root')
    const plain = await tally(['balance', A, '--rpc', honest.url, '--light-dir', freshLight(), '--no-verify'])
    assert.deepEqual([plain.code, plain.out, plain.err], [0, '1000\n', ''])
  })

  test('bad trust options are one-line errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--trust-height', '3'], /--trust-height and --trust-hash go together/],
      [['--trust-height', 'x', '--trust-hash', to0x(chain.blocks[0]!.hash)], /bad --trust-height/],
      [['--trust-height', '1', '--trust-hash', '0x12'], /bad --trust-hash/],
      [['--genesis', genesisFile, '--trust-height', '1', '--trust-hash', to0x(chain.blocks[0]!.hash)], /either --genesis/],
      [['--genesis', join(dir, 'nope.json')], /cannot read the genesis file/],
      [['--genesis', aliceKey], /is not a valid genesis/],
      [['--genesis', genesisFile, '--trusting-period', '2 weeks'], /bad trusting period/],
    ]
    for (const [args, pattern] of cases) {
      const r = await tally(['balance', A, '--rpc', honest.url, '--light-dir', freshLight(), ...args])
      assert.equal(r.code, 1, args.join(' '))
      assert.match(r.err, pattern)
      assert.equal(r.err.trim().split('\n').length, 1)
    }
  })

  test('a trusting period shorter than the age of the trusted block: the advice to pin a recent one', async () => {
    const r = await tally(['balance', A, '--rpc', honest.url, '--light-dir', freshLight(), '--genesis', genesisFile, '--trusting-period', '1m'])
    assert.equal(r.code, 1)
    assert.match(r.err, /older than the trusting period: pin a recent block with --trust-height H --trust-hash/)
  })

  test('a checkpoint pinned by height and hash', async () => {
    const light = freshLight()
    const pin = chain.blocks[0]!
    const r = await tally([
      'balance',
      A,
      '--rpc',
      honest.url,
      '--light-dir',
      light,
      '--trust-height',
      String(pin.height),
      '--trust-hash',
      to0x(pin.hash),
      '--json',
    ])
    assert.equal(r.code, 0, r.err)
    assert.equal(JSON.parse(r.out).verifiedHeight, chain.height)
    const wrong = await tally([
      'balance',
      A,
      '--rpc',
      honest.url,
      '--light-dir',
      freshLight(),
      '--trust-height',
      '1',
      '--trust-hash',
      to0x(chain.blocks[1]!.hash),
    ])
    assert.equal(wrong.code, 1)
    assert.match(wrong.err, /not the pinned/)
  })

  test('a corrupt light store is reported and rebuilt from the genesis', async () => {
    const light = freshLight()
    assert.equal((await tally(['balance', A, '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light])).code, 0)
    const file = join(light, `${chain.genesis.chainId}.json`)
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 100))
    const without = await tally(['balance', A, '--rpc', honest.url, '--light-dir', light])
    assert.equal(without.code, 1)
    assert.match(without.err, /is corrupt .* no trusted starting point was given/)
    const r = await tally(['balance', A, '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light])
    assert.equal(r.code, 0, r.err)
    assert.match(r.err, /^warning: the light store .* is corrupt \(not JSON\); rebuilding it from the trusted starting point\nverified at height/)
    assert.equal(r.out, '1000\n')
  })

  test('an endpoint that lies is named, skipped, and the next one gives the true answer', async () => {
    const light = freshLight()
    const r = await tally(['balance', A, '--rpc', `${liar.url},${honest.url}`, '--genesis', genesisFile, '--light-dir', light])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '1000\n')
    assert.match(
      r.err,
      new RegExp(`^warning: ${liar.url} gave an answer that fails verification: balance "1001000" is not the proven 1000; trying the next endpoint\\n`),
    )
    const j = await tally(['account', A, '--rpc', `${liar.url},${honest.url}`, '--light-dir', light, '--json'])
    assert.equal(j.code, 0, j.err)
    assert.equal(JSON.parse(j.out).balance, '1000')
    const w = JSON.parse(j.err.split('\n')[0]!)
    assert.deepEqual([w.warning.endpoint, w.warning.reason], [liar.url, 'failed_verification'])
    // only liars: nothing is shown, and the error names each
    const none = await tally(['balance', A, '--rpc', `${liar.url},http://127.0.0.1:9`, '--light-dir', light])
    assert.equal(none.code, 1)
    assert.equal(none.out, '')
    assert.match(
      none.err,
      new RegExp(`error: no RPC endpoint gave a verified answer: ${liar.url} \\(fails verification: .*\\), http://127.0.0.1:9 \\(unreachable: [^)]+\\)`),
    )
  })

  test('transfer: committed at a verified height, through a lying first endpoint too', async () => {
    const light = freshLight()
    const r = await tally(['transfer', '--key', aliceKey, '--to', B, '--amount', '10', '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light])
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^hash {4}0x[0-9a-f]{64}\nheight {2}\d+\n$/)
    const height = Number(/height {2}(\d+)/.exec(r.out)![1])
    assert.match(r.err, new RegExp(`verified at height ${height} `))
    const j = await tally(['transfer', '--key', aliceKey, '--to', B, '--amount', '5', '--rpc', `${liar.url},${other.url}`, '--light-dir', light, '--json'])
    assert.equal(j.code, 0, j.err)
    const t = JSON.parse(j.out)
    assert.deepEqual([t.status, t.verifiedHeight], ['committed', t.height])
    assert.match(t.blockHash, /^0x[0-9a-f]{64}$/)
    assert.match(j.err, /only transactions that applied/)
    // tx: the same look-up through the liar, and a transaction no endpoint knows
    const tx = await tally(['tx', t.hash, '--rpc', `${liar.url},${honest.url}`, '--light-dir', light, '--json'])
    assert.equal(tx.code, 0, tx.err)
    assert.deepEqual(JSON.parse(tx.out), {
      hash: t.hash,
      status: 'committed',
      height: t.height,
      index: 0,
      ok: true,
      verifiedHeight: t.height,
      blockHash: t.blockHash,
    })
    const unknown = await tally(['tx', `0x${'42'.repeat(32)}`, '--rpc', `${honest.url},${other.url}`, '--light-dir', light])
    assert.equal(unknown.code, 0, unknown.err)
    assert.match(unknown.out, /status {2}unknown/)
    assert.match(unknown.err, /^not verified: no endpoint proved it committed/)
    const bal = await tally(['balance', B, '--rpc', honest.url, '--light-dir', light])
    assert.equal(bal.out, '15\n')
  })

  test("--witness-timeout (or TALLY_WITNESS_TIMEOUT) bounds the other endpoints' checks; a bad value is refused", async () => {
    await commits
    // from the genesis to the tip is a skip, which another endpoint must confirm
    while (chain.height < 2) await chain.commit()
    const behind = await behindRelay(honest.url)
    try {
      // the witness has no block at the height: without the option it is asked again for 3 s (its 10 s not reached)
      const late = new RegExp(`^warning: no other endpoint confirmed header \\d+ of ${honest.url}: ${behind.url} \\(no answer within 300 ms\\)`)
      const rpc = `${honest.url},${behind.url}`
      const flag = await tally(['balance', A, '--rpc', rpc, '--genesis', genesisFile, '--light-dir', freshLight(), '--witness-timeout', '300'])
      assert.equal(flag.code, 0, flag.err)
      assert.match(flag.out, /^\d+\n$/)
      assert.match(flag.err, late)
      const env = await tally(['balance', A, '--rpc', rpc, '--genesis', genesisFile, '--light-dir', freshLight()], { TALLY_WITNESS_TIMEOUT: '300' })
      assert.equal(env.code, 0, env.err)
      assert.match(env.err, late)
      // the option wins over the variable, which is then not read
      const both = await tally(['balance', A, '--rpc', rpc, '--genesis', genesisFile, '--light-dir', freshLight(), '--witness-timeout', '300'], {
        TALLY_WITNESS_TIMEOUT: 'soon',
      })
      assert.equal(both.code, 0, both.err)
      assert.match(both.err, late)
    } finally {
      await new Promise<void>((resolve) => {
        behind.server.closeAllConnections()
        behind.server.close(() => resolve())
      })
    }
    for (const bad of ['0', '99', '20001', '-300', '1e3', '300ms', '3.5', '', '99999999999999999999']) {
      const r = await tally(['balance', A, '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', freshLight(), '--witness-timeout', bad])
      assert.equal(r.code, 1, `--witness-timeout ${JSON.stringify(bad)}: ${r.out}${r.err}`)
      assert.equal(r.out, '')
      assert.match(
        r.err,
        /^error: bad witness timeout ".*": expected a whole number of milliseconds from 100 to 20000 \(--witness-timeout or TALLY_WITNESS_TIMEOUT\)\n$/,
      )
      const e = await tally(['balance', A, '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', freshLight(), '--json'], {
        TALLY_WITNESS_TIMEOUT: bad,
      })
      assert.equal(e.code, 1, `TALLY_WITNESS_TIMEOUT=${JSON.stringify(bad)}: ${e.out}${e.err}`)
      assert.equal(JSON.parse(e.err).error.reason, 'bad_witness_timeout')
    }
  })

  test('a fork signed by two of four validators, served first: refused as conflicting headers, nothing trusted', async () => {
    await commits
    while (chain.height < 2) await chain.commit()
    const forger = await forkEndpoint(honest.url, { chainId: chain.genesis.chainId, signers: [testKey('v0'), testKey('v1')], balance: 1_000_000n })
    try {
      const light = freshLight()
      // from the genesis to the tip is a skip: two of the four genesis validators are more than a third of them
      const r = await tally(['balance', A, '--rpc', `${forger.url},${honest.url}`, '--genesis', genesisFile, '--light-dir', light, '--json'])
      assert.equal(forger.forgedHeight, chain.height, 'the forger served its fork')
      assert.equal(r.out, '', 'the forged balance was shown')
      assert.equal(r.code, 1)
      const e = JSON.parse(r.err.trim().split('\n').at(-1)!).error as { message: string; reason: string; fork: Record<string, unknown> }
      assert.equal(e.reason, 'conflicting_headers')
      const hex = '0x[0-9a-f]{64}'
      assert.match(e.message, new RegExp(`^conflicting headers at height ${chain.height}: ${forger.url} gave block ${hex}, ${honest.url} gave block ${hex}`))
      // both commits are of round 0: the two signers are shown to have signed both blocks, and the evidence is sent to
      // both endpoints, which (a node without a consensus host here) take none of it
      const { endpoints, validators, evidence, submitted, ...rest } = e.fork as {
        endpoints: { endpoint: string; blockHash: string }[]
        validators: string[]
        evidence: string[]
        submitted: { endpoint: string; accepted: number; error?: string }[]
      }
      assert.deepEqual(rest, { height: chain.height, trustedHeight: 0, rounds: [0, 0] })
      assert.deepEqual(
        endpoints.map((x) => x.endpoint),
        [forger.url, honest.url],
      )
      assert.ok(endpoints.every((x) => /^0x[0-9a-f]{64}$/.test(x.blockHash)) && endpoints[0]!.blockHash !== endpoints[1]!.blockHash)
      assert.deepEqual(validators, [testKey('v0'), testKey('v1')].map((k) => formatAddress(addressFromPublicKey(k.publicKey))).sort())
      assert.equal(evidence.length, 2)
      assert.ok(evidence.every((x) => /^0x[0-9a-f]+$/.test(x)))
      assert.deepEqual(
        submitted.map((x) => [x.endpoint, x.accepted, /takes no evidence/.test(x.error ?? '')]).sort(),
        [
          [forger.url, 0, true],
          [honest.url, 0, true],
        ].sort(),
      )
      const store = await loadLightStore(join(light, `${chain.genesis.chainId}.json`))
      assert.ok(store.kind === 'ok')
      assert.equal(store.blocks.at(chain.height), undefined, 'the forged header was stored as trusted')
      const human = await tally(['balance', A, '--rpc', `${forger.url},${honest.url}`, '--light-dir', light])
      assert.deepEqual([human.code, human.out], [1, ''])
      assert.match(human.err, new RegExp(`^error: conflicting headers at height ${chain.height}: .*neither is trusted`))
      // the honest endpoint first: the forger, a witness now, gives its fork of that height, which verifies as well;
      // which of the two is the chain no endpoint can settle, and the answer is refused the same way
      const honestFirst = await tally(['balance', A, '--rpc', `${honest.url},${forger.url}`, '--light-dir', light])
      assert.deepEqual([honestFirst.code, honestFirst.out], [1, ''])
      assert.match(honestFirst.err, new RegExp(`^error: conflicting headers at height ${chain.height}: ${honest.url} gave block .*, ${forger.url} gave`))
    } finally {
      await forger.close()
    }
  })

  test('block: verified, made from the bytes its header commits to; a forged or failed transaction is refused', async () => {
    await commits
    const transfer = (to: Uint8Array, amount: bigint, nonce: bigint) => createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to, amount, nonce })
    const nonce = (await chain.ledger.getAccount(aliceAddress)).nonce
    const sent = transfer(addressFromPublicKey(testKey('bob').publicKey), 5n, nonce)
    const block = await chain.commit([sent.bytes])
    const light = freshLight()
    const j = await tally(['block', String(block.height), '--rpc', honest.url, '--genesis', genesisFile, '--light-dir', light, '--json'])
    assert.equal(j.code, 0, j.err)
    const shown = JSON.parse(j.out)
    assert.deepEqual(
      [shown.height, shown.hash, shown.verifiedHeight, shown.blockHash, shown.header.txRoot],
      [block.height, to0x(block.hash), block.height, to0x(block.hash), to0x(block.header.txRoot)],
    )
    assert.deepEqual(
      shown.txs.map((t: Record<string, unknown>) => [t.hash, t.from, t.to, t.amount, t.ok]),
      [[to0x(sent.hash), A, B, '5', true]],
    )
    assert.equal(j.err, '')
    const human = await tally(['block', String(block.height), '--rpc', honest.url, '--light-dir', light])
    assert.equal(human.code, 0, human.err)
    assert.ok(human.out.includes(`${to0x(sent.hash)}  ${A} -> ${B}  5 (nonce ${nonce})  ok`), human.out)
    assert.match(human.err, new RegExp(`^verified at height ${block.height} \\(block ${to0x(block.hash)}\\)\\n$`))
    // a node that shows another transfer in that block (validly signed, never committed), or says the one in it failed
    const forged = transfer(addressFromPublicKey(testKey('mallory').publicKey), 999n, nonce)
    const forger = await serve(
      lying(chain.backend, {
        getBlock: async (h?: number) => {
          const b = await chain.backend.getBlock(h)
          return b === null || b.height !== block.height ? b : { ...b, txs: [forged.bytes] }
        },
      }),
    )
    const failer = await serve(
      lying(chain.backend, {
        getBlock: async (h?: number) => {
          const b = await chain.backend.getBlock(h)
          return b === null ? b : { ...b, results: b.txs.map(() => ({ ok: false, error: 'insufficient_funds' })) }
        },
      }),
    )
    try {
      for (const [liar, why] of [
        [forger, `its transactions are not those of header ${block.height}'s transaction root`],
        [failer, 'it reports transaction 0 failed'],
      ] as const) {
        const r = await tally(['block', String(block.height), '--rpc', `${liar.url},${honest.url}`, '--light-dir', light])
        assert.equal(r.code, 0, r.err)
        assert.ok(r.out.includes(to0x(sent.hash)) && !r.out.includes(to0x(forged.hash)), r.out)
        assert.ok(r.err.startsWith(`warning: ${liar.url} gave an answer that fails verification: ${why}`), r.err)
      }
      // unchecked, the first endpoint's word is shown, forgery and all
      const unchecked = await tally(['block', String(block.height), '--rpc', forger.url, '--no-verify'])
      assert.ok(unchecked.out.includes(to0x(forged.hash)), unchecked.out)
    } finally {
      await Promise.all([forger.stop(), failer.stop()])
    }
    const missing = await tally(['block', '99999', '--rpc', honest.url, '--light-dir', light])
    assert.deepEqual([missing.code, missing.err], [1, 'error: no block at height 99999\n'])
  })

  test('a fork whose evidence is of a height the endpoints have not reached: shown as ahead, not as taken', async () => {
    await commits
    while (chain.height < 2) await chain.commit()
    // a node behind the fork's height answers evidence_submit with status ahead; the forger passes evidence on to it
    const behind = await serve(chain.backendWith({ submitEvidence: async () => 'ahead' }))
    const forger = await forkEndpoint(behind.url, { chainId: chain.genesis.chainId, signers: [testKey('v0'), testKey('v1')], balance: 1_000_000n })
    try {
      const r = await tally(['balance', A, '--rpc', `${forger.url},${behind.url}`, '--genesis', genesisFile, '--light-dir', freshLight(), '--json'])
      assert.equal(r.code, 1)
      const e = JSON.parse(r.err.trim().split('\n').at(-1)!).error as { message: string; reason: string; fork: { submitted: unknown[] } }
      assert.equal(e.reason, 'conflicting_headers')
      assert.deepEqual(
        [...e.fork.submitted].sort((x, y) => ((x as { endpoint: string }).endpoint < (y as { endpoint: string }).endpoint ? -1 : 1)),
        [forger.url, behind.url].sort().map((endpoint) => ({ endpoint, accepted: 0, ahead: 2 })),
      )
      assert.match(e.message, /was submitted to 0 of 2 endpoints; 2 have not reached its height yet/)
    } finally {
      await forger.close()
      await behind.stop()
    }
  })
})
