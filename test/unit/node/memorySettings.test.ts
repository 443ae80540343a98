import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { applyMemorySettings, heapGrowingFlag, nodeProcessEnv } from '../../../node/memorySettings.js'

test('memory.heapGrowingPercent becomes the V8 flag, 0 included (V8 chooses again)', () => {
  const set: string[] = []
  applyMemorySettings({ heapGrowingPercent: 50 }, (f) => set.push(f))
  applyMemorySettings({ heapGrowingPercent: 0 }, (f) => set.push(f))
  assert.deepEqual(set, ['--heap-growing-percent=50', '--heap-growing-percent=0'])
  assert.equal(heapGrowingFlag({ heapGrowingPercent: 10 }), '--heap-growing-percent=10')
})

/**
 * Runs a process that sets the flag once it is running (as `tallyd start` does) and then replaces a live set piece by
 * piece, each piece outliving the young generation and dying in the old one; answers its full collections.
 */
async function fullCollections(flag: string): Promise<number> {
  const script = `
    const { setFlagsFromString } = require('node:v8')
    const { PerformanceObserver, constants } = require('node:perf_hooks')
    setFlagsFromString(${JSON.stringify(flag)})
    let majors = 0
    const obs = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++
    })
    obs.observe({ entryTypes: ['gc'] })
    const ring = new Array(1 << 15)
    for (let i = 0; i < 32 * ring.length; i++) ring[i & (ring.length - 1)] = new Array(64).fill(i)
    setTimeout(() => { obs.disconnect(); process.stdout.write(String(majors)) }, 20)`
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { encoding: 'utf8' })
  return Number(stdout)
}

test('V8 honours the flag set in a running process: a tighter growth collects the old generation more often', async () => {
  const [own, tight] = await Promise.all([fullCollections('--heap-growing-percent=0'), fullCollections('--heap-growing-percent=10')])
  assert.ok(tight >= 2 * Math.max(1, own), `full collections: ${tight} at 10%, ${own} with V8's own growth`)
})

test("a node process started by this project's commands gets two malloc arenas, unless the caller chose", () => {
  assert.equal(nodeProcessEnv({ PATH: '/bin' }).MALLOC_ARENA_MAX, '2')
  assert.equal(nodeProcessEnv({ PATH: '/bin' }).PATH, '/bin')
  assert.equal(nodeProcessEnv({ MALLOC_ARENA_MAX: '0' }).MALLOC_ARENA_MAX, '0')
  assert.equal(nodeProcessEnv({ MALLOC_ARENA_MAX: '8' }).MALLOC_ARENA_MAX, '8')
})
