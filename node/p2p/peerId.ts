import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, bytesEqual, concatBytes, keyPairFromSeed } from '../../crypto/index.js'

/**
 * The binding of a validator's libp2p identity to its consensus key: a validator's libp2p peer id IS the peer id
 * of its Ed25519 consensus public key, so the genesis file names each validator's peer id and the connection
 * gater admits exactly the genesis validators (Noise proves possession of the key during the handshake).
 */

/** The libp2p peer id string (base58btc identity multihash, `12D3KooW…`) of an Ed25519 public key. */
export function peerIdOf(publicKey: Uint8Array): string {
  if (publicKey.byteLength !== PUBLIC_KEY_LENGTH) throw new RangeError(`public key must be ${PUBLIC_KEY_LENGTH} bytes`)
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString()
}

/**
 * The libp2p private key of a 32-byte Ed25519 seed (the consensus secret key). libp2p's raw Ed25519 private key
 * is seed || public key; the result's public key is checked against our own derivation.
 */
export function libp2pPrivateKeyFromSeed(seed: Uint8Array): Ed25519PrivateKey {
  if (seed.byteLength !== SECRET_KEY_LENGTH) throw new RangeError(`secret key must be ${SECRET_KEY_LENGTH} bytes`)
  const { publicKey } = keyPairFromSeed(seed)
  const key = privateKeyFromRaw(concatBytes(seed, publicKey)) as PrivateKey
  if (key.type !== 'Ed25519' || !bytesEqual(key.publicKey.raw, publicKey)) {
    throw new Error('libp2p derived a different Ed25519 public key from the seed')
  }
  return key
}

/** True when libp2p reads `text` as a peer id (of any key type). */
export function isPeerId(text: string): boolean {
  try {
    peerIdFromString(text)
    return true
  } catch {
    return false
  }
}

/**
 * The Ed25519 public key inside a peer id string, or undefined when the text is not the peer id of an Ed25519 key.
 * Used to validate a genesis file's `peerId` against the validator's public key.
 */
export function publicKeyOfPeerId(peerId: string): Uint8Array | undefined {
  try {
    const id = peerIdFromString(peerId)
    if (id.type !== 'Ed25519' || id.publicKey === undefined) return undefined
    return id.publicKey.raw
  } catch {
    return undefined
  }
}
