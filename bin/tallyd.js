#!/usr/bin/env node
// The `tallyd` node CLI (compiled from node/cli/cli.ts by `npm run build`).
import { main } from '../dist/node/cli/cli.js'

process.exit(await main(process.argv.slice(2)))
