/** The crypto room: keys, signatures, hashes, addresses and canonical encodings. Pure. */
export * from './bytes.js'
export * from './hash.js'
export * from './ed25519.js'
export * from './address.js'
export * from './canonical.js'
export * from './decodeError.js'
export * from './result.js'
