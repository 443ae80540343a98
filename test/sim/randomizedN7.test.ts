import { campaign } from './campaign.js'

// Randomized runs kept small for `npm test`; long campaigns run with `npm run sim`.
campaign(7, 2, 60, 2_000)
