import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { addressFromPublicKey } from '../../../../crypto/address.js'
import { keyPairFromSeed } from '../../../../crypto/ed25519.js'
import {
  castVote,
  DEFAULT_GOVERNANCE_PARAMS,
  endBlock,
  genesisGovernance,
  type GovernanceAction,
  type GovernanceState,
  rosterAt,
} from '../../../../ledger/governance.js'
import { admittedPeers } from '../../../../node/p2p/admittedPeers.js'
import { peerIdOf } from '../../../../node/p2p/peerId.js'

/**
 * A validator whose addition is pending is admitted so that it can sync before the change completes. The votes behind
 * it must come from more than a third of the power: one Byzantine validator alone may hold `maxOpenVotes` (8) open
 * votes, each for an identity of its own, and every identity admitted gets the budgets of a peer of its own.
 */
const members = [1, 2, 3, 4].map((i) => {
  const { publicKey } = keyPairFromSeed(new Uint8Array(32).fill(i))
  return { address: addressFromPublicKey(publicKey), publicKey, power: 1, peerId: peerIdOf(publicKey), name: `v${i}` }
})

function addOf(seed: number): GovernanceAction & { type: 'add' } {
  const { publicKey } = keyPairFromSeed(new Uint8Array(32).fill(seed))
  return { type: 'add', publicKey, power: 1, peerId: peerIdOf(publicKey), name: `joiner${seed}` }
}

function vote(state: GovernanceState, height: number, voter: number, action: GovernanceAction): GovernanceState {
  const voted = castVote(state, height, members[voter]!.address, action, DEFAULT_GOVERNANCE_PARAMS)
  assert.ok(voted.ok, voted.ok ? '' : voted.error.reason)
  return endBlock(voted.value, height, [], DEFAULT_GOVERNANCE_PARAMS)
}

describe('the peers admitted for pending additions', () => {
  it('are none for the votes of one validator of four', () => {
    let state = genesisGovernance(members)
    const adds = [11, 12, 13, 14, 15, 16, 17, 18].map(addOf)
    for (const [i, add] of adds.entries()) state = vote(state, i + 1, 0, add)
    assert.equal(state.pending.length, 8)
    const admitted = admittedPeers(8, (h) => rosterAt(state, h), state, [])
    assert.deepEqual(
      adds.filter((a) => admitted.includes(a.peerId)).map((a) => a.name),
      [],
    )
    assert.deepEqual(admitted.sort(), members.map((m) => m.peerId).sort())
  })

  it('include one whose votes hold more than a third of the power', () => {
    let state = genesisGovernance(members)
    const add = addOf(21)
    state = vote(state, 1, 0, add)
    state = vote(state, 2, 1, add)
    assert.equal(state.pending.length, 1) // two of four: still pending
    assert.ok(admittedPeers(2, (h) => rosterAt(state, h), state, []).includes(add.peerId))
  })

  it('count only the votes of validators in force at the next height', () => {
    let state = genesisGovernance(members)
    const add = addOf(31)
    state = vote(state, 1, 0, add)
    state = vote(state, 2, 1, add)
    const remove: GovernanceAction = { type: 'remove', address: members[1]!.address }
    for (const voter of [1, 2, 3]) state = vote(state, 2 + voter, voter, remove)
    // the removal completes at height 5: v2 is a validator at height 6, not at 7, and its vote counts until then
    assert.equal(rosterAt(state, 6).length, 4)
    assert.equal(rosterAt(state, 7).length, 3)
    assert.ok(admittedPeers(5, (h) => rosterAt(state, h), state, []).includes(add.peerId))
    assert.ok(!admittedPeers(6, (h) => rosterAt(state, h), state, []).includes(add.peerId))
  })
})
