import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * A campaign on worker threads survives a run that takes its worker down: that run is reported as failed, with its
 * seed and replay command, and the seeds after it run in a new worker.
 */

const cli = fileURLToPath(new URL('./cli.js', import.meta.url))

test('a run whose worker runs out of memory fails with its seed, and the campaign goes on to its last line', () => {
  // a heap of 12 MB is too small for any run: every run takes its worker down; the second job holds two seeds
  const r = spawnSync(
    process.execPath,
    [cli, '--validators', '4', '--faulty', '1', '--schedule', 'random', '--runs', '3', '--seed', '1000', '--jobs', '2', '--worker-heap', '12'],
    { encoding: 'utf8', timeout: 120_000 },
  )
  assert.equal(r.error, undefined)
  const out = r.stdout.trim().split('\n')
  for (const seed of [1000, 1001, 1002]) {
    assert.ok(
      out.some((l) => l.startsWith(`seed ${seed}: run did not end: its worker failed: `) && l.includes('memory')),
      `seed ${seed} is not reported as failed:\n${r.stdout}${r.stderr}`,
    )
    assert.ok(out.includes(`  replay: npm run sim -- --validators 4 --faulty 1 --schedule random --runs 1 --seed ${seed}`))
  }
  assert.equal(out.at(-1), '3 runs, 3 violations')
  assert.equal(r.status, 1)
})
