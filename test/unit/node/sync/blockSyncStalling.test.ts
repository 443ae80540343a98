import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCommitCertificate, type CommitCertificate } from '../../../../consensus/index.js'
import { ok } from '../../../../crypto/result.js'
import { blockHash } from '../../../../ledger/block.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import type { CheckedBlock } from '../../../../node/host/consensusHost.js'
import { silentLogger } from '../../../../node/logger.js'
import type { RequestResult } from '../../../../node/p2p/p2p.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import { encodeStoredBlock } from '../../../../node/storage/storedBlock.js'
import { BLOCKS_PROTOCOL, BLOCK_PROTOCOL, BlockSync, STATUS_PROTOCOL, type BlockSyncOptions, type SyncTransport } from '../../../../node/sync/blockSync.js'
import {
  decodeHeightRequest,
  decodeRangeRequest,
  encodeBlockResponse,
  encodeRangeResponse,
  encodeTipResponse,
} from '../../../../node/sync/blockSyncMessages.js'
import { waitFor } from '../../../helpers/waitFor.js'
import { block, limits } from './syncFixture.js'

/**
 * Block sync against peers that stall rather than lie outright: they do not answer (a request that times out costs
 * its peer nothing, as a slow link could do the same). Certificates are stand-ins as in blockSync.test.ts: round 0
 * verifies; round {@link UNKNOWN_ROUND} more than two heights above the tip is one the node cannot judge.
 */

const UNKNOWN_ROUND = 7

const TIMEOUT: RequestResult = { ok: false, error: { code: 'timeout', reason: 'no answer in time' } }

/** A scripted peer: each answer, or undefined for none in time. */
interface Peer {
  tip: () => { height: number; cert?: CommitCertificate } | undefined
  single: (height: number) => Uint8Array | undefined
  range: (from: number, count: number) => Uint8Array | undefined
}

/** An honest peer at `tip`: serves its blocks by ranges and single heights. */
function honest(tip: number): Peer {
  const item = (h: number) => ({ stored: encodeStoredBlock(block(h).stored), certificate: encodeCommitCertificate(block(h).cert) })
  return {
    tip: () => ({ height: tip, ...(tip > 0 ? { cert: block(tip).cert } : {}) }),
    single: (h) => (h <= tip ? encodeBlockResponse(item(h).stored, item(h).certificate) : encodeBlockResponse(undefined, undefined)),
    range: (from, count) => {
      const items = []
      for (let h = from; h < from + count && h <= tip; h++) items.push(item(h))
      return encodeRangeResponse(items)
    },
  }
}

/** Block sync of a node at `tip` against `peers` (the periodic check runs when a test calls `check`). */
function harness(peers: Record<string, Peer>, options: Partial<BlockSyncOptions> = {}, startTip = 0) {
  let tip = startTip
  const clock = 0
  const tipsAsked: string[] = []
  /** Block requests (single heights and ranges) by peer. */
  const blocksAsked: string[] = []
  const penalties: { peer: string; reason: string; points: number }[] = []
  let periodic: (() => void) | undefined
  const transport: SyncTransport = {
    peers: () => Object.keys(peers).sort(),
    handle: async () => {},
    penalize: (peer, points, reason) => {
      penalties.push({ peer, reason, points })
    },
    request: async (peer, protocol, req): Promise<RequestResult> => {
      const p = peers[peer]!
      let answer: Uint8Array | undefined
      if (protocol === STATUS_PROTOCOL) {
        tipsAsked.push(peer)
        const t = p.tip()
        answer = t === undefined ? undefined : encodeTipResponse(t.height, t.cert === undefined ? undefined : encodeCommitCertificate(t.cert))
      } else if (protocol === BLOCK_PROTOCOL) {
        blocksAsked.push(peer)
        answer = p.single(decodeHeightRequest(req)!)
      } else if (protocol === BLOCKS_PROTOCOL) {
        blocksAsked.push(peer)
        const r = decodeRangeRequest(req)!
        answer = p.range(r.from, r.count)
      }
      return answer === undefined ? TIMEOUT : { ok: true, value: answer }
    },
  }
  const sync = new BlockSync(
    { intervalMs: 10, stuckMs: 1_000_000_000, window: 4, limits, ...options },
    {
      p2p: transport,
      chain: new ChainStore(new MemoryKvStore()),
      logger: silentLogger(),
      tipHeight: () => tip,
      heightStartedAtMs: () => clock,
      now: () => clock,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      every: (_ms, f) => {
        periodic = f
        return () => {}
      },
      verifyTip: (c) => (c.round === 0 ? 'proven' : c.round === UNKNOWN_ROUND && c.height > tip + 2 ? 'unknown' : 'invalid'),
      verifyCertified: (h, s, c) => c.round === 0 && c.height === h && blockHash(s.block.header).every((b, i) => b === c.valueId[i]),
      check: async (h, s, c) => {
        const checked: CheckedBlock = { height: h, hash: c.valueId, stored: s, txs: [], certificate: c, offenders: [] }
        return ok(checked)
      },
      apply: async (b) => {
        tip = b.height
        return true
      },
    },
  )
  return { sync, tipsAsked, blocksAsked, penalties, check: () => periodic?.(), tip: () => tip }
}

/** Lets a check run to its end: every answer here is given at once, so a round ends within a few turns. */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r))
}

test('a peer that never answers its tip poll does not make every check poll every peer', async () => {
  const h = harness(
    { a: honest(5), b: honest(5), c: honest(5), silent: { tip: () => undefined, single: () => undefined, range: () => undefined } },
    { pollMs: 1_000_000_000 },
    5,
  )
  // this node is at the peers' tip: nothing to sync, and no reason to poll again before pollMs
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'the first poll')
  await settle()
  for (let i = 0; i < 10; i++) {
    h.check()
    await settle()
  }
  const asked = h.tipsAsked.filter((p) => p === 'a').length
  assert.ok(asked <= 2, `an honest peer's tip was asked ${asked} times in 10 checks with no reason to poll (${h.sync.polls} polls)`)
  h.sync.stop()
})

test('a tip the node could not judge, kept once its peer proved the next height, is dropped when the peer stops proving it', async () => {
  let proved = false
  // claims a tip far ahead that no set this node knows can judge; serves the true next height once, then stalls
  const liar: Peer = {
    tip: () => ({ height: 1_000_000, cert: { ...block(1).cert, height: 1_000_000, round: UNKNOWN_ROUND } }),
    single: (x) => {
      if (proved || x !== 1) return undefined
      proved = true
      return encodeBlockResponse(encodeStoredBlock(block(1).stored), encodeCommitCertificate(block(1).cert))
    },
    range: () => undefined,
  }
  const h = harness({ a: honest(3), b: honest(3), c: honest(3), liar }, { pollMs: 0 })
  await h.sync.start()
  await waitFor(() => h.tip() >= 3, 'sync to the true tip')
  await settle()
  // every check now polls (pollMs 0): the liar answers its tip and never the request that would prove it
  for (let i = 0; i < 10; i++) {
    h.check()
    await settle()
  }
  assert.ok(h.sync.polls >= 5, `polls: ${h.sync.polls}`)
  assert.equal(h.tip(), 3)
  assert.equal(
    h.sync.bestPeerHeight,
    3,
    `after ${h.sync.polls} polls in which the liar proved nothing, the tip it claims still counts (penalties: ${JSON.stringify(h.penalties)})`,
  )
  assert.equal(h.sync.catchingUp, false)
  h.sync.stop()
})

test('a peer whose tip verifies but that lets every block request time out is not asked first again and again', async () => {
  const stalling: Peer = { tip: honest(200).tip, single: () => undefined, range: () => undefined }
  const h = harness({ a: honest(200), b: honest(200), c: honest(200), stalling }, { range: { blocks: 8 } })
  await h.sync.start()
  await waitFor(() => h.tip() >= 200, 'sync to height 200')
  const asked = h.blocksAsked.filter((p) => p === 'stalling').length
  assert.ok(asked <= 2, `the stalling peer was asked for blocks ${asked} times (of ${h.blocksAsked.length} requests) in one catch-up`)
  h.sync.stop()
})
