import { createHash } from 'node:crypto'
import { closeSync, readSync } from 'node:fs'
import { openRegularFileSync } from './boundedFile.js'
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, OPEN_ARRAY, OPEN_OBJECT, QUOTE, duplicateJsonKey } from '../../crypto/strictJson.js'

/**
 * Reads `genesis.json` in one pass of bounded chunks, never the whole file at once: the SHA-256 of its bytes, and its
 * top-level fields, each parsed with `JSON.parse` on its own text, except the elements of `balances`, which are
 * handed over one at a time (or skipped, when only the header is wanted). A million balances then never exist as
 * one string and a million objects at once.
 *
 * The reader follows what a genesis file is: one JSON object of distinct keys. For anything else (not JSON, a
 * duplicated key at any depth, a `balances` that is not an array, a file past the size bound) it gives no fields, and the caller
 * reads the file whole with `JSON.parse` instead, which either names the problem or accepts the document as before:
 * so a file is accepted or refused, and its problems named, exactly as the whole-document parser would.
 */

/** Largest genesis file read, in bytes: a million balances take near 90 bytes each as `tallyd testnet` writes them. */
export const MAX_GENESIS_FILE_BYTES = 192 * 1024 * 1024

/** Bytes read at a time. */
const CHUNK_BYTES = 1024 * 1024

/** What one pass over a genesis file found. */
export interface GenesisScan {
  /** SHA-256 of every byte of the file. */
  readonly digest: Uint8Array
  /** The file's length in bytes. */
  readonly size: number
  /** The top-level fields, `balances` set to `true` (its elements were handed over or skipped). */
  readonly fields: Record<string, unknown>
}

/** Thrown inside the reader when the file is not a document it follows; never escapes {@link scanGenesisFile}. */
class NotFollowed extends Error {}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/**
 * Reads the genesis file at `path` once, start to end. With `onBalance`, each element of `balances` is parsed and
 * passed to it in file order; without, the elements are only stepped over. Undefined when the file is not a document
 * this reader follows (it stops there); throws {@link FileReadError} when it is not a regular file of at most
 * {@link MAX_GENESIS_FILE_BYTES} bytes (checked as it is opened: a FIFO is refused, never waited on), and on I/O errors.
 */
export function scanGenesisFile(path: string, onBalance?: (value: unknown) => void): GenesisScan | undefined {
  const fd = openRegularFileSync(path, MAX_GENESIS_FILE_BYTES)
  try {
    const reader = new GenesisReader(fd)
    const fields = reader.document(onBalance)
    return { digest: reader.digest(), size: reader.size, fields }
  } catch (e) {
    if (e instanceof NotFollowed || e instanceof SyntaxError) return undefined
    throw e
  } finally {
    closeSync(fd)
  }
}

/** The scanner: a window of the file, the position in it, and the hash of everything read. */
class GenesisReader {
  private buf = Buffer.alloc(CHUNK_BYTES)
  private pos = 0
  private end = 0
  /** Start of the value being kept for parsing (-1: none): bytes from there on survive a refill. */
  private mark = -1
  private total = 0
  private eof = false
  private readonly hash = createHash('sha256')

  constructor(private readonly fd: number) {}

  digest(): Uint8Array {
    return new Uint8Array(this.hash.digest())
  }

  /** Bytes read so far. */
  get size(): number {
    return this.total
  }

  /** Reads more of the file behind what is still needed; false at the end of the file. */
  private refill(): boolean {
    if (this.eof) return false
    const keep = this.mark >= 0 ? this.mark : this.pos
    const kept = this.end - keep
    if (kept > 0 && keep > 0) this.buf.copy(this.buf, 0, keep, this.end)
    if (kept + CHUNK_BYTES > this.buf.byteLength) {
      // a single value larger than the window: widen it (the file's bound bounds it)
      const wider = Buffer.alloc(Math.max(2 * this.buf.byteLength, kept + CHUNK_BYTES))
      this.buf.copy(wider, 0, 0, kept)
      this.buf = wider
    }
    this.pos -= keep
    if (this.mark >= 0) this.mark = 0
    this.end = kept
    const n = readSync(this.fd, this.buf, this.end, this.buf.byteLength - this.end, null)
    if (n === 0) {
      this.eof = true
      return false
    }
    this.hash.update(this.buf.subarray(this.end, this.end + n))
    this.end += n
    this.total += n
    if (this.total > MAX_GENESIS_FILE_BYTES) throw new NotFollowed('too large')
    return true
  }

  /** The next byte, not consumed; -1 at the end of the file. */
  private peek(): number {
    if (this.pos >= this.end && !this.refill()) return -1
    return this.buf[this.pos]!
  }

  /** Skips whitespace and returns the next byte, not consumed (-1 at the end). */
  private next(): number {
    for (;;) {
      const c = this.peek()
      if (!isWhitespace(c)) return c
      this.pos++
    }
  }

  private expect(c: number): void {
    if (this.next() !== c) throw new NotFollowed('unexpected byte')
    this.pos++
  }

  /** The whole document: its fields, balances' elements to `onBalance` (or skipped). */
  document(onBalance: ((value: unknown) => void) | undefined): Record<string, unknown> {
    const fields: Record<string, unknown> = {}
    this.expect(OPEN_OBJECT)
    if (this.next() === CLOSE_OBJECT) this.pos++
    else {
      for (;;) {
        if (this.next() !== QUOTE) throw new NotFollowed('a key must be a string')
        const key = this.value(true)
        if (typeof key !== 'string' || Object.hasOwn(fields, key)) throw new NotFollowed('repeated key')
        this.expect(COLON)
        let value: unknown
        if (key === 'balances') {
          if (this.next() !== OPEN_ARRAY) throw new NotFollowed('balances is not an array')
          if (onBalance === undefined) this.value(false)
          else this.elements(onBalance)
          value = true
        } else value = this.value(true)
        // as JSON.parse defines it, even for a key such as __proto__
        Object.defineProperty(fields, key, { value, enumerable: true, writable: true, configurable: true })
        const c = this.next()
        this.pos++
        if (c === CLOSE_OBJECT) break
        if (c !== COMMA) throw new NotFollowed('expected , or }')
      }
    }
    if (this.next() !== -1) throw new NotFollowed('text after the document')
    return fields
  }

  /** The elements of the array that starts here, each parsed and passed on. */
  private elements(onElement: (value: unknown) => void): void {
    this.pos++ // [
    if (this.next() === CLOSE_ARRAY) {
      this.pos++
      return
    }
    for (;;) {
      onElement(this.value(true))
      const c = this.next()
      this.pos++
      if (c === CLOSE_ARRAY) return
      if (c !== COMMA) throw new NotFollowed('expected , or ]')
    }
  }

  /**
   * The value that starts here: parsed (`parse`) or only stepped over. Its extent is found by its first byte (a
   * string, an object or array by brackets outside strings, else up to a delimiter); `JSON.parse` then checks it.
   */
  private value(parse: boolean): unknown {
    const c = this.next()
    if (parse) this.mark = this.pos
    if (c === QUOTE) {
      this.pos++
      this.string()
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) this.composite()
    else this.scalar()
    if (!parse) return undefined
    const text = this.buf.toString('utf8', this.mark, this.pos)
    this.mark = -1
    const value: unknown = JSON.parse(text)
    // a key twice in one object: the whole-document reader names it
    if ((c === OPEN_OBJECT || c === OPEN_ARRAY) && duplicateJsonKey(text) !== undefined) throw new NotFollowed('repeated key')
    return value
  }

  /** Steps over the rest of a string (its opening quote consumed). */
  private string(): void {
    for (;;) {
      const b = this.buf
      const e = this.end
      let p = this.pos
      while (p < e) {
        const c = b[p]!
        if (c === QUOTE) {
          this.pos = p + 1
          return
        }
        if (c === BACKSLASH) {
          if (p + 1 >= e) break
          p += 2
        } else p++
      }
      this.pos = p
      if (!this.refill()) throw new NotFollowed('unterminated string')
    }
  }

  /** Steps over an object or array, brackets counted outside strings. */
  private composite(): void {
    let depth = 0
    for (;;) {
      const c = this.peek()
      if (c === -1) throw new NotFollowed('unterminated value')
      this.pos++
      if (c === QUOTE) this.string()
      else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++
      else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        if (--depth === 0) return
      }
    }
  }

  /** Steps over a number or literal: up to whitespace, a delimiter or the end. */
  private scalar(): void {
    let length = 0
    for (;;) {
      const c = this.peek()
      if (c === -1 || isWhitespace(c) || c === COMMA || c === CLOSE_OBJECT || c === CLOSE_ARRAY || c === COLON) break
      this.pos++
      length++
    }
    if (length === 0) throw new NotFollowed('no value')
  }
}
