import { campaign } from './campaign.js'

// Randomized runs kept small for `npm test`; long campaigns run with `npm run sim`.
campaign(4, 1, 150, 1_000)
campaign(4, 0, 30, 1_500)
