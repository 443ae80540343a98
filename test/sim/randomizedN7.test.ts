import { campaign } from './campaign.js'

// Randomized runs of seven validators, two of them Byzantine, kept small for `npm test`.
campaign('n7f2 random', { validators: 7, faulty: 2, runs: 24, firstSeed: 2_000, schedule: 'random' })
// A validator that commits a height while a copy of that block from block sync is being checked must not take the
// block's evidence, just recorded as committed at that very height, for evidence committed before, and penalize the
// honest peer that served it (these two runs did, one without any crash).
campaign('n7f2 random, a synced copy of a block being committed', { validators: 7, faulty: 2, runs: 1, firstSeed: 78_850, schedule: 'random' })
campaign('n7f2 random, a synced copy of a block being committed, with crashes', { validators: 7, faulty: 2, runs: 1, firstSeed: 79_545, schedule: 'random' })
// A Byzantine validator's precommit that reached one honest validator alone took it to the next round with 2f+1
// precommits while the others held 2f and waited; repair gossip must carry the precommits that ended the round (this
// run stalled its chain at height 3 for the rest of the run).
campaign('n7f2 random, a round ended by a precommit only one validator received', { validators: 7, faulty: 2, runs: 1, firstSeed: 80_724, schedule: 'random' })
