import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseGenesis, type GenesisJson } from '../../../../genesis/genesis.js'
import { formatGenesisText, writeTestnet } from '../../../../node/cli/testnetFiles.js'

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
