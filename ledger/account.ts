import { ADDRESS_LENGTH } from '../crypto/address.js'
import { decodeCanonical, encodeCanonical } from '../crypto/canonical.js'
import { sha256 } from '../crypto/hash.js'
import { LEDGER_KEY_PREFIX } from './store.js'
import { U64_MAX } from './transaction.js'

/**
 * An account: a balance and the next nonce it will accept. Every address has one; an address never seen holds
 * {@link ZERO_ACCOUNT} and is absent from the state tree (an account equal to ZERO_ACCOUNT is never stored, so
 * "absent" and "zero" are the same state and the root does not depend on how an account came to be zero).
 */
export interface Account {
  /** u64 balance. */
  readonly balance: bigint
  /** u64: the nonce of the next transfer this account may send (= number of transfers it has sent). */
  readonly nonce: bigint
}

/** The account of an address never seen. */
export const ZERO_ACCOUNT: Account = Object.freeze({ balance: 0n, nonce: 0n })

/** Second byte of account keys in the store ('a'). */
export const ACCOUNT_KEY_TAG = 0x61

/** True when the account is the zero account (and so is not stored). */
export function isZeroAccount(account: Account): boolean {
  return account.balance === 0n && account.nonce === 0n
}

/** Canonical account bytes: `canonical([balance, nonce])`, both u64. Their SHA-256 is the leaf's value hash. */
export function encodeAccount(account: Account): Uint8Array {
  if (account.balance < 0n || account.balance > U64_MAX || account.nonce < 0n || account.nonce > U64_MAX) {
    throw new RangeError('encodeAccount: balance and nonce are u64')
  }
  return encodeCanonical([account.balance, account.nonce])
}

/** Decodes account bytes; throws on anything else, because account bytes only ever come from our own store. */
export function decodeAccount(bytes: Uint8Array): Account {
  const d = decodeCanonical(bytes, 32)
  if (d.ok && Array.isArray(d.value) && d.value.length === 2) {
    const [balance, nonce] = d.value as unknown[]
    if (typeof balance === 'bigint' && typeof nonce === 'bigint') return { balance, nonce }
  }
  throw new Error('state corrupt: stored account is not canonical [balance, nonce]')
}

/** The store key of an address's account: `'L' 'a' || address`. */
export function accountStoreKey(address: Uint8Array): Uint8Array {
  if (address.byteLength !== ADDRESS_LENGTH) throw new RangeError(`address must be ${ADDRESS_LENGTH} bytes`)
  const k = new Uint8Array(2 + ADDRESS_LENGTH)
  k[0] = LEDGER_KEY_PREFIX
  k[1] = ACCOUNT_KEY_TAG
  k.set(address, 2)
  return k
}

/** The account's key in the state tree: SHA-256(address), spreading keys evenly so paths stay ~log2(n) deep. */
export function accountTreeKey(address: Uint8Array): Uint8Array {
  return sha256(address)
}
