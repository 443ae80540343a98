import { malformed, type DecodeResult } from '../crypto/decodeError.js'
import { ok } from '../crypto/result.js'

/**
 * RFC 3339 timestamps, parsed by arithmetic (the pure rooms may not use Date): `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`,
 * with at most millisecond precision (three fraction digits), years 1970-9999, no leap second (60).
 */

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

/** Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = year - (month <= 2 ? 1 : 0)
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/** Parses an RFC 3339 timestamp to unix milliseconds, or explains why it is not one. */
export function parseRfc3339(text: unknown): DecodeResult<number> {
  if (typeof text !== 'string') return malformed('must be an RFC 3339 string')
  const m = RFC3339_RE.exec(text)
  if (m === null) return malformed('must be an RFC 3339 timestamp like 2026-11-22T00:00:00Z (at most 3 fraction digits)')
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  if (year < 1970) return malformed('year must be 1970 or later')
  if (month < 1 || month > 12) return malformed(`month ${month} out of range`)
  if (day < 1 || day > daysInMonth(year, month)) return malformed(`day ${day} out of range for ${year}-${String(month).padStart(2, '0')}`)
  if (hour > 23) return malformed(`hour ${hour} out of range`)
  if (minute > 59) return malformed(`minute ${minute} out of range`)
  if (second > 59) return malformed(`second ${second} out of range (leap seconds are not accepted)`)
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'))
  let offsetMinutes = 0
  if (m[8] === undefined) {
    const oh = Number(m[10])
    const om = Number(m[11])
    if (oh > 23 || om > 59) return malformed('offset out of range')
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om)
  }
  const ms = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + fraction
  if (ms < 0) return malformed('must not be before 1970-01-01T00:00:00Z')
  return ok(ms)
}
