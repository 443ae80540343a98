/**
 * The logging the RPC layer needs: structured, pino-compatible (a pino logger fits as it is).
 * Tests and embedders that want silence use `silentLogger`.
 */
export interface RpcLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** A logger that drops everything. */
export const silentLogger: RpcLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}
