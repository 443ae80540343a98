import { parentPort } from 'node:worker_threads'
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, verify } from '../../crypto/ed25519.js'

/**
 * A signature verification worker of {@link VerifyPool} (node/verifyPool.ts): verifies each batch with the node's
 * own Ed25519 rule and answers one byte per item. The batch format is described there.
 */

parentPort!.on('message', (m: { id: number; count: number; buf: Uint8Array }) => {
  const results = new Uint8Array(m.count)
  const buf = m.buf
  let off = 0
  for (let i = 0; i < m.count; i++) {
    const publicKey = buf.subarray(off, off + PUBLIC_KEY_LENGTH)
    const signature = buf.subarray(off + PUBLIC_KEY_LENGTH, off + PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH)
    off += PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH
    const length = (buf[off]! << 8) | buf[off + 1]!
    const message = buf.subarray(off + 2, off + 2 + length)
    off += 2 + length
    results[i] = verify(publicKey, message, signature) ? 1 : 0
  }
  parentPort!.postMessage({ id: m.id, results }, [results.buffer])
})
