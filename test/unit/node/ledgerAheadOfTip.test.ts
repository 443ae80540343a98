import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CommitCertificate } from '../../../consensus/index.js'
import { encodeCanonical, keyPairFromSeed, sha256 } from '../../../crypto/index.js'
import type { GovernanceAction } from '../../../ledger/governance.js'
import type { KvOp } from '../../../ledger/store.js'
import { decodeTransaction, encodeTransaction, signGovernanceTransaction, type DecodedTransaction } from '../../../ledger/transaction.js'
import { admittedPeers } from '../../../node/p2p/admittedPeers.js'
import { peerIdOf } from '../../../node/p2p/peerId.js'
import { NodeBackend } from '../../../node/rpcBackend.js'
import type { ChainTip } from '../../../node/storage/chainStore.js'
import type { StoredBlock } from '../../../node/storage/storedBlock.js'
import { HostWorld, type TestHost } from './host/hostFixture.js'

/**
 * The host's tip and the ledger's committed state are not always at one height: a commit's batch is readable while it
 * is written, before the tip moves, and a synced run's heights are committed in the ledger before the tip reports
 * them one by one. What clients and peers see must follow the tip.
 */

/** The node's tip as node.ts keeps it: set from each committed block at the start of `onCommitted`. */
function nodeTip(t: TestHost): () => ChainTip | undefined {
  return () => {
    const b = t.committed.at(-1)
    return b === undefined ? undefined : { height: b.height, blockHash: b.hash, blockTime: b.block.header.time }
  }
}

function backendOf(w: HostWorld, t: TestHost): NodeBackend {
  return new NodeBackend({
    genesis: w.genesis,
    moniker: 'm',
    chain: t.chain,
    tip: nodeTip(t),
    getAccount: (a) => t.ledger.getAccount(a),
    proveAccount: (a) => t.host.readCommitted(() => t.ledger.proveAccount(a)),
    nextNonce: (a) => t.mempool.pendingNonce(a),
    submit: async () => ({ ok: false, error: { code: 'mempool_full', reason: 'not in this test' } }),
    pending: (h) => t.mempool.has(h),
    rejected: () => undefined,
    peerId: 'p',
    peerCount: () => 0,
    catchingUp: () => false,
    validator: null,
    evidence: () => [],
    rosterAt: (h) => t.sets.rosterAt(h),
    governance: () => t.ledger.governance(),
  })
}

/** What a client sees of a transaction: `tx_get`, the `node_status` height, and `tx_get` with its proof. */
async function lookUp(b: NodeBackend, hash: Uint8Array) {
  const lookup = await b.getTx(hash)
  const height = b.status().height
  let proof: string
  try {
    const p = await b.proveTx(hash)
    proof = p.proof === undefined ? `no proof (${p.lookup.status})` : `proof at ${p.proof.block.height}`
  } catch (e) {
    proof = `threw: ${(e as Error).message}`
  }
  return { lookup, height, proof }
}

describe('a transaction committed above the tip is pending to clients', () => {
  it('while the commit that carries it is being written (every commit)', async () => {
    const w = new HostWorld({ validators: 1, wallets: 2 })
    const t = await w.boot({ self: 0, start: false, stagedWrites: true })
    const b = backendOf(w, t)
    const tx = w.transfer(0, 0n, 25n)
    assert.equal((await t.mempool.add(tx.bytes)).ok, true)
    // a client's look-up that lands while the block's batch is on its way to disk (LevelDB's synced write)
    const seen: Awaited<ReturnType<typeof lookUp>>[] = []
    const kv = t.kv
    const write = kv.write.bind(kv)
    kv.write = async (ops: readonly KvOp[]) => {
      const done = write(ops)
      if (seen.length === 0 && (await t.chain.txLocation(tx.hash)) !== undefined) seen.push(await lookUp(b, tx.hash))
      return done
    }
    await t.host.start()
    await w.until(() => t.committed.length >= 1, 'the first commit')
    t.stop()
    assert.deepEqual(t.fatal, [])
    assert.equal(seen.length, 1, 'the look-up ran during the write')
    const s = seen[0]!
    assert.equal(s.height, 0)
    assert.doesNotMatch(s.proof, /^threw/, 'tx_get with a proof is an internal error')
    assert.deepEqual(s.lookup, { status: 'pending' }, 'tx_get reports a height above node_status and chain_getBlock')
    assert.equal((await b.getTx(tx.hash)).status, 'committed', 'committed once the tip reaches it')
  })

  it('during a run of synced heights staged together', async () => {
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const blocks = await w.chain(3, { txs: (h) => [w.transfer(0, BigInt(h - 1), 10n)] })
    const t = await w.boot({ self: 0, stagedWrites: true })
    const b = backendOf(w, t)
    const apply = async (x: { height: number; stored: StoredBlock; certificate: CommitCertificate }, hold: boolean) => {
      const c = await t.host.checkSyncedBlock(x.height, x.stored, x.certificate)
      assert.ok(c.ok)
      return t.host.applySyncedBlock(c.value, hold)
    }
    for (const x of blocks.slice(0, 2)) assert.equal(await apply(x, true), true)
    const s = await lookUp(b, w.transfer(0, 1n, 10n).hash) // block 2's transfer
    assert.equal(await apply(blocks[2]!, false), true)
    t.stop()
    assert.deepEqual(t.fatal, [])
    assert.equal(s.height, 0)
    assert.doesNotMatch(s.proof, /^threw/, 'tx_get with a proof is an internal error')
    assert.deepEqual(s.lookup, { status: 'pending' }, `tx_get says ${JSON.stringify(s.lookup)} while node_status says height 0`)
  })
})

describe('admitted peers over a run of synced heights', () => {
  it('a validator whose addition completes inside the run stays admitted at every height reported', async () => {
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const joiner = keyPairFromSeed(sha256(encodeCanonical(['joiner'])))
    const joinerPeer = peerIdOf(keyPairFromSeed(sha256(encodeCanonical(['joiner-peer']))).publicKey)
    const add: GovernanceAction = { type: 'add', publicKey: joiner.publicKey, power: 1, peerId: joinerPeer, name: 'joiner' }
    const raise: GovernanceAction = { type: 'power', address: w.validators[1]!.address, power: 2 }
    const vote = (i: number, action: GovernanceAction): DecodedTransaction => {
      const v = w.validators[i]!
      const d = decodeTransaction(
        encodeTransaction(signGovernanceTransaction({ chainId: w.genesis.chainId, from: v.publicKey, nonce: 0n, action }, v.secretKey)),
      )
      if (!d.ok) throw new Error(d.error.reason)
      return d.value
    }
    // 1: two of four vote to add the joiner (pending: admitted); 2: another vote changes governance; 3: the third
    // vote completes it (in force from 5)
    const byHeight: Record<number, DecodedTransaction[]> = { 1: [vote(0, add), vote(1, add)], 2: [vote(3, raise)], 3: [vote(2, add)] }
    const blocks = await w.chain(3, { txs: (h) => byHeight[h] ?? [] })
    const t = await w.boot({ self: 0, stagedWrites: true })
    // node.ts computes admittedPeers(tipHeight(), sets.rosterAt, ledger.governance(), allowed) after each onCommitted
    const admitted: Record<number, boolean> = {}
    const update = t.mempool.update.bind(t.mempool)
    t.mempool.update = async (hashes, touched) => {
      const tip = t.committed.at(-1)!.height
      admitted[tip] = admittedPeers(tip, (h) => t.sets.rosterAt(h), t.ledger.governance(), []).includes(joinerPeer)
      return update(hashes, touched)
    }
    for (const [i, x] of blocks.entries()) {
      const c = await t.host.checkSyncedBlock(x.height, x.stored, x.certificate)
      assert.ok(c.ok, c.ok ? '' : c.error.reason)
      assert.equal(await t.host.applySyncedBlock(c.value, i === 1), true) // 1 alone, then 2-3 as one run
    }
    await w.until(() => t.committed.length === 3, 'three heights reported')
    t.stop()
    assert.deepEqual(t.fatal, [])
    assert.deepEqual(admitted, { 1: true, 2: true, 3: true }, 'the joiner is hung up on at height 2, admitted again at 3')
  })
})

describe('mempool over a run of synced heights', () => {
  it('a pending transaction committed later in the run leaves as committed, not as bad_nonce', async () => {
    const w = new HostWorld({ validators: 4, wallets: 2 })
    const txs = [w.transfer(0, 0n, 10n), w.transfer(0, 1n, 10n)]
    const blocks = await w.chain(2, { txs: (h) => [txs[h - 1]!] })
    const t = await w.boot({ self: 0, stagedWrites: true })
    for (const x of txs) assert.equal((await t.mempool.add(x.bytes)).ok, true)
    for (const [i, x] of blocks.entries()) {
      const c = await t.host.checkSyncedBlock(x.height, x.stored, x.certificate)
      assert.ok(c.ok)
      assert.equal(await t.host.applySyncedBlock(c.value, i === 0), true)
    }
    await w.until(() => t.committed.length === 2 && t.mempool.size === 0, 'both heights reported')
    t.stop()
    assert.deepEqual(t.fatal, [])
    assert.deepEqual(
      t.committed.map((b) => b.ledgerAhead),
      [true, false],
    )
    // update(1) would re-read wallet 0 from the ledger, which already stands on height 2: nonce 1 "was used"
    assert.deepEqual(
      t.logged('transaction dropped').map((l) => l.fields.code),
      [],
      'the transfer of block 2 was dropped as rejected before block 2 was reported',
    )
  })
})
