import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCommitCertificate, type CommitCertificate } from '../../../../consensus/index.js'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { err, ok } from '../../../../crypto/result.js'
import { blockHash } from '../../../../ledger/block.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import type { CheckedBlock } from '../../../../node/host/consensusHost.js'
import { silentLogger } from '../../../../node/logger.js'
import type { P2p, RequestHandler, RequestResult } from '../../../../node/p2p/p2p.js'
import { DISCONNECT_SCORE } from '../../../../node/p2p/scoring.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import { encodeStoredBlock, type StoredBlock } from '../../../../node/storage/storedBlock.js'
import { BLOCKS_PROTOCOL, BLOCK_PROTOCOL, BlockSync, STATUS_PROTOCOL, type BlockSyncOptions, type SyncTransport } from '../../../../node/sync/blockSync.js'
import {
  decodeHeightRequest,
  decodeRangeRequest,
  decodeRangeResponse,
  encodeBlockResponse,
  encodeHeightRequest,
  encodeRangeRequest,
  encodeRangeResponse,
  encodeTipResponse,
  MAX_RANGE_BLOCKS,
  type RangeRequest,
} from '../../../../node/sync/blockSyncMessages.js'
import { waitFor } from '../../../helpers/waitFor.js'
import { startNet } from '../p2p/p2pNet.js'
import { block, blockServer, limits } from './syncFixture.js'

/**
 * Block sync against scripted peers. Certificates here are stand-ins: a certificate is "valid" when its round is 0
 * (the verifiers are injected), so the tests exercise whom sync believes and asks, not signature checking (which the
 * host's checks and the simulator cover).
 */

/**
 * A tip certificate of this round more than two heights above the tip is one the node cannot judge (`unknown`): in a
 * node, a height beyond the validator sets it knows, signed by a third or less of the latest of them. Within two
 * heights of the tip it verifies.
 */
const UNKNOWN_ROUND = 7

/**
 * A scripted peer: its tip, and its answers to single-height requests (`/tally/block/1`) and, when it serves them, to
 * range requests (`/tally/blocks/1`).
 */
type Peer = {
  tip: number
  tipCert?: (h: number) => CommitCertificate
  serve: (h: number) => Uint8Array
  serveRange?: (r: RangeRequest) => Uint8Array | Promise<Uint8Array>
  /** How long its tip answer takes, on the harness's clock. */
  tipDelayMs?: number
}

/** The items an honest server answers a range request with, from `blockOf` up to `tip`, within the byte budget. */
function rangeItems(r: RangeRequest, tip: number, blockOf: (h: number) => { stored: StoredBlock; cert: CommitCertificate }) {
  const items: { stored: Uint8Array; certificate: Uint8Array }[] = []
  let bytes = 0
  for (let h = r.from; h < r.from + r.count && h <= tip; h++) {
    const b = blockOf(h)
    const item = { stored: encodeStoredBlock(b.stored), certificate: encodeCommitCertificate(b.cert) }
    bytes += item.stored.byteLength + item.certificate.byteLength
    if (items.length > 0 && bytes > r.maxBytes) break
    items.push(item)
  }
  return items
}

/** A peer that serves single heights only. */
function honest(tip: number): Peer {
  return {
    tip,
    serve: (h) =>
      h <= tip ? encodeBlockResponse(encodeStoredBlock(block(h).stored), encodeCommitCertificate(block(h).cert)) : encodeBlockResponse(undefined, undefined),
  }
}

/** A peer that serves ranges too, as honest nodes do. */
function ranges(tip: number, blockOf: (h: number) => { stored: StoredBlock; cert: CommitCertificate } = (h) => block(h)): Peer {
  return { ...honest(tip), serveRange: (r) => encodeRangeResponse(rangeItems(r, tip, blockOf)) }
}

/**
 * Block sync against `peers`, over a host stand-in whose checks pass every block but a tampered one. With `consensus`,
 * the host's consensus gets ahead of sync once: when sync checks height `at`, the honest blocks up to `upTo` are
 * committed (in the chain store) without it. With `staging`, the host applies a block given with `hold` without
 * committing it (the tip stays), and commits what it holds with the next block not held, or when sync settles.
 */
function harness(peers: Record<string, Peer>, options: Partial<BlockSyncOptions> = {}, consensus?: { at: number; upTo: number }, staging = false) {
  let tip = 0
  let appliedTip = 0
  const holds: boolean[] = []
  let settles = 0
  const kv = new MemoryKvStore()
  const chain = new ChainStore(kv)
  const penalties: { peer: string; reason: string; points: number }[] = []
  const asked: { peer: string; height: number; timeoutMs?: number }[] = []
  let clock = 0
  const rangesAsked: { peer: string; from: number; count: number }[] = []
  const tipsAsked: string[] = []
  let periodic: (() => void) | undefined
  const transport: SyncTransport = {
    peers: () => Object.keys(peers).sort(),
    handle: async (_p: string, _h: RequestHandler) => {},
    penalize: (peer, points, reason) => {
      penalties.push({ peer, reason, points })
    },
    request: async (peer, protocol, req, o): Promise<RequestResult> => {
      const p = peers[peer]!
      if (protocol === STATUS_PROTOCOL) {
        tipsAsked.push(peer)
        clock += p.tipDelayMs ?? 0
        if ((p.tipDelayMs ?? 0) >= o.timeoutMs) return { ok: false, error: { code: 'timeout', reason: 'no answer in time' } }
        // as a node serves it: no certificate before the first block
        const cert = p.tip > 0 ? encodeCommitCertificate((p.tipCert ?? ((h) => block(h).cert))(p.tip)) : undefined
        return { ok: true, value: encodeTipResponse(p.tip, cert) }
      }
      if (protocol === BLOCK_PROTOCOL) {
        const h = decodeHeightRequest(req)!
        asked.push({ peer, height: h, timeoutMs: o.timeoutMs })
        return { ok: true, value: p.serve(h) }
      }
      if (protocol === BLOCKS_PROTOCOL && p.serveRange !== undefined) {
        const r = decodeRangeRequest(req)!
        rangesAsked.push({ peer, from: r.from, count: r.count })
        return { ok: true, value: await p.serveRange(r) }
      }
      return { ok: false, error: { code: 'unreachable', reason: `${peer} does not serve ${protocol}` } }
    },
  }
  const applied: number[] = []
  const sync = new BlockSync(
    { intervalMs: 10, stuckMs: 1_000_000, window: 4, limits, ...options },
    {
      p2p: transport,
      chain,
      logger: silentLogger(),
      tipHeight: () => tip,
      heightStartedAtMs: () => 0,
      now: () => clock,
      // the periodic check runs only when a test calls `check`
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      every: (_ms, f) => {
        periodic = f
        return () => {}
      },
      // as in a node, a certificate within two heights of the tip is judged against the set of its own height
      verifyTip: (c) => (c.round === 0 || (c.round === UNKNOWN_ROUND && c.height <= tip + 2) ? 'proven' : c.round === UNKNOWN_ROUND ? 'unknown' : 'invalid'),
      verifyCertified: (h, s, c) => c.round === 0 && c.height === h && blockHash(s.block.header).every((b, i) => b === c.valueId[i]),
      check: async (h, s, c) => {
        if (consensus !== undefined && h === consensus.at) {
          for (let x = tip + 1; x <= consensus.upTo; x++) {
            const b = block(x)
            await kv.write(
              chain.commitOps({
                height: x,
                blockHash: b.cert.valueId,
                blockTime: x,
                blockBytes: encodeStoredBlock(b.stored),
                certificateBytes: encodeCommitCertificate(b.cert),
                txHashes: [],
                receipts: [],
              }),
            )
          }
          tip = consensus.upTo
        }
        if (h !== Math.max(tip, appliedTip) + 1) return err({ code: 'not_next' as const, reason: 'not next' })
        if (s.block.header.lastCommitHash[0] === 9) return err({ code: 'header' as const, reason: 'tampered last commit' })
        const checked: CheckedBlock = { height: h, hash: c.valueId, stored: s, txs: [], certificate: c, offenders: [] }
        return ok(checked)
      },
      apply: async (b, hold) => {
        holds.push(hold)
        appliedTip = b.height
        if (!(staging && hold)) tip = b.height
        applied.push(b.height)
        return true
      },
      ...(staging
        ? {
            appliedHeight: () => Math.max(tip, appliedTip),
            settle: async () => {
              settles++
              tip = Math.max(tip, appliedTip)
            },
          }
        : {}),
    },
  )
  return { sync, penalties, asked, rangesAsked, tipsAsked, check: () => periodic?.(), applied, tip: () => tip, holds, settles: () => settles }
}

test('a tip is believed only with a certificate that verifies: a liar cannot make the node chase it or report catching up', async () => {
  const liar: Peer = { tip: 1_000_000, tipCert: (h) => ({ ...block(1).cert, height: h, round: 5 }), serve: () => encodeBlockResponse(undefined, undefined) }
  const h = harness({ liar, honest: honest(0) })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'a poll')
  assert.equal(h.sync.bestPeerHeight, 0)
  assert.equal(h.sync.catchingUp, false)
  assert.ok(
    h.penalties.some((p) => p.peer === 'liar'),
    'the liar is penalized',
  )
  assert.equal(h.asked.length, 0, 'nobody was asked for blocks')
  h.sync.stop()
})

test('a peer serving tampered single blocks (it serves no ranges) is penalized and the next peer is asked at once; sync completes', async () => {
  const tampering: Peer = {
    tip: 12,
    serve: (x) => encodeBlockResponse(encodeStoredBlock(block(x, x > 1).stored), encodeCommitCertificate(block(x, x > 1).cert)),
  }
  const forging: Peer = {
    tip: 12,
    serve: (x) => encodeBlockResponse(encodeStoredBlock(block(x).stored), encodeCommitCertificate({ ...block(x).cert, round: 3 })),
  }
  const h = harness({ a: tampering, b: forging, c: honest(12) })
  await h.sync.start()
  await waitFor(() => h.tip() >= 12, 'sync to height 12', 10_000)
  assert.deepEqual(
    h.applied,
    [...Array(12).keys()].map((i) => i + 1),
  )
  assert.ok(
    h.penalties.some((p) => p.peer === 'a'),
    'the tamperer is penalized',
  )
  assert.ok(
    h.penalties.some((p) => p.peer === 'b'),
    'the forger is penalized',
  )
  assert.ok(!h.penalties.some((p) => p.peer === 'c'), 'the honest peer is not')
  h.sync.stop()
})

test('a tip whose certificate fails against a validator set this node knows disconnects its peer; an unbacked tip it cannot judge costs less', async () => {
  // an honest node keeps only certificates it verified, and this node knows the sets of heights up to its tip + 2
  const forger: Peer = { tip: 2, tipCert: (x) => ({ ...block(1).cert, height: x, round: 5 }), serve: () => encodeBlockResponse(undefined, undefined) }
  const unbacked: Peer = {
    tip: 1_000,
    tipCert: (x) => ({ ...block(1).cert, height: x, round: UNKNOWN_ROUND }),
    serve: () => encodeBlockResponse(undefined, undefined),
  }
  const h = harness({ forger, unbacked, honest: honest(0) })
  await h.sync.start()
  await waitFor(() => h.penalties.length >= 2, 'both judged')
  const points = Object.fromEntries(h.penalties.map((p) => [p.peer, p.points]))
  assert.equal(points.forger, DISCONNECT_SCORE, 'a forged tip certificate costs the whole disconnect score')
  assert.ok((points.unbacked ?? 0) > 0 && (points.unbacked ?? 0) < DISCONNECT_SCORE, 'an unbacked tip costs less')
  assert.equal(points.honest, undefined)
  h.sync.stop()
})

test('a tip the node cannot judge counts once its peer serves the next height certified: nobody is penalized', async () => {
  // a node wiped or long down, while the validator set changed past what it knows: every honest tip is `unknown`
  const unknowable = (p: Peer): Peer => ({ ...p, tipCert: (x) => ({ ...block(x).cert, round: UNKNOWN_ROUND }) })
  const h = harness({ a: unknowable(ranges(20)), b: unknowable(ranges(20)) }, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 20, 'sync to height 20')
  assert.deepEqual(h.applied, heights(20))
  assert.deepEqual(h.penalties, [])
  h.sync.stop()
})

test('a tip the node cannot judge, from a peer that does not serve the next height certified, is penalized and not followed', async () => {
  const claims = (serve: (x: number) => Uint8Array): Peer => ({ tip: 1_000, tipCert: (x) => ({ ...block(x).cert, height: x, round: UNKNOWN_ROUND }), serve })
  const forged = claims((x) => encodeBlockResponse(encodeStoredBlock(block(x).stored), encodeCommitCertificate({ ...block(x).cert, round: 3 })))
  const empty = claims(() => encodeBlockResponse(undefined, undefined))
  const h = harness({ forged, empty, honest: honest(0) })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1 && h.penalties.length >= 2, 'a poll')
  assert.equal(h.sync.bestPeerHeight, 0)
  assert.equal(h.sync.catchingUp, false)
  assert.deepEqual(h.penalties.map((p) => `${p.peer}: ${p.reason}`).sort(), ['empty: unproven tip', 'forged: unproven tip'])
  assert.deepEqual(
    h.asked.map((a) => a.height),
    [1, 1],
    'each was asked for the next height only',
  )
  h.sync.stop()
})

test('a liar whose tip the node cannot judge, serving the true blocks, leads a node that is behind no further than the true tip', async () => {
  const liar: Peer = { ...ranges(20), tip: 1_000, tipCert: (x) => ({ ...block(1).cert, height: x, round: UNKNOWN_ROUND }) }
  const h = harness({ honest: ranges(20), liar }, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 20, 'sync to height 20')
  // the round that reached the true tip polls again: the liar cannot serve the height after it
  await waitFor(() => h.sync.bestPeerHeight === 20, 'the liar followed no longer')
  assert.deepEqual(h.applied, heights(20))
  assert.equal(h.sync.catchingUp, false)
  assert.ok(h.penalties.some((p) => p.peer === 'liar' && p.reason === 'unproven tip'))
  assert.ok(!h.penalties.some((p) => p.peer === 'honest'))
  h.sync.stop()
})

test('a poll of a peer whose tip the node cannot judge has one deadline: the proving request gets what the tip answer left', async () => {
  const unknowable = (p: Peer, tipDelayMs: number): Peer => ({ ...p, tipDelayMs, tipCert: (x) => ({ ...block(x).cert, round: UNKNOWN_ROUND }) })
  // one answers its tip in 1.5 s of the poll's 2 s, the other only after them
  const h = harness({ slow: unknowable(ranges(20), 1_500), late: unknowable(ranges(20), 2_000) }, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.asked.length >= 1, 'a proving request')
  assert.deepEqual(h.asked[0], { peer: 'slow', height: 1, timeoutMs: 500 })
  await waitFor(() => h.tip() >= 20, 'sync to height 20')
  assert.ok(!h.asked.some((a) => a.peer === 'late'), 'a peer whose tip came too late is not asked to prove it')
  assert.deepEqual(h.penalties, [])
  h.sync.stop()
})

test('catchingUp follows verified tips: two or more heights ahead', async () => {
  const h = harness({ p: { ...honest(5), serve: () => encodeBlockResponse(undefined, undefined) } })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'a poll')
  assert.equal(h.sync.bestPeerHeight, 5)
  assert.equal(h.sync.catchingUp, true)
  h.sync.stop()
})

const heights = (n: number) => [...Array(n).keys()].map((i) => i + 1)

// The harness arms no periodic check: only the start, a connection or a round's end can start a poll.
test('a peer that connects after the start is polled at once: catching up does not wait for the periodic check', async () => {
  const peers: Record<string, Peer> = {}
  const h = harness(peers, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'the poll of the start, with no peer there')
  h.sync.peerConnected('a') // not connected yet: nothing to ask
  peers.a = ranges(20)
  h.sync.peerConnected('a')
  await waitFor(() => h.tip() >= 20, 'sync to height 20')
  assert.deepEqual(h.applied, heights(20))
  h.sync.stop()
})

test('a peer that connects during a sync round joins its fetches once its tip is verified', async () => {
  const peers: Record<string, Peer> = {}
  let bPolled = false
  const served = ranges(40)
  // a serves its first range at once and the ones asked before b was polled once b was; it answers the later ones
  // with nothing, which only a peer that joined the round can make up for
  peers.a = {
    ...served,
    serveRange: async (r) => {
      if (r.from === 1) return served.serveRange!(r)
      if (bPolled) return encodeRangeResponse([])
      await waitFor(() => bPolled, "b's tip")
      return served.serveRange!(r)
    },
  }
  const h = harness(peers, { range: { blocks: 8 } }, undefined, true)
  await h.sync.start()
  await waitFor(() => h.applied.length >= 8, 'the first range applied')
  const b = ranges(40)
  peers.b = {
    get tip() {
      bPolled = true
      return b.tip
    },
    serve: b.serve,
    serveRange: b.serveRange!,
  }
  h.sync.peerConnected('b')
  await waitFor(() => h.tip() >= 40, 'sync to height 40')
  assert.deepEqual(h.applied, heights(40))
  assert.equal(h.settles(), 1, 'one round: b, polled alone within it, served the rest of it')
  h.sync.stop()
})

test('blocks come by ranges: a request carries many heights, spread over the peers; sync completes in order', async () => {
  const h = harness({ a: ranges(40), b: ranges(40), c: ranges(40) }, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 40, 'sync to height 40', 10_000)
  assert.deepEqual(h.applied, heights(40))
  assert.deepEqual(h.asked, [], 'no single-height request')
  assert.ok(h.rangesAsked.length <= 6, `${h.rangesAsked.length} range requests for 40 heights`)
  assert.ok(
    h.rangesAsked.every((r) => r.count <= 8),
    'at most the configured heights per request',
  )
  assert.ok(new Set(h.rangesAsked.map((r) => r.peer)).size > 1, 'more than one peer asked')
  assert.deepEqual(h.penalties, [])
  h.sync.stop()
})

test('a response cut short by its byte budget: the heights it did not carry are asked for again', async () => {
  const h = harness({ a: ranges(12), b: ranges(12) }, { range: { blocks: 8, bytes: 1 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 12, 'sync to height 12', 10_000)
  assert.deepEqual(h.applied, heights(12))
  assert.ok(h.rangesAsked.length >= 12, 'one block per response')
  assert.deepEqual(h.penalties, [])
  h.sync.stop()
})

test('a range holding a block whose certificate does not verify: the blocks before it are kept, the liar is penalized, the rest comes from another peer', async () => {
  const forged = (x: number) => (x === 3 ? { ...block(x), cert: { ...block(x).cert, round: 3 } } : block(x))
  const h = harness({ a: ranges(12, forged), b: ranges(12) }, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 12, 'sync to height 12', 10_000)
  assert.deepEqual(h.applied, heights(12))
  assert.ok(
    h.penalties.some((p) => p.peer === 'a' && /block 3 without a valid certificate/.test(p.reason)),
    'the liar is penalized for block 3',
  )
  assert.deepEqual(
    h.rangesAsked.filter((r) => r.from === 3).map((r) => r.peer),
    ['b'],
    'what followed the wrong block was asked of the other peer, once',
  )
  assert.ok(!h.penalties.some((p) => p.peer === 'b'))
  h.sync.stop()
})

test('a range holding a tampered block (refused by the host): the peer is penalized and the block fetched from another', async () => {
  const tampered = (x: number) => block(x, x === 3)
  const h = harness({ a: ranges(10, tampered), b: ranges(10, tampered), c: ranges(10) }, { range: { blocks: 4 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 10, 'sync to height 10', 10_000)
  assert.deepEqual(h.applied, heights(10))
  assert.ok(
    h.penalties.some((p) => /bad block 3/.test(p.reason)),
    'a server of the tampered block 3 is penalized',
  )
  assert.ok(!h.penalties.some((p) => p.peer === 'c'))
  h.sync.stop()
})

test('a malformed range response is penalized; sync completes from the others', async () => {
  const junk: Peer = { ...ranges(12), serveRange: () => new Uint8Array([0x92, 0xc4, 0x01]) }
  const h = harness({ a: junk, c: ranges(12) }, { range: { blocks: 4 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 12, 'sync to height 12', 10_000)
  assert.deepEqual(h.applied, heights(12))
  assert.ok(h.penalties.some((p) => p.peer === 'a' && /malformed/.test(p.reason)))
  assert.ok(
    h.penalties.every((p) => p.points < DISCONNECT_SCORE),
    'bytes that do not decode may be a version apart: two strikes',
  )
  assert.ok(!h.penalties.some((p) => p.peer === 'c'))
  h.sync.stop()
})

test('no block below its tip: a peer is polled again first (it may have restarted empty), penalized if it claims the tip anew', async () => {
  // b claims a tip it serves nothing of; c serves up to 20 and first claims 12
  const b: Peer = { ...ranges(20), tip: 12, serveRange: () => encodeRangeResponse([]) }
  const c: Peer = { ...ranges(20), tip: 12 }
  const h = harness({ b, c }, { range: { blocks: 4 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 12, 'sync to height 12', 10_000)
  assert.deepEqual(h.applied, heights(12))
  assert.equal(h.penalties.length, 0, 'a first empty answer costs nothing: an honest peer restarted without its data answers so')
  // both claim 20 at the next poll (consensus saw the next height decided); b still serves nothing
  b.tip = 20
  c.tip = 20
  h.sync.request(13)
  await waitFor(() => h.tip() >= 20, 'sync to height 20', 10_000)
  assert.deepEqual(h.applied, heights(20))
  assert.ok(
    h.penalties.some((p) => p.peer === 'b' && /no block/.test(p.reason)),
    'empty again after claiming the tip anew',
  )
  // not proof of malice (a peer that restarted empty twice answers so): two strikes, not one, disconnect it
  assert.ok(h.penalties.every((p) => p.points < DISCONNECT_SCORE))
  assert.ok(!h.penalties.some((p) => p.peer === 'c'))
  h.sync.stop()
})

test('a peer that serves no ranges is asked for single heights', async () => {
  const h = harness({ a: honest(6) })
  await h.sync.start()
  await waitFor(() => h.tip() >= 6, 'sync to height 6', 10_000)
  assert.deepEqual(h.applied, heights(6))
  assert.deepEqual(
    h.asked.map((a) => a.height),
    heights(6),
  )
  assert.deepEqual(h.penalties, [])
  h.sync.stop()
})

test('serves ranges: consecutive held blocks up to the count, the tip and the byte budget (at least one), nothing for a bad request', async () => {
  const stored = (x: number) => encodeStoredBlock(block(x).stored)
  const certificate = (x: number) => encodeCommitCertificate(block(x).cert)
  const handlers = await blockServer()
  const serve = handlers.get(BLOCKS_PROTOCOL)!
  const one = stored(1).byteLength + certificate(1).byteLength
  const ask = async (req: RangeRequest) => {
    const d = decodeRangeResponse(await serve(encodeRangeRequest(req), 'x'), req, limits)
    assert.ok(d.ok)
    return d.value.map((b) => b.stored.block.header.height)
  }
  assert.deepEqual(await ask({ from: 2, count: 3, maxBytes: 1 << 20 }), [2, 3, 4])
  assert.deepEqual(await ask({ from: 4, count: 10, maxBytes: 1 << 20 }), [4, 5], 'up to the tip')
  assert.deepEqual(await ask({ from: 1, count: 10, maxBytes: 2 * one }), [1, 2], 'within the budget')
  assert.deepEqual(await ask({ from: 1, count: 10, maxBytes: 0 }), [1], 'the first block whatever the budget')
  assert.deepEqual(await ask({ from: 6, count: 10, maxBytes: 1 << 20 }), [], 'nothing held')
  assert.deepEqual(await serve(new Uint8Array([0x93, 0x00, 0x01, 0x01]), 'x'), encodeRangeResponse([]), 'a request for height 0')
  assert.deepEqual(await serve(new Uint8Array([0xc0]), 'x'), encodeRangeResponse([]), 'not a request')
})

test('range requests and responses: bounds on both sides', () => {
  assert.deepEqual(decodeRangeRequest(encodeRangeRequest({ from: 3, count: MAX_RANGE_BLOCKS, maxBytes: 10 })), {
    from: 3,
    count: MAX_RANGE_BLOCKS,
    maxBytes: 10,
  })
  for (const bad of [
    { from: 0, count: 1, maxBytes: 1 },
    { from: 1, count: 0, maxBytes: 1 },
    { from: 1, count: MAX_RANGE_BLOCKS + 1, maxBytes: 1 },
    { from: 1, count: 1, maxBytes: -1 },
  ])
    assert.equal(decodeRangeRequest(encodeRangeRequest(bad)), undefined, JSON.stringify(bad))
  const req = { count: 2, maxBytes: 1 << 20 }
  const item = (x: number) => ({ stored: encodeStoredBlock(block(x).stored), certificate: encodeCommitCertificate(block(x).cert) })
  const two = encodeRangeResponse([item(1), item(2)])
  const d = decodeRangeResponse(two, req, limits)
  assert.ok(d.ok)
  assert.deepEqual(
    d.value.map((b) => b.certificate.height),
    [1, 2],
  )
  assert.equal(decodeRangeResponse(encodeRangeResponse([item(1), item(2), item(3)]), req, limits).ok, false, 'more blocks than asked for')
  assert.equal(decodeRangeResponse(encodeCanonical([item(1).stored]), req, limits).ok, false, 'a block without its certificate')
  assert.equal(decodeRangeResponse(encodeCanonical([item(1).stored, new Uint8Array([1])]), req, limits).ok, false, 'a certificate that does not decode')
})

test('blocks fetched for heights the chain reached without them are compared with the chain: a liar is penalized all the same', async () => {
  // consensus commits heights 2 to 6 by itself while sync holds blocks of a peer that tampers with every block but the first
  const h = harness({ a: ranges(10, (x) => block(x, x > 1)), b: ranges(10) }, { range: { blocks: 6 } }, { at: 2, upTo: 6 })
  await h.sync.start()
  await waitFor(() => h.tip() >= 10, 'sync to height 10', 10_000)
  await waitFor(
    () => h.penalties.some((p) => p.peer === 'a' && /is not the block committed at that height/.test(p.reason)),
    'the liar penalized for a block the chain did not need',
  )
  assert.ok(!h.penalties.some((p) => p.peer === 'b'), 'the honest peer is not')
  h.sync.stop()
})

test('a block whose next height is at hand is applied held, to be committed with it; the round ends with all committed', async () => {
  const h = harness({ a: ranges(40), b: ranges(40) }, { range: { blocks: 8 } }, undefined, true)
  await h.sync.start()
  await waitFor(() => h.tip() >= 40, 'sync to height 40', 10_000)
  assert.deepEqual(
    h.applied,
    [...Array(40).keys()].map((i) => i + 1),
  )
  assert.equal(h.holds.at(-1), false, 'the last height of the round is not held')
  assert.ok(
    h.holds.some((x) => x),
    'heights fetched together are held',
  )
  assert.ok(h.settles() >= 1, 'the round settles')
  h.sync.stop()
})

test('a held height is committed by the settling of its round when the next block does not check', async () => {
  // the third block is tampered at both peers: sync applies two heights, holds the second, and gives up the round
  const tampered = (x: number) => block(x, x === 3)
  const h = harness({ a: ranges(6, tampered), b: ranges(6, tampered) }, { range: { blocks: 6 } }, undefined, true)
  await h.sync.start()
  await waitFor(() => h.settles() >= 1 && h.applied.length >= 2, 'a round that ends at height 3')
  assert.deepEqual(h.applied.slice(0, 2), [1, 2])
  assert.equal(h.holds[1], true, 'height 2 was held: the block of height 3 was at hand')
  await waitFor(() => h.tip() >= 2, 'the held height committed')
  h.sync.stop()
})

test('peers that decided while this node synced: their next height is fetched at once, one ahead, without waiting to be stuck', async () => {
  // The peers decide height 6 while this node fetches up to 5: a node that fell behind missed that height's messages,
  // and consensus here would wait for them until stuck (stuckMs is out of reach here, and no periodic check runs).
  let local = () => 0
  const moving = (): Peer => ({
    get tip() {
      return local() >= 5 ? 6 : 5
    },
    serve: (h) => encodeBlockResponse(encodeStoredBlock(block(h).stored), encodeCommitCertificate(block(h).cert)),
    serveRange(r) {
      return encodeRangeResponse(rangeItems(r, this.tip, (x) => block(x)))
    },
  })
  const h = harness({ a: moving(), b: moving() })
  local = h.tip
  await h.sync.start()
  await waitFor(() => h.tip() >= 6, 'height 6, decided while this node synced to 5')
  assert.deepEqual(h.applied, heights(6))
  // and no further: the poll after height 6 finds the peers' tips reached, and the rounds end there
  await waitFor(() => h.sync.polls >= 3, 'the poll after height 6')
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  assert.equal(h.sync.polls, 3)
  assert.deepEqual(h.penalties, [])
  h.sync.stop()
})

test('a height wanted again (decided here once more) starts no new poll while it is wanted', async () => {
  const h = harness({ a: ranges(0), b: ranges(0) })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'the first poll')
  h.sync.request(1)
  await waitFor(() => h.sync.polls >= 2, 'the poll for height 1')
  const turns = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  }
  await turns()
  for (let i = 0; i < 100; i++) h.sync.request(1)
  await turns()
  assert.equal(h.sync.polls, 2)
  h.sync.stop()
})

/** Lets the event loop run a few turns: what a check started runs to its end (the harness's peers answer at once). */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

test('messages of a peer beyond the next height make sync poll that peer alone, once per height it claims', async () => {
  const h = harness({ a: ranges(1), b: ranges(0), c: ranges(0) })
  await h.sync.start()
  await waitFor(() => h.tipsAsked.length >= 3, 'the first poll')
  await turns()
  h.tipsAsked.length = 0
  // a validator may sign messages of any height: many of one height ahead, checks one after the other
  for (let k = 0; k < 5; k++) {
    for (let i = 0; i < 20; i++) h.sync.notePeerHeight('b', 2)
    h.check()
    await turns()
  }
  assert.deepEqual(h.tipsAsked, ['b'], 'b alone, once')
  // a higher height is a claim of its own; a height its known tip already bears out needs no poll
  h.sync.notePeerHeight('b', 3)
  h.sync.notePeerHeight('a', 2)
  h.check()
  await turns()
  assert.deepEqual(h.tipsAsked, ['b', 'b'])
  h.sync.stop()
})

test('a peer whose tip answer does not bear out the height of its messages is penalized; one whose does is not', async () => {
  const h = harness({ a: ranges(1), b: ranges(0) })
  await h.sync.start()
  await waitFor(() => h.tipsAsked.length >= 2, 'the first poll')
  await turns()
  // a peer working at height 3 committed height 2; a peer at height 2, height 1
  h.sync.notePeerHeight('b', 3)
  h.check()
  await waitFor(() => h.penalties.length > 0, 'the penalty')
  assert.equal(h.penalties.length, 1)
  assert.equal(h.penalties[0]!.peer, 'b')
  assert.match(h.penalties[0]!.reason, /messages of height 3/)
  h.sync.notePeerHeight('a', 2)
  h.check()
  await turns()
  assert.equal(h.penalties.length, 1, 'a told the truth')
  h.sync.stop()
})

test('a height wanted beyond the next (its messages dropped) drives no poll; the next height, decided here, is polled for at every check', async () => {
  const h = harness({ a: ranges(0), b: ranges(0) })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'the first poll')
  await turns()
  h.sync.request(3)
  for (let k = 0; k < 5; k++) {
    h.check()
    await turns()
  }
  assert.equal(h.sync.polls, 1, 'no poll for a height beyond the next')
  // a block decided here and not held: the peers are asked at every check until one serves it
  h.sync.request(1)
  await waitFor(() => h.sync.polls >= 2, 'the poll for height 1')
  await turns()
  for (let k = 0; k < 3; k++) {
    h.check()
    await turns()
  }
  assert.equal(h.sync.polls, 5)
  h.sync.stop()
})

/**
 * Block sync on real p2p nodes with their default scoring: `a` syncs from `b`, which claims a tip of 3 and answers
 * range requests with the blocks of `blockOf`. Resolves once `a` has judged `b`'s first answer; reports how many
 * block answers `b` served, whether `a` banned it and whether they are still connected.
 */
async function syncFromOneAnswer(blockOf: (h: number) => { stored: StoredBlock; cert: CommitCertificate }) {
  const net = await startNet(2)
  const [a, b] = net.nodes as [P2p, P2p]
  let served = 0
  const banned: string[] = []
  a.on('peer:banned', (id) => banned.push(id))
  try {
    await b.handle(STATUS_PROTOCOL, async () => encodeTipResponse(3, encodeCommitCertificate(block(3).cert)))
    await b.handle(BLOCKS_PROTOCOL, async (req) => {
      served++
      return encodeRangeResponse(rangeItems(decodeRangeRequest(req)!, 3, blockOf))
    })
    let tip = 0
    const refused: string[] = []
    const sync = new BlockSync(
      { intervalMs: 10, stuckMs: 1_000_000, window: 4, limits, range: { inFlight: 1 } },
      {
        p2p: a,
        chain: new ChainStore(new MemoryKvStore()),
        logger: silentLogger(),
        tipHeight: () => tip,
        heightStartedAtMs: () => 0,
        now: () => Date.now(),
        every: () => () => {},
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        verifyTip: (c) => (c.round === 0 ? 'proven' : 'invalid'),
        verifyCertified: (h, st, c) => c.round === 0 && c.height === h && blockHash(st.block.header).every((x, i) => x === c.valueId[i]),
        check: async (h, st, c) => {
          if (st.block.header.lastCommitHash[0] === 9) {
            refused.push(`block ${h}`)
            return err({ code: 'header' as const, reason: 'its last commit is not the one its header names' })
          }
          return ok({ height: h, hash: c.valueId, stored: st, txs: [], certificate: c, offenders: [] })
        },
        apply: async (x) => {
          tip = x.height
          return true
        },
      },
    )
    await sync.start()
    await waitFor(() => served >= 1 && (banned.length > 0 || a.penaltyOf(net.ids[1]!) > 0 || tip >= 3), 'the first answer judged')
    // a ban hangs up: wait for it to take effect when there is one
    if (banned.length > 0) await waitFor(() => a.peerCount === 0, 'the hang-up')
    sync.stop()
    return { served, banned: [...banned], connected: a.peerCount > 0, ids: net.ids, score: a.penaltyOf(net.ids[1]!), refused }
  } finally {
    await net.stop()
  }
}

test('one block answer with a forged certificate disconnects its peer at once (an honest peer verified what it serves)', async () => {
  const r = await syncFromOneAnswer((h) => (h === 2 ? { ...block(2), cert: { ...block(2).cert, round: 5 } } : block(h)))
  assert.equal(r.served, 1)
  assert.deepEqual(r.banned, [r.ids[1]], 'banned after one forged answer')
  assert.equal(r.connected, false)
})

test('one certified block answer that does not link (its carried last commit swapped) disconnects its peer at once', async () => {
  const r = await syncFromOneAnswer((h) => block(h, h === 2))
  assert.equal(r.served, 1)
  assert.deepEqual(r.refused, ['block 2'])
  assert.deepEqual(r.banned, [r.ids[1]], 'banned after one answer that does not link')
  assert.equal(r.connected, false)
})

/**
 * A request for blocks costs its sender a few bytes and the server a read of up to 8 MiB and its encoding: a peer that
 * resets each stream as soon as its request is sent pays nothing for that. What one peer is served is bounded by a
 * budget of bytes a second; past it, its next request waits until it is paid back, and other peers are not held back.
 */
test('blocks served to one peer are bounded by its budget of bytes a second; another peer is served at once', async () => {
  let now = 0
  const slept: number[] = []
  const rate = 10_000
  // the clock moves by what the server waits, and by nothing else
  const handlers = await blockServer({
    options: { serveBytesPerSecond: rate },
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms)
      now += ms
    },
  })
  const ranges = handlers.get(BLOCKS_PROTOCOL)!
  const single = handlers.get(BLOCK_PROTOCOL)!
  let served = 0
  let largest = 0
  for (let i = 0; i < 100; i++) {
    const answer = i % 2 === 0 ? await ranges(encodeRangeRequest({ from: 1, count: 5, maxBytes: 1 << 20 }), 'x') : await single(encodeHeightRequest(5), 'x')
    served += answer.byteLength
    largest = Math.max(largest, answer.byteLength)
  }
  assert.ok(served > 2 * rate, `the test asks for more than the burst (${served} bytes)`)
  // the burst, what the time waited pays for, and the answer the last wait let through
  assert.ok(served <= 2 * rate + (rate * now) / 1000 + largest, `${served} bytes served in ${now} ms at ${rate} bytes a second`)
  const waits = slept.length
  assert.ok(waits > 0)
  // another peer holds a budget of its own
  await ranges(encodeRangeRequest({ from: 1, count: 5, maxBytes: 1 << 20 }), 'y')
  assert.equal(slept.length, waits, 'the other peer waited for the first one’s debt')
})
