import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCommitCertificate, type CommitCertificate } from '../../../../consensus/index.js'
import { err, ok } from '../../../../crypto/result.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../../../ledger/block.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import type { CheckedBlock } from '../../../../node/host/consensusHost.js'
import { silentLogger } from '../../../../node/logger.js'
import type { RequestHandler, RequestResult } from '../../../../node/p2p/p2p.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import { encodeStoredBlock, type StoredBlock } from '../../../../node/storage/storedBlock.js'
import { BLOCK_PROTOCOL, BlockSync, STATUS_PROTOCOL, type SyncTransport } from '../../../../node/sync/blockSync.js'
import { decodeHeightRequest, encodeBlockResponse, encodeTipResponse } from '../../../../node/sync/blockSyncMessages.js'
import { waitFor } from '../../../helpers/waitFor.js'

/**
 * Block sync against scripted peers. Certificates here are stand-ins: a certificate is "valid" when its round is 0
 * (the verifiers are injected), so the tests exercise whom sync believes and asks, not signature checking (which the
 * host's checks and the simulator cover).
 */

const limits = { maxBytes: 100_000, maxTxs: 100 }

function block(height: number, tamper = false): { stored: StoredBlock; cert: CommitCertificate } {
  const header: BlockHeader = {
    chainId: 'tally-test',
    height,
    time: height,
    previousBlockHash: height === 1 ? ZERO_HASH : new Uint8Array(32).fill(height - 1),
    txRoot: txRoot([]),
    stateRoot: ZERO_HASH,
    proposer: new Uint8Array(20).fill(1),
    validatorSetHash: new Uint8Array(32).fill(3),
    nextValidatorSetHash: new Uint8Array(32).fill(3),
    lastCommitHash: height === 1 ? ZERO_HASH : new Uint8Array(32).fill(tamper ? 9 : 4),
    evidenceRoot: txRoot([]),
  }
  const cert: CommitCertificate = {
    height,
    round: 0,
    valueId: blockHash(header),
    signatures: [{ validator: new Uint8Array(20).fill(1), signature: new Uint8Array(64) }],
  }
  return { stored: { block: { header, txs: [], evidence: [] }, lastCommit: null }, cert }
}

type Peer = { tip: number; tipCert?: (h: number) => CommitCertificate; serve: (h: number) => Uint8Array }

function honest(tip: number): Peer {
  return {
    tip,
    serve: (h) =>
      h <= tip ? encodeBlockResponse(encodeStoredBlock(block(h).stored), encodeCommitCertificate(block(h).cert)) : encodeBlockResponse(undefined, undefined),
  }
}

function harness(peers: Record<string, Peer>) {
  let tip = 0
  const penalties: { peer: string; reason: string }[] = []
  const asked: { peer: string; height: number }[] = []
  const transport: SyncTransport = {
    peers: () => Object.keys(peers).sort(),
    handle: async (_p: string, _h: RequestHandler) => {},
    penalize: (peer, _points, reason) => {
      penalties.push({ peer, reason })
    },
    request: async (peer, protocol, req): Promise<RequestResult> => {
      const p = peers[peer]!
      if (protocol === STATUS_PROTOCOL)
        return { ok: true, value: encodeTipResponse(p.tip, encodeCommitCertificate((p.tipCert ?? ((h) => block(h).cert))(p.tip))) }
      if (protocol === BLOCK_PROTOCOL) {
        const h = decodeHeightRequest(req)!
        asked.push({ peer, height: h })
        return { ok: true, value: p.serve(h) }
      }
      return { ok: false, error: { code: 'unreachable', reason: protocol } }
    },
  }
  const applied: number[] = []
  const sync = new BlockSync(
    { intervalMs: 10, stuckMs: 1_000_000, window: 4, limits },
    {
      p2p: transport,
      chain: new ChainStore(new MemoryKvStore()),
      logger: silentLogger(),
      tipHeight: () => tip,
      heightStartedAtMs: () => 0,
      now: () => 0,
      every: () => () => {},
      verifyTip: (c) => c.round === 0,
      verifyCertified: (h, s, c) => c.round === 0 && c.height === h && blockHash(s.block.header).every((b, i) => b === c.valueId[i]),
      check: async (h, s, c) => {
        if (h !== tip + 1) return err({ code: 'not_next' as const, reason: 'not next' })
        if (s.block.header.lastCommitHash[0] === 9) return err({ code: 'header' as const, reason: 'tampered last commit' })
        const checked: CheckedBlock = { height: h, hash: c.valueId, stored: s, txs: [], certificate: c, offenders: [] }
        return ok(checked)
      },
      apply: async (b) => {
        tip = b.height
        applied.push(b.height)
        return true
      },
    },
  )
  return { sync, penalties, asked, applied, tip: () => tip }
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

test('a peer serving tampered blocks is penalized and the next peer is asked at once; sync completes', async () => {
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

test('catchingUp follows verified tips: two or more heights ahead', async () => {
  const h = harness({ p: { ...honest(5), serve: () => encodeBlockResponse(undefined, undefined) } })
  await h.sync.start()
  await waitFor(() => h.sync.polls >= 1, 'a poll')
  assert.equal(h.sync.bestPeerHeight, 5)
  assert.equal(h.sync.catchingUp, true)
  h.sync.stop()
})
