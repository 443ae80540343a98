import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino'

/**
 * The node's structured logger: pino writing one JSON object per line (stdout by default), with child loggers
 * per component (`logger.child({component: 'p2p'})`) so every line says where it came from.
 */

/** The logger type every node component takes in its dependencies. */
export type Logger = PinoLogger

/** Log levels, most to least verbose, plus `silent`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level written; default `info`. */
  readonly level?: LogLevel
  /** Base fields on every line, e.g. `{moniker: 'node0'}`. */
  readonly base?: Record<string, unknown>
  /** Where lines go; default stdout. Tests pass a collecting stream. */
  readonly destination?: DestinationStream
}

/** Creates the root logger of a node. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const opts = {
    level: options.level ?? 'info',
    base: options.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  return options.destination === undefined ? pino(opts) : pino(opts, options.destination)
}

/** A child logger for one component: every line carries `component`. */
export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ component })
}

/** A logger that writes nothing, for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
