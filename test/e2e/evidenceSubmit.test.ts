import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { buildCommitCertificate, conflictingCommitEvidence, createValidatorSet, voteSignBytes, type CommitCertificate } from '../../consensus/index.js'
import { addressFromPublicKey, encodeCanonical, formatAddress, fromHex, keyPairFromSeed, sha256, sign, to0x } from '../../crypto/index.js'
import { forkEndpoint } from '../unit/rpc/light/forkEndpoint.js'
import { Testnet, rpc, runCli, waitFor } from './harness.js'
import { readDevKey } from './load.js'

/**
 * Accountability for a fork, with real processes: two validators sign another block in the round of a block the
 * network committed (what a light client finds when an endpoint serves a fork), the evidence the two commits prove is
 * submitted to a full node over JSON-RPC, and the network commits it.
 */

const PARAMS = {
  timeouts: { proposeMs: 1000, proposeDeltaMs: 500, prevoteMs: 500, prevoteDeltaMs: 500, precommitMs: 500, precommitDeltaMs: 500, commitMs: 0 },
  emptyBlockIntervalMs: 400,
}
const CHAIN_ID = 'tally-e2e'

interface CommitJson {
  commit: { height: number; round: number; blockHash: string; signatures: { validator: string; signature: string }[] }
}
interface ForkJson {
  height: number
  endpoints: { endpoint: string; blockHash: string }[]
  rounds: [number, number]
  validators: string[]
  evidence: string[]
  submitted: { endpoint: string; accepted: number; ahead?: number; error?: string }[]
}
interface EvidenceJson {
  kind: string
  validator: string
  height: number
  round: number
  type: string
  committedAt: number
}

const bytes = (hex: string) => fromHex(hex)!

describe('evidence of a fork submitted over RPC', { timeout: 150_000 }, () => {
  let net: Testnet
  const FULL = 4

  before(async () => {
    net = await Testnet.create(4, [], { spareNodes: 1 })
    net.setGenesisParams(PARAMS)
    const full = await net.initNode(FULL, { fullNode: true })
    for (let i = 0; i < 4; i++)
      net.editConfig(i, (c) => {
        c.p2p.allowedPeerIds = [full.peerId]
      })
    net.startAll()
    net.start(FULL)
    await net.waitHeight(2, [0, 1, 2, 3, FULL])
  })

  after(async () => {
    await net?.destroy()
  })

  test('two validators sign another block in a committed round: a full node gossips the evidence, and a block carries it', async () => {
    const height = (await net.height(0))!
    // the full node takes evidence of heights it has reached
    await net.waitHeight(height, [FULL])
    const { commit } = await rpc<CommitJson>(net.rpcUrl(0), 'chain_getCommit', [height])
    const real: CommitCertificate = {
      height: commit.height,
      round: commit.round,
      valueId: bytes(commit.blockHash),
      signatures: commit.signatures.map((s) => ({ validator: bytes(s.validator), signature: bytes(s.signature) })),
    }
    const members = await rpc<{ address: string; publicKey: string; power: number }[]>(net.rpcUrl(0), 'chain_getValidators', [height])
    const set = createValidatorSet(members.map((m) => ({ address: bytes(m.address), publicKey: bytes(m.publicKey), power: m.power })))
    assert.ok(set.ok)
    // validators 0 and 1 (half the power: more than a third) precommit another block in the same round
    const keys = [0, 1].map((i) => keyPairFromSeed(readDevKey(join(net.home(i), 'validator_key.json')).secretKey))
    const other = sha256(encodeCanonical(['another block', height]))
    const precommits = keys.map((k) => {
      const vote = { type: 'precommit' as const, height, round: real.round, valueId: other, validator: addressFromPublicKey(k.publicKey) }
      return { ...vote, signature: sign(k.secretKey, voteSignBytes(CHAIN_ID, vote)) }
    })
    const fork = buildCommitCertificate(height, real.round, other, precommits)
    const items = conflictingCommitEvidence(CHAIN_ID, set.value, real, fork)
    // whichever of the two signed the committed block is accountable (the certificate holds three of four at least)
    const accountable = precommits.map((p) => formatAddress(p.validator)).filter((a) => commit.signatures.some((s) => s.validator === a))
    assert.ok(accountable.length >= 1)
    assert.equal(items.length, accountable.length)
    for (const item of items) {
      const r = await rpc<{ hash: string; status: string }>(net.rpcUrl(FULL), 'evidence_submit', [to0x(item)])
      assert.deepEqual(r, { hash: to0x(sha256(item)), status: 'new' }, net.logTail(FULL, 20))
    }
    // the full node gossiped it to the validators; the next proposers put it in a block
    const committed = await waitFor(
      'the evidence committed',
      async () => {
        const list = await rpc<EvidenceJson[]>(net.rpcUrl(2), 'chain_getEvidence')
        const ours = list.filter((e) => e.height === height && e.type === 'precommit')
        return ours.length === items.length ? ours : undefined
      },
      60_000,
      250,
    )
    assert.deepEqual(committed.map((e) => e.validator).sort(), [...accountable].sort())
    for (const e of committed) {
      assert.equal(e.kind, 'conflictingVotes')
      assert.equal(e.round, real.round)
      assert.ok(e.committedAt > height)
    }
    for (const e of committed) {
      const carrier = await rpc<{ evidence: EvidenceJson[] }>(net.rpcUrl(3), 'chain_getBlock', [e.committedAt])
      assert.ok(
        carrier.evidence.some((x) => x.validator === e.validator && x.height === height),
        `block ${e.committedAt} carries it`,
      )
    }
    // committed: every node answers known, the full node too
    await net.waitHeight(committed[0]!.committedAt, [0, 1, 2, 3, FULL])
    for (const node of [1, FULL]) {
      const again = await rpc<{ hash: string; status: string }>(net.rpcUrl(node), 'evidence_submit', [to0x(items[0]!)])
      assert.deepEqual(again, { hash: to0x(sha256(items[0]!)), status: 'known' }, `node${node}`)
    }
    await net.checkSameChain(committed[0]!.committedAt, [0, 1, 2, 3, FULL])
  })
  test('a wallet that meets a fork of two validators sends the evidence to its endpoints, and the chain commits it', async () => {
    // an endpoint in front of node0 serves, at the tip, a header signed by validators 0 and 1 alone in the round the
    // network committed; the wallet, with two honest witnesses, finds the fork and sends the evidence to every endpoint
    const keys = [0, 1].map((i) => keyPairFromSeed(readDevKey(join(net.home(i), 'validator_key.json')).secretKey))
    const forger = await forkEndpoint(net.rpcUrl(0), { chainId: CHAIN_ID, signers: keys, balance: 1_000_000n })
    const light = mkdtempSync(join(tmpdir(), 'tally-e2e-fork-light-'))
    try {
      const faucet = formatAddress(addressFromPublicKey(keyPairFromSeed(readDevKey(net.keyFile('faucet')).secretKey).publicKey))
      const endpoints = [forger.url, net.rpcUrl(FULL), net.rpcUrl(2)]
      const r = await runCli('tally', ['balance', faucet, '--rpc', endpoints.join(','), '--genesis', net.genesisFile, '--json'], {
        env: { TALLY_LIGHT_DIR: light },
      })
      assert.equal(r.stdout, '', 'the forged balance was shown')
      assert.equal(r.code, 1, r.stderr)
      const error = JSON.parse(r.stderr.trim().split('\n').at(-1)!).error as { reason: string; fork: ForkJson }
      assert.equal(error.reason, 'conflicting_headers', r.stderr)
      const fork = error.fork
      assert.equal(fork.height, forger.forgedHeight)
      assert.equal(fork.rounds[0], fork.rounds[1])
      // accountable: those of the two that also signed a certificate of that height the wallet compared with, each
      // witness's own (each node keeps the 2f+1 precommits it collected, so certificates of one block may differ); the
      // witness the error names is one of them
      const signersAt = async (endpoint: string) => {
        const { commit } = await rpc<CommitJson>(endpoint, 'chain_getCommit', [fork.height])
        return keys.map((k) => formatAddress(addressFromPublicKey(k.publicKey))).filter((a) => commit.signatures.some((s) => s.validator === a))
      }
      const witness = fork.endpoints[1]!
      assert.notEqual(witness.endpoint, forger.url)
      const named = await signersAt(witness.endpoint)
      const any = new Set([...(await signersAt(net.rpcUrl(FULL))), ...(await signersAt(net.rpcUrl(2)))])
      assert.ok(named.length >= 1)
      assert.ok(
        named.every((a) => fork.validators.includes(a)) && fork.validators.every((a) => any.has(a)),
        `${fork.validators} against ${named} and ${[...any]}`,
      )
      const accountable = fork.validators
      assert.equal(fork.evidence.length, accountable.length)
      // every endpoint took all of it, or answered that it had not reached its height yet: the two honest ones, and
      // node0 behind the forger
      assert.deepEqual(
        [...fork.submitted].sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1)).map((x) => [x.endpoint, x.accepted + (x.ahead ?? 0), x.error]),
        [...endpoints].sort().map((endpoint) => [endpoint, accountable.length, undefined]),
        r.stderr,
      )
      const committed = await waitFor(
        'the evidence the wallet sent committed',
        async () => {
          const list = await rpc<EvidenceJson[]>(net.rpcUrl(3), 'chain_getEvidence')
          const ours = list.filter((e) => e.height === fork.height && e.type === 'precommit')
          return ours.length === accountable.length ? ours : undefined
        },
        60_000,
        250,
      )
      assert.deepEqual(committed.map((e) => e.validator).sort(), [...accountable].sort())
      await net.waitHeight(committed[0]!.committedAt, [0, 1, 2, 3, FULL])
      await net.checkSameChain(committed[0]!.committedAt, [0, 1, 2, 3, FULL])
    } finally {
      await forger.close()
      rmSync(light, { recursive: true, force: true })
    }
  })
})
