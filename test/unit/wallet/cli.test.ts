import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressFromPublicKey, formatAddress } from '../../../crypto/address.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { to0x } from '../../../crypto/bytes.js'
import { encodeKeyFile } from '../../../crypto/keyfile.js'
import { createTransfer, encodeTransaction, signGovernanceTransaction, txHash } from '../../../ledger/transaction.js'
import { writeTestnet } from '../../../node/cli/testnetFiles.js'
import type { CliIo } from '../../../wallet/cli.js'
import { type Run, runTally } from './runTally.js'
import { repoRoot } from '../../helpers/fixtures.js'
import { aliceAddress, aliceSeed, bobAddress, startHarness, type Harness } from '../rpc/harness.js'

function tally(argv: string[], io: Partial<CliIo> = {}): Promise<Run> {
  return runTally(argv, { env: {}, scrypt: { n: 1024, r: 8, p: 1 }, waitTimeoutMs: 10_000, rpcTimeoutMs: 2000, ...io })
}

const A = formatAddress(aliceAddress)
const B = formatAddress(bobAddress)

/** Against the test bank, which has no proofs to give: the look-ups run with --no-verify (test/unit/wallet/verify.test.ts verifies). */
describe('tally wallet CLI', () => {
  let dir: string
  let h: Harness
  let aliceKey: string
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-wallet-'))
    aliceKey = join(dir, 'alice.json')
    writeFileSync(aliceKey, encodeKeyFile(aliceSeed))
    h = await startHarness()
  })
  after(async () => {
    await h.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('keygen: encrypted with TALLY_PASSWORD, address, never overwrites', async () => {
    const file = join(dir, 'enc.json')
    const r = await tally(['keygen', '--out', file], { env: { TALLY_PASSWORD: 'hunter2' } })
    assert.equal(r.code, 0, r.err)
    const address = r.out.trim()
    assert.match(address, /^0x[0-9a-f]{40}$/)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.ok('crypto' in JSON.parse(readFileSync(file, 'utf8')))
    assert.equal((await tally(['address', '--key', file])).out.trim(), address)
    const again = await tally(['keygen', '--out', file], { env: { TALLY_PASSWORD: 'x' } })
    assert.equal(again.code, 1)
    assert.match(again.err, /already exists/)
  })

  test('keygen: plaintext, prompt, and no password without a terminal', async () => {
    const plain = join(dir, 'plain.json')
    const r = await tally(['keygen', '--out', plain, '--insecure-plaintext', '--json'])
    assert.equal(r.code, 0, r.err)
    const j = JSON.parse(r.out)
    assert.equal(j.encrypted, false)
    assert.ok('secretKey' in JSON.parse(readFileSync(plain, 'utf8')))
    const none = await tally(['keygen', '--out', join(dir, 'none.json')])
    assert.equal(none.code, 1)
    assert.match(none.err, /TALLY_PASSWORD/)
    assert.equal(none.err.trim().split('\n').length, 1)
    const asked: string[] = []
    const prompted = await tally(['keygen', '--out', join(dir, 'prompted.json')], {
      prompt: async (q) => {
        asked.push(q)
        return 'pw'
      },
    })
    assert.equal(prompted.code, 0, prompted.err)
    assert.equal(asked.length, 2, 'asked twice to confirm')
    let n = 0
    const mismatch = await tally(['keygen', '--out', join(dir, 'mismatch.json')], { prompt: async () => `pw${n++}` })
    assert.equal(mismatch.code, 1)
    assert.match(mismatch.err, /do not match/)
  })

  test('sign is offline and byte-identical to createTransfer; wrong password fails', async () => {
    const enc = join(dir, 'alice-enc.json')
    writeFileSync(
      enc,
      encodeKeyFile(aliceSeed, { password: 'pw', salt: new Uint8Array(16).fill(1), iv: new Uint8Array(12).fill(2), scrypt: { n: 1024, r: 8, p: 1 } }),
    )
    const expected = createTransfer(aliceSeed, { chainId: 'some-chain', to: bobAddress, amount: 42n, nonce: 7n })
    const args = [
      'sign',
      '--key',
      enc,
      '--to',
      B.toUpperCase().replace('0X', '0x'),
      '--amount',
      '42',
      '--nonce',
      '7',
      '--chain-id',
      'some-chain',
      '--rpc',
      'http://127.0.0.1:1',
    ]
    const r = await tally(args, { env: { TALLY_PASSWORD: 'pw' } })
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out.trim(), to0x(expected.bytes))
    const j = await tally([...args, '--json'], { env: { TALLY_PASSWORD: 'pw' } })
    assert.deepEqual(JSON.parse(j.out), { tx: to0x(expected.bytes), hash: to0x(expected.hash) })
    const wrong = await tally(args, { env: { TALLY_PASSWORD: 'nope' } })
    assert.equal(wrong.code, 1)
    assert.match(wrong.err, /wrong password/)
    const noPw = await tally(args)
    assert.equal(noPw.code, 1)
    assert.match(noPw.err, /encrypted/)
    const wrongJson = await tally([...args, '--json'], { env: { TALLY_PASSWORD: 'nope' } })
    assert.equal(JSON.parse(wrongJson.err).error.reason, 'wrong_password')
  })

  test('bad addresses and amounts are one-line errors', async () => {
    const base = ['transfer', '--key', aliceKey, '--rpc', h.url]
    for (const [to, amount, pattern] of [
      ['0x1234', '5', /bad recipient address/],
      [`${B}00`, '5', /bad recipient address/],
      [B, '0', /bad amount/],
      [B, '-3', /bad amount/],
      [B, '1.5', /bad amount/],
      [B, '18446744073709551616', /bad amount/],
      [B, 'ten', /bad amount/],
    ] as const) {
      const r = await tally([...base, '--to', to, '--amount', amount])
      assert.equal(r.code, 1, `${to} ${amount}`)
      assert.match(r.err, pattern)
      assert.equal(r.err.trim().split('\n').length, 1)
    }
    const bal = await tally(['balance', 'nothex', '--rpc', h.url])
    assert.equal(bal.code, 1)
    assert.match(bal.err, /bad address/)
  })

  test('transfer waits for the commit; overdraft is refused with its reason', async () => {
    const timer = setInterval(() => {
      if (h.backend.mempool.length > 0) h.backend.commitBlock()
    }, 20)
    try {
      const r = await tally(['transfer', '--key', aliceKey, '--to', B, '--amount', '250', '--rpc', h.url, '--no-verify'])
      assert.equal(r.code, 0, r.err)
      assert.match(r.out, /^hash {4}0x[0-9a-f]{64}\nheight {2}\d+\n$/)
      const j = await tally(['transfer', '--key', aliceKey, '--to', B, '--amount', '50', '--rpc', h.url, '--json', '--no-verify'])
      assert.equal(j.code, 0, j.err)
      const out = JSON.parse(j.out)
      assert.equal(out.status, 'committed')
      assert.ok(out.height >= 1)
      const bal = await tally(['balance', B, '--rpc', h.url, '--no-verify'])
      assert.equal(bal.out.trim(), '300')
      const over = await tally(['transfer', '--key', aliceKey, '--to', B, '--amount', '999999999', '--rpc', h.url, '--no-verify'])
      assert.equal(over.code, 1)
      assert.match(over.err, /insufficient_funds/)
      assert.equal(over.err.trim().split('\n').length, 1)
    } finally {
      clearInterval(timer)
    }
  })

  test('pipelined transfers without waiting get consecutive nonces', async () => {
    const start = await h.backend.getNextNonce(aliceAddress)
    const nonces: bigint[] = []
    for (let i = 0; i < 3; i++) {
      const r = await tally(['transfer', '--key', aliceKey, '--to', B, '--amount', '1', '--no-wait', '--json', '--rpc', h.url])
      assert.equal(r.code, 0, r.err)
      const j = JSON.parse(r.out)
      assert.equal(j.status, 'pending')
      nonces.push(BigInt(j.nonce))
    }
    assert.deepEqual(nonces, [start, start + 1n, start + 2n])
    const block = h.backend.commitBlock()
    assert.deepEqual(
      block.results?.map((x) => x?.ok),
      [true, true, true],
    )
  })

  test('look-ups: account, status, tx, block, send', async () => {
    const acct = await tally(['account', A, '--rpc', h.url, '--json', '--no-verify'])
    assert.equal(acct.code, 0, acct.err)
    const a = JSON.parse(acct.out)
    assert.equal(a.address, A)
    const human = await tally(['account', A, '--rpc', h.url, '--no-verify'])
    assert.match(human.out, /balance\s+\d+\nnonce\s+\d+/)
    const st = await tally(['status', '--rpc', h.url])
    assert.match(st.out, /chainId\s+tally-test/)
    const tx = createTransfer(aliceSeed, { chainId: 'tally-test', to: bobAddress, amount: 3n, nonce: BigInt(a.nonce) })
    const sent = await tally(['send', to0x(tx.bytes), '--rpc', h.url])
    assert.equal(sent.out.trim(), to0x(tx.hash))
    const dup = await tally(['send', to0x(tx.bytes), '--rpc', h.url])
    assert.equal(dup.code, 1)
    assert.match(dup.err, /duplicate/)
    assert.match((await tally(['tx', to0x(tx.hash), '--rpc', h.url, '--no-verify'])).out, /status {2}pending/)
    const height = h.backend.commitBlock().height
    const t = JSON.parse((await tally(['tx', to0x(tx.hash), '--rpc', h.url, '--json', '--no-verify'])).out)
    assert.deepEqual(t, { hash: to0x(tx.hash), status: 'committed', height, index: 0, ok: true })
    const b = await tally(['block', String(height), '--rpc', h.url, '--no-verify'])
    assert.match(b.out, new RegExp(`^height +${height}\\n`))
    assert.ok(b.out.includes(to0x(tx.hash)))
    assert.equal(JSON.parse((await tally(['block', '--rpc', h.url, '--json', '--no-verify'])).out).height, height)
    const missing = await tally(['block', '9999', '--rpc', h.url, '--no-verify'])
    assert.equal(missing.code, 1)
    assert.equal((await tally(['tx', '0x12', '--rpc', h.url])).code, 1)
    assert.equal((await tally(['send', 'zz', '--rpc', h.url])).code, 1)
  })

  test('endpoints: failover to the second, and an error naming all when none answers', async () => {
    const r = await tally(['balance', A, '--rpc', `http://127.0.0.1:9,${h.url}`, '--no-verify'])
    assert.equal(r.code, 0, r.err)
    const env = await tally(['status'], { env: { TALLY_RPC: h.url } })
    assert.equal(env.code, 0, env.err)
    const dead = await tally(['balance', A, '--rpc', 'http://127.0.0.1:9,http://127.0.0.1:7', '--no-verify'], { rpcTimeoutMs: 300 })
    assert.equal(dead.code, 1)
    assert.ok(dead.err.includes('http://127.0.0.1:9') && dead.err.includes('http://127.0.0.1:7'), dead.err)
    assert.equal(dead.err.trim().split('\n').length, 1)
    // an endpoint listed twice (spelt alike or not) is one endpoint: no failover and no witness to its headers
    for (const list of [`${h.url},${h.url}`, `${h.url},${h.url.replace('127.0.0.1', '127.0.0.1.')}/`, `${h.url}/,${h.url}`]) {
      const twice = await tally(['balance', A, '--rpc', list, '--no-verify'])
      assert.equal(twice.code, 1, list)
      assert.match(twice.err, /is listed twice/, list)
    }
  })

  test('the real binary runs', async () => {
    const bin = join(repoRoot, 'bin', 'tally.js')
    const run = (args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(bin, args, { env: { ...process.env, TALLY_RPC: h.url } }, (e, out, err) =>
          resolve({ code: e === null ? 0 : ((e as { code?: number }).code ?? 1), out, err }),
        )
      })
    const ok = await run(['balance', A, '--no-verify'])
    assert.equal(ok.code, 0, ok.err)
    assert.match(ok.out, /^\d+\n$/)
    const bad = await run(['balance', '0xnope'])
    assert.equal(bad.code, 1)
    assert.match(bad.err, /^error: bad address/)
  })
})

test('tally block shows a governance vote as the change it votes for', async () => {
  const h = await startHarness()
  try {
    const seed = new Uint8Array(32).fill(9) // the test backend's validator
    const voter = addressFromPublicKey(keyPairFromSeed(seed).publicKey)
    const vote = encodeTransaction(
      signGovernanceTransaction(
        { chainId: 'tally-test', from: keyPairFromSeed(seed).publicKey, nonce: 0n, action: { type: 'power', address: voter, power: 4 } },
        seed,
      ),
    )
    const height = h.backend.commitBlock([vote]).height
    const b = await tally(['block', String(height), '--rpc', h.url, '--no-verify'])
    assert.equal(b.code, 0, b.err)
    assert.ok(b.out.includes(`${to0x(txHash(vote))}  ${formatAddress(voter)} votes: set power of ${formatAddress(voter)} to 4 (nonce 0)`), b.out)
  } finally {
    await h.close()
  }
})

test('tally refuses a key file with a field the format does not have, naming the file and the field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-wallet-'))
  try {
    const file = join(dir, 'key.json')
    const keygen = await tally(['keygen', '--out', file], { env: { TALLY_PASSWORD: 'pw' } })
    assert.equal(keygen.code, 0, keygen.err)
    const json = JSON.parse(readFileSync(file, 'utf8'))
    writeFileSync(file, JSON.stringify({ ...json, secretKey_backup: to0x(aliceSeed) }))
    for (const argv of [
      ['address', '--key', file],
      ['sign', '--key', file, '--to', B, '--amount', '1', '--nonce', '0', '--chain-id', 'tally-unit'],
    ]) {
      const r = await tally(argv, { env: { TALLY_PASSWORD: 'pw' } })
      assert.equal(r.code, 1, `${argv[0]}: ${r.out}`)
      assert.match(r.err, /key\.json is malformed: secretKey_backup: unknown field/, argv[0])
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tally names a light directory it cannot use, at once, whether --light-dir or TALLY_LIGHT_DIR names it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-wallet-'))
  try {
    writeTestnet({ validators: 1, out: join(dir, 'net'), chainId: 'light-dir-1', host: '127.0.0.1', p2pPort: 1, rpcPort: 1000, accounts: 0, balance: 10n })
    const genesis = join(dir, 'net', 'genesis.json')
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const balance = ['balance', A, '--rpc', 'http://127.0.0.1:9']
    for (const target of [file, join(file, 'sub')]) {
      for (const [argv, env] of [
        [[...balance, '--genesis', genesis, '--light-dir', target], {}],
        [[...balance, '--light-dir', target], {}],
        [balance, { TALLY_LIGHT_DIR: target, TALLY_GENESIS: genesis }],
      ] as [string[], Record<string, string>][]) {
        const r = await tally(argv, { env })
        assert.equal(r.code, 1, r.out)
        assert.match(
          r.err,
          /^error: cannot use the light directory \S+: \S*a-file is a regular file, not a directory \(--light-dir or TALLY_LIGHT_DIR\)\n$/,
          r.err,
        )
      }
    }
    // procfs answers ENOENT to a new entry in a directory that exists: Node's recursive mkdir retries it forever
    if (existsSync('/proc/self')) {
      const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tally.js'), ...balance, '--genesis', genesis, '--light-dir', '/proc/tally-test/light'], {
        encoding: 'utf8',
        timeout: 10_000,
        killSignal: 'SIGKILL',
      })
      assert.equal(r.signal, null, 'tally hung')
      assert.equal(r.status, 1, r.stdout)
      assert.match(r.stderr, /cannot use the light directory \/proc\/tally-test\/light: \/proc( is not writable|\/tally-test cannot be created)/)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
