import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { encodeEvidence, type Evidence } from '../../../../consensus/index.js'
import { encodeCanonical } from '../../../../crypto/index.js'
import { MemoryKvStore } from '../../../../ledger/store.js'
import { EvidencePool } from '../../../../node/host/evidencePool.js'
import { silentLogger } from '../../../../node/logger.js'
import { ChainStore } from '../../../../node/storage/chainStore.js'

/**
 * The evidence pool keeps up to 256 pending and 1,000 committed items for the life of the node, so each must hold
 * its own bytes: a view of the message it came in (a proposal, a block, a sync reply of many blocks) or of the
 * encoder's working buffer would keep that whole buffer alive, and a validator that equivocates at every height
 * could make each item hold megabytes.
 */

function evidence(n: number): Evidence {
  const vote = (v: number) => ({
    type: 'prevote' as const,
    height: 3,
    round: n,
    valueId: new Uint8Array(32).fill(v),
    validator: new Uint8Array(20).fill(7),
    signature: new Uint8Array(64).fill(v),
  })
  return { kind: 'conflictingVotes', first: vote(1), second: vote(2) }
}

const pool = () => EvidencePool.load({ chain: new ChainStore(new MemoryKvStore()), logger: silentLogger() })

/** Commits evidence that arrived inside a block of a megabyte; returns a weak reference to the block's buffer. */
function commitFromBlock(p: EvidencePool, height: number): WeakRef<ArrayBuffer> {
  const bytes = encodeEvidence(evidence(height))
  const block = new Uint8Array(1 << 20)
  block.set(bytes, 4096)
  p.onCommitted(height, [block.subarray(4096, 4096 + bytes.byteLength)], 100)
  return new WeakRef(block.buffer)
}

describe('evidence pool memory', () => {
  it('keeps committed evidence apart from the block it came in', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const p = await pool()
    const blocks = [1, 2, 3, 4].map((h) => commitFromBlock(p, h))
    await new Promise((r) => setImmediate(r))
    gc()
    assert.deepEqual(
      blocks.map((b) => b.deref() === undefined),
      [true, true, true, true],
      'committed evidence keeps its block reachable',
    )
    assert.deepEqual(
      p.views().map((v) => (v as { round: number }).round),
      [1, 2, 3, 4],
    )
  })

  it('keeps pending evidence in buffers of its own', async () => {
    const p = await pool()
    for (let n = 0; n < 4; n++) {
      // an encoding as large as a block leaves the encoder a working buffer that large, which later encodings share
      encodeCanonical(new Uint8Array(512 * 1024))
      assert.ok(p.add(evidence(n)) !== undefined)
    }
    const held = await p.forBlock(10, 10, 100)
    assert.equal(held.length, 4)
    for (const b of held) assert.equal(b.buffer.byteLength, b.byteLength)
  })
})
