import { campaign } from './campaign.js'

// Randomized runs kept small for `npm test`; long campaigns run with `npm run sim`.
campaign(10, 3, 25, 3_000)
