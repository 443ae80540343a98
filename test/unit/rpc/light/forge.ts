import { parseAddress } from '../../../../crypto/address.js'
import { fromHex, to0x } from '../../../../crypto/bytes.js'
import { sha256 } from '../../../../crypto/hash.js'
import { accountTreeKey, encodeAccount } from '../../../../ledger/account.js'
import { encodeAccountProof } from '../../../../ledger/accountProof.js'
import { blockHash } from '../../../../ledger/block.js'
import { decodePathBytes, rootFromPath, type TreePath } from '../../../../ledger/smt.js'
import { decodeHeader, formatHeader } from '../../../../rpc/light/lightBlock.js'

/**
 * The most careful lie about an account a node can tell: a proof that holds for the balance it claims, a header whose
 * state root is the root that proof implies, and a commit certificate that names that header's hash. Everything is
 * consistent except the signatures, which no node can make for a block the validators did not sign.
 */

type Answer = Record<string, unknown>

/** Rewrites a `ledger_getAccount`/`ledger_getBalance` proof answer (JSON) to claim `balance`. */
export function forgeAccountAnswer(answer: Answer, balance: bigint): Answer {
  const address = parseAddress(String(answer.address))!
  const d = decodePathBytes(fromHex(String(answer.proof))!)
  if (!d.ok || d.value.terminal.kind === 'other') throw new Error('forgeAccountAnswer: needs a proof ending at the account or an empty subtree')
  const old = d.value.terminal.kind === 'leaf' ? (d.value.terminal.value as bigint[]) : [0n, 0n]
  const account = { balance, nonce: old[1]! }
  const path: TreePath = { siblings: d.value.siblings, terminal: { kind: 'leaf', valueHash: sha256(encodeAccount(account)) } }
  const root = rootFromPath(accountTreeKey(address), path)!
  const h = decodeHeader(answer.header)
  if (!h.ok) throw new Error(h.error.reason)
  const header = { ...h.value, stateRoot: root }
  return {
    ...answer,
    balance: balance.toString(),
    proof: to0x(encodeAccountProof(path, account)),
    header: formatHeader(header),
    commit: { ...(answer.commit as Answer), blockHash: to0x(blockHash(header)) },
  }
}
