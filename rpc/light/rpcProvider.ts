import { to0x } from '../../crypto/bytes.js'
import type { ValidatorSet } from '../../consensus/index.js'
import { type RpcClient, RpcUnreachableError } from '../client.js'
import { FailedVerificationError } from './errors.js'
import { decodeLightBlock, decodeValidatorSet, type LightBlock } from './lightBlock.js'
import type { LightProvider } from './lightClient.js'

/** A `chain_getCommit` result, not checked yet. */
type CommitAnswer = { readonly height?: unknown; readonly header?: unknown; readonly commit?: unknown }

/**
 * A light-client provider over one JSON-RPC endpoint: `chain_getCommit` (several heights in one batch) and
 * `chain_getValidators`. Answers that do not decode, or that miss a height below the endpoint's own tip, fail
 * verification; transport failures and error answers propagate as the client's errors (the endpoint is then
 * skipped, not called a liar).
 */
export class RpcLightProvider implements LightProvider {
  readonly name: string

  /**
   * `client` must be bound to one endpoint (failover is the caller's, endpoint by endpoint). Past `limit.deadline`
   * (`Date.now()` time) the provider asks no more: it throws {@link RpcUnreachableError} with `limit.late`.
   */
  constructor(
    private readonly client: RpcClient,
    private readonly limit?: { readonly deadline: number; readonly late: string },
  ) {
    this.name = client.endpoint
  }

  private checkDeadline(): void {
    if (this.limit !== undefined && Date.now() >= this.limit.deadline) throw new RpcUnreachableError([{ endpoint: this.name, error: this.limit.late }])
  }

  async lightBlocks(from: number, to: number): Promise<LightBlock[]> {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < from || to - from >= 100) {
      throw new RangeError(`lightBlocks: bad range ${from}..${to}`)
    }
    const calls = []
    for (let h = from; h <= to; h++) calls.push({ method: 'chain_getCommit', params: [h] })
    this.checkDeadline()
    const answers = await this.client.batch(calls)
    return answers.map((a, i) => {
      const h = from + i
      if (!a.ok) throw a.error
      if (a.result === null || typeof a.result !== 'object')
        throw new FailedVerificationError(this.name, `it has no block at height ${h}, below a height it served`)
      return this.decode(h, a.result as CommitAnswer)
    })
  }

  /** A `chain_getCommit` answer for `height` that is an object, decoded. */
  private decode(height: number, r: CommitAnswer): LightBlock {
    const b = decodeLightBlock(r.header, r.commit)
    if (!b.ok) throw new FailedVerificationError(this.name, `block ${height}: ${b.error.reason}`)
    if (b.value.header.height !== height || r.height !== height)
      throw new FailedVerificationError(this.name, `it answered height ${b.value.header.height} for height ${height}`)
    return b.value
  }

  async lightBlock(height: number): Promise<LightBlock | undefined> {
    if (!Number.isSafeInteger(height) || height < 1) throw new RangeError(`lightBlock: bad height ${height}`)
    this.checkDeadline()
    const r: unknown = await this.client.call('chain_getCommit', [height])
    if (r === null) return undefined
    if (typeof r !== 'object') throw new FailedVerificationError(this.name, `its answer for block ${height} is not an object`)
    return this.decode(height, r as CommitAnswer)
  }

  async submitEvidence(evidence: Uint8Array): Promise<'new' | 'known' | 'ahead'> {
    const r = await this.client.call<{ status?: unknown }>('evidence_submit', [to0x(evidence)])
    const status = typeof r === 'object' && r !== null ? r.status : undefined
    if (status !== 'new' && status !== 'known' && status !== 'ahead') throw new Error(`${this.name} answered evidence_submit with no status`)
    return status
  }

  async validators(height: number): Promise<ValidatorSet> {
    this.checkDeadline()
    const r = await this.client.call('chain_getValidators', [height])
    const set = decodeValidatorSet(r)
    if (!set.ok) throw new FailedVerificationError(this.name, `the validator set of height ${height}: ${set.error.reason}`)
    return set.value
  }
}
