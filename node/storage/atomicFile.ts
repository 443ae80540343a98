import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Durable whole-file writes: write a temporary file next to the target, fsync it, rename it over the target and
 * fsync the directory, so after a crash the path holds either the old bytes or the new bytes, never a mix.
 * The consensus safety guard persists its last-signed record with {@link saveAtomicSync} before it returns a
 * signature (its store interface is synchronous).
 */

function tempPath(path: string): string {
  return `${path}.tmp-${process.pid}`
}

/** Atomically and durably replaces the file at `path` with `bytes`. */
export async function saveAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = tempPath(path)
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  const dir = await open(dirname(path), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

/** The synchronous form of {@link saveAtomic}, for callers that must not yield before the write is durable. */
export function saveAtomicSync(path: string, bytes: Uint8Array): void {
  const tmp = tempPath(path)
  const fd = openSync(tmp, 'w', 0o600)
  try {
    let off = 0
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  const dir = openSync(dirname(path), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}

/** Reads a whole file; undefined when it does not exist (any other failure throws). */
export async function loadFile(path: string): Promise<Uint8Array | undefined> {
  try {
    const b = await readFile(path)
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}

/** The synchronous form of {@link loadFile}. */
export function loadFileSync(path: string): Uint8Array | undefined {
  try {
    const b = readFileSync(path)
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}
