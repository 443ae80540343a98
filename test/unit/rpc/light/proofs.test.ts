import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey, formatAddress } from '../../../../crypto/address.js'
import { to0x } from '../../../../crypto/bytes.js'
import { createTransfer } from '../../../../ledger/transaction.js'
import type { CommitInfo } from '../../../../rpc/backend.js'
import { formatAccountProof, formatCommit, formatTxProof, formatValidator } from '../../../../rpc/format.js'
import { FailedVerificationError } from '../../../../rpc/light/errors.js'
import { decodeLightBlock, decodeValidatorSet, type LightBlock } from '../../../../rpc/light/lightBlock.js'
import { LightClient, type LightProvider } from '../../../../rpc/light/lightClient.js'
import { checkAccountAnswer, checkTxAnswer } from '../../../../rpc/light/proofs.js'
import { TrustedBlocks } from '../../../../rpc/light/trustedBlocks.js'
import { trustedGenesis } from '../../../../rpc/light/verifier.js'
import type { ValidatorSet } from '../../../../consensus/index.js'
import { genesisHash } from '../../../../genesis/genesis.js'
import { forgeAccountAnswer } from './forge.js'
import { TestChain, testKey } from './testChain.js'

/**
 * Proof answers end to end without a network: the node's backend over a real in-process chain answers, the answer
 * goes through JSON as on the wire, and the client's checks and the light client decide. Present and absent
 * accounts, and every part of an answer tampered with: the balance, the nonce, the proof, the root, each header
 * field, the commit's signatures and signers, and the validator set.
 */

type Json = Record<string, any>
const wire = <T>(v: T): any => JSON.parse(JSON.stringify(v))

const alice = testKey('alice')
const bob = testKey('bob')
const aliceAddress = addressFromPublicKey(alice.publicKey)
const bobAddress = addressFromPublicKey(bob.publicKey)
const nobody = addressFromPublicKey(testKey('nobody').publicKey)

/** A provider over the chain's backend, answers through JSON; `tamperSet` rewrites the set answered for a height. */
function provider(chain: TestChain, name = 'node', tamperSet?: (height: number, set: Json[]) => Json[]): LightProvider {
  return {
    name,
    async lightBlocks(from, to) {
      const out: LightBlock[] = []
      for (let h = from; h <= to; h++) {
        const c = wire(formatCommit((await chain.backend.getCommit(h)) as CommitInfo))
        const b = decodeLightBlock(c.header, c.commit)
        if (!b.ok) throw new FailedVerificationError(name, b.error.reason)
        out.push(b.value)
      }
      return out
    },
    async lightBlock(height) {
      return (await this.lightBlocks(height, height))[0]
    },
    async validators(height): Promise<ValidatorSet> {
      const v = chain.backend.getValidators(height)
      if (!Array.isArray(v)) throw new Error('unknown height')
      let json = wire(v.map(formatValidator)) as Json[]
      if (tamperSet) json = tamperSet(height, json)
      const set = decodeValidatorSet(json)
      if (!set.ok) throw new FailedVerificationError(name, set.error.reason)
      return set.value
    },
  }
}

function lightClientOf(chain: TestChain): LightClient {
  const blocks = new TrustedBlocks({ kind: 'genesis', genesisHash: genesisHash(chain.genesis) }, trustedGenesis(chain.genesis))
  return new LightClient({}, { blocks, now: () => Date.now() })
}

/** The whole client-side check of an account answer: the proof against the header, the header by the light client. */
async function verifyAccount(chain: TestChain, address: Uint8Array, answer: unknown, p = provider(chain), light = lightClientOf(chain)) {
  const c = checkAccountAnswer(address, answer, true)
  if (!c.ok) throw new FailedVerificationError(p.name, c.error.reason)
  const t = await light.verify(c.value.block, p)
  return { account: c.value.account, height: t.height }
}

async function accountAnswer(chain: TestChain, address: Uint8Array): Promise<Json> {
  const p = await chain.backend.proveAccount(address)
  if ('unavailable' in p) throw new Error(p.unavailable)
  return wire(formatAccountProof(address, p, true))
}

async function refused(p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FailedVerificationError, `${what}: expected a failed verification, got ${String(e)}`)
    assert.match(e.reason, pattern, what)
    return true
  })
}

describe('account proofs, end to end', () => {
  let chain: TestChain
  before(async () => {
    chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commit([createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: bobAddress, amount: 250n, nonce: 0n }).bytes])
    await chain.commitEmpty(2)
  })

  test('before the first block there is nothing to prove against', async () => {
    const empty = await TestChain.create()
    assert.deepEqual(await empty.backend.proveAccount(aliceAddress), { unavailable: 'no block is committed yet: there is no state root to prove against' })
  })

  test('a present account and an absent one verify, at the tip', async () => {
    for (const [address, balance, nonce] of [
      [aliceAddress, 750n, 1n],
      [bobAddress, 250n, 0n],
      [nobody, 0n, 0n],
    ] as const) {
      const answer = await accountAnswer(chain, address)
      assert.equal(answer.height, 3)
      assert.equal(answer.address, formatAddress(address))
      const v = await verifyAccount(chain, address, answer)
      assert.deepEqual(v, { account: { balance, nonce }, height: 3 })
    }
  })

  test('the plain fields tampered: balance, nonce, address, height', async () => {
    const answer = await accountAnswer(chain, aliceAddress)
    await refused(verifyAccount(chain, aliceAddress, { ...answer, balance: '751' }), /balance "751" is not the proven 750/, 'balance')
    await refused(verifyAccount(chain, aliceAddress, { ...answer, nonce: '0' }), /nonce "0" is not the proven 1/, 'nonce')
    await refused(verifyAccount(chain, aliceAddress, { ...answer, address: formatAddress(bobAddress) }), /answers for address/, 'address')
    await refused(verifyAccount(chain, aliceAddress, { ...answer, height: 2 }), /height 2 is not the header's 3/, 'height')
    // an absent account claimed to hold funds
    const none = await accountAnswer(chain, nobody)
    await refused(verifyAccount(chain, nobody, { ...none, balance: '5' }), /not the proven 0/, 'absent')
  })

  test("the proof tampered: a byte, another account's proof, no proof", async () => {
    const answer = await accountAnswer(chain, aliceAddress)
    const proof = String(answer.proof)
    const flipped = proof.slice(0, 20) + (proof[20] === '0' ? '1' : '0') + proof.slice(21)
    await refused(verifyAccount(chain, aliceAddress, { ...answer, proof: flipped }), /account proof does not hold/, 'flipped byte')
    const bobs = await accountAnswer(chain, bobAddress)
    await refused(verifyAccount(chain, aliceAddress, { ...answer, proof: bobs.proof }), /account proof does not hold/, "bob's proof")
    await refused(verifyAccount(chain, aliceAddress, { ...answer, proof: undefined }), /proof: expected/, 'no proof')
  })

  test('the root: a proof and a header consistent with a forged balance fail at the signatures', async () => {
    const forged = forgeAccountAnswer(await accountAnswer(chain, aliceAddress), 1_000_000n)
    assert.equal(checkAccountAnswer(aliceAddress, forged, true).ok, true, 'the forged proof holds against the forged root')
    await refused(verifyAccount(chain, aliceAddress, forged), /commit does not verify: bad signature/, 'forged root')
    // the root alone changed: the proof no longer holds
    const answer = await accountAnswer(chain, aliceAddress)
    await refused(
      verifyAccount(chain, aliceAddress, { ...answer, header: { ...answer.header, stateRoot: to0x(new Uint8Array(32).fill(3)) } }),
      /does not hold against the state root/,
      'root',
    )
  })

  test('every header field tampered', async () => {
    const answer = await accountAnswer(chain, aliceAddress)
    const h = answer.header as Json
    const other = to0x(new Uint8Array(32).fill(0xab))
    const changes: Json = {
      chainId: 'other-chain',
      height: 2,
      time: h.time + 1,
      previousBlockHash: other,
      txRoot: other,
      proposer: to0x(new Uint8Array(20).fill(1)),
      validatorSetHash: other,
      nextValidatorSetHash: other,
      lastCommitHash: other,
      evidenceRoot: other,
    }
    for (const [field, value] of Object.entries(changes)) {
      await refused(verifyAccount(chain, aliceAddress, { ...answer, header: { ...h, [field]: value } }), /./, field)
    }
    await refused(verifyAccount(chain, aliceAddress, { ...answer, header: { ...h, height: 'three' } }), /header.height/, 'malformed height')
  })

  test('the certificate tampered: a signature, the signers, an outsider, the block it names', async () => {
    const answer = await accountAnswer(chain, aliceAddress)
    const c = answer.commit as Json
    const sigs = c.signatures as Json[]
    const flip = (s: string) => s.slice(0, 10) + (s[10] === 'f' ? 'e' : 'f') + s.slice(11)
    const outsider = { validator: formatAddress(nobody), signature: sigs[0]!.signature }
    const cases: [string, Json, RegExp][] = [
      ['a signature', { ...c, signatures: sigs.map((s, i) => (i === 1 ? { ...s, signature: flip(s.signature) } : s)) }, /bad signature/],
      ['two signers', { ...c, signatures: sigs.slice(0, 2) }, /signers hold 2 of 4/],
      ['an outsider', { ...c, signatures: [...sigs.slice(0, 2), outsider] }, /is not a validator/],
      ['a duplicate', { ...c, signatures: [...sigs.slice(0, 3), sigs[0]] }, /signs twice/],
      ['the block', { ...c, blockHash: to0x(chain.blocks[0]!.hash) }, /another block/],
      ['the round', { ...c, round: 1 }, /bad signature/],
      ['no signatures', { ...c, signatures: [] }, /commit.signatures/],
    ]
    for (const [what, commit, pattern] of cases) await refused(verifyAccount(chain, aliceAddress, { ...answer, commit }), pattern, what)
  })
})

describe('proofs across a validator-set change', () => {
  test('the set answered for a height after the change is checked against the header', async () => {
    const chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    await chain.commit()
    const joiner = testKey('joiner')
    const from = await chain.govern(TestChain.addAction(joiner, 'joiner'), joiner)
    await chain.commitEmpty(from - chain.height + 1)
    assert.equal(chain.sets.at(chain.height).validators.length, 5)
    const answer = await accountAnswer(chain, aliceAddress)
    // the light client trusts the genesis set; the new set is fetched, and a lie about it is caught
    const swapped = (_h: number, set: Json[]) => set.map((m, i) => (i === 0 ? { ...m, power: 2 } : m))
    await refused(verifyAccount(chain, aliceAddress, answer, provider(chain, 'liar', swapped)), /not the one the header names/, 'set')
    const dropped = (_h: number, set: Json[]) => set.slice(1)
    await refused(verifyAccount(chain, aliceAddress, answer, provider(chain, 'liar', dropped)), /not the one the header names/, 'member dropped')
    const v = await verifyAccount(chain, aliceAddress, answer)
    assert.equal(v.height, chain.height)
    assert.equal(v.account.balance, 1000n)
  })
})

describe('transaction proofs', () => {
  test('a committed transaction verifies; its status, index, result and proof tampered do not', async () => {
    const chain = await TestChain.create({ balances: [[aliceAddress, 1000n]] })
    const txs = [0n, 1n, 2n].map((nonce) => createTransfer(alice.secretKey, { chainId: chain.genesis.chainId, to: bobAddress, amount: 1n, nonce }))
    await chain.commit(txs.map((t) => t.bytes))
    await chain.commitEmpty(1)
    const answerOf = async (hash: Uint8Array) => {
      const r = await chain.backend.proveTx(hash)
      return wire(formatTxProof(hash, r.lookup, r.proof)) as Json
    }
    const hash = txs[1]!.hash
    const answer = await answerOf(hash)
    assert.deepEqual([answer.status, answer.height, answer.index, answer.ok], ['committed', 1, 1, true])
    const c = checkTxAnswer(hash, answer)
    assert.ok(c.ok && c.value.status === 'committed')
    assert.equal((await lightClientOf(chain).verify(c.value.block, provider(chain))).height, 1)

    const bad: [string, Json, RegExp, 'malformed' | 'unproven'][] = [
      ['failed', { ...answer, ok: false, error: 'insufficient_funds' }, /only transactions that applied/, 'unproven'],
      ['index', { ...answer, index: 2 }, /index 2 is not the proven 1/, 'unproven'],
      ['height', { ...answer, height: 2 }, /height 2 is not the header's 1/, 'malformed'],
      ['proof', { ...answer, proof: (await answerOf(txs[0]!.hash)).proof }, /inclusion proof does not hold/, 'unproven'],
      ['txRoot', { ...answer, header: { ...answer.header, txRoot: to0x(new Uint8Array(32)) } }, /inclusion proof does not hold/, 'unproven'],
      ['hash', { ...answer, hash: to0x(txs[0]!.hash) }, /answers for transaction/, 'malformed'],
      ['status', { ...answer, status: 'done' }, /not one a transaction can have/, 'malformed'],
    ]
    for (const [what, a, pattern, code] of bad) {
      const r = checkTxAnswer(hash, a)
      assert.equal(r.ok, false, what)
      if (!r.ok) {
        assert.match(r.error.reason, pattern, what)
        assert.equal(r.error.code, code, what)
      }
    }
    // a header changed under a valid inclusion proof: the light client refuses it
    const other = { ...answer, header: { ...answer.header, stateRoot: to0x(new Uint8Array(32).fill(9)) } }
    const o = checkTxAnswer(hash, other)
    assert.ok(o.ok && o.value.status === 'committed')
    await refused(lightClientOf(chain).verify(o.value.block, provider(chain)), /another block/, 'header')
    // an unknown transaction is answered plainly, without a proof
    const unknown = await answerOf(new Uint8Array(32).fill(5))
    assert.deepEqual(unknown, { hash: to0x(new Uint8Array(32).fill(5)), status: 'unknown' })
    assert.deepEqual(checkTxAnswer(new Uint8Array(32).fill(5), unknown), { ok: true, value: { status: 'unknown', hash: to0x(new Uint8Array(32).fill(5)) } })
  })
})
