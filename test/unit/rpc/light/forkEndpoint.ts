import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { addressFromPublicKey } from '../../../../crypto/address.js'
import { to0x } from '../../../../crypto/bytes.js'
import { sign, type KeyPair } from '../../../../crypto/ed25519.js'
import { buildCommitCertificate, createValidatorSet, voteSignBytes, type ValidatorSet } from '../../../../consensus/index.js'
import { blockHash } from '../../../../ledger/block.js'
import { decodeHeader, formatCommitCertificate, formatHeader, formatValidatorSet } from '../../../../rpc/light/lightBlock.js'
import { forgeAccountAnswer } from './forge.js'

/**
 * An endpoint in front of an honest one that serves a fork signed by some of the chain's own validators (more than a
 * third of the set, fewer than two thirds: beyond the threat model of f faults, within what skipping verification
 * trusts). Its balance and account answers claim another balance, against a header that commits to the forged state,
 * names the signers alone as its validator set, and is signed by them; `chain_getValidators` and `chain_getCommit`
 * at that height give the forged set and block. Everything else is the honest endpoint's answer.
 */

type Json = Record<string, unknown>

/** The forging endpoint: its URL, the height of the last fork it served, and the server to close. */
export interface ForkEndpoint {
  readonly url: string
  readonly server: Server
  /** The height of the last forged block served (0 before any). */
  forgedHeight: number
  /** How many forged account answers it gave. */
  forgeries: number
  close(): Promise<void>
}

/**
 * Starts a forging endpoint before `honestUrl`. `signers` are the validator keys that sign the fork (two of four, say),
 * each given power 1 in the forged set; `balance` is the balance claimed; `answer`, when given, is the account answer
 * (with its proof) forged instead of the honest endpoint's current one, e.g. a stale one, to fork an old height;
 * `round` is the round its commits are of (default: the round of the honest commit it forks).
 */
export async function forkEndpoint(
  honestUrl: string,
  o: { chainId: string; signers: readonly KeyPair[]; balance: bigint; answer?: () => Json | undefined; round?: number },
): Promise<ForkEndpoint> {
  const set = createValidatorSet(o.signers.map((k) => ({ address: addressFromPublicKey(k.publicKey), publicKey: k.publicKey, power: 1 })))
  if (!set.ok) throw new Error(set.error.reason)
  const forgedSet: ValidatorSet = set.value
  const forged = new Map<number, { hash: string; header: Json; commit: Json }>()

  const honest = async (request: Json): Promise<Json> => {
    const r = await fetch(honestUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) })
    return (await r.json()) as Json
  }

  const fork = (answer: Json): Json => {
    const lie = forgeAccountAnswer(answer, o.balance)
    const h = decodeHeader(lie.header)
    if (!h.ok) throw new Error(h.error.reason)
    const header = { ...h.value, validatorSetHash: forgedSet.hash }
    const hash = blockHash(header)
    const honestRound = (answer.commit as { round?: unknown } | undefined)?.round
    const round = o.round ?? (typeof honestRound === 'number' ? honestRound : 0)
    const body = { type: 'precommit' as const, height: header.height, round, valueId: hash }
    const votes = o.signers.map((k) => ({
      ...body,
      validator: addressFromPublicKey(k.publicKey),
      signature: sign(k.secretKey, voteSignBytes(o.chainId, body)),
    }))
    const commit = formatCommitCertificate(buildCommitCertificate(header.height, round, hash, votes))
    forged.set(header.height, { hash: to0x(hash), header: formatHeader(header), commit })
    endpoint.forgedHeight = header.height
    endpoint.forgeries++
    return { ...lie, header: formatHeader(header), commit }
  }

  const answerOne = async (request: Json): Promise<Json> => {
    const params = Array.isArray(request.params) ? (request.params as unknown[]) : []
    const at = typeof params[0] === 'number' ? forged.get(params[0]) : undefined
    if (request.method === 'ledger_getBalance' || request.method === 'ledger_getAccount') {
      const given = o.answer?.()
      const result = given ?? ((await honest(request)).result as Json)
      return { jsonrpc: '2.0', id: request.id, result: fork(result) }
    }
    if (request.method === 'chain_getValidators' && at !== undefined) return { jsonrpc: '2.0', id: request.id, result: formatValidatorSet(forgedSet) }
    if (request.method === 'chain_getCommit' && at !== undefined) {
      return { jsonrpc: '2.0', id: request.id, result: { height: params[0], ...at } }
    }
    return honest(request)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json | Json[]
      const out = Array.isArray(body) ? await Promise.all(body.map(answerOne)) : await answerOne(body)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(out))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const endpoint: ForkEndpoint = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    forgedHeight: 0,
    forgeries: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return endpoint
}
