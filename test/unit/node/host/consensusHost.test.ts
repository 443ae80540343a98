import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { addressFromPublicKey, bytesEqual, toHex } from '../../../../crypto/index.js'
import { SafetyGuard, createMemorySafetyStore, decodeCommitCertificate, verifyCommit, type SignedVote } from '../../../../consensus/index.js'
import { genesisState } from '../../../../genesis/genesis.js'
import { verifyAccountProof } from '../../../../ledger/accountProof.js'
import { blockHash } from '../../../../ledger/block.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import { decodeTransaction, encodeTransaction } from '../../../../ledger/transaction.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import { decodeStoredBlock } from '../../../../node/storage/storedBlock.js'
import type { ConsensusHostOptions } from '../../../../node/host/consensusHost.js'
import { BLOCK_LIMITS, CHAIN_ID, HostWorld, WALLET_BALANCE, hexOrNil, type TestHost } from './hostFixture.js'

/**
 * The consensus host end to end on one node: a single validator commits heights on its own through the real core,
 * ledger and chain store; the WAL is durable before any signature is used; a restarted validator replays its WAL,
 * resumes at the height it was deciding and never signs a conflicting message; and a validator that lost its safety
 * record refuses to start while its WAL or chain shows it signed before.
 */

/** Every own message a host broadcast, as `kind h/r → value`, checked for conflicts across incarnations. */
function ownMessages(hosts: readonly TestHost[], address: Uint8Array): Map<string, string> {
  const seen = new Map<string, string>()
  const note = (slot: string, value: string) => {
    const before = seen.get(slot)
    assert.ok(before === undefined || before === value, `two different signed messages for ${slot}: ${before} and ${value}`)
    seen.set(slot, value)
  }
  for (const t of hosts) {
    for (const s of t.sent) {
      const g = s.gossip
      if (g.kind === 'vote' && bytesEqual(g.vote.validator, address)) note(`${g.vote.type} ${g.vote.height}/${g.vote.round}`, hexOrNil(g.vote.valueId))
      if (g.kind === 'proposal' && bytesEqual(g.message.proposal.proposer, address)) {
        note(`proposal ${g.message.proposal.height}/${g.message.proposal.round}`, toHex(g.message.proposal.valueId))
      }
    }
  }
  return seen
}

/** Asserts that each own message left only once the WAL records written before its signing request were durable. */
function assertWalBeforeSignatures(t: TestHost): void {
  const address = t.world.validators[t.self!]!.address
  let checked = 0
  for (const s of t.sent) {
    const g = s.gossip
    const own = g.kind === 'vote' ? bytesEqual(g.vote.validator, address) : g.kind === 'proposal' && bytesEqual(g.message.proposal.proposer, address)
    if (!own) continue
    const request = t.guardRequests.find((r) => {
      if (r.result?.ok !== true) return false
      if (g.kind === 'vote' && r.req.kind === 'vote')
        return r.req.vote.type === g.vote.type && r.req.vote.height === g.vote.height && r.req.vote.round === g.vote.round
      if (g.kind === 'proposal' && r.req.kind === 'proposal')
        return r.req.proposal.height === g.message.proposal.height && r.req.proposal.round === g.message.proposal.round
      return false
    })
    assert.ok(request !== undefined, 'every own message was signed by the guard')
    assert.ok(
      s.walSynced >= request.walWritten,
      `an own ${g.kind} left with ${s.walSynced} WAL records durable, ${request.walWritten} written before it was signed`,
    )
    checked++
  }
  assert.ok(checked >= 3, `checked ${checked} own messages`)
}

describe('consensus host: a single validator', () => {
  it('commits heights on its own, each block durable with its certificate before onCommitted, in order and once', async () => {
    const w = new HostWorld({ validators: 1, wallets: 2 })
    const t = await w.boot({ self: 0, start: false })
    const tx = w.transfer(0, 0n, 25n)
    assert.deepEqual(await t.mempool.add(tx.bytes), { ok: true, value: tx.hash })
    await t.host.start()
    await w.until(() => t.committed.length >= 3, 'three commits')
    t.stop()

    const heights = t.committed.map((c) => c.height)
    assert.deepEqual(
      heights,
      heights.map((_, i) => i + 1),
      'onCommitted once per height, in order',
    )
    assert.deepEqual(t.host.tip?.height, heights.at(-1))
    for (const c of t.committed) {
      assert.equal(t.durableTipAtCommit.get(c.height), c.height, `height ${c.height} was durable when reported`)
      const stored = decodeStoredBlock((await t.chain.blockBytes(c.height))!, BLOCK_LIMITS)
      assert.ok(stored.ok)
      assert.deepEqual(blockHash(stored.value.block.header), c.hash)
      const cert = decodeCommitCertificate((await t.chain.certificateBytes(c.height))!)
      assert.ok(cert.ok)
      assert.deepEqual(cert.value, c.certificate)
      assert.ok(verifyCommit(w.set, CHAIN_ID, c.height, c.hash, cert.value).ok, `certificate of height ${c.height} verifies`)
      if (c.height > 1) assert.deepEqual(c.lastCommit, t.committed[c.height - 2]!.certificate, 'a block carries the certificate of the height below')
    }
    // the transfer that was pending at the start went into the first block and applied
    const first = t.committed[0]!
    assert.deepEqual(first.txHashes, [tx.hash])
    assert.deepEqual(first.receipts, [{ ok: true }])
    assert.equal((await t.ledger.getAccount(addressFromPublicKey(w.wallets[1]!.publicKey))).balance, WALLET_BALANCE + 25n)
    assert.equal((await t.ledger.getAccount(addressFromPublicKey(w.wallets[0]!.publicKey))).nonce, 1n)
    assert.equal(t.mempool.size, 0, 'the committed transfer left the mempool')

    // each height: the validator proposed, prevoted and precommitted the block it committed, in round 0
    for (const c of t.committed) {
      const mine = t.sent.filter(
        (s) => (s.gossip.kind === 'vote' ? s.gossip.vote.height : s.gossip.kind === 'proposal' ? s.gossip.message.proposal.height : 0) === c.height,
      )
      assert.deepEqual(
        mine.map((s) => (s.gossip.kind === 'vote' ? s.gossip.vote.type : s.gossip.kind)),
        ['proposal', 'prevote', 'precommit'],
      )
      for (const s of mine) {
        const value = s.gossip.kind === 'vote' ? s.gossip.vote.valueId : s.gossip.kind === 'proposal' ? s.gossip.message.proposal.valueId : null
        assert.equal(hexOrNil(value), toHex(c.hash))
      }
      assert.equal(c.round, 0)
    }
    assert.deepEqual(t.fatal, [])
  })

  it('uses no signature before the WAL records that led to it are durable', async () => {
    const w = new HostWorld({ validators: 1 })
    const t = await w.boot({ self: 0, holdWalSyncs: true })
    await w.advance(5_000)
    // the guard may have been asked, but while the WAL cannot sync no signature leaves and nothing commits
    assert.ok(t.guardRequests.length >= 1, 'the validator asked its guard to sign')
    assert.deepEqual(t.sent, [])
    assert.deepEqual(t.committed, [])
    t.wal.releaseSyncs()
    await w.until(() => t.committed.length >= 2, 'two commits once the WAL syncs')
    t.crash()
    assertWalBeforeSignatures(t)
  })
})

describe('consensus host: restart', () => {
  it('replays its WAL after a crash before the commit batch, resumes at that height and commits the block it precommitted', async () => {
    const w = new HostWorld({ validators: 1 })
    let armed = false
    let batches = 0
    // the power goes off just before the second commit batch (height 2) reaches the disk
    const t = await w.boot({ self: 0, cutAt: (op, phase) => armed && op === 'kvWrite' && phase === 'before' && ++batches === 2 })
    armed = true
    await w.until(() => !t.power.alive, 'the power cut')
    assert.deepEqual(
      t.committed.map((c) => c.height),
      [1],
    )
    const precommitted = t.votes({ own: true }).find((v) => v.type === 'precommit' && v.height === 2)
    assert.ok(precommitted?.valueId, 'the validator precommitted a block at height 2 before the cut')

    assert.equal((await new ChainStore(t.durable.kv).tip())?.height, 1)
    const t2 = await w.boot({ self: 0, durable: t.durable })
    assert.equal(t2.logged('replayed the consensus WAL', 'info')[0]?.fields.height, 2)
    await w.until(() => t2.committed.some((c) => c.height === 3), 'height 3 after the restart')
    t2.crash()
    assert.equal(t2.committed[0]?.height, 2, 'resumes at the height it was deciding')
    assert.deepEqual(t2.committed[0]?.hash, precommitted.valueId, 'commits the block it precommitted')
    ownMessages([t, t2], w.validators[0]!.address)
    // replay asks again for what the guard already signed: the same message gets the stored signature, anything
    // lower is refused quietly, and nothing is refused as a conflict
    for (const r of t2.guardRequests) if (r.result?.ok === false) assert.equal(r.result.code, 'regression')
    assert.deepEqual(
      t2.logs.filter((l) => l.level === 'warn' || l.level === 'error'),
      [],
    )
    assert.deepEqual(t2.fatal, [])
  })

  it('lost its WAL but kept its safety record: the guard refuses the conflicting vote the core asks for', async () => {
    const w = new HostWorld({ validators: 4 })
    const P = w.proposerOf(1, 0)
    const A = w.nonProposer(1, 0)
    const others = [0, 1, 2, 3].filter((i) => i !== A)
    const t = await w.boot({ self: A })
    const b = await w.block1({ proposer: P })
    await t.host.onProposalMessage(b.message)
    await w.until(() => t.votes({ own: true }).length === 1, 'the prevote')
    for (const i of others.slice(0, 2)) await t.host.onVote(w.vote(i, 'prevote', 1, 0, b.hash))
    await w.until(() => t.votes({ own: true }).length === 2, 'the precommit')
    t.crash()
    assert.deepEqual(
      t.votes({ own: true }).map((v) => [v.type, hexOrNil(v.valueId)]),
      [
        ['prevote', toHex(b.hash)],
        ['precommit', toHex(b.hash)],
      ],
    )

    // the WAL is gone; the safety record (a precommit for the block at 1/0) is not
    t.durable.wal = []
    const t2 = await w.boot({ self: A, durable: t.durable })
    await w.advance(w.params.timeoutProposeMs + 100)
    t2.crash()
    // it knows nothing of the proposal, so its propose timeout asks for a nil prevote at 1/0, below its precommit
    const refused = t2.guardRequests.filter((r) => r.result?.ok === false)
    assert.ok(
      refused.some(
        (r) => r.req.kind === 'vote' && r.req.vote.type === 'prevote' && r.req.vote.round === 0 && r.result?.ok === false && r.result.code === 'regression',
      ),
    )
    assert.equal(t2.logged('guard refused a vote: prevote at 1/0 is not above the last signed precommit at 1/0', 'warn').length, 1)
    const mine = ownMessages([t, t2], w.validators[A]!.address)
    assert.equal(mine.get('prevote 1/0'), toHex(b.hash))
    assert.equal(mine.get('precommit 1/0'), toHex(b.hash))
    // what it re-sent after the restart is only its recorded precommit
    assert.deepEqual(
      t2.votes({ own: true }).map((v: SignedVote) => [v.type, v.round, hexOrNil(v.valueId)]),
      [['precommit', 0, toHex(b.hash)]],
    )
    assert.equal(t2.durable.safety?.step, 'precommit')
  })
})

describe('consensus host: the safety record check at start', () => {
  it('refuses to start without the record when recent certificates carry its signature, unless allowed', async () => {
    const w = new HostWorld({ validators: 1 })
    const t = await w.boot({ self: 0 })
    await w.until(() => t.committed.length >= 2, 'two commits')
    t.crash()
    const tip = t.committed.at(-1)!.height
    t.durable.safety = undefined

    const refused = await w.boot({ self: 0, durable: t.durable, start: false })
    await assert.rejects(refused.host.start(), /safety record \(validator_state\.json\) is missing.*recent certificates carry its signature/)
    assert.deepEqual(refused.sent, [])
    refused.crash()

    const allowed = await w.boot({ self: 0, durable: t.durable, host: { allowMissingSafetyRecord: true } })
    await w.until(() => allowed.committed.length >= 1, 'a commit after an allowed start')
    allowed.crash()
    assert.equal(allowed.committed[0]!.height, tip + 1)
  })

  it('refuses to start without the record when its WAL holds its own messages', async () => {
    const w = new HostWorld({ validators: 1 })
    let armed = false
    const t = await w.boot({ self: 0, cutAt: (op, phase) => armed && op === 'kvWrite' && phase === 'before' })
    armed = true
    await w.until(() => !t.power.alive, 'the power cut before the first commit')
    assert.equal(await new ChainStore(t.durable.kv).tip(), undefined)
    t.durable.safety = undefined
    const refused = await w.boot({ self: 0, durable: t.durable, start: false })
    await assert.rejects(refused.host.start(), /safety record \(validator_state\.json\) is missing.*its WAL holds its messages/)
    refused.crash()
  })

  it('starts without the record when neither the WAL nor the chain shows it signed', async () => {
    const w = new HostWorld({ validators: 4 })
    const A = 0
    // a chain of one block certified by the three others, which this validator follows without signing
    const b = await w.block1({ proposer: w.proposerOf(1, 0) })
    const t = await w.boot({ self: A })
    const checked = await t.host.checkSyncedBlock(1, b.stored, w.certificate(1, 0, b.hash, [1, 2, 3]))
    assert.ok(checked.ok)
    assert.equal(await t.host.applySyncedBlock(checked.value), true)
    t.crash()
    t.durable.wal = []
    assert.equal(t.durable.safety, undefined)
    const again = await w.boot({ self: A, durable: t.durable })
    assert.equal(again.host.height, 2)
    again.crash()
  })

  it('does not propose or complain at heights below its safety record (a validator catching up after losing data/)', async () => {
    const w = new HostWorld({ validators: 1 })
    // what the guard saved when it last signed: a precommit at height 5
    const store = createMemorySafetyStore()
    const g = new SafetyGuard({ chainId: CHAIN_ID, secretKey: w.validators[0]!.secretKey }, { store })
    assert.ok(g.signVote({ type: 'precommit', height: 5, round: 0, valueId: null, validator: w.validators[0]!.address }).ok)
    const t = await w.boot({ self: 0, start: false })
    t.crash()
    t.durable.safety = store.load()
    const behind = await w.boot({ self: 0, durable: t.durable })
    await w.advance(3 * w.params.timeoutProposeMs)
    behind.crash()
    assert.deepEqual(behind.proposals(), [], 'no proposal below the record')
    assert.ok(behind.guardRequests.length >= 1, 'its timeouts asked for nil votes')
    assert.ok(behind.guardRequests.every((r) => r.req.kind === 'vote' && r.result?.ok === false && r.result.code === 'regression'))
    assert.deepEqual(
      behind.logs.filter((l) => l.level === 'warn' || l.level === 'error'),
      [],
      'refusals below the record are expected, not warnings',
    )
    assert.equal(behind.durable.safety?.height, 5)
  })
})

describe('consensus host: another process signing as this validator', () => {
  /** A record saved by a guard of validator 0 that last signed a precommit at `height`. */
  function recordAt(w: HostWorld, height: number) {
    const store = createMemorySafetyStore()
    const g = new SafetyGuard({ chainId: CHAIN_ID, secretKey: w.validators[0]!.secretKey }, { store })
    assert.ok(g.signVote({ type: 'precommit', height, round: 0, valueId: null, validator: w.validators[0]!.address }).ok)
    return store.load()
  }

  /**
   * Validator 0's host over a disk holding the record of `recordHeight` (none: a validator that never signed), fed
   * three blocks certified by `signers` (each carrying the certificate of the height before by `lastCommitSigners`)
   * through block sync, one at a time, until it stops. Before they arrive it signs, at height 1 where the others
   * are, nothing; a nil prevote (`before: 'prevote'`, its propose timeout expired); or also a nil precommit
   * (`before: 'precommit'`, the others' nil prevotes received).
   */
  async function sync(o: {
    recordHeight?: number
    signers: number[]
    lastCommitSigners?: number[]
    host?: Partial<ConsensusHostOptions>
    before?: 'prevote' | 'precommit'
  }) {
    const w = new HostWorld({ validators: 4 })
    const blocks = await w.chain(3, { signers: o.signers, lastCommitSigners: o.lastCommitSigners })
    const first = await w.boot({ self: 0, start: false })
    first.crash()
    first.durable.safety = o.recordHeight === undefined ? undefined : recordAt(w, o.recordHeight)
    const t = await w.boot({ self: 0, durable: first.durable, host: o.host })
    if (o.before !== undefined) {
      await w.advance(2 * w.params.timeoutProposeMs)
      const own = t.votes({ own: true })
      assert.ok(own.length > 0 && own.every((v) => v.height === 1 && v.type === 'prevote' && v.valueId === null), 'idle, it prevoted nil at height 1')
    }
    if (o.before === 'precommit') {
      for (const i of [1, 2, 3]) await t.host.onVote(w.vote(i, 'prevote', 1, 0, null))
      await w.until(() => t.votes({ own: true }).some((v) => v.type === 'precommit'), 'its precommit')
      assert.deepEqual(
        t.votes({ own: true }).map((v) => [v.type, v.height, v.round, v.valueId]),
        [
          ['prevote', 1, 0, null],
          ['precommit', 1, 0, null],
        ],
      )
    }
    for (const b of blocks) {
      const checked = await t.host.checkSyncedBlock(b.height, b.stored, b.certificate)
      assert.ok(checked.ok, checked.ok ? '' : checked.error.reason)
      void t.host.applySyncedBlock(checked.value)
      await w.until(() => t.fatal.length > 0 || t.committed.length === b.height, `block ${b.height} applied or the host stopped`)
      if (t.fatal.length > 0) break
    }
    t.stop()
    return { committed: t.committed.map((c) => c.height), tip: (await new ChainStore(t.durable.kv).tip())?.height, fatal: t.fatal.map((e) => e.message) }
  }

  it('stops on a certificate with a precommit of its key it did not sign above its record, and commits nothing of it', async () => {
    const rows: { desc: string; committed: number[]; at: number; sync: Parameters<typeof sync>[0] }[] = [
      { desc: 'a validator that never signed', committed: [], at: 1, sync: { signers: [0, 1, 2] } },
      { desc: 'a record at height 2', committed: [1, 2], at: 3, sync: { recordHeight: 2, signers: [0, 1, 2] } },
      {
        desc: 'in the certificate block 2 carries of height 1, not in the one served with it',
        committed: [1],
        at: 1,
        sync: { signers: [1, 2, 3], lastCommitSigners: [0, 1, 2] },
      },
      {
        desc: 'allowed to start without its record: at the height of its first precommit (nil), another value',
        committed: [],
        at: 1,
        sync: { signers: [0, 1, 2], host: { allowMissingSafetyRecord: true }, before: 'precommit' },
      },
    ]
    for (const r of rows) {
      const got = await sync(r.sync)
      assert.deepEqual(got.committed, r.committed, r.desc)
      assert.equal(got.tip, r.committed.at(-1), r.desc)
      assert.equal(got.fatal.length, 1, r.desc)
      assert.match(
        got.fatal[0]!,
        new RegExp(
          `^another process signs as this validator: the certificate of height ${r.at} carries a precommit of its key \\(round 0\\) that this node did not sign`,
        ),
        r.desc,
      )
    }
  })

  it('applies certificates up to its record (an earlier process on this home signed them) and ones without its key', async () => {
    const rows = [
      { desc: 'signed up to its record', recordHeight: 3, signers: [0, 1, 2] },
      { desc: 'without its precommit', recordHeight: undefined, signers: [1, 2, 3] },
      { desc: 'allowed to start without its record, signing nothing since', signers: [0, 1, 2], host: { allowMissingSafetyRecord: true } },
      {
        desc: 'allowed to start without its record, a nil prevote signed at the height it is catching up to',
        signers: [0, 1, 2],
        host: { allowMissingSafetyRecord: true },
        before: 'prevote' as const,
      },
      { desc: 'a host told not to look (a simulated Byzantine validator)', signers: [0, 1, 2], host: { stopOnForeignSignature: false } },
    ]
    for (const r of rows) {
      const got = await sync(r)
      assert.deepEqual(got, { committed: [1, 2, 3], tip: 3, fatal: [] }, r.desc)
    }
  })

  it('commits the certificates of its own precommits, height after height', async () => {
    const w = new HostWorld({ validators: 1 })
    const t = await w.boot({ self: 0 })
    await w.until(() => t.committed.length >= 3, 'three commits')
    t.stop()
    assert.deepEqual(t.fatal, [])
    assert.ok(t.committed.every((c) => c.certificate.signatures.some((s) => bytesEqual(s.validator, w.validators[0]!.address))))
  })
})

describe('consensus host: signatures are verified once', () => {
  it('a block restored from its WAL is judged again without verifying the signatures it verified before the crash', async () => {
    // a transfer whose signature does not verify, which this validator counts as verified (as if its mempool had
    // verified it): it judges the block that holds it valid, logs it whole and prevotes for it
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const honest = w.transfer(0, 0n, 40n)
    const altered = { ...honest.tx, amount: 999n }
    const d = decodeTransaction(encodeTransaction(altered))
    assert.ok(d.ok)
    const tx = d.value
    const ledger = await genesisState(w.genesis, new MemoryKvStore())
    const block = { height: 1, governance: w.genesis.params.governance, offenders: [] }
    const stateRoot = (await ledger.execute([tx], { chainId: CHAIN_ID, trustSignatures: true, block })).stateRoot
    const P = w.proposerOf(1, 0)
    const A = w.nonProposer(1, 0)
    const b = await w.block1({ proposer: P, txs: [tx], stateRoot })
    const t = await w.boot({ self: A, fetchTxs: (hashes) => hashes.map(() => tx.bytes) })
    t.verified.add(tx.hash)
    await t.host.onProposalMessage(b.message)
    await w.until(() => t.votes({ own: true }).some((v) => v.type === 'prevote' && v.height === 1), 'its prevote')
    assert.deepEqual(t.votes({ own: true })[0]!.valueId, b.hash)
    t.crash()

    // after the restart nothing holds the transaction or remembers its signature but the WAL: the replay judges the
    // block valid again, and the certificate of the others commits it without asking block sync for it
    const t2 = await w.boot({ self: A, durable: t.durable })
    for (const i of [0, 1, 2, 3].filter((i) => i !== A)) await t2.host.onVote(w.vote(i, 'precommit', 1, 0, b.hash))
    await w.until(() => t2.committed.length === 1, 'the commit after the restart')
    t2.crash()
    assert.deepEqual(t2.committed[0]!.hash, b.hash)
    assert.deepEqual(t2.requestedBlocks, [])
    assert.deepEqual(t2.fetches, [], 'the transaction came from the WAL')
    assert.deepEqual(t2.fatal, [])
  })
})

describe('consensus host: pacing proposals', () => {
  /** Virtual time at which this host broadcast its proposal of `height`. */
  const proposedAt = (t: TestHost, height: number): number => {
    const s = t.sent.find((x) => x.gossip.kind === 'proposal' && x.gossip.message.proposal.height === height)
    assert.ok(s !== undefined, `a proposal of height ${height}`)
    return s.time
  }

  it('proposes in round 0 no sooner than minBlockIntervalMs into the height, unless its mempool holds a full block', async () => {
    const w = new HostWorld({ validators: 1, wallets: 3 })
    const t = await w.boot({ self: 0, start: false, host: { minBlockIntervalMs: 300, block: { ...BLOCK_LIMITS, maxTxs: 2 } } })
    assert.ok((await t.mempool.add(w.transfer(0, 0n).bytes)).ok)
    const started = w.sched.now
    await t.host.start()
    await w.until(() => t.committed.length >= 1, 'height 1')
    const first = proposedAt(t, 1) - started
    assert.ok(first >= 300 && first < 320, `height 1 was proposed ${first} ms into the height, with one transfer waiting`)

    // a full block (maxTxs 2) waiting: proposed at once
    const height2 = w.sched.now
    assert.ok((await t.mempool.add(w.transfer(1, 0n).bytes)).ok)
    assert.ok((await t.mempool.add(w.transfer(2, 0n).bytes)).ok)
    await w.until(() => t.committed.length >= 2, 'height 2')
    const second = proposedAt(t, 2) - height2
    assert.ok(second < 20, `height 2 was proposed ${second} ms after a full block arrived`)
    assert.deepEqual(t.committed[1]!.txHashes.length, 2)
    t.stop()
    assert.deepEqual(t.fatal, [])
  })

  it('proposes at the pacing moment itself, and a transfer that arrives after it the moment it arrives', async () => {
    const w = new HostWorld({ validators: 1, wallets: 2 })
    const t = await w.boot({ self: 0, start: false, host: { minBlockIntervalMs: 37, emptyBlockIntervalMs: 10_000 } })
    assert.ok((await t.mempool.add(w.transfer(0, 0n).bytes)).ok)
    const started = w.sched.now
    await t.host.start()
    await w.until(() => t.committed.length >= 1, 'height 1')
    assert.equal(proposedAt(t, 1) - started, 37, 'height 1 is proposed when its pacing interval ends')

    // height 2 finds the mempool empty: its proposer waits past the pacing moment for a transfer, then takes it at once
    await w.advance(123)
    assert.equal(t.sent.filter((x) => x.gossip.kind === 'proposal').length, 1, 'nothing to propose yet')
    const arrived = w.sched.now
    assert.ok((await t.mempool.add(w.transfer(1, 0n).bytes)).ok)
    await w.until(() => t.committed.length >= 2, 'height 2')
    assert.equal(proposedAt(t, 2), arrived, 'height 2 is proposed in the instant its transfer arrived')
    assert.equal(t.committed[1]!.txHashes.length, 1)
    t.stop()
    assert.deepEqual(t.fatal, [])
  })

  it('waits at most half the propose timeout, so its peers do not time out on it', async () => {
    const w = new HostWorld({ validators: 1, wallets: 2 })
    const t = await w.boot({ self: 0, start: false, host: { minBlockIntervalMs: 60_000 } })
    assert.ok((await t.mempool.add(w.transfer(0, 0n).bytes)).ok)
    const started = w.sched.now
    await t.host.start()
    await w.until(() => t.committed.length >= 1, 'height 1')
    const waited = proposedAt(t, 1) - started
    const most = w.params.timeoutProposeMs / 2
    assert.ok(waited >= most && waited < most + 20, `proposed ${waited} ms into the height (half the propose timeout: ${most})`)
    t.stop()
  })
})

describe('consensus host: reads of the committed state', () => {
  it('an account proof read while heights commit always verifies against the root it names', async () => {
    const w = new HostWorld({ validators: 1, wallets: 2 })
    // as on a node: a store that stages writes (a write under way reads back at once), and a disk that takes time,
    // so a proof's reads and a commit's write interleave
    const t = await w.boot({ self: 0, stagedWrites: true, diskMs: 2 })
    const address = addressFromPublicKey(w.wallets[0]!.publicKey)
    const failures: string[] = []
    let proofs = 0
    let reading = true
    // proofs back to back, each in its own turn of the event loop, while the sender's account changes every height
    const reader = (async () => {
      while (reading) {
        try {
          const p = await t.host.readCommitted(() => t.ledger.proveAccount(address))
          if (!verifyAccountProof(p.root, address, p.proof).ok) failures.push('a proof that does not verify against its own root')
          proofs++
        } catch (e) {
          failures.push((e as Error).message)
        }
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    })()
    for (let n = 0; n < 8; n++) {
      // the disk takes virtual time: the scheduler runs while the admission reads the account
      let admitted: boolean | undefined
      void t.mempool.add(w.transfer(0, BigInt(n)).bytes).then((r) => {
        admitted = r.ok
      })
      await w.until(() => admitted !== undefined, `transfer ${n} admitted`)
      assert.equal(admitted, true)
      await w.until(() => t.mempool.size === 0, `transfer ${n} committed`)
    }
    reading = false
    let readerDone = false
    void reader.then(() => {
      readerDone = true
    })
    await w.until(() => readerDone, 'the last proof')
    t.stop()
    assert.deepEqual(failures, [])
    assert.ok(proofs >= 8, `${proofs} proofs`)
  })
})
