import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Testnet, rpc, runCli, waitFor } from '../e2e/harness.js'

/**
 * The classic operator mistake: one validator's identity run by two `tallyd` processes at once. The standby is a home
 * made with `tallyd init` into which the operator copies validator 3's keys and its `validator_state.json`. A copy of
 * the validator key alone does not start: a genesis validator's node key must be the peer id its genesis lists. With
 * the node key copied too, the standby starts and is admitted as validator 3; it runs while the primary is down. When
 * the primary comes back, two processes sign as validator 3: each soon commits a block whose certificate carries a
 * precommit of their key above its own safety record that it did not sign, and stops there (exit code 70) before the
 * two can go on signing against each other. The honest validators go on committing, and every replica still running
 * holds the same chain. A second process on a running validator's home is refused by the home's lock.
 *
 * Node indexes: 0-3 the testnet's validators, 4 the standby of validator 3.
 */

const PARAMS = {
  timeouts: { proposeMs: 5000, proposeDeltaMs: 500, prevoteMs: 500, prevoteDeltaMs: 500, precommitMs: 500, precommitDeltaMs: 500, commitMs: 0 },
  emptyBlockIntervalMs: 2000,
}

/**
 * At how many heights a committed certificate may carry a precommit of validator 3, from the moment both copies run
 * (the primary answers RPC with its three peers), before one copy stops. A copy stops at the first block it commits
 * whose certificate (its own or the one the next block carries) holds a precommit of its key it did not sign, so only
 * heights where validator 3's precommit reaches a certificate can stop it; while both copies lag (each of the others
 * talks to one of them, the two sharing a peer id) none does, for as many heights as that lasts on a busy machine.
 * Stops came 1 to 6 heights after both ran, whatever the count.
 */
const STOP_SIGNED_HEIGHTS = 10
/** Bound on the harness waits that include a process start (tens of seconds on a busy machine). */
const START_WAIT_MS = 60_000
/** Bound on the wait for the stop, should validator 3's precommits reach no certificate for that long. */
const STALL_WAIT_MS = 180_000

/** What this test reads of a certificate as `chain_getCommit` shows it. */
interface CommitView {
  readonly signatures: readonly { readonly validator: string }[]
  readonly lastCommit?: CommitView | null
}

/** What this test reads of an evidence record as `chain_getEvidence` shows it. */
interface EvidenceView {
  readonly validator: string
}

describe('a validator identity run by two processes at once', { timeout: 300_000 }, () => {
  let net: Testnet
  const DUPLICATED = 3
  const STANDBY = 4
  const honest = [0, 1, 2]

  const evidenceOf = (i: number) => rpc<EvidenceView[]>(net.rpcUrl(i), 'chain_getEvidence', [], 3_000)
  const logs = (nodes: number[]) => nodes.map((i) => `--- node${i}\n${net.logTail(i, 12)}`).join('\n')
  const copyHomeFile = (name: string) => copyFileSync(join(net.home(DUPLICATED), name), join(net.home(STANDBY), name))

  before(async () => {
    net = await Testnet.create(4, [], { spareNodes: 1 })
    net.setGenesisParams(PARAMS)
    await net.initNode(STANDBY)
    // the operator gave the standby one peer, validator 0
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

  test("a second process on a running validator's home is refused, and the running one goes on", async () => {
    const h = (await net.height(DUPLICATED))!
    const r = await runCli('tallyd', ['start', '--home', net.home(DUPLICATED)], { timeoutMs: 30_000 })
    assert.notEqual(r.code, 0, `a second process started on validator 3's home: ${r.stderr}`)
    assert.match(r.stderr, /is locked: another process \(a tallyd on this home\?\) has it open/)
    assert.equal(net.procs[DUPLICATED]?.exitCode, null, 'the running validator exited')
    await net.waitHeight(h + 2, [DUPLICATED, ...honest], 30_000)
  })

  test("a standby under the same identity: a copy stops itself once a block it commits carries the other's precommit", async () => {
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
      START_WAIT_MS,
      200,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs([STANDBY])}`)
    })

    // then the primary comes back: two processes sign as validator 3, until one of them meets the other's precommit in
    // a certificate above its own safety record and stops
    net.start(DUPLICATED)
    const copies = [DUPLICATED, STANDBY]
    const exited = () => copies.filter((i) => net.procs[i]?.exitCode !== null)
    const honestTip = async () => Math.max(...(await Promise.all(honest.map(async (i) => (await net.height(i)) ?? 0))))
    // both copies run once the primary answers RPC with its three peers (a copy may stop even before that)
    await waitFor(
      'the primary to be back with its three peers, or a copy to stop',
      async () => exited().length > 0 || ((await net.status(DUPLICATED)).peers ?? 0) >= 3,
      START_WAIT_MS,
      200,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs(copies)}`)
    })
    const bothFrom = await honestTip()
    // the heights from bothFrom on at which a certificate node 0 holds carries a precommit of validator 3
    const signed = new Set<number>()
    let scanned = bothFrom
    const signs = (c: CommitView | null | undefined) => c?.signatures.some((x) => x.validator.toLowerCase() === offender.toLowerCase()) === true
    const outcome = await waitFor(
      'a copy of validator 3 to stop',
      async () => {
        if (exited().length > 0) return 'stopped'
        const tip = (await net.height(0)) ?? scanned
        for (; scanned < tip; scanned++) {
          const c = (await rpc<{ commit: CommitView }>(net.rpcUrl(0), 'chain_getCommit', [scanned + 1], 3_000)).commit
          if (signs(c)) signed.add(scanned + 1)
          if (signs(c.lastCommit) && scanned >= bothFrom + 1) signed.add(scanned)
        }
        return signed.size > STOP_SIGNED_HEIGHTS ? 'ran on' : false
      },
      STALL_WAIT_MS,
      200,
    ).catch((e) => {
      throw new Error(`${(e as Error).message} (validator 3 signed at ${signed.size} heights of ${bothFrom + 1}-${scanned})\n${logs(copies)}`)
    })
    const summary = `validator 3's precommit in the certificates of ${signed.size} heights of ${bothFrom + 1}-${scanned}`
    assert.equal(outcome, 'stopped', `both copies still ran with ${summary}\n${logs(copies)}`)
    console.log(`# node${exited().join(',')} stopped, with ${summary}`)
    for (const i of exited()) {
      assert.equal(net.procs[i]!.exitCode, 70, `node${i} exit code`)
      assert.match(net.logTail(i, 40), /another process signs as this validator: the certificate of height \d+ carries a precommit of its key/)
    }

    // the chain goes on without it, and every replica still running holds the same blocks
    const running = [...honest, ...copies.filter((i) => net.procs[i]?.exitCode === null)]
    const at = (await net.height(0))!
    await net.waitHeight(at + 3, honest, 30_000)
    const common = Math.min(...(await Promise.all(running.map(async (i) => (await net.height(i)) ?? 0))))
    await net.checkSameChain(common, running)

    // any equivocation that reached a block before the stop convicts validator 3 alone
    for (const i of honest) {
      for (const e of await evidenceOf(i)) assert.equal(e.validator, offender, `evidence against another validator: ${JSON.stringify(e)}`)
    }
  })
})
