import { campaign } from './campaign.js'

// Randomized runs of ten validators, three of them Byzantine, kept small for `npm test`.
campaign('n10f3 random', { validators: 10, faulty: 3, runs: 8, firstSeed: 3_000, schedule: 'random' })
