import { bytesEqual } from '../../crypto/index.js'
import { actionId, applyAction, memberOf, movedPower, rosterAt, totalPower, type GovernanceAction, type Member, type Roster } from '../../ledger/governance.js'
import { encodeTransaction, signGovernanceTransaction } from '../../ledger/transaction.js'
import type { Rng } from '../helpers/random.js'
import type { Checker } from './checker.js'
import type { Scheduler } from './scheduler.js'
import type { SimNetwork } from './simNetwork.js'
import type { SimValidator } from './simNode.js'

/**
 * The operators of the honest validators, changing the validator set by on-chain governance (ledger/governance.ts) as
 * a plan says: one change after another, each voted for by every honest validator of the set in force with a
 * governance transaction signed by its key, submitted to its own node's mempool (another running node's while its
 * own is down) and gossiped from there, the path of the wallets' transfers. A validator whose vote the chain has not
 * recorded submits it again after a pause (its node may have lost it in a crash; a vote left over from an earlier
 * change may hold its nonce in some mempools until a proposer drops it). The next change is voted for once the
 * previous one is in force. Operators read the committed chain from the checker's reference replica. Byzantine
 * validators never vote.
 */

/** A change of the validator set, naming simulated nodes by index. */
export type SetChange =
  | { readonly type: 'add'; readonly node: number; readonly power?: number }
  | { readonly type: 'remove'; readonly node: number }
  | { readonly type: 'power'; readonly node: number; readonly power: number }

/** The set changes of a run. */
export interface MembershipOptions {
  /** Voted for in this order, each once the previous one is in force. */
  readonly changes: readonly SetChange[]
  /** Voting on the first change starts once this height is committed (default 1). */
  readonly afterHeight?: number
  /** Heights the run goes on for after the last change came into force (default 2). */
  readonly settleHeights?: number
  /** Pause before a validator whose vote is not recorded yet submits it again (default 2 s). */
  readonly resubmitMs?: number
}

/** A simulated node as a member of a set: its keys, libp2p peer id and name. */
export interface NodeIdentity {
  readonly publicKey: Uint8Array
  readonly secretKey: Uint8Array
  readonly address: Uint8Array
  readonly peerId: string
  readonly name: string
}

/** What the governors work with. */
export interface GovernorsContext {
  readonly sched: Scheduler
  readonly rng: Rng
  readonly chainId: string
  readonly nodes: readonly SimValidator[]
  readonly network: SimNetwork
  readonly identities: readonly NodeIdentity[]
  readonly honest: ReadonlySet<number>
  readonly checker: Checker
}

/** The governance action of a planned change. */
export function actionOf(change: SetChange, identities: readonly NodeIdentity[]): GovernanceAction {
  const who = identities[change.node]
  if (who === undefined) throw new RangeError(`set change names node ${change.node}, which does not exist`)
  switch (change.type) {
    case 'add':
      return { type: 'add', publicKey: who.publicKey, power: change.power ?? 1, peerId: who.peerId, name: who.name }
    case 'remove':
      return { type: 'remove', address: who.address }
    case 'power':
      return { type: 'power', address: who.address, power: change.power }
  }
}

/** True when a roster shows the change's effect. */
function shows(roster: Roster, change: SetChange, identities: readonly NodeIdentity[]): boolean {
  const m = memberOf(roster, identities[change.node]!.address)
  if (change.type === 'remove') return m === undefined
  return m !== undefined && m.power === (change.power ?? 1)
}

/**
 * The sets a plan goes through, from the genesis roster: one roster per change, or why a change cannot apply (it is
 * not a change of the roster before it, or it moves more power than governance accepts at once).
 */
export function plannedRosters(genesis: Roster, changes: readonly SetChange[], identities: readonly NodeIdentity[]): { rosters: Roster[] } | { error: string } {
  const rosters: Roster[] = [genesis]
  for (const [k, change] of changes.entries()) {
    const before = rosters.at(-1)!
    const next = applyAction(before, actionOf(change, identities))
    if (!next.ok) return { error: `change ${k} (${describeChange(change)}): ${next.error.reason}` }
    if (3n * movedPower(before, next.value) > totalPower(before))
      return { error: `change ${k} (${describeChange(change)}) moves more than a third of the power` }
    rosters.push(next.value)
  }
  return { rosters }
}

/** A short description of a change, for reports. */
export function describeChange(c: SetChange): string {
  return c.type === 'add'
    ? `add ${c.node}${c.power === undefined ? '' : ` (power ${c.power})`}`
    : c.type === 'remove'
      ? `remove ${c.node}`
      : `power of ${c.node} to ${c.power}`
}

export class Governors {
  /** The changes in force so far, with the height from which each is. */
  readonly applied: { readonly change: SetChange; readonly fromHeight: number }[] = []
  /** Governance transactions submitted (first submissions of a vote). */
  votes = 0
  private readonly lastSubmit = new Map<string, number>()

  constructor(
    private readonly o: MembershipOptions,
    private readonly ctx: GovernorsContext,
  ) {}

  /** Starts voting (a look at the chain every quarter of a second). */
  start(): void {
    this.ctx.sched.every(250, null, () => void this.tick().catch((e: Error) => this.ctx.checker.violation('error', `governors: ${e.stack ?? e.message}`)))
  }

  /** True once every change of the plan is in force. */
  get complete(): boolean {
    return this.applied.length === this.o.changes.length
  }

  /** The height the run must reach: two (or `settleHeights`) past the last change's first height; undefined before. */
  get settledHeight(): number | undefined {
    if (!this.complete) return undefined
    return (this.applied.at(-1)?.fromHeight ?? 0) + (this.o.settleHeights ?? 2)
  }

  private async tick(): Promise<void> {
    const { checker, identities } = this.ctx
    const ledger = checker.reference
    const gov = ledger?.governance()
    const tip = checker.referenceHeight
    if (ledger === undefined || gov === undefined || tip < (this.o.afterHeight ?? 1) || this.complete) return
    const change = this.o.changes[this.applied.length]!
    if (shows(rosterAt(gov, tip + 1), change, identities)) {
      // in force from the next height on: the set entry that shows it first
      const entry = checker.sets.findLast((e) => e.fromHeight <= tip + 1)!
      this.applied.push({ change, fromHeight: entry.fromHeight })
      return
    }
    if (shows(gov.schedule.at(-1)!.roster, change, identities)) return // completed: in force two heights on
    const action = actionOf(change, identities)
    const id = actionId(action)
    const pending = gov.pending.find((p) => bytesEqual(p.id, id))
    const voters = rosterAt(gov, tip + 1)
      .map((m: Member) => checker.nodeOf(m.address))
      .filter((i): i is number => i !== undefined && this.ctx.honest.has(i))
    for (const voter of voters) {
      const who = identities[voter]!
      if (pending?.votes.some((v) => bytesEqual(v.address, who.address)) === true) continue
      const key = `${this.applied.length}/${voter}`
      const last = this.lastSubmit.get(key)
      if (last !== undefined && this.ctx.sched.now - last < (this.o.resubmitMs ?? 2_000)) continue
      if (last === undefined) this.votes++
      this.lastSubmit.set(key, this.ctx.sched.now)
      const account = await ledger.getAccount(who.address)
      const tx = signGovernanceTransaction({ chainId: this.ctx.chainId, from: who.publicKey, nonce: account.nonce, action }, who.secretKey)
      void this.submit(voter, encodeTransaction(tx))
    }
  }

  /** Submits to the voter's own node (another running node's when it is down or refuses), then gossips it from there. */
  private async submit(voter: number, bytes: Uint8Array): Promise<void> {
    const running = this.ctx.nodes.filter((n) => n.peer() !== undefined && n.inc?.mempool !== undefined)
    if (running.length === 0) return
    const own = running.find((n) => n.index === voter)
    const first = own ?? this.ctx.rng.pick(running)
    if (await this.submitTo(first, bytes)) return
    const others = running.filter((n) => n !== first)
    if (others.length > 0) await this.submitTo(this.ctx.rng.pick(others), bytes)
  }

  private async submitTo(node: SimValidator, bytes: Uint8Array): Promise<boolean> {
    const mempool = node.inc?.mempool
    if (mempool === undefined || node.peer() === undefined) return false
    const r = await mempool.add(bytes)
    if (!r.ok || node.peer() === undefined) return false
    const targets = node.hooks.gossipTargets?.(node) ?? this.ctx.nodes.map((n) => n.index).filter((i) => i !== node.index)
    for (const to of targets) this.ctx.network.sendTxs(node.index, to, [bytes])
    return true
  }
}
