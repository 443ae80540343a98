import assert from 'node:assert/strict'
import type { BlockView } from '../../e2e/harness.js'
import { rpc } from '../../e2e/harness.js'
import { DelayRelay } from './delayRelay.js'
import { fakeClockEnv } from './fakeClock.js'
import type { FaultNetwork, WalletRun } from './faultNetwork.js'
import { FAULT_SUITE_PARAMS } from './namespaceTestnet.js'
import type { PacketFilter } from './packetFilter.js'
import { TransferLoad } from './transferLoad.js'

/**
 * The faults, each a function of a running {@link FaultNetwork} that injects the fault, checks what must hold
 * while it lasts, heals it (also when a check fails), and checks agreement, durability and conservation after it
 * (`FaultNetwork.settle`). Each resolves with a one-line account of what it saw. A fault is held until a condition
 * is met (the majority committed N heights), or for a bounded time derived from the genesis timeouts while the
 * expected state is asserted throughout; never for a fixed sleep.
 */

/** Consensus time of `rounds` rounds that all time out, from the suite's genesis timeouts. */
function roundsMs(rounds: number): number {
  const t = FAULT_SUITE_PARAMS.timeouts
  let ms = 0
  for (let r = 0; r < rounds; r++) {
    ms += t.proposeMs + t.prevoteMs + t.precommitMs + r * (t.proposeDeltaMs + t.prevoteDeltaMs + t.precommitDeltaMs)
  }
  return ms
}

const pollMs = 200
const tick = () => new Promise((r) => setTimeout(r, pollMs))

function filterOf(f: FaultNetwork): PacketFilter {
  if (f.filter === undefined) throw new Error('this fault needs iptables')
  return f.filter
}

function committed(w: WalletRun, what: string): asserts w is WalletRun & { hash: string; height: number } {
  assert.equal(w.code, 0, `${what}: tally transfer exited ${w.code}: ${w.stderr.trim()}`)
  assert.equal(w.status, 'committed', `${what}: ${JSON.stringify(w)}`)
}

async function blocks(f: FaultNetwork, node: number, from: number, to: number): Promise<BlockView[]> {
  const out: BlockView[] = []
  for (let h = from; h <= to; h++) {
    const b = await rpc<BlockView | null>(f.net.rpcUrl(node), 'chain_getBlock', [h])
    if (b === null) throw new Error(`node${node} has no block ${h}`)
    out.push(b)
  }
  return out
}

const proposer = (b: BlockView) => String(b.header.proposer).toLowerCase()
const signers = (b: BlockView) => (b.commit as { signatures: { validator: string }[] }).signatures.map((s) => s.validator.toLowerCase())

/**
 * A 2|2 partition: no side holds 2f+1 = 3 of 4, so nothing commits while split (beyond a height whose
 * precommits were already on the wire), a transfer submitted to one side stays pending, and once healed the chain
 * resumes and commits it.
 */
export async function partitionTwoTwo(
  f: FaultNetwork,
  groups: readonly [readonly number[], readonly number[]] = [
    [0, 1],
    [2, 3],
  ],
): Promise<string> {
  const { net } = f
  const filter = filterOf(f)
  const holdMs = roundsMs(3)
  let splitAt = 0
  let hash: string
  try {
    await filter.partition(groups)
    splitAt = await net.maxHeight()
    const w = await f.transfer([groups[0][0]!], { wait: false })
    assert.equal(w.code, 0, `tally transfer --no-wait during the split: ${w.stderr}`)
    hash = w.hash!
    // held for three full rounds of timeouts, asserting all along that no quorum forms
    const until = Date.now() + holdMs
    while (Date.now() < until) {
      const h = await net.maxHeight()
      assert.ok(h <= splitAt + 1, `height ${h} committed during a 2|2 split made at height ${splitAt}`)
      await tick()
    }
    const t = await rpc<{ status: string }>(net.rpcUrl(groups[0][0]!), 'tx_get', [hash])
    assert.notEqual(t.status, 'committed', 'a transfer committed while no side had a quorum')
  } finally {
    await f.heal()
  }
  const healedAt = Date.now()
  await net.waitHeight(splitAt + 3, net.all, 60_000)
  const resumeMs = Date.now() - healedAt
  const seen = await f.waitCommitted(hash, 0)
  const upTo = await f.settle()
  return `${groups.map((g) => g.join(',')).join('|')} split at height ${splitAt}, held ${holdMs} ms with nothing past ${splitAt + 1}; commits resumed ${resumeMs} ms after healing; the pending transfer committed at ${seen.height}; agreed up to ${upTo}`
}

/**
 * One validator cut off from the rest: the three others (a quorum) go on well past it with transfers, it commits
 * nothing alone, and once healed it catches up by block sync to the same chain.
 */
export async function isolatedCatchesUp(f: FaultNetwork, isolated = 3, lead = 20): Promise<string> {
  const { net } = f
  const majority = net.all.filter((i) => i !== isolated)
  let cutAt = 0
  try {
    await filterOf(f).isolate(isolated)
    cutAt = await net.maxHeight()
    committed(await f.transfer(majority), 'transfer through the majority')
    await net.waitHeight(cutAt + lead, majority, 60_000)
    const h = await net.height(isolated)
    assert.ok(h !== undefined && h <= cutAt + 1, `isolated node${isolated} is at height ${h}, cut off at ${cutAt}`)
  } finally {
    await f.heal()
  }
  const healedAt = Date.now()
  const target = await net.maxHeight(majority)
  await net.waitHeight(target, [isolated], 60_000)
  const catchUpMs = Date.now() - healedAt
  const upTo = await f.settle()
  return `node${isolated} cut off at ${cutAt}, majority reached ${target}; caught up in ${catchUpMs} ms; agreed up to ${upTo}`
}

/**
 * One-way loss: everything validator `mute` sends to the others is dropped, what they send still reaches it. The
 * others (a quorum) go on; none of their commit certificates carries its precommit; after healing all agree.
 */
export async function oneWayLoss(f: FaultNetwork, mute = 2, heights = 8): Promise<string> {
  const { net } = f
  const others = net.all.filter((i) => i !== mute)
  const address = (await f.validatorAddress(mute)).toLowerCase()
  let from = 0
  let muteHeight: number | undefined
  try {
    await filterOf(f).dropOutgoing(mute)
    from = await net.maxHeight()
    committed(await f.transfer(others), 'transfer through the others')
    await net.waitHeight(from + heights, others, 60_000)
    for (const b of await blocks(f, others[0]!, from + 2, from + heights)) {
      assert.ok(!signers(b).includes(address), `the certificate of block ${b.height} carries node${mute}'s precommit, whose packets are all dropped`)
    }
    muteHeight = await net.height(mute)
  } finally {
    await f.heal()
  }
  const upTo = await f.settle()
  return `node${mute}'s packets to the others dropped from height ${from}; the others reached ${from + heights} without its votes while it stood at ${muteHeight ?? 'no answer'}; agreed up to ${upTo}`
}

/**
 * A frozen validator (SIGSTOP): the others go on, and the wallet given the frozen node as its first endpoint
 * fails over to the second (the frozen node accepts connections but never answers: only a request timeout gets
 * the wallet past it). After SIGCONT the validator catches up.
 */
export async function pausedValidatorAndEndpoint(f: FaultNetwork, paused = 1, fallback = 2): Promise<string> {
  const { net } = f
  const others = net.all.filter((i) => i !== paused)
  let w: WalletRun
  try {
    net.pause(paused)
    const from = await net.maxHeight(others)
    w = await f.transfer([paused, fallback])
    committed(w, `wallet with --rpc node${paused} (paused),node${fallback}`)
    assert.ok(w.elapsedMs < 30_000, `the wallet took ${w.elapsedMs} ms to get past a paused endpoint`)
    await net.waitHeight(from + 5, others, 60_000)
    assert.equal(await net.height(paused, 1_000), undefined, `paused node${paused} answered RPC`)
  } finally {
    await f.heal()
  }
  const resumedAt = Date.now()
  const target = await net.maxHeight(others)
  await net.waitHeight(target, [paused], 60_000)
  const catchUpMs = Date.now() - resumedAt
  const upTo = await f.settle()
  return `wallet committed at ${w.height} in ${w.elapsedMs} ms past paused node${paused}; after SIGCONT it caught up to ${target} in ${catchUpMs} ms; agreed up to ${upTo}`
}

/**
 * Added latency: validator `slow`'s p2p connections run through relays that hold every chunk `delayMs` each
 * way. First its direct links are refused until it has no peer left (so no connection made before the detour
 * survives it), then the relays take its new connections, until it is connected to every other validator again,
 * through them. It keeps committing with the others, and a transfer submitted through its RPC, which only it
 * holds at first, commits.
 */
export async function addedLatency(f: FaultNetwork, slow = 3, delayMs = 150, heights = 8): Promise<string> {
  const { net, host } = f
  const others = net.all.filter((i) => i !== slow)
  const address = (await f.validatorAddress(slow)).toLowerCase()
  const relays = new Map<number, DelayRelay>()
  let from = 0
  let proposedBySlow = 0
  let w: WalletRun
  const peers = async (nodes: readonly number[], count: number) => (await Promise.all(nodes.map((i) => net.status(i)))).every((s) => s?.peers === count)
  try {
    for (const j of net.all) {
      // each on a port the system chooses: no clash with anything else listening on this machine
      const r = await DelayRelay.start({ listenHost: host.hostAddress, listenPort: 0, targetHost: host.address(j), targetPort: net.p2pPort(j), delayMs })
      relays.set(j, r)
      f.relays.push(r)
    }
    await filterOf(f).refuse(slow)
    f.budget.mark(`node${slow}'s direct links refused`)
    await f.waitFor(
      `node${slow} without peers, and the others without node${slow}`,
      async () => (await peers([slow], 0)) && peers(others, net.size - 2),
      30_000,
    )
    await filterOf(f).detour(
      slow,
      (j) => net.p2pPort(j),
      (j) => relays.get(j)!.port,
    )
    f.budget.mark(`node${slow}'s connections detoured through relays on ports ${[...relays.values()].map((r) => r.port).join(',')}`)
    await f.waitFor(
      `node${slow} connected to its ${net.size - 1} peers through the relays`,
      async () => (await peers(net.all, net.size - 1)) && [...relays.values()].reduce((s, r) => s + r.connections, 0) >= net.size - 1,
      30_000,
    )
    from = await net.maxHeight()
    w = await f.transfer([slow])
    committed(w, `transfer through the delayed node${slow}`)
    await net.waitHeight(from + heights, net.all, 60_000)
    for (const b of await blocks(f, 0, from + 1, from + heights)) if (proposer(b) === address) proposedBySlow++
  } finally {
    await f.heal()
  }
  const bytes = [...relays.values()].reduce((s, r) => s + r.bytes, 0)
  const connections = [...relays.values()].reduce((s, r) => s + r.connections, 0)
  const upTo = await f.settle()
  return `node${slow} behind ${delayMs} ms each way from height ${from}: a transfer through it committed at ${w.height} (${w.elapsedMs} ms), it followed to ${from + heights} and proposed ${proposedBySlow} of those ${heights} blocks; ${connections} relayed connections, ${bytes} bytes; agreed up to ${upTo}`
}

/**
 * A validator whose wall clock is off by `offset` (libfaketime), restarted so: it catches up and follows the
 * chain, the chain goes on, no committed block's time is ahead of the real clock by more than the node's drift
 * bound (5 s), and block times increase.
 */
export async function skewedClock(f: FaultNetwork, offset: '+10m' | '-10m', skewed = 2, heights = 10): Promise<string> {
  const { net } = f
  const others = net.all.filter((i) => i !== skewed)
  const address = (await f.validatorAddress(skewed)).toLowerCase()
  let from = 0
  let proposedBySkewed = 0
  try {
    await net.stop(skewed)
    net.start(skewed, { offset, env: fakeClockEnv(offset) })
    await net.waitHeight(await net.maxHeight(others), [skewed], 60_000)
    from = await net.maxHeight()
    committed(await f.transfer(others), `transfer with node${skewed} at ${offset}`)
    await net.waitHeight(from + heights, net.all, 60_000)
    const window = await blocks(f, others[0]!, from, from + heights)
    const now = Date.now()
    for (let k = 0; k < window.length; k++) {
      const b = window[k]!
      const time = Number(b.header.time)
      assert.ok(time <= now + 5_000, `block ${b.height} carries time ${new Date(time).toISOString()}, ahead of the real clock`)
      if (k > 0) assert.ok(time > Number(window[k - 1]!.header.time), `block ${b.height}'s time does not increase`)
      if (k > 0 && proposer(b) === address) proposedBySkewed++
    }
  } finally {
    await f.heal()
  }
  const upTo = await f.settle()
  return `node${skewed} at ${offset} followed the chain from ${from} to ${from + heights} and proposed ${proposedBySkewed} of those ${heights} blocks; agreed up to ${upTo}`
}

/**
 * Repeated kill -9 under load: three validators in turn are killed, the others commit on, each restarts and
 * catches up; node1 is killed a second time as soon as it answers again (mid catch-up). The load keeps every
 * admitted transfer's hash: any that one validator reports committed must be committed at the same height on all.
 */
export async function killUnderLoad(f: FaultNetwork): Promise<string> {
  const { net } = f
  const running = () => net.all.filter((i) => net.running(i)).map((i) => net.rpcUrl(i))
  const load = new TransferLoad(f.key('account1'), f.chainId, running, f.key('account2').address)
  await load.start(20)
  const kills: string[] = []
  try {
    await f.waitFor('the load admitted 20 transfers', () => load.admitted.length >= 20, 30_000)
    for (const k of [0, 1, 3]) {
      const others = net.all.filter((i) => i !== k)
      await net.kill9(k)
      const h = await net.maxHeight(others)
      await net.waitHeight(h + 2, others, 60_000)
      net.start(k)
      if (k === 1) {
        await f.waitFor(`node${k} answering after a restart`, async () => (await net.height(k)) !== undefined, 60_000, 50)
        await net.kill9(k)
        net.start(k)
      }
      const t0 = Date.now()
      await net.waitHeight(await net.maxHeight(others), [k], 60_000)
      kills.push(`node${k} ${Date.now() - t0} ms`)
    }
    committed(await f.transfer(net.all), 'transfer after the kills')
  } finally {
    await load.stop()
    f.audit.sawAdmitted(load.admitted)
    await f.heal()
  }
  const upTo = await f.settle()
  const done = await rpc<{ nonce: string }>(net.rpcUrl(0), 'ledger_getAccount', [f.key('account1').address])
  assert.ok(BigInt(done.nonce) > 0n, 'no load transfer committed')
  return `${load.admitted.length} load transfers admitted, ${done.nonce} committed; catch-up after restart: ${kills.join(', ')}; agreed up to ${upTo}`
}
