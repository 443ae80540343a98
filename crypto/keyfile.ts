import { createCipheriv, createDecipheriv, scryptSync } from 'node:crypto'
import { addressFromPublicKey, formatAddress, parseAddress } from './address.js'
import { bytesEqual, fromHex, to0x } from './bytes.js'
import { DECODE_ERROR_CODES, malformed } from './decodeError.js'
import { PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, keyPairFromSeed } from './ed25519.js'
import { err, ok, type Result } from './result.js'
import { parseStrictJson } from './strictJson.js'

/**
 * The key file format shared by the `tally` wallet and `tallyd testnet` (faucet, account and validator keys).
 *
 * Plaintext (dev keys):
 *   {"type":"tally-key","version":1,"address":"0x…","publicKey":"0x…","secretKey":"0x…"}
 * Encrypted:
 *   {"type":"tally-key","version":1,"address":"0x…","publicKey":"0x…",
 *    "crypto":{"kdf":"scrypt","kdfparams":{"n","r","p","dklen":32,"salt":"0x…"},
 *              "cipher":"aes-256-gcm","iv":"0x…","ciphertext":"0x…","tag":"0x…"}}
 *
 * The 32-byte secret key (the Ed25519 seed) is encrypted with AES-256-GCM under scrypt(password, salt).
 * Pure: the salt and iv are parameters (the caller draws them), nothing here touches the file system.
 * Loading bounds every kdf parameter, so a hostile file cannot make the loader allocate gigabytes or spin for
 * minutes, checks that the address and public key in the clear belong to the secret key, and refuses any field the
 * format does not have.
 */

/** The `type` field of every key file. */
export const KEY_FILE_TYPE = 'tally-key'
/** The format version this code writes and reads. */
export const KEY_FILE_VERSION = 1

/** scrypt cost parameters: N (a power of two), r and p. */
export interface ScryptParams {
  readonly n: number
  readonly r: number
  readonly p: number
}

/** What new encrypted keys use: N = 2^17, r = 8, p = 1 (128 MiB, a fraction of a second). */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { n: 1 << 17, r: 8, p: 1 }

/** Upper bounds enforced on load (and on encode): N ≤ 2^20, r ≤ 32, p ≤ 16, memory 128·N·r ≤ 1 GiB. */
export const MAX_SCRYPT_N = 1 << 20
export const MAX_SCRYPT_R = 32
export const MAX_SCRYPT_P = 16
export const MAX_SCRYPT_MEMORY = 1 << 30
/** Salt length bounds in bytes. */
export const MIN_SALT_LENGTH = 16
export const MAX_SALT_LENGTH = 64
/** AES-GCM nonce and tag lengths in bytes. */
export const IV_LENGTH = 12
export const TAG_LENGTH = 16
/** Upper bound on a key file's text length; anything longer is malformed before parsing. */
export const MAX_KEY_FILE_LENGTH = 4096

/** The JSON shape of a plaintext key file. */
export interface PlainKeyFileJson {
  type: typeof KEY_FILE_TYPE
  version: typeof KEY_FILE_VERSION
  address: string
  publicKey: string
  secretKey: string
}

/** The JSON shape of an encrypted key file. */
export interface EncryptedKeyFileJson {
  type: typeof KEY_FILE_TYPE
  version: typeof KEY_FILE_VERSION
  address: string
  publicKey: string
  crypto: {
    kdf: 'scrypt'
    kdfparams: { n: number; r: number; p: number; dklen: 32; salt: string }
    cipher: 'aes-256-gcm'
    iv: string
    ciphertext: string
    tag: string
  }
}

/** Encryption inputs for `encodeKeyFile`. The caller draws `salt` (16-64 bytes) and `iv` (12 bytes) at random. */
export interface KeyFileEncryption {
  readonly password: string
  readonly salt: Uint8Array
  readonly iv: Uint8Array
  readonly scrypt?: ScryptParams
}

/** Every code a key file failure can carry: a decode failure's, and the two a password causes. */
export const KEY_FILE_ERROR_CODES = [...DECODE_ERROR_CODES, 'wrong_password', 'password_required'] as const

/** Why a key file could not be loaded. */
export interface KeyFileError {
  readonly code: (typeof KEY_FILE_ERROR_CODES)[number]
  readonly reason: string
}

/** A loaded key. */
export interface LoadedKey {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
  readonly address: Uint8Array
  readonly encrypted: boolean
}

/** The public part of a key file, readable without the password. */
export interface KeyFileInfo {
  readonly publicKey: Uint8Array
  readonly address: Uint8Array
  readonly encrypted: boolean
}

/** The outcome of a decode: a value or a typed error. */
export type KeyFileResult<T> = Result<T, KeyFileError>

/** Checks scrypt parameters against the bounds; returns a problem or undefined. */
export function checkScryptParams(params: { n: unknown; r: unknown; p: unknown }): string | undefined {
  const { n, r, p } = params
  if (!Number.isSafeInteger(n) || (n as number) < 2 || (n as number) > MAX_SCRYPT_N || ((n as number) & ((n as number) - 1)) !== 0) {
    return `scrypt n must be a power of two from 2 to ${MAX_SCRYPT_N}`
  }
  if (!Number.isSafeInteger(r) || (r as number) < 1 || (r as number) > MAX_SCRYPT_R) return `scrypt r must be an integer from 1 to ${MAX_SCRYPT_R}`
  if (!Number.isSafeInteger(p) || (p as number) < 1 || (p as number) > MAX_SCRYPT_P) return `scrypt p must be an integer from 1 to ${MAX_SCRYPT_P}`
  if (128 * (n as number) * (r as number) > MAX_SCRYPT_MEMORY) return `scrypt memory 128·n·r exceeds ${MAX_SCRYPT_MEMORY} bytes`
  return undefined
}

function deriveKey(password: string, salt: Uint8Array, params: ScryptParams): Buffer {
  // maxmem: what scrypt needs (128·N·r) plus headroom; the bounds above keep it at most ~1 GiB.
  return scryptSync(Buffer.from(password, 'utf8'), salt, 32, {
    N: params.n,
    r: params.r,
    p: params.p,
    maxmem: 128 * params.n * params.r + (1 << 20),
  })
}

/**
 * Encodes a secret key (32-byte seed) as key file JSON text (pretty-printed, ending in a newline):
 * plaintext when `encryption` is absent, encrypted with scrypt and AES-256-GCM otherwise.
 * Throws RangeError on arguments outside the format (a caller's bug).
 */
export function encodeKeyFile(secretKey: Uint8Array, encryption?: KeyFileEncryption): string {
  if (!(secretKey instanceof Uint8Array) || secretKey.byteLength !== SECRET_KEY_LENGTH) {
    throw new RangeError(`encodeKeyFile: secret key must be ${SECRET_KEY_LENGTH} bytes`)
  }
  const { publicKey } = keyPairFromSeed(secretKey)
  const head = {
    type: KEY_FILE_TYPE,
    version: KEY_FILE_VERSION,
    address: formatAddress(addressFromPublicKey(publicKey)),
    publicKey: to0x(publicKey),
  } as const
  if (encryption === undefined) {
    const plain: PlainKeyFileJson = { ...head, secretKey: to0x(secretKey) }
    return `${JSON.stringify(plain, null, 2)}\n`
  }
  const params = encryption.scrypt ?? DEFAULT_SCRYPT_PARAMS
  const problem = checkScryptParams(params)
  if (problem !== undefined) throw new RangeError(`encodeKeyFile: ${problem}`)
  const { salt, iv, password } = encryption
  if (salt.byteLength < MIN_SALT_LENGTH || salt.byteLength > MAX_SALT_LENGTH) {
    throw new RangeError(`encodeKeyFile: salt must be ${MIN_SALT_LENGTH}-${MAX_SALT_LENGTH} bytes`)
  }
  if (iv.byteLength !== IV_LENGTH) throw new RangeError(`encodeKeyFile: iv must be ${IV_LENGTH} bytes`)
  if (typeof password !== 'string') throw new RangeError('encodeKeyFile: password must be a string')
  const key = deriveKey(password, salt, params)
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LENGTH })
  const ciphertext = Buffer.concat([cipher.update(secretKey), cipher.final()])
  const tag = cipher.getAuthTag()
  const file: EncryptedKeyFileJson = {
    ...head,
    crypto: {
      kdf: 'scrypt',
      kdfparams: { n: params.n, r: params.r, p: params.p, dklen: 32, salt: to0x(salt) },
      cipher: 'aes-256-gcm',
      iv: to0x(iv),
      ciphertext: to0x(ciphertext),
      tag: to0x(tag),
    },
  }
  return `${JSON.stringify(file, null, 2)}\n`
}

type Parsed =
  | { kind: 'plain'; info: KeyFileInfo; secretKey: Uint8Array }
  | { kind: 'encrypted'; info: KeyFileInfo; params: ScryptParams; salt: Uint8Array; iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array }

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The fields of every key file, and of its `crypto` and `crypto.kdfparams` objects: any other is an error. */
const FIELDS = ['type', 'version', 'address', 'publicKey', 'secretKey', 'crypto']
const CRYPTO_FIELDS = ['kdf', 'kdfparams', 'cipher', 'iv', 'ciphertext', 'tag']
const KDF_FIELDS = ['n', 'r', 'p', 'dklen', 'salt']

/**
 * `obj`'s fields outside `allowed`, as `path: unknown field` joined by `; ` (undefined when there are none): a typo'd
 * or foreign field is never ignored, so a file cannot read as encrypted while a plaintext copy of its key sits beside.
 */
function unknownFields(obj: Record<string, unknown>, path: string, allowed: readonly string[]): string | undefined {
  const unknown = Object.keys(obj)
    .sort()
    .filter((k) => !allowed.includes(k))
  return unknown.length === 0 ? undefined : unknown.map((k) => `${path}${k}: unknown field`).join('; ')
}

function hexField(obj: Record<string, unknown>, name: string, length?: number): Uint8Array | string {
  const v = obj[name]
  if (typeof v !== 'string' || !/^0x/.test(v)) return `${name} must be a 0x-prefixed hex string`
  const bytes = fromHex(v, length)
  if (bytes === undefined) return length === undefined ? `${name} is not hex` : `${name} must be ${length} bytes of hex`
  return bytes
}

function parse(text: string): KeyFileResult<Parsed> {
  const fail = malformed
  if (typeof text !== 'string') return fail('key file is not text')
  if (text.length > MAX_KEY_FILE_LENGTH) return fail(`key file longer than ${MAX_KEY_FILE_LENGTH} characters`)
  let json: unknown
  try {
    json = parseStrictJson(text)
  } catch (e) {
    return fail(/appears twice/.test((e as Error).message) ? `key file ${(e as Error).message}` : 'key file is not JSON')
  }
  if (!isRecord(json)) return fail('key file is not a JSON object')
  if (json.type !== KEY_FILE_TYPE) return fail(`type must be "${KEY_FILE_TYPE}"`)
  if (json.version !== KEY_FILE_VERSION) return fail(`unsupported version ${String(json.version)}`)
  const unknown = unknownFields(json, '', FIELDS)
  if (unknown !== undefined) return fail(unknown)
  if (typeof json.address !== 'string') return fail('address missing')
  const address = parseAddress(json.address)
  if (address === undefined) return fail('address must be 0x + 40 hex digits')
  const publicKey = hexField(json, 'publicKey', PUBLIC_KEY_LENGTH)
  if (typeof publicKey === 'string') return fail(publicKey)
  if (!bytesEqual(addressFromPublicKey(publicKey), address)) return fail('address does not belong to the public key')
  const hasSecret = 'secretKey' in json
  const hasCrypto = 'crypto' in json
  if (hasSecret === hasCrypto) return fail('a key file holds exactly one of secretKey and crypto')
  if (hasSecret) {
    const secretKey = hexField(json, 'secretKey', SECRET_KEY_LENGTH)
    if (typeof secretKey === 'string') return fail(secretKey)
    return ok({ kind: 'plain', info: { publicKey, address, encrypted: false }, secretKey })
  }
  const c = json.crypto
  if (!isRecord(c)) return fail('crypto must be an object')
  const unknownCrypto = unknownFields(c, 'crypto.', CRYPTO_FIELDS)
  if (unknownCrypto !== undefined) return fail(unknownCrypto)
  if (c.kdf !== 'scrypt') return fail('crypto.kdf must be "scrypt"')
  if (c.cipher !== 'aes-256-gcm') return fail('crypto.cipher must be "aes-256-gcm"')
  const kp = c.kdfparams
  if (!isRecord(kp)) return fail('crypto.kdfparams must be an object')
  const unknownKdf = unknownFields(kp, 'crypto.kdfparams.', KDF_FIELDS)
  if (unknownKdf !== undefined) return fail(unknownKdf)
  const problem = checkScryptParams({ n: kp.n, r: kp.r, p: kp.p })
  if (problem !== undefined) return fail(problem)
  if (kp.dklen !== 32) return fail('crypto.kdfparams.dklen must be 32')
  const salt = hexField(kp, 'salt')
  if (typeof salt === 'string') return fail(`crypto.kdfparams.${salt}`)
  if (salt.byteLength < MIN_SALT_LENGTH || salt.byteLength > MAX_SALT_LENGTH) {
    return fail(`crypto.kdfparams.salt must be ${MIN_SALT_LENGTH}-${MAX_SALT_LENGTH} bytes`)
  }
  const iv = hexField(c, 'iv', IV_LENGTH)
  if (typeof iv === 'string') return fail(`crypto.${iv}`)
  const ciphertext = hexField(c, 'ciphertext', SECRET_KEY_LENGTH)
  if (typeof ciphertext === 'string') return fail(`crypto.${ciphertext}`)
  const tag = hexField(c, 'tag', TAG_LENGTH)
  if (typeof tag === 'string') return fail(`crypto.${tag}`)
  const params = { n: kp.n as number, r: kp.r as number, p: kp.p as number }
  return ok({ kind: 'encrypted', info: { publicKey, address, encrypted: true }, params, salt, iv, ciphertext, tag })
}

/** Reads the public part of a key file (address, public key, whether encrypted) without the password. */
export function decodeKeyFileInfo(text: string): KeyFileResult<KeyFileInfo> {
  const parsed = parse(text)
  return parsed.ok ? ok(parsed.value.info) : parsed
}

/**
 * Decodes a key file, decrypting it with `password` when it is encrypted. Never throws: a bad file is
 * `malformed`, an encrypted file without a password is `password_required`, and a failed authentication tag
 * is `wrong_password`. The decrypted secret key must derive the public key and address written in the file.
 */
export function decodeKeyFile(text: string, password?: string): KeyFileResult<LoadedKey> {
  const parsed = parse(text)
  if (!parsed.ok) return parsed
  const p = parsed.value
  let secretKey: Uint8Array
  if (p.kind === 'plain') {
    secretKey = p.secretKey
  } else {
    if (password === undefined) return err({ code: 'password_required', reason: 'the key file is encrypted: a password is required' })
    try {
      const key = deriveKey(password, p.salt, p.params)
      const decipher = createDecipheriv('aes-256-gcm', key, p.iv, { authTagLength: TAG_LENGTH })
      decipher.setAuthTag(p.tag)
      const plain = Buffer.concat([decipher.update(p.ciphertext), decipher.final()])
      secretKey = new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength)
    } catch {
      return err({ code: 'wrong_password', reason: 'wrong password (the key file did not decrypt)' })
    }
  }
  const { publicKey } = keyPairFromSeed(secretKey)
  if (!bytesEqual(publicKey, p.info.publicKey)) {
    return malformed('the secret key does not match the public key in the file')
  }
  return ok({ secretKey, publicKey, address: p.info.address, encrypted: p.kind === 'encrypted' })
}
