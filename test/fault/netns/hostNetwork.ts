import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Hosts for the fault suite: one Linux network namespace per validator, each with its own IPv4 address, joined by a
 * Linux bridge. The bridge lives in a namespace of its own (the switch), so the root namespace's packet filter never
 * sees the validators' traffic: a Docker engine on the machine sets the root FORWARD policy to DROP with bridge
 * netfilter on, which would silently cut a bridge in the root namespace. The root namespace joins the bridge with
 * one veth of its own, to reach every validator's RPC.
 *
 * Everything made here is named with {@link NETNS_PREFIX}, so a run removes what an earlier, killed run left behind.
 * Runs on one machine take turns through a lock file; a run removes leftovers only while it holds the lock.
 */

/** The prefix of every namespace and root-namespace link the suite makes. */
export const NETNS_PREFIX = 'tly-'

/**
 * The subnet of the suite's hosts: 198.18.0.0/15 is set aside for benchmarking networks (RFC 2544) and never
 * routed, so it cannot clash with a real network; only the namespaces made here hold these addresses.
 */
const SUBNET = '198.18.0'
const SWITCH = `${NETNS_PREFIX}sw`
const ROOT_LINK = `${NETNS_PREFIX}host`
/** Machine-wide (not per TMPDIR), so runs from any shell see each other. */
const LOCK = join(existsSync('/run/lock') ? '/run/lock' : tmpdir(), 'tally-fault-netns.lock')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs a command to completion, with `input` on its stdin; resolves with its stdout, rejects with its stderr. */
export function run(cmd: string, args: readonly string[], input = '', timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`))
      else resolve(stdout)
    })
    // a command that does not read its stdin may exit before the write: its result is what counts
    child.stdin?.on('error', () => undefined)
    if (input === '') child.stdin?.end()
    else child.stdin?.end(input)
  })
}

function runSync(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 })
}

function trySync(cmd: string, args: readonly string[]): string | undefined {
  try {
    return runSync(cmd, args)
  } catch {
    return undefined
  }
}

function errorText(e: unknown): string {
  const err = e as { stderr?: string | Buffer; message?: string }
  const stderr = err.stderr === undefined ? '' : String(err.stderr).trim()
  return stderr || err.message || String(e)
}

/** True when `cmd` runs (`cmd args` exits 0). */
function hasCommand(cmd: string, args: readonly string[] = ['--version']): boolean {
  return trySync(cmd, args) !== undefined
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function ourNamespaces(): string[] {
  const text = trySync('ip', ['netns', 'list']) ?? ''
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(NETNS_PREFIX))
}

/** The inode of a named namespace (`/run/netns/<name>`), which names it in `/proc/<pid>/ns/net`. */
function namespaceInode(ns: string): number | undefined {
  for (const dir of ['/run/netns', '/var/run/netns']) {
    try {
      return statSync(join(dir, ns)).ino
    } catch {
      /* try the other */
    }
  }
  return undefined
}

/** True while process `pid` lives in the network namespace with inode `inode`. */
function inNamespace(pid: number, inode: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`) === `net:[${inode}]`
  } catch {
    return false
  }
}

/**
 * Removes everything a run of the suite leaves behind: the processes inside its namespaces (SIGKILL), the
 * namespaces (which takes their veths and packet-filter rules along) and any root-namespace link with the prefix.
 * Only a process whose network namespace is one of the suite's is signalled, checked again just before the
 * signal (a pid listed a moment earlier may have been reused): the suite's validators live there and nothing
 * else does, so other test runs on the machine (the e2e and power-loss suites run in the root namespace) are
 * never touched. Synchronous, so that it also serves a process `exit` handler. Call it holding the lock.
 */
export function removeLeftovers(): void {
  for (const ns of ourNamespaces()) {
    const inode = namespaceInode(ns)
    const pids = (trySync('ip', ['netns', 'pids', ns]) ?? '')
      .split('\n')
      .map((p) => Number(p.trim()))
      .filter((p) => p > 0)
    for (const pid of pids) {
      if (pid === process.pid || inode === undefined || !inNamespace(pid, inode)) continue
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* already gone */
      }
    }
    trySync('ip', ['netns', 'del', ns])
  }
  const links = trySync('ip', ['-o', 'link', 'show']) ?? ''
  for (const line of links.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1]
    if (name?.startsWith(NETNS_PREFIX)) trySync('ip', ['link', 'del', name])
  }
}

/** The process that holds the lock (`flock` on {@link LOCK}), while this process holds it. */
let lockHolder: ChildProcess | undefined

/**
 * Takes the machine-wide lock of the suite, waiting up to `timeoutMs` for a run that holds it. Returns a reason
 * when the lock could not be had.
 *
 * The lock is the kernel's: `flock(1)` (util-linux) holds an exclusive `flock` on the lock file for as long as its
 * child runs, and that child reads this process's end of a pipe until it closes. However this process ends, even
 * by SIGKILL, the pipe closes, the child exits and the kernel releases the lock: there is no stale lock to take
 * over, and so no moment when two runs both believe they hold it (two runs at once would each remove the other's
 * validators). The holder writes its pid into the file and removes the file before it lets go; a run that gets the
 * `flock` checks that the file it locked is still the one at the path (not one removed meanwhile), else locks
 * again. A live pid other than its own found in the file belongs to a run of the suite from before it used
 * `flock` (which took turns by creating the file): that run is waited for too.
 */
export async function takeLock(timeoutMs = 300_000): Promise<string | undefined> {
  if (lockHolder !== undefined) return undefined
  if (!hasCommand('flock', ['--version'])) return 'the flock command is missing (Debian package util-linux)'
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const left = deadline - Date.now()
    if (left <= 0) return `another fault-suite run holds ${LOCK} (${describeHolder()})`
    const holder = await flockHolder(left)
    if (typeof holder === 'string') return holder
    if (holder === undefined) return `another fault-suite run holds ${LOCK} (${describeHolder()})`
    const other = readHolderPid()
    if (!lockedFileIsCurrent(holder) || (other !== undefined && other !== process.pid && pidAlive(other))) {
      endHolder(holder)
      await sleep(200)
      continue
    }
    writeFileSync(LOCK, `${process.pid}\n`)
    lockHolder = holder
    process.on('exit', releaseLock)
    return undefined
  }
}

/**
 * Starts `flock` on the lock file, waiting up to `timeoutMs`: the holding process once it holds the lock,
 * undefined when the wait timed out, or why it failed.
 */
async function flockHolder(timeoutMs: number): Promise<ChildProcess | string | undefined> {
  const holder = spawn(
    'flock',
    [
      '--exclusive',
      '--wait',
      String(Math.max(1, Math.ceil(timeoutMs / 1000))),
      '--conflict-exit-code',
      '75',
      LOCK,
      'sh',
      '-c',
      'echo held && exec cat >/dev/null',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  holder.stdin!.on('error', () => undefined)
  let stderr = ''
  holder.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const held = await new Promise<boolean>((resolve) => {
    holder.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('held')) resolve(true)
    })
    holder.once('exit', () => resolve(false))
    holder.once('error', () => resolve(false))
  })
  if (!held) {
    endHolder(holder)
    if (holder.exitCode === 75) return undefined
    return `cannot lock ${LOCK}: ${stderr.trim() || `flock exited with ${holder.exitCode ?? holder.signalCode}`}`
  }
  // the holder must neither keep this process alive nor be waited for when it exits
  holder.unref()
  for (const s of [holder.stdin, holder.stdout, holder.stderr]) (s as { unref?: () => void } | null)?.unref?.()
  return holder
}

/** True when the file `holder` locked is the one at {@link LOCK} now (not one removed since). */
function lockedFileIsCurrent(holder: ChildProcess): boolean {
  try {
    const current = statSync(LOCK).ino
    const fds = `/proc/${holder.pid}/fd`
    return readdirSync(fds).some((fd) => {
      try {
        return readlinkSync(join(fds, fd)) === LOCK && statSync(join(fds, fd)).ino === current
      } catch {
        return false
      }
    })
  } catch {
    return false
  }
}

/** Ends a `flock` holder: closing its pipe ends its child, SIGKILL ends it; the kernel then releases the lock. */
function endHolder(holder: ChildProcess): void {
  holder.stdin!.destroy()
  holder.kill('SIGKILL')
}

/** The pid the lock file names, if any. */
function readHolderPid(): number | undefined {
  try {
    const pid = Number(readFileSync(LOCK, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function describeHolder(): string {
  const pid = readHolderPid()
  return pid === undefined ? 'its pid is not recorded' : `pid ${pid}`
}

/** Releases the lock taken by {@link takeLock} (no-op when not held): removes the file, then lets go. */
export function releaseLock(): void {
  const holder = lockHolder
  if (holder === undefined) return
  lockHolder = undefined
  process.off('exit', releaseLock)
  try {
    if (readHolderPid() === process.pid) unlinkSync(LOCK)
  } catch {
    /* already gone */
  }
  endHolder(holder)
}

/**
 * Why this process cannot make network namespaces, or undefined when it might: it needs Linux, root and the `ip`
 * command. Cheap, and touches nothing.
 */
export function whyNoNamespaces(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the suite as root)'
  if (!hasCommand('ip', ['-V'])) return 'the ip command is missing (Debian package iproute2)'
  return undefined
}

/**
 * Removes what earlier runs left behind, then checks that namespaces, veth pairs and bridges can be made here;
 * undefined when they can, else why not. Call it holding the lock.
 */
export function cleanAndProbe(): string | undefined {
  removeLeftovers()
  const ns = `${NETNS_PREFIX}probe`
  try {
    runSync('ip', ['netns', 'add', ns])
    runSync('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'])
    runSync('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge'])
    runSync('ip', ['netns', 'exec', ns, process.execPath, '-e', '0'])
    return undefined
  } catch (e) {
    return `ip netns does not work here: ${errorText(e)}`
  } finally {
    trySync('ip', ['netns', 'del', ns])
  }
}

/**
 * Why packet-filter faults (partitions, loss, the latency detour) cannot run, or undefined when they can:
 * `iptables` and `iptables-restore` must work inside a namespace, with the nat table. Call it holding the lock.
 */
export function whyNoIptables(): string | undefined {
  if (!hasCommand('iptables') || !hasCommand('iptables-restore')) return 'iptables is missing (Debian package iptables)'
  const ns = `${NETNS_PREFIX}probe`
  try {
    runSync('ip', ['netns', 'add', ns])
    execFileSync('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush'], {
      input:
        '*filter\n:PROBE - [0:0]\n-A PROBE -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n*nat\n:PROBE - [0:0]\n-A PROBE -p tcp -j DNAT --to-destination 127.0.0.1:1\nCOMMIT\n',
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 20_000,
    })
    return undefined
  } catch (e) {
    return `iptables does not work inside a namespace: ${errorText(e)}`
  } finally {
    trySync('ip', ['netns', 'del', ns])
  }
}

/** The suite's hosts: a switch namespace with the bridge, one namespace per validator, and the root's veth. */
export class HostNetwork {
  /** The root namespace's address on the bridge (the wallet, the RPC checks and the delay proxy use it). */
  readonly hostAddress = `${SUBNET}.1`
  private readonly children = new Set<ChildProcess>()
  private destroyed = false
  private readonly onExit = () => this.destroySync()
  /** Interrupted (Ctrl-C, a runner's SIGTERM): clean up, then end as the signal would have. */
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.destroySync()
    releaseLock()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }

  private constructor(readonly size: number) {
    process.on('exit', this.onExit)
    process.once('SIGINT', this.onSignal)
    process.once('SIGTERM', this.onSignal)
  }

  /** Builds the hosts for `size` validators (holding the lock, after {@link cleanAndProbe} said yes). */
  static async create(size: number): Promise<HostNetwork> {
    const net = new HostNetwork(size)
    try {
      await run('ip', ['netns', 'add', SWITCH])
      await run('ip', ['-n', SWITCH, 'link', 'set', 'lo', 'up'])
      await run('ip', ['-n', SWITCH, 'link', 'add', 'br0', 'type', 'bridge'])
      await run('ip', ['-n', SWITCH, 'link', 'set', 'br0', 'up'])
      await run('ip', ['link', 'add', ROOT_LINK, 'type', 'veth', 'peer', 'name', 'host', 'netns', SWITCH])
      await run('ip', ['-n', SWITCH, 'link', 'set', 'host', 'master', 'br0', 'up'])
      await run('ip', ['addr', 'add', `${net.hostAddress}/24`, 'dev', ROOT_LINK])
      await run('ip', ['link', 'set', ROOT_LINK, 'up'])
      for (let i = 0; i < size; i++) {
        const ns = net.namespace(i)
        await run('ip', ['netns', 'add', ns])
        await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
        // created in the validator's namespace, its switch end then moved into the switch namespace
        await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `port${i}`])
        await run('ip', ['-n', ns, 'link', 'set', `port${i}`, 'netns', SWITCH])
        await run('ip', ['-n', SWITCH, 'link', 'set', `port${i}`, 'master', 'br0', 'up'])
        await run('ip', ['-n', ns, 'addr', 'add', `${net.address(i)}/24`, 'dev', 'eth0'])
        await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
      }
      return net
    } catch (e) {
      net.destroySync()
      throw e
    }
  }

  /** The namespace of validator i. */
  namespace(i: number): string {
    return `${NETNS_PREFIX}v${i}`
  }

  /** The address of validator i. */
  address(i: number): string {
    return `${SUBNET}.${10 + i}`
  }

  /** Runs a command inside validator i's namespace to completion, with `input` on its stdin. */
  exec(i: number, argv: readonly string[], input = ''): Promise<string> {
    return run('ip', ['netns', 'exec', this.namespace(i), ...argv], input)
  }

  /**
   * Starts a long-running command inside validator i's namespace. `ip netns exec` replaces itself with the
   * command, so the child's pid is the command's own: signals reach it directly.
   */
  spawn(i: number, argv: readonly string[], options: SpawnOptions): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.namespace(i), ...argv], options)
    this.children.add(p)
    p.once('exit', () => this.children.delete(p))
    return p
  }

  /** Kills every process started here and removes every namespace and link (also on a failed test). */
  async destroy(): Promise<void> {
    await Promise.all(
      [...this.children].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve()
            p.once('exit', () => resolve())
            p.kill('SIGCONT')
            p.kill('SIGKILL')
          }),
      ),
    )
    this.destroySync()
  }

  private destroySync(): void {
    if (this.destroyed) return
    this.destroyed = true
    process.off('exit', this.onExit)
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    for (const p of this.children) {
      try {
        p.kill('SIGKILL')
      } catch {
        /* gone */
      }
    }
    removeLeftovers()
  }
}
