import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs'
import { open, stat } from 'node:fs/promises'

/**
 * Reading a file a user or operator names (keys, config, genesis, the wallet's light store): only a regular file, and
 * at most `maxBytes` of it. A directory, a FIFO (whose open would block until a writer comes), a device such as
 * /dev/zero (which reports size 0 and never ends), a symlink loop or an oversized file is refused with a one-line
 * reason naming the path, before anything is allocated for it.
 */

/** Why a file could not be read, as a code to branch on. */
export type FileReadFailure = 'missing' | 'too_large' | 'not_regular' | 'unreadable' | 'changed'

/** Why a file could not be read; `message` names the path, `reason` says why in words. */
export class FileReadError extends Error {
  constructor(
    readonly path: string,
    readonly code: FileReadFailure,
    readonly reason: string,
  ) {
    super(`${path} ${reason}`)
  }
}

/** O_NONBLOCK: opening a FIFO swapped in after the check returns at once instead of waiting for a writer. */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

function kind(s: Stats): string {
  if (s.isDirectory()) return 'a directory'
  if (s.isFIFO()) return 'a FIFO'
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device'
  if (s.isSocket()) return 'a socket'
  return 'not a regular file'
}

function checkStats(path: string, s: Stats, maxBytes: number): void {
  if (!s.isFile()) throw new FileReadError(path, 'not_regular', `is ${kind(s)}, not a regular file`)
  if (s.size > maxBytes) throw new FileReadError(path, 'too_large', `is larger than ${maxBytes} bytes`)
}

function statError(path: string, e: unknown): FileReadError {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new FileReadError(path, 'missing', 'does not exist')
  if (code === 'ELOOP') return new FileReadError(path, 'unreadable', 'is a symlink loop')
  if (code === 'ENOTDIR') return new FileReadError(path, 'unreadable', 'does not exist (a parent is not a directory)')
  return new FileReadError(path, 'unreadable', `cannot be read: ${code ?? (e as Error).message}`)
}

/** The `n` bytes read into `buf`, one longer than the file was: all of it, unless it grew while it was read. */
function complete(path: string, buf: Buffer, n: number): Buffer {
  if (n === buf.byteLength) throw new FileReadError(path, 'changed', 'changed while it was read')
  return buf.subarray(0, n)
}

/** Throws {@link FileReadError} unless `path` is a regular file of at most `maxBytes` bytes (symlinks followed). */
export function checkRegularFile(path: string, maxBytes: number): void {
  let s: Stats
  try {
    s = statSync(path)
  } catch (e) {
    throw statError(path, e)
  }
  checkStats(path, s, maxBytes)
}

/**
 * A descriptor of the regular file at `path` of at most `maxBytes` bytes, checked on the descriptor itself, so that
 * a FIFO or device put in its place after any earlier check is refused, never waited on; throws {@link FileReadError}.
 * The caller closes it.
 */
export function openRegularFileSync(path: string, maxBytes: number): number {
  let fd: number
  try {
    fd = openSync(path, OPEN_FLAGS)
  } catch (e) {
    throw statError(path, e)
  }
  try {
    checkStats(path, fstatSync(fd), maxBytes)
  } catch (e) {
    closeSync(fd)
    throw e
  }
  return fd
}

/** The bytes of the regular file at `path`, at most `maxBytes` of them; throws {@link FileReadError}. */
export function readBoundedFileSync(path: string, maxBytes: number): Buffer {
  checkRegularFile(path, maxBytes)
  const fd = openRegularFileSync(path, maxBytes)
  try {
    // one byte more than the file holds tells a file that grew since the check
    const buf = Buffer.alloc(fstatSync(fd).size + 1)
    let n = 0
    while (n < buf.byteLength) {
      const r = readSync(fd, buf, n, buf.byteLength - n, null)
      if (r === 0) break
      n += r
    }
    return complete(path, buf, n)
  } finally {
    closeSync(fd)
  }
}

/** {@link readBoundedFileSync}, asynchronously. */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Buffer> {
  try {
    checkStats(path, await stat(path), maxBytes)
  } catch (e) {
    throw e instanceof FileReadError ? e : statError(path, e)
  }
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(path, OPEN_FLAGS)
  } catch (e) {
    throw statError(path, e)
  }
  try {
    const s = await fh.stat()
    checkStats(path, s, maxBytes)
    const buf = Buffer.alloc(s.size + 1)
    let n = 0
    while (n < buf.byteLength) {
      const { bytesRead } = await fh.read(buf, n, buf.byteLength - n, null)
      if (bytesRead === 0) break
      n += bytesRead
    }
    return complete(path, buf, n)
  } finally {
    await fh.close()
  }
}
