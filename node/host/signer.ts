import { join } from 'node:path'
import { addressFromPublicKey } from '../../crypto/address.js'
import { bytesEqual } from '../../crypto/bytes.js'
import { keyPairFromSeed } from '../../crypto/ed25519.js'
import { SafetyGuard } from '../../consensus/index.js'
import { HomeFiles, type NodeHome } from '../cli/home.js'
import type { Logger } from '../logger.js'
import { peerIdOf } from '../p2p/peerId.js'
import { FileSafetyStore } from '../storage/safetyFile.js'

/** This node's signer: the guard over its validator key, or null for a node that never signs. */
export interface Signer {
  readonly guard: SafetyGuard | null
  /** Closes the guard's record file. */
  close(): void
}

/**
 * Loads the validator key of a home behind its safety guard; a home without one runs a node that never signs. The key
 * need not be in the genesis set: governance may add it later, and the consensus core signs only at heights whose set
 * holds it. A validator's libp2p identity is bound to it by the set that lists it: when the genesis lists this key, the
 * node key must be the peer id listed there (a validator added later is checked against its governance entry).
 */
export function loadSigner(home: NodeHome, logger: Logger): Signer {
  if (home.validatorSeed === undefined) return { guard: null, close: () => {} }
  const address = addressFromPublicKey(keyPairFromSeed(home.validatorSeed).publicKey)
  const listed = home.genesis.validators.find((v) => bytesEqual(v.address, address))
  const own = peerIdOf(keyPairFromSeed(home.nodeSeed).publicKey)
  if (listed !== undefined && listed.peerId !== own) {
    throw new Error(`${join(home.dir, HomeFiles.nodeKey)} is peer ${own}, but the genesis lists this validator as ${listed.peerId}`)
  }
  if (listed === undefined) logger.info('the validator key in this home is not in the genesis set: it signs once governance adds it')
  const store = new FileSafetyStore(join(home.dir, HomeFiles.validatorState))
  const guard = new SafetyGuard({ chainId: home.genesis.chainId, secretKey: home.validatorSeed }, { store })
  return { guard, close: () => store.close() }
}
