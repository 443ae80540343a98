import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { waitFor } from '../../e2e/harness.js'
import { NETNS_PREFIX, cleanAndProbe, releaseLock, removeLeftovers, run, takeLock, whyNoNamespaces } from './hostNetwork.js'

/**
 * The fault suite's clean-up reaches only what the suite made: it kills the processes inside the suite's
 * namespaces and nothing in the root namespace, where other test runs on the machine (the e2e suites, the
 * power-loss suite) start their validators. Needs root and `ip netns`, like the suite.
 */
const why = whyNoNamespaces() ?? (await takeLock()) ?? cleanAndProbe()

/** A process that idles until killed; `ns` puts it inside a namespace. */
function idler(ns?: string): ChildProcess {
  const argv = [process.execPath, '-e', 'setInterval(() => {}, 1_000)']
  const p = ns === undefined ? spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' }) : spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'ignore' })
  return p
}

const ended = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null

describe('fault-suite clean-up', { skip: why ?? false, timeout: 60_000 }, () => {
  const ns = `${NETNS_PREFIX}cleanup-probe`
  const procs: ChildProcess[] = []

  before(async () => {
    await run('ip', ['netns', 'add', ns])
  })

  after(() => {
    for (const p of procs) if (!ended(p)) p.kill('SIGKILL')
    removeLeftovers()
    releaseLock()
  })

  test("kills the processes inside the suite's namespaces and none outside them", async () => {
    const outside = idler()
    const inside = idler(ns)
    procs.push(outside, inside)
    await waitFor(
      'the process inside the namespace to be listed there',
      async () => (await run('ip', ['netns', 'pids', ns])).split('\n').includes(String(inside.pid)),
      10_000,
    )
    removeLeftovers()
    await waitFor('the process inside the namespace to end', () => ended(inside), 10_000)
    assert.equal(inside.signalCode, 'SIGKILL')
    assert.ok(!ended(outside), 'a process in the root namespace was killed by the clean-up')
    assert.ok(!(await run('ip', ['netns', 'list'])).split('\n').some((l) => l.startsWith(`${ns} `) || l === ns), 'the namespace is still there')
  })
})
