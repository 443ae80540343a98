import { ADDRESS_LENGTH } from '../crypto/address.js'
import { err, ok } from '../crypto/result.js'
import { U64_MAX } from '../ledger/transaction.js'
import { FieldErrors, join, type FieldError, type ParseResult } from './fieldErrors.js'

/**
 * The initial balances of a genesis, validated one at a time as they are read and held compactly: a million of them
 * as a few flat arrays (about 40 bytes each) instead of a million objects, so a node can read a large `genesis.json`
 * piece by piece. Every problem is reported as {@link parseGenesis} reports it, with the same path and message and
 * in the same order: the balances' rules live here alone.
 */

/** Most initial balances a genesis may list. */
export const MAX_GENESIS_BALANCES = 1_000_000
/** u64 amounts as decimal strings, no sign, no leading zeros. */
export const AMOUNT_RE = /^(0|[1-9][0-9]{0,19})$/

/** Validated balances sorted by address: `addresses` holds `count` addresses of 20 bytes back to back. */
export interface SortedBalances {
  readonly count: number
  /** 20 × count bytes, strictly increasing addresses (no duplicates). */
  readonly addresses: Uint8Array
  /** amounts[i] belongs to the i-th address: 1 to 2^64-1. */
  readonly amounts: BigUint64Array
}

/** A problem of one listed balance, placed where {@link parseGenesis} lists it: by index, then by field. */
interface PlacedError {
  readonly index: number
  /** 0: the element's shape, 1: its address, 2: its amount. */
  readonly rank: number
  readonly error: FieldError
}

const INITIAL_CAPACITY = 1024

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/**
 * Collects the elements of a genesis's `balances` array in file order ({@link add}), then checks what needs them all
 * and sorts them ({@link finish}). Elements with a valid address are kept (for the duplicate check) with their amount,
 * or 0 where the amount is invalid; past {@link MAX_GENESIS_BALANCES} elements are only counted.
 */
export class GenesisBalances {
  private addresses = new Uint8Array(INITIAL_CAPACITY * ADDRESS_LENGTH)
  private amounts = new BigUint64Array(INITIAL_CAPACITY)
  /** The file index of each kept element. */
  private indices = new Uint32Array(INITIAL_CAPACITY)
  private kept = 0
  private listed = 0
  private supply = 0n
  private readonly errors: PlacedError[] = []
  private finished = false
  /** {@link addEntry}'s last amount and its check: a generator's balances often repeat one amount. */
  private lastAmount: bigint | undefined
  private lastChecked: CheckedAmount | undefined

  /** Adds the next element of the file's `balances` array (any JSON value), checking it alone. */
  add(value: unknown): void {
    if (this.finished) throw new Error('GenesisBalances: add after finish')
    const i = this.listed++
    if (this.listed > MAX_GENESIS_BALANCES) return
    if (!isBalanceShape(value)) {
      // the slow path, for its messages: the same checks as every other object of a genesis
      const e = new FieldErrors()
      const isObject = e.object(join('balances', i), value, ['address', 'amount'], ['address', 'amount'])
      this.place(i, 0, e.list)
      if (!isObject) return
    }
    const b = value as { address?: unknown; amount?: unknown }
    const amount = checkAmount(b.amount)
    if (amount.problem === undefined) this.supply += amount.value
    if (!this.keep(b.address, i, amount.value)) this.addressProblem(i)
    if (amount.problem !== undefined) this.amountProblem(i, amount.problem)
  }

  /**
   * Adds the next balance as bytes and an amount (a generator's rather than a file's): checked, and reported, as
   * `{"address": "0x…", "amount": "<amount>"}` would be.
   */
  addEntry(address: Uint8Array, amount: bigint): void {
    if (this.finished) throw new Error('GenesisBalances: add after finish')
    const i = this.listed++
    if (this.listed > MAX_GENESIS_BALANCES) return
    if (amount !== this.lastAmount) {
      this.lastAmount = amount
      this.lastChecked = checkAmount(amount.toString())
    }
    const checked = this.lastChecked!
    if (checked.problem === undefined) this.supply += checked.value
    if (address.byteLength === ADDRESS_LENGTH) this.keepBytes(address, i, checked.value)
    else this.addressProblem(i)
    if (checked.problem !== undefined) this.amountProblem(i, checked.problem)
  }

  private addressProblem(i: number): void {
    this.errors.push({ index: i, rank: 1, error: { path: join(join('balances', i), 'address'), message: 'must be 0x + 40 hex digits' } })
  }

  private amountProblem(i: number, problem: string): void {
    this.errors.push({ index: i, rank: 2, error: { path: join(join('balances', i), 'amount'), message: problem } })
  }

  private place(index: number, rank: number, errors: readonly FieldError[]): void {
    for (const error of errors) this.errors.push({ index, rank, error })
  }

  /**
   * Keeps an element whose address is `0x` + 40 hex digits (any case), with its amount (0 when invalid); false
   * (nothing kept) for anything else.
   */
  private keep(text: unknown, index: number, amount: bigint): boolean {
    if (typeof text !== 'string' || text.length !== 2 + 2 * ADDRESS_LENGTH || text.charCodeAt(0) !== 48) return false
    const x = text.charCodeAt(1)
    if (x !== 120 && x !== 88) return false
    if (this.kept === this.indices.length) this.grow()
    const at = this.kept * ADDRESS_LENGTH
    for (let j = 0; j < ADDRESS_LENGTH; j++) {
      const hi = hexValue(text.charCodeAt(2 + 2 * j))
      const lo = hexValue(text.charCodeAt(3 + 2 * j))
      if (hi < 0 || lo < 0) return false
      this.addresses[at + j] = (hi << 4) | lo
    }
    this.indices[this.kept] = index
    this.amounts[this.kept] = amount
    this.kept++
    return true
  }

  /** Keeps an element whose address is given as 20 bytes. */
  private keepBytes(address: Uint8Array, index: number, amount: bigint): void {
    if (this.kept === this.indices.length) this.grow()
    this.addresses.set(address, this.kept * ADDRESS_LENGTH)
    this.indices[this.kept] = index
    this.amounts[this.kept] = amount
    this.kept++
  }

  private grow(): void {
    const capacity = Math.min(2 * this.indices.length, MAX_GENESIS_BALANCES)
    const addresses = new Uint8Array(capacity * ADDRESS_LENGTH)
    addresses.set(this.addresses)
    const amounts = new BigUint64Array(capacity)
    amounts.set(this.amounts)
    const indices = new Uint32Array(capacity)
    indices.set(this.indices)
    this.addresses = addresses
    this.amounts = amounts
    this.indices = indices
  }

  /**
   * Ends the list: checks the duplicates and the total supply, and returns the balances sorted by address, or every
   * problem of the list in {@link parseGenesis}'s order (each element's, by index, then the list's).
   */
  finish(): ParseResult<SortedBalances, 'invalid_genesis'> {
    if (this.finished) throw new Error('GenesisBalances: finished twice')
    this.finished = true
    if (this.listed > MAX_GENESIS_BALANCES) {
      this.release()
      return err({ code: 'invalid_genesis', errors: [{ path: 'balances', message: `must list at most ${MAX_GENESIS_BALANCES} balances` }] })
    }
    const n = this.kept
    const order = this.sortedOrder()
    const A = ADDRESS_LENGTH
    const addresses = this.addresses
    const placed = this.errors
    let duplicates = false
    // equal addresses sit together, the first in the file first: each later one duplicates it
    for (let k = 1, first = 0; k < n; k++) {
      if (compareAt(addresses, order[first]! * A, order[k]! * A) !== 0) {
        first = k
        continue
      }
      const i = this.indices[order[k]!]!
      const path = join(join('balances', i), 'address')
      placed.push({ index: i, rank: 1, error: { path, message: `duplicates balances[${this.indices[order[first]!]!}].address` } })
      duplicates = true
    }
    if (duplicates) placed.sort((a, b) => a.index - b.index || a.rank - b.rank)
    const errors = placed.map((p) => p.error)
    if (this.supply > U64_MAX) errors.push({ path: 'balances', message: `total supply ${this.supply} exceeds 2^64-1` })
    if (errors.length > 0) {
      this.release()
      return err({ code: 'invalid_genesis', errors })
    }
    // valid: every element was kept, with its amount
    const sortedAddresses = new Uint8Array(n * A)
    const sortedAmounts = new BigUint64Array(n)
    for (let k = 0; k < n; k++) {
      const from = order[k]!
      sortedAddresses.set(addresses.subarray(from * A, from * A + A), k * A)
      sortedAmounts[k] = this.amounts[from]!
    }
    this.release()
    return ok({ count: n, addresses: sortedAddresses, amounts: sortedAmounts })
  }

  /** The kept elements' positions by address, then file order; no sort at all when the file lists them in order. */
  private sortedOrder(): Uint32Array {
    const n = this.kept
    const A = ADDRESS_LENGTH
    const a = this.addresses
    const order = new Uint32Array(n)
    let inOrder = true
    for (let k = 0; k < n; k++) {
      order[k] = k
      if (k > 0 && inOrder && compareAt(a, (k - 1) * A, k * A) > 0) inOrder = false
    }
    if (inOrder) return order
    // the first 4 bytes as one number settle almost every comparison
    const prefix = new Uint32Array(n)
    for (let k = 0; k < n; k++) prefix[k] = ((a[k * A]! << 24) | (a[k * A + 1]! << 16) | (a[k * A + 2]! << 8) | a[k * A + 3]!) >>> 0
    return order.sort((x, y) => prefix[x]! - prefix[y]! || compareAt(a, x * A, y * A) || x - y)
  }

  private release(): void {
    this.addresses = new Uint8Array(0)
    this.amounts = new BigUint64Array(0)
    this.indices = new Uint32Array(0)
    this.errors.length = 0
  }
}

/** An amount checked: its value (0 when invalid) and the problem, if any. */
interface CheckedAmount {
  readonly value: bigint
  readonly problem: string | undefined
}

/** The rules of a balance's amount: a u64 as a decimal string, no sign, no leading zeros, not 0. */
function checkAmount(amount: unknown): CheckedAmount {
  if (typeof amount !== 'string' || !AMOUNT_RE.test(amount)) return { value: 0n, problem: 'must be a decimal string (no sign, no leading zeros)' }
  const value = BigInt(amount)
  if (value > U64_MAX) return { value: 0n, problem: 'must be below 2^64' }
  if (value === 0n) return { value: 0n, problem: 'must be positive (an unlisted address already holds zero)' }
  return { value, problem: undefined }
}

/** True for a plain object whose keys are exactly `address` and `amount` (no shape error to report). */
function isBalanceShape(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const keys = Object.keys(value)
  return keys.length === 2 && ((keys[0] === 'address' && keys[1] === 'amount') || (keys[0] === 'amount' && keys[1] === 'address'))
}

/** Compares the 20-byte addresses at byte offsets `x` and `y` of `bytes`. */
function compareAt(bytes: Uint8Array, x: number, y: number): number {
  for (let j = 0; j < ADDRESS_LENGTH; j++) {
    const d = bytes[x + j]! - bytes[y + j]!
    if (d !== 0) return d
  }
  return 0
}

/** Sorted balances from a list of validated ones (any order, distinct addresses). */
export function sortBalances(balances: readonly { readonly address: Uint8Array; readonly amount: bigint }[]): SortedBalances {
  const A = ADDRESS_LENGTH
  const sorted = [...balances].sort((x, y) => {
    for (let j = 0; j < A; j++) {
      const d = x.address[j]! - y.address[j]!
      if (d !== 0) return d
    }
    return 0
  })
  const addresses = new Uint8Array(sorted.length * A)
  const amounts = new BigUint64Array(sorted.length)
  sorted.forEach((b, k) => {
    addresses.set(b.address, k * A)
    amounts[k] = b.amount
  })
  return { count: sorted.length, addresses, amounts }
}
