import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomFillSync } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseAddress } from '../../crypto/address.js'
import { to0x, toHex } from '../../crypto/bytes.js'
import { MAX_HEIGHT, proposerOf } from '../../consensus/index.js'
import { blockHash } from '../../ledger/block.js'
import { createTransfer, decodeTransaction, encodeTransaction, type DecodedTransaction } from '../../ledger/transaction.js'
import { encodeProposalMessage, encodeVoteMessage } from '../../node/sync/consensusMessages.js'
import { Rng } from '../helpers/random.js'
import { rpc, waitFor } from '../e2e/harness.js'
import { readDevKey } from '../e2e/load.js'
import { AttackNet, Verdict, repeatFor } from './attackNet.js'
import { emptyBlocks } from './byzantineValidator.js'
import {
  BadVoteFactory,
  TAMPERS,
  badSignatureProposal,
  junkHeader,
  junkHeight,
  junkRound,
  oversizedProposal,
  tamperedBlockResponse,
  unsignedProposal,
} from './forgeries.js'
import { IdleSockets } from './idleSockets.js'
import { RpcProbe } from './rpcProbe.js'

/**
 * Attacks on real validators: validators 0-2 are `tallyd` processes, validator 3 is a Byzantine insider in this
 * process with validator 3's own keys ({@link AttackNet}); some attacks need no key at all (idle sockets, a mempool
 * filled through RPC). One testnet serves the file; each test starts by repairing what the previous attack may have
 * broken (`beginPhase`) and ends with the checks every attack must pass (the honest validators keep committing,
 * agree, stay up, keep prevoting the blocks that get decided, and say they are healthy), plus its own expectations.
 * Controls run the same flows without the attack and must pass, so that a failing attack test is the attack's doing.
 * The forged-block tests come last: a forged block that commits poisons the chain for every later sync.
 */

const MiB = 1024 * 1024
/** The WAL bound under attack (the host starts it afresh past 4 MiB at a commit). */
const WAL_BOUND = 8 * MiB
/** How much more resident memory an honest validator may take under a flood than it took just before. */
const RSS_GROWTH_BOUND = 256 * MiB
/** Messages a second the floods send to each honest validator (about what the attacker sustains on one busy core). */
const FLOOD_RATE = 5_000
/** How long a wiped validator may take to catch up 12+ heights, from the moment it answers RPC. */
const CATCH_UP_MS = 45_000
/** Bound on a process start: the machine's business, not the node's (tens of seconds on a busy machine). */
const START_MS = 60_000
/** The score that disconnects a peer (docs/p2p.md); each lie's cost is in the log line that reports it. */
const BAN_SCORE = 50
/** How far a log line's time may lie from the moment the node took it into account. */
const LOG_SLACK_MS = 50
/** How soon a peer whose score reached {@link BAN_SCORE} must be disconnected. */
const BAN_MS = 5_000
/** How many times the control flood may run before it counts as failed (the machine was too busy to measure). */
const CONTROL_RUNS = 3
/** A small mempool, so that a few accounts can fill it. */
const MEMPOOL_MAX_TXS = 100
/** Idle connections kept open to each validator. */
const IDLE_SOCKETS = 32
/** How soon a restarted validator must be back at two peers once it serves RPC. */
const RECONNECT_MS = 10_000
/** Seeds of the junk, printed so a run can be replayed. */
const SEED = Number(process.env.TALLY_BYZANTINE_SEED ?? 20261205)

describe('a four-validator network under attack', { timeout: 900_000 }, () => {
  let a: AttackNet
  let chainId: string
  /** A transfer committed by the control, replayed by a forged block later. */
  let committed: { tx: DecodedTransaction; height: number } | undefined

  before(async () => {
    a = await AttackNet.start({
      configure: (config) => {
        config.mempool.maxTxs = MEMPOOL_MAX_TXS
      },
    })
    chainId = a.attacker.genesis.chainId
    console.log(`# testnet ${a.net.dir}, junk seed ${SEED}`)
  })

  after(async () => {
    await a?.destroy()
  })

  /**
   * The first of `lies` (ascending by time, each with the points it cost) at which a peer's score reaches
   * `threshold`, under the scoring of docs/p2p.md: a point forgiven per whole second since the score was last moved
   * on, a score forgiven whole starting afresh. Undefined when it never does.
   */
  const scoreReaches = (lies: readonly { readonly time: number; readonly points: number }[], threshold: number): number | undefined => {
    let score = 0
    let since = 0
    for (const { time: t, points } of lies) {
      // a log line's time may precede the penalty's by a few ms: seconds are counted generously, never owing a ban
      // the node need not give
      const seconds = Math.max(0, Math.floor((t - since + LOG_SLACK_MS) / 1000))
      const left = score - seconds
      if (left <= 0) {
        score = points
        since = t
      } else {
        score = left + points
        since += seconds * 1000
      }
      if (score >= threshold) return t
    }
    return undefined
  }

  /** How logs may name the attacker: as the peer that sent something, or as the validator that signed it. */
  const attackerNames = () => [a.attacker.peerId, toHex(a.attacker.address)]
  /** The attacker as a peer only (equivocation evidence names its address, and must not pass for a peer penalty). */
  const attackerPeer = () => [a.attacker.peerId]
  const timed = async (name: string, fn: () => Promise<void>) => {
    const t0 = Date.now()
    try {
      await fn()
    } finally {
      console.log(`# ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
  }

  test("control: the attacker's proposals commit, with a transaction the others fetch from it", () =>
    timed('control: proposals', async () => {
      await a.beginPhase()
      const attacker = a.attacker
      const faucet = readDevKey(a.net.keyFile('faucet'))
      const to = readDevKey(a.net.keyFile('account0')).address
      let tx: DecodedTransaction | undefined
      attacker.behaviour.plan = async (_height, rounds) => {
        if (rounds[0] !== 0) return { txs: [] }
        const { nonce } = await attacker.follower.account(parseAddress(faucet.address)!)
        tx = createTransfer(faucet.secretKey, { chainId: attacker.genesis.chainId, to: parseAddress(to)!, amount: 7n, nonce })
        attacker.behaviour.plan = emptyBlocks
        return { txs: [tx] }
      }
      const r = await waitFor(
        "the attacker's block with its transaction to commit",
        async () => {
          if (tx === undefined) return false
          const got = await rpc<{ status: string; height?: number; ok?: boolean }>(a.net.rpcUrl(1), 'tx_get', [to0x(tx.hash)])
          return got.status === 'committed' ? got : false
        },
        30_000,
      )
      assert.equal(r.ok, true)
      const block = await a.net.block(1, r.height)
      assert.equal(String(block!.header.proposer).toLowerCase(), to0x(attacker.address))
      committed = { tx: tx!, height: r.height! }
      await a.assertHealthy()
      for (const i of a.honest)
        assert.deepEqual(
          a.offenderLines(i, attackerNames()).map((l) => l.raw),
          [],
          `node${i} logged the attacker`,
        )
      assert.deepEqual(attacker.errors, [])
    }))

  test("control: with validator 2 down and wiped, the attacker's votes keep the chain going and 2 catches up", () =>
    timed('control: catch-up', async () => {
      await a.beginPhase()
      const before = a.attacker.disconnects.get(a.attacker.peerIdOf(2)) ?? 0
      ;(await catchUpAfterWipe()).done()
      assert.deepEqual(
        a.offenderLines(2, attackerNames()).map((l) => l.raw),
        [],
        'node2 logged the attacker',
      )
      assert.equal(a.attacker.disconnects.get(a.attacker.peerIdOf(2)) ?? 0, before + 1, 'the attacker lost validator 2 other than when it was stopped')
      await a.assertHealthy()
    }))

  /**
   * Stops validator 2, deletes its data, lets 0, 1 and the attacker commit 12 heights, restarts 2, and checks that
   * it catches up in time (counted from the moment it answers RPC), that for 3 s no honest validator says it is
   * catching up at the tip or healthy while behind, and that 2 holds blocks with the same last commits as 0.
   */
  async function catchUpAfterWipe(v = new Verdict(), onStart: (at: number) => void = () => {}): Promise<Verdict> {
    await a.net.stop(2)
    a.wipe(2)
    await a.waitProgress(12, [0, 1], 90_000)
    const target = await a.maxHeight([0, 1])
    const t0 = Date.now()
    a.net.start(2)
    onStart(t0)
    await v.check('validator 2 catches up', async () => {
      await waitFor('validator 2 to answer RPC after its start', () => a.height(2).then((h) => h !== undefined), START_MS, 100)
      const t1 = Date.now()
      await a.net.waitHeight(target, [2], CATCH_UP_MS)
      console.log(`# validator 2 answered RPC ${t1 - t0} ms after its start, and caught up to ${target} ${Date.now() - t1} ms later`)
      await waitFor('validator 2 to be within a height of the others', async () => ((await a.height(2)) ?? 0) >= (await a.maxHeight()) - 1, 10_000, 200)
    })
    await v.check('the honest validators say the truth about catching up', async () => {
      const lies = new Set<string>()
      await repeatFor(3_000, 250, async () => {
        const states = await Promise.all(a.honest.map((i) => a.healthOf(i).catch(() => undefined)))
        const top = Math.max(...states.map((x) => x?.height ?? 0))
        states.forEach((x, k) => {
          const i = a.honest[k]!
          if (x === undefined) lies.add(`node${i} did not answer`)
          else if ((x.catchingUp || x.status !== 200) && x.height >= top - 1)
            lies.add(`node${i} at ${x.height} of ${top}: /health ${x.status}, catchingUp ${x.catchingUp}`)
          else if (!x.catchingUp && x.status === 200 && x.height < top - 3) lies.add(`node${i} at ${x.height} of ${top}: healthy and not catching up`)
        })
      })
      if (lies.size > 0) throw new Error([...lies].slice(0, 6).join('; '))
    })
    await v.check('validator 2 holds the same last commits as validator 0', async () => {
      for (let h = 2; h <= target; h++) {
        const [x, y] = [await a.net.block(0, h), await a.net.block(2, h)]
        const [cx, cy] = [(x?.commit as { lastCommit?: unknown })?.lastCommit, (y?.commit as { lastCommit?: unknown })?.lastCommit]
        if (JSON.stringify(cx) !== JSON.stringify(cy))
          throw new Error(`block ${h}: node2 serves last commit ${JSON.stringify(cy).slice(0, 160)}…, node0 ${JSON.stringify(cx).slice(0, 160)}…`)
      }
    })
    return v
  }

  test('junk proposals: bad, absent or misplaced signatures, random heights and rounds, oversized', () =>
    timed('junk proposals', async () => {
      await a.beginPhase()
      const attacker = a.attacker
      const rng = new Rng(SEED)
      const vs = attacker.validatorSet
      const [v0, v1] = [attacker.peerIdOf(0), attacker.peerIdOf(1)]
      const disconnectsBefore = new Map(a.honest.map((i) => [i, attacker.disconnects.get(attacker.peerIdOf(i)) ?? 0]))
      const counts = { badSignature: 0, notProposer: 0, oversized: 0, unsigned: 0 }
      const stopSampling = a.sample()
      let tick = 0
      await repeatFor(20_000, 100, () => {
        const cur = attacker.follower.height + 1
        for (let k = 0; k < 4; k++) {
          // a random signature, on behalf of the round's real proposer (it reaches the signature check) or anyone;
          // half of them for the height being decided or the next, with a header at the largest height there is
          const near = k < 2
          const height = near ? cur + rng.int(2) : junkHeight(rng, cur, MAX_HEIGHT)
          const round = near ? rng.int(3) : junkRound(rng)
          const proposer = rng.chance(0.5) ? proposerOf(vs, height, round).address : vs.validators[rng.int(vs.validators.length)]!.address
          const headerHeight = near ? Number.MAX_SAFE_INTEGER : junkHeight(rng, cur, Number.MAX_SAFE_INTEGER)
          attacker.send(badSignatureProposal(rng, { chainId, height, round, proposer, headerHeight }), [v0, v1])
          counts.badSignature++
        }
        // validly signed by validator 3, for a round it is not the proposer of
        let round = rng.int(10)
        while (attacker.isProposer(cur, round)) round = (round + 1) % 10
        const header = junkHeader(rng, chainId, cur)
        attacker.send(
          encodeProposalMessage({ proposal: attacker.signProposal(cur, round, blockHash(header)), header, txHashes: [], evidence: [], lastCommit: null }),
          [v0, v1],
        )
        counts.notProposer++
        if (tick % 5 === 0) {
          attacker.send(
            oversizedProposal(rng, {
              chainId,
              height: cur,
              round: rng.int(3),
              proposer: proposerOf(vs, cur, 0).address,
              maxTxs: attacker.genesis.params.block.maxTxs,
            }),
            [v0, v1],
          )
          counts.oversized++
        }
        // no signature at all (does not decode): to validator 1 only, so validator 0 shows how the decodable junk fares
        if (tick % 2 === 0) {
          attacker.send(unsignedProposal(rng, { chainId, height: cur, round: rng.int(3), proposer: proposerOf(vs, cur, 0).address }), [v1])
          counts.unsigned++
        }
        tick++
      })
      const peaks = stopSampling()
      console.log(`# junk sent to validators 0 and 1: ${JSON.stringify(counts)}; WAL peaks ${peaks.walBytes.join(',')} bytes`)
      const v = new Verdict()
      for (const i of [0, 1]) {
        v.expect(a.offenderLines(i, attackerPeer()).length > 0, `node${i} logged no warning naming the attacker (${attacker.peerId})`)
        v.expect((attacker.disconnects.get(attacker.peerIdOf(i)) ?? 0) > disconnectsBefore.get(i)!, `node${i} never disconnected the attacker`)
      }
      for (const i of a.honest) v.expect(peaks.walBytes[i]! < WAL_BOUND, `node${i}'s WAL reached ${peaks.walBytes[i]} bytes (bound ${WAL_BOUND})`)
      await v.check('after the junk', () => a.assertHealthy())
      v.expect(attacker.errors.length === 0, `attacker errors: ${attacker.errors.join('; ')}`)
      v.done()
    }))

  /** What the honest validators did while the attacker flooded them. */
  interface FloodReport {
    readonly sent: number
    readonly heights: number
    readonly probes: Awaited<ReturnType<RpcProbe['stop']>>
    readonly peaks: ReturnType<ReturnType<AttackNet['sample']>>
    readonly summary: string
  }

  /**
   * Sends what `make(height)` returns to every honest validator for `durationMs`, at most `perSecond` messages a
   * second to each (the attacker's share of the machine is bounded, so what it does to the honest validators is
   * due to their handling of the messages, not to a starved CPU), while measuring their progress, `node_status`
   * latency from a worker thread, WAL size and resident memory. `alsoEachSecond` runs once a second.
   */
  async function flood(
    durationMs: number,
    perSecond: number,
    make: (height: number) => Uint8Array,
    alsoEachSecond: () => void = () => {},
  ): Promise<FloodReport> {
    const attacker = a.attacker
    const probe = new RpcProbe(a.honest.map((i) => a.net.rpcUrl(i)))
    const stopSampling = a.sample()
    const lag = monitorEventLoopDelay({ resolution: 10 })
    const cpu = process.cpuUsage()
    const t0 = Date.now()
    let sent = 0
    let before = 0
    try {
      before = await a.maxHeight()
      lag.enable()
      let lastSecond = 0
      await repeatFor(durationMs, 10, () => {
        if (Date.now() - lastSecond >= 1_000) {
          lastSecond = Date.now()
          alsoEachSecond()
        }
        const due = Math.min(2_000, Math.floor(((Date.now() - t0) / 1_000) * perSecond) - sent)
        const height = attacker.follower.height + 1
        for (let k = 0; k < due; k++) {
          attacker.send(make(height))
          sent++
        }
      })
    } catch (e) {
      await probe.stop()
      stopSampling()
      throw e
    }
    const used = process.cpuUsage(cpu)
    lag.disable()
    const heights = (await a.maxHeight()) - before
    const probes = await probe.stop()
    const peaks = stopSampling()
    const seconds = (Date.now() - t0) / 1_000
    const summary =
      `${sent} messages to each honest validator in ${seconds.toFixed(1)} s (test process CPU ${Math.round(((used.user + used.system) / 1e6 / seconds) * 100)}%, ` +
      `event loop delay p99 ${Math.round(lag.percentile(99) / 1e6)} ms); ${heights} heights committed; node_status slowest ${probes.map((p) => `${p.maxMs} ms/${p.failures} failed`).join(', ')}; ` +
      `WAL peaks ${peaks.walBytes.map((b) => Math.round(b / 1024)).join(',')} KiB; RSS peaks ${peaks.rssBytes.map((b) => Math.round(b / MiB)).join(',')} MiB`
    return { sent, heights, probes, peaks, summary }
  }

  test('vote floods: equivocation, then invalid-signature votes at a high rate for 10 s', () =>
    timed('vote floods', async () => {
      await a.beginPhase()
      const attacker = a.attacker
      const rng = new Rng(SEED + 1)
      const factory = new BadVoteFactory(
        attacker.validatorSet.validators.map((x) => x.address),
        (b) => randomFillSync(b),
      )

      // control: the same flood of votes for a height already decided, which a validator drops at no cost, must leave
      // every measurement in bounds (when it does not, this machine cannot tell what the attack does). A machine busy
      // with something else for a moment fails it: it runs again, up to CONTROL_RUNS times, until it passes
      const v = new Verdict()
      const inBounds = (r: FloodReport) => r.heights >= 2 && r.probes.every((p) => p.maxMs < 1_000 && p.failures === 0)
      let calm = await flood(5_000, FLOOD_RATE, (height) => factory.make(rng, Math.max(1, height - 3), rng.int(11)))
      console.log(`# control flood (stale votes): ${calm.summary}`)
      for (let run = 2; run <= CONTROL_RUNS && !inBounds(calm); run++) {
        calm = await flood(5_000, FLOOD_RATE, (height) => factory.make(rng, Math.max(1, height - 3), rng.int(11)))
        console.log(`# control flood (stale votes), run ${run}: ${calm.summary}`)
      }
      v.expect(calm.heights >= 2, `control: only ${calm.heights} heights committed in 5 s under a flood of stale votes`)
      for (const p of calm.probes)
        v.expect(p.maxMs < 1_000 && p.failures === 0, `control: ${p.url} answered in up to ${p.maxMs} ms under a flood of stale votes`)

      // first equivocation: for three seconds, two different signed votes of each kind in the first rounds of the
      // current and next height; then invalid signatures, as any validator, for the height being decided and the two
      // after it, rounds 0-10. The flood gets the attacker banned again and again, and what a banned peer sent is
      // dropped unread, so the equivocation comes first
      let equivocations = 0
      const equivocate = () => {
        const cur = attacker.follower.height + 1
        for (const height of [cur, cur + 1]) {
          for (const round of [0, 1]) {
            for (const type of ['prevote', 'precommit'] as const) {
              attacker.send(encodeVoteMessage(attacker.signVote(type, height, round, rng.bytes(32))))
              attacker.send(encodeVoteMessage(attacker.signVote(type, height, round, rng.bytes(32))))
              equivocations++
            }
          }
        }
      }
      // a ban for the control flood, which a busy validator may hand out as it works off the flood after its end, drops
      // what the attacker sends: only a round sent while connected to every honest validator, and still connected once
      // the chain moved on, counts
      const lostSoFar = () => a.honest.reduce((n, i) => n + (attacker.disconnects.get(attacker.peerIdOf(i)) ?? 0), 0)
      const equivocateUntil = Date.now() + 60_000
      for (let delivered = 0; delivered < 3; ) {
        if (Date.now() > equivocateUntil) throw new Error(`only ${delivered} of 3 rounds of equivocation reached every honest validator in 60 s`)
        await waitFor('the attacker to be connected to every honest validator', () => attacker.p2p.peers().length === a.honest.length, 30_000)
        const [height, lost] = [attacker.follower.height, lostSoFar()]
        equivocate()
        await waitFor('the chain to move on', async () => attacker.follower.height > height, 10_000, 100)
        if (lostSoFar() === lost && attacker.p2p.peers().length === a.honest.length) delivered++
      }
      await v.check('equivocation evidence', () =>
        waitFor(
          'every honest validator to hold evidence against the attacker',
          async () => {
            for (const i of a.honest) {
              const evidence = await rpc<{ validator: string }[]>(a.net.rpcUrl(i), 'chain_getEvidence', [], 3_000)
              if (!evidence.some((e) => String(e.validator).toLowerCase().includes(toHex(attacker.address)))) return false
            }
            return true
          },
          20_000,
        ),
      )
      const disconnectsBefore = new Map(a.honest.map((i) => [i, attacker.disconnects.get(attacker.peerIdOf(i)) ?? 0]))
      const f = await flood(10_000, FLOOD_RATE, (height) => factory.make(rng, height + rng.int(3), rng.int(11)))
      console.log(`# vote flood: ${f.summary}; ${equivocations} equivocations before it`)
      v.expect(f.heights >= 3, `commits stalled during the flood: ${f.heights} heights in 10 s`)
      for (const p of f.probes)
        v.expect(p.maxMs < 1_000 && p.failures === 0, `${p.url}: node_status took up to ${p.maxMs} ms (${p.failures} of ${p.samples} failed or over 3 s)`)
      for (const i of a.honest) {
        v.expect(f.peaks.walBytes[i]! < WAL_BOUND, `node${i}'s WAL reached ${f.peaks.walBytes[i]} bytes (bound ${WAL_BOUND})`)
        v.expect(
          f.peaks.rssBytes[i]! - calm.peaks.rssBytes[i]! < RSS_GROWTH_BOUND,
          `node${i}'s resident memory grew from ${Math.round(calm.peaks.rssBytes[i]! / MiB)} to ${Math.round(f.peaks.rssBytes[i]! / MiB)} MiB`,
        )
        v.expect(a.offenderLines(i, attackerPeer()).length > 0, `node${i} logged no warning naming the attacker (${attacker.peerId})`)
        v.expect((attacker.disconnects.get(attacker.peerIdOf(i)) ?? 0) > disconnectsBefore.get(i)!, `node${i} never disconnected the attacker`)
      }
      await v.check('after the flood', () => a.assertHealthy())
      v.done()
    }))

  test("a withheld proposal: validator 2 never receives the attacker's proposals and still keeps up", () =>
    timed('withheld proposal', async () => {
      await a.beginPhase()
      const attacker = a.attacker
      const to = [attacker.peerIdOf(0), attacker.peerIdOf(1)]
      attacker.behaviour.plan = () => ({ txs: [], to })
      const since = attacker.sent.length
      const v = new Verdict()
      let decided: number[] = []
      await v.check('two withheld blocks commit', async () => {
        decided = await waitFor(
          'two blocks the attacker withheld from validator 2 to commit',
          async () => {
            const heights: number[] = []
            for (const s of attacker.sent.slice(since)) {
              const b = await a.net.block(0, s.height).catch(() => null)
              if (b !== null && b.hash === to0x(s.valueId)) heights.push(s.height)
            }
            return heights.length >= 2 ? heights : false
          },
          45_000,
        )
      })
      for (const h of decided) await v.check(`validator 2 has block ${h}`, () => a.net.waitHeight(h, [2], 15_000))
      // validator 2 cannot prevote a block it never saw: the common checks run with the attacker sending to all again
      attacker.behaviour.plan = emptyBlocks
      await v.check('after the withheld proposals', () => a.assertHealthy())
      v.done()
    }))

  test('lying tips and tampered sync answers, while validator 2 syncs back from scratch', () =>
    timed('lying tips', async () => {
      await a.beginPhase()
      const attacker = a.attacker
      let served = 0
      // validators 0 and 1 hear a tip no certificate proves; validator 2 hears the true tip, so that it asks the
      // attacker for blocks while it syncs back, and every block it gets from it is tampered with
      const node2 = attacker.peerIdOf(2)
      attacker.behaviour.status = (from) => (from === node2 ? attacker.follower.height : MAX_HEIGHT)
      attacker.behaviour.block = (height) =>
        tamperedBlockResponse(TAMPERS[served++ % TAMPERS.length]!, height, attacker.follower.height, (h) => attacker.follower.block(h))
      // when the attacker loses validator 2, from its seat: the disconnects that count are those after the restart
      const lost: number[] = []
      const onDisconnect = (peer: string) => {
        if (peer === node2) lost.push(Date.now())
      }
      attacker.p2p.on('peer:disconnect', onDisconnect)
      let restartedAt = Date.now()
      const v = await catchUpAfterWipe(new Verdict(), (at) => {
        restartedAt = at
      })
      console.log(`# lying tips: ${served} tampered block answers served`)
      v.expect(served > 0, 'validator 2 never asked the attacker for a block')
      for (const i of [0, 1])
        v.expect(a.offenderLines(i, attackerPeer()).length > 0, `node${i} logged no warning naming the attacker for its tip (${attacker.peerId})`)
      v.expect(a.offenderLines(2, attackerPeer()).length > 0, `node2 logged no warning naming the attacker (${attacker.peerId})`)
      // Each answer node2 judges a lie costs the attacker the points its log line names, forgiven a point a second,
      // and BAN_SCORE disconnects it (one forged or unlinked block does). How many of the tampered answers node2
      // judges is up to its sync: of the heights asked of one peer at once, the answers after the first one refused
      // are dropped unjudged, and the answer for a height past what node2 can check yet waits to be judged until
      // that height comes up. So node2 must disconnect the attacker within BAN_MS of the lie that brings its score
      // to BAN_SCORE; with fewer lies judged, it owes no disconnect.
      const lies = a.offenderLines(2, attackerPeer(), restartedAt).filter((l) => l.msg === 'bad block from a peer' || l.msg === 'a synced block was refused')
      const banDue = scoreReaches(
        lies.map((l) => ({ time: l.time, points: typeof l.points === 'number' ? l.points : 0 })),
        BAN_SCORE,
      )
      v.expect(lies.length > 0, `node2 judged none of the ${served} tampered answers a lie`)
      console.log(`# lying tips: node2 judged ${lies.length} answers lies; a disconnect ${banDue === undefined ? 'is not due' : 'is due'}`)
      if (banDue !== undefined) {
        // other penalties may have brought the disconnect forward: any one after the restart counts
        const inTime = () => lost.find((t) => t >= restartedAt && t <= banDue + BAN_MS)
        await v.check('node2 disconnects the attacker once its lies reach the ban score', () =>
          waitFor(
            `node2 to disconnect the attacker within ${BAN_MS} ms of the lie that brought it to ${BAN_SCORE} points`,
            () => inTime() !== undefined,
            Math.max(1_000, banDue + BAN_MS - Date.now()),
          ),
        )
      }
      attacker.p2p.off('peer:disconnect', onDisconnect)
      // every honest validator bans a peer whose tip it cannot verify, so the attacker observes their prevotes only once
      // it tells the truth again and the bans ran out
      attacker.behaveHonestly()
      await v.check('after the lies', async () => {
        await waitFor('the attacker to be connected to every honest validator again', () => attacker.p2p.peers().length === a.honest.length, 30_000)
        await a.assertHealthy()
      })
      v.done()
    }))

  /**
   * Restarts validator 1 and returns how long it took, once it answers RPC (its last component to start; how long
   * a process takes to start is the machine's business), to report two peers. Throws past the deadline.
   */
  async function restartValidator1(): Promise<{ startMs: number; peersMs: number }> {
    await a.net.stop(1)
    const t0 = Date.now()
    a.net.start(1)
    await waitFor('validator 1 to answer RPC after its start', () => a.height(1).then((h) => h !== undefined), 60_000, 100)
    const t1 = Date.now()
    await waitFor(
      'validator 1 to be back at two or more peers',
      async () => {
        const s = await rpc<{ peers: number }>(a.net.rpcUrl(1), 'node_status', [], 1_000)
        return s.peers >= 2
      },
      RECONNECT_MS,
      200,
    )
    return { startMs: t1 - t0, peersMs: Date.now() - t1 }
  }

  test('control: a restarted validator is back at two peers in time', () =>
    timed('control: restart', async () => {
      await a.beginPhase()
      const r = await restartValidator1()
      console.log(`# control: validator 1 answered RPC ${r.startMs} ms after its start, and had 2+ peers ${r.peersMs} ms later`)
      await a.assertHealthy()
    }))

  test(`idle sockets: ${IDLE_SOCKETS} idle connections to each validator, reopened as they close; a restarted validator reconnects`, () =>
    timed('idle sockets', async () => {
      await a.beginPhase()
      const ports = a.honest.map((i) => a.net.p2pPort + i)
      const idle = new IdleSockets(ports, IDLE_SOCKETS)
      const v = new Verdict()
      try {
        await waitFor('the idle connections to be established', () => idle.established >= ports.length * 20, 10_000)
        await v.check('validator 1 reconnects', async () => {
          const r = await restartValidator1()
          console.log(`# idle sockets: validator 1 answered RPC ${r.startMs} ms after its start, and had 2+ peers ${r.peersMs} ms later`)
        })
        console.log(`# idle sockets: ${idle.opened} connections opened, ${idle.established} established now`)
      } finally {
        idle.stop()
      }
      await v.check('after the idle sockets', () => a.assertHealthy())
      v.done()
    }))

  test('gapped-nonce flood through RPC: payable transfers from another account still get in and commit', () =>
    timed('gapped nonces', async () => {
      await a.beginPhase()
      const faucet = readDevKey(a.net.keyFile('faucet'))
      const to = parseAddress(readDevKey(a.net.keyFile('account3')).address)!
      const urls = a.honest.map((i) => a.net.rpcUrl(i))
      const pay = async (url: string) => {
        const nonce = BigInt(await rpc<string>(url, 'ledger_getNextNonce', [faucet.address]))
        const t = createTransfer(faucet.secretKey, { chainId, to, amount: 3n, nonce })
        await rpc(url, 'tx_submit', [to0x(t.bytes)])
        return to0x(t.hash)
      }
      const committedWithin = async (hash: string, heights: number) => {
        const start = await a.maxHeight()
        const r = await waitFor(
          `transfer ${hash} to commit`,
          async () => {
            const got = await rpc<{ status: string; height?: number }>(urls[0]!, 'tx_get', [hash])
            return got.status === 'committed' ? got : false
          },
          30_000,
        )
        assert.ok(r.height! <= start + heights, `committed at ${r.height}, more than ${heights} heights after ${start}`)
      }

      // control: a payable transfer commits within a few heights
      await committedWithin(await pay(urls[0]!), 4)

      // the flood: three accounts queue transfers whose nonces skip their next one, so none can ever execute
      const outcomes = new Map<string, number>()
      for (const k of [0, 1, 2]) {
        const key = readDevKey(a.net.keyFile(`account${k}`))
        const next = BigInt((await rpc<{ nonce: string }>(urls[0]!, 'ledger_getAccount', [key.address])).nonce)
        for (let gap = 1n; gap <= 64n; gap++) {
          const t = createTransfer(key.secretKey, { chainId, to, amount: 1n, nonce: next + gap })
          const url = urls[Number(gap) % urls.length]!
          const code = await rpc(url, 'tx_submit', [to0x(t.bytes)]).then(
            () => 'admitted',
            (e: { reason?: string }) => e.reason ?? 'error',
          )
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1)
        }
      }
      console.log(`# gapped-nonce flood: ${JSON.stringify(Object.fromEntries(outcomes))}`)

      const v = new Verdict()
      for (const url of urls) {
        await v.check(`a payable transfer through ${url}`, async () => {
          const hash = await pay(url)
          await committedWithin(hash, 4)
        })
      }
      await v.check('after the flood', () => a.assertHealthy())
      v.done()
    }))

  /**
   * Has the attacker propose, at its next height where it proposes first, a block holding `forge(nonce)` (a
   * transfer from account 3, given account 3's next nonce) with an otherwise correct header, and waits until the
   * honest validators are past that height.
   */
  async function proposeForged(forge: (nonce: bigint) => DecodedTransaction, v: Verdict): Promise<{ height: number; tx: DecodedTransaction; valueId: string }> {
    const attacker = a.attacker
    const account3 = readDevKey(a.net.keyFile('account3'))
    const sent = attacker.sent.length
    const forged = await new Promise<{ height: number; tx: DecodedTransaction }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the attacker got no round 0 to propose in within 30 s')), 30_000)
      attacker.behaviour.plan = async (height, rounds) => {
        if (rounds[0] !== 0) return { txs: [] }
        const { nonce } = await attacker.follower.account(parseAddress(account3.address)!)
        const tx = forge(nonce)
        attacker.behaviour.plan = emptyBlocks
        clearTimeout(timer)
        resolve({ height, tx })
        return { txs: [tx] }
      }
    })
    await v.check(`the honest validators pass height ${forged.height}`, () => a.net.waitHeight(forged.height + 1, [...a.honest], 45_000))
    const mine = attacker.sent.slice(sent).find((s) => s.height === forged.height)!
    return { ...forged, valueId: to0x(mine.valueId) }
  }

  /** The checks after a forged block: it never commits, its proposer is logged, the network is healthy. */
  async function forgedNeverCommits(f: { height: number; tx: DecodedTransaction; valueId: string }, v: Verdict): Promise<void> {
    for (const i of a.honest) {
      const b = await a.net.block(i, f.height).catch(() => null)
      v.expect(b?.hash !== f.valueId, `node${i} committed the forged block at height ${f.height}`)
      v.expect(a.offenderLines(i, attackerNames()).length > 0, `node${i} logged no warning naming the proposer of the forged block`)
    }
    await v.check('after the forged block', () => a.assertHealthy())
  }

  const forgeChainId = () => a.attacker.genesis.chainId
  const account3 = () => readDevKey(a.net.keyFile('account3'))
  const recipient = () => parseAddress(readDevKey(a.net.keyFile('account0')).address)!

  test('a forged block: a transfer with a bad signature', () =>
    timed('forged: bad signature', async () => {
      await a.beginPhase()
      const v = new Verdict()
      const f = await proposeForged((nonce) => {
        const t = createTransfer(account3().secretKey, { chainId: forgeChainId(), to: recipient(), amount: 1n, nonce })
        const signature = new Uint8Array(t.tx.signature)
        signature[5] = signature[5]! ^ 0x40
        const d = decodeTransaction(encodeTransaction({ ...t.tx, signature }))
        if (!d.ok) throw new Error(d.error.reason)
        return d.value
      }, v)
      for (const i of a.honest) {
        const got = await rpc<{ status: string; height?: number }>(a.net.rpcUrl(i), 'tx_get', [to0x(f.tx.hash)]).catch(() => ({
          status: 'down',
          height: undefined,
        }))
        v.expect(got.status !== 'committed', `node${i} committed the badly signed transfer at height ${got.height}`)
      }
      await forgedNeverCommits(f, v)
      v.done()
    }))

  test('a forged block: an already committed transfer again', () =>
    timed('forged: replay', async () => {
      await a.beginPhase()
      assert.ok(committed, 'the control test committed no transfer to replay')
      const original = committed
      const v = new Verdict()
      const f = await proposeForged(() => original.tx, v)
      for (const i of a.honest) {
        const got = await rpc<{ status: string; height?: number; ok?: boolean }>(a.net.rpcUrl(i), 'tx_get', [to0x(original.tx.hash)]).catch(() => ({
          status: 'down',
          height: undefined,
          ok: undefined,
        }))
        v.expect(
          got.status === 'committed' && got.height === original.height && got.ok === true,
          `node${i} now reports the original transfer (committed at ${original.height}) as ${JSON.stringify(got)}`,
        )
      }
      await forgedNeverCommits(f, v)
      v.done()
    }))

  test('a forged block: a transfer that skips nonces', () =>
    timed('forged: skipped nonce', async () => {
      await a.beginPhase()
      const v = new Verdict()
      const f = await proposeForged(
        (nonce) => createTransfer(account3().secretKey, { chainId: forgeChainId(), to: recipient(), amount: 1n, nonce: nonce + 5n }),
        v,
      )
      for (const i of a.honest) {
        const got = await rpc<{ status: string; height?: number }>(a.net.rpcUrl(i), 'tx_get', [to0x(f.tx.hash)]).catch(() => ({
          status: 'down',
          height: undefined,
        }))
        v.expect(got.status !== 'committed', `node${i} committed the nonce-skipping transfer at height ${got.height}`)
      }
      await forgedNeverCommits(f, v)
      v.done()
    }))

  test('after the forged blocks, a validator whose data/ is wiped syncs back and keeps running', () =>
    timed('forged: resync', async () => {
      await a.beginPhase()
      const target = (await a.maxHeight()) + 1
      await a.wipeAndRestart(2)
      const v = new Verdict()
      await v.check('validator 2 syncs back', async () => {
        await waitFor('validator 2 to answer RPC after its start', () => a.height(2).then((h) => h !== undefined), START_MS, 100)
        await a.net.waitHeight(target, [2], CATCH_UP_MS)
      })
      v.expect(
        a.alive(2),
        `validator 2 stopped: ${a
          .fatalLines(2)
          .map((l) => l.raw.slice(0, 300))
          .join(' | ')}`,
      )
      await v.check('after the resync', () => a.assertHealthy())
      v.done()
    }))
})
