import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatGenesis, parseCompactGenesis, parseGenesis, type GenesisJson } from '../../../../genesis/genesis.js'
import { GenesisBalances } from '../../../../genesis/genesisBalances.js'
import { formatGenesisText, writeGenesisFile, writeTestnet } from '../../../../node/cli/testnetFiles.js'
import { loadFixture } from '../../../helpers/fixtures.js'

test('genesis text puts one balance on a line and reads back to the same JSON', () => {
  const json = {
    chainId: 'c-1',
    genesisTime: '2026-11-22T00:00:00Z',
    validators: [],
    balances: [
      { address: `0x${'11'.repeat(20)}`, amount: '5' },
      { address: `0x${'22'.repeat(20)}`, amount: '7' },
    ],
    params: { timeouts: { proposeMs: 1 } },
  } as unknown as GenesisJson
  const text = formatGenesisText(json)
  assert.deepEqual(JSON.parse(text), json)
  assert.ok(text.includes(`\n    {"address":"0x${'22'.repeat(20)}","amount":"7"}\n  ]`))
  assert.deepEqual(JSON.parse(formatGenesisText({ ...json, balances: [] })), { ...json, balances: [] })
})

test('a genesis written piece by piece is the text formatGenesisText gives it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-genesis-text-'))
  try {
    const golden = loadFixture<{ genesis: GenesisJson }>('golden/genesis.json').genesis
    for (const n of [0, 1, 5, 30_000]) {
      const balances = new GenesisBalances()
      for (let i = 0; i < n; i++) balances.add({ address: `0x${(i * 7919).toString(16).padStart(40, '0')}`, amount: String(i + 1) })
      const g = parseCompactGenesis({ ...golden, balances: true }, balances)
      assert.ok(g.ok)
      const path = join(dir, `genesis${n}.json`)
      writeGenesisFile(path, g.value)
      assert.equal(readFileSync(path, 'utf8'), formatGenesisText(formatGenesis(g.value)), `${n} balances`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a testnet with unkeyed accounts funds them in genesis and writes key files for the keyed ones only', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'tally-testnet-')), 'net')
  try {
    writeTestnet({
      validators: 2,
      out,
      chainId: 'bench-1',
      host: '127.0.0.1',
      p2pPort: 40000,
      rpcPort: 40100,
      accounts: 3,
      unkeyedAccounts: 500,
      balance: 9n,
      verifyWorkers: 0,
    })
    const g = parseGenesis(JSON.parse(readFileSync(join(out, 'genesis.json'), 'utf8')))
    assert.ok(g.ok)
    assert.equal(g.value.balances.length, 1 + 3 + 500)
    assert.ok(g.value.balances.every((b) => b.amount === 9n))
    assert.deepEqual(readdirSync(join(out, 'keys')).sort(), ['account0.json', 'account1.json', 'account2.json', 'faucet.json'])
    assert.equal(readFileSync(join(out, 'node1', 'genesis.json'), 'utf8'), readFileSync(join(out, 'genesis.json'), 'utf8'))
  } finally {
    rmSync(join(out, '..'), { recursive: true, force: true })
  }
})
