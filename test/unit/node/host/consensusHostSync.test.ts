import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { addressFromPublicKey, encodeCanonical, sha256, toHex } from '../../../../crypto/index.js'
import { decodeCommitCertificate, encodeEvidence, evidenceHash, type CommitCertificate } from '../../../../consensus/index.js'
import { genesisState } from '../../../../genesis/genesis.js'
import type { AccountProof } from '../../../../ledger/accountProof.js'
import { blockHash } from '../../../../ledger/block.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import { decodeTransaction, encodeTransaction } from '../../../../ledger/transaction.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'
import type { StoredBlock } from '../../../../node/storage/storedBlock.js'
import { DurableState, type CutPhase } from '../../../sim/simDisk.js'
import { CHAIN_ID, EPOCH_MS, HostWorld, WALLET_BALANCE, hexOrNil, type TestBlock, type TestHost } from './hostFixture.js'

/**
 * The block-sync path of the host: a block certified by more than two thirds of the validators is checked against the
 * chain and applied through the host's queue; a tampered block, a certificate that does not decide it, or a block that
 * is not the next is refused with the serving peer's fault; a certified block that does not execute here stops the node.
 */

/** A network of four; this host is validator `self` (it signs nothing in these tests). */
async function network(self: number | null = 0) {
  const w = new HostWorld({ validators: 4, wallets: 2 })
  const t = await w.boot({ self })
  return { w, t, signers: [1, 2, 3] }
}

describe('consensus host: blocks from sync', () => {
  it('applies a correctly certified block: committed, durable, executed, and the next height starts', async () => {
    const { w, t, signers } = await network()
    const tx = w.transfer(0, 0n, 40n)
    const b = await w.block1({ proposer: w.proposerOf(1, 0), txs: [tx] })
    const cert = w.certificate(1, 0, b.hash, signers)
    assert.equal(t.host.verifyBlockCertificate(1, b.stored, cert), true)
    const checked = await t.host.checkSyncedBlock(1, b.stored, cert)
    assert.ok(checked.ok, checked.ok ? '' : checked.error.reason)
    assert.equal(await t.host.applySyncedBlock(checked.value), true)
    assert.deepEqual(
      t.committed.map((c) => [c.height, c.hash, c.certificate]),
      [[1, b.hash, cert]],
    )
    assert.equal(t.host.tip?.height, 1)
    await w.until(() => t.host.height === 2, 'height 2 started')
    const stored = decodeCommitCertificate((await t.chain.certificateBytes(1))!)
    assert.ok(stored.ok)
    assert.deepEqual(stored.value, cert)
    assert.equal((await t.ledger.getAccount(addressFromPublicKey(w.wallets[1]!.publicKey))).balance, WALLET_BALANCE + 40n)
    // the same block again is no longer the next one
    assert.equal(await t.host.applySyncedBlock(checked.value), false)
    assert.equal(t.committed.length, 1)
    t.stop()
    assert.deepEqual(t.fatal, [])
  })

  it("applies a certified block without checking its transactions' signatures, where a proposal of it is judged invalid", async () => {
    // a transfer whose signature does not verify, in a block whose state root is the one it gives if it applies
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const honest = w.transfer(0, 0n, 40n)
    const altered = { ...honest.tx, amount: 999n }
    const d = decodeTransaction(encodeTransaction(altered))
    assert.ok(d.ok)
    const forged = d.value
    const ledger = await genesisState(w.genesis, new MemoryKvStore())
    const trusting = await ledger.execute([forged], {
      chainId: CHAIN_ID,
      trustSignatures: true,
      block: { height: 1, governance: w.genesis.params.governance, offenders: [] },
    })
    assert.deepEqual(trusting.receipts, [{ ok: true }])
    const P = w.proposerOf(1, 0)
    const b = await w.block1({ proposer: P, txs: [forged], stateRoot: trusting.stateRoot })

    // proposed: a validator that fetches the transaction judges the block invalid and prevotes nil
    const A = w.nonProposer(1, 0)
    const v = await w.boot({ self: A, fetchTxs: (hashes) => hashes.map(() => forged.bytes) })
    await v.host.onProposalMessage(b.message)
    await w.until(() => v.votes({ own: true }).some((x) => x.type === 'prevote' && x.height === 1), 'its prevote')
    assert.equal(v.votes({ own: true }).find((x) => x.type === 'prevote')!.valueId, null)
    assert.equal(v.logged('rejected a proposed block', 'warn')[0]?.fields.code, 'tx_failed')
    v.stop()

    // certified and synced: applied as is, the transfer included
    const t = await w.boot({ self: null })
    const checked = await t.host.checkSyncedBlock(1, b.stored, w.certificate(1, 0, b.hash, [0, 1, 2]))
    assert.ok(checked.ok, checked.ok ? '' : checked.error.reason)
    assert.equal(await t.host.applySyncedBlock(checked.value), true)
    assert.deepEqual(t.committed[0]?.hash, b.hash)
    assert.deepEqual(t.committed[0]?.receipts, [{ ok: true }])
    assert.equal((await t.ledger.getAccount(addressFromPublicKey(w.wallets[1]!.publicKey))).balance, WALLET_BALANCE + 999n)
    assert.deepEqual(t.fatal, [])
    t.stop()
  })

  it('refuses a tampered block or a certificate that does not decide it, naming the fault', async () => {
    const { w, t, signers } = await network(null)
    const tx = w.transfer(0, 0n)
    const b = await w.block1({ proposer: w.proposerOf(1, 0), txs: [tx] })
    const good = w.certificate(1, 0, b.hash, signers)
    const withHeader = (header: TestBlock['header']): StoredBlock => ({ ...b.stored, block: { ...b.stored.block, header } })
    const certified = (stored: StoredBlock) => w.certificate(1, 0, blockHash(stored.block.header), signers)
    const early = withHeader({ ...b.header, time: w.genesis.genesisTimeMs })
    const rows: readonly { desc: string; height?: number; stored: StoredBlock; cert: CommitCertificate; code: string }[] = [
      {
        desc: 'a header changed after signing',
        stored: withHeader({ ...b.header, stateRoot: sha256(encodeCanonical(['other'])) }),
        cert: good,
        code: 'certificate',
      },
      { desc: 'two signatures of four', stored: b.stored, cert: w.certificate(1, 0, b.hash, signers.slice(0, 2)), code: 'certificate' },
      { desc: 'a certificate for another block', stored: b.stored, cert: w.certificate(1, 0, sha256(encodeCanonical(['x'])), signers), code: 'certificate' },
      {
        desc: 'a signature of a stranger',
        stored: b.stored,
        cert: { ...good, signatures: good.signatures.map((s, i) => (i === 0 ? { ...s, signature: new Uint8Array(64) } : s)) },
        code: 'certificate',
      },
      { desc: 'a transaction left out of the body', stored: { ...b.stored, block: { ...b.stored.block, txs: [] } }, cert: good, code: 'header' },
      {
        desc: 'a body transaction that does not decode',
        stored: { ...b.stored, block: { ...b.stored.block, txs: [new Uint8Array([1, 2, 3])] } },
        cert: good,
        code: 'transactions',
      },
      { desc: 'a certified header that breaks the block rule (time not after genesis)', stored: early, cert: certified(early), code: 'header' },
      { desc: 'a block that is not the next height', height: 2, stored: b.stored, cert: good, code: 'not_next' },
    ]
    for (const r of rows) {
      const checked = await t.host.checkSyncedBlock(r.height ?? 1, r.stored, r.cert)
      assert.equal(checked.ok, false, r.desc)
      if (!checked.ok) assert.equal(checked.error.code, r.code, `${r.desc}: ${checked.error.reason}`)
    }
    assert.equal(t.host.verifyBlockCertificate(1, rows[0]!.stored, good), false, 'the certificate does not decide a changed header')
    assert.equal(t.host.verifyBlockCertificate(1, b.stored, rows[1]!.cert), false)
    assert.equal(t.host.verifyBlockCertificate(2, b.stored, good), false, 'a height whose set is known (tip + 2)')
    assert.equal(t.host.verifyBlockCertificate(3, b.stored, good), undefined, 'a height whose set is not known yet')
    assert.deepEqual(t.committed, [])
    assert.equal(t.host.tip, undefined)
    t.stop()
  })

  it('stops the node on a certified block that does not execute here (its state diverged)', async () => {
    const { w, t, signers } = await network()
    const b = await w.block1({ proposer: w.proposerOf(1, 0), stateRoot: sha256(encodeCanonical(['diverged'])) })
    const checked = await t.host.checkSyncedBlock(1, b.stored, w.certificate(1, 0, b.hash, signers))
    assert.ok(checked.ok, 'the certificate and the header rule hold: only execution tells')
    const applied = t.host.applySyncedBlock(checked.value)
    await w.until(() => t.fatal.length === 1, 'the fatal error')
    assert.match(t.fatal[0]!.message, /certified block 1 does not execute here .*state diverged/)
    assert.deepEqual(t.committed, [])
    assert.equal(await applied, false, 'block sync learns the block was not applied')
  })

  it('answers block sync for a block it holds or gets once stopped: not applied', async () => {
    const { w, t, signers } = await network()
    const b = await w.block1({ proposer: w.proposerOf(1, 0) })
    const checked = await t.host.checkSyncedBlock(1, b.stored, w.certificate(1, 0, b.hash, signers))
    assert.ok(checked.ok)
    t.stop()
    assert.equal(await t.host.applySyncedBlock(checked.value), false)
    assert.deepEqual(t.committed, [])
  })

  it('asks block sync for a block decided without it (it never saw the proposal)', async () => {
    const { w, t, signers } = await network()
    const unseen = sha256(encodeCanonical(['unseen block']))
    for (const i of signers) await t.host.onVote(w.vote(i, 'precommit', 1, 0, unseen))
    await w.until(() => t.requestedBlocks.length === 1, 'the block request')
    assert.deepEqual(t.requestedBlocks, [1])
    assert.deepEqual(t.committed, [])
    t.stop()
  })

  it('commits a block decided with a time ahead of its clock without waiting for the clock', async () => {
    const { w, t, signers } = await network()
    const P = w.proposerOf(1, 0)
    const b = await w.block1({ proposer: P, time: EPOCH_MS + 60_000 })
    await t.host.onProposalMessage(b.message)
    for (const i of signers) await t.host.onVote(w.vote(i, 'precommit', 1, 0, b.hash))
    await w.until(() => t.committed.length === 1, 'the commit')
    assert.ok(w.sched.now < 60_000 - 500, 'committed before the clock reached the block time')
    assert.deepEqual(t.committed[0]!.hash, b.hash)
    t.stop()
  })

  describe('synced heights applied back to back', () => {
    /** Boots a host over a staging store, counting the writes that reach its disk. */
    async function staging(w: HostWorld, o: { durable?: DurableState; cut?: (writes: number, phase: CutPhase) => boolean } = {}) {
      const disk = { writes: 0 }
      const t = await w.boot({
        self: 0,
        stagedWrites: true,
        ...(o.durable === undefined ? {} : { durable: o.durable }),
        cutAt: (op, phase) => {
          if (op !== 'kvWrite') return false
          if (phase === 'after') disk.writes++
          return o.cut?.(disk.writes, phase) ?? false
        },
      })
      return { t, disk }
    }

    async function apply(t: TestHost, b: { height: number; stored: StoredBlock; certificate: CommitCertificate }, hold: boolean) {
      const checked = await t.host.checkSyncedBlock(b.height, b.stored, b.certificate)
      assert.ok(checked.ok, checked.ok ? '' : checked.error.reason)
      return t.host.applySyncedBlock(checked.value, hold)
    }

    const receiver = (w: HostWorld) => addressFromPublicKey(w.wallets[1]!.publicKey)

    it('applies held heights on one another and writes them with the next one not held, then reports them in order', async () => {
      const w = new HostWorld({ validators: 4, wallets: 2 })
      const blocks = await w.chain(4, { txs: (h) => [w.transfer(0, BigInt(h - 1), 10n)] })
      const { t, disk } = await staging(w)
      const before = disk.writes
      for (const b of blocks.slice(0, 3)) {
        assert.equal(await apply(t, b, true), true)
        assert.equal(t.host.appliedTip?.height, b.height)
      }
      // applied, neither written nor reported: the ledger stands on height 3, the disk and the tip at genesis
      assert.equal(disk.writes, before)
      assert.equal(t.host.tip?.height, undefined)
      assert.equal(t.committed.length, 0)
      assert.equal(await new ChainStore(t.durable.kv).tip(), undefined)
      assert.equal((await t.ledger.getAccount(receiver(w))).balance, WALLET_BALANCE + 30n)
      assert.equal(t.host.height, 1, 'consensus waits at the height it was on')
      // the fourth, not held, goes to the disk with them in one write
      assert.equal(await apply(t, blocks[3]!, false), true)
      assert.equal(disk.writes, before + 1)
      assert.deepEqual(
        t.committed.map((c) => [c.height, toHex(c.hash), toHex(c.block.header.stateRoot)]),
        blocks.map((b) => [b.height, toHex(b.hash), toHex(b.stored.block.header.stateRoot)]),
      )
      for (const h of [1, 2, 3, 4]) assert.equal(t.durableTipAtCommit.get(h), 4, `height ${h} reported once on disk`)
      assert.equal(t.host.tip?.height, 4)
      await w.until(() => t.host.height === 5, 'height 5 started')
      assert.equal((await t.ledger.getAccount(receiver(w))).balance, WALLET_BALANCE + 40n)
      t.stop()
      assert.deepEqual(t.fatal, [])
    })

    it('updates the tree once for a run of held heights, at its end; an account proof waits for it', async () => {
      const w = new HostWorld({ validators: 4, wallets: 2 })
      const blocks = await w.chain(4, { txs: (h) => [w.transfer(0, BigInt(h - 1), 10n)] })
      const { t, disk } = await staging(w)
      const before = disk.writes
      const rootBefore = t.ledger.root()
      for (const b of blocks.slice(0, 3)) assert.equal(await apply(t, b, true), true)
      // the accounts stand on height 3, the tree still on the state the run started from
      assert.equal((await t.ledger.getAccount(receiver(w))).balance, WALLET_BALANCE + 30n)
      assert.equal(t.ledger.treePending, true)
      assert.deepEqual(t.ledger.root(), rootBefore)
      const got: { proof?: AccountProof } = {}
      const proof = t.host
        .readCommitted(() => t.ledger.proveAccount(receiver(w)))
        .then((p) => {
          got.proof = p
        })
      await w.advance(10)
      assert.equal(got.proof, undefined, 'the proof waits for the run')
      assert.equal(await apply(t, blocks[3]!, false), true)
      await proof
      assert.equal(disk.writes, before + 1)
      assert.equal(t.ledger.treePending, false)
      const p = got.proof as AccountProof | undefined // narrowed by the assertion above, then set by the callback
      assert.deepEqual(p?.root, blocks[3]!.stored.block.header.stateRoot)
      assert.equal(p?.account?.balance, WALLET_BALANCE + 40n)
      // what is on disk is the state of height 4, tree included
      const again = await w.boot({ self: 0, durable: t.durable, stagedWrites: true, start: false })
      assert.deepEqual(again.ledger.root(), blocks[3]!.stored.block.header.stateRoot)
      again.stop()
      t.stop()
      assert.deepEqual(t.fatal, [])
    })

    it("stops, writing nothing, when the root after a run of held heights is not its last block's", async () => {
      const w = new HostWorld({ validators: 4, wallets: 2 })
      const blocks = await w.chain(3, { txs: (h) => [w.transfer(0, BigInt(h - 1), 10n)] })
      // block 3 certified with another state root (as if this replica's execution differed from the chain's)
      const header = { ...blocks[2]!.stored.block.header, stateRoot: sha256(new Uint8Array([7])) }
      const stored: StoredBlock = { ...blocks[2]!.stored, block: { ...blocks[2]!.stored.block, header } }
      const third = { height: 3, stored, certificate: w.certificate(3, 0, blockHash(header), [1, 2, 3]) }
      const { t, disk } = await staging(w)
      const before = disk.writes
      assert.equal(await apply(t, blocks[0]!, true), true)
      assert.equal(await apply(t, blocks[1]!, true), true)
      void apply(t, third, false)
      await w.until(() => t.fatal.length === 1, 'the fatal error')
      assert.match(t.fatal[0]!.message, /^certified blocks 1-3 do not execute here \(the state root after them is not block 3's\)/)
      assert.equal(disk.writes, before)
      assert.equal(t.committed.length, 0)
      assert.equal(await new ChainStore(t.durable.kv).tip(), undefined)
      t.stop()
    })

    it('writes what it holds before anything else it handles, and when asked to', async () => {
      const w = new HostWorld({ validators: 4, wallets: 2 })
      const blocks = await w.chain(3)
      const { t, disk } = await staging(w)
      const before = disk.writes
      assert.equal(await apply(t, blocks[0]!, true), true)
      assert.equal(await apply(t, blocks[1]!, true), true)
      // a consensus message: heights 1 and 2 are written and reported first, and consensus moves to height 3
      await t.host.onVote(w.vote(1, 'prevote', 3, 0, null))
      await w.until(() => t.committed.length === 2, 'the held heights reported')
      assert.equal(disk.writes, before + 1)
      await w.until(() => t.host.height === 3, 'height 3 started')
      // asked to: the host writes what it holds, and nothing when it holds nothing
      assert.equal(await apply(t, blocks[2]!, true), true)
      await t.host.flushSyncedBlocks()
      assert.deepEqual(
        t.committed.map((c) => c.height),
        [1, 2, 3],
      )
      assert.equal(disk.writes, before + 2)
      await t.host.flushSyncedBlocks()
      assert.equal(disk.writes, before + 2)
      t.stop()
      assert.deepEqual(t.fatal, [])
    })

    it('commits a held height at once on a store that does not stage writes', async () => {
      const { w, t, signers } = await network()
      const b = await w.block1({ proposer: w.proposerOf(1, 0) })
      const checked = await t.host.checkSyncedBlock(1, b.stored, w.certificate(1, 0, b.hash, signers))
      assert.ok(checked.ok)
      assert.equal(await t.host.applySyncedBlock(checked.value, true), true)
      assert.deepEqual(
        t.committed.map((c) => c.height),
        [1],
      )
      assert.equal(t.host.tip?.height, 1)
      t.stop()
    })

    it('loses all the heights of a write the power cut before it, and keeps all of one it cut after', async () => {
      const w = new HostWorld({ validators: 4, wallets: 2 })
      const blocks = await w.chain(3, { txs: (h) => [w.transfer(0, BigInt(h - 1), 10n)] })
      for (const phase of ['before', 'after'] as const) {
        const durable = new DurableState()
        let armed = false
        const { t } = await staging(w, { durable, cut: (_, p) => armed && p === phase })
        assert.equal(await apply(t, blocks[0]!, true), true)
        assert.equal(await apply(t, blocks[1]!, true), true)
        armed = true
        void apply(t, blocks[2]!, false)
        await w.until(() => !t.power.alive, 'the power cut')
        assert.equal(t.committed.length, 0, `${phase}: nothing was reported`)
        // the next start finds the three heights on disk, or none of them
        const again = await w.boot({ self: 0, durable, stagedWrites: true })
        assert.equal(again.host.tip?.height, phase === 'after' ? 3 : undefined, phase)
        assert.equal((await again.ledger.getAccount(receiver(w))).balance, WALLET_BALANCE + (phase === 'after' ? 30n : 0n), phase)
        again.stop()
      }
    })
  })

  it('convicts a validator whose precommit in a synced certificate differs from the one it sent this node', async () => {
    // this host proposes height 2; validator X sent it a nil precommit at 1/0, and signed the certificate for the block
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const self = w.proposerOf(2, 0)
    const signers = [0, 1, 2, 3].filter((i) => i !== self)
    const X = signers[0]!
    const t = await w.boot({ self })
    const held = w.vote(X, 'precommit', 1, 0, null)
    await t.host.onVote(held)
    const b = await w.block1({ proposer: w.proposerOf(1, 0), txs: [w.transfer(0, 0n)] })
    const cert = w.certificate(1, 0, b.hash, signers)
    const checked = await t.host.checkSyncedBlock(1, b.stored, cert)
    assert.ok(checked.ok, checked.ok ? '' : checked.error.reason)
    assert.equal(await t.host.applySyncedBlock(checked.value), true)

    // the pair is gossiped, and the block this host proposes next carries it
    const expected = encodeEvidence({ kind: 'conflictingVotes', first: held, second: w.vote(X, 'precommit', 1, 0, b.hash) })
    const gossiped = t.sent.flatMap((m) => (m.gossip.kind === 'evidence' ? [m.gossip.evidence] : []))
    assert.deepEqual(gossiped, [expected])
    await w.until(() => t.proposals().some((m) => m.proposal.height === 2), 'its proposal of height 2')
    assert.deepEqual(t.proposals().find((m) => m.proposal.height === 2)!.evidence, [expected])
    t.stop()
    assert.deepEqual(t.fatal, [])
  })

  it('refuses a block that carries evidence an earlier block committed', async () => {
    const { w, t } = await network()
    const e = w.equivocation(3, 1, 0)
    // block 3 repeats the evidence block 2 committed
    const blocks = await w.chain(3, { evidence: (h) => (h >= 2 ? [e] : []) })
    for (const b of blocks.slice(0, 2)) {
      const c = await t.host.checkSyncedBlock(b.height, b.stored, b.certificate)
      assert.ok(c.ok, c.ok ? '' : c.error.reason)
      assert.equal(await t.host.applySyncedBlock(c.value), true)
      await w.until(() => t.host.height === b.height + 1, `height ${b.height + 1} started`)
    }
    assert.equal(await t.chain.evidenceHeight(evidenceHash(e)), 2)
    const b3 = blocks[2]!
    const dup = await t.host.checkSyncedBlock(3, b3.stored, b3.certificate)
    assert.ok(!dup.ok)
    assert.match(dup.error.reason, /evidence 0 was committed before/)
    t.stop()
    assert.deepEqual(t.fatal, [])
  })

  it("takes evidence indexed at the block's own height, as while this node writes that block, for no duplicate", async () => {
    const { w, t } = await network()
    const e = w.equivocation(3, 1, 0)
    const [b1, b2] = await w.chain(2, { evidence: (h) => (h === 2 ? [e] : []) })
    const c1 = await t.host.checkSyncedBlock(1, b1!.stored, b1!.certificate)
    assert.ok(c1.ok, c1.ok ? '' : c1.error.reason)
    assert.equal(await t.host.applySyncedBlock(c1.value), true)
    await w.until(() => t.host.height === 2, 'height 2 started')
    // the store as it is when this node's own write of block 2 has landed and its tip has not moved yet
    await t.kv.write(t.chain.evidenceIndexOps(2, [evidenceHash(e)]))
    const c2 = await t.host.checkSyncedBlock(2, b2!.stored, b2!.certificate)
    assert.ok(c2.ok, c2.ok ? '' : `a copy of the block being written was refused: ${c2.error.reason}`)
    t.stop()
    assert.deepEqual(t.fatal, [])
  })

  it('wiped while locked, it replays its records of a height before what peers said there since, and keeps its lock', async () => {
    // Height 2: the proposer of round 0 proposes A, and this validator sees a polka for it, precommits it and locks.
    // Round 1's proposer, which missed that polka, proposes B. This validator then loses data/ (its WAL and safety
    // record stay) and, while block sync brings it back to height 2, hears round 1 from the others. Those messages
    // must reach the core after its replayed records: in arrival order they would take it to round 1 first, where
    // the round-0 polka no longer locks, and it would prevote B against its lock.
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const P0 = w.proposerOf(2, 0)
    const P1 = w.proposerOf(2, 1)
    const self = [0, 1, 2, 3].find((i) => i !== P0 && i !== P1)!
    const X = [0, 1, 2, 3].find((i) => i !== P0 && i !== P1 && i !== self)!
    const [b1, a] = await w.chain(2)
    const bHeader = { ...a!.stored.block.header, proposer: w.validators[P1]!.address, time: a!.stored.block.header.time + 1 }
    const bHash = blockHash(bHeader)
    const proposalOf = (hash: Uint8Array, header: TestBlock['header'], proposer: number, round: number) => ({
      proposal: w.proposal(proposer, 2, round, hash),
      header,
      txHashes: [],
      evidence: [],
      lastCommit: a!.stored.lastCommit,
    })
    const syncBlock1 = async (t: TestHost) => {
      const c = await t.host.checkSyncedBlock(1, b1!.stored, b1!.certificate)
      assert.ok(c.ok, c.ok ? '' : c.error.reason)
      assert.equal(await t.host.applySyncedBlock(c.value), true)
    }
    const own = (t: TestHost, type: string, round: number) => t.votes({ own: true }).find((v) => v.type === type && v.height === 2 && v.round === round)

    const t = await w.boot({ self })
    await syncBlock1(t)
    await w.until(() => t.host.height === 2, 'height 2 started')
    await t.host.onProposalMessage(proposalOf(a!.hash, a!.stored.block.header, P0, 0))
    for (const i of [P0, P1]) await t.host.onVote(w.vote(i, 'prevote', 2, 0, a!.hash))
    await w.until(() => own(t, 'precommit', 0) !== undefined, 'its precommit at 2/0')
    assert.equal(hexOrNil(own(t, 'precommit', 0)!.valueId), toHex(a!.hash))
    t.crash()

    t.durable.wipeData()
    const t2 = await w.boot({ self, durable: t.durable })
    assert.equal(t2.host.height, 1)
    await t2.host.onProposalMessage(proposalOf(bHash, bHeader, P1, 1))
    for (const i of [P1, X]) await t2.host.onVote(w.vote(i, 'prevote', 2, 1, bHash))
    await syncBlock1(t2)
    await w.until(() => own(t2, 'prevote', 1) !== undefined, 'its prevote at 2/1')
    assert.equal(hexOrNil(own(t2, 'prevote', 1)!.valueId), 'nil', 'a validator locked on A prevotes nil on B')
    t2.stop()
    assert.deepEqual(t2.fatal, [])
  })

  it("judges a peer's tip: proven, invalid, or unknown when too few of the set it knows signed (the set changed)", async () => {
    const { w, t } = await network()
    const value = sha256(new TextEncoder().encode('some block'))
    const at = (height: number, signers: number[]) => w.certificate(height, 0, value, signers)
    // within two heights of the tip (0): the set of the height, in full
    assert.equal(t.host.verifyTip(at(2, [1, 2, 3])), 'proven')
    assert.equal(t.host.verifyTip(at(2, [1, 2])), 'invalid')
    // beyond: more than a third of the latest set known proves the height was reached; a third or less tells nothing
    assert.equal(t.host.verifyTip(at(40, [1, 2])), 'proven')
    assert.equal(t.host.verifyTip(at(40, [1])), 'unknown')
    // signers of another network (keys this node never saw) tell nothing either; a bad signature is a fault
    const larger = new HostWorld({ validators: 8, wallets: 2 })
    assert.equal(t.host.verifyTip(larger.certificate(40, 0, value, [4, 5, 6, 7])), 'unknown')
    const forged = at(40, [1, 2])
    const signatures = forged.signatures.map((x, i) => (i === 0 ? { ...x, signature: new Uint8Array(64).fill(7) } : x))
    assert.equal(t.host.verifyTip({ ...forged, signatures }), 'invalid')
    t.stop()
  })
})
