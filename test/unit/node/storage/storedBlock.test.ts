import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeCommitCertificate, type CommitCertificate } from '../../../../consensus/index.js'
import { encodeBlock, txRoot, type Block } from '../../../../ledger/block.js'
import { decodeStoredBlock, encodeStoredBlock, type StoredBlock } from '../../../../node/storage/storedBlock.js'

/** A stored block decodes strictly: the bytes it accepts are the canonical encoding of what it returns. */

const LIMITS = { maxBytes: 1 << 20, maxTxs: 1000 }

function block(txs: number): Block {
  return {
    header: {
      chainId: 'tally-test',
      height: 2,
      time: 1_700_000_000_000,
      previousBlockHash: new Uint8Array(32).fill(1),
      txRoot: txRoot([]),
      stateRoot: new Uint8Array(32).fill(2),
      proposer: new Uint8Array(20).fill(3),
      validatorSetHash: new Uint8Array(32).fill(4),
      nextValidatorSetHash: new Uint8Array(32).fill(4),
      lastCommitHash: new Uint8Array(32).fill(6),
      evidenceRoot: txRoot([]),
    },
    txs: Array.from({ length: txs }, (_, i) => new Uint8Array(150).fill(i & 0xff)),
    evidence: [],
  }
}

const lastCommit: CommitCertificate = {
  height: 1,
  round: 0,
  valueId: new Uint8Array(32).fill(5),
  signatures: [1, 2, 3].map((i) => ({ validator: new Uint8Array(20).fill(i), signature: new Uint8Array(64).fill(i) })),
}

describe('stored blocks', () => {
  it('round-trip, and the bytes accepted are the encoding of the value returned', () => {
    for (const s of [
      { block: block(0), lastCommit: null },
      { block: block(3), lastCommit },
      { block: block(500), lastCommit },
    ] satisfies StoredBlock[]) {
      const bytes = encodeStoredBlock(s)
      const d = decodeStoredBlock(bytes, LIMITS)
      assert.ok(d.ok, d.ok ? '' : d.error.reason)
      assert.deepEqual(d.value, s)
      assert.deepEqual(encodeStoredBlock(d.value), bytes)
    }
  })

  it('refuses an envelope that is not canonical, a wrong shape, or a block or commit that does not decode', () => {
    const blockBytes = encodeBlock(block(3))
    const commitBytes = encodeCommitCertificate(lastCommit)
    const bin32 = (b: Uint8Array) => {
      const out = new Uint8Array(5 + b.byteLength)
      out[0] = 0xc6
      new DataView(out.buffer).setUint32(1, b.byteLength)
      out.set(b, 5)
      return out
    }
    const concat = (...parts: (number[] | Uint8Array)[]) => new Uint8Array(parts.flatMap((p) => [...p]))
    const rows: { desc: string; bytes: Uint8Array }[] = [
      { desc: 'the block behind a longer header than needed', bytes: concat([0x92], bin32(blockBytes), [0xc0]) },
      {
        desc: 'the commit behind a longer header than needed',
        bytes: concat([0x92], encodeStoredBlock({ block: block(3), lastCommit: null }).subarray(1, -1), bin32(commitBytes)),
      },
      { desc: 'three items', bytes: concat([0x93], encodeStoredBlock({ block: block(3), lastCommit: null }).subarray(1), [0xc0]) },
      { desc: 'no block', bytes: new Uint8Array([0x92, 0xc0, 0xc0]) },
      { desc: 'a block that does not decode', bytes: concat([0x92, 0xc4, 0x01, 0x00, 0xc0]) },
      {
        desc: 'a commit that does not decode',
        bytes: concat([0x92], encodeStoredBlock({ block: block(0), lastCommit: null }).subarray(1, -1), [0xc4, 0x01, 0x00]),
      },
    ]
    for (const r of rows) assert.equal(decodeStoredBlock(r.bytes, LIMITS).ok, false, r.desc)
  })
})
