#!/usr/bin/env node
// Mutation testing of the consensus core and host against the simulator. Each mutant is a small deliberate bug; the
// script applies it to a scratch copy of the repository (a temporary directory, node_modules linked, compiled there
// with tsc), runs the simulator's campaigns there until one reports a violation, and prints a table: the mutation,
// whether it was caught, by what, and the seed that shows it. Exits non-zero when a mutant survives every campaign.
//
//   node scripts/mutants.mjs [--only NAME[,NAME…]] [--jobs J] [--keep] [--list] [--no-baseline]
//
// The unmutated tree runs the same campaigns first and must pass them all (a violation there would make every catch
// meaningless; --no-baseline skips it). A mutant's edits must each match exactly as often as stated, so a refactoring
// that moves the code fails loudly here instead of silently testing nothing.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = join(fileURLToPath(import.meta.url), '..', '..')

/** The mutants: each a list of edits `{file, find, replace, count = 1}`. */
const MUTANTS = [
  {
    name: 'L22 ignores the lock',
    edits: [
      {
        file: 'consensus/step.ts',
        find: "const ok = validity === 'valid' && (s.lockedRound === -1 || equalValue(s.lockedValue, p.valueId))",
        replace: "const ok = validity === 'valid'",
      },
    ],
  },
  {
    name: 'L28 ignores the lock',
    edits: [
      {
        file: 'consensus/step.ts',
        find: "const ok = validity === 'valid' && (s.lockedRound <= p.polRound || equalValue(s.lockedValue, p.valueId))",
        replace: "const ok = validity === 'valid'",
      },
    ],
  },
  {
    name: 'L28 without its proof of lock',
    edits: [
      {
        file: 'consensus/step.ts',
        find: 'if (p.polRound < s.round && polka !== undefined && isTwoThirds(set, powerFor(polka.prevotes, p.valueId))) {',
        replace: 'if (p.polRound < s.round) {',
      },
    ],
  },
  {
    name: 'locks on any 2f+1 prevotes',
    edits: [
      {
        file: 'consensus/step.ts',
        find: "if (isValid(s, p.valueId) !== 'valid' || !isTwoThirds(set, powerFor(rs.prevotes, p.valueId))) continue",
        replace: "if (isValid(s, p.valueId) !== 'valid' || !isTwoThirds(set, rs.prevotes.totalPower)) continue",
      },
    ],
  },
  {
    name: 'never relocks',
    edits: [
      {
        file: 'consensus/step.ts',
        find: "if (s.step === 'prevote') {\n        s.lockedValue = p.valueId\n        s.lockedRound = s.round",
        replace:
          "if (s.step === 'prevote') {\n        if (s.lockedValue === null) s.lockedValue = p.valueId\n        if (s.lockedRound === -1) s.lockedRound = s.round",
      },
    ],
  },
  {
    name: 'quorum of f+1',
    edits: [{ file: 'consensus/validatorSet.ts', find: 'return power * 3n > set.totalPower * 2n', replace: 'return power * 3n > set.totalPower' }],
  },
  {
    name: 'quorum of one half',
    edits: [{ file: 'consensus/validatorSet.ts', find: 'return power * 3n > set.totalPower * 2n', replace: 'return power * 2n > set.totalPower' }],
  },
  {
    name: 'counts votes, not power',
    edits: [
      {
        file: 'consensus/voteSet.ts',
        find: 'set.powerByValue[vk] = (set.powerByValue[vk] ?? 0n) + BigInt(power)',
        replace: 'set.powerByValue[vk] = (set.powerByValue[vk] ?? 0n) + 1n',
        count: 2,
      },
      { file: 'consensus/voteSet.ts', find: 'set.totalPower += BigInt(power)', replace: 'set.totalPower += 1n' },
    ],
  },
  {
    name: 'counts a repeated vote again',
    edits: [
      { file: 'consensus/voteSet.ts', find: 'return (set.votes[toHex(vote.validator)] ?? []).some((v) => sameVote(v, vote))', replace: 'return false' },
      { file: 'consensus/voteSet.ts', find: "if (mine.some((v) => sameVote(v, vote))) return { kind: 'duplicate' }", replace: '' },
    ],
  },
  {
    name: 'any validator may propose',
    edits: [
      {
        file: 'consensus/step.ts',
        find: "const proposer = where === 'now' ? proposerOf(set, proposal.height, proposal.round) : findValidator(set, proposal.proposer)",
        replace: 'const proposer = findValidator(set, proposal.proposer)',
        count: 2,
      },
      {
        file: 'node/sync/consensusGossip.ts',
        find: 'const proposer = set === undefined ? undefined : proposerOf(set, p.height, p.round)',
        replace: 'const proposer = set === undefined ? undefined : findValidator(set, p.proposer)',
      },
      {
        file: 'node/sync/consensusGossip.ts',
        find: 'if (!bytesEqual(proposerOf(set, p.height, p.round).address, p.proposer))',
        replace: 'if (findValidator(set, p.proposer) === undefined)',
      },
    ],
  },
  {
    name: 'proposals marked valid unexecuted',
    edits: [{ file: 'node/host/consensusHost.ts', find: 'const j = await this.judge(c, false)', replace: "const j = 'valid' as Judgement" }],
  },
  {
    name: 'signs before the WAL is synced',
    edits: [
      {
        file: 'node/host/consensusHost.ts',
        find: 'await Promise.all([this.flushWal(), this.d.guard.',
        replace: 'await Promise.all([Promise.resolve(), this.d.guard.',
        count: 2,
      },
    ],
  },
  {
    name: 'decides on any 2f+1 precommits',
    edits: [
      {
        file: 'consensus/step.ts',
        find: 'const vk = twoThirdsValue(s, rs.precommits.powerByValue)',
        replace:
          "const vk = isTwoThirds(set, rs.precommits.totalPower) ? Object.keys(rs.precommits.powerByValue).filter((k) => k !== 'nil').sort()[0] : undefined",
      },
    ],
  },
  {
    name: 'vote signatures unchecked',
    edits: [
      { file: 'consensus/signBytes.ts', find: 'return verifyRemembered(validator.publicKey, voteSignBytes(chainId, vote), signature)', replace: 'return true' },
    ],
  },
  {
    name: 'never re-proposes the valid value',
    edits: [{ file: 'consensus/step.ts', find: 'if (s.validValue !== null) {', replace: 'if (s.validValue !== null && round < 0) {' }],
  },
]

/** The campaigns every mutant faces, cheapest first; the first that reports a violation catches it. */
const CAMPAIGNS = [
  { validators: 4, faulty: 1, schedule: 'random', runs: 40, seed: 1 },
  { validators: 4, faulty: 1, schedule: 'locks', runs: 12, seed: 1 },
  { validators: 4, faulty: 1, schedule: 'random', runs: 120, seed: 200 },
  { validators: 4, faulty: 1, schedule: 'locks', runs: 40, seed: 100 },
  { validators: 7, faulty: 2, schedule: 'locks', runs: 6, seed: 1 },
  { validators: 7, faulty: 2, schedule: 'random', runs: 40, seed: 1 },
]

function parseArgs(argv) {
  const o = { only: undefined, jobs: Math.min(2, availableParallelism()), keep: false, list: false, baseline: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--only') o.only = argv[++i].split(',').map((s) => s.trim())
    else if (a === '--jobs') o.jobs = Number(argv[++i])
    else if (a === '--keep') o.keep = true
    else if (a === '--list') o.list = true
    else if (a === '--no-baseline') o.baseline = false
    else throw new Error(`unknown option ${a}`)
  }
  return o
}

/** The repository's files as the working tree has them (tracked and new, not ignored). */
function repositoryFiles() {
  const r = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`git ls-files failed: ${r.stderr}`)
  return r.stdout.split('\0').filter((f) => f.length > 0 && !f.startsWith('node_modules') && existsSync(join(root, f)))
}

function applyEdit(dir, e) {
  const path = join(dir, e.file)
  const text = readFileSync(path, 'utf8')
  const count = text.split(e.find).length - 1
  const want = e.count ?? 1
  if (count !== want) throw new Error(`${e.file}: the text to mutate occurs ${count} times, not ${want}: ${JSON.stringify(e.find)}`)
  writeFileSync(path, text.split(e.find).join(e.replace))
}

/** A scratch copy of the repository with node_modules linked and the compiled tree copied (tsc builds incrementally). */
function scratchCopy(files) {
  const dir = mkdtempSync(join(tmpdir(), 'tally-mutant-'))
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true })
    copyFileSync(join(root, f), join(dir, f))
  }
  symlinkSync(realpathSync(join(root, 'node_modules')), join(dir, 'node_modules'), 'dir')
  if (existsSync(join(root, 'dist'))) cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true, preserveTimestamps: true })
  return dir
}

function build(dir) {
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`the mutant does not compile:\n${r.stdout}${r.stderr}`)
}

/** Runs the campaigns until one reports a violation: {caught, by, seed, campaign}. */
function hunt(dir, jobs) {
  for (const c of CAMPAIGNS) {
    const args = [
      'dist/test/sim/cli.js',
      '--validators',
      c.validators,
      '--faulty',
      c.faulty,
      '--schedule',
      c.schedule,
      '--runs',
      c.runs,
      '--seed',
      c.seed,
      '--jobs',
      jobs,
      '--stop-on-failure',
    ].map(String)
    const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
    const lines = r.stdout.split('\n')
    const hit = lines.map((l) => /^seed (\d+): (?:(\w+) violation|(invariant broken)): (.*)$/.exec(l)).find((m) => m !== null)
    const campaign = `n${c.validators}f${c.faulty} ${c.schedule}`
    if (hit) return { caught: true, by: hit[2] ?? 'invariant broken', seed: Number(hit[1]), campaign, detail: hit[4].slice(0, 160) }
    if (r.status !== 0)
      return { caught: true, by: 'simulator failure', seed: undefined, campaign, detail: (r.stderr || lines.slice(-3).join(' ')).slice(0, 160) }
  }
  return { caught: false, by: '', seed: undefined, campaign: '', detail: '' }
}

function main() {
  const o = parseArgs(process.argv.slice(2))
  const mutants = o.only === undefined ? MUTANTS : MUTANTS.filter((m) => o.only.includes(m.name))
  if (o.list) {
    for (const m of MUTANTS) console.log(m.name)
    return 0
  }
  if (mutants.length === 0) throw new Error('no mutant selected')
  const files = repositoryFiles()
  if (o.baseline) {
    const started = Date.now()
    const dir = scratchCopy(files)
    try {
      build(dir)
      const base = hunt(dir, o.jobs)
      if (base.caught) {
        console.log(`the unmutated tree fails ${base.campaign}, seed ${base.seed ?? '-'}: ${base.by}: ${base.detail}`)
        return 2
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    console.log(`baseline: the unmutated tree passes every campaign (${Math.round((Date.now() - started) / 1000)} s)`)
  }
  const rows = []
  for (const m of mutants) {
    const started = Date.now()
    const dir = scratchCopy(files)
    let row
    try {
      for (const e of m.edits) applyEdit(dir, e)
      build(dir)
      row = { name: m.name, ...hunt(dir, o.jobs) }
    } catch (e) {
      row = { name: m.name, caught: false, by: 'error', seed: undefined, campaign: '', detail: e.message.split('\n').slice(0, 3).join(' ') }
    } finally {
      if (!o.keep) rmSync(dir, { recursive: true, force: true })
      else console.log(`kept ${dir}`)
    }
    row.seconds = Math.round((Date.now() - started) / 1000)
    rows.push(row)
    console.log(
      `${row.caught ? 'caught  ' : 'SURVIVED'} ${m.name}: ${row.caught ? `${row.by} in ${row.campaign}, seed ${row.seed ?? '-'} (${row.seconds} s): ${row.detail}` : row.detail || 'no campaign reported a violation'}`,
    )
  }
  console.log('\n| mutation | caught? | by | campaign | seed |')
  console.log('|---|---|---|---|---|')
  for (const r of rows) console.log(`| ${r.name} | ${r.caught ? 'yes' : '**no**'} | ${r.by || '—'} | ${r.campaign || '—'} | ${r.seed ?? '—'} |`)
  const survivors = rows.filter((r) => !r.caught)
  console.log(`\n${rows.length} mutants, ${rows.length - survivors.length} caught, ${survivors.length} survived`)
  return survivors.length > 0 ? 1 : 0
}

process.exitCode = main()
