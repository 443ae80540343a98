import { fromHex } from '../crypto/bytes.js'
import { parseAddress } from '../crypto/address.js'
import { HASH_LENGTH } from '../crypto/hash.js'
import { U64_MAX, isValidChainId } from '../ledger/transaction.js'

/**
 * Parsing of the wallet's command-line arguments. Each parser returns the value or throws CliError with a
 * one-line message naming the argument, so every bad input becomes one line on stderr and a non-zero exit.
 */

/** A user-facing failure: one line for stderr, an optional stable reason for `--json`. */
export class CliError extends Error {
  override readonly name = 'CliError'
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(message)
  }
}

/** `0x` + 40 hex digits (any case). */
export function parseAddressArg(text: string, what = 'address'): Uint8Array {
  const a = parseAddress(String(text))
  if (a === undefined) throw new CliError(`bad ${what} ${JSON.stringify(String(text).slice(0, 80))}: expected 0x + 40 hex digits`, 'bad_address')
  return a
}

/** A positive integer below 2^64 (decimal digits only). */
export function parseAmountArg(text: string): bigint {
  const s = String(text).trim()
  if (!/^[0-9]{1,20}$/.test(s) || BigInt(s) < 1n || BigInt(s) > U64_MAX) {
    throw new CliError(`bad amount ${JSON.stringify(s.slice(0, 80))}: must be a positive integer below 2^64`, 'bad_amount')
  }
  return BigInt(s)
}

/** A non-negative integer below 2^64. */
export function parseNonceArg(text: string): bigint {
  const s = String(text).trim()
  if (!/^[0-9]{1,20}$/.test(s) || BigInt(s) > U64_MAX) {
    throw new CliError(`bad nonce ${JSON.stringify(s.slice(0, 80))}: must be a non-negative integer below 2^64`, 'bad_nonce')
  }
  return BigInt(s)
}

/** A chain id as the transaction format allows it. */
export function parseChainIdArg(text: string): string {
  if (!isValidChainId(text)) throw new CliError(`bad chain id ${JSON.stringify(String(text).slice(0, 80))}: 1-64 characters of [A-Za-z0-9._-]`, 'bad_chain_id')
  return text
}

/** `0x` + 64 hex digits. */
export function parseHashArg(text: string): string {
  const s = String(text)
  if (!/^0[xX]/.test(s) || fromHex(s, HASH_LENGTH) === undefined) {
    throw new CliError(`bad hash ${JSON.stringify(s.slice(0, 80))}: expected 0x + 64 hex digits`, 'bad_hash')
  }
  return s.toLowerCase()
}

/** A block height: a non-negative integer. */
export function parseHeightArg(text: string): number {
  const s = String(text).trim()
  if (!/^[0-9]{1,15}$/.test(s)) throw new CliError(`bad height ${JSON.stringify(s.slice(0, 80))}: expected a non-negative integer`, 'bad_height')
  return Number(s)
}

/** Signed transaction hex: `0x` + an even number of hex digits (with or without the prefix on input). */
export function parseTxHexArg(text: string): string {
  const s = String(text).trim()
  const body = /^0[xX]/.test(s) ? s.slice(2) : s
  if (body.length === 0 || body.length > 8192 || fromHex(body) === undefined) {
    throw new CliError('bad transaction: expected the hex of a signed transaction (as printed by `tally sign`)', 'malformed')
  }
  return `0x${body.toLowerCase()}`
}

/** Least witness timeout, in ms: below it hardly any endpoint answers one request, and none would confirm anything. */
export const WITNESS_TIMEOUT_MIN_MS = 100
/**
 * Greatest witness timeout, in ms: it leaves a third of the 30 s an answer has to the answering endpoint's own
 * requests, so that a slow witness cannot make an honest endpoint's answer time out.
 */
export const WITNESS_TIMEOUT_MAX_MS = 20_000

/**
 * The time each other endpoint has for all its checks of one answer's header (the light client's `witnessTimeoutMs`):
 * `--witness-timeout` or TALLY_WITNESS_TIMEOUT, a whole number of ms from {@link WITNESS_TIMEOUT_MIN_MS} to
 * {@link WITNESS_TIMEOUT_MAX_MS}; undefined when neither is given (the light client's default).
 */
export function parseWitnessTimeout(option: string | undefined, env: Record<string, string | undefined>): number | undefined {
  const raw = option ?? env.TALLY_WITNESS_TIMEOUT
  if (raw === undefined) return undefined
  const s = String(raw).trim()
  const ms = /^[0-9]{1,6}$/.test(s) ? Number(s) : Number.NaN
  if (!(ms >= WITNESS_TIMEOUT_MIN_MS && ms <= WITNESS_TIMEOUT_MAX_MS)) {
    throw new CliError(
      `bad witness timeout ${JSON.stringify(s.slice(0, 80))}: expected a whole number of milliseconds from ${WITNESS_TIMEOUT_MIN_MS} to ${WITNESS_TIMEOUT_MAX_MS} (--witness-timeout or TALLY_WITNESS_TIMEOUT)`,
      'bad_witness_timeout',
    )
  }
  return ms
}

/** The RPC endpoints: `--rpc` or TALLY_RPC, comma-separated, default http://127.0.0.1:8545. */
export function parseEndpoints(option: string | undefined, env: Record<string, string | undefined>): string[] {
  const raw = option ?? env.TALLY_RPC ?? 'http://127.0.0.1:8545'
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  if (list.length === 0) throw new CliError('no RPC endpoint given (--rpc URL[,URL…])')
  // one endpoint listed twice would be a failover to itself and, for a verified answer, its own witness
  const seen = new Map<string, string>()
  for (const e of list) {
    let u: URL
    try {
      u = new URL(e)
    } catch {
      throw new CliError(`bad RPC endpoint ${JSON.stringify(e)}: expected http://host:port`)
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`bad RPC endpoint ${JSON.stringify(e)}: expected http://host:port`)
    const first = seen.get(u.href)
    if (first !== undefined) throw new CliError(`RPC endpoint ${JSON.stringify(e)} is listed twice (as ${JSON.stringify(first)} too)`)
    seen.set(u.href, e)
  }
  return list
}
