import { campaign } from './campaign.js'

// The lock adversary at every height until GST: honest validators must lock on different values, unlock on newer
// polkas (L28) and relock, and every signature they give must still be safe.
campaign('n4f1 locks', { validators: 4, faulty: 1, runs: 20, firstSeed: 4_000, schedule: 'locks' }, ['relocks', 'l28Unlocks', 'divergingLocks'])
campaign('n7f2 locks', { validators: 7, faulty: 2, runs: 4, firstSeed: 5_000, schedule: 'locks' }, ['relocks', 'l28Unlocks', 'divergingLocks'])
// A validator wiped while locked (seed 3: it crashes before a WAL write, its data/ deleted) keeps its lock through the
// sync back: every WAL record is replayed as the chain reaches its height, those below the safety record included.
campaign('n4f1 locks, a wipe while locked', { validators: 4, faulty: 1, runs: 1, firstSeed: 3, schedule: 'locks' }, ['crashes'])
