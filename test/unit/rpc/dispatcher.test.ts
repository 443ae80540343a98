import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ok } from '../../../crypto/result.js'
import { Dispatcher, type MethodOutcome, type MethodSpec } from '../../../rpc/dispatcher.js'
import { APPLICATION_ERROR_CODES, applicationError } from '../../../rpc/errors.js'
import { Metrics } from '../../../rpc/metrics.js'
import type { DomainValue, RpcBackend } from '../../../rpc/backend.js'
import { createMethods } from '../../../rpc/methods.js'

const http = { transport: 'http' } as const
const any = { name: 'value', parse: (v: unknown) => ok(v) }

/** A method table whose `echo` answers its parameter, plus methods that misbehave in each way a method can. */
function table(): Record<string, MethodSpec> {
  return {
    echo: { params: [any], handler: async ([v]) => ({ ok: true, result: v }) },
    echoNow: { params: [any], handler: ([v]) => ({ ok: true, result: v }) },
    nothing: { params: [], handler: async () => ({ ok: true, result: undefined }) },
    bigint: { params: [], handler: async () => ({ ok: true, result: { amount: 1n } }) },
    badErrorData: { params: [], handler: async (): Promise<MethodOutcome> => ({ ok: false, error: applicationError('unavailable', 'm', { n: 1n }) }) },
    refuse: { params: [], handler: async (): Promise<MethodOutcome> => ({ ok: false, error: applicationError('unavailable', 'not now') }) },
    throwNow: {
      params: [],
      handler: () => {
        throw new Error('boom')
      },
    },
    never: { params: [], handler: () => new Promise<MethodOutcome>(() => {}) },
  }
}

/**
 * The test table plus `big` (a result of ~1 KB, `resultBytes` as JSON) and `gate` (answered once `open` is called):
 * a batch ending with `gate` holds its other members' results until then.
 */
function gatedTable(): { big: string; resultBytes: number; methods: Record<string, MethodSpec>; open: () => void } {
  const big = 'x'.repeat(1000)
  let open = () => {}
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  const methods: Record<string, MethodSpec> = {
    ...table(),
    big: { params: [], handler: async () => ({ ok: true, result: big }) },
    gate: {
      params: [],
      handler: async () => {
        await gate
        return { ok: true, result: 'late' }
      },
    },
  }
  return { big, resultBytes: JSON.stringify(big).length, methods, open }
}

const request = (method: string, id: unknown, params?: unknown[]) => ({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })

describe('Dispatcher', () => {
  test('answers are exactly the JSON of their response objects, whatever the id and result', async () => {
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000 }, { methods: table() })
    const ids = ['abc', 'quote " back \\ slash', 'line\nbreak \u2028 \u{1f600}', 7, 1.5, 1e21, -0, 0, null]
    const results = [{ hash: `0x${'ab'.repeat(32)}` }, 'text', null, [1, 'two', { three: [3] }], 42, true, { nested: { a: [] } }]
    for (const id of ids) {
      for (const result of results) {
        for (const method of ['echo', 'echoNow']) {
          const text = await d.handleText(JSON.stringify(request(method, id, [result])), http)
          assert.equal(text, JSON.stringify({ jsonrpc: '2.0', id, result }), `${method} id ${String(id)}`)
        }
      }
    }
    const batch = await d.handleText(JSON.stringify(ids.map((id, i) => request('echo', id, [results[i % results.length]]))), http)
    assert.equal(batch, JSON.stringify(ids.map((id, i) => ({ jsonrpc: '2.0', id, result: results[i % results.length] }))))
    // a result JSON cannot express is left out of the response, as JSON.stringify leaves it
    assert.equal(await d.handleText(JSON.stringify(request('nothing', 3)), http), JSON.stringify({ jsonrpc: '2.0', id: 3, result: undefined }))
  })

  test('what cannot be serialized, result or error data, is an internal error of that member only', async () => {
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000 }, { methods: table() })
    const text = await d.handleText(
      JSON.stringify([request('bigint', 1), request('echo', 2, ['fine']), request('badErrorData', 3), request('refuse', 4)]),
      http,
    )
    assert.deepEqual(JSON.parse(text!), [
      { jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'internal error' } },
      { jsonrpc: '2.0', id: 2, result: 'fine' },
      { jsonrpc: '2.0', id: 3, error: { code: -32603, message: 'internal error' } },
      { jsonrpc: '2.0', id: 4, error: applicationError('unavailable', 'not now') },
    ])
    const thrown = await d.handleText(JSON.stringify(request('throwNow', 5)), http)
    assert.deepEqual(JSON.parse(thrown!), { jsonrpc: '2.0', id: 5, error: { code: -32603, message: 'internal error' } })
  })

  test('in a batch, the members that outlast the deadline time out and the others are answered', async () => {
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 50 }, { methods: table() })
    const text = await d.handleText(JSON.stringify([request('never', 1), request('echo', 2, ['a']), request('never', 3), request('echoNow', 4, ['b'])]), http)
    const out = JSON.parse(text!) as { id: number; result?: unknown; error?: { code: number; data: { reason: string } } }[]
    assert.deepEqual(
      out.map((r) => r.id),
      [1, 2, 3, 4],
    )
    for (const r of [out[0]!, out[2]!]) {
      assert.equal(r.error?.code, APPLICATION_ERROR_CODES.timeout)
      assert.equal(r.error?.data.reason, 'timeout')
    }
    assert.equal(out[1]!.result, 'a')
    assert.equal(out[3]!.result, 'b')
    // a single call times out alone
    const single = JSON.parse((await d.handleText(JSON.stringify(request('never', 9)), http))!)
    assert.equal(single.error.data.reason, 'timeout')
  })

  test('every call is counted by method and outcome', async () => {
    const metrics = new Metrics()
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000 }, { methods: table(), metrics })
    await d.handleText(JSON.stringify([request('echo', 1, [1]), request('echo', 2, [2]), request('refuse', 3), request('nope', 4)]), http)
    await d.handleText('{', http)
    await d.handleText(JSON.stringify(request('echo', 5, [5])), http)
    const counts = async () => {
      const m = await metrics.rpcRequests.get()
      return Object.fromEntries(m.values.map((v) => [`${v.labels.method}/${v.labels.outcome}`, v.value]))
    }
    assert.deepEqual(await counts(), { 'echo/ok': 3, 'refuse/error': 1, 'unknown/method_not_found': 1, 'invalid/parse_error': 1 })
    // counts keep adding up across reads, and increments made on the counter directly are kept
    metrics.rpcRequests.inc({ method: 'echo', outcome: 'ok' })
    await d.handleText(JSON.stringify(request('echo', 6, [6])), http)
    assert.equal((await counts())['echo/ok'], 5)
    assert.match(await metrics.registry.metrics(), /^tally_rpc_requests_total\{method="echo",outcome="ok"\} 5$/m)
  })

  test("a request's answer carries a bounded amount of results: the members past it are answered response_too_large", async () => {
    const big = 'x'.repeat(1000)
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxResponseBytes: 3_500 }, { methods: table() })
    const text = await d.handleText(JSON.stringify(Array.from({ length: 6 }, (_, i) => request('echo', i, [big]))), http)
    const answers = JSON.parse(text!) as { id: number; result?: string; error?: { code: number; data: { reason: string } } }[]
    assert.deepEqual(
      answers.map((a) => (a.result === big ? 'ok' : a.error?.data.reason)),
      ['ok', 'ok', 'ok', 'response_too_large', 'response_too_large', 'response_too_large'],
    )
    assert.equal(answers[3]!.error!.code, APPLICATION_ERROR_CODES.response_too_large)
    // small answers still fit, and the budget is each request's own
    const next = JSON.parse((await d.handleText(JSON.stringify([request('echo', 7, [big]), request('echo', 8, [1])]), http))!)
    assert.deepEqual(
      next.map((a: { result?: unknown }) => a.result),
      [big, 1],
    )
  })

  test('results held by requests still running are bounded over all requests: the members past it are busy', async () => {
    const big = 'x'.repeat(1000)
    const resultBytes = JSON.stringify(big).length
    let bigs = 0
    let gated = 0
    let open: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const methods: Record<string, MethodSpec> = {
      ...table(),
      big: {
        params: [],
        handler: async () => {
          bigs++
          return { ok: true, result: big }
        },
      },
      gate: {
        params: [],
        handler: async () => {
          gated++
          await gate
          return { ok: true, result: 'late' }
        },
      },
    }
    // each request's answer fits its own cap (three results of ~1 KB under 3,500 bytes); ten of them at once do not
    // fit the bound over all requests, 8,000 bytes
    const options = { maxBatch: 100, requestTimeoutMs: 5000, maxResponseBytes: 3_500, maxResultBytesInFlight: 8_000 }
    const d = new Dispatcher(options, { methods })
    const batch = (n: number) => JSON.stringify([request('big', n), request('big', n + 1), request('big', n + 2), request('gate', n + 3)])
    const answers = Array.from({ length: 10 }, (_, i) => d.handleText(batch(i * 10), http))
    const deadline = Date.now() + 5000
    while (bigs < 30 || gated < 10) {
      assert.ok(Date.now() < deadline, `${bigs} results made and ${gated} requests held open`)
      await new Promise((resolve) => setImmediate(resolve))
    }
    // every result made is serialized (or refused) before a macrotask runs; no request can finish before the gate opens
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(d.resultBytesInFlight, Math.floor(8_000 / resultBytes) * resultBytes)
    // a single call is counted the same way
    const single = JSON.parse((await d.handleText(JSON.stringify(request('big', 'one')), http))!)
    assert.deepEqual(single.error, applicationError('busy', single.error.message, { detail: 'node' }))
    assert.equal(single.id, 'one')
    open()
    const out = (await Promise.all(answers)).flatMap(
      (text) => JSON.parse(text!) as { id: number; result?: string; error?: { code: number; data: { reason: string } } }[],
    )
    const held = out.filter((a) => a.result === big).length * resultBytes
    assert.ok(held <= 8_000, `${held} bytes of results held at once by unfinished requests, over a bound of 8000`)
    const refused = out.filter((a) => a.result === undefined)
    assert.equal(refused.length, 30 - Math.floor(8_000 / resultBytes))
    for (const a of refused) {
      assert.equal(a.error?.code, APPLICATION_ERROR_CODES.busy)
      assert.equal(a.error?.data.reason, 'busy')
    }
    assert.equal(out.filter((a) => a.result === 'late').length, 10)
    assert.equal(d.resultBytesInFlight, 0)
    // once those requests are answered the whole bound is free again
    const next = JSON.parse((await d.handleText(JSON.stringify(Array.from({ length: 3 }, (_, i) => request('big', i))), http))!)
    assert.deepEqual(
      next.map((a: { result?: unknown }) => a.result),
      [big, big, big],
    )
    assert.equal(d.resultBytesInFlight, 0)
  })

  test('the results one client address holds are bounded by its share; other addresses are served beside it', async () => {
    const { big, resultBytes, methods, open } = gatedTable()
    // a share of 2,500 bytes: two results of ~1 KB, not three; the whole budget takes eight
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxResultBytesInFlight: 8_000, maxResultBytesPerAddress: 2_500 }, { methods })
    const a = { transport: 'http', address: '192.0.2.1' } as const
    const b = { transport: 'ws', address: '2001:db8:0:0::/64' } as const
    const held = d.handleText(JSON.stringify([request('big', 1), request('big', 2), request('big', 3), request('gate', 4)]), a)
    const deadline = Date.now() + 5000
    while (d.resultBytesInFlight < 2 * resultBytes) {
      assert.ok(Date.now() < deadline, 'the first results held')
      await new Promise((resolve) => setImmediate(resolve))
    }
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(d.resultBytesInFlight, 2 * resultBytes)
    // the same address is busy past its share, its id echoed; another address is served
    const again = JSON.parse((await d.handleText(JSON.stringify(request('big', 'again')), a))!)
    assert.equal(again.id, 'again')
    assert.deepEqual(again.error, applicationError('busy', again.error.message, { detail: 'share' }))
    const other = JSON.parse((await d.handleText(JSON.stringify([request('big', 1), request('big', 2)]), b))!)
    assert.deepEqual(
      other.map((m: { result?: unknown }) => m.result),
      [big, big],
    )
    // a request whose address holds nothing is bounded by the whole budget only, however large its one result
    const one = JSON.parse((await d.handleText(JSON.stringify(request('echo', 'one', ['y'.repeat(4000)])), b))!)
    assert.equal(one.result.length, 4000)
    // without an address only the whole budget bounds
    assert.equal(JSON.parse((await d.handleText(JSON.stringify(request('big', 'anon')), http))!).result, big)
    open()
    const answers = JSON.parse((await held)!) as { id: number; result?: unknown; error?: { data: { reason: string } } }[]
    assert.deepEqual(
      answers.map((m) => m.result ?? m.error?.data.reason),
      [big, big, 'busy', 'late'],
    )
    assert.equal(d.resultBytesInFlight, 0)
    assert.equal(d.addressesHoldingResults, 0)
  })

  test("a call refused for its address's share says so, and is counted apart from one past the whole budget", async () => {
    const { resultBytes, methods, open } = gatedTable()
    const metrics = new Metrics()
    // a share of 2,500 bytes (two results of ~1 KB, not three) of a budget of 8,000 (seven)
    const options = { maxBatch: 100, requestTimeoutMs: 5000, maxResultBytesInFlight: 8_000, maxResultBytesPerAddress: 2_500 }
    const d = new Dispatcher(options, { methods, metrics })
    const a = { transport: 'http', address: '192.0.2.1' } as const
    const fresh = { transport: 'http', address: '192.0.2.9' } as const
    type Member = { id: unknown; result?: unknown; error?: { code: number; message: string; data: { reason: string; detail?: string } } }
    const waitHeld = async (bytes: number) => {
      const deadline = Date.now() + 5000
      while (d.resultBytesInFlight < bytes) {
        assert.ok(Date.now() < deadline, `${d.resultBytesInFlight} bytes of results held, waiting for ${bytes}`)
        await new Promise((resolve) => setImmediate(resolve))
      }
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    }
    // one address holds its share while the node has room: its third result is refused for its share
    const heldA = d.handleText(JSON.stringify([request('big', 1), request('big', 2), request('big', 3), request('gate', 4)]), a)
    await waitHeld(2 * resultBytes)
    const overShare: Member = JSON.parse((await d.handleText(JSON.stringify(request('big', 'share')), a))!)
    assert.equal(overShare.id, 'share')
    assert.deepEqual(overShare.error, applicationError('busy', overShare.error!.message, { detail: 'share' }))
    // calls without an address fill the rest of the budget: past it the refusal is the node's
    const heldAnon = d.handleText(JSON.stringify([...Array.from({ length: 6 }, (_, i) => request('big', i)), request('gate', 9)]), http)
    await waitHeld(7 * resultBytes)
    assert.equal(d.resultBytesInFlight, 7 * resultBytes)
    const full: Member = JSON.parse((await d.handleText(JSON.stringify(request('big', 'node')), fresh))!)
    assert.deepEqual(full.error, applicationError('busy', full.error!.message, { detail: 'node' }))
    assert.notEqual(full.error!.message, overShare.error!.message)
    // the address over its share while the whole budget is full too: the node has no room for anyone
    const both: Member = JSON.parse((await d.handleText(JSON.stringify(request('big', 'both')), a))!)
    assert.equal(both.error?.data.detail, 'node')
    open()
    const membersA = JSON.parse((await heldA)!) as Member[]
    const membersAnon = JSON.parse((await heldAnon)!) as Member[]
    assert.deepEqual(
      membersA.map((m) => (m.result === undefined ? m.error?.data.detail : 'ok')),
      ['ok', 'ok', 'share', 'ok'],
    )
    assert.deepEqual(
      membersAnon.map((m) => (m.result === undefined ? m.error?.data.detail : 'ok')),
      ['ok', 'ok', 'ok', 'ok', 'ok', 'node', 'ok'],
    )
    const m = await metrics.rpcRequests.get()
    const counts = Object.fromEntries(m.values.map((v) => [`${v.labels.method}/${v.labels.outcome}`, v.value]))
    assert.deepEqual(counts, { 'big/ok': 7, 'big/busy_share': 2, 'big/error': 3, 'gate/ok': 2 })
    assert.equal(d.resultBytesInFlight, 0)
  })

  test('the results a request holds are given back however it ends: answered, timed out, or failed', async () => {
    const big = 'x'.repeat(1000)
    const resultBytes = JSON.stringify(big).length
    const release: (() => void)[] = []
    const methods: Record<string, MethodSpec> = {
      ...table(),
      big: { params: [], handler: async () => ({ ok: true, result: big }) },
      /** Answers `big` once released. */
      bigLater: {
        params: [],
        handler: async () => {
          await new Promise<void>((resolve) => release.push(resolve))
          return { ok: true, result: big }
        },
      },
      /** Throws once released. */
      throwLater: {
        params: [],
        handler: async () => {
          await new Promise<void>((resolve) => release.push(resolve))
          throw new Error('boom')
        },
      },
      /** A parameter whose parsing throws: the request itself fails. */
      badParser: {
        params: [
          {
            name: 'v',
            parse: () => {
              throw new Error('parser bug')
            },
          },
        ],
        handler: async () => ({ ok: true, result: 1 }),
      },
    }
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 200, maxResultBytesInFlight: 10_000, maxResultBytesPerAddress: 5_000 }, { methods })
    // every request from one client address: what it holds is given back to its share too
    const from = { transport: 'http', address: '192.0.2.1' } as const
    const settle = async () => {
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    }
    const waitForRelease = async (n: number) => {
      const deadline = Date.now() + 5000
      while (release.length < n) {
        assert.ok(Date.now() < deadline, 'the held calls running')
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    // answered: a single call and a batch
    await d.handleText(JSON.stringify(request('big', 1)), from)
    assert.equal(d.resultBytesInFlight, 0)
    assert.equal(d.addressesHoldingResults, 0)
    const answered = d.handleText(JSON.stringify([request('big', 1), request('bigLater', 2)]), from)
    await waitForRelease(1)
    await settle()
    assert.equal(d.resultBytesInFlight, resultBytes, 'the first member held while the second runs')
    release.shift()!()
    assert.equal(JSON.parse((await answered)!).length, 2)
    assert.equal(d.resultBytesInFlight, 0)
    assert.equal(d.addressesHoldingResults, 0)
    // timed out: the member that outlasts the deadline holds nothing, the one answered gives back its bytes
    const timedOut = JSON.parse((await d.handleText(JSON.stringify([request('big', 1), request('never', 2)]), from))!)
    assert.equal(timedOut[1].error.data.reason, 'timeout')
    assert.equal(d.resultBytesInFlight, 0)
    assert.equal(d.addressesHoldingResults, 0)
    // a handler that throws: an internal error, and what the others held is given back
    const thrown = d.handleText(JSON.stringify([request('big', 1), request('throwLater', 2)]), from)
    await waitForRelease(1)
    release.shift()!()
    assert.equal(JSON.parse((await thrown)!)[1].error.code, -32603)
    assert.equal(d.resultBytesInFlight, 0)
    assert.equal(d.addressesHoldingResults, 0)
    // a request that fails as a whole: a member answered after its end counts nothing
    const failed = d.handleText(JSON.stringify([request('bigLater', 1), request('badParser', 2, [0])]), from)
    await assert.rejects(failed, /parser bug/)
    await waitForRelease(1)
    release.shift()!()
    await settle()
    assert.equal(d.resultBytesInFlight, 0)
    assert.equal(d.addressesHoldingResults, 0)
  })

  test('heavy calls run a few at a time over all requests; one whose turn comes after its deadline gives it up', async () => {
    let running = 0
    let most = 0
    const release: (() => void)[] = []
    const heavy: MethodSpec = {
      params: [],
      heavy: true,
      handler: async () => {
        running++
        most = Math.max(most, running)
        await new Promise<void>((resolve) => release.push(resolve))
        running--
        return { ok: true, result: 'block' }
      },
    }
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxHeavyCalls: 2 }, { methods: { ...table(), heavy } })
    const answers = [
      d.handleText(JSON.stringify(Array.from({ length: 5 }, (_, i) => request('heavy', i))), http),
      d.handleText(JSON.stringify(request('heavy', 9)), http),
    ]
    for (let done = 0; done < 6; done++) {
      await new Promise((resolve) => setImmediate(resolve))
      assert.ok(running <= 2, `${running} heavy calls at once`)
      release.shift()?.()
      while (release.length === 0 && running > 0) await new Promise((resolve) => setImmediate(resolve))
    }
    const [batch, single] = await Promise.all(answers)
    assert.equal(most, 2)
    assert.deepEqual(
      JSON.parse(batch!).map((a: { result?: unknown }) => a.result),
      Array(5).fill('block'),
    )
    assert.equal(JSON.parse(single!).result, 'block')
    // a call that waits for its turn past the request's deadline is a timeout, and the turn it was owed is not lost
    const slow = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 50, maxHeavyCalls: 1 }, { methods: { ...table(), heavy } })
    const first = slow.handleText(JSON.stringify(request('heavy', 1)), http)
    const waiting = slow.handleText(JSON.stringify(request('heavy', 2)), http)
    assert.equal(JSON.parse((await waiting)!).error.data.reason, 'timeout')
    assert.equal(JSON.parse((await first)!).error.data.reason, 'timeout')
    while (release.length > 0) release.shift()!()
    const after = slow.handleText(JSON.stringify(request('heavy', 3)), http)
    while (release.length === 0) await new Promise((resolve) => setImmediate(resolve))
    release.shift()!()
    assert.equal(JSON.parse((await after)!).result, 'block')
  })

  /** A heavy method whose calls wait until released; `started` lists the parameter of each call as it starts. */
  function gatedHeavy(): { spec: MethodSpec; started: unknown[]; release: (() => void)[] } {
    const started: unknown[] = []
    const release: (() => void)[] = []
    const spec: MethodSpec = {
      params: [any],
      heavy: true,
      handler: async ([v]) => {
        started.push(v)
        await new Promise<void>((resolve) => release.push(resolve))
        return { ok: true, result: v }
      },
    }
    return { spec, started, release }
  }

  const tick = () => new Promise((resolve) => setImmediate(resolve))

  /** Waits until `cond` holds, turning the event loop, for at most two seconds. */
  async function until(cond: () => boolean, what: string): Promise<void> {
    const end = Date.now() + 2000
    while (!cond()) {
      if (Date.now() > end) assert.fail(`still waiting: ${what}`)
      await tick()
    }
  }

  test('an address with many heavy calls waiting does not keep another address waiting behind them', async () => {
    const { spec, started, release } = gatedHeavy()
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxHeavyCalls: 2 }, { methods: { ...table(), heavy: spec } })
    const a = { transport: 'http', address: '10.0.0.1' } as const
    const b = { transport: 'http', address: '10.0.0.2' } as const
    const flood = Array.from({ length: 8 }, (_, i) => d.handleText(JSON.stringify(request('heavy', i, [`a${i}`])), a))
    await until(() => started.length === 2, 'the first address fills both turns')
    const other = d.handleText(JSON.stringify(request('heavy', 1, ['b'])), b)
    await tick()
    release.shift()!()
    await until(() => started.length === 3, 'a freed turn is taken')
    assert.equal(started[2], 'b', `the freed turn went to ${started[2]}, ahead of the other address`)
    while (started.length < 9 || release.length > 0) {
      release.shift()?.()
      await tick()
    }
    assert.equal(JSON.parse((await other)!).result, 'b')
    for (const [i, answer] of (await Promise.all(flood)).entries()) assert.equal(JSON.parse(answer!).result, `a${i}`)
  })
  test('one address holds at most its share of the heavy turns, and each address goes in turn', async () => {
    const { spec, started, release } = gatedHeavy()
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxHeavyCalls: 4, maxHeavyCallsPerAddress: 1 }, { methods: { ...table(), heavy: spec } })
    const from = (address: string) => ({ transport: 'ws', address }) as const
    const answers = [
      d.handleText(JSON.stringify(['x0', 'x1', 'x2'].map((v, i) => request('heavy', i, [v]))), from('x')),
      d.handleText(JSON.stringify(['y0', 'y1'].map((v, i) => request('heavy', i, [v]))), from('y')),
      d.handleText(JSON.stringify(request('heavy', 0, ['n0'])), { transport: 'http' }),
      d.handleText(JSON.stringify(request('heavy', 1, ['n1'])), { transport: 'http' }),
    ]
    await until(() => started.length === 3, 'each address takes a turn')
    await tick()
    assert.deepEqual(started, ['x0', 'y0', 'n0'], 'one turn per address, the fourth left free')
    assert.deepEqual(d.heavyWaiting, { calls: 4, addresses: 3 })
    release.shift()!()
    await until(() => started.length === 4, 'the freed turn is taken')
    assert.equal(started[3], 'x1')
    while (started.length < 7 || release.length > 0) {
      release.shift()?.()
      await tick()
    }
    assert.deepEqual(started.slice(4).sort(), ['n1', 'x2', 'y1'])
    await Promise.all(answers)
    assert.deepEqual(d.heavyWaiting, { calls: 0, addresses: 0 })
  })

  test('a heavy call leaves its queue when its deadline passes, its client is gone or its request fails', async () => {
    const { spec, started, release } = gatedHeavy()
    const broken: MethodSpec = {
      params: [
        {
          name: 'v',
          parse: () => {
            throw new Error('parser bug')
          },
        },
      ],
      handler: async () => ({ ok: true, result: null }),
    }
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 200, maxHeavyCalls: 1 }, { methods: { ...table(), heavy: spec, broken } })
    const first = d.handleText(JSON.stringify(request('heavy', 0, ['first'])), http)
    await until(() => started.length === 1, 'the first call runs')
    // its deadline passes while it waits
    const late = d.handleText(JSON.stringify(Array.from({ length: 50 }, (_, i) => request('heavy', i, ['late']))), { transport: 'http', address: 'a' })
    // its client goes while it waits
    const gone = new AbortController()
    const leaving = d.handleText(JSON.stringify(request('heavy', 1, ['gone'])), { transport: 'http', address: 'b', signal: gone.signal })
    // another member of its request fails while it waits
    const failing = d.handleText(JSON.stringify([request('heavy', 1, ['failed']), request('broken', 2, [0])]), { transport: 'http', address: 'c' })
    await assert.rejects(failing, /parser bug/)
    await until(() => d.heavyWaiting.addresses === 2, 'the failed request leaves its queue')
    gone.abort()
    await until(() => d.heavyWaiting.addresses === 1, 'the gone client leaves its queue')
    await leaving
    for (const a of JSON.parse((await late)!)) assert.equal(a.error.data.reason, 'timeout')
    assert.deepEqual(d.heavyWaiting, { calls: 0, addresses: 0 })
    release.shift()!()
    assert.equal(JSON.parse((await first)!).error.data.reason, 'timeout')
    // no call that left started, and the turn is free for the next
    const after = d.handleText(JSON.stringify(request('heavy', 3, ['after'])), http)
    await until(() => started.length === 2, 'the next call runs')
    release.shift()!()
    assert.equal(JSON.parse((await after)!).result, 'after')
    assert.deepEqual(started, ['first', 'after'])
  })
  test('a heavy turn is given back once whichever comes first: its grant, its client gone or a synchronous throw', async () => {
    const { spec, started, release } = gatedHeavy()
    const throwing: MethodSpec = {
      params: [],
      heavy: true,
      handler: () => {
        throw new Error('handler bug')
      },
    }
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxHeavyCalls: 1 }, { methods: { ...table(), heavy: spec, throwing } })
    const microtasks = async (n: number) => {
      for (let i = 0; i < n; i++) await Promise.resolve()
    }
    // the holder's turn ends and the waiting call's client goes, `k` microtasks apart, so that the turn is granted to
    // it before, as or after it leaves its queue
    const granted: number[] = []
    for (let k = 0; k < 12; k++) {
      const holder = d.handleText(JSON.stringify(request('heavy', 0, [`holder${k}`])), http)
      await until(() => started.length === 1, 'the holder runs')
      const gone = new AbortController()
      const waiting = d.handleText(JSON.stringify(request('heavy', 1, [`waiting${k}`])), { transport: 'http', signal: gone.signal })
      await until(() => d.heavyWaiting.calls === 1, 'the second call waits')
      release.shift()!()
      await microtasks(k)
      gone.abort()
      await holder
      // a waiting call granted the turn before its client went runs (its answer unread) until its handler is released
      let answered = false
      void waiting.then(() => {
        answered = true
      })
      await until(() => {
        while (release.length > 0) release.shift()!()
        return answered
      }, `the waiting call done (k=${k})`)
      if (started.includes(`waiting${k}`)) granted.push(k)
      // whatever the order, the one turn is free again, and held by one call at a time
      assert.deepEqual(d.heavyWaiting, { calls: 0, addresses: 0 }, `k=${k}`)
      while (release.length > 0) release.shift()!()
      started.length = 0
      const next = [0, 1].map((i) => d.handleText(JSON.stringify(request('heavy', i, [`next${i}`])), http))
      await until(() => started.length === 1, `a next call runs (k=${k})`)
      await tick()
      assert.equal(started.length, 1, `two heavy calls ran at once (k=${k})`)
      release.shift()!()
      await until(() => started.length === 2, `the other next call runs (k=${k})`)
      release.shift()!()
      await Promise.all(next)
      started.length = 0
    }
    // both orders happened: the client gone before the grant (the call left the queue), and after it (the call ran)
    assert.ok(granted.length > 0 && granted.length < 12, `granted the turn at k = ${granted.join(', ')}`)
    // a handler that throws as it is called gives its turn back
    const thrown = JSON.parse((await d.handleText(JSON.stringify(request('throwing', 5, [])), http))!)
    assert.equal(thrown.error.code, -32603)
    const last = d.handleText(JSON.stringify(request('heavy', 6, ['last'])), http)
    await until(() => started.length === 1, 'the turn is free after a throwing handler')
    release.shift()!()
    assert.equal(JSON.parse((await last)!).result, 'last')
  })
  test('a result given as UTF-8 bytes is answered as its text, counted by its length as text', async () => {
    const text = JSON.stringify({ note: 'refusé ✓ \u{1f600}' })
    const kept: MethodSpec = { params: [], handler: async () => ({ ok: true, utf8: Buffer.from(text), chars: text.length }) }
    const answer = (limit: number) =>
      new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000, maxResponseBytes: limit }, { methods: { ...table(), kept } }).handleText(
        JSON.stringify([request('kept', 1), request('echo', 2, ['b'])]),
        http,
      )
    assert.equal(await answer(text.length + 3), `[{"jsonrpc":"2.0","id":1,"result":${text}},{"jsonrpc":"2.0","id":2,"result":"b"}]`)
    assert.equal(JSON.parse((await answer(text.length))!)[1].error.data.reason, 'response_too_large')
    assert.equal(JSON.parse((await answer(text.length - 1))!)[0].error.data.reason, 'response_too_large')
  })
})

describe('chain_getEvidence', () => {
  /** An evidence list of `n` items whose formatting is counted (each item's `validator` is read once per format). */
  function countedEvidence(n: number): { list: DomainValue[]; reads: () => number } {
    let reads = 0
    const list = Array.from({ length: n }, (_, i) => ({
      kind: 'conflictingVotes',
      get validator() {
        reads++
        return new Uint8Array(20).fill(i & 0xff)
      },
      height: i + 1,
      first: { valueId: new Uint8Array(32), signature: new Uint8Array(64) },
      committedAt: i + 3,
    }))
    return { list, reads: () => reads }
  }

  test('a list is formatted once however many calls ask for it, and answered the same', async () => {
    const { list, reads } = countedEvidence(200)
    const backend = { getEvidence: () => list } as unknown as RpcBackend
    const d = new Dispatcher({ maxBatch: 100, requestTimeoutMs: 5000 }, { methods: createMethods({ backend }) })
    const answer = JSON.parse((await d.handleText(JSON.stringify(Array.from({ length: 100 }, (_, i) => request('chain_getEvidence', i))), http))!)
    assert.equal(answer.length, 100)
    for (const a of answer) assert.deepEqual(a.result, answer[0].result)
    assert.equal(answer[0].result.length, 200)
    assert.equal(answer[0].result[5].validator, `0x${'05'.repeat(20)}`)
    assert.equal(answer[0].result[5].committedAt, 8)
    assert.ok(reads() <= 200, `formatted ${reads() / 200} times`)
  })

  test('a list whose answer would pass the cap is refused without formatting all of it', async () => {
    const { list, reads } = countedEvidence(10_000)
    const backend = { getEvidence: () => [...list] } as unknown as RpcBackend
    const d = new Dispatcher(
      { maxBatch: 100, requestTimeoutMs: 5000, maxResponseBytes: 64 * 1024 },
      { methods: createMethods({ backend, maxResultBytes: 64 * 1024 }) },
    )
    const answer = JSON.parse((await d.handleText(JSON.stringify(request('chain_getEvidence', 1)), http))!)
    assert.equal(answer.error.data.reason, 'response_too_large')
    assert.ok(reads() < 1000, `formatted ${reads()} of 10000 items`)
  })
  test('a list too long to answer is found so once, however many calls ask for it', async () => {
    const { list, reads } = countedEvidence(10_000)
    const backend = { getEvidence: () => list } as unknown as RpcBackend
    const d = new Dispatcher(
      { maxBatch: 100, requestTimeoutMs: 5000, maxResponseBytes: 64 * 1024 },
      { methods: createMethods({ backend, maxResultBytes: 64 * 1024 }) },
    )
    const answer = JSON.parse((await d.handleText(JSON.stringify(Array.from({ length: 50 }, (_, i) => request('chain_getEvidence', i))), http))!)
    for (const a of answer) assert.equal(a.error.data.reason, 'response_too_large')
    assert.ok(reads() < 1000, `formatted ${reads()} items for 50 calls`)
  })
})
