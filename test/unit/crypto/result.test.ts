import { test } from 'node:test'
import assert from 'node:assert/strict'
import { err, ok, withoutCodes } from '../../../crypto/result.js'

test('ok and err build the two sides of a Result', () => {
  assert.deepEqual(ok(3), { ok: true, value: 3 })
  assert.deepEqual(err({ code: 'bad', reason: 'why' }), { ok: false, error: { code: 'bad', reason: 'why' } })
})

test('withoutCodes keeps the other codes in their order and leaves the list alone', () => {
  const codes = ['a', 'b', 'c', 'd'] as const
  const narrowed = withoutCodes(codes, ['b', 'd'])
  assert.deepEqual(narrowed, ['a', 'c'])
  assert.ok(Object.isFrozen(narrowed))
  assert.deepEqual(codes, ['a', 'b', 'c', 'd'])
  assert.deepEqual(withoutCodes(codes, []), codes)
})
