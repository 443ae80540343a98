import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeCanonical, encodeCanonical } from '../../../../crypto/canonical.js'
import { decodeByteStrings } from '../../../../node/storage/byteStrings.js'
import { Rng } from '../../../helpers/random.js'

/**
 * The envelope reader accepts exactly what the canonical encoding gives an array of byte strings and nils, and
 * agrees with the general strict decoder (crypto/canonical.ts) on every input, valid or not.
 */

const LIMITS = { maxItems: 70_000, maxBytes: 1 << 20 }

/** What the general strict decoder makes of bytes, in the reader's terms: the items, or undefined. */
function viaCanonical(bytes: Uint8Array, limits = LIMITS): (Uint8Array | null)[] | undefined {
  const d = decodeCanonical(bytes, limits.maxBytes)
  if (!d.ok || !Array.isArray(d.value) || d.value.length > limits.maxItems) return undefined
  if (!d.value.every((x) => x === null || x instanceof Uint8Array)) return undefined
  return d.value as (Uint8Array | null)[]
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}

describe('decodeByteStrings', () => {
  it('reads back what encodeCanonical writes, at every header size, as views of the input', () => {
    const sizes = [0, 1, 255, 256, 65_535, 65_536]
    const counts = [0, 1, 15, 16, 65_536]
    for (const size of sizes) {
      const items = [new Uint8Array(size).fill(7), null, new Uint8Array(3)]
      const bytes = encodeCanonical(items)
      const d = decodeByteStrings(bytes, LIMITS)
      assert.ok(d.ok, `a byte string of ${size} bytes`)
      assert.deepEqual(d.value, items)
      assert.equal(d.value[0]!.buffer, bytes.buffer, 'a view, not a copy')
    }
    for (const count of counts) {
      const items = Array.from({ length: count }, (_, i) => (i % 3 === 0 ? null : new Uint8Array([i & 0xff])))
      const d = decodeByteStrings(encodeCanonical(items), LIMITS)
      assert.ok(d.ok, `an array of ${count} items`)
      assert.deepEqual(d.value, items)
    }
  })

  it('refuses longer headers than needed, trailing or missing bytes, other types and inputs past the bounds', () => {
    const rows: { desc: string; bytes: number[] | Uint8Array; limits?: { maxItems: number; maxBytes: number } }[] = [
      { desc: 'empty input', bytes: [] },
      { desc: 'array 16 header for 1 item', bytes: [0xdc, 0x00, 0x01, 0xc0] },
      { desc: 'array 32 header for 1 item', bytes: [0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0] },
      { desc: 'bin 16 header for 1 byte', bytes: [0x91, 0xc5, 0x00, 0x01, 0x05] },
      { desc: 'bin 32 header for 1 byte', bytes: [0x91, 0xc6, 0x00, 0x00, 0x00, 0x01, 0x05] },
      { desc: 'a string item', bytes: [0x91, 0xa1, 0x41] },
      { desc: 'an integer item', bytes: [0x91, 0x01] },
      { desc: 'a nested array', bytes: [0x91, 0x90] },
      { desc: 'not an array', bytes: [0xc4, 0x00] },
      { desc: 'trailing byte', bytes: [0x91, 0xc0, 0x00] },
      { desc: 'a byte string cut short', bytes: [0x91, 0xc4, 0x05, 0x01] },
      { desc: 'an item missing', bytes: [0x92, 0xc0] },
      { desc: 'a bin 8 header cut short', bytes: [0x91, 0xc4] },
      { desc: 'an array 16 header cut short', bytes: [0xdc, 0x00] },
      { desc: 'more items than allowed', bytes: encodeCanonical([null, null, null]), limits: { maxItems: 2, maxBytes: 100 } },
      { desc: 'more bytes than allowed', bytes: encodeCanonical([new Uint8Array(100)]), limits: { maxItems: 2, maxBytes: 100 } },
    ]
    for (const r of rows) {
      const bytes = r.bytes instanceof Uint8Array ? r.bytes : new Uint8Array(r.bytes)
      const d = decodeByteStrings(bytes, r.limits ?? LIMITS)
      assert.equal(d.ok, false, r.desc)
      assert.equal(viaCanonical(bytes, r.limits ?? LIMITS), undefined, `${r.desc}: the general decoder refuses it too`)
    }
  })

  it('agrees with the general strict decoder on valid envelopes and on every mutation of them', () => {
    const rng = new Rng(21)
    for (let run = 0; run < 300; run++) {
      const items = Array.from({ length: rng.int(20) }, () => (rng.chance(0.2) ? null : rng.bytes(rng.pick([0, 1, 5, 200, 255, 256, 300]))))
      const valid = encodeCanonical(items)
      const inputs = [valid]
      for (let m = 0; m < 8; m++) {
        const b = new Uint8Array(valid)
        const at = rng.int(Math.min(b.byteLength, 12))
        b[at] = rng.chance(0.5) ? rng.int(256) : b[at]! ^ (1 << rng.int(8))
        inputs.push(b)
        inputs.push(b.subarray(0, rng.int(b.byteLength + 1)))
      }
      for (const bytes of inputs) {
        const d = decodeByteStrings(bytes, LIMITS)
        const expected = viaCanonical(bytes)
        assert.equal(d.ok, expected !== undefined, `run ${run}: ${hex(bytes.subarray(0, 16))}`)
        if (d.ok) assert.deepEqual(d.value, expected)
      }
    }
  })
})
