import { campaign } from './campaign.js'

// Randomized runs of seven validators, two of them Byzantine, kept small for `npm test`.
campaign('n7f2 random', { validators: 7, faulty: 2, runs: 24, firstSeed: 2_000, schedule: 'random' })
