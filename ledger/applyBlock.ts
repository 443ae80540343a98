import { bytesKey } from '../crypto/bytes.js'
import type { Account } from './account.js'
import { ZERO_ACCOUNT } from './account.js'
import { OK_RECEIPT, type Receipt, type TxFailureCode } from './receipt.js'
import { U64_MAX, senderAddress, verifyTransactionSignature, type DecodedTransaction, type Transaction } from './transaction.js'
import type { VerifiedTxCache } from './verifiedTxCache.js'

/**
 * The state transition of a block's transfers, pure and synchronous over an in-memory view of the accounts it
 * touches (LedgerState prefetches them in one read). Deterministic: the same transactions over the same accounts
 * give the same receipts and accounts on every node.
 */

/** What execution needs to know beyond the transactions. */
export interface ExecutionContext {
  /** This chain's id: a transfer for another chain fails with `wrong_chain`. */
  readonly chainId: string
  /** Hashes whose signatures this node already verified: their check is skipped (and verified ones are added). */
  readonly verified?: VerifiedTxCache
  /**
   * Skip every signature check: only for blocks certified by 2f+1 precommits (block sync), whose transactions the
   * network has already executed. Never for proposals.
   */
  readonly trustSignatures?: boolean
}

/** A check's outcome for one transfer: the new sender and recipient accounts, or why it does not apply. */
export type TransferOutcome =
  | { readonly ok: true; readonly sender: Account; readonly recipient: Account }
  | { readonly ok: false; readonly code: TxFailureCode }

/**
 * The stateful rules of a transfer whose chain id and signature are already checked, quoted from docs/formats.md:
 * "the nonce equals the sender's next nonce" (`bad_nonce`; 2^64-1 is never accepted, so the next nonce stays a u64),
 * "the balance covers the amount" (`insufficient_funds`), "the recipient's balance stays at most 2^64-1"
 * (`balance_overflow`). A self-transfer (recipient = sender) must be covered by the balance, consumes the nonce and
 * leaves the balance unchanged; `recipient` is then the same account as `sender`.
 */
export function applyTransfer(tx: Transaction, sender: Account, recipient: Account, selfTransfer: boolean): TransferOutcome {
  if (tx.nonce !== sender.nonce || tx.nonce >= U64_MAX) return { ok: false, code: 'bad_nonce' }
  if (sender.balance < tx.amount) return { ok: false, code: 'insufficient_funds' }
  if (selfTransfer) {
    const same = { balance: sender.balance, nonce: sender.nonce + 1n }
    return { ok: true, sender: same, recipient: same }
  }
  if (recipient.balance + tx.amount > U64_MAX) return { ok: false, code: 'balance_overflow' }
  return {
    ok: true,
    sender: { balance: sender.balance - tx.amount, nonce: sender.nonce + 1n },
    recipient: { balance: recipient.balance + tx.amount, nonce: recipient.nonce },
  }
}

/**
 * Applies transfers in order to `accounts` ({@link bytesKey} of the address → account; missing entries are zero
 * accounts), mutating it, and returns one receipt per transaction and the keys whose accounts changed.
 * `senders[i]`, when given, must be the address of `txs[i]`'s sender (saves recomputing it).
 */
export function applyTransfers(
  txs: readonly DecodedTransaction[],
  accounts: Map<string, Account>,
  ctx: ExecutionContext,
  senders?: readonly Uint8Array[],
): { receipts: Receipt[]; changed: Set<string> } {
  const receipts: Receipt[] = []
  const changed = new Set<string>()
  for (let i = 0; i < txs.length; i++) {
    const { tx, hash } = txs[i]!
    // "A transfer applies iff the chain id matches, the signature is valid, the nonce is next and the balance covers it."
    if (tx.chainId !== ctx.chainId) {
      receipts.push({ ok: false, code: 'wrong_chain' })
      continue
    }
    if (ctx.trustSignatures !== true && !(ctx.verified?.has(hash) ?? false)) {
      if (!verifyTransactionSignature(tx)) {
        receipts.push({ ok: false, code: 'invalid_signature' })
        continue
      }
      ctx.verified?.add(hash)
    }
    const from = bytesKey(senders?.[i] ?? senderAddress(tx))
    const to = bytesKey(tx.to)
    const self = from === to
    const outcome = applyTransfer(tx, accounts.get(from) ?? ZERO_ACCOUNT, accounts.get(to) ?? ZERO_ACCOUNT, self)
    if (!outcome.ok) {
      receipts.push({ ok: false, code: outcome.code })
      continue
    }
    accounts.set(from, outcome.sender)
    changed.add(from)
    if (!self) {
      accounts.set(to, outcome.recipient)
      changed.add(to)
    }
    receipts.push(OK_RECEIPT)
  }
  return { receipts, changed }
}
