import { readFileSync } from 'node:fs'
import { Command } from 'commander'

/**
 * `node dist/bench/profileSummary.js FILE.cpuprofile… [--last S]`: where a process's CPU went, by component.
 *
 * Reads V8 CPU profiles (`--cpu-prof`, which `npm run bench -- --profile DIR` writes for every validator) and
 * attributes each sample, optionally only those of the last S seconds of each profile (the measured phase, without
 * start-up and warm-up), to one component:
 *  - the engine's own buckets: garbage collection, `(program)` (V8 and native work outside JavaScript), idle;
 *  - Ed25519 verification and SHA-256 by the native call the sample is in;
 *  - otherwise the nearest frame, walking up from the sampled one, that belongs to the project (`dist/<room>/<file>`)
 *    or to a package (`node_modules/<package>`): Node's own modules (streams, sockets, timers) count for whoever
 *    called them, which is how a libp2p stream's socket writes land on libp2p.
 * Prints each component's share of the samples that were not idle and the CPU milliseconds it took, summed over the
 * files given.
 */

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  children?: number[]
}

interface Profile {
  startTime: number
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const program = new Command()
  .name('profileSummary')
  .argument('<files...>', 'V8 .cpuprofile files')
  .option('--last <seconds>', 'only the samples of the last S seconds of each profile')
  .option('--window <from:to>', "only the samples between these monotonic clock readings in µs (the bench's phase windows)")
  .option('--callers <component>', "also list the project's functions that the component's samples were called from")
  .option('--top <n>', 'components to print', '40')
  .parse()
const opts = program.opts<{ last?: string; window?: string; callers?: string; top: string }>()
const window = opts.window?.split(':').map(Number)

/** The component of one frame, or undefined for a frame that counts for its caller (Node's own modules). */
function componentOf(frame: ProfileNode['callFrame']): string | undefined {
  const { url, functionName } = frame
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC'
    if (functionName === '(program)') return '(program)'
    if (functionName === '(idle)') return '(idle)'
    if (functionName === '(root)') return '(root)'
    return undefined
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg) return pkg[1]
  const own = /\/dist\/(.+)\.js$/.exec(url)
  if (own) return own[1]
  return undefined
}

/** Native calls worth a line of their own, whoever made them. */
function leafOf(frame: ProfileNode['callFrame']): string | undefined {
  if (frame.url.startsWith('node:internal/crypto/sig') && /verify/i.test(frame.functionName)) return 'Ed25519 verify (native)'
  if (frame.url.startsWith('node:internal/crypto/sig') && /sign/i.test(frame.functionName)) return 'Ed25519 sign (native)'
  if (frame.url.startsWith('node:internal/crypto/hash')) return 'SHA-256 (native)'
  return undefined
}

const totals = new Map<string, number>()
const callers = new Map<string, number>()
let busyUs = 0
for (const file of program.args) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const owner = new Map<number, string>()
  const resolveOwner = (id: number): string => {
    const known = owner.get(id)
    if (known !== undefined) return known
    const n = byId.get(id)!
    const leaf = leafOf(n.callFrame)
    const up = parent.get(id)
    const own = leaf ?? componentOf(n.callFrame) ?? (up === undefined ? 'node (no caller)' : resolveOwner(up))
    owner.set(id, own)
    return own
  }
  /** The nearest three project functions at or above a frame, innermost first, as `file:function` each. */
  const projectFrames = (id: number | undefined): string => {
    const found: string[] = []
    for (let at = id; at !== undefined && found.length < 3; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame
      const own = /\/dist\/(.+)\.js$/.exec(f.url)
      if (own) found.push(`${own[1]}:${f.functionName || '(anonymous)'}`)
    }
    return found.length === 0 ? '(no project frame)' : found.join(' < ')
  }
  const total = p.timeDeltas.reduce((a, b) => a + b, 0)
  const [from, to] = window ?? [opts.last === undefined ? -Infinity : p.startTime + total - Number(opts.last) * 1e6, Infinity]
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!
    if (t < from! || t > to!) continue
    // the time to the next sample is this sample's weight
    const dt = p.timeDeltas[i + 1] ?? 0
    const c = resolveOwner(p.samples[i]!)
    if (c === '(idle)') continue
    totals.set(c, (totals.get(c) ?? 0) + dt)
    busyUs += dt
    if (c === opts.callers) {
      const at = projectFrames(p.samples[i])
      callers.set(at, (callers.get(at) ?? 0) + dt)
    }
  }
}

const rows = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
console.log(`busy CPU in the profiles: ${(busyUs / 1e6).toFixed(2)} s`)
for (const [c, us] of rows.slice(0, Number(opts.top))) {
  console.log(`${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${c}`)
}
if (opts.callers !== undefined) {
  const of = [...callers.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  console.log(`\n${opts.callers}, by the project function it was called from:`)
  for (const [f, us] of of.slice(0, Number(opts.top)))
    console.log(`${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${f}`)
}
