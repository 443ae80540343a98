import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey, formatAddress } from '../../../crypto/address.js'
import { to0x } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { actionId, type GovernanceAction } from '../../../ledger/governance.js'
import { encodeTransaction, signGovernanceTransaction, txHash } from '../../../ledger/transaction.js'
import { peerIdOf } from '../../../node/p2p/peerId.js'
import type { SubmitErrorCode } from '../../../rpc/backend.js'
import { APPLICATION_ERROR_CODES, GENERIC_APPLICATION_ERROR, type ApplicationReason } from '../../../rpc/errors.js'
import { aliceSeed, rpc, startHarness, type Harness } from './harness.js'

/** The validator-set methods (`chain_getValidators [height]`, `chain_getCommit`, `chain_getPendingChanges`) and governance votes. */

const call = (method: string, params?: unknown) => ({ jsonrpc: '2.0', id: 1, method, ...(params === undefined ? {} : { params }) })
const newcomer = keyPairFromSeed(new Uint8Array(32).fill(7))
const PEER = peerIdOf(keyPairFromSeed(new Uint8Array(32).fill(8)).publicKey)
const addNewcomer: GovernanceAction = { type: 'add', publicKey: newcomer.publicKey, power: 5, peerId: PEER, name: 'newcomer' }

function vote(seed: Uint8Array, action: GovernanceAction, nonce = 0n, chainId = 'tally-test') {
  const tx = signGovernanceTransaction({ chainId, from: keyPairFromSeed(seed).publicKey, nonce, action }, seed)
  const bytes = encodeTransaction(tx)
  return { bytes, hash: txHash(bytes) }
}

describe('validator-set methods', () => {
  let h: Harness
  const validatorSeed = new Uint8Array(32).fill(9) // the test backend's validator key
  before(async () => {
    h = await startHarness()
  })
  after(async () => {
    await h.close()
  })

  test("chain_getValidators: the next height's set by default, each member with its name; a set by height", async () => {
    const v = h.backend.validatorKey
    const expected = {
      address: formatAddress(addressFromPublicKey(v.publicKey)),
      publicKey: to0x(v.publicKey),
      power: 10,
      peerId: '12D3KooWTest',
      name: 'test-validator',
    }
    assert.deepEqual((await rpc(h.url, call('chain_getValidators'))).json.result, [expected])
    // a change scheduled from height 2 (the tip is 0, so the node knows heights 1 and 2)
    const joined = { address: addressFromPublicKey(newcomer.publicKey), publicKey: newcomer.publicKey, power: 5n, peerId: PEER, name: 'newcomer' }
    h.backend.validatorSets.push({ fromHeight: 2, validators: [h.backend.validatorSets[0]!.validators[0]!, joined] })
    assert.deepEqual((await rpc(h.url, call('chain_getValidators', [1]))).json.result, [expected])
    const at2 = (await rpc(h.url, call('chain_getValidators', ['2']))).json.result
    assert.deepEqual(
      at2.map((m: { name: string }) => m.name),
      ['test-validator', 'newcomer'],
    )
    assert.equal(at2[1].power, 5)
    assert.deepEqual((await rpc(h.url, call('chain_getValidators', { height: 1 }))).json.result, [expected])
  })

  test('chain_getValidators: a height below 1 is a parameter error, one beyond the known sets an unknown_height error', async () => {
    for (const bad of [0, '0', -1, 1.5, 'x', '01']) {
      const e = (await rpc(h.url, call('chain_getValidators', [bad]))).json.error
      assert.equal(e.code, -32602, JSON.stringify(bad))
      assert.equal(e.data.param, 'height')
    }
    const e = (await rpc(h.url, call('chain_getValidators', [3]))).json.error
    assert.equal(e.code, APPLICATION_ERROR_CODES.unknown_height)
    assert.equal(e.data.reason, 'unknown_height')
    assert.equal(e.data.height, 3)
    assert.match(e.message, /height 3 is not known yet/)
  })

  test('chain_getCommit: the header and the certificate of a committed height, as chain_getBlock shows them; null past the tip', async () => {
    assert.equal((await rpc(h.url, call('chain_getCommit', [1]))).json.result, null)
    const b = h.backend.commitBlock()
    const block = (await rpc(h.url, call('chain_getBlock', [b.height]))).json.result
    const commit = (await rpc(h.url, call('chain_getCommit', [b.height]))).json.result
    assert.deepEqual(commit, { height: block.height, hash: block.hash, header: block.header, commit: block.commit })
    assert.equal((await rpc(h.url, call('chain_getCommit', [b.height + 1]))).json.result, null)
    assert.equal((await rpc(h.url, call('chain_getCommit', [0]))).json.error.code, -32602)
    assert.equal((await rpc(h.url, call('chain_getCommit', []))).json.error.code, -32602, 'the height is required')
  })

  test('chain_getPendingChanges: each change with its action, votes, the power collected and whether it passes', async () => {
    const empty = (await rpc(h.url, call('chain_getPendingChanges'))).json.result
    assert.deepEqual(empty.changes, [])
    assert.equal(empty.scheduled, null)
    const voter = addressFromPublicKey(h.backend.validatorKey.publicKey)
    const remove: GovernanceAction = { type: 'remove', address: voter }
    h.backend.pendingChanges = {
      height: 8,
      totalPower: 30n,
      voteExpiryHeights: 100,
      changes: [
        { id: actionId(addNewcomer), action: addNewcomer, votes: [{ address: voter, height: 5 }], power: 10n, forced: false },
        { id: actionId(remove), action: remove, votes: [], power: 0n, forced: true },
      ],
      scheduled: {
        fromHeight: 9,
        validators: [{ address: voter, publicKey: h.backend.validatorKey.publicKey, power: 21n, peerId: '12D3KooWTest', name: 'test-validator' }],
      },
    }
    try {
      const r = (await rpc(h.url, call('chain_getPendingChanges'))).json.result
      assert.equal(r.height, 8)
      assert.equal(r.totalPower, 30)
      assert.equal(r.voteExpiryHeights, 100)
      assert.deepEqual(r.scheduled, {
        fromHeight: 9,
        validators: [
          { address: formatAddress(voter), publicKey: to0x(h.backend.validatorKey.publicKey), power: 21, peerId: '12D3KooWTest', name: 'test-validator' },
        ],
      })
      assert.deepEqual(r.changes[0], {
        id: to0x(actionId(addNewcomer)),
        action: {
          type: 'add',
          publicKey: to0x(newcomer.publicKey),
          address: formatAddress(addressFromPublicKey(newcomer.publicKey)),
          power: 5,
          peerId: PEER,
          name: 'newcomer',
        },
        votes: [{ address: formatAddress(voter), height: 5, countsUntil: 104 }],
        power: 10,
        totalPower: 30,
        passes: false,
        forced: false,
      })
      assert.deepEqual(r.changes[1], {
        id: to0x(actionId(remove)),
        action: { type: 'remove', address: formatAddress(voter) },
        votes: [],
        power: 0,
        totalPower: 30,
        passes: true,
        forced: true,
      })
      // more than two thirds passes; exactly two thirds does not
      h.backend.pendingChanges = { ...h.backend.pendingChanges, changes: [{ ...h.backend.pendingChanges.changes[0]!, power: 20n }] }
      assert.equal((await rpc(h.url, call('chain_getPendingChanges'))).json.result.changes[0].passes, false)
      h.backend.pendingChanges = { ...h.backend.pendingChanges, changes: [{ ...h.backend.pendingChanges.changes[0]!, power: 21n }] }
      assert.equal((await rpc(h.url, call('chain_getPendingChanges'))).json.result.changes[0].passes, true)
    } finally {
      h.backend.pendingChanges = undefined
    }
  })

  test('tx_submit of a governance vote: admitted from a validator, not_validator (-32020) from anyone else', async () => {
    const ok = vote(validatorSeed, addNewcomer)
    assert.deepEqual((await rpc(h.url, call('tx_submit', [to0x(ok.bytes)]))).json.result, { hash: to0x(ok.hash) })
    const outsider = vote(aliceSeed, addNewcomer)
    const e = (await rpc(h.url, call('tx_submit', [to0x(outsider.bytes)]))).json.error
    assert.equal(e.code, -32020)
    assert.equal(e.data.reason, 'not_validator')
    assert.match(e.message, /^transaction rejected: not_validator: /)
  })

  test('chain_getBlock decodes a governance vote: its kind, voter and action', async () => {
    const v = vote(validatorSeed, { type: 'power', address: addressFromPublicKey(h.backend.validatorKey.publicKey), power: 12 }, 1n)
    const b = h.backend.commitBlock([v.bytes])
    const tx = (await rpc(h.url, call('chain_getBlock', [b.height]))).json.result.txs.at(-1)
    assert.deepEqual(tx, {
      hash: to0x(v.hash),
      kind: 'governance',
      from: formatAddress(addressFromPublicKey(h.backend.validatorKey.publicKey)),
      action: { type: 'power', address: formatAddress(addressFromPublicKey(h.backend.validatorKey.publicKey)), power: 12 },
      nonce: '1',
      raw: to0x(v.bytes),
    })
  })
})

test('every admission code has an application error number of its own, in the application range', () => {
  const admission: Record<SubmitErrorCode, true> = {
    invalid_signature: true,
    bad_nonce: true,
    insufficient_funds: true,
    wrong_chain: true,
    malformed: true,
    mempool_full: true,
    duplicate: true,
    not_validator: true,
    bad_action: true,
    too_many_proposals: true,
  }
  const numbers = Object.values(APPLICATION_ERROR_CODES)
  assert.equal(new Set(numbers).size, numbers.length, 'numbers are distinct')
  for (const code of Object.keys(admission) as ApplicationReason[]) {
    const n = APPLICATION_ERROR_CODES[code]
    assert.ok(n < -32000 && n >= -32099, `${code}: ${n}`)
    assert.notEqual(n, GENERIC_APPLICATION_ERROR)
  }
  assert.deepEqual(
    [APPLICATION_ERROR_CODES.not_validator, APPLICATION_ERROR_CODES.bad_action, APPLICATION_ERROR_CODES.too_many_proposals],
    [-32020, -32021, -32022],
  )
})
