import { bytesKey } from '../crypto/bytes.js'
import { err, ok, type Result } from '../crypto/result.js'
import type { Account } from './account.js'
import { ZERO_ACCOUNT } from './account.js'
import { castVote, endBlock, type GovernanceParams, type GovernanceState } from './governance.js'
import { OK_RECEIPT, type Receipt, type TxFailure } from './receipt.js'
import { U64_MAX, senderAddress, verifyDecodedSignature, type DecodedTransaction, type Transaction } from './transaction.js'
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
   * Skip every signature check: only for a block whose commit certificate verified against the validator set of its
   * height (block sync). More than two thirds of the power precommitted it, so with at most f Byzantine validators at
   * least f + 1 honest ones executed it, signatures included, before precommitting; checking the signatures again adds
   * nothing for a node that checks the certificate and that execution gives the header's state root (everything else,
   * nonces and balances, is still applied and checked). Never for a proposal: no certificate covers it yet.
   */
  readonly trustSignatures?: boolean
  /**
   * The block being executed: its height, the governance parameters and the validators its committed evidence
   * convicts. Governance votes need it (a vote without it fails `not_validator`), and so does the end-of-block step
   * that expires votes and completes changes (skipped without it: only for computations outside a chain).
   */
  readonly block?: {
    readonly height: number
    readonly governance: GovernanceParams
    readonly offenders?: readonly Uint8Array[]
  }
}

/** A check's outcome for one transfer: the new sender and recipient accounts, or why it does not apply. */
export type TransferOutcome = Result<{ readonly sender: Account; readonly recipient: Account }, TxFailure>

/**
 * The stateful rules of a transfer whose chain id and signature are already checked, quoted from docs/formats.md:
 * "the nonce equals the sender's next nonce" (`bad_nonce`; 2^64-1 is never accepted, so the next nonce stays a u64),
 * "the balance covers the amount" (`insufficient_funds`), "the recipient's balance stays at most 2^64-1"
 * (`balance_overflow`). A self-transfer (recipient = sender) must be covered by the balance, consumes the nonce and
 * leaves the balance unchanged; `recipient` is then the same account as `sender`.
 */
export function applyTransfer(tx: Transaction, sender: Account, recipient: Account, selfTransfer: boolean): TransferOutcome {
  if (tx.nonce !== sender.nonce || tx.nonce >= U64_MAX) return err({ code: 'bad_nonce' })
  if (sender.balance < tx.amount) return err({ code: 'insufficient_funds' })
  if (selfTransfer) {
    const same = { balance: sender.balance, nonce: sender.nonce + 1n }
    return ok({ sender: same, recipient: same })
  }
  if (recipient.balance + tx.amount > U64_MAX) return err({ code: 'balance_overflow' })
  return ok({
    sender: { balance: sender.balance - tx.amount, nonce: sender.nonce + 1n },
    recipient: { balance: recipient.balance + tx.amount, nonce: recipient.nonce },
  })
}

/**
 * Applies transactions in order to `accounts` ({@link bytesKey} of the address → account; missing entries are zero
 * accounts) and to the governance state, mutating the map, and returns one receipt per transaction, the keys whose
 * accounts changed and the governance state after the block (the end-of-block step included when `ctx.block` is
 * given). `senders[i]`, when given, must be the address of `txs[i]`'s sender (saves recomputing it).
 */
export function applyTransactions(
  txs: readonly DecodedTransaction[],
  accounts: Map<string, Account>,
  governance: GovernanceState | undefined,
  ctx: ExecutionContext,
  senders?: readonly Uint8Array[],
): { receipts: Receipt[]; changed: Set<string>; governance: GovernanceState | undefined } {
  const receipts: Receipt[] = []
  const changed = new Set<string>()
  let gov = governance
  for (let i = 0; i < txs.length; i++) {
    const { tx, hash } = txs[i]!
    // "A transaction applies iff the chain id matches, the signature is valid, the nonce is next and (for a transfer)
    // the balance covers it, or (for a governance vote) the vote is accepted."
    if (tx.chainId !== ctx.chainId) {
      receipts.push({ ok: false, code: 'wrong_chain' })
      continue
    }
    if (ctx.trustSignatures !== true && !(ctx.verified?.has(hash) ?? false)) {
      if (!verifyDecodedSignature(txs[i]!)) {
        receipts.push({ ok: false, code: 'invalid_signature' })
        continue
      }
      ctx.verified?.add(hash)
    }
    const sender = senders?.[i] ?? senderAddress(tx)
    const from = bytesKey(sender)
    const account = accounts.get(from) ?? ZERO_ACCOUNT
    if (tx.kind === 'governance') {
      if (tx.nonce !== account.nonce || tx.nonce >= U64_MAX) {
        receipts.push({ ok: false, code: 'bad_nonce' })
        continue
      }
      if (gov === undefined || ctx.block === undefined) {
        receipts.push({ ok: false, code: 'not_validator' })
        continue
      }
      const voted = castVote(gov, ctx.block.height, sender, tx.action, ctx.block.governance)
      if (!voted.ok) {
        receipts.push({ ok: false, code: voted.error.code })
        continue
      }
      gov = voted.value
      accounts.set(from, { balance: account.balance, nonce: account.nonce + 1n })
      changed.add(from)
      receipts.push(OK_RECEIPT)
      continue
    }
    const to = bytesKey(tx.to)
    const self = from === to
    const outcome = applyTransfer(tx, account, accounts.get(to) ?? ZERO_ACCOUNT, self)
    if (!outcome.ok) {
      receipts.push({ ok: false, code: outcome.error.code })
      continue
    }
    accounts.set(from, outcome.value.sender)
    changed.add(from)
    if (!self) {
      accounts.set(to, outcome.value.recipient)
      changed.add(to)
    }
    receipts.push(OK_RECEIPT)
  }
  if (gov !== undefined && ctx.block !== undefined) gov = endBlock(gov, ctx.block.height, ctx.block.offenders ?? [], ctx.block.governance)
  return { receipts, changed, governance: gov }
}
