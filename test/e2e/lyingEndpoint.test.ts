import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keyPairFromSeed } from '../../crypto/ed25519.js'
import { loadLightStore } from '../../rpc/light/lightStore.js'
import { forkEndpoint } from '../unit/rpc/light/forkEndpoint.js'
import { LyingProxy, Testnet, rpc, runCli, type LieMode } from './harness.js'
import { readDevKey } from './load.js'

/**
 * The wallet trusts no single node, with real processes: a JSON-RPC proxy in front of validator 0 alters its answers
 * (balances, nonces, transaction status, headers, certificates; one way at a time), and the wallet, listing the proxy
 * first, rejects each lie, names the proxy, and gets the true answer from the next endpoint. A fork two validators sign,
 * served first, is refused as conflicting with the next endpoint's header. Then a validator is voted in, and a light
 * client starting from the genesis verifies across the change.
 */

const PARAMS = {
  timeouts: { proposeMs: 1000, proposeDeltaMs: 500, prevoteMs: 500, prevoteDeltaMs: 500, precommitMs: 500, precommitDeltaMs: 500, commitMs: 0 },
  emptyBlockIntervalMs: 400,
}

interface AccountJson {
  address: string
  balance: string
  nonce: string
  verifiedHeight: number
  blockHash: string
}

describe('a lying endpoint', { timeout: 150_000 }, () => {
  let net: Testnet
  let proxy: LyingProxy
  let light: string
  const JOINER = 4

  before(async () => {
    light = mkdtempSync(join(tmpdir(), 'tally-e2e-lying-'))
    net = await Testnet.create(4, [], { spareNodes: 1 })
    net.setGenesisParams(PARAMS)
    net.startAll()
    await net.waitHeight(2)
    proxy = await LyingProxy.start(net.rpcUrl(0), 'balance')
  })

  after(async () => {
    await proxy?.close()
    await net?.destroy()
    rmSync(light, { recursive: true, force: true })
  })

  const tally = (args: string[]) => runCli('tally', [...args, '--genesis', net.genesisFile], { env: { TALLY_LIGHT_DIR: light } })
  const through = () => `${proxy.url},${net.rpcUrl(1)}`

  test('each lie about an account is rejected, the proxy named, and the true answer shown', async () => {
    const address = readDevKey(net.keyFile('account0')).address
    const truth = await rpc<{ balance: string; nonce: string }>(net.rpcUrl(2), 'ledger_getAccount', [address])
    // unverified, the lie goes through: that is what verification is for
    proxy.mode = 'balance'
    const unverified = await runCli('tally', ['balance', address, '--rpc', through(), '--no-verify'])
    assert.equal(unverified.code, 0, unverified.stderr)
    assert.equal(unverified.stdout.trim(), (BigInt(truth.balance) + 1000n).toString())

    const modes: [LieMode, RegExp][] = [
      ['balance', /balance ".*" is not the proven/],
      ['nonce', /nonce ".*" is not the proven/],
      ['header', /commit does not verify: bad signature/],
      ['certificate', /commit does not verify: signers hold 1 of 4/],
      ['signature', /commit does not verify: bad signature/],
    ]
    // each query goes past the height the client trusts already: for that one it needs no certificate, and a lie
    // about headers or certificates there would go unused
    let verifiedHeight = 0
    const pastTrusted = () => net.waitHeight(verifiedHeight + 1, [0, 1, 2, 3])
    for (const [mode, reason] of modes) {
      proxy.mode = mode
      await pastTrusted()
      const lies = proxy.lies
      const r = await tally(['account', address, '--rpc', through(), '--json'])
      assert.equal(r.code, 0, `${mode}: ${r.stderr}`)
      assert.ok(proxy.lies > lies, `${mode}: the proxy told its lie`)
      const a = JSON.parse(r.stdout) as AccountJson
      assert.deepEqual([a.balance, a.nonce], [truth.balance, truth.nonce], mode)
      assert.ok(a.verifiedHeight >= 2)
      const warning = JSON.parse(r.stderr.trim().split('\n')[0]!) as { warning: { endpoint: string; reason: string; message: string } }
      assert.equal(warning.warning.endpoint, proxy.url, mode)
      assert.equal(warning.warning.reason, 'failed_verification')
      assert.match(warning.warning.message, reason, mode)
      verifiedHeight = Math.max(verifiedHeight, a.verifiedHeight)
      // the human form names the proxy on stderr, and stdout holds the true account
      await pastTrusted()
      const human = await tally(['account', address, '--rpc', through()])
      assert.equal(human.code, 0, human.stderr)
      assert.equal(human.stdout, `address  ${address}\nbalance  ${truth.balance}\nnonce    ${truth.nonce}\n`, mode)
      assert.ok(human.stderr.startsWith(`warning: ${proxy.url} gave an answer that fails verification`), human.stderr)
      const verified = /\nverified at height (\d+) \(block 0x[0-9a-f]{64}\)\n$/.exec(human.stderr)
      assert.ok(verified, human.stderr)
      verifiedHeight = Math.max(verifiedHeight, Number(verified[1]))
    }
    // the proxy alone: no answer is shown
    await pastTrusted()
    const alone = await tally(['balance', address, '--rpc', proxy.url])
    assert.equal(alone.code, 1)
    assert.equal(alone.stdout, '')
    assert.match(alone.stderr, new RegExp(`error: no RPC endpoint gave a verified answer: ${proxy.url} \\(fails verification`))
  })

  test('a committed transfer reported failed: rejected, and the transfer shown committed at its verified height', async () => {
    proxy.mode = 'status'
    const to = readDevKey(net.keyFile('account1')).address
    const r = await tally(['transfer', '--key', net.keyFile('faucet'), '--to', to, '--amount', '3', '--rpc', through(), '--json'])
    assert.equal(r.code, 0, r.stderr)
    const t = JSON.parse(r.stdout) as { hash: string; status: string; height: number; verifiedHeight: number; blockHash: string }
    assert.equal(t.status, 'committed')
    assert.equal(t.verifiedHeight, t.height)
    assert.match(r.stderr, /only transactions that applied/)
    assert.ok(r.stderr.includes(proxy.url))
    const block = await rpc<{ hash: string }>(net.rpcUrl(3), 'chain_getBlock', [t.height])
    assert.equal(t.blockHash, block.hash)
    const tx = await tally(['tx', t.hash, '--rpc', through()])
    assert.equal(tx.code, 0, tx.stderr)
    assert.match(tx.stdout, new RegExp(`status {2}committed\\nheight {2}${t.height}\\nindex {3}0\\nresult {2}ok`))
    assert.match(tx.stderr, new RegExp(`verified at height ${t.height} `))
  })

  test('a fork two of four validators sign, served first: refused as conflicting headers, nothing trusted', async () => {
    // more than a third of the set (beyond the f-fault model) signs another block at the tip, and an endpoint serves it
    const signers = [0, 1].map((i) => keyPairFromSeed(readDevKey(join(net.home(i), 'validator_key.json')).secretKey))
    const forger = await forkEndpoint(net.rpcUrl(1), { chainId: 'tally-e2e', signers, balance: 1_000_000n })
    // a fresh store: from the genesis to the tip is a skip, which the two keys' signatures pass alone
    const fresh = mkdtempSync(join(tmpdir(), 'tally-e2e-fork-'))
    try {
      const address = readDevKey(net.keyFile('account0')).address
      const args = ['balance', address, '--genesis', net.genesisFile, '--rpc', `${forger.url},${net.rpcUrl(1)}`]
      const r = await runCli('tally', [...args, '--json'], { env: { TALLY_LIGHT_DIR: fresh } })
      assert.ok(forger.forgeries > 0, 'the forger served its fork')
      assert.equal(r.stdout, '', 'the forged balance was shown')
      assert.equal(r.code, 1)
      const e = JSON.parse(r.stderr.trim().split('\n').at(-1)!).error as { message: string; reason: string }
      assert.equal(e.reason, 'conflicting_headers')
      const at = `conflicting headers at height ${forger.forgedHeight}`
      assert.match(e.message, new RegExp(`^${at}: ${forger.url} gave block 0x[0-9a-f]{64}, ${net.rpcUrl(1)} gave block 0x[0-9a-f]{64}`))
      const store = await loadLightStore(join(fresh, 'tally-e2e.json'))
      assert.ok(store.kind === 'ok')
      assert.equal(store.blocks.at(forger.forgedHeight), undefined, 'the forged header was stored as trusted')
      assert.equal(store.blocks.latest().height, 0)
    } finally {
      await forger.close()
      rmSync(fresh, { recursive: true, force: true })
    }
  })

  test('a light client from the genesis verifies across a validator voted in', async () => {
    const joiner = await net.initNode(JOINER)
    const add = ['propose-add', '--public-key', joiner.publicKey!, '--peer-id', joiner.peerId, '--power', '1', '--name', 'node4']
    let completedAt = 0
    for (const i of [0, 1, 2]) {
      const r = await runCli('tallyd', ['validator', ...add, '--home', net.home(i), '--json'], { timeoutMs: 60_000 })
      assert.equal(r.code, 0, r.stderr)
      const v = JSON.parse(r.stdout) as { status: string; height: number }
      if (v.status === 'completed') completedAt = v.height
    }
    assert.ok(completedAt > 0, 'three of four votes complete the change')
    const from = completedAt + 2
    await net.waitHeight(from + 1, [1, 2, 3])
    // a fresh light store: it trusts the genesis set only, and must cross to the set of five
    const fresh = mkdtempSync(join(tmpdir(), 'tally-e2e-cross-'))
    try {
      const address = readDevKey(net.keyFile('account1')).address
      const r = await runCli('tally', ['account', address, '--rpc', `${net.rpcUrl(1)},${net.rpcUrl(2)}`, '--genesis', net.genesisFile, '--json'], {
        env: { TALLY_LIGHT_DIR: fresh },
      })
      assert.equal(r.code, 0, r.stderr)
      const a = JSON.parse(r.stdout) as AccountJson
      assert.ok(a.verifiedHeight >= from, `verified at ${a.verifiedHeight}, the new set is in force from ${from}`)
      assert.equal(a.balance, (await rpc<{ balance: string }>(net.rpcUrl(3), 'ledger_getAccount', [address])).balance)
      const store = JSON.parse(readFileSync(join(fresh, 'tally-e2e.json'), 'utf8')) as { sets: Record<string, unknown[]> }
      assert.deepEqual(
        Object.values(store.sets)
          .map((s) => s.length)
          .sort(),
        [4, 5],
        'the genesis set and the set of five',
      )
      // a lie about the new set is caught where the client fetches it: at a height past the one it trusts already
      // (for that one it needs no certificate)
      await net.waitHeight(a.verifiedHeight + 1, [0, 1, 2, 3])
      proxy.mode = 'certificate'
      const again = await runCli('tally', ['balance', address, '--rpc', through(), '--genesis', net.genesisFile], { env: { TALLY_LIGHT_DIR: fresh } })
      assert.equal(again.code, 0, again.stderr)
      assert.ok(again.stderr.includes(proxy.url))
    } finally {
      rmSync(fresh, { recursive: true, force: true })
    }
  })
})
