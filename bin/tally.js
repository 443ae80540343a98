#!/usr/bin/env node
// The `tally` wallet CLI (compiled from wallet/cli.ts by `npm run build`).
import { main } from '../dist/wallet/cli.js'

await main()
