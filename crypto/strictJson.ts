/**
 * JSON as the files a node and a wallet read must be: `JSON.parse` keeps the last of two equal keys in one object, so
 * `{"chainId": "a", "chainId": "b"}` would read as chain `b` while a reader (or another parser) takes `a`. Every file
 * from outside (genesis, config, key files) is checked for such keys after it parses.
 */

/** The character codes of JSON's structure, for scanners of JSON text. */
export const QUOTE = 0x22
export const BACKSLASH = 0x5c
export const OPEN_OBJECT = 0x7b
export const CLOSE_OBJECT = 0x7d
export const OPEN_ARRAY = 0x5b
export const CLOSE_ARRAY = 0x5d
export const COMMA = 0x2c
export const COLON = 0x3a

/**
 * The first key that appears twice in one object of `text`, compared as `JSON.parse` decodes them (`"a"` and
 * `"\u0061"` are equal); undefined when there is none. `text` must be JSON that `JSON.parse` accepts.
 */
export function duplicateJsonKey(text: string): string | undefined {
  // one set of keys per open object, null per open array
  const open: (Set<string> | null)[] = []
  let expectKey = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      const start = i
      let escaped = false
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i)
        if (d === QUOTE) break
        if (d === BACKSLASH) {
          escaped = true
          i++
        }
      }
      if (expectKey) {
        const keys = open[open.length - 1]!
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i)
        if (keys.has(key)) return key
        keys.add(key)
        expectKey = false
      }
    } else if (c === OPEN_OBJECT) {
      open.push(new Set())
      expectKey = true
    } else if (c === OPEN_ARRAY) {
      open.push(null)
      expectKey = false
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop()
      expectKey = false
    } else if (c === COMMA) {
      expectKey = open.length > 0 && open[open.length - 1] !== null
    }
  }
  return undefined
}

/** `JSON.parse(text)`, refusing a key that appears twice in one object (a SyntaxError naming it). */
export function parseStrictJson(text: string): unknown {
  const value: unknown = JSON.parse(text)
  const key = duplicateJsonKey(text)
  if (key !== undefined) throw new SyntaxError(`the key ${JSON.stringify(key)} appears twice in one object`)
  return value
}
