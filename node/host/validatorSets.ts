import { bytesEqual } from '../../crypto/bytes.js'
import { createValidatorSet, type ValidatorSet } from '../../consensus/index.js'
import type { Roster } from '../../ledger/governance.js'
import type { LedgerState } from '../../ledger/ledgerState.js'
import type { KvStore } from '../../ledger/store.js'
import type { ChainStore } from '../storage/chainStore.js'

/**
 * The validator sets of the chain by height: every roster the chain has had and the height from which it was in
 * force, with its consensus form (keys and powers, hashed as headers commit to it). The committed ledger state knows
 * the sets of the next two heights; this history keeps the earlier ones too, for evidence and block sync checks and
 * `chain_getValidators [height]`. The chain store persists it (node/storage/chainStore.ts).
 */

/** A roster and the height from which it is in force. */
export interface SetEntry {
  readonly fromHeight: number
  readonly roster: Roster
  readonly set: ValidatorSet
}

/** The consensus validator set of a roster. Throws on a roster the ledger could never have produced. */
export function consensusSet(roster: Roster): ValidatorSet {
  const r = createValidatorSet(roster.map((m) => ({ address: m.address, publicKey: m.publicKey, power: m.power })))
  if (!r.ok) throw new Error(`a validator roster is not a valid set: ${r.error.reason}`)
  return r.value
}

/** True when two rosters hold the same members with the same power, peer id and name. */
export function sameRoster(a: Roster, b: Roster): boolean {
  return (
    a.length === b.length &&
    a.every((m, i) => {
      const n = b[i]!
      return bytesEqual(m.address, n.address) && m.power === n.power && m.peerId === n.peerId && m.name === n.name
    })
  )
}

export class ValidatorSets {
  private readonly entries: SetEntry[] = []

  /** The history, oldest first. */
  get all(): readonly SetEntry[] {
    return this.entries
  }

  /** True when {@link record} would add this roster (it differs from the latest). */
  wouldRecord(fromHeight: number, roster: Roster): boolean {
    const last = this.entries.at(-1)
    return last === undefined || (fromHeight >= last.fromHeight && !sameRoster(last.roster, roster))
  }

  /** Appends a roster in force from `fromHeight` unless it equals the latest; true when it was new. */
  record(fromHeight: number, roster: Roster): boolean {
    const last = this.entries.at(-1)
    if (last !== undefined) {
      if (fromHeight < last.fromHeight) throw new Error(`validator set history: height ${fromHeight} is below ${last.fromHeight}`)
      if (sameRoster(last.roster, roster)) return false
      if (fromHeight === last.fromHeight) this.entries.pop()
    }
    this.entries.push({ fromHeight, roster, set: consensusSet(roster) })
    return true
  }

  /** The entry in force at `height` (the latest known for heights beyond the history). */
  entryAt(height: number): SetEntry {
    let found: SetEntry | undefined
    for (const e of this.entries) {
      if (e.fromHeight > height) break
      found = e
    }
    if (found === undefined) throw new Error(`no validator set is known at height ${height}`)
    return found
  }

  /** The consensus set in force at `height`. */
  at(height: number): ValidatorSet {
    return this.entryAt(height).set
  }

  /** The roster in force at `height`. */
  rosterAt(height: number): Roster {
    return this.entryAt(height).roster
  }
}

/**
 * The validator set history, checked against the committed state: the history is written in the same batch as the
 * blocks that change the sets, so the sets of the next two heights must be the ledger's. A fresh chain starts it with
 * the genesis set.
 */
export async function loadValidatorSets(chain: ChainStore, kv: KvStore, ledger: LedgerState): Promise<ValidatorSets> {
  const sets = new ValidatorSets()
  const history = await chain.loadValidatorSets()
  for (const e of history) sets.record(e.fromHeight, e.roster)
  const tip = (await chain.tip())?.height ?? 0
  if (history.length === 0) {
    if (tip > 0)
      throw new Error('the chain database has blocks but no validator set history: it was made by an incompatible version; delete data/ to sync it again')
    sets.record(1, ledger.rosterAt(1))
    await kv.write([chain.validatorSetsOp(sets.all)])
  }
  for (const h of [tip + 1, tip + 2]) {
    if (!sameRoster(sets.rosterAt(h), ledger.rosterAt(h))) {
      throw new Error(`the validator set history disagrees with the state at height ${h}: the chain database is corrupt`)
    }
  }
  return sets
}
