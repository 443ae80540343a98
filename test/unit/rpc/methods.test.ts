import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { BlockInfo, RpcBackend } from '../../../rpc/backend.js'
import { Dispatcher } from '../../../rpc/dispatcher.js'
import { formatBlock } from '../../../rpc/format.js'
import { createMethods, MAX_BLOCK_ANSWERS } from '../../../rpc/methods.js'

/** The method table's own work: what it keeps of the answers it makes, and that they are the answers made afresh. */

const http = { transport: 'http' } as const
const request = (method: string, id: number, params: unknown[]) => ({ jsonrpc: '2.0', id, method, params })

/** A block of `n` transactions of `size` bytes (raw bytes: they do not decode) whose formatting is counted. */
function countedBlock(height: number, n: number, size = 100): { block: BlockInfo; plain: BlockInfo; formats: () => number } {
  let formats = 0
  const txs = Array.from({ length: n }, (_, i) => new Uint8Array(size).fill((height * 31 + i) & 0xff))
  const block: BlockInfo = {
    height,
    hash: new Uint8Array(32).fill(height),
    header: { chainId: 'c', height, time: 1_700_000_000_000 + height, txRoot: new Uint8Array(32).fill(9) },
    get txs() {
      formats++
      return txs
    },
    results: txs.map((_, i) => (i % 3 === 0 ? { ok: false, error: 'insufficient_funds' } : { ok: true })),
    commit: { height, round: 0, blockHash: new Uint8Array(32).fill(height), signatures: [], lastCommit: null },
    evidence: [],
  }
  return { block, plain: { ...block, txs }, formats: () => formats }
}

/** The answer to `chain_getBlock` as the block formatted afresh makes it. */
function afresh(id: number, b: BlockInfo): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result: formatBlock(b) })
}

function dispatcherOver(blocks: readonly BlockInfo[], blockAnswerBytes?: number): Dispatcher {
  const backend = {
    getBlock: async (h?: number) => (h === undefined ? blocks.at(-1) : blocks[h - 1]) ?? null,
  } as unknown as RpcBackend
  const methods = createMethods({ backend, ...(blockAnswerBytes === undefined ? {} : { blockAnswerBytes }) })
  return new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000 }, { methods })
}

test('chain_getBlock: a block the backend hands out again is formatted once, answered as formatted afresh', async () => {
  const { block, plain, formats } = countedBlock(1, 50)
  const before = formats()
  const d = dispatcherOver([block])
  const batch = await d.handleText(JSON.stringify(Array.from({ length: 50 }, (_, i) => request('chain_getBlock', i, [1]))), http)
  const answers = JSON.parse(batch!) as unknown[]
  assert.equal(answers.length, 50)
  for (let i = 0; i < 50; i++) assert.equal(JSON.stringify(answers[i]), afresh(i, plain))
  for (const params of [[1], []]) assert.equal(await d.handleText(JSON.stringify(request('chain_getBlock', 1, params)), http), afresh(1, plain))
  assert.equal(formats() - before, 1, 'formatted once for 52 calls')
})

test('chain_getBlock: the answers kept are bounded by their bytes, the one asked longest ago dropped first', async () => {
  const made = [1, 2, 3].map((h) => countedBlock(h, 20))
  const size = afresh(1, made[0]!.plain).length
  const formatsOf = () => made.map((m) => m.formats())
  const d = dispatcherOver(
    made.map((m) => m.block),
    2 * size,
  )
  const ask = async (h: number) => assert.equal(await d.handleText(JSON.stringify(request('chain_getBlock', 1, [h])), http), afresh(1, made[h - 1]!.plain))
  const start = formatsOf()
  const formatted = () => formatsOf().map((n, i) => n - start[i]!)
  for (const h of [1, 2, 1, 2]) await ask(h)
  assert.deepEqual(formatted(), [1, 1, 0])
  // a third block: the first, asked longest ago, is dropped; the second and third are kept
  for (const h of [3, 2, 3, 1]) await ask(h)
  assert.deepEqual(formatted(), [2, 1, 1])
  // an answer larger than the whole bound is never kept
  const big = countedBlock(1, 100)
  const small = dispatcherOver([big.block], size)
  const bigBefore = big.formats()
  for (let i = 0; i < 3; i++) assert.equal(await small.handleText(JSON.stringify(request('chain_getBlock', 1, [1])), http), afresh(1, big.plain))
  assert.equal(big.formats() - bigBefore, 3)
})

test('chain_getBlock: an answer within the bound as text but past it in bytes is not kept and drops nothing', async () => {
  const kept = countedBlock(1, 5)
  const wide = countedBlock(2, 20)
  // two-byte characters in its results' errors: its answer's UTF-8 is longer than its text
  const results = wide.plain.results!.map(() => ({ ok: false, error: 'é'.repeat(200) }))
  const wideBlock = Object.defineProperty({ ...wide.block, results }, 'txs', { get: () => wide.block.txs })
  const widePlain = { ...wide.plain, results }
  const chars = afresh(1, widePlain).length
  const bytes = Buffer.byteLength(afresh(1, widePlain))
  assert.ok(bytes > chars + 1000)
  const d = dispatcherOver([kept.block, wideBlock as BlockInfo], chars + 10)
  const ask = async (h: number, plain: BlockInfo) => assert.equal(await d.handleText(JSON.stringify(request('chain_getBlock', 1, [h])), http), afresh(1, plain))
  await ask(1, kept.plain)
  const before = [kept.formats(), wide.formats()]
  for (let i = 0; i < 3; i++) await ask(2, widePlain)
  await ask(1, kept.plain)
  assert.deepEqual([kept.formats() - before[0]!, wide.formats() - before[1]!], [0, 3], 'the wide answer pushed the kept one out')
})

test('chain_getBlock: a backend that hands out a new object for each answer has each formatted, never an old answer', async () => {
  let n = 1
  const backend = { getBlock: async () => countedBlock(1, n++).block } as unknown as RpcBackend
  const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000 }, { methods: createMethods({ backend }) })
  for (let i = 1; i <= 3; i++) {
    const answer = JSON.parse((await d.handleText(JSON.stringify(request('chain_getBlock', 1, [1])), http))!)
    assert.equal(answer.result.txs.length, i)
  }
})

/** Counts the turns of the event loop until `p` settles: what other work (a consensus message) could run meanwhile. */
async function turnsDuring<T>(p: Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0
  let done = false
  const tick = () => {
    if (done) return
    turns++
    setImmediate(tick)
  }
  setImmediate(tick)
  const value = await p
  done = true
  return { value, turns }
}

test('chain_getBlock: a large block is formatted a part at a time, the event loop turning between; the same answer', async () => {
  for (const [n, evidence] of [
    [2000, true],
    [1001, false],
  ] as const) {
    const { block, plain } = countedBlock(1, n)
    const withEvidence = evidence ? block : Object.defineProperty({ ...block, evidence: undefined }, 'txs', { get: () => block.txs })
    const d = dispatcherOver([withEvidence as BlockInfo], 0)
    const { value, turns } = await turnsDuring(d.handleText(JSON.stringify(request('chain_getBlock', 1, [1])), http))
    assert.equal(value, afresh(1, evidence ? plain : { ...plain, evidence: undefined }))
    assert.ok(turns >= 3, `the loop turned ${turns} times while a block of ${n} transactions was formatted`)
  }
})

test('chain_getBlock: calls for one block while it is being formatted share the one answer made', async () => {
  const { block, plain, formats } = countedBlock(1, 2000)
  const before = formats()
  const d = dispatcherOver([block])
  const batch = await d.handleText(JSON.stringify(Array.from({ length: 10 }, (_, i) => request('chain_getBlock', i, [1]))), http)
  const answers = JSON.parse(batch!) as unknown[]
  for (let i = 0; i < 10; i++) assert.equal(JSON.stringify(answers[i]), afresh(i, plain))
  assert.equal(formats() - before, 1, 'formatted once for 10 calls at once')
})

test('chain_getBlock: at most a few answers are kept however small, each keeping its block object alive', async () => {
  // small blocks: their answers are far under the byte bound, and each kept answer holds its decoded block
  const made = Array.from({ length: MAX_BLOCK_ANSWERS + 4 }, (_, i) => countedBlock(i + 1, 1))
  const d = dispatcherOver(made.map((m) => m.block))
  const ask = async (h: number) => assert.equal(await d.handleText(JSON.stringify(request('chain_getBlock', 1, [h])), http), afresh(1, made[h - 1]!.plain))
  for (let h = 1; h <= made.length; h++) await ask(h)
  const before = made.map((m) => m.formats())
  // the last MAX_BLOCK_ANSWERS asked are answered as kept; the first, asked longest ago, are formatted again
  for (let h = made.length; h >= 1; h--) await ask(h)
  const again = made.map((m, i) => m.formats() - before[i]!)
  assert.deepEqual(again, [...Array(made.length - MAX_BLOCK_ANSWERS).fill(1), ...Array(MAX_BLOCK_ANSWERS).fill(0)])
})
