import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A process clock set off the machine's by a fixed amount, with libfaketime (Debian package `faketime`) preloaded
 * into the process. Only the wall clock moves: the monotonic clock is left alone, so timers keep their length.
 * The multithreaded build of the library is used, as Node runs threads.
 */

const LIBRARY = 'libfaketimeMT.so.1'

function findLibrary(): string | undefined {
  for (const base of ['/usr/lib', '/usr/local/lib', '/lib']) {
    for (const p of [join(base, 'faketime', LIBRARY), join(base, LIBRARY)]) if (existsSync(p)) return p
    if (!existsSync(base)) continue
    for (const arch of readdirSync(base)) {
      const p = join(base, arch, 'faketime', LIBRARY)
      if (existsSync(p)) return p
    }
  }
  return undefined
}

/** The environment that runs a process with its wall clock `offset` off (libfaketime syntax: `+10m`, `-10m`). */
export function fakeClockEnv(offset: string): Record<string, string> {
  const library = findLibrary()
  if (library === undefined) throw new Error(`${LIBRARY} not found (Debian package libfaketime, which faketime depends on)`)
  return { LD_PRELOAD: library, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' }
}

/**
 * Why a fake clock cannot be had here, or undefined when it can: the library must exist and actually move the
 * clock of a Node process (checked with a ten-minute offset, within a minute).
 */
export function whyNoFakeClock(): string | undefined {
  if (findLibrary() === undefined) return `${LIBRARY} is missing (Debian package libfaketime, which faketime depends on)`
  try {
    const out = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(Date.now()))'], {
      env: { ...process.env, ...fakeClockEnv('+10m') },
      encoding: 'utf8',
      timeout: 20_000,
    })
    const ahead = Number(out) - Date.now()
    if (!(Math.abs(ahead - 600_000) < 60_000)) return `libfaketime did not move a Node process's clock (it read ${ahead} ms ahead)`
    return undefined
  } catch (e) {
    return `a Node process does not run under libfaketime: ${(e as Error).message}`
  }
}
