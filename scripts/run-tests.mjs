#!/usr/bin/env node
// Runs the compiled test suites with Node's built-in test runner.
// `node scripts/run-tests.mjs [unit|sim|e2e|fault|byzantine|docker ...]`; no argument runs unit, sim, e2e and fault, in
// that order (the Byzantine attack suite and the Docker test have scripts of their own: `npm run test:byzantine`,
// `npm run test:docker`). Unit and simulation files run two at a time; the others (real processes) one at a time.
import { readdirSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'

const root = join(fileURLToPath(import.meta.url), '..', '..')
const suites = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'sim', 'e2e', 'fault']

function* walk(dir) {
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) yield* walk(p)
    else if (p.endsWith('.test.js')) yield p
  }
}

let failed = false
const totals = [0, 0, 0]
const scratch = mkdtempSync(join(tmpdir(), 'tally-tests-'))
for (const suite of suites) {
  const files = [...walk(join(root, 'dist', 'test', suite))]
  if (files.length === 0) continue
  const concurrency = suite === 'unit' || suite === 'sim' ? 2 : 1
  console.log(`\n# ${suite}: ${files.length} file(s)`)
  const counts = join(scratch, `${suite}.counts`)
  const r = spawnSync(
    process.execPath,
    [
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${join(root, 'scripts', 'count-reporter.mjs')}`,
      `--test-reporter-destination=${counts}`,
      ...files,
    ],
    { stdio: 'inherit', cwd: root },
  )
  if (r.status !== 0) failed = true
  if (existsSync(counts))
    readFileSync(counts, 'utf8')
      .trim()
      .split(' ')
      .forEach((n, i) => {
        totals[i] += Number(n)
      })
  else failed = true
}
rmSync(scratch, { recursive: true, force: true })
console.log(`\ntests: ${totals[0]} passed, ${totals[1]} failed, ${totals[2]} skipped`)
process.exit(failed || totals[1] > 0 ? 1 : 0)
