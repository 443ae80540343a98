import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey } from '../../../../crypto/address.js'
import { encodeCanonical } from '../../../../crypto/canonical.js'
import { sha256 } from '../../../../crypto/hash.js'
import { sign } from '../../../../crypto/ed25519.js'
import { voteSignBytes, type CommitCertificate } from '../../../../consensus/index.js'
import { blockHash, type BlockHeader } from '../../../../ledger/block.js'
import type { LightBlock } from '../../../../rpc/light/lightBlock.js'
import {
  DEFAULT_TRUSTING_PERIOD_MS,
  trustedBlockOf,
  verifyAdjacent,
  verifyBackwards,
  verifyLightBlock,
  verifyNonAdjacent,
  type TrustedBlock,
  type Verification,
  type VerifyOptions,
} from '../../../../rpc/light/verifier.js'
import { SyntheticChain, signCommit, type Member } from './syntheticChain.js'
import { testKey } from './testChain.js'

/**
 * The pure light-client rules: adjacent and skipping verification, the trusting period and the clock, backwards
 * verification; every header field, every part of a commit and the set tampered with, one at a time.
 */

const four = (...labels: string[]): Member[] => labels.map((label) => ({ label, power: 1 }))
const base = four('a', 'b', 'c', 'd')

/** Heights 1-10 {a,b,c,d}; 11-20 {c,d,e,f} (half the power moved); 21+ {e,f,g,h} (none of the first set left). */
const chain = new SyntheticChain((h) => (h <= 10 ? base : h <= 20 ? four('c', 'd', 'e', 'f') : four('e', 'f', 'g', 'h')))

const options = (o: Partial<VerifyOptions> = {}): VerifyOptions => ({
  now: chain.timeOf(100),
  trustingPeriodMs: DEFAULT_TRUSTING_PERIOD_MS,
  maxClockDriftMs: 10_000,
  trustLevel: { numerator: 1n, denominator: 3n },
  ...o,
})

const trustedAt = (h: number): TrustedBlock => (h === 0 ? chain.genesis() : { ...trustedBlockOf(chain.block(h)), nextValidators: chain.validators(h + 1) })

function expectInvalid(r: Verification, pattern: RegExp, code: 'invalid' | 'not_enough_trust' | 'expired' = 'invalid'): void {
  assert.equal(r.ok, false, 'expected a refusal')
  if (!r.ok) {
    assert.equal(r.error.code, code, r.error.reason)
    assert.match(r.error.reason, pattern)
  }
}

/** The block with its header changed and its hash recomputed; the commit is left as it was. */
function withHeader(b: LightBlock, change: Partial<BlockHeader>): LightBlock {
  const header = { ...b.header, ...change }
  return { header, hash: blockHash(header), commit: b.commit }
}

/** The block with its header changed and signed again by the given members (a block those members did sign). */
function resigned(b: LightBlock, change: Partial<BlockHeader>, members: readonly Member[]): LightBlock {
  const header = { ...b.header, ...change }
  const hash = blockHash(header)
  return { header, hash, commit: signCommit(chain.chainId, header.height, hash, members) }
}

const withCommit = (b: LightBlock, change: (c: CommitCertificate) => CommitCertificate): LightBlock => ({ ...b, commit: change(b.commit) })

describe('adjacent verification', () => {
  test('the first header from the genesis, and any next header, verify', () => {
    assert.deepEqual(verifyAdjacent(chain.genesis(), chain.block(1), chain.validators(1), options()), { ok: true, value: undefined })
    for (const h of [1, 9, 10, 11, 20]) {
      assert.deepEqual(verifyAdjacent(trustedAt(h), chain.block(h + 1), chain.validators(h + 1), options()), { ok: true, value: undefined }, `height ${h + 1}`)
    }
  })

  test('every header field changed: the commit no longer commits to it', () => {
    const t = trustedAt(4)
    const b = chain.block(5)
    const other32 = sha256(encodeCanonical(['other']))
    const changes: [string, Partial<BlockHeader>][] = [
      ['chainId', { chainId: 'other-chain' }],
      ['time', { time: b.header.time + 1 }],
      ['txRoot', { txRoot: other32 }],
      ['stateRoot', { stateRoot: other32 }],
      ['proposer', { proposer: new Uint8Array(20).fill(7) }],
      ['lastCommitHash', { lastCommitHash: other32 }],
      ['evidenceRoot', { evidenceRoot: other32 }],
      ['nextValidatorSetHash', { nextValidatorSetHash: other32 }],
    ]
    for (const [field, change] of changes) {
      const r = verifyAdjacent(t, withHeader(b, change), chain.validators(5), options())
      assert.equal(r.ok, false, field)
      if (!r.ok) assert.equal(r.error.code, 'invalid', field)
    }
    expectInvalid(
      verifyAdjacent(t, withHeader(b, { stateRoot: other32 }), chain.validators(5), options()),
      /commit does not verify: certificate is for another block/,
    )
    expectInvalid(verifyAdjacent(t, withHeader(b, { chainId: 'other-chain' }), chain.validators(5), options()), /of chain "other-chain"/)
    // the set hash and the parent are checked before any signature
    expectInvalid(verifyAdjacent(t, withHeader(b, { validatorSetHash: other32 }), chain.validators(5), options()), /not the one the header names/)
    expectInvalid(verifyAdjacent(t, withHeader(b, { previousBlockHash: other32 }), chain.validators(5), options()), /does not extend the trusted block 4/)
  })

  test('a header the set did sign but that does not extend the trusted one, or names another set', () => {
    const t = trustedAt(4)
    expectInvalid(
      verifyAdjacent(t, resigned(chain.block(5), { previousBlockHash: sha256(encodeCanonical(['x'])) }, base), chain.validators(5), options()),
      /does not extend/,
    )
    // a header naming the set of height 11 at height 5, signed by that set, with that set answered for it
    const other = four('c', 'd', 'e', 'f')
    const b = resigned(chain.block(5), { validatorSetHash: chain.validators(11).hash }, other)
    expectInvalid(verifyAdjacent(t, b, chain.validators(11), options()), /not the one the trusted header 4 announced/)
  })

  test('the commit tampered: a signature, the signers, an outsider, a duplicate, the height, the round', () => {
    const t = trustedAt(4)
    const b = chain.block(5)
    const set = chain.validators(5)
    const flip = (s: Uint8Array) => Uint8Array.from(s, (x, j) => (j === 10 ? x ^ 0x80 : x))
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, signatures: c.signatures.map((s, i) => (i === 2 ? { ...s, signature: flip(s.signature) } : s)) })),
        set,
        options(),
      ),
      /bad signature/,
    )
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, signatures: c.signatures.slice(0, 2) })),
        set,
        options(),
      ),
      /signers hold 2 of 4/,
    )
    const outsider = testKey('outsider')
    const body = { type: 'precommit' as const, height: 5, round: 0, valueId: b.hash }
    const extra = { validator: addressFromPublicKey(outsider.publicKey), signature: sign(outsider.secretKey, voteSignBytes(chain.chainId, body)) }
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, signatures: [...c.signatures.slice(0, 2), extra] })),
        set,
        options(),
      ),
      /is not a validator/,
    )
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, signatures: [...c.signatures.slice(0, 2), c.signatures[0]!] })),
        set,
        options(),
      ),
      /signs twice/,
    )
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, height: 6 })),
        set,
        options(),
      ),
      /certificate is for height 6/,
    )
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, round: 1 })),
        set,
        options(),
      ),
      /bad signature/,
    )
    expectInvalid(
      verifyAdjacent(
        t,
        withCommit(b, (c) => ({ ...c, valueId: chain.block(4).hash })),
        set,
        options(),
      ),
      /another block/,
    )
  })

  test('the set tampered: another set, a changed power, a member swapped', () => {
    const t = trustedAt(4)
    const b = chain.block(5)
    const bad = [
      chain.validators(21),
      new SyntheticChain(() => [{ label: 'a', power: 2 }, ...four('b', 'c', 'd')]).validators(1),
      new SyntheticChain(() => four('a', 'b', 'c', 'z')).validators(1),
    ]
    for (const set of bad) expectInvalid(verifyAdjacent(t, b, set, options()), /not the one the header names/)
  })

  test('times: not after the trusted block, or ahead of the clock beyond the drift', () => {
    const t = trustedAt(4)
    const set = chain.validators(5)
    const early = resigned(chain.block(5), { time: chain.timeOf(4) }, base)
    expectInvalid(verifyAdjacent(t, early, set, options()), /not after the trusted block/)
    const b = chain.block(5)
    expectInvalid(verifyAdjacent(t, b, set, options({ now: b.header.time - 10_001 })), /ahead of the local clock/)
    assert.equal(verifyAdjacent(t, b, set, options({ now: b.header.time - 10_000 })).ok, true)
  })

  test('a trusted block older than the trusting period verifies nothing', () => {
    const t = trustedAt(4)
    expectInvalid(
      verifyAdjacent(t, chain.block(5), chain.validators(5), options({ now: t.time + DEFAULT_TRUSTING_PERIOD_MS })),
      /older than the trusting period/,
      'expired',
    )
    assert.equal(verifyAdjacent(t, chain.block(5), chain.validators(5), options({ now: t.time + DEFAULT_TRUSTING_PERIOD_MS - 1 })).ok, true)
    expectInvalid(
      verifyAdjacent(chain.genesis(), chain.block(1), chain.validators(1), options({ now: chain.genesisTimeMs + 1000, trustingPeriodMs: 1000 })),
      /trusting period/,
      'expired',
    )
  })
})

describe('skipping verification', () => {
  test('the same set: a header far ahead verifies in one step', () => {
    assert.deepEqual(verifyNonAdjacent(chain.genesis(), chain.block(10), chain.validators(10), options()), { ok: true, value: undefined })
  })

  test('across a change that leaves more than a third of the trusted power signing', () => {
    // {a,b,c,d} → {c,d,e,f}: c and d hold 2 of 4 of the trusted set
    assert.deepEqual(verifyNonAdjacent(trustedAt(5), chain.block(15), chain.validators(15), options()), { ok: true, value: undefined })
  })

  test('too little of the trusted set signed: not enough trust (bisect), never invalid', () => {
    expectInvalid(verifyNonAdjacent(trustedAt(5), chain.block(25), chain.validators(25), options()), /trusted signers hold 0 of 4/, 'not_enough_trust')
    // with a trust level of 2/3, half the trusted power is not enough either
    expectInvalid(
      verifyNonAdjacent(trustedAt(5), chain.block(15), chain.validators(15), options({ trustLevel: { numerator: 2n, denominator: 3n } })),
      /not more than 2\/3/,
      'not_enough_trust',
    )
  })

  test('a forged block signed by outsiders, with their set, is not trusted; a lie at the skipped-to header is invalid', () => {
    const outsiders = four('o1', 'o2', 'o3', 'o4')
    const fake = new SyntheticChain(() => outsiders).validators(1)
    const forged = resigned(chain.block(8), { validatorSetHash: fake.hash, stateRoot: sha256(encodeCanonical(['forged'])) }, outsiders)
    expectInvalid(verifyNonAdjacent(chain.genesis(), forged, fake, options()), /trusted signers hold 0 of 4/, 'not_enough_trust')
    const b = chain.block(8)
    expectInvalid(
      verifyNonAdjacent(chain.genesis(), withHeader(b, { stateRoot: sha256(encodeCanonical(['x'])) }), chain.validators(8), options()),
      /another block/,
    )
    expectInvalid(
      verifyNonAdjacent(
        chain.genesis(),
        withCommit(b, (c) => ({ ...c, signatures: c.signatures.slice(0, 2) })),
        chain.validators(8),
        options(),
      ),
      /signers hold 2 of 4/,
    )
    expectInvalid(verifyNonAdjacent(chain.genesis(), b, chain.validators(21), options()), /not the one the header names/)
    // two trusted signers and two outsiders' signatures that do not verify: counted signatures must all verify
    const mixed = withCommit(chain.block(15), (c) => ({ ...c, signatures: c.signatures.map((s) => ({ ...s, signature: new Uint8Array(64) })) }))
    expectInvalid(verifyNonAdjacent(trustedAt(5), mixed, chain.validators(15), options()), /against the trusted set: bad signature/)
  })

  test('verifyLightBlock picks adjacent or skipping by the heights', () => {
    assert.equal(verifyLightBlock(trustedAt(9), chain.block(10), chain.validators(10), options()).ok, true)
    assert.equal(verifyLightBlock(trustedAt(2), chain.block(10), chain.validators(10), options()).ok, true)
    expectInvalid(verifyLightBlock(trustedAt(10), chain.block(10), chain.validators(10), options()), /not above the trusted height/)
  })
})

describe('backwards verification', () => {
  test('the hash chain: the header below, and a header that is not it', () => {
    assert.deepEqual(verifyBackwards(chain.header(10), chain.header(9)), { ok: true, value: undefined })
    expectInvalid(verifyBackwards(chain.header(10), chain.header(8)), /not the one below 10/)
    expectInvalid(verifyBackwards(chain.header(10), { ...chain.header(9), stateRoot: sha256(encodeCanonical(['x'])) }), /not the one trusted header 10 extends/)
    expectInvalid(verifyBackwards(chain.header(10), { ...chain.header(9), chainId: 'other' }), /of chain "other"/)
  })
})
