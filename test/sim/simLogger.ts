import type { Logger } from '../../node/logger.js'

/** A log line of a simulated node. */
export interface SimLogLine {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'
  readonly message: string
  readonly fields: Record<string, unknown>
}

/**
 * A logger for simulated nodes: lines go to `sink` (the simulation counts some and prints all when tracing a seed)
 * instead of stdout. It offers the part of pino's interface the node's components call.
 */
export function simLogger(sink: (line: SimLogLine) => void): Logger {
  const at =
    (level: SimLogLine['level']) =>
    (a: unknown, b?: unknown): void => {
      if (typeof a === 'string') sink({ level, message: a, fields: {} })
      else sink({ level, message: typeof b === 'string' ? b : '', fields: (a ?? {}) as Record<string, unknown> })
    }
  const logger = {
    level: 'debug',
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    silent: () => {},
    child: () => logger,
    isLevelEnabled: () => true,
  }
  return logger as unknown as Logger
}
