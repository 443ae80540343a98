import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { bytesEqual, to0x, toHex } from '../../crypto/bytes.js'
import { malformed } from '../../crypto/decodeError.js'
import { FileReadError, readBoundedFile } from '../../node/cli/boundedFile.js'
import { makeDirectory } from '../../node/cli/directory.js'
import { HASH_LENGTH } from '../../crypto/hash.js'
import { ok } from '../../crypto/result.js'
import { parseStrictJson } from '../../crypto/strictJson.js'
import type { ValidatorSet } from '../../consensus/index.js'
import { blockHash } from '../../ledger/block.js'
import { isValidChainId } from '../../ledger/transaction.js'
import { decodeHeader, decodeValidatorSet, formatHeader, formatValidatorSet, hexBytes, type Decoded } from './lightBlock.js'
import { TrustedBlocks, type TrustRoot } from './trustedBlocks.js'
import type { TrustedBlock } from './verifier.js'

/**
 * The light client's store: its trusted blocks of one chain as one JSON file, `<dir>/<chainId>.json`, so the next run
 * starts where the last one ended. Written whole to a temporary file and renamed over the old one, so a crash
 * leaves the old store or the new, never half of one. Read back strictly: a file that does not decode, or whose
 * content is inconsistent (a set whose hash is not its key, blocks out of order, a root that is not its first block),
 * is reported corrupt and the caller rebuilds from its trusted starting point.
 *
 * ```json
 * {"type": "tally-light-store", "version": 1, "chainId": "…",
 *  "root": {"genesisHash": "0x…"} | {"height": 120, "hash": "0x…"},
 *  "sets": {"0x<set hash>": [{"address", "publicKey", "power"}, …]},
 *  "blocks": [{"genesis": {"time": 1767225600000, "nextValidatorSetHash": "0x…"}}, {"header": {…}}, …]}
 * ```
 * A block's next validator set, when the store holds it, is `sets[nextValidatorSetHash]`.
 */

/** The `type` of a store file. */
export const LIGHT_STORE_TYPE = 'tally-light-store'
/** The store format version. */
export const LIGHT_STORE_VERSION = 1
/** Largest store file read. */
export const MAX_LIGHT_STORE_BYTES = 16 * 1024 * 1024
/** Most blocks a store file may list. */
const MAX_STORED_BLOCKS = 10_000

/** The store file of a chain in `dir`. The chain id's alphabet ([A-Za-z0-9._-], first alphanumeric) is safe as a file name. */
export function lightStorePath(dir: string, chainId: string): string {
  if (!isValidChainId(chainId)) throw new RangeError(`not a chain id: ${JSON.stringify(chainId)}`)
  return join(dir, `${chainId}.json`)
}

/** Encodes the trusted blocks as the store's JSON text. */
export function encodeLightStore(blocks: TrustedBlocks): string {
  const sets: Record<string, unknown> = {}
  const rows = blocks.all().map((b) => {
    if (b.nextValidators !== undefined) sets[to0x(b.nextValidators.hash)] = formatValidatorSet(b.nextValidators)
    return b.header === null ? { genesis: { time: b.time, nextValidatorSetHash: to0x(b.nextValidatorSetHash) } } : { header: formatHeader(b.header) }
  })
  const root = blocks.root.kind === 'genesis' ? { genesisHash: to0x(blocks.root.genesisHash) } : { height: blocks.root.height, hash: to0x(blocks.root.hash) }
  return `${JSON.stringify({ type: LIGHT_STORE_TYPE, version: LIGHT_STORE_VERSION, chainId: blocks.chainId, root, sets, blocks: rows })}\n`
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Decodes a store's JSON text, checking it whole. */
export function decodeLightStore(text: string): Decoded<TrustedBlocks> {
  const fail = malformed
  let v: unknown
  try {
    v = parseStrictJson(text)
  } catch (e) {
    // a key twice would read as its last value while another reader takes the first
    return fail(e instanceof SyntaxError && /appears twice/.test(e.message) ? e.message : 'not JSON')
  }
  if (!isRecord(v) || v.type !== LIGHT_STORE_TYPE) return fail(`not a ${LIGHT_STORE_TYPE} file`)
  if (v.version !== LIGHT_STORE_VERSION) return fail(`unsupported version ${JSON.stringify(v.version)}`)
  if (typeof v.chainId !== 'string' || !isValidChainId(v.chainId)) return fail('chainId')
  const chainId = v.chainId
  let root: TrustRoot
  if (isRecord(v.root) && v.root.genesisHash !== undefined) {
    const genesisHash = hexBytes(v.root.genesisHash, HASH_LENGTH)
    if (genesisHash === undefined) return fail('root.genesisHash')
    root = { kind: 'genesis', genesisHash }
  } else if (isRecord(v.root)) {
    const hash = hexBytes(v.root.hash, HASH_LENGTH)
    const height = v.root.height
    if (hash === undefined || typeof height !== 'number' || !Number.isSafeInteger(height) || height < 1) return fail('root')
    root = { kind: 'checkpoint', height, hash }
  } else return fail('root')
  const sets = new Map<string, ValidatorSet>()
  if (!isRecord(v.sets)) return fail('sets')
  for (const [key, members] of Object.entries(v.sets)) {
    const set = decodeValidatorSet(members)
    if (!set.ok) return fail(`sets[${key}]: ${set.error.reason}`)
    if (key !== to0x(set.value.hash)) return fail(`sets[${key}]: the set's hash is not its key`)
    sets.set(toHex(set.value.hash), set.value)
  }
  if (!Array.isArray(v.blocks) || v.blocks.length === 0 || v.blocks.length > MAX_STORED_BLOCKS) return fail('blocks')
  const blocks: TrustedBlock[] = []
  for (const [i, row] of (v.blocks as unknown[]).entries()) {
    if (!isRecord(row)) return fail(`blocks[${i}]`)
    let block: TrustedBlock
    if (isRecord(row.genesis)) {
      const next = hexBytes(row.genesis.nextValidatorSetHash, HASH_LENGTH)
      const time = row.genesis.time
      if (i !== 0 || next === undefined || typeof time !== 'number' || !Number.isSafeInteger(time) || time < 0) return fail(`blocks[${i}]: genesis`)
      block = { chainId, height: 0, time, header: null, hash: null, nextValidatorSetHash: next }
    } else {
      const h = decodeHeader(row.header)
      if (!h.ok) return fail(`blocks[${i}]: ${h.error.reason}`)
      if (h.value.chainId !== chainId) return fail(`blocks[${i}]: a header of another chain`)
      block = {
        chainId,
        height: h.value.height,
        time: h.value.time,
        header: h.value,
        hash: blockHash(h.value),
        nextValidatorSetHash: h.value.nextValidatorSetHash,
      }
    }
    const next = sets.get(toHex(block.nextValidatorSetHash))
    if (next !== undefined) block = { ...block, nextValidators: next }
    if (i > 0 && block.height <= blocks[i - 1]!.height) return fail(`blocks[${i}]: heights must increase`)
    blocks.push(block)
  }
  const first = blocks[0]!
  if (root.kind === 'genesis' ? first.height !== 0 : first.height !== root.height || first.hash === null || !bytesEqual(first.hash, root.hash)) {
    return fail('the first block is not the block of the root')
  }
  if (first.height === 0 && first.nextValidators === undefined) return fail('the genesis validators are missing')
  return ok(new TrustedBlocks(root, first, blocks.slice(1)))
}

/** What loading a store found. */
export type LoadedLightStore =
  | { readonly kind: 'missing' }
  | { readonly kind: 'corrupt'; readonly reason: string }
  | { readonly kind: 'ok'; readonly blocks: TrustedBlocks }

/** Reads the store at `path`. */
export async function loadLightStore(path: string): Promise<LoadedLightStore> {
  let text: string
  try {
    text = (await readBoundedFile(path, MAX_LIGHT_STORE_BYTES)).toString('utf8')
  } catch (e) {
    if (e instanceof FileReadError && e.code === 'missing') return { kind: 'missing' }
    return { kind: 'corrupt', reason: e instanceof FileReadError ? e.reason.replace(/^is /, '') : (e as Error).message }
  }
  const d = decodeLightStore(text)
  return d.ok ? { kind: 'ok', blocks: d.value } : { kind: 'corrupt', reason: d.error.reason }
}

/**
 * Writes the store at `path` atomically (a temporary file renamed over it), creating its directory (mode 0700) one
 * level at a time: a path where a directory cannot be made (a file on the way, procfs) throws a `DirectoryError`
 * (node/cli/directory.ts) naming the path at fault, at once, where a recursive mkdir could retry forever.
 */
export async function saveLightStore(path: string, blocks: TrustedBlocks): Promise<void> {
  makeDirectory(join(path, '..'), 0o700)
  const tmp = `${path}.${process.pid}.${Math.floor(Math.random() * 1e9)}.tmp`
  try {
    await writeFile(tmp, encodeLightStore(blocks), { mode: 0o600 })
    await rename(tmp, path)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
}
