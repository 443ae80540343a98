import { runCli, type CliIo } from '../../../wallet/cli.js'

/** What a run of the wallet printed, and its exit code. */
export interface Run {
  code: number
  out: string
  err: string
}

/** Runs the wallet in process with `io` (no prompt by default), capturing what it writes to stdout and stderr. */
export async function runTally(argv: string[], io: Omit<CliIo, 'stdout' | 'stderr'>): Promise<Run> {
  let out = ''
  let err = ''
  const code = await runCli(argv, {
    prompt: null,
    ...io,
    stdout: {
      write: (s: string) => {
        out += s
      },
    },
    stderr: {
      write: (s: string) => {
        err += s
      },
    },
  })
  return { code, out, err }
}
