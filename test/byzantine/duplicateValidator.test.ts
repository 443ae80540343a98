import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { to0x } from '../../crypto/bytes.js'
import { decodeWalEntry } from '../../node/host/walEntry.js'
import { silentLogger } from '../../node/logger.js'
import { Wal } from '../../node/storage/wal.js'
import { Testnet, rpc, runCli, waitFor } from '../e2e/harness.js'

/**
 * Equivocation evidence end to end, from the classic operator mistake: one validator's identity run by two `tallyd`
 * processes at once. The standby is a home made with `tallyd init` into which the operator copies validator 3's keys
 * and its `validator_state.json`. A copy of the validator key alone does not start: a genesis validator's node key
 * must be the peer id its genesis lists. With the node key copied too, the standby starts, is admitted as validator
 * 3, and signs beside the primary; the honest validators must then record the conflicting messages as evidence, put
 * it in a block and all answer the same `chain_getEvidence`, while the chain goes on committing.
 *
 * Each honest validator streams a peer's consensus messages over one connection, so a copy hears from a validator only
 * if its connection to it came first. The standby therefore starts while the primary is down and knows only validator
 * 0 as a peer; the primary then comes back. Where each copy is heard then is up to the connections (see the todo).
 *
 * Node indexes: 0-3 the testnet's validators, 4 the standby of validator 3.
 */

const PARAMS = {
  timeouts: { proposeMs: 5000, proposeDeltaMs: 500, prevoteMs: 500, prevoteDeltaMs: 500, precommitMs: 500, precommitDeltaMs: 500, commitMs: 0 },
  emptyBlockIntervalMs: 2000,
}

/** How long both copies may run, under load, before a block carries evidence against them (validator 3 proposes every fourth height). */
const EVIDENCE_WAIT_MS = 35_000

/** An evidence record as `chain_getEvidence` and `chain_getBlock` show it. */
interface EvidenceView {
  kind: 'conflictingVotes' | 'conflictingProposals'
  validator: string
  height: number
  round: number
  type: string
  first: { valueId: string | null; signature: string }
  second: { valueId: string | null; signature: string }
  committedAt: number
}

/**
 * The proposals and votes of `address` in a home's consensus WAL (read from a copy, so the running node's log is
 * untouched), by `height/round/type`, with the values named ('nil' for none). A set per key: a peer's repair may relay
 * the other copy's message into this log too.
 */
async function signedIn(home: string, address: string): Promise<Map<string, Set<string>>> {
  const copy = join(home, 'consensus.wal.read')
  copyFileSync(join(home, 'consensus.wal'), copy)
  const records = await new Wal({ path: copy, maxRecordBytes: 64 * 1024 * 1024 }, { logger: silentLogger() }).replay()
  const out = new Map<string, Set<string>>()
  const note = (key: string, value: string) => out.set(key, (out.get(key) ?? new Set()).add(value))
  for (const r of records) {
    const d = decodeWalEntry(r, { maxTxs: 10_000, maxBytes: 4 * 1024 * 1024 })
    if (!d.ok) continue
    const e = d.value.entry
    if (e.kind === 'proposal' && to0x(e.message.proposal.proposer) === address) {
      const p = e.message.proposal
      note(`${p.height}/${p.round}/proposal`, to0x(p.valueId))
    } else if (e.kind === 'input' && e.input.type === 'vote' && to0x(e.input.vote.validator) === address) {
      const v = e.input.vote
      note(`${v.height}/${v.round}/${v.type}`, v.valueId === null ? 'nil' : to0x(v.valueId))
    }
  }
  return out
}

describe('a validator identity run by two processes at once', { timeout: 120_000 }, () => {
  let net: Testnet
  const DUPLICATED = 3
  const STANDBY = 4
  const all = [0, 1, 2, 3, STANDBY]
  const honest = [0, 1, 2]

  const evidenceOf = (i: number) => rpc<EvidenceView[]>(net.rpcUrl(i), 'chain_getEvidence', [], 3_000)
  const logs = (nodes: number[]) => nodes.map((i) => `--- node${i}\n${net.logTail(i, 12)}`).join('\n')
  const copyHomeFile = (name: string) => copyFileSync(join(net.home(DUPLICATED), name), join(net.home(STANDBY), name))

  before(async () => {
    net = await Testnet.create(4, [], { spareNodes: 1 })
    net.setGenesisParams(PARAMS)
    await net.initNode(STANDBY)
    // the standby dials validator 0 only (see above)
    net.editConfig(STANDBY, (c) => {
      c.p2p.peers = c.p2p.peers.slice(0, 1)
    })
    copyHomeFile('validator_key.json')
    net.startAll()
    await net.waitHeight(2)
  })

  after(async () => {
    await net?.destroy()
  })

  test('a standby under a node key of its own is refused at start', async () => {
    const r = await runCli('tallyd', ['start', '--home', net.home(STANDBY)], { timeoutMs: 30_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /node_key\.json is peer \S+, but the genesis lists this validator as /)
  })

  // Which copy an honest validator hears depends on which connection it keeps for the shared peer id. The copy that
  // hears fewer than two other validators cannot keep in step: it follows by block sync a height or two behind and
  // signs nothing at the height the others are at, so no honest validator receives two conflicting messages and there
  // is nothing to convict. In runs where both copies sign at one height, the conflict reaches an honest validator
  // directly, through repair gossip, or in the certificate of a block it syncs; this passes on those runs only.
  test('a standby under the same identity: its equivocation is committed, the same on every replica', {
    todo: 'whether both copies of an identity run twice sign at one height depends on which connections the honest validators keep',
  }, async () => {
    const primary = await net.status(DUPLICATED)
    const offender = primary.validator!
    const state = join(net.home(DUPLICATED), 'validator_state.json')
    await waitFor('validator 3 to write its safety record', () => existsSync(state))

    // the primary goes down; the operator copies its node key and safety record into the standby and starts it
    await net.stop(DUPLICATED)
    await waitFor('validator 0 to see validator 3 go', async () => (await net.status(0)).peers === 2, 30_000, 200)
    copyHomeFile('node_key.json')
    copyHomeFile('validator_state.json')
    net.start(STANDBY)
    await waitFor(
      'the standby to be admitted as validator 3 and in step',
      async () => {
        const [s, zero] = await Promise.all([net.status(STANDBY), net.status(0)])
        return s.validator === offender && s.nodeId === primary.nodeId && zero.peers === 3 && !s.catchingUp && s.height >= zero.height - 1
      },
      30_000,
      200,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs([STANDBY])}`)
    })

    // then the primary comes back: two processes sign as validator 3
    net.start(DUPLICATED)
    await waitFor(
      'the primary to be back in step',
      async () => {
        const [s, zero] = await Promise.all([net.status(DUPLICATED), net.status(0)])
        return !s.catchingUp && s.height >= zero.height - 1
      },
      30_000,
      200,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs([DUPLICATED])}`)
    })
    const bothFrom = (await net.height(0))!

    // a block carries evidence against validator 3, and every honest validator committed it
    const committedAt = await waitFor(
      'a block to carry evidence against validator 3 on every honest validator',
      async () => {
        const lists = await Promise.all(honest.map(evidenceOf))
        const at = lists.map((l) => l.find((e) => e.validator === offender && e.kind === 'conflictingVotes')?.committedAt)
        return at.every((h) => h !== undefined && h === at[0]) ? at[0] : undefined
      },
      EVIDENCE_WAIT_MS,
      300,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs([0, DUPLICATED, STANDBY])}`)
    })

    // the chain goes on past it, and every replica, both copies included, holds the same blocks
    await net.waitHeight(committedAt + 3, honest, 30_000)
    await net.waitHeight(committedAt, all, 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs([DUPLICATED, STANDBY])}`)
    })
    const common = Math.min(...(await Promise.all(all.map(async (i) => (await net.height(i)) ?? 0))))
    await net.checkSameChain(common, all)

    // every replica lists the same evidence up to there, all of it against validator 3, from when both copies ran
    const lists = await Promise.all(all.map(async (i) => (await evidenceOf(i)).filter((e) => e.committedAt <= common)))
    for (const [k, i] of all.entries()) assert.deepEqual(lists[k], lists[0], `node${i} lists other evidence than node0`)
    const list = lists[0]!
    assert.ok(list.some((e) => e.committedAt === committedAt))
    for (const e of list) {
      assert.equal(e.validator, offender, `evidence against another validator: ${JSON.stringify(e)}`)
      assert.ok(e.height >= bothFrom - 1, `evidence of height ${e.height}, before both copies ran (from ${bothFrom})`)
      assert.notDeepEqual(e.first, e.second)
      assert.ok(e.committedAt > e.height && e.committedAt - e.height <= 100, `committed at ${e.committedAt}, of height ${e.height}`)
    }
    const key = (e: EvidenceView) => JSON.stringify([e.kind, e.height, e.round, e.type, e.first, e.second])
    assert.equal(new Set(list.map(key)).size, list.length, 'evidence committed twice')

    // each item names a height, round and step at which one copy signed one of its messages and the other the other
    const [mine, theirs] = await Promise.all([signedIn(net.home(DUPLICATED), offender), signedIn(net.home(STANDBY), offender)])
    for (const e of list) {
      const at = `${e.height}/${e.round}/${e.type}`
      const [a, b] = [e.first.valueId ?? 'nil', e.second.valueId ?? 'nil']
      const split = (mine.get(at)?.has(a) === true && theirs.get(at)?.has(b) === true) || (mine.get(at)?.has(b) === true && theirs.get(at)?.has(a) === true)
      assert.ok(
        split,
        `evidence at ${at} (${a} vs ${b}) is not one message of each copy: primary ${[...(mine.get(at) ?? [])]}, standby ${[...(theirs.get(at) ?? [])]}`,
      )
    }

    // the block at that height carries exactly the evidence committed there, on every replica
    const carried = list.filter((e) => e.committedAt === committedAt)
    for (const i of all) {
      const b: { evidence: EvidenceView[] } | null = await rpc(net.rpcUrl(i), 'chain_getBlock', [committedAt])
      assert.ok(b, `node${i} has block ${committedAt}`)
      assert.deepEqual(b.evidence, carried, `block ${committedAt} on node${i}`)
    }
  })

  test("a second process on a running validator's home is refused, and the running one goes on", async () => {
    const h = (await net.height(DUPLICATED))!
    const r = await runCli('tallyd', ['start', '--home', net.home(DUPLICATED)], { timeoutMs: 30_000 })
    assert.notEqual(r.code, 0, `a second process started on validator 3's home: ${r.stderr}`)
    assert.match(r.stderr, /is locked: another process \(a tallyd on this home\?\) has it open/)
    assert.equal(net.procs[DUPLICATED]?.exitCode, null, 'the running validator exited')
    await net.waitHeight(h + 2, [DUPLICATED, ...honest], 30_000)
  })
})
