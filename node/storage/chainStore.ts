import type { Roster } from '../../ledger/governance.js'
import type { KvOp, KvStore } from '../../ledger/store.js'
import { decodeCanonical, encodeCanonical } from '../../crypto/canonical.js'

/**
 * The node's chain records in the same database as the ledger state (ledger keys start with 'L'; these with
 * 'B', 'C', 'H', 'T', 'R', 'M', 'E'). Every record of a height is produced as write ops, which the consensus host
 * commits in one atomic batch together with the ledger's state ops, so a committed block survives kill -9 whole.
 *
 * - `B` + height (u64 BE) → the stored block (`encodeStoredBlock` in storedBlock.ts)
 * - `C` + height → the commit certificate that decided it (consensus encoding)
 * - `T` + tx hash → canonical [height, index, ok, code]
 * - `R` + height → canonical list of [index, code] of the block's transactions that failed, in index order (empty
 *   when all applied): a block's results in one read. Heights written before this record existed have none; their
 *   results are in the `T` records
 * - `E` + evidence hash → the height (u32 BE) whose block committed it
 * - `M` "tip" → canonical [height, blockHash, blockTime]
 * - `M` "evi" → canonical list of evidence records (equivocations seen from others), newest last
 * - `M` "vsets" → canonical list of [fromHeight, roster] of every validator set the chain has had, oldest first
 *   (roster: [[address, publicKey, power, peerId, name]...] in address order)
 * - `M` "evc" → canonical list of [height, evidence bytes] of the latest committed evidence (at most
 *   {@link MAX_COMMITTED_EVIDENCE}), oldest first: what `chain_getEvidence` answers, the same on every replica
 */

const P_BLOCK = 0x42 // 'B'
const P_CERT = 0x43 // 'C'
const P_TX = 0x54 // 'T'
const P_RESULTS = 0x52 // 'R'
const P_EVIDENCE = 0x45 // 'E'
const P_META = 0x4d // 'M'
const TIP_KEY = new Uint8Array([P_META, 0x74, 0x69, 0x70]) // 'Mtip'
const EVIDENCE_KEY = new Uint8Array([P_META, 0x65, 0x76, 0x69]) // 'Mevi'
const VALIDATOR_SETS_KEY = new Uint8Array([P_META, 0x76, 0x73, 0x65, 0x74, 0x73]) // 'Mvsets'
const COMMITTED_EVIDENCE_KEY = new Uint8Array([P_META, 0x65, 0x76, 0x63]) // 'Mevc'

/** The result of a transaction that applied (shared, frozen). */
const OK = Object.freeze({ ok: true })

/** Most committed evidence records kept for `chain_getEvidence`. */
export const MAX_COMMITTED_EVIDENCE = 1000

function heightKey(prefix: number, height: number): Uint8Array {
  const k = new Uint8Array(9)
  k[0] = prefix
  new DataView(k.buffer).setBigUint64(1, BigInt(height))
  return k
}

function prefixed(prefix: number, bytes: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + bytes.byteLength)
  k[0] = prefix
  k.set(bytes, 1)
  return k
}

/** Where a committed transaction sits and how it ended. */
export interface TxLocation {
  readonly height: number
  readonly index: number
  readonly ok: boolean
  readonly code?: string
}

/** The highest committed block. */
export interface ChainTip {
  readonly height: number
  readonly blockHash: Uint8Array
  readonly blockTime: number
}

/** Everything a height writes besides the ledger state. */
export interface CommittedHeight {
  readonly height: number
  readonly blockHash: Uint8Array
  readonly blockTime: number
  readonly blockBytes: Uint8Array
  readonly certificateBytes: Uint8Array
  readonly txHashes: readonly Uint8Array[]
  readonly receipts: readonly { ok: boolean; code?: string }[]
}

/** Reads and prepares writes of the chain records; it never writes by itself. */
export class ChainStore {
  constructor(private readonly kv: KvStore) {}

  /** The write ops that record one committed height (to be written atomically with the state ops). */
  commitOps(c: CommittedHeight): KvOp[] {
    const ops: KvOp[] = [
      { type: 'put', key: heightKey(P_BLOCK, c.height), value: c.blockBytes },
      { type: 'put', key: heightKey(P_CERT, c.height), value: c.certificateBytes },
      { type: 'put', key: TIP_KEY, value: encodeCanonical([c.height, c.blockHash, BigInt(c.blockTime)]) },
    ]
    const failures: [number, string][] = []
    for (let index = 0; index < c.txHashes.length; index++) {
      const r = c.receipts[index]!
      ops.push({ type: 'put', key: prefixed(P_TX, c.txHashes[index]!), value: encodeCanonical([c.height, index, r.ok, r.code ?? null]) })
      if (!r.ok) failures.push([index, r.code ?? ''])
    }
    ops.push({ type: 'put', key: heightKey(P_RESULTS, c.height), value: encodeCanonical(failures) })
    return ops
  }

  /**
   * The results of the `count` transactions of the block at `height`, in block order, from its one record; undefined
   * when the height has none (written before the record existed: {@link txLocations} of its hashes has them).
   */
  async blockResults(height: number, count: number): Promise<{ ok: boolean; code?: string }[] | undefined> {
    const v = await this.kv.get(heightKey(P_RESULTS, height))
    if (v === undefined) return undefined
    const d = decodeCanonical(v, v.byteLength)
    const corrupt = () => new Error(`chain store: corrupt results record of height ${height}`)
    if (!d.ok || !Array.isArray(d.value)) throw corrupt()
    const results: { ok: boolean; code?: string }[] = new Array(count).fill(OK)
    let last = -1
    for (const f of d.value as unknown[]) {
      if (!Array.isArray(f) || f.length !== 2) throw corrupt()
      const [index, code] = f as [unknown, unknown]
      if (typeof index !== 'number' || !Number.isInteger(index) || index <= last || index >= count || typeof code !== 'string') throw corrupt()
      results[index] = code === '' ? { ok: false } : { ok: false, code }
      last = index
    }
    return results
  }

  /** The highest committed height, or undefined for a chain that has only its genesis state. */
  async tip(): Promise<ChainTip | undefined> {
    const v = await this.kv.get(TIP_KEY)
    if (v === undefined) return undefined
    const d = decodeCanonical(v, 256)
    if (!d.ok || !Array.isArray(d.value)) throw new Error('chain store: corrupt tip record')
    const [height, blockHash, blockTime] = d.value as [number, Uint8Array, bigint]
    return { height, blockHash, blockTime: Number(blockTime) }
  }

  async blockBytes(height: number): Promise<Uint8Array | undefined> {
    return this.kv.get(heightKey(P_BLOCK, height))
  }

  async certificateBytes(height: number): Promise<Uint8Array | undefined> {
    return this.kv.get(heightKey(P_CERT, height))
  }

  async txLocation(hash: Uint8Array): Promise<TxLocation | undefined> {
    const v = await this.kv.get(prefixed(P_TX, hash))
    return v === undefined ? undefined : decodeTxLocation(v)
  }

  /** Where several transactions sit, in one read (undefined for any not committed). */
  async txLocations(hashes: readonly Uint8Array[]): Promise<(TxLocation | undefined)[]> {
    const values = await this.kv.getMany(hashes.map((h) => prefixed(P_TX, h)))
    return values.map((v) => (v === undefined ? undefined : decodeTxLocation(v)))
  }

  /** The stored evidence records (opaque bytes), oldest first. */
  async loadEvidence(): Promise<Uint8Array[]> {
    const bytes = await this.kv.get(EVIDENCE_KEY)
    if (bytes === undefined) return []
    const d = decodeCanonical(bytes, 64 * 1024 * 1024)
    if (!d.ok || !Array.isArray(d.value) || !d.value.every((x) => x instanceof Uint8Array)) throw new Error('chain store: corrupt evidence record')
    return d.value as Uint8Array[]
  }

  /** The write op that replaces the evidence list. */
  evidenceOp(records: readonly Uint8Array[]): KvOp {
    return { type: 'put', key: EVIDENCE_KEY, value: encodeCanonical([...records]) }
  }

  /** The validator set history, oldest first (empty for a database from before it was kept). */
  async loadValidatorSets(): Promise<{ fromHeight: number; roster: Roster }[]> {
    const bytes = await this.kv.get(VALIDATOR_SETS_KEY)
    if (bytes === undefined) return []
    const d = decodeCanonical(bytes, 64 * 1024 * 1024)
    if (!d.ok || !Array.isArray(d.value)) throw new Error('chain store: corrupt validator set history')
    return (d.value as [bigint, [Uint8Array, Uint8Array, bigint, string, string][]][]).map(([from, roster]) => ({
      fromHeight: Number(from),
      roster: roster.map(([address, publicKey, power, peerId, name]) => ({ address, publicKey, power: Number(power), peerId, name })),
    }))
  }

  /** The write op that replaces the validator set history. */
  validatorSetsOp(history: readonly { fromHeight: number; roster: Roster }[]): KvOp {
    const value = encodeCanonical(history.map((e) => [BigInt(e.fromHeight), e.roster.map((m) => [m.address, m.publicKey, BigInt(m.power), m.peerId, m.name])]))
    return { type: 'put', key: VALIDATOR_SETS_KEY, value }
  }

  /** The height whose block committed the evidence with this hash, if any. */
  async evidenceHeight(hash: Uint8Array): Promise<number | undefined> {
    const v = await this.kv.get(prefixed(P_EVIDENCE, hash))
    return v === undefined ? undefined : new DataView(v.buffer, v.byteOffset, v.byteLength).getUint32(0)
  }

  /** The write ops that index evidence (by hash) as committed at `height`. */
  evidenceIndexOps(height: number, hashes: readonly Uint8Array[]): KvOp[] {
    const mark = new Uint8Array(4)
    new DataView(mark.buffer).setUint32(0, height)
    return hashes.map((h) => ({ type: 'put', key: prefixed(P_EVIDENCE, h), value: mark }))
  }

  /** The latest committed evidence, oldest first. */
  async loadCommittedEvidence(): Promise<{ height: number; bytes: Uint8Array }[]> {
    const bytes = await this.kv.get(COMMITTED_EVIDENCE_KEY)
    if (bytes === undefined) return []
    const d = decodeCanonical(bytes, 64 * 1024 * 1024)
    if (!d.ok || !Array.isArray(d.value)) throw new Error('chain store: corrupt committed evidence record')
    return (d.value as [number, Uint8Array][]).map(([height, b]) => ({ height, bytes: b }))
  }

  /** The write op that replaces the committed evidence list (the latest MAX_COMMITTED_EVIDENCE are kept). */
  committedEvidenceOp(records: readonly { height: number; bytes: Uint8Array }[]): KvOp {
    const kept = records.slice(-MAX_COMMITTED_EVIDENCE)
    return { type: 'put', key: COMMITTED_EVIDENCE_KEY, value: encodeCanonical(kept.map((r) => [r.height, r.bytes])) }
  }
}

function decodeTxLocation(v: Uint8Array): TxLocation {
  const d = decodeCanonical(v, 128)
  if (!d.ok || !Array.isArray(d.value)) throw new Error('chain store: corrupt transaction index')
  const [height, index, ok, code] = d.value as [number, number, boolean, string | null]
  return code === null ? { height, index, ok } : { height, index, ok, code }
}
