import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EXECUTION_ONLY_FAILURE_CODES, TX_FAILURE_CODES } from '../../../ledger/receipt.js'
import { ADMISSION_CODES } from '../../../node/mempool/mempool.js'
import { SUBMIT_ERROR_CODES } from '../../../rpc/backend.js'
import {
  APPLICATION_ERROR_CODES,
  APPLICATION_REASONS,
  GENERIC_APPLICATION_ERROR,
  SERVER_ERROR_REASONS,
  applicationError,
  applicationErrorCode,
  isApplicationReason,
} from '../../../rpc/errors.js'

test('the table numbers exactly the application reasons, each with a distinct number in the application range', () => {
  assert.deepEqual(Object.keys(APPLICATION_ERROR_CODES).sort(), [...APPLICATION_REASONS].sort())
  const numbers = APPLICATION_REASONS.map(applicationErrorCode)
  assert.equal(new Set(numbers).size, numbers.length, 'numbers are distinct')
  for (const [i, n] of numbers.entries()) {
    assert.ok(n < GENERIC_APPLICATION_ERROR && n >= -32099, `${APPLICATION_REASONS[i]}: ${n}`)
  }
  for (const r of SERVER_ERROR_REASONS) assert.ok(isApplicationReason(r), r)
  assert.equal(isApplicationReason('balance_overflow'), false)
  assert.deepEqual(applicationError('bad_nonce', 'm', { detail: 'd' }), { code: -32002, message: 'm', data: { reason: 'bad_nonce', detail: 'd' } })
})

test("the tx_submit reasons are the ledger's failure codes that admission checks, and the mempool's own", () => {
  const ledger = TX_FAILURE_CODES.filter((c) => !(EXECUTION_ONLY_FAILURE_CODES as readonly string[]).includes(c))
  assert.deepEqual([...SUBMIT_ERROR_CODES].sort(), [...ledger, 'duplicate', 'mempool_full'].sort())
  assert.deepEqual([...ADMISSION_CODES].sort(), [...SUBMIT_ERROR_CODES].sort())
})
