import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesEqual } from '../../../../crypto/bytes.js'
import { decodeLightStore, encodeLightStore, lightStorePath, loadLightStore, saveLightStore, MAX_LIGHT_STORE_BYTES } from '../../../../rpc/light/lightStore.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { trustedBlockOf } from '../../../../rpc/light/verifier.js'
import { SyntheticChain, type Member } from './syntheticChain.js'

/** The light store on disk: what it keeps, how it is written, and every way a file can be corrupt. */

const four = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))
const chain = new SyntheticChain((h) => (h <= 10 ? four('a', 'b', 'c', 'd') : four('c', 'd', 'e', 'f')))

function sample(): TrustedBlocks {
  const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: new Uint8Array(32).fill(7) }, chain.genesis())
  blocks.add({ ...trustedBlockOf(chain.block(5)), nextValidators: chain.validators(6) })
  blocks.add(trustedBlockOf(chain.block(10)))
  blocks.add(trustedBlockOf(chain.block(12), chain.validators(12)))
  return blocks
}

describe('light store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-light-store-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('round trip: the root, the blocks, the next sets it holds', () => {
    const blocks = sample()
    const d = decodeLightStore(encodeLightStore(blocks))
    assert.ok(d.ok, d.ok ? '' : d.error.reason)
    const back = d.value
    assert.equal(back.chainId, chain.chainId)
    assert.deepEqual(back.root, blocks.root)
    assert.deepEqual(
      back.all().map((b) => b.height),
      [0, 5, 10, 12],
    )
    for (const [i, b] of back.all().entries()) {
      const o = blocks.all()[i]!
      assert.equal(b.hash === null ? null : bytesEqual(b.hash, o.hash!), b.hash === null ? null : true)
      if (o.nextValidators !== undefined) assert.ok(bytesEqual(b.nextValidators!.hash, o.nextValidators.hash), `next set of ${b.height}`)
    }
    // 10 did not hold the set of 11 it announced; 12 held the same set (its own and its next), which the store keeps
    // once, by hash: loaded, 10 has it too
    assert.equal(blocks.at(10)!.nextValidators, undefined)
    assert.ok(bytesEqual(back.at(10)!.nextValidators!.hash, chain.validators(11).hash))
    const checkpoint = new TrustedBlocks({ kind: 'checkpoint', height: 5, hash: chain.block(5).hash }, trustedBlockOf(chain.block(5), chain.validators(5)))
    const c = decodeLightStore(encodeLightStore(checkpoint))
    assert.ok(c.ok && c.value.root.kind === 'checkpoint' && c.value.root.height === 5)
  })

  test('every kind of corruption is reported, never trusted', () => {
    const good = JSON.parse(encodeLightStore(sample())) as Record<string, any>
    const setKey = Object.keys(good.sets)[0]!
    const cases: [string, string][] = [
      ['not JSON', '{"type":'],
      ['another file', JSON.stringify({ ...good, type: 'tally-key' })],
      ['a later version', JSON.stringify({ ...good, version: 2 })],
      ['a bad chain id', JSON.stringify({ ...good, chainId: '../etc' })],
      ['no root', JSON.stringify({ ...good, root: null })],
      ['a set under another hash', JSON.stringify({ ...good, sets: { [setKey]: good.sets[setKey].slice(1) } })],
      [
        'a set member changed',
        JSON.stringify({ ...good, sets: { [setKey]: good.sets[setKey].map((m: any, i: number) => (i === 0 ? { ...m, power: 5 } : m)) } }),
      ],
      ['blocks out of order', JSON.stringify({ ...good, blocks: [good.blocks[0], good.blocks[2], good.blocks[1]] })],
      ['a header of another chain', JSON.stringify({ ...good, blocks: [good.blocks[0], { header: { ...good.blocks[1].header, chainId: 'x' } }] })],
      ['a header changed', JSON.stringify({ ...good, blocks: [good.blocks[0], { header: { ...good.blocks[1].header, txRoot: '0x12' } }] })],
      ['a root that is not the first block', JSON.stringify({ ...good, root: { height: 5, hash: `0x${'00'.repeat(32)}` } })],
      ['the genesis set missing', JSON.stringify({ ...good, sets: {} })],
      ['no blocks', JSON.stringify({ ...good, blocks: [] })],
      ['truncated', encodeLightStore(sample()).slice(0, 300)],
      // JSON.parse keeps the last of two equal keys: the store would read as another chain than a reader sees first
      ['a key twice', `{"chainId":"other-chain",${encodeLightStore(sample()).slice(1)}`],
    ]
    for (const [what, text] of cases) {
      const d = decodeLightStore(text)
      assert.equal(d.ok, false, what)
    }
    const twice = decodeLightStore(`{"chainId":"other-chain",${encodeLightStore(sample()).slice(1)}`)
    assert.match(twice.ok ? '' : twice.error.reason, /the key "chainId" appears twice/)
  })

  test('saved atomically with mode 0600, loaded back; missing, corrupt and oversized files', async () => {
    const sub = join(dir, 'nested', 'light')
    const path = lightStorePath(sub, chain.chainId)
    assert.deepEqual(await loadLightStore(path), { kind: 'missing' })
    await saveLightStore(path, sample())
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(statSync(sub).mode & 0o777, 0o700)
    assert.deepEqual(readdirSync(sub), [`${chain.chainId}.json`], 'no temporary file left')
    const loaded = await loadLightStore(path)
    assert.equal(loaded.kind, 'ok')
    assert.equal(loaded.kind === 'ok' && loaded.blocks.latest().height, 12)
    writeFileSync(path, '{"type":"tally-light-store"')
    assert.equal((await loadLightStore(path)).kind, 'corrupt')
    writeFileSync(path, Buffer.alloc(MAX_LIGHT_STORE_BYTES + 1, 0x20))
    const big = await loadLightStore(path)
    assert.ok(big.kind === 'corrupt' && /larger than/.test(big.reason))
    assert.throws(() => lightStorePath(dir, '../escape'), /not a chain id/)
  })

  test('a directory that cannot be made: one error naming the path at fault, at once', async () => {
    const within = <T>(p: Promise<T>, ms: number): Promise<T> => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms)
      })
      return Promise.race([p, late]).finally(() => clearTimeout(timer))
    }
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    mkdirSync(join(dir, 'links'))
    symlinkSync(join(dir, 'links', 'nowhere'), join(dir, 'links', 'dangling'))
    const cases: [string, RegExp][] = [
      [join(file, 'light'), /a-file is a regular file, not a directory/],
      [join(dir, 'links', 'dangling', 'light'), /dangling is a symlink to nothing/],
    ]
    // procfs answers ENOENT to a new entry in a directory that exists: a recursive mkdir retries it forever
    if (existsSync('/proc/self')) cases.unshift(['/proc/tally-test/light', /^\/proc( is not writable|\/tally-test cannot be created)/])
    for (const [sub, message] of cases) {
      await assert.rejects(within(saveLightStore(lightStorePath(sub, chain.chainId), sample()), 2000), (e: unknown) => {
        assert.match((e as Error).message, message, sub)
        return true
      })
    }
  })
})
