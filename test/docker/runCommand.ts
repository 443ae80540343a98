import { spawn, type ChildProcess } from 'node:child_process'

/**
 * Runs a command (`docker`, `docker compose`) to completion with a deadline, for the Docker end-to-end test.
 * A command still running at its deadline is killed and the call rejects with what it printed; every process
 * started here is killed when the test process exits, so none outlives a failed or interrupted run.
 */

const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL')
})

/** The outcome of a finished command. */
export interface CommandResult {
  code: number
  stdout: string
  stderr: string
}

/** Options of {@link runCommand}. */
export interface CommandOptions {
  /** Killed, and the call rejects, when the command runs longer. */
  timeoutMs: number
  /** Added to this process's environment. */
  env?: Record<string, string>
  /** Working directory (default: this process's). */
  cwd?: string
}

/** The last `lines` lines of a command's output, for error messages. */
export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

/**
 * Runs `command args…`; resolves with its exit code and output (a command that cannot start, such as a missing
 * binary, resolves with code -1 and the reason in `stderr`), rejects when the deadline passes.
 */
export function runCommand(command: string, args: readonly string[], o: CommandOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(p)
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${o.timeoutMs} ms\n${tail(stdout + stderr)}`))
    }, o.timeoutMs)
    p.on('error', (e) => {
      clearTimeout(timer)
      live.delete(p)
      resolve({ code: -1, stdout, stderr: stderr + e.message })
    })
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      live.delete(p)
      resolve({ code: code ?? (signal ? -1 : 0), stdout, stderr })
    })
  })
}

/** Runs a command that must succeed: rejects with its output when it exits non-zero. */
export async function mustRun(command: string, args: readonly string[], o: CommandOptions): Promise<string> {
  const r = await runCommand(command, args, o)
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.code}\n${tail(r.stdout + r.stderr)}`)
  return r.stdout
}
