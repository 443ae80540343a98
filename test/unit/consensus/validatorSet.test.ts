import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compareBytes, encodeCanonical, keyPairFromSeed, sha256, addressFromPublicKey, toHex } from '../../../crypto/index.js'
import { createValidatorSet, isOneThird, isTwoThirds, proposerIndex, validatorSetHash, type Validator } from '../../../consensus/index.js'
import { validators } from './helpers.js'

function make(powers: number[]): Validator[] {
  return powers.map((power, i) => {
    const { publicKey } = keyPairFromSeed(sha256(encodeCanonical(['vs', i])))
    return { address: addressFromPublicKey(publicKey), publicKey, power }
  })
}

function set(powers: number[]) {
  const r = createValidatorSet(make(powers))
  assert.ok(r.ok)
  return r.value
}

test('a validator set is sorted by address, with exact total power and a hash independent of input order', () => {
  const list = make([5, 1, 9, 2])
  const a = createValidatorSet(list)
  const b = createValidatorSet([...list].reverse())
  assert.ok(a.ok && b.ok)
  for (let i = 1; i < a.value.validators.length; i++) assert.ok(compareBytes(a.value.validators[i - 1]!.address, a.value.validators[i]!.address) < 0)
  assert.equal(a.value.totalPower, 17n)
  assert.deepEqual(a.value.hash, b.value.hash)
  assert.deepEqual(a.value.hash, validatorSetHash(list))
})

test('createValidatorSet rejects empty sets, duplicates, bad powers and addresses that do not match keys', () => {
  const list = make([1, 1])
  const bad: [Validator[], RegExp][] = [
    [[], /at least one/],
    [[list[0]!, list[0]!], /twice/],
    [[{ ...list[0]!, power: 0 }], /positive/],
    [[{ ...list[0]!, power: 1.5 }], /positive/],
    [[{ ...list[0]!, power: Number.MAX_SAFE_INTEGER + 1 }], /positive/],
    [[{ ...list[0]!, address: list[1]!.address }], /does not match/],
    [[{ ...list[0]!, publicKey: new Uint8Array(31) }], /32 bytes/],
  ]
  for (const [input, reason] of bad) {
    const r = createValidatorSet(input)
    assert.ok(!r.ok)
    assert.equal(r.error.code, 'invalid_validator_set')
    assert.match(r.error.reason, reason)
  }
})

test('thresholds are exact: more than 2/3 and more than 1/3 of the total power', () => {
  const s = set([1, 1, 1, 1]) // total 4
  assert.equal(isTwoThirds(s, 2n), false)
  assert.equal(isTwoThirds(s, 3n), true)
  assert.equal(isOneThird(s, 1n), false)
  assert.equal(isOneThird(s, 2n), true)
  const t = set([1, 1, 1]) // total 3: 2 is exactly 2/3, not more
  assert.equal(isTwoThirds(t, 2n), false)
  assert.equal(isOneThird(t, 1n), false)
  const big = set([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER])
  assert.equal(big.totalPower, 3n * BigInt(Number.MAX_SAFE_INTEGER))
  assert.equal(isTwoThirds(big, 2n * BigInt(Number.MAX_SAFE_INTEGER)), false)
  assert.equal(isTwoThirds(big, 2n * BigInt(Number.MAX_SAFE_INTEGER) + 1n), true)
})

test('equal powers: any n consecutive slots have n different proposers, rotating with height and round', () => {
  for (const n of [1, 4, 7, 10]) {
    const s = set(Array(n).fill(3))
    for (let h = 1; h < 30; h++) {
      const seen = new Set<number>()
      for (let r = 0; r < n; r++) seen.add(proposerIndex(s, h, r))
      assert.equal(seen.size, n)
    }
    if (n > 1) assert.notEqual(proposerIndex(s, 1, 0), proposerIndex(s, 2, 0))
  }
})

test('unequal powers: each validator proposes in proportion to its power', () => {
  const powers = [1, 2, 3, 10]
  const s = set(powers)
  const counts = new Map<string, number>()
  const total = 16
  for (let k = 0; k < total * 10; k++) {
    const v = s.validators[proposerIndex(s, 1, k)]!
    counts.set(toHex(v.address), (counts.get(toHex(v.address)) ?? 0) + 1)
  }
  for (const v of s.validators) assert.equal(counts.get(toHex(v.address)), v.power * 10)
})

test('the proposer sequence interleaves: a heavy validator does not propose many rounds in a row', () => {
  const s = set([1, 1, 1, 5])
  let run = 0
  let longest = 0
  let last = -1
  for (let k = 0; k < 80; k++) {
    const p = proposerIndex(s, 1, k)
    run = p === last ? run + 1 : 1
    last = p
    longest = Math.max(longest, run)
  }
  assert.ok(longest <= 2, `longest run ${longest}`)
})

test('the proposer is a pure function of the set, height and round', () => {
  const r1 = createValidatorSet(validators)
  const r2 = createValidatorSet([...validators].reverse())
  assert.ok(r1.ok && r2.ok)
  for (let h = 1; h < 5; h++) for (let r = 0; r < 5; r++) assert.equal(proposerIndex(r1.value, h, r), proposerIndex(r2.value, h, r))
})
