import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressFromPublicKey, formatAddress } from '../../../../crypto/address.js'
import { to0x } from '../../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../../crypto/ed25519.js'
import { encodeKeyFile } from '../../../../crypto/keyfile.js'
import { DEFAULT_CONFIG } from '../../../../genesis/config.js'
import { actionId, type GovernanceAction } from '../../../../ledger/governance.js'
import { decodeTransaction } from '../../../../ledger/transaction.js'
import { homeRpcUrl, passingPower } from '../../../../node/cli/validatorCommand.js'
import { peerIdOf } from '../../../../node/p2p/peerId.js'
import { repoRoot } from '../../../helpers/fixtures.js'
import { startHarness, type Harness } from '../../rpc/harness.js'

/**
 * `tallyd validator …` against a JSON-RPC server over the test backend (whose one validator signs with seed 9), and
 * `tallyd init --full-node` / `genesis show-key`. The CLI runs as a child process, as an operator runs it; the server
 * runs in this process, so the children are started asynchronously.
 */

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function tallyd(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'tallyd.js'), ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

const validatorSeed = new Uint8Array(32).fill(9)
const validator = keyPairFromSeed(validatorSeed)
const nodeKeySeed = new Uint8Array(32).fill(10)
const newcomer = keyPairFromSeed(new Uint8Array(32).fill(11))
const newcomerPeer = peerIdOf(keyPairFromSeed(new Uint8Array(32).fill(12)).publicKey)

/** Writes a home for the test backend's chain: config (RPC port), genesis, node key, and optionally a validator key. */
function writeHome(dir: string, o: { rpcPort: number; validatorSeed?: Uint8Array; chainId?: string }): string {
  mkdirSync(dir, { recursive: true })
  const config = { ...DEFAULT_CONFIG, rpc: { ...DEFAULT_CONFIG.rpc, host: '127.0.0.1', port: o.rpcPort } }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  writeFileSync(
    join(dir, 'genesis.json'),
    JSON.stringify({
      chainId: o.chainId ?? 'tally-test',
      genesisTime: '2026-01-01T00:00:00Z',
      validators: [{ name: 'test-validator', publicKey: to0x(validator.publicKey), power: 10, peerId: peerIdOf(keyPairFromSeed(nodeKeySeed).publicKey) }],
      balances: [],
    }),
  )
  writeFileSync(join(dir, 'node_key.json'), encodeKeyFile(nodeKeySeed))
  if (o.validatorSeed !== undefined) writeFileSync(join(dir, 'validator_key.json'), encodeKeyFile(o.validatorSeed))
  return dir
}

describe('tallyd validator', () => {
  let h: Harness
  let dir: string
  let home: string
  const addArgs = ['--public-key', to0x(newcomer.publicKey), '--peer-id', newcomerPeer, '--power', '3', '--name', 'newcomer']
  const add: GovernanceAction = { type: 'add', publicKey: newcomer.publicKey, power: 3, peerId: newcomerPeer, name: 'newcomer' }

  before(async () => {
    h = await startHarness({}, { autoCommitMs: 50 })
    dir = mkdtempSync(join(tmpdir(), 'tally-validator-cli-'))
    home = writeHome(join(dir, 'v'), { rpcPort: h.server.port, validatorSeed })
  })
  after(async () => {
    await h.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test("propose-add signs with the home key, submits to the home's own RPC, waits for the commit and says where the change stands", async () => {
    const voter = addressFromPublicKey(validator.publicKey)
    h.backend.pendingChanges = {
      height: 2,
      totalPower: 10n,
      voteExpiryHeights: 100,
      scheduled: null,
      changes: [{ id: actionId(add), action: add, votes: [{ address: voter, height: 1 }], power: 10n, forced: false }],
    }
    try {
      const r = await tallyd('validator', 'propose-add', '--home', home, ...addArgs)
      assert.equal(r.code, 0, r.stderr)
      const hash = /submitted (0x[0-9a-f]{64})/.exec(r.stdout)?.[1]
      assert.ok(hash, r.stdout)
      assert.match(r.stdout, /committed at height \d+/)
      assert.match(r.stdout, /votes hold 10 of 10 power; it completes with 7/)
      // what the node received: a governance vote from the home's key for exactly this change
      const tx = h.backend.blocks
        .flatMap((b) => b.txs)
        .map((t) => decodeTransaction(t))
        .find((d) => d.ok && to0x(d.value.hash) === hash)
      assert.ok(tx?.ok && tx.value.tx.kind === 'governance')
      assert.deepEqual(tx.value.tx.from, validator.publicKey)
      assert.deepEqual(actionId(tx.value.tx.action), actionId(add))
    } finally {
      h.backend.pendingChanges = undefined
    }
  })

  test('--json prints the hash, height, change id and status', async () => {
    const r = await tallyd(
      'validator',
      'propose-power',
      '--home',
      home,
      '--address',
      formatAddress(addressFromPublicKey(validator.publicKey)),
      '--power',
      '12',
      '--json',
      '--rpc',
      h.url,
    )
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as { hash: string; height: number; id: string; status: string; voter: string }
    assert.match(j.hash, /^0x[0-9a-f]{64}$/)
    assert.ok(j.height >= 1)
    assert.equal(j.id, to0x(actionId({ type: 'power', address: addressFromPublicKey(validator.publicKey), power: 12 })))
    assert.equal(j.voter, formatAddress(addressFromPublicKey(validator.publicKey)))
    assert.equal(j.status, 'dropped', 'the test backend neither keeps it pending nor changes its set')
  })

  test('a vote the node refuses: one line naming the reason, exit 1', async () => {
    const outsider = writeHome(join(dir, 'outsider'), { rpcPort: h.server.port, validatorSeed: new Uint8Array(32).fill(13) })
    const r = await tallyd('validator', 'propose-remove', '--home', outsider, '--address', formatAddress(addressFromPublicKey(validator.publicKey)))
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^tallyd: transaction rejected: not_validator: .+\n$/)
  })

  test("a full node's home cannot vote, and a home of another chain is refused before signing", async () => {
    const full = writeHome(join(dir, 'full'), { rpcPort: h.server.port })
    const r = await tallyd('validator', 'propose-add', '--home', full, ...addArgs)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /validator_key\.json does not exist: only a validator's home can vote/)
    const other = writeHome(join(dir, 'other'), { rpcPort: h.server.port, validatorSeed, chainId: 'other-chain' })
    const before = h.backend.blocks.length + h.backend.governanceVotes.length
    const o = await tallyd('validator', 'propose-add', '--home', other, ...addArgs)
    assert.equal(o.code, 1)
    assert.match(o.stderr, /serves chain tally-test, but this home's genesis is chain other-chain/)
    assert.equal(h.backend.governanceVotes.length + h.backend.blocks.length, before)
  })

  test('bad arguments: one line naming the option, a non-zero exit, nothing submitted', async () => {
    const votes = () => h.backend.governanceVotes.length + h.backend.blocks.reduce((n, b) => n + b.txs.length, 0)
    const before = votes()
    const addr = formatAddress(addressFromPublicKey(validator.publicKey))
    const cases: [string[], RegExp][] = [
      [['propose-add', '--home', home, ...addArgs.slice(0, 1), '0x1234', ...addArgs.slice(2)], /--public-key/],
      [['propose-add', '--home', home, '--public-key', `0x${'ff'.repeat(32)}`, ...addArgs.slice(2)], /--public-key/],
      [['propose-add', '--home', home, ...addArgs.slice(0, 2), '--peer-id', 'not-a-peer', ...addArgs.slice(4)], /--peer-id/],
      [
        ['propose-add', '--home', home, ...addArgs.slice(0, 2), '--peer-id', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', ...addArgs.slice(4)],
        /--peer-id/,
      ],
      [['propose-add', '--home', home, ...addArgs.slice(0, 4), '--power', '0', '--name', 'x'], /--power/],
      [['propose-add', '--home', home, ...addArgs.slice(0, 4), '--power', '1.5', '--name', 'x'], /--power/],
      [['propose-add', '--home', home, ...addArgs.slice(0, 4), '--power', String(2 ** 53), '--name', 'x'], /--power/],
      [['propose-add', '--home', home, ...addArgs.slice(0, 6), '--name', '-bad'], /--name/],
      [['propose-add', '--home', home, ...addArgs.slice(0, 6), '--name', 'x'.repeat(65)], /--name/],
      [['propose-add', '--home', home, ...addArgs.slice(0, 6)], /--name/],
      [['propose-remove', '--home', home, '--address', '0x1234'], /--address/],
      [['propose-power', '--home', home, '--address', addr, '--power', '-2'], /--power/],
      [['propose-power', '--home', home, '--address', addr], /--power/],
      [['propose-remove', '--home', home, '--address', addr, '--rpc', 'ftp://x'], /--rpc/],
      [['propose-remove', '--address', addr], /--home/],
      [['pending', '--rpc', 'not a url'], /--rpc/],
    ]
    for (const [args, re] of cases) {
      const r = await tallyd('validator', ...args)
      assert.notEqual(r.code, 0, args.join(' '))
      assert.match(r.stderr, re, args.join(' '))
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
    }
    assert.equal(votes(), before)
  })

  test('pending: the changes with their votes and power, as text and as JSON', async () => {
    const voter = addressFromPublicKey(validator.publicKey)
    const height = h.backend.blocks.length + 1
    h.backend.pendingChanges = {
      height,
      totalPower: 10n,
      voteExpiryHeights: 100,
      scheduled: null,
      changes: [{ id: actionId(add), action: add, votes: [{ address: voter, height: 33 }], power: 6n, forced: false }],
    }
    try {
      const text = await tallyd('validator', 'pending', '--rpc', h.url)
      assert.equal(text.code, 0, text.stderr)
      assert.match(text.stdout, /^height \d+: 1 validators, total power 10; a change completes with 7 \(more than 2\/3\)/)
      assert.ok(
        text.stdout.includes(
          `${to0x(actionId(add))}  add newcomer (${formatAddress(addressFromPublicKey(newcomer.publicKey))}) with power 3, peer ${newcomerPeer}`,
        ),
        text.stdout,
      )
      assert.match(text.stdout, /6 of 10 power \(needs 1 more\)/)
      assert.ok(text.stdout.includes(`vote test-validator ${formatAddress(voter)} at height 33, counts until 132`), text.stdout)
      const json = await tallyd('validator', 'pending', '--home', home, '--json')
      assert.equal(json.code, 0, json.stderr)
      const p = JSON.parse(json.stdout) as { height: number; changes: { id: string; power: number; passes: boolean }[] }
      assert.equal(p.height, height)
      assert.deepEqual(
        p.changes.map((c) => [c.id, c.power, c.passes]),
        [[to0x(actionId(add)), 6, false]],
      )
    } finally {
      h.backend.pendingChanges = undefined
    }
    const none = await tallyd('validator', 'pending', '--rpc', h.url)
    assert.match(none.stdout, /no pending changes/)
    const down = await tallyd('validator', 'pending', '--rpc', 'http://127.0.0.1:1')
    assert.equal(down.code, 1)
    assert.match(down.stderr, /^tallyd: no RPC endpoint answered/)
  })
})

test('tallyd init --full-node writes a home without a validator key; show-key prints only its peer id', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'))
  try {
    const home = join(dir, 'full')
    const r = await tallyd('init', '--home', home, '--full-node', '--moniker', 'observer', '--json')
    assert.equal(r.code, 0, r.stderr)
    const info = JSON.parse(r.stdout) as { peerId: string; fullNode: boolean; publicKey?: string }
    assert.equal(info.fullNode, true)
    assert.match(info.peerId, /^12D3KooW/)
    assert.equal(info.publicKey, undefined)
    assert.equal(existsSync(join(home, 'validator_key.json')), false)
    assert.equal(existsSync(join(home, 'node_key.json')), true)
    assert.equal((JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { moniker: string }).moniker, 'observer')
    for (const args of [[], ['--json']]) {
      const shown = await tallyd('genesis', 'show-key', '--home', home, ...args)
      assert.equal(shown.code, 0, shown.stderr)
      assert.deepEqual(JSON.parse(shown.stdout), { peerId: info.peerId })
    }
    const text = await tallyd('init', '--home', join(dir, 'full2'), '--full-node')
    assert.equal(text.code, 0)
    assert.match(text.stdout, /peer id\s+12D3KooW/)
    assert.match(text.stdout, /p2p\.allowedPeerIds/)
    // a second init refuses to overwrite the node key
    const again = await tallyd('init', '--home', home, '--full-node')
    assert.equal(again.code, 1)
    assert.match(again.stderr, /node_key\.json already exists/)
    // a validator's home shows all three, with or without --json
    const v = await tallyd('init', '--home', join(dir, 'v'), '--json')
    const vinfo = JSON.parse(v.stdout) as { publicKey: string; address: string; peerId: string }
    const shown = await tallyd('genesis', 'show-key', '--home', join(dir, 'v'), '--json')
    assert.deepEqual(JSON.parse(shown.stdout), { publicKey: vinfo.publicKey, address: vinfo.address, peerId: vinfo.peerId })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the validator commands print their help and exit 0', async () => {
  for (const c of [['validator'], ...['propose-add', 'propose-remove', 'propose-power', 'pending'].map((s) => ['validator', s])]) {
    const r = await tallyd(...c, '--help')
    assert.equal(r.code, 0, `tallyd ${c.join(' ')} --help: ${r.stderr}`)
    assert.match(r.stdout, /^Usage: tallyd validator/)
  }
})

test("a home's own RPC URL: a wildcard listen address is reached on loopback; IPv6 in brackets", () => {
  assert.equal(homeRpcUrl('127.0.0.1', 8545), 'http://127.0.0.1:8545')
  assert.equal(homeRpcUrl('0.0.0.0', 9000), 'http://127.0.0.1:9000')
  assert.equal(homeRpcUrl('::', 1), 'http://[::1]:1')
  assert.equal(homeRpcUrl('::1', 2), 'http://[::1]:2')
  assert.equal(homeRpcUrl('node0.example', 3), 'http://node0.example:3')
})

test('a change passes with more than two thirds of the power', () => {
  assert.deepEqual([1, 3, 4, 5, 6, 10, 30].map(passingPower), [1, 3, 3, 4, 5, 7, 21])
})
