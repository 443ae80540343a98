import { campaign } from './campaign.js'

// Randomized runs of four validators, kept small for `npm test`; long campaigns run with `npm run sim`.
campaign('n4f1 random', { validators: 4, faulty: 1, runs: 80, firstSeed: 1_000, schedule: 'random' }, ['crashes', 'syncedBlocks', 'invalidVerdicts'])
campaign('n4f0 random', { validators: 4, faulty: 0, runs: 40, firstSeed: 1_500, schedule: 'random' }, ['crashes'])
