import { accessSync, constants, lstatSync, mkdirSync, statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

/**
 * A directory a user names for the CLIs to write in (`tallyd testnet --out`, `tallyd init --home`, the wallet's light
 * directory): what exists of its path must be directories, and what is missing is created one level at a time.
 * Node's recursive mkdir takes ENOENT for a missing parent, creates the parent and tries again; where a directory
 * that exists answers ENOENT to any new entry (procfs: `/proc/x`), it never stops. Here every failure is one error
 * naming the path at fault, before anything is written or at the first directory that cannot be made.
 */

/** Why a directory cannot be used or made; `message` names the path at fault first. */
export class DirectoryError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path} ${reason}`)
  }
}

const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message

function kind(s: Stats): string {
  if (s.isFile()) return 'a regular file'
  if (s.isFIFO()) return 'a FIFO'
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device'
  if (s.isSocket()) return 'a socket'
  return 'not a directory'
}

/** True when `path` is a symlink (lstat sees it although stat found nothing behind it). */
function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

/**
 * The directories missing on the way to `path`, outermost first, after checking what exists: `path` itself, or else
 * its nearest existing ancestor, must be a directory, and that ancestor one this process may create entries in.
 * Throws {@link DirectoryError}.
 */
export function checkDirectory(path: string): string[] {
  const missing: string[] = []
  let p = resolve(path)
  for (;;) {
    let s: Stats | undefined
    try {
      s = statSync(p)
    } catch (e) {
      const code = errno(e)
      if (code === 'ELOOP') throw new DirectoryError(p, 'is a symlink loop')
      // ENOTDIR: an ancestor is not a directory, and the walk up names it
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new DirectoryError(p, `cannot be used: ${code}`)
      if (isLink(p)) throw new DirectoryError(p, 'is a symlink to nothing')
    }
    if (s !== undefined) {
      if (!s.isDirectory()) throw new DirectoryError(p, `is ${kind(s)}, not a directory`)
      if (missing.length > 0) {
        try {
          accessSync(p, constants.W_OK | constants.X_OK)
        } catch {
          throw new DirectoryError(p, 'is not writable')
        }
      }
      return missing.reverse()
    }
    missing.push(p)
    const parent = dirname(p)
    if (parent === p) throw new DirectoryError(p, 'does not exist')
    p = parent
  }
}

/** Why mkdir failed, in words, for a directory whose parent exists. */
function mkdirReason(dir: string, code: string): string {
  if (code === 'ENOENT') return `${dirname(dir)} takes no new directories (ENOENT)`
  if (code === 'EACCES' || code === 'EPERM') return `permission denied (${code})`
  if (code === 'EROFS') return 'read-only file system (EROFS)'
  if (code === 'ENOSPC' || code === 'EDQUOT') return `no space left (${code})`
  return code
}

/**
 * Makes `path` a directory: checks it as {@link checkDirectory} does, then creates each missing directory (with
 * `mode`, before the umask), parent first. Throws {@link DirectoryError} naming the first one that cannot be made.
 */
export function makeDirectory(path: string, mode = 0o777): void {
  for (const dir of checkDirectory(path)) {
    try {
      mkdirSync(dir, { mode })
    } catch (e) {
      const code = errno(e)
      // made by another process meanwhile: as good as made here
      if (code === 'EEXIST' && checkDirectory(dir).length === 0) continue
      throw new DirectoryError(dir, `cannot be created: ${mkdirReason(dir, code)}`)
    }
  }
}
