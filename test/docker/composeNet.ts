import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '../helpers/fixtures.js'
import { rpc } from '../e2e/harness.js'
import { mustRun, runCommand, type CommandResult } from './runCommand.js'

/**
 * The repository's docker-compose.yml run as one compose project: the four-validator devnet, its JSON-RPC published
 * on loopback ports chosen by the test. Works with Compose v2 (`docker compose`) and v1 (`docker-compose`).
 */

/** The compose file's validator services, in order: validator i is `validator<i>`. */
export const VALIDATORS = ['validator0', 'validator1', 'validator2', 'validator3'] as const

/** Why the Docker end-to-end test cannot run here, or the compose command to run it with. */
export type DockerSupport = { readonly compose: readonly string[] } | { readonly skip: string }

const firstLine = (r: CommandResult) => (r.stderr.trim() || r.stdout.trim()).split('\n')[0]

/** Finds a reachable Docker engine and a compose command; says what is missing otherwise. */
export async function detectDocker(): Promise<DockerSupport> {
  const info = await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 30_000 })
  if (info.code !== 0) return { skip: `no Docker engine available (docker info: ${firstLine(info)})` }
  for (const compose of [['docker', 'compose'], ['docker-compose']] as [string, ...string[]][]) {
    const v = await runCommand(compose[0], [...compose.slice(1), 'version'], { timeoutMs: 30_000 })
    if (v.code === 0) return { compose }
  }
  return { skip: 'Docker engine found, but neither `docker compose` nor `docker-compose` is installed' }
}

/** A compose project of the devnet: its name, the image it runs and the host ports of validators 0-3. */
export class ComposeNet {
  private readonly ids = new Map<string, string>()

  constructor(
    private readonly compose: readonly string[],
    readonly project: string,
    readonly image: string,
    readonly rpcPorts: readonly number[],
  ) {}

  /** What the compose file reads: the image tag and the published RPC ports. */
  private get env(): Record<string, string> {
    const env: Record<string, string> = { TALLY_IMAGE: this.image }
    this.rpcPorts.forEach((p, i) => {
      env[`TALLY_RPC_HOST_PORT${i}`] = String(p)
    })
    return env
  }

  private get projectArgs(): string[] {
    return ['--project-name', this.project, '--file', join(repoRoot, 'docker-compose.yml')]
  }

  /** Runs `compose -p <project> -f docker-compose.yml args…`. */
  run(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    const [command, ...pre] = this.compose as [string, ...string[]]
    return runCommand(command, [...pre, ...this.projectArgs, ...args], { timeoutMs, env: this.env, cwd: repoRoot })
  }

  private async mustCompose(args: readonly string[], timeoutMs: number): Promise<string> {
    const r = await this.run(args, timeoutMs)
    if (r.code !== 0) throw new Error(`compose ${args.join(' ')} exited with ${r.code}\n${r.stdout}${r.stderr}`)
    return r.stdout
  }

  /**
   * `up -d` with the image built beforehand; resolves once the one-shot genesis is done and the validators run. What
   * a run of this project killed before its cleanup left behind (containers, the volume) goes first.
   */
  async up(): Promise<void> {
    await this.mustCompose(ComposeNet.DOWN, 3 * 60_000)
    await this.mustCompose(['up', '--detach', '--no-build'], 5 * 60_000)
  }

  private static readonly DOWN = ['down', '--volumes', '--remove-orphans', '--timeout', '10']

  /** `down -v`: removes the project's containers, network and volume (not the image). */
  async down(): Promise<void> {
    await this.mustCompose(ComposeNet.DOWN, 3 * 60_000)
    this.ids.clear()
  }

  /** {@link down} for a process about to exit on a signal, where nothing asynchronous runs any more. */
  downSync(): void {
    const [command, ...pre] = this.compose as [string, ...string[]]
    spawnSync(command, [...pre, ...this.projectArgs, ...ComposeNet.DOWN], {
      env: { ...process.env, ...this.env },
      cwd: repoRoot,
      stdio: 'ignore',
      timeout: 3 * 60_000,
    })
  }

  /** The last `lines` log lines of every service, for a failure's report. */
  async logs(lines: number): Promise<string> {
    const r = await this.run(['logs', '--no-color', '--tail', String(lines)], 60_000)
    return r.stdout + r.stderr
  }

  /** The container id of a service (looked up once: it stays the same across `docker stop` / `docker start`). */
  async containerId(service: string): Promise<string> {
    const known = this.ids.get(service)
    if (known !== undefined) return known
    const id = (await this.mustCompose(['ps', '--quiet', service], 60_000)).trim()
    if (!/^[0-9a-f]{12,64}$/.test(id)) throw new Error(`no single container for ${service}: "${id}"`)
    this.ids.set(service, id)
    return id
  }

  /** `docker <verb> <container of service>` (stop, start). */
  async docker(verb: 'stop' | 'start', service: string): Promise<void> {
    await mustRun('docker', [verb, await this.containerId(service)], { timeoutMs: 60_000 })
  }

  /** What Docker's HEALTHCHECK says of a service's container: starting, healthy, unhealthy. */
  async dockerHealth(service: string): Promise<string> {
    const out = await mustRun('docker', ['inspect', '--format', '{{.State.Health.Status}}', await this.containerId(service)], { timeoutMs: 30_000 })
    return out.trim()
  }

  /** Reads a file from a running service's container. */
  async readFile(service: string, path: string): Promise<string> {
    return mustRun('docker', ['exec', await this.containerId(service), 'cat', path], { timeoutMs: 30_000 })
  }

  /** Validator i's JSON-RPC URL on the host. */
  rpcUrl(i: number): string {
    return `http://127.0.0.1:${this.rpcPorts[i]}`
  }

  /**
   * One JSON-RPC call to validator i through its published port, failing after 2 s. While a container's RPC is not
   * listening yet, Docker's port proxy accepts the connection and then drops it, and fetch waits for an answer with
   * nothing but its own unreferenced timeout timer: the referenced timer here keeps the event loop alive until then.
   */
  async call<T = unknown>(i: number, method: string, params: unknown[] = []): Promise<T> {
    const alive = setTimeout(() => {}, 3_000)
    try {
      return await rpc<T>(this.rpcUrl(i), method, params, 2_000)
    } finally {
      clearTimeout(alive)
    }
  }

  /** The height validator i reports through its published port, or undefined when it does not answer. */
  async height(i: number): Promise<number | undefined> {
    try {
      return (await this.call<{ height: number }>(i, 'node_status')).height
    } catch {
      return undefined
    }
  }

  /** The status code of validator i's `GET /health` (0 when it does not answer within 2 s). */
  async health(i: number): Promise<number> {
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), 2_000)
    try {
      return (await fetch(`${this.rpcUrl(i)}/health`, { signal: abort.signal })).status
    } catch {
      return 0
    } finally {
      clearTimeout(timer)
    }
  }

  /** Containers, networks and volumes that still carry the project's label, as `kind id` lines. */
  async leftovers(): Promise<string[]> {
    const label = `label=com.docker.compose.project=${this.project}`
    const found: string[] = []
    for (const [kind, args] of [
      ['container', ['ps', '--all', '--quiet', '--filter', label]],
      ['network', ['network', 'ls', '--quiet', '--filter', label]],
      ['volume', ['volume', 'ls', '--quiet', '--filter', label]],
    ] as const) {
      const out = await mustRun('docker', args, { timeoutMs: 30_000 })
      for (const id of out.split('\n').filter((l) => l.trim() !== '')) found.push(`${kind} ${id.trim()}`)
    }
    return found
  }
}
