import { campaign } from './campaign.js'

// Randomized runs of four validators, kept small for `npm test`; long campaigns run with `npm run sim`.
campaign('n4f1 random', { validators: 4, faulty: 1, runs: 80, firstSeed: 1_000, schedule: 'random' }, ['crashes', 'syncedBlocks', 'invalidVerdicts'])
campaign('n4f0 random', { validators: 4, faulty: 0, runs: 40, firstSeed: 1_500, schedule: 'random' }, ['crashes'])
// A validator that precommitted at a height, lost its data/ in a crash and caught up to that height again must come
// back locked: this run's messages of later rounds reached it first, and without its WAL records replayed before
// them it prevoted another value in a later round.
campaign('n4f1 mixed, a lock kept through a wipe and a sync', { validators: 4, faulty: 1, runs: 1, firstSeed: 69_426, schedule: 'mixed' })
// The plan leaves one validator from height 45; with no pause before a proposal or after a commit and a disk of zero
// latency it waited on no event, deciding heights at one instant of virtual time without end (the disk's rate,
// simDisk.ts `DiskRate`, moves the clock on; the scheduler's bounds end such a run with a violation).
campaign(
  'n4f1 mixed with set changes, a set of one validator',
  { validators: 4, faulty: 1, runs: 1, firstSeed: 111_233, schedule: 'mixed', membership: true },
  ['setChanges'],
)
