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
