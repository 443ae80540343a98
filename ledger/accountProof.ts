import { ADDRESS_LENGTH } from '../crypto/address.js'
import { bytesEqual } from '../crypto/bytes.js'
import { sha256 } from '../crypto/hash.js'
import { err, ok, type Result } from '../crypto/result.js'
import { accountTreeKey, encodeAccount, isZeroAccount, type Account } from './account.js'
import { HASH_LENGTH } from '../crypto/hash.js'
import type { ProofError } from './proofError.js'
import { decodePathBytes, encodePathBytes, rootFromPath, type TreePath } from './smt.js'
import { U64_MAX } from './transaction.js'

/**
 * Account proofs: evidence, checkable against a state root alone, of an address's account or of its absence.
 *
 * Bytes: `canonical([siblings, terminal])` (ledger/smt.ts `encodePath`), where the path is the one of
 * SHA-256(address) and the terminal is `[0]` (empty subtree: absent), `[1, [balance, nonce]]` (the account),
 * or `[2, otherKey, otherValueHash]` (another account's leaf where this one would be: absent).
 * Bounded on decode (ledger/smt.ts `MAX_PROOF_BYTES`).
 */

/** A proof as the ledger returns it: the root it proves against, the account (null when absent) and the bytes. */
export interface AccountProof {
  readonly root: Uint8Array
  readonly address: Uint8Array
  /** The account, or null when the address has no account (zero balance, nonce 0). */
  readonly account: Account | null
  /** The canonical proof bytes, for {@link verifyAccountProof}. */
  readonly proof: Uint8Array
}

/** The outcome of verifying a proof: the proven account (null = proven absent), or why it does not prove anything. */
export type ProofVerification = Result<Account | null, ProofError>

const malformedProof = (reason: string) => err<ProofError>({ code: 'malformed', reason })

/** Encodes the proof bytes of a tree path of `accountTreeKey(address)`, with the account when it is present. */
export function encodeAccountProof(path: TreePath, account: Account | null): Uint8Array {
  return encodePathBytes(path, account === null ? undefined : [account.balance, account.nonce])
}

/**
 * Verifies proof bytes for `address` against `root`, using nothing else. Pure; never throws on any input.
 */
export function verifyAccountProof(root: Uint8Array, address: Uint8Array, proof: Uint8Array): ProofVerification {
  if (!(root instanceof Uint8Array) || root.byteLength !== HASH_LENGTH) return malformedProof('root must be 32 bytes')
  if (!(address instanceof Uint8Array) || address.byteLength !== ADDRESS_LENGTH) return malformedProof(`address must be ${ADDRESS_LENGTH} bytes`)
  if (!(proof instanceof Uint8Array)) return malformedProof('proof must be bytes')
  const d = decodePathBytes(proof)
  if (!d.ok) return malformedProof(`malformed proof: ${d.error.reason}`)
  let account: Account | null = null
  let path: TreePath
  if (d.value.terminal.kind === 'leaf') {
    const v = d.value.terminal.value
    if (!Array.isArray(v) || v.length !== 2) return malformedProof('malformed proof: account must be [balance, nonce]')
    const [balance, nonce] = v as unknown[]
    if (typeof balance !== 'bigint' || typeof nonce !== 'bigint' || balance > U64_MAX || nonce > U64_MAX) {
      return malformedProof('malformed proof: balance and nonce must be u64')
    }
    account = { balance, nonce }
    if (isZeroAccount(account)) return malformedProof('malformed proof: the zero account is never stored')
    path = { siblings: d.value.siblings, terminal: { kind: 'leaf', valueHash: sha256(encodeAccount(account)) } }
  } else {
    path = { siblings: d.value.siblings, terminal: d.value.terminal }
  }
  const implied = rootFromPath(accountTreeKey(address), path)
  if (implied === undefined) return malformedProof('inconsistent proof: the other leaf is not on the path')
  if (!bytesEqual(implied, root)) return err({ code: 'root_mismatch', reason: 'proof does not match the root' })
  return ok(account)
}
