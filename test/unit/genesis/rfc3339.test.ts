import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseRfc3339 } from '../../../genesis/rfc3339.js'

test('RFC 3339 timestamps convert to unix milliseconds (values checked against python calendar.timegm)', () => {
  const rows: [string, number][] = [
    ['1970-01-01T00:00:00Z', 0],
    ['2026-11-22T00:00:00Z', 1795305600000],
    ['2026-11-22T10:30:00.250+01:00', 1795339800250],
    ['2024-02-29T23:59:59.9-00:30', 1709252999900],
    ['2000-03-01T00:00:00z', 951868800000],
    ['9999-12-31T23:59:59.999Z', 253402300799999],
  ]
  for (const [text, ms] of rows) assert.deepEqual(parseRfc3339(text), { ok: true, value: ms }, text)
})

test('malformed or impossible timestamps are rejected with a reason', () => {
  for (const text of [
    '2026-11-22',
    '2026-11-22 00:00:00Z',
    '2026-11-22T00:00:00',
    '2026-13-01T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-11-22T24:00:00Z',
    '2026-11-22T00:60:00Z',
    '2026-12-31T23:59:60Z',
    '2026-11-22T00:00:00.1234Z',
    '2026-11-22T00:00:00+24:00',
    '1969-12-31T23:59:59Z',
    '1970-01-01T00:30:00+01:00',
    5,
    null,
  ]) {
    const r = parseRfc3339(text)
    assert.ok(!r.ok && r.error.reason.length > 0, String(text))
  }
})
