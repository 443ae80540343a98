import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Testnet, rpc, runCli, waitFor } from './harness.js'
import { readDevKey } from './load.js'

/**
 * Validator-set changes on a running network, with real processes: four validators vote a fifth in with
 * `tallyd validator propose-add`; it syncs, joins and its precommits count. Then the five vote one of the four out;
 * the remaining four keep committing, one of them wiped meanwhile syncs from genesis across both changes, and they
 * still tolerate a crash. A full node follows the whole time and answers as the validators do.
 *
 * Node indexes: 0-3 the testnet's validators, 4 the validator that joins, 5 the full node. One network serves the
 * whole file; the tests run in order, each building on the previous one's set.
 */

const PARAMS = {
  timeouts: { proposeMs: 1000, proposeDeltaMs: 500, prevoteMs: 500, prevoteDeltaMs: 500, precommitMs: 500, precommitDeltaMs: 500, commitMs: 0 },
  emptyBlockIntervalMs: 400,
}

interface Member {
  address: string
  publicKey: string
  power: number
  peerId: string
  name: string
}
interface CommitView {
  height: number
  hash: string
  header: Record<string, string>
  commit: { signatures: { validator: string }[]; lastCommit: { height: number; signatures: { validator: string }[] } | null }
}
interface VoteResult {
  hash: string
  height: number
  id: string
  status: 'pending' | 'completed' | 'dropped'
  power?: number
  totalPower?: number
  fromHeight?: number | null
}

describe('validator set changes on a running network', { timeout: 420_000 }, () => {
  let net: Testnet
  let joiner: { publicKey: string; address: string; peerId: string }
  let full: { peerId: string }
  let removedAt = 0
  const FULL = 5
  const JOINER = 4

  /** Runs a `tallyd validator propose-…` command with --json and returns its result (asserting success). */
  const vote = async (home: number, args: string[]): Promise<VoteResult> => {
    const r = await runCli('tallyd', ['validator', ...args, '--home', net.home(home), '--json'], { timeoutMs: 150_000 })
    assert.equal(r.code, 0, `node${home} ${args[0]}: ${r.stderr}\n${net.logTail(home, 20)}`)
    return JSON.parse(r.stdout) as VoteResult
  }
  const validatorsAt = (node: number, height?: number) => rpc<Member[]>(net.rpcUrl(node), 'chain_getValidators', height === undefined ? [] : [height])
  const commitAt = (node: number, height: number) => rpc<CommitView>(net.rpcUrl(node), 'chain_getCommit', [height])
  /** Waits until the listed nodes are past `heights` more blocks than node `ref` now has. */
  const commitsContinue = async (ref: number, nodes: number[], heights = 3, timeoutMs = 90_000): Promise<number> => {
    const h = (await net.height(ref))!
    await net.waitHeight(h + heights, nodes, timeoutMs)
    return h + heights
  }
  /** Waits for a commit certificate of a height from `from` on that holds `address`'s precommit. */
  const certificateSignedBy = (node: number, address: string, from: number, timeoutMs = 90_000) => {
    let next = from
    return waitFor(
      `a commit certificate signed by ${address} from height ${from}`,
      async () => {
        const tip = (await net.height(node)) ?? 0
        for (; next <= tip; next++) {
          const c = await commitAt(node, next)
          if (c.commit.signatures.some((s) => s.validator === address)) return next
        }
        return undefined
      },
      timeoutMs,
      250,
    )
  }

  before(async () => {
    net = await Testnet.create(4, [], { spareNodes: 2 })
    net.setGenesisParams(PARAMS)
    // the full node's operator sends its peer id to the validators, who admit it in config.json
    full = await net.initNode(FULL, { fullNode: true })
    for (let i = 0; i < 4; i++)
      net.editConfig(i, (c) => {
        c.p2p.allowedPeerIds = [full.peerId]
      })
    net.startAll()
    net.start(FULL)
    await net.waitHeight(2, [0, 1, 2, 3])
  })

  after(async () => {
    await net?.destroy()
  })

  test('a fifth validator is voted in: it syncs, joins, and its precommits count', async () => {
    const info = await net.initNode(JOINER)
    joiner = { publicKey: info.publicKey!, address: info.address!, peerId: info.peerId }
    assert.match(joiner.publicKey, /^0x[0-9a-f]{64}$/)
    assert.match(joiner.address, /^0x[0-9a-f]{40}$/)
    // it runs from the start; the validators admit it once a set that holds it is scheduled
    net.start(JOINER)
    const add = ['propose-add', '--public-key', joiner.publicKey, '--peer-id', joiner.peerId, '--power', '1', '--name', 'node4']

    const first = await vote(0, add)
    assert.equal(first.status, 'pending')
    assert.deepEqual([first.power, first.totalPower], [1, 4])
    const pending = await runCli('tallyd', ['validator', 'pending', '--rpc', net.rpcUrl(1), '--json'])
    assert.equal(pending.code, 0, pending.stderr)
    const change = (
      JSON.parse(pending.stdout) as { changes: { id: string; power: number; passes: boolean; action: { type: string; name: string } }[] }
    ).changes.find((c) => c.id === first.id)
    assert.ok(change, 'the change is pending on another validator too')
    assert.deepEqual([change.action.type, change.action.name, change.power, change.passes], ['add', 'node4', 1, false])

    const second = await vote(1, add)
    assert.deepEqual([second.status, second.power], ['pending', 2])
    // the third vote brings more than two thirds of 4: the change completes at the end of its block H, for H + 2
    const third = await vote(2, add)
    assert.equal(third.status, 'completed', JSON.stringify(third))
    const H = third.height
    const before = await validatorsAt(0, H + 1)
    const afterSet = await validatorsAt(0, H + 2)
    assert.equal(before.length, 4)
    assert.equal(afterSet.length, 5)
    assert.deepEqual(
      afterSet.find((m) => m.address === joiner.address),
      { address: joiner.address, publicKey: joiner.publicKey, power: 1, peerId: joiner.peerId, name: 'node4' },
    )
    assert.equal(third.fromHeight ?? H + 2, H + 2)

    // a vote for a change that no longer applies is refused at submission, with the ledger's reason
    const late = await runCli('tallyd', ['validator', ...add, '--home', net.home(3)])
    assert.equal(late.code, 1)
    assert.match(late.stderr, /^tallyd: transaction rejected: bad_action: the key is already a validator/)

    // headers commit to the sets: H + 1 names the next set, which decides H + 2
    await net.waitHeight(H + 2, [0])
    const [c1, c2] = [await commitAt(0, H + 1), await commitAt(0, H + 2)]
    assert.notEqual(c1.header.validatorSetHash, c1.header.nextValidatorSetHash)
    assert.equal(c2.header.validatorSetHash, c1.header.nextValidatorSetHash)

    // the joiner syncs, reports itself a validator, and its precommits reach certificates
    await waitFor(
      'node4 syncs and reports itself a validator',
      async () => {
        const s = await net.status(JOINER).catch(() => undefined)
        return s !== undefined && s.validator === joiner.address && s.height >= H + 2 && !s.catchingUp
      },
      120_000,
      250,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${net.logTail(JOINER)}`)
    })
    const signed = await certificateSignedBy(0, joiner.address, H + 2)
    assert.ok(signed >= H + 2)
    await net.checkSameChain(signed, [0, 1, 2, 3, JOINER])
  })

  test('a validator voted out: the remaining four keep committing', async () => {
    const removed = (await validatorsAt(0)).find((m) => m.name === 'node3')!
    const remove = ['propose-remove', '--address', removed.address]
    // more than two thirds of 5 is 4 votes; the new validator's is one of them
    const votes: VoteResult[] = []
    for (const i of [0, 1, JOINER]) votes.push(await vote(i, remove))
    assert.deepEqual(
      votes.map((v) => v.status),
      ['pending', 'pending', 'pending'],
    )
    assert.deepEqual(
      votes.map((v) => v.totalPower),
      [5, 5, 5],
    )
    const last = await vote(2, remove)
    assert.equal(last.status, 'completed', JSON.stringify(last))
    removedAt = last.height + 2
    const set = await validatorsAt(0, removedAt)
    assert.deepEqual(set.map((m) => m.name).sort(), ['node0', 'node1', 'node2', 'node4'])
    assert.equal((await validatorsAt(0, removedAt - 1)).length, 5)
    // once it is out, node3 stops; the four go on
    await net.waitHeight(removedAt, [0])
    await net.stop(3)
    const reached = await commitsContinue(0, [0, 1, 2, JOINER])
    const c = await commitAt(0, reached)
    assert.ok(
      c.commit.signatures.every((s) => s.validator !== removed.address),
      'no signature of the removed validator counts',
    )
  })

  test('a validator wiped after the changes syncs from genesis across them, to the same blocks', async () => {
    await net.stop(2)
    net.wipeData(2)
    // the other three hold 3 of 4: the chain goes on meanwhile
    await commitsContinue(0, [0, 1, JOINER])
    net.start(2)
    const target = (await net.height(0))!
    await net.waitHeight(target, [2], 120_000)
    await net.checkSameChain(target, [0, 1, 2, JOINER, FULL])
    assert.ok(target > removedAt, 'the synced chain spans both changes')
    // the sets it rebuilt are the validators'
    for (const h of [1, removedAt - 1, removedAt]) assert.deepEqual(await validatorsAt(2, h), await validatorsAt(0, h), `set at height ${h}`)
  })

  test('the four still tolerate a crash: with one killed, the other three commit, the new validator among them', async () => {
    // node2 signs again before the next crash, so three live signers remain
    const back = (await net.height(0))!
    const node2 = (await validatorsAt(0)).find((m) => m.name === 'node2')!
    await certificateSignedBy(0, node2.address, back + 1)
    await net.kill9(1)
    const reached = await commitsContinue(0, [0, 2, JOINER], 4)
    // 3 of 4 power must sign: every certificate from now on carries the joiner's precommit
    const c = await commitAt(0, reached)
    assert.ok(
      c.commit.signatures.some((s) => s.validator === joiner.address),
      'the joiner signed the certificate',
    )
    assert.equal(c.commit.signatures.length, 3)
  })

  test('a full node follows every block, serves the same state, never signs, and relays transfers', async () => {
    const s = await net.status(FULL)
    assert.equal(s.validator, null)
    assert.equal(s.nodeId, full.peerId)
    assert.equal((await fetch(`${net.rpcUrl(FULL)}/health`)).status, 200)
    const to = readDevKey(net.keyFile('account0')).address
    // a transfer submitted to the full node reaches the validators and commits
    const r = await runCli(
      'tally',
      ['transfer', '--key', net.keyFile('faucet'), '--to', to, '--amount', '31', '--rpc', net.rpcUrl(FULL), '--json', '--genesis', net.genesisFile],
      { timeoutMs: 150_000 },
    )
    assert.equal(r.code, 0, r.stderr)
    const { height } = JSON.parse(r.stdout) as { height: number }
    const live = [0, 2, JOINER, FULL]
    await net.waitHeight(height, live)
    const balances = await Promise.all(live.map((i) => rpc<string>(net.rpcUrl(i), 'ledger_getBalance', [to])))
    assert.deepEqual(
      balances,
      live.map(() => balances[0]),
    )
    assert.equal(BigInt(balances[0]!) >= 31n, true)
    await net.checkSameChain(height, live)
    assert.deepEqual(await validatorsAt(FULL, height), await validatorsAt(0, height))
  })
})
