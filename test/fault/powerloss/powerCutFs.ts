import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface, type Interface } from 'node:readline'
import { repoRoot } from '../../helpers/fixtures.js'

/**
 * A directory on `powerCutFs` (the FUSE file system in `powerCutFs.c`): writes stay in memory until the file is
 * fsync'd, and {@link cut} discards every unsynced byte and fails all further I/O, as a power failure does to a
 * disk behind a volatile page cache. The data that survives lives in a backing directory; mounting it again is the
 * machine coming back.
 *
 * Requires root, `/dev/fuse`, `fusermount3`, libfuse 3's headers and gcc: {@link unavailable} says
 * which is missing, so a test can skip on a machine without them. The file system is compiled per run into a temp
 * dir, never into the tree.
 */
export class PowerCutFs {
  private lines: string[] = []
  private waiters: (() => void)[] = []
  private exited = false
  private readonly exit: Promise<void>

  private constructor(
    /** Where the file system is mounted. */
    readonly mountpoint: string,
    /** The "disk": what survives a cut. */
    readonly backing: string,
    private readonly proc: ChildProcess,
    private readonly out: Interface,
    private readonly stderr: string[],
  ) {
    this.out.on('line', (l) => {
      this.lines.push(l)
      for (const w of this.waiters.splice(0)) w()
    })
    // writing to a file system that died fails here; answer() then reports the exit with its stderr
    proc.stdin!.on('error', () => undefined)
    this.exit = new Promise((resolve) =>
      proc.once('exit', () => {
        this.exited = true
        for (const w of this.waiters.splice(0)) w()
        resolve()
      }),
    )
  }

  /** Why the file system cannot run on this machine, or undefined when it can. */
  static unavailable(): string | undefined {
    if (process.platform !== 'linux') return 'FUSE power-loss tests run on Linux only'
    if (process.getuid?.() !== 0) return 'not root (mounting FUSE file systems needs root here)'
    if (!existsSync('/dev/fuse')) return 'no /dev/fuse'
    if (spawnSync('fusermount3', ['-V']).status !== 0) return 'no fusermount3 (Debian package fuse3)'
    if (spawnSync('gcc', ['--version']).status !== 0) return 'no gcc'
    if (fuseFlags() === undefined) return 'no libfuse 3 headers (Debian package libfuse3-dev)'
    return undefined
  }

  /** Compiles the file system into `dir`; returns the binary's path. Throws with the compiler's output on failure. */
  static build(dir: string): string {
    const flags = fuseFlags()
    if (flags === undefined) throw new Error('no libfuse 3 headers')
    const binary = join(dir, 'powerCutFs')
    const source = join(repoRoot, 'test', 'fault', 'powerloss', 'powerCutFs.c')
    const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', binary, source, ...flags], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`gcc failed on ${source}:\n${r.stderr}`)
    return binary
  }

  /**
   * Mounts `backing` at `mountpoint` (created if missing) and resolves once the kernel has connected it.
   * The process's standard input is a pipe from this one: if this process dies, the file system detaches its
   * mount and exits by itself.
   */
  static async mount(binary: string, backing: string, mountpoint: string, timeoutMs = 10_000): Promise<PowerCutFs> {
    mkdirSync(mountpoint, { recursive: true })
    const proc = spawn(binary, [backing, mountpoint], { stdio: ['pipe', 'pipe', 'pipe'] })
    const stderr: string[] = []
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d))
    const fs = new PowerCutFs(mountpoint, backing, proc, createInterface({ input: proc.stdout! }), stderr)
    try {
      await fs.answer('ready', timeoutMs)
    } catch (e) {
      await fs.unmount()
      throw e
    }
    return fs
  }

  /** The power fails: every unsynced byte is discarded and all further I/O fails, until mounted again. */
  async cut(timeoutMs = 10_000): Promise<void> {
    this.proc.stdin!.write('cut\n')
    await this.answer('cut', timeoutMs)
  }

  /**
   * Unmounts (lazily when still busy) and waits for the file system's process to exit, killing it after a
   * deadline. Never throws: it runs in cleanup.
   */
  async unmount(timeoutMs = 10_000): Promise<void> {
    if (!this.exited) {
      const plain = spawnSync('fusermount3', ['-u', this.mountpoint], { encoding: 'utf8' })
      if (plain.status !== 0) spawnSync('fusermount3', ['-u', '-z', this.mountpoint])
      this.proc.stdin!.end()
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
      await this.exit
      clearTimeout(timer)
    }
    // a file system killed before it could unmount leaves a dead mount behind: detach it
    if (mounted(this.mountpoint)) spawnSync('fusermount3', ['-u', '-z', this.mountpoint])
    this.out.close()
  }

  /** Waits for the next line `expected` from the file system. */
  private async answer(expected: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const line = this.lines.shift()
      if (line === expected) return
      if (line !== undefined) throw new Error(`powerCutFs answered '${line}', expected '${expected}'`)
      if (this.exited) throw new Error(`powerCutFs exited before '${expected}': ${this.stderr.join('').trim()}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`powerCutFs did not answer '${expected}' within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /**
   * Builds the file system into `dir` and checks that the kernel lets it mount here (it may refuse even root, in a
   * container). Returns the binary, or why the file system cannot run; leaves no mount behind.
   */
  static async prepare(dir: string): Promise<{ binary: string } | { unavailable: string }> {
    const missing = PowerCutFs.unavailable()
    if (missing) return { unavailable: missing }
    const binary = PowerCutFs.build(dir)
    const disk = join(dir, 'probe-disk')
    mkdirSync(disk)
    try {
      const fs = await PowerCutFs.mount(binary, disk, join(dir, 'probe-mnt'))
      await fs.unmount()
    } catch (e) {
      return { unavailable: `cannot mount a FUSE file system here: ${(e as Error).message}` }
    }
    return { binary }
  }
}

/** Whether a file system is mounted at `path` (an absolute path without spaces), per /proc/self/mountinfo. */
export function mounted(path: string): boolean {
  // each line: id parent major:minor root mountpoint options …
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path)
}

/** Compiler flags for libfuse 3: from pkg-config, else Debian's header path; undefined when neither exists. */
function fuseFlags(): string[] | undefined {
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' })
  if (pc.status === 0) return pc.stdout.trim().split(/\s+/)
  if (existsSync('/usr/include/fuse3/fuse.h')) return ['-I/usr/include/fuse3', '-lfuse3', '-lpthread']
  return undefined
}
