import { randomBytes } from 'node:crypto'
import { type FileHandle, open } from 'node:fs/promises'
import {
  DEFAULT_SCRYPT_PARAMS,
  MAX_KEY_FILE_LENGTH,
  decodeKeyFile,
  decodeKeyFileInfo,
  encodeKeyFile,
  type KeyFileInfo,
  type LoadedKey,
  type ScryptParams,
} from '../crypto/keyfile.js'
import { FileReadError, readBoundedFile } from '../node/cli/boundedFile.js'
import { CliError } from './args.js'

/**
 * Key files on disk for the wallet: save a new key (fresh seed, salt and iv from node:crypto; file mode 0600;
 * never overwriting), and load one, asking for the password only when the file is encrypted.
 */

/** Where a password comes from: TALLY_PASSWORD, else an interactive prompt, else nowhere. */
export interface PasswordSource {
  readonly env: Record<string, string | undefined>
  /** Asks on a terminal; null when there is none. */
  readonly prompt: ((question: string) => Promise<string>) | null
}

const NO_PASSWORD = 'a password is needed: set TALLY_PASSWORD or run on a terminal to be asked'

async function readKeyText(path: string): Promise<string> {
  try {
    return (await readBoundedFile(path, MAX_KEY_FILE_LENGTH)).toString('utf8')
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e
    if (e.code === 'too_large') throw new CliError(`key file ${path} is malformed: ${e.reason.replace(/^is /, '')}`, 'malformed')
    throw new CliError(`cannot read key file ${e.message}`)
  }
}

/** Loads and, when needed, decrypts a key file. */
export async function loadKey(path: string, passwords: PasswordSource): Promise<LoadedKey> {
  const text = await readKeyText(path)
  const info = decodeKeyFileInfo(text)
  if (!info.ok) throw new CliError(`key file ${path} is ${info.error.code}: ${info.error.reason}`, info.error.code)
  let password: string | undefined
  if (info.value.encrypted) {
    password = passwords.env.TALLY_PASSWORD
    if (password === undefined) {
      if (passwords.prompt === null) throw new CliError(`key file ${path} is encrypted: ${NO_PASSWORD}`, 'password_required')
      password = await passwords.prompt(`Password for ${path}: `)
    }
  }
  const d = decodeKeyFile(text, password)
  if (!d.ok) {
    const what = d.error.code === 'wrong_password' ? 'wrong password' : d.error.reason
    throw new CliError(`cannot open key file ${path}: ${what}`, d.error.code)
  }
  return d.value
}

/** Reads the public part of a key file (no password needed). */
export async function loadKeyInfo(path: string): Promise<KeyFileInfo> {
  const info = decodeKeyFileInfo(await readKeyText(path))
  if (!info.ok) throw new CliError(`key file ${path} is ${info.error.code}: ${info.error.reason}`, info.error.code)
  return info.value
}

/**
 * Creates a new key and writes it to `path` (which must not exist), encrypted unless `plaintext`.
 * Returns the key's public part.
 */
export async function createKey(path: string, options: { plaintext: boolean; scrypt?: ScryptParams }, passwords: PasswordSource): Promise<KeyFileInfo> {
  const seed = new Uint8Array(randomBytes(32))
  let text: string
  if (options.plaintext) {
    text = encodeKeyFile(seed)
  } else {
    let password = passwords.env.TALLY_PASSWORD
    if (password === undefined) {
      if (passwords.prompt === null)
        throw new CliError(`cannot encrypt the new key: ${NO_PASSWORD} (or pass --insecure-plaintext for a dev key)`, 'password_required')
      password = await passwords.prompt('New password: ')
      const again = await passwords.prompt('Repeat password: ')
      if (again !== password) throw new CliError('the passwords do not match')
    }
    if (password.length === 0) throw new CliError('the password must not be empty (use --insecure-plaintext for a dev key)')
    text = encodeKeyFile(seed, {
      password,
      salt: new Uint8Array(randomBytes(16)),
      iv: new Uint8Array(randomBytes(12)),
      scrypt: options.scrypt ?? DEFAULT_SCRYPT_PARAMS,
    })
  }
  let fh: FileHandle
  try {
    fh = await open(path, 'wx', 0o600)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new CliError(code === 'EEXIST' ? `${path} already exists: not overwriting a key file` : `cannot write ${path}: ${code ?? (e as Error).message}`)
  }
  try {
    await fh.writeFile(text, 'utf8')
  } finally {
    await fh.close()
  }
  const info = decodeKeyFileInfo(text)
  if (!info.ok) throw new Error(`keygen wrote a key file it cannot read: ${info.error.reason}`)
  return info.value
}
