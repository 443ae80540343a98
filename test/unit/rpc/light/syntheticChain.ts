import { addressFromPublicKey } from '../../../../crypto/address.js'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { sign } from '../../../../crypto/ed25519.js'
import { sha256 } from '../../../../crypto/hash.js'
import { buildCommitCertificate, createValidatorSet, voteSignBytes, type CommitCertificate, type ValidatorSet } from '../../../../consensus/index.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../../../ledger/block.js'
import { FailedVerificationError } from '../../../../rpc/light/errors.js'
import type { LightBlock } from '../../../../rpc/light/lightBlock.js'
import type { LightProvider } from '../../../../rpc/light/lightClient.js'
import type { TrustedBlock } from '../../../../rpc/light/verifier.js'
import { testKey } from './testChain.js'

/**
 * Header chains for the light-client tests, built in-process: any schedule of validator sets (a set per height, its
 * members named by key label), headers linked by hash and committing to their sets, commits signed by every member
 * (or the signers a test picks). The state behind the headers is not modelled: the light client never sees it.
 * A provider over such a chain can lie at chosen heights, one way at a time.
 */

/** A member of a synthetic set: the label of its key and its power. */
export interface Member {
  readonly label: string
  readonly power: number
}

const sets = new Map<string, ValidatorSet>()

function setOf(members: readonly Member[]): ValidatorSet {
  const id = JSON.stringify(members)
  const cached = sets.get(id)
  if (cached !== undefined) return cached
  const r = createValidatorSet(
    members.map((m) => {
      const k = testKey(m.label)
      return { address: addressFromPublicKey(k.publicKey), publicKey: k.publicKey, power: m.power }
    }),
  )
  if (!r.ok) throw new Error(r.error.reason)
  sets.set(id, r.value)
  return r.value
}

/** Signs a commit of `hash` at `height` by the members of `members` that `signers` keeps (all by default). */
export function signCommit(
  chainId: string,
  height: number,
  hash: Uint8Array,
  members: readonly Member[],
  signers?: (label: string) => boolean,
): CommitCertificate {
  const votes = members
    .filter((m) => signers?.(m.label) ?? true)
    .map((m) => {
      const k = testKey(m.label)
      const body = { type: 'precommit' as const, height, round: 0, valueId: hash }
      return { ...body, validator: addressFromPublicKey(k.publicKey), signature: sign(k.secretKey, voteSignBytes(chainId, body)) }
    })
  return buildCommitCertificate(height, 0, hash, votes)
}

/** A synthetic chain. */
export class SyntheticChain {
  readonly chainId: string
  readonly genesisTimeMs: number
  readonly blockMs: number
  private readonly cache = new Map<number, LightBlock>()

  constructor(
    readonly setAt: (height: number) => readonly Member[],
    o: { chainId?: string; genesisTimeMs?: number; blockMs?: number } = {},
  ) {
    this.chainId = o.chainId ?? 'light-test'
    this.genesisTimeMs = o.genesisTimeMs ?? 1_700_000_000_000
    this.blockMs = o.blockMs ?? 1000
  }

  /** The validator set in force at `height`. */
  validators(height: number): ValidatorSet {
    return setOf(this.setAt(height))
  }

  /** The block time of `height`. */
  timeOf(height: number): number {
    return this.genesisTimeMs + height * this.blockMs
  }

  /** The honest header of `height`. */
  header(height: number): BlockHeader {
    return this.block(height).header
  }

  /** The honest light block of `height`, signed by its whole set. */
  block(height: number): LightBlock {
    const cached = this.cache.get(height)
    if (cached !== undefined) return cached
    const header: BlockHeader = {
      chainId: this.chainId,
      height,
      time: this.timeOf(height),
      previousBlockHash: height === 1 ? ZERO_HASH : this.block(height - 1).hash,
      txRoot: txRoot([]),
      stateRoot: sha256(encodeCanonical(['state', height])),
      proposer: this.validators(height).validators[0]!.address,
      validatorSetHash: this.validators(height).hash,
      nextValidatorSetHash: this.validators(height + 1).hash,
      lastCommitHash: height === 1 ? ZERO_HASH : sha256(encodeCanonical(['commit', height - 1])),
      evidenceRoot: txRoot([]),
    }
    const hash = blockHash(header)
    const b = { header, hash, commit: signCommit(this.chainId, height, hash, this.setAt(height)) }
    this.cache.set(height, b)
    return b
  }

  /** The trusted block of the chain's genesis: height 0, its validators the set of height 1. */
  genesis(): TrustedBlock {
    const set = this.validators(1)
    return { chainId: this.chainId, height: 0, time: this.genesisTimeMs, header: null, hash: null, nextValidatorSetHash: set.hash, nextValidators: set }
  }
}

/**
 * The ways a provider can lie at a height:
 * - `header`: a header field changed, the commit left as it was (it commits to another block);
 * - `signature`: one signature of the commit altered;
 * - `signers`: the commit cut to one signature (too little power);
 * - `validators`: another set than the one in force answered for the height;
 * - `forged`: another block at the height, its set made of keys the chain never had, signed by them, and that set
 *   answered for the height (a consistent fork by outsiders);
 * - `relinked`: the header points at another parent, and the height's true validators signed it (only the hash
 *   chain can tell);
 * - `missing`: no block at the height.
 */
export type LieKind = 'header' | 'signature' | 'signers' | 'validators' | 'forged' | 'relinked' | 'missing'

const OUTSIDERS: readonly Member[] = [0, 1, 2, 3].map((i) => ({ label: `outsider${i}`, power: 1 }))

/** A provider over a synthetic chain that lies at the heights given. Records what it was asked. */
export class SyntheticProvider implements LightProvider {
  readonly asked: { blocks: number[]; validators: number[] } = { blocks: [], validators: [] }

  constructor(
    readonly chain: SyntheticChain,
    readonly name = 'honest',
    private readonly lies: ReadonlyMap<number, LieKind> = new Map(),
  ) {}

  /** The block this provider gives for `height`. */
  block(height: number): LightBlock {
    const b = this.chain.block(height)
    const lie = this.lies.get(height)
    const c = this.chain.chainId
    switch (lie) {
      case undefined:
      case 'validators':
        return b
      case 'header': {
        const header = { ...b.header, stateRoot: sha256(encodeCanonical(['lie', height])) }
        return { header, hash: blockHash(header), commit: b.commit }
      }
      case 'signature': {
        const signatures = b.commit.signatures.map((s, i) => (i === 0 ? { ...s, signature: Uint8Array.from(s.signature, (x, j) => (j === 0 ? x ^ 1 : x)) } : s))
        return { ...b, commit: { ...b.commit, signatures } }
      }
      case 'signers':
        return { ...b, commit: { ...b.commit, signatures: b.commit.signatures.slice(0, 1) } }
      case 'forged': {
        const header = {
          ...b.header,
          stateRoot: sha256(encodeCanonical(['forged', height])),
          validatorSetHash: setOf(OUTSIDERS).hash,
          nextValidatorSetHash: setOf(OUTSIDERS).hash,
        }
        const hash = blockHash(header)
        return { header, hash, commit: signCommit(c, height, hash, OUTSIDERS) }
      }
      case 'relinked': {
        const header = { ...b.header, previousBlockHash: sha256(encodeCanonical(['elsewhere', height])) }
        const hash = blockHash(header)
        return { header, hash, commit: signCommit(c, height, hash, this.chain.setAt(height)) }
      }
      case 'missing':
        throw new FailedVerificationError(this.name, `it has no block at height ${height}`)
    }
  }

  async lightBlocks(from: number, to: number): Promise<LightBlock[]> {
    const out: LightBlock[] = []
    for (let h = from; h <= to; h++) {
      this.asked.blocks.push(h)
      out.push(this.block(h))
    }
    return out
  }

  async lightBlock(height: number): Promise<LightBlock | undefined> {
    this.asked.blocks.push(height)
    return this.block(height)
  }

  async validators(height: number): Promise<ValidatorSet> {
    this.asked.validators.push(height)
    const lie = this.lies.get(height)
    if (lie === 'validators' || lie === 'forged') return setOf(OUTSIDERS)
    return this.chain.validators(height)
  }
}
