import { err, type Result } from '../crypto/result.js'

/**
 * The error style of every schema in genesis/: a list of `{ path, message }`, where `path` names the field
 * (`validators[2].publicKey`, `params.timeouts.proposeMs`) and `message` the problem. All problems are reported at
 * once, so an operator fixes a file in one pass.
 */

/** One problem with one field. */
export interface FieldError {
  readonly path: string
  readonly message: string
}

/** Every code a schema failure can carry: which document (or set of options) does not validate. */
export const SCHEMA_ERROR_CODES = ['invalid_genesis', 'invalid_config', 'invalid_testnet'] as const

/** A code from {@link SCHEMA_ERROR_CODES}. */
export type SchemaErrorCode = (typeof SCHEMA_ERROR_CODES)[number]

/** A document that does not validate: its code, and every problem, each naming its field. */
export interface SchemaError<C extends SchemaErrorCode = SchemaErrorCode> {
  readonly code: C
  readonly errors: FieldError[]
}

/** The outcome of parsing a schema: the value, or every problem with it. */
export type ParseResult<T, C extends SchemaErrorCode = SchemaErrorCode> = Result<T, SchemaError<C>>

/** Collects field errors while a schema is checked. */
export class FieldErrors {
  readonly list: FieldError[] = []

  /** Records a problem at `path`. */
  add(path: string, message: string): void {
    this.list.push({ path, message })
  }

  /** The failure of a schema with code `code` and the problems recorded so far. */
  fail<C extends SchemaErrorCode>(code: C): { readonly ok: false; readonly error: SchemaError<C> } {
    return err({ code, errors: this.list })
  }

  /** True when no problem was recorded. */
  get empty(): boolean {
    return this.list.length === 0
  }

  /** Checks `value` is a plain object with only `allowed` keys (and the `required` ones); false when not an object. */
  object(path: string, value: unknown, allowed: readonly string[], required: readonly string[] = []): value is Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.add(path, 'must be an object')
      return false
    }
    for (const k of Object.keys(value).sort()) if (!allowed.includes(k)) this.add(join(path, k), 'unknown field')
    for (const k of required) if (!(k in value)) this.add(join(path, k), 'is required')
    return true
  }

  /** An integer in [min, max] (safe integers only), or undefined after recording why not. */
  integer(path: string, value: unknown, min: number, max: number): number | undefined {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      this.add(path, 'must be an integer')
      return undefined
    }
    if (value < min || value > max) {
      this.add(path, `must be between ${min} and ${max}`)
      return undefined
    }
    return value
  }

  /** A string matching `re` (and at most `maxLength` long), or undefined after recording why not. */
  string(path: string, value: unknown, re: RegExp, description: string, maxLength = 256): string | undefined {
    if (typeof value !== 'string') {
      this.add(path, 'must be a string')
      return undefined
    }
    if (value.length > maxLength || !re.test(value)) {
      this.add(path, `must be ${description}`)
      return undefined
    }
    return value
  }
}

/** Joins a path and a key: `a` + `b` → `a.b`; the root path is the empty string. */
export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return path === '' ? key : `${path}.${key}`
}
