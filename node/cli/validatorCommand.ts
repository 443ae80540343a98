import { join, resolve } from 'node:path'
import { InvalidArgumentError, type Command } from 'commander'
import { addressFromPublicKey, formatAddress, parseAddress } from '../../crypto/address.js'
import { fromHex, to0x } from '../../crypto/bytes.js'
import { isAcceptablePublicKey, keyPairFromSeed } from '../../crypto/ed25519.js'
import { MAX_TOTAL_POWER, NAME_RE, PEER_ID_RE, actionId, checkAction, type GovernanceAction } from '../../ledger/governance.js'
import { encodeTransaction, signGovernanceTransaction, txHash } from '../../ledger/transaction.js'
import { formatAction } from '../../rpc/format.js'
import { RpcClient, RpcError, type ActionView, type PendingChangesView, type ValidatorView } from '../../rpc/client.js'
import { publicKeyOfPeerId } from '../p2p/peerId.js'
import { HomeFiles, loadHome } from './home.js'

/**
 * `tallyd validator …`: a validator's operator votes for changes of the validator set (ledger/governance.ts) and
 * follows them. `propose-add`, `propose-remove` and `propose-power` sign a governance transaction with the home's
 * validator key, with the next nonce of its address, submit it to the home's own RPC (or `--rpc`), wait until it is
 * committed or rejected, and say where the change stands; `pending` lists the changes waiting for votes.
 * Every argument is checked before anything is signed; failures are one line and a non-zero exit.
 */

/** A failure the command reports as one line. */
export class ValidatorCommandError extends Error {}

/** What the commands need from outside (tests shorten the wait). */
export interface ValidatorCommandIo {
  readonly out: (line: string) => void
  /** How long to wait for the vote to be committed (default 120 s). */
  readonly waitTimeoutMs?: number
}

const publicKeyArg = (v: string): Uint8Array => {
  const pk = fromHex(v, 32)
  if (pk === undefined || !/^0[xX]/.test(v) || !isAcceptablePublicKey(pk))
    throw new InvalidArgumentError('--public-key must be 0x + 64 hex digits of a valid Ed25519 public key')
  return pk
}
const peerIdArg = (v: string): string => {
  if (!PEER_ID_RE.test(v) || publicKeyOfPeerId(v) === undefined)
    throw new InvalidArgumentError('--peer-id must be the libp2p peer id of an Ed25519 node key (12D3KooW…), as `tallyd init` prints it')
  return v
}
const powerArg = (v: string): number => {
  const n = Number(v)
  if (!/^[1-9]\d*$/.test(v) || !Number.isSafeInteger(n) || n > MAX_TOTAL_POWER)
    throw new InvalidArgumentError(`--power must be an integer from 1 to ${MAX_TOTAL_POWER}`)
  return n
}
const nameArg = (v: string): string => {
  if (!NAME_RE.test(v)) throw new InvalidArgumentError('--name must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric')
  return v
}
const addressArg = (v: string): Uint8Array => {
  const a = parseAddress(v)
  if (a === undefined) throw new InvalidArgumentError('--address must be 0x + 40 hex digits')
  return a
}
const urlArg = (v: string): string => {
  let u: URL
  try {
    u = new URL(v)
  } catch {
    throw new InvalidArgumentError('--rpc must be an http(s) URL')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError('--rpc must be an http(s) URL')
  return v
}

/** The URL of a home's own RPC server, from its config.json (a wildcard listen address is reached on loopback). */
export function homeRpcUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' || host === '[::]' ? '[::1]' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `http://${h}:${port}`
}

/** The smallest power that is more than two thirds of `total`. */
export function passingPower(total: number): number {
  return Math.floor((2 * total) / 3) + 1
}

/** One line describing an action, with names from the set where the address is a member. */
export function describeAction(a: ActionView, names: ReadonlyMap<string, string> = new Map()): string {
  const who = (address: string) => (names.has(address) ? `${names.get(address)} (${address})` : address)
  switch (a.type) {
    case 'add':
      return `add ${a.name} (${a.address}) with power ${a.power}, peer ${a.peerId}`
    case 'remove':
      return `remove ${who(a.address)}`
    case 'power':
      return `set the power of ${who(a.address)} to ${a.power}`
  }
}

/** True when a set already shows the action's effect. */
function setShows(set: readonly ValidatorView[], a: ActionView): boolean {
  const m = set.find((v) => v.address === a.address)
  return a.type === 'remove' ? m === undefined : m !== undefined && m.power === a.power
}

const namesOf = (set: readonly ValidatorView[]) => new Map(set.map((v) => [v.address, v.name]))

/** Signs, submits and follows one vote; prints where the change stands. */
async function propose(o: { home: string; rpc?: string; json?: boolean }, action: GovernanceAction, io: ValidatorCommandIo): Promise<void> {
  const problem = checkAction(action)
  if (problem !== undefined) throw new ValidatorCommandError(problem)
  const home = loadHome(resolve(o.home))
  if (home.validatorSeed === undefined) {
    throw new ValidatorCommandError(`${join(home.dir, HomeFiles.validatorKey)} does not exist: only a validator's home can vote (this is a full node)`)
  }
  const url = o.rpc ?? homeRpcUrl(home.config.rpc.host, home.config.rpc.port)
  const client = new RpcClient({ endpoints: [url] })
  const status = await client.status()
  if (status.chainId !== home.genesis.chainId) {
    throw new ValidatorCommandError(`${url} serves chain ${status.chainId}, but this home's genesis is chain ${home.genesis.chainId}`)
  }
  const publicKey = keyPairFromSeed(home.validatorSeed).publicKey
  const voter = formatAddress(addressFromPublicKey(publicKey))
  const nonce = await client.getNextNonce(voter)
  const tx = signGovernanceTransaction({ chainId: home.genesis.chainId, from: publicKey, nonce, action }, home.validatorSeed)
  const bytes = encodeTransaction(tx)
  const hash = to0x(txHash(bytes))
  const id = to0x(actionId(action))
  const view = formatAction(action)
  try {
    await client.submitTx(to0x(bytes))
  } catch (e) {
    // the same bytes admitted already (a retry): the same vote, so follow it
    if (!(e instanceof RpcError && e.reason === 'duplicate')) throw e
  }
  if (!o.json) io.out(`submitted ${hash}: vote of ${voter} to ${describeAction(view)}`)
  const done = await client.waitForTx(hash, { timeoutMs: io.waitTimeoutMs ?? 120_000, pollMs: 250 })
  if (done.ok === false) throw new ValidatorCommandError(`transaction ${hash} was committed at height ${done.height} but failed: ${done.error ?? 'unknown'}`)
  const height = done.height!
  // where the change stands now: still collecting votes, completed (scheduled or in force), or gone
  const pending = await client.getPendingChanges()
  const change = pending.changes.find((c) => c.id === id)
  const result: Record<string, unknown> = { hash, height, id, voter }
  let line: string
  if (change !== undefined) {
    Object.assign(result, { status: 'pending', power: change.power, totalPower: change.totalPower, needed: passingPower(change.totalPower) })
    line = `  the change is pending: its votes hold ${change.power} of ${change.totalPower} power; it completes with ${passingPower(change.totalPower)}`
    if (change.passes) line += ' (reached: it completes at the end of the next block, or once the one-third limit leaves room)'
  } else if (pending.scheduled !== null && setShows(pending.scheduled.validators, view)) {
    Object.assign(result, { status: 'completed', fromHeight: pending.scheduled.fromHeight })
    line = `  the change completed: the new set is in force from height ${pending.scheduled.fromHeight}`
  } else if (setShows(await client.getValidators(), view)) {
    Object.assign(result, { status: 'completed', fromHeight: null })
    line = '  the change completed: the new set is in force'
  } else {
    Object.assign(result, { status: 'dropped' })
    line = '  the change is no longer pending and the set does not show it: it no longer applied'
  }
  if (o.json) io.out(JSON.stringify(result))
  else {
    io.out(`committed at height ${height}`)
    io.out(line)
  }
}

/** Prints the pending changes of the network an RPC endpoint serves. */
async function pending(o: { home?: string; rpc?: string; json?: boolean }, io: ValidatorCommandIo): Promise<void> {
  let url = o.rpc
  if (url === undefined && o.home !== undefined) {
    const home = loadHome(resolve(o.home))
    url = homeRpcUrl(home.config.rpc.host, home.config.rpc.port)
  }
  const client = new RpcClient({ endpoints: [url ?? 'http://127.0.0.1:8545'] })
  const p: PendingChangesView = await client.getPendingChanges()
  if (o.json) {
    io.out(JSON.stringify(p))
    return
  }
  const set = await client.getValidators(p.height)
  const names = namesOf(set)
  io.out(
    `height ${p.height}: ${set.length} validators, total power ${p.totalPower}; a change completes with ${passingPower(p.totalPower)} (more than 2/3); votes count for ${p.voteExpiryHeights} heights`,
  )
  if (p.changes.length === 0) io.out('no pending changes')
  for (const c of p.changes) {
    const state = c.forced ? 'forced by evidence' : c.passes ? 'passes' : `needs ${passingPower(c.totalPower) - c.power} more`
    io.out(`${c.id}  ${describeAction(c.action, names)}`)
    io.out(`  ${c.power} of ${c.totalPower} power (${state})`)
    for (const v of c.votes) io.out(`  vote ${names.get(v.address) ?? '(not in the set)'} ${v.address} at height ${v.height}, counts until ${v.countsUntil}`)
  }
  if (p.scheduled !== null) {
    const total = p.scheduled.validators.reduce((s, v) => s + v.power, 0)
    io.out(
      `scheduled: from height ${p.scheduled.fromHeight}, ${p.scheduled.validators.length} validators, total power ${total}: ${p.scheduled.validators.map((v) => v.name).join(', ')}`,
    )
  }
}

/** Adds the `validator` command and its subcommands to `parent` (they inherit its settings: exit override, output). */
export function validatorCommand(parent: Command, io: ValidatorCommandIo): Command {
  const cmd = parent.command('validator').description('vote for changes of the validator set and follow them (docs/operations.md)')
  const rpcOption = '--rpc <url>'
  const rpcHelp = "the RPC to submit to (default: the home's own, from its config.json)"
  cmd
    .command('propose-add')
    .description("vote to add a validator: its consensus public key, its node's peer id, its power and name")
    .requiredOption('--home <dir>', "this validator's home (its validator key signs the vote)")
    .requiredOption('--public-key <hex>', "the new validator's Ed25519 public key, 0x + 64 hex (`tallyd genesis show-key` on its home)", publicKeyArg)
    .requiredOption('--peer-id <id>', 'the libp2p peer id of its node', peerIdArg)
    .requiredOption('--power <n>', 'its voting power', powerArg)
    .requiredOption('--name <name>', 'its name, unique in the set', nameArg)
    .option(rpcOption, rpcHelp, urlArg)
    .option('--json', 'machine-readable output')
    .action((o) => propose(o, { type: 'add', publicKey: o.publicKey, peerId: o.peerId, power: o.power, name: o.name }, io))
  cmd
    .command('propose-remove')
    .description('vote to remove a validator')
    .requiredOption('--home <dir>', "this validator's home (its validator key signs the vote)")
    .requiredOption('--address <address>', "the validator's address, 0x + 40 hex", addressArg)
    .option(rpcOption, rpcHelp, urlArg)
    .option('--json', 'machine-readable output')
    .action((o) => propose(o, { type: 'remove', address: o.address }, io))
  cmd
    .command('propose-power')
    .description("vote to change a validator's power")
    .requiredOption('--home <dir>', "this validator's home (its validator key signs the vote)")
    .requiredOption('--address <address>', "the validator's address, 0x + 40 hex", addressArg)
    .requiredOption('--power <n>', 'its new voting power', powerArg)
    .option(rpcOption, rpcHelp, urlArg)
    .option('--json', 'machine-readable output')
    .action((o) => propose(o, { type: 'power', address: o.address, power: o.power }, io))
  cmd
    .command('pending')
    .description('list the changes waiting for votes, with the power their votes hold')
    .option(rpcOption, "the RPC to ask (default: the --home's own, else http://127.0.0.1:8545)", urlArg)
    .option('--home <dir>', 'a node home whose RPC to ask')
    .option('--json', 'machine-readable output (the chain_getPendingChanges result)')
    .action((o) => pending(o, io))
  return cmd
}
