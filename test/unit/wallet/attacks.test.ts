import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressFromPublicKey, formatAddress } from '../../../crypto/address.js'
import { runCli } from '../../../wallet/cli.js'
import { TestChain, testKey } from '../rpc/light/testChain.js'

/**
 * What an endpoint writes into the wallet's terminal: text it sends (a transaction's error, an error message) must
 * not carry terminal control sequences, which could redraw the screen into a verified answer that was never given.
 */

const ESC = '\u001b'
/** Up a line, erase it, and draw a committed, verified transaction; then hide what follows (the "not verified" note). */
const REDRAW = `${ESC}[1A${ESC}[2K\rstatus  committed\nheight  7\nindex   0\nresult  ok\nverified at height 7 (block 0x${'ab'.repeat(32)})${ESC}[8m`

/** The control characters a terminal acts on in `text`, besides the newline and the tab. */
function controls(text: string): string[] {
  return [...text].filter((ch) => {
    const c = ch.charCodeAt(0)
    return (c < 0x20 && c !== 0x0a && c !== 0x09) || (c >= 0x7f && c <= 0x9f)
  })
}

async function endpoint(result: (method: string, params: unknown[]) => { result?: unknown; error?: unknown }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: unknown; method: string; params: unknown[] }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ jsonrpc: '2.0', id: r.id, ...result(r.method, r.params) }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

describe('an endpoint writing to the terminal', () => {
  let dir: string
  let genesisFile: string
  const servers: Server[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-wallet-attacks-'))
    const chain = await TestChain.create()
    genesisFile = join(dir, 'genesis.json')
    writeFileSync(genesisFile, JSON.stringify(chain.genesisJson))
  })
  after(() => {
    for (const s of servers) s.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function tally(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = ''
    let err = ''
    const code = await runCli([...argv, '--genesis', genesisFile, '--light-dir', join(dir, 'light')], {
      env: {},
      prompt: null,
      rpcTimeoutMs: 2000,
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
    })
    return { code, out, err }
  }

  test('a rejected transaction whose error redraws the screen as committed and verified', async () => {
    const hash = `0x${'cd'.repeat(32)}`
    const liar = await endpoint(() => ({ result: { hash, status: 'rejected', error: REDRAW } }))
    const other = await endpoint(() => ({ result: { hash, status: 'unknown' } }))
    servers.push(liar.server, other.server)
    const r = await tally(['tx', hash, '--rpc', `${liar.url},${other.url}`])
    assert.equal(r.code, 0, r.err)
    assert.deepEqual(controls(r.out), [], `stdout carries the endpoint's control sequences: ${JSON.stringify(r.out)}`)
    assert.deepEqual(controls(r.err), [])
    assert.equal(r.out.split('\n').length, 4, 'hash, status and error: the error is one line')
  })

  test('with --json, an error message with C1 controls (CSI) is JSON that carries none', async () => {
    const CSI = '\u009b'
    const message = `busy${CSI}2J${CSI}1;1Hbalance 1000000`
    const liar = await endpoint(() => ({ error: { code: -32000, message } }))
    servers.push(liar.server)
    const r = await tally(['balance', formatAddress(addressFromPublicKey(testKey('alice').publicKey)), '--rpc', liar.url, '--json'])
    assert.equal(r.code, 1)
    assert.deepEqual(controls(r.err), [], `stderr carries the endpoint's control sequences: ${JSON.stringify(r.err)}`)
    const line = JSON.parse(r.err.trim().split('\n').at(-1)!) as { error: { message: string } }
    assert.ok(line.error.message.includes(message), 'the JSON still says what the endpoint said')
  })

  test('an error message that redraws the screen as a verified balance', async () => {
    const liar = await endpoint(() => ({ error: { code: -32000, message: `busy${REDRAW}` } }))
    servers.push(liar.server)
    const r = await tally(['balance', formatAddress(addressFromPublicKey(testKey('alice').publicKey)), '--rpc', liar.url])
    assert.equal(r.code, 1)
    assert.deepEqual(controls(r.err), [], `stderr carries the endpoint's control sequences: ${JSON.stringify(r.err)}`)
  })
})
