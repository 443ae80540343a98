import { setFlagsFromString } from 'node:v8'
import type { NodeConfig } from '../genesis/config.js'

/**
 * The V8 flag that carries `memory.heapGrowingPercent`. V8 reads it each time it sets the old generation's next
 * limit, at the end of a full collection, so setting it in a running process takes effect from the next one; 0 gives
 * the choice back to V8's own heuristic.
 */
export function heapGrowingFlag(memory: NodeConfig['memory']): string {
  return `--heap-growing-percent=${memory.heapGrowingPercent}`
}

/** Applies a node's memory settings to the whole process (V8's flags are per process, not per node). */
export function applyMemorySettings(memory: NodeConfig['memory'], setFlags: (flags: string) => void = setFlagsFromString): void {
  setFlags(heapGrowingFlag(memory))
}

/** glibc's limit on malloc arenas that {@link nodeProcessEnv} sets. */
const MALLOC_ARENA_MAX = '2'

/**
 * The environment for a node process that this project's commands start (`tallyd devnet`'s validators, the
 * benchmarks'): the caller's, with glibc's malloc held to {@link MALLOC_ARENA_MAX} arenas unless the caller set
 * `MALLOC_ARENA_MAX` itself. Otherwise each thread that allocates (the libuv pool's LevelDB reads and writes,
 * LevelDB's compaction, V8's compiler) may get an arena of its own, up to eight per core, and each keeps what it
 * freed: ~30 MB of a loaded validator's peak at a million accounts (docs/performance.md, "Memory"). glibc reads the
 * variable once, as the process starts, so a node cannot set it for itself: docs/operations.md asks operators to set
 * it where they start `tallyd`, and the image sets it.
 */
export function nodeProcessEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return env.MALLOC_ARENA_MAX === undefined ? { ...env, MALLOC_ARENA_MAX } : env
}
