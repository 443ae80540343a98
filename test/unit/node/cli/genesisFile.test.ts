import { parseStrictJson } from '../../../../crypto/strictJson.js'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256 } from '../../../../crypto/hash.js'
import { genesisHash, parseGenesis, type GenesisJson } from '../../../../genesis/genesis.js'
import { scanGenesisFile } from '../../../../node/cli/genesisFile.js'
import { HomeError, loadGenesisHeader } from '../../../../node/cli/home.js'
import { formatGenesisText } from '../../../../node/cli/testnetFiles.js'
import { loadFixture } from '../../../helpers/fixtures.js'

const golden = () => loadFixture<{ genesis: GenesisJson }>('golden/genesis.json').genesis

/** What a home made of `text` gave when genesis.json was parsed whole: the genesis, or the error's message. */
function whole(path: string, text: string): { hash: string } | { message: string } {
  let json: unknown
  try {
    json = parseStrictJson(text)
  } catch (e) {
    return { message: `${path} is not valid JSON: ${(e as Error).message}` }
  }
  const g = parseGenesis(json)
  if (!g.ok)
    return {
      message: new HomeError(
        `${path} is invalid`,
        g.error.errors.map((e) => `${e.path}: ${e.message}`),
      ).message,
    }
  return { hash: Buffer.from(genesisHash(g.value)).toString('hex') }
}

/** The same home read piecewise: the header, then the whole genesis. */
function piecewise(path: string): { hash: string } | { message: string } {
  try {
    const h = loadGenesisHeader(path)
    assert.deepEqual(h.file.digest, sha256(readFileSync(path)))
    assert.equal(h.file.size, readFileSync(path).byteLength)
    return { hash: Buffer.from(genesisHash(h.file.readAll())).toString('hex') }
  } catch (e) {
    assert.ok(e instanceof HomeError, String(e))
    return { message: e.message }
  }
}

test('genesis files are accepted or refused, with the same problems, as when parsed whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-genesis-file-'))
  const path = join(dir, 'genesis.json')
  try {
    const g = golden()
    const text = formatGenesisText(g)
    const texts: [string, string][] = [
      ['as tallyd testnet writes it', text],
      ['on one line', JSON.stringify(g)],
      [
        'balances first, escapes in keys and strings',
        `{"bal\\u0061nces":${JSON.stringify(g.balances).replace('"address"', '"\\u0061ddress"')},"chainId":"tally-g\\u006flden","genesisTime":${JSON.stringify(g.genesisTime)},"validators":${JSON.stringify(g.validators)},"params":${JSON.stringify(g.params)}}`,
      ],
      ['whitespace of every kind', JSON.stringify(g, null, '\t').replace(/\n/g, ' \r\n\t')],
      ['no balances', JSON.stringify({ ...g, balances: [] })],
      ['a repeated key (refused: JSON.parse would keep the last one)', text.replace('{', '{\n  "chainId": "first",')],
      ['a repeated key in a balance', text.replace(/"amount":"/, '"amount":"7","amount":"')],
      ['a __proto__ key', text.replace('{', '{"__proto__": {"chainId": 5},')],
      ['not JSON', text.slice(0, 300)],
      ['a trailing comma', text.replace(/\n {2}\]/, ',\n  ]')],
      ['text after the document', `${text} x`],
      ['two documents', `${text}${text}`],
      ['a byte order mark', `\ufeff${text}`],
      ['an array', `[${text}]`],
      ['balances not an array', JSON.stringify({ ...g, balances: { a: 1 } })],
      ['bad balances', JSON.stringify({ ...g, balances: [...g.balances, { address: '0x12', amount: '05' }, 5, g.balances[0]] })],
      ['a bad header and bad balances', JSON.stringify({ ...g, chainId: 'no spaces', balances: [{ address: '0x12', amount: '1' }] })],
      ['a missing field', JSON.stringify({ ...g, validators: undefined })],
      ['an unterminated string', text.replace('"chainId"', '"chainId')],
      ['a bad literal', text.replace('"proposeMs": 2000', '"proposeMs": tru')],
      ['a number with a colon', text.replace('"proposeMs": 2000', '"proposeMs": 20:00')],
      ['empty', ''],
      ['a field larger than the read window', JSON.stringify({ ...g, extra: 'x'.repeat(3 * 1024 * 1024) })],
      ['a balance larger than the read window', JSON.stringify({ ...g, balances: [...g.balances, { address: 'y'.repeat(2 * 1024 * 1024), amount: '1' }] })],
    ]
    const valid = new Set(['as tallyd testnet writes it', 'on one line', 'whitespace of every kind', 'no balances'])
    for (const [desc, t] of texts) {
      writeFileSync(path, t)
      const expected = whole(path, t)
      assert.equal('hash' in expected, valid.has(desc) || desc.startsWith('balances first'), `${desc}: ${JSON.stringify(expected)}`)
      assert.deepEqual(piecewise(path), expected, desc)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the reader hands over every balance in file order and steps over them when asked to', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-genesis-file-'))
  const path = join(dir, 'genesis.json')
  try {
    // longer than the reader's window, with values across its edges
    const balances = Array.from({ length: 40_000 }, (_, i) => ({ address: `0x${i.toString(16).padStart(40, '0')}`, amount: String(i + 1) }))
    const text = formatGenesisText({ ...golden(), balances })
    writeFileSync(path, text)
    const seen: unknown[] = []
    const scan = scanGenesisFile(path, (b) => seen.push(b))
    assert.ok(scan !== undefined)
    assert.deepEqual(seen, balances)
    assert.deepEqual(scan.digest, sha256(Buffer.from(text)))
    assert.equal(scan.fields.balances, true)
    const { balances: _, ...rest } = JSON.parse(text)
    const { balances: __, ...fields } = scan.fields
    assert.deepEqual(fields, rest)
    const skipped = scanGenesisFile(path)
    assert.ok(skipped !== undefined)
    assert.deepEqual(skipped.digest, scan.digest)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a genesis file changed after its header was read is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-genesis-file-'))
  const path = join(dir, 'genesis.json')
  try {
    writeFileSync(path, formatGenesisText(golden()))
    const h = loadGenesisHeader(path)
    writeFileSync(path, JSON.stringify(golden()))
    assert.throws(() => h.file.readAll(), /changed while the node was starting/)
    rmSync(path)
    assert.throws(() => h.file.readAll(), /does not exist/)
    assert.throws(() => loadGenesisHeader(path), /does not exist/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the reader checks the file as it opens it: a FIFO in place of the genesis is refused, never waited on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-genesis-file-'))
  const fifo = join(dir, 'genesis.json')
  try {
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0)
    // in a process of its own: a blocking open of a FIFO with no writer would hang this one for ever
    const module = new URL('../../../../node/cli/genesisFile.js', import.meta.url).href
    const code = `const { scanGenesisFile } = await import(${JSON.stringify(module)}); try { scanGenesisFile(${JSON.stringify(fifo)}); console.log('read') } catch (e) { console.log(e.constructor.name, e.code, e.message) }`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 10_000 })
    assert.equal(r.error, undefined, `the scan did not return: ${r.error?.message}`)
    assert.match(r.stdout, /^FileReadError not_regular .*genesis\.json is a FIFO, not a regular file\n$/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
