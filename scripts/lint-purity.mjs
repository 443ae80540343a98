#!/usr/bin/env node
// Purity lint: the pure rooms (crypto/, ledger/, consensus/, genesis/) must not reach the clock,
// randomness, timers, the environment, the file system, the network, or the node's I/O libraries.
// Storage reaches the ledger only through its narrow store interface; implementations live in node/.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(fileURLToPath(import.meta.url), '..', '..')
const rooms = ['crypto', 'ledger', 'consensus', 'genesis']

/** Module specifiers no pure room may import (node: prefix optional). */
const forbiddenModules = [
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'dgram',
  'dns',
  'tls',
  'child_process',
  'cluster',
  'os',
  'worker_threads',
  'process',
  'timers',
  'timers/promises',
  'perf_hooks',
  'readline',
  'vm',
  'v8',
  'classic-level',
  'level',
  'libp2p',
  'koa',
  'ws',
  'pino',
  'prom-client',
  'commander',
]
/** Module prefixes no pure room may import. */
const forbiddenPrefixes = ['@libp2p/', '@chainsafe/', '@koa/', '@multiformats/']
/** Only crypto/ may import node:crypto: it is the fast, byte-compatible Ed25519 verifier and SHA-256. */
const cryptoOnly = ['crypto']

const forbiddenGlobals = [
  [/\bDate\b/, 'Date (the clock)'],
  [/\bMath\.random\b/, 'Math.random'],
  [/\bcrypto\.getRandomValues\b|\brandomBytes\b|\brandomUUID\b/, 'randomness'],
  [/\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval)\b/, 'timers'],
  [/\bperformance\b/, 'performance (the clock)'],
  [/\bprocess\./, 'process (environment, clock, exit)'],
  [/\brequire\(/, 'require'],
]

function* walk(dir) {
  let entries
  try {
    entries = readdirSync(dir)
  } catch {
    return
  }
  for (const name of entries) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) yield* walk(p)
    else if (p.endsWith('.ts')) yield p
  }
}

/** Blank out comments and string contents (keeping import specifiers) so prose never trips the lint. */
function stripComments(src) {
  return src.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:])\/\/.*$/gm, '$1')
}

const problems = []
for (const room of rooms) {
  for (const file of walk(join(root, room))) {
    const rel = relative(root, file)
    const lines = stripComments(readFileSync(file, 'utf8')).split('\n')
    lines.forEach((line, i) => {
      const where = `${rel}:${i + 1}`
      for (const m of line.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1]
        const bare = spec.startsWith('node:') ? spec.slice(5) : spec
        if (bare === 'crypto') {
          if (!cryptoOnly.includes(room)) problems.push(`${where}: ${room}/ imports '${spec}' (only crypto/ may)`)
        } else if (forbiddenModules.includes(bare) || forbiddenPrefixes.some((p) => bare.startsWith(p))) {
          problems.push(`${where}: ${room}/ is pure and may not import '${spec}'`)
        }
      }
      const code = line.replace(/(['"`])(?:\\.|(?!\1).)*\1/g, '""')
      for (const [re, what] of forbiddenGlobals) {
        if (re.test(code)) problems.push(`${where}: ${room}/ is pure and may not use ${what}`)
      }
    })
  }
}

if (problems.length > 0) {
  console.error(`purity lint: ${problems.length} problem(s)`)
  for (const p of problems) console.error(`  ${p}`)
  process.exit(1)
}
console.log(`purity lint: ${rooms.join(', ')} are clean`)
