import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { to0x } from '../crypto/bytes.js'
import { parseStrictJson } from '../crypto/strictJson.js'
import { HASH_LENGTH } from '../crypto/hash.js'
import { genesisHash, parseGenesis } from '../genesis/genesis.js'
import { RpcClient } from '../rpc/client.js'
import { FailedVerificationError, TrustError } from '../rpc/light/errors.js'
import { hexBytes } from '../rpc/light/lightBlock.js'
import { LightClient, trustCheckpoint } from '../rpc/light/lightClient.js'
import { lightStorePath, loadLightStore, saveLightStore } from '../rpc/light/lightStore.js'
import { RpcLightProvider } from '../rpc/light/rpcProvider.js'
import { TrustedBlocks, sameRoot, type TrustRoot } from '../rpc/light/trustedBlocks.js'
import { DEFAULT_TRUSTING_PERIOD_MS, trustedGenesis, type TrustedBlock } from '../rpc/light/verifier.js'
import { VerifiedRpc } from '../rpc/light/verifiedClient.js'
import { FileReadError, readBoundedFile } from '../node/cli/boundedFile.js'
import { DirectoryError, checkDirectory, makeDirectory } from '../node/cli/directory.js'
import { CliError, parseWitnessTimeout } from './args.js'

/**
 * How the wallet comes to trust answers (docs/wallet.md, "Verification"): from a trusted starting point the user
 * names (a genesis file, or a block pinned by height and hash) or, without one, from the light store an earlier run
 * left for the chain; then a light client over the endpoints, its trusted headers kept in the light store.
 */

/** The verification options, as the command line gives them. */
export interface TrustOptions {
  readonly genesis?: string
  readonly trustHeight?: string
  readonly trustHash?: string
  readonly lightDir?: string
  readonly trustingPeriod?: string
  /** `--witness-timeout`, in ms (else TALLY_WITNESS_TIMEOUT, else the light client's default). */
  readonly witnessTimeout?: string
}

/** What verified commands use. */
export interface Verifier {
  readonly chainId: string
  readonly light: LightClient
  readonly rpc: VerifiedRpc
  /** The light store file. */
  readonly storePath: string
}

/** What setting up verification reads and writes. */
export interface TrustIo {
  readonly env: Record<string, string | undefined>
  /** Warnings (a corrupt store rebuilt, an endpoint that lied, a header no other endpoint confirmed), one a line. */
  readonly warn: (message: string, fields?: Record<string, unknown>) => void
  readonly now: () => number
  readonly rpcTimeoutMs: number
}

/** Largest genesis file read (a genesis may list a million balances). */
const MAX_GENESIS_BYTES = 256 * 1024 * 1024

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** A duration such as `14d`, `336h`, `90m`, `2w`, in ms. */
export function parseDurationArg(text: string, what: string): number {
  const m = /^([1-9][0-9]{0,9})([smhdw])$/.exec(String(text).trim())
  const ms = m === null ? undefined : Number(m[1]) * DURATION_UNITS[m[2]!]!
  if (ms === undefined || !Number.isSafeInteger(ms))
    throw new CliError(`bad ${what} ${JSON.stringify(String(text).slice(0, 40))}: expected a duration such as 14d, 336h or 90m`, 'bad_duration')
  return ms
}

/** The light store directory: `--light-dir`, `TALLY_LIGHT_DIR`, else `~/.tally/light`. */
export function lightDirOf(option: string | undefined, env: Record<string, string | undefined>): string {
  return resolve(option ?? env.TALLY_LIGHT_DIR ?? join(env.HOME ?? homedir(), '.tally', 'light'))
}

/** `use(dir)` for the light directory, a {@link DirectoryError} told as a problem of the option or variable naming it. */
function lightDir<T>(dir: string, use: (dir: string) => T): T {
  try {
    return use(dir)
  } catch (e) {
    if (e instanceof DirectoryError) throw new CliError(`cannot use the light directory ${dir}: ${e.message} (--light-dir or TALLY_LIGHT_DIR)`, 'bad_light_dir')
    throw e
  }
}

/** The one-line advice a trust problem gets. */
export function trustAdvice(e: TrustError): string {
  if (e.code === 'no_trust_root') {
    return `${e.message}: pass --genesis FILE (or set TALLY_GENESIS), or --trust-height H --trust-hash 0x… of a block you trust; or --no-verify to skip verification`
  }
  if (e.code === 'trust_expired') {
    return `${e.message}: pin a recent block with --trust-height H --trust-hash 0x… (from a source you trust), or allow older trusted blocks with --trusting-period; or --no-verify to skip verification`
  }
  return e.message
}

async function readGenesis(path: string): Promise<{ root: TrustRoot; block: TrustedBlock }> {
  let text: string
  try {
    text = (await readBoundedFile(path, MAX_GENESIS_BYTES)).toString('utf8')
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e
    if (e.code === 'too_large') throw new CliError(`genesis file ${e.message}`, 'bad_genesis')
    throw new CliError(`cannot read the genesis file ${e.message}`, 'bad_genesis')
  }
  let json: unknown
  try {
    json = parseStrictJson(text)
  } catch (e) {
    throw new CliError(`genesis file ${path} is not JSON: ${(e as Error).message}`, 'bad_genesis')
  }
  const g = parseGenesis(json)
  if (!g.ok) {
    const first = g.error.errors[0]!
    throw new CliError(`genesis file ${path} is not a valid genesis: ${first.path ? `${first.path}: ` : ''}${first.message}`, 'bad_genesis')
  }
  return { root: { kind: 'genesis', genesisHash: genesisHash(g.value) }, block: trustedGenesis(g.value) }
}

/** The chain id the first endpoint that answers reports (only to find the light store; nothing is trusted from it). */
async function reportedChainId(endpoints: readonly string[], timeoutMs: number): Promise<string> {
  return (await new RpcClient({ endpoints, timeoutMs, retries: 1 }).status()).chainId
}

/**
 * The checkpoint's trusted block, from the first endpoint whose block at the pinned height has the pinned hash (the
 * others are reported and skipped).
 */
async function fetchCheckpoint(height: number, hash: Uint8Array, endpoints: readonly string[], io: TrustIo, trustingPeriodMs: number): Promise<TrustedBlock> {
  const failures: string[] = []
  for (const endpoint of endpoints) {
    const provider = new RpcLightProvider(new RpcClient({ endpoints: [endpoint], timeoutMs: io.rpcTimeoutMs, retries: 1 }))
    try {
      return await trustCheckpoint(height, hash, provider, { now: io.now(), trustingPeriodMs })
    } catch (e) {
      if (e instanceof TrustError) throw e
      if (e instanceof FailedVerificationError) {
        io.warn(e.message, { endpoint, reason: 'failed_verification' })
        failures.push(`${endpoint} (fails verification: ${e.reason})`)
      } else failures.push(`${endpoint} (${(e as Error).message})`)
    }
  }
  throw new CliError(`no endpoint served the pinned block ${height} ${to0x(hash)}: ${failures.join(', ')}`, 'unverified')
}

/** Sets up verification over `endpoints`: the trusted starting point, the light store, the light client. */
export async function openVerifier(options: TrustOptions, endpoints: readonly string[], io: TrustIo): Promise<Verifier> {
  const trustingPeriodMs = options.trustingPeriod === undefined ? DEFAULT_TRUSTING_PERIOD_MS : parseDurationArg(options.trustingPeriod, 'trusting period')
  const witnessTimeoutMs = parseWitnessTimeout(options.witnessTimeout, io.env)
  const dir = lightDirOf(options.lightDir, io.env)
  lightDir(dir, checkDirectory)
  const genesisFile = options.genesis ?? io.env.TALLY_GENESIS
  if ((options.trustHeight === undefined) !== (options.trustHash === undefined)) {
    throw new CliError('--trust-height and --trust-hash go together: the height and the hash of a block you trust', 'bad_trust_root')
  }
  if (genesisFile !== undefined && genesisFile !== '' && options.trustHeight !== undefined) {
    throw new CliError('give either --genesis (or TALLY_GENESIS) or --trust-height/--trust-hash, not both', 'bad_trust_root')
  }

  let given: { root: TrustRoot; block?: TrustedBlock } | undefined
  let chainId: string
  if (genesisFile !== undefined && genesisFile !== '') {
    const g = await readGenesis(genesisFile)
    given = g
    chainId = g.block.chainId
  } else if (options.trustHeight !== undefined) {
    const height = Number(options.trustHeight)
    if (!/^[1-9][0-9]{0,15}$/.test(options.trustHeight) || !Number.isSafeInteger(height))
      throw new CliError(`bad --trust-height ${JSON.stringify(options.trustHeight.slice(0, 40))}: expected a positive integer`, 'bad_trust_root')
    const hash = hexBytes(options.trustHash, HASH_LENGTH)
    if (hash === undefined)
      throw new CliError(`bad --trust-hash ${JSON.stringify(String(options.trustHash).slice(0, 80))}: expected 0x + 64 hex digits`, 'bad_trust_root')
    given = { root: { kind: 'checkpoint', height, hash } }
    chainId = await reportedChainId(endpoints, io.rpcTimeoutMs)
  } else {
    chainId = await reportedChainId(endpoints, io.rpcTimeoutMs)
  }

  let storePath = lightStorePath(dir, chainId)
  const loaded = await loadLightStore(storePath)
  let blocks: TrustedBlocks | undefined
  let notice: string | undefined
  if (loaded.kind === 'ok' && loaded.blocks.chainId === chainId && (given === undefined || sameRoot(loaded.blocks.root, given.root))) {
    blocks = loaded.blocks
  } else if (loaded.kind === 'ok' && loaded.blocks.chainId === chainId) {
    notice = `the light store ${storePath} descends from another trusted starting point; starting over from the one given`
  } else if (loaded.kind !== 'missing') {
    const why = loaded.kind === 'corrupt' ? loaded.reason : `it holds chain ${loaded.blocks.chainId}`
    if (given === undefined) {
      throw new TrustError('no_trust_root', `the light store ${storePath} is corrupt (${why}) and no trusted starting point was given to rebuild it from`)
    }
    notice = `the light store ${storePath} is corrupt (${why}); rebuilding it from the trusted starting point`
  } else if (given === undefined) {
    throw new TrustError(
      'no_trust_root',
      `no trusted starting point to verify answers of chain ${JSON.stringify(chainId)} (no genesis given, no light store ${storePath})`,
    )
  }

  if (blocks === undefined) {
    const root = given!.root
    const rootBlock = root.kind === 'checkpoint' ? await fetchCheckpoint(root.height, root.hash, endpoints, io, trustingPeriodMs) : given!.block!
    if (rootBlock.chainId !== chainId) {
      // the pinned block names the chain; the endpoint's own claim only served to look for a store
      chainId = rootBlock.chainId
      storePath = lightStorePath(dir, chainId)
    } else if (notice !== undefined) io.warn(notice)
    blocks = new TrustedBlocks(root, rootBlock)
    lightDir(dir, (d) => makeDirectory(d, 0o700))
    await saveLightStore(storePath, blocks)
  }
  const path = storePath
  const light = new LightClient(
    { trustingPeriodMs, ...(witnessTimeoutMs === undefined ? {} : { witnessTimeoutMs }) },
    { blocks, now: io.now, onChange: (b) => saveLightStore(path, b) },
  )
  const rpc = new VerifiedRpc(
    { endpoints, timeoutMs: io.rpcTimeoutMs, retries: 1 },
    {
      light,
      onRejected: (e) => io.warn(`${e.message}; trying the next endpoint`, { endpoint: e.endpoint, reason: 'failed_verification' }),
      onUnconfirmed: (e) => io.warn(`${e.message}; verifying it height by height`, { endpoint: e.endpoint, reason: e.code }),
    },
  )
  return { chainId, light, rpc, storePath }
}
