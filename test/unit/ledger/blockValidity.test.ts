import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../crypto/address.js'
import { bytesEqual } from '../../../crypto/bytes.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { sha256 } from '../../../crypto/hash.js'
import { ZERO_HASH, txRoot, type BlockHeader } from '../../../ledger/block.js'
import {
  blockTimeWait,
  checkBlockBody,
  checkBlockEvidence,
  checkBlockExecution,
  checkBlockHeader,
  type BlockFaultCode,
  type BlockParent,
} from '../../../ledger/blockValidity.js'
import { LedgerState } from '../../../ledger/ledgerState.js'
import { MemoryKvStore } from '../../../ledger/store.js'
import { createTransfer, decodeTransaction, encodeTransaction, signTransaction, type DecodedTransaction } from '../../../ledger/transaction.js'

const CHAIN = 'tally-test'
const proposer = addressFromPublicKey(keyPairFromSeed(new Uint8Array(32).fill(9)).publicKey)
const stranger = new Uint8Array(20).fill(0xee)
const setHash = sha256(new Uint8Array([1]))
const nextSetHash = sha256(new Uint8Array([11]))
const tipHash = sha256(new Uint8Array([2]))
const lastCommit = sha256(new Uint8Array([3]))
const hashes = [sha256(new Uint8Array([4])), sha256(new Uint8Array([5]))]

function parent(height = 5): BlockParent {
  return {
    chainId: CHAIN,
    height,
    previousBlockHash: height === 1 ? ZERO_HASH : tipHash,
    previousBlockTime: 1_000,
    validatorSetHash: setHash,
    nextValidatorSetHash: nextSetHash,
    isValidator: (a) => bytesEqual(a, proposer),
    maxTxs: 2,
    maxBytes: 1_000,
    maxEvidence: 2,
  }
}

function header(over: Partial<BlockHeader> = {}): BlockHeader {
  return {
    chainId: CHAIN,
    height: 5,
    time: 2_000,
    previousBlockHash: tipHash,
    txRoot: txRoot(hashes),
    stateRoot: ZERO_HASH,
    proposer,
    validatorSetHash: setHash,
    nextValidatorSetHash: nextSetHash,
    lastCommitHash: lastCommit,
    evidenceRoot: txRoot([]),
    ...over,
  }
}

const code = (r: { ok: boolean; error?: { code: BlockFaultCode } } | { ok: true }) => (r.ok ? 'ok' : (r as { error: { code: BlockFaultCode } }).error.code)

test('header rules: each fault has its code, a good header passes', () => {
  const rows: { desc: string; h: BlockHeader; txs?: Uint8Array[]; p?: BlockParent; lc?: Uint8Array | null; want: string }[] = [
    { desc: 'good', h: header(), want: 'ok' },
    { desc: 'other chain', h: header({ chainId: 'other' }), want: 'wrong_chain' },
    { desc: 'height skips', h: header({ height: 6 }), want: 'wrong_height' },
    { desc: 'another parent', h: header({ previousBlockHash: sha256(new Uint8Array([7])) }), want: 'wrong_parent' },
    { desc: 'another validator set', h: header({ validatorSetHash: ZERO_HASH }), want: 'wrong_validator_set' },
    { desc: 'another next validator set', h: header({ nextValidatorSetHash: setHash }), want: 'wrong_validator_set' },
    { desc: 'proposer not a validator', h: header({ proposer: stranger }), want: 'unknown_proposer' },
    { desc: 'time equal to the parent', h: header({ time: 1_000 }), want: 'time_not_after_parent' },
    { desc: 'no verified last commit', h: header(), lc: null, want: 'last_commit' },
    { desc: 'last commit hash differs', h: header(), lc: sha256(new Uint8Array([8])), want: 'last_commit' },
    {
      desc: 'too many transactions',
      h: header({ txRoot: txRoot([...hashes, hashes[0]!]) }),
      txs: [...hashes, sha256(new Uint8Array([6]))],
      want: 'too_many_txs',
    },
    { desc: 'duplicate transaction', h: header({ txRoot: txRoot([hashes[0]!, hashes[0]!]) }), txs: [hashes[0]!, hashes[0]!], want: 'duplicate_tx' },
    { desc: 'tx root differs', h: header(), txs: [hashes[1]!, hashes[0]!], want: 'tx_root' },
    {
      desc: 'height 1 without a last commit',
      h: header({ height: 1, previousBlockHash: ZERO_HASH, lastCommitHash: ZERO_HASH }),
      p: parent(1),
      lc: null,
      want: 'ok',
    },
    {
      desc: 'height 1 with a last commit',
      h: header({ height: 1, previousBlockHash: ZERO_HASH, lastCommitHash: ZERO_HASH }),
      p: parent(1),
      lc: lastCommit,
      want: 'last_commit',
    },
  ]
  for (const r of rows) {
    const got = checkBlockHeader(r.h, r.txs ?? hashes, r.p ?? parent(), r.lc === undefined ? lastCommit : r.lc)
    assert.equal(code(got), r.want, r.desc)
  }
})

test('only membership of the header proposer matters, not who proposed the round (a valid value re-proposed)', () => {
  const other = addressFromPublicKey(keyPairFromSeed(new Uint8Array(32).fill(10)).publicKey)
  const p = { ...parent(), isValidator: (a: Uint8Array) => bytesEqual(a, proposer) || bytesEqual(a, other) }
  assert.equal(code(checkBlockHeader(header({ proposer: other }), hashes, p, lastCommit)), 'ok')
})

test('evidence: bounded, distinct, matching the root; an item fault makes the block invalid', () => {
  const items = [sha256(new Uint8Array([21])), sha256(new Uint8Array([22]))]
  const h = header({ evidenceRoot: txRoot(items) })
  assert.equal(code(checkBlockEvidence(h, items, parent(), undefined)), 'ok')
  assert.equal(code(checkBlockEvidence(h, [items[1]!, items[0]!], parent(), undefined)), 'evidence', 'another root')
  assert.equal(
    code(checkBlockEvidence(header({ evidenceRoot: txRoot([items[0]!, items[0]!]) }), [items[0]!, items[0]!], parent(), undefined)),
    'evidence',
    'a repeat',
  )
  const three = [...items, sha256(new Uint8Array([23]))]
  assert.equal(code(checkBlockEvidence(header({ evidenceRoot: txRoot(three) }), three, parent(), undefined)), 'evidence', 'too many')
  assert.equal(code(checkBlockEvidence(h, items, parent(), 'evidence 1 does not verify')), 'evidence')
})

test('body: the transactions must fit the byte limit', () => {
  const txs = [1, 2].map((i) => createTransfer(new Uint8Array(32).fill(i), { chainId: CHAIN, to: stranger, amount: 1n, nonce: 0n }))
  assert.equal(code(checkBlockBody(txs, parent())), 'ok')
  assert.equal(code(checkBlockBody(txs, { ...parent(), maxBytes: txs[0]!.bytes.byteLength })), 'too_large')
})

test('execution: one failing transfer makes the block invalid; so does another state root', async () => {
  const alice = keyPairFromSeed(new Uint8Array(32).fill(1))
  const from = addressFromPublicKey(alice.publicKey)
  const ledger = await LedgerState.open(new MemoryKvStore())
  const funded = await ledger.setAccounts([{ address: from, account: { balance: 100n, nonce: 0n } }])
  ledger.commit(funded)
  const dec = (t: ReturnType<typeof signTransaction>) => (decodeTransaction(encodeTransaction(t)) as { ok: true; value: DecodedTransaction }).value
  const pay = (nonce: bigint, amount = 1n) => dec(signTransaction({ chainId: CHAIN, from: alice.publicKey, to: stranger, amount, nonce }, alice.secretKey))
  const forged = { ...pay(1n), tx: { ...pay(1n).tx, signature: new Uint8Array(64) } }

  const good = await ledger.execute([pay(0n), pay(1n)], { chainId: CHAIN })
  assert.equal(code(checkBlockExecution(header({ stateRoot: good.stateRoot }), good)), 'ok')
  assert.equal(code(checkBlockExecution(header({ stateRoot: ZERO_HASH }), good)), 'state_root')

  const rows = [
    { desc: 'forged signature', txs: [pay(0n), forged], txCode: 'invalid_signature' },
    { desc: 'replayed nonce', txs: [pay(0n), pay(0n, 2n)], txCode: 'bad_nonce' },
    { desc: 'skipped nonce', txs: [pay(1n)], txCode: 'bad_nonce' },
    { desc: 'overspend', txs: [pay(0n, 101n)], txCode: 'insufficient_funds' },
  ]
  for (const r of rows) {
    const result = await ledger.execute(r.txs, { chainId: CHAIN })
    // even with the state root the faulty execution gives, the block is invalid
    const got = checkBlockExecution(header({ stateRoot: result.stateRoot }), result)
    assert.equal(code(got), 'tx_failed', r.desc)
    assert.equal(!got.ok && got.error.txCode, r.txCode, r.desc)
  }
})

test('a block time ahead of the clock is a wait, not a fault', () => {
  assert.equal(blockTimeWait(header({ time: 10_000 }), 10_000, 0), 0)
  assert.equal(blockTimeWait(header({ time: 10_000 }), 4_000, 5_000), 1_000)
  assert.equal(blockTimeWait(header({ time: 10_000 }), 6_000, 5_000), 0)
})
