import { randomBytes } from 'node:crypto'
import { writeFileSync, chmodSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { addressFromPublicKey, formatAddress, parseAddress } from '../../crypto/address.js'
import { fromHex, to0x } from '../../crypto/bytes.js'
import { keyPairFromSeed, isAcceptablePublicKey } from '../../crypto/ed25519.js'
import { encodeKeyFile } from '../../crypto/keyfile.js'
import { parseStrictJson } from '../../crypto/strictJson.js'
import { DEFAULT_CONFIG, isNetworkAddress, parseConfig } from '../../genesis/config.js'
import { DEFAULT_PARAMS, MAX_GENESIS_BALANCES, formatGenesis, genesisHash, parseGenesis, type GenesisJson } from '../../genesis/genesis.js'
import { parseRfc3339 } from '../../genesis/rfc3339.js'
import { isValidChainId, U64_MAX } from '../../ledger/transaction.js'
import { runDevnet } from './devnet.js'
import { FileReadError, readBoundedFileSync } from './boundedFile.js'
import { DirectoryError, checkDirectory, makeDirectory } from './directory.js'
import { MAX_GENESIS_FILE_BYTES } from './genesisFile.js'
import { HomeError, HomeFiles, isPresent, readKeySeed } from './home.js'
import { PEER_ID_RE } from '../../ledger/governance.js'
import { peerIdOf, publicKeyOfPeerId } from '../p2p/peerId.js'
import { TestnetError, writeTestnet } from './testnetFiles.js'
import { validatorCommand } from './validatorCommand.js'

/**
 * `tallyd`: the node's command line (docs/operations.md): testnet, start, init, devnet, genesis, validator.
 * Every argument is validated before use; failures print one line to stderr and exit non-zero.
 */

class UsageError extends Error {}

/** How long `tallyd start` waits for the node to stop before it exits anyway. */
const STOP_DEADLINE_MS = 30_000

/** The integer `v` spells in decimal digits, if it is from `min` to `max`. */
const integerIn = (v: string, min: number, max: number): number | undefined => {
  const n = Number(v)
  return /^\d+$/.test(v) && Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
}
const int =
  (name: string, min: number, max: number) =>
  (v: string): number => {
    const n = integerIn(v, min, max)
    if (n === undefined) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`)
    return n
  }
const verifyWorkers = (v: string): number | 'shared' => {
  const n = v === 'shared' ? v : integerIn(v, 0, 64)
  if (n === undefined) throw new InvalidArgumentError('--verify-workers must be an integer from 0 to 64, or shared')
  return n
}
const amount = (v: string): bigint => {
  if (!/^(0|[1-9]\d{0,19})$/.test(v) || BigInt(v) > U64_MAX) throw new InvalidArgumentError('must be an integer from 0 to 2^64-1')
  return BigInt(v)
}
const chainId = (v: string): string => {
  if (!isValidChainId(v)) throw new InvalidArgumentError('must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric')
  return v
}
const genesisTime = (v: string): string => {
  const t = parseRfc3339(v)
  if (!t.ok) throw new InvalidArgumentError(`--genesis-time ${t.error.reason}`)
  return v
}
const hostList = (v: string): string[] =>
  v.split(',').map((h) => {
    try {
      return host(h.trim())
    } catch {
      throw new InvalidArgumentError(`--hosts: ${JSON.stringify(h.trim())} is not a host name or IP address`)
    }
  })
const peerId = (v: string): string => {
  if (!PEER_ID_RE.test(v) || publicKeyOfPeerId(v) === undefined)
    throw new InvalidArgumentError('--peer-id must be the libp2p peer id of an Ed25519 node key (12D3KooW…), as `tallyd init` prints it')
  return v
}
const host = (v: string): string => {
  // the rule config.json's addresses follow (docs/formats.md, "Node configuration")
  if (!isNetworkAddress(`${v}:1`, false)) throw new InvalidArgumentError('must be a host name or IP address')
  return v
}

/** `run()`, a {@link DirectoryError} told as a problem of the option that names the directory. */
function inDirectory<T>(option: string, path: string, run: () => T): T {
  try {
    return run()
  } catch (e) {
    if (e instanceof DirectoryError) throw new UsageError(`${option} ${path}: ${e.message}`)
    throw e
  }
}

function readGenesisJson(path: string): GenesisJson {
  let text: string
  try {
    text = readBoundedFileSync(path, MAX_GENESIS_FILE_BYTES).toString('utf8')
  } catch (e) {
    if (e instanceof FileReadError) throw new UsageError(e.message)
    throw e
  }
  let json: unknown
  try {
    json = parseStrictJson(text)
  } catch (e) {
    throw new UsageError(`${path} is not valid JSON: ${(e as Error).message}`)
  }
  // the shape the commands that add to it rely on; the rest is the genesis check's, when the file is written
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`${path} is not a genesis: not a JSON object`)
  for (const field of ['validators', 'balances'] as const) {
    const v = (json as Record<string, unknown>)[field]
    if (v !== undefined && !Array.isArray(v)) throw new UsageError(`${path} is not a genesis: ${field} must be an array`)
  }
  return json as GenesisJson
}

function writeGenesisJson(path: string, json: GenesisJson): void {
  const parsed = parseGenesis(json)
  if (!parsed.ok) throw new UsageError(`the genesis would be invalid:\n  ${parsed.error.errors.map((e) => `${e.path}: ${e.message}`).join('\n  ')}`)
  writeFileSync(path, `${JSON.stringify(formatGenesis(parsed.value), null, 2)}\n`)
}

/** Builds the program; `out`/`err` receive lines (tests capture them). */
export function buildProgram(out: (s: string) => void): Command {
  const program = new Command()
    .name('tallyd')
    .description('Tally validator node')
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) })

  program
    .command('testnet')
    .description('write a local testnet: genesis, one home per validator, funded dev keys')
    .requiredOption('--validators <n>', 'number of validators', int('--validators', 1, 128))
    .requiredOption('--out <dir>', 'output directory (must be empty or absent)')
    .option('--chain-id <id>', 'chain id', chainId, 'tally-devnet')
    .option('--host <host>', 'host the validators listen on and dial', host, '127.0.0.1')
    .option('--p2p-port <port>', 'p2p port of validator 0 (validator i uses port + i)', int('--p2p-port', 1, 65535), 26656)
    .option('--rpc-port <port>', 'RPC port of validator 0 (validator i uses port + i)', int('--rpc-port', 1, 65535), 8545)
    .option('--accounts <k>', 'funded accounts besides the faucet', int('--accounts', 0, 100000), 0)
    .option(
      '--unkeyed-accounts <m>',
      'funded addresses whose keys are not kept, for state size (benchmarks)',
      int('--unkeyed-accounts', 0, MAX_GENESIS_BALANCES),
      0,
    )
    // a bigint default needs its own description: commander would print it with JSON.stringify, which throws
    .addOption(new Option('--balance <amount>', 'balance of the faucet and of each account').argParser(amount).default(1_000_000_000_000n, '1000000000000'))
    .option('--hosts <list>', 'comma-separated host of each validator, for peers to dial (containers)', hostList)
    .option('--listen-host <host>', 'interface to listen on (e.g. 0.0.0.0 in containers)', host)
    .option(
      '--verify-workers <n|shared>',
      'signature verification threads per validator, or "shared": the validators share this machine and each gets floor(cores / validators) - 1, from 0 to 4 (default: shared without --hosts; with --hosts, the node\'s own default)',
      verifyWorkers,
    )
    .option('--json', 'machine-readable output')
    .action((o) => {
      const hosts: string[] | undefined = o.hosts
      const r = inDirectory('--out', resolve(o.out), () =>
        writeTestnet({
          validators: o.validators,
          out: resolve(o.out),
          chainId: o.chainId,
          host: o.host,
          p2pPort: o.p2pPort,
          rpcPort: o.rpcPort,
          accounts: o.accounts,
          unkeyedAccounts: o.unkeyedAccounts,
          balance: o.balance,
          hosts,
          listenHost: o.listenHost,
          verifyWorkers: o.verifyWorkers,
        }),
      )
      if (o.json) out(JSON.stringify({ ...r, out: resolve(o.out) }))
      else {
        out(`wrote a ${r.validators}-validator testnet "${r.chainId}" to ${resolve(o.out)}`)
        out(`  start validator i with: tallyd start --home ${join(resolve(o.out), 'node<i>')}`)
        out(`  faucet ${r.faucet}: ${join(resolve(o.out), 'keys', 'faucet.json')}`)
      }
    })

  program
    .command('start')
    .description('run one node in the foreground (JSON logs on stdout; SIGINT/SIGTERM stop it cleanly)')
    .requiredOption('--home <dir>', 'the node home')
    .option(
      '--allow-missing-validator-state',
      "start a validator whose validator_state.json is missing although its data shows it signed before (only when it cannot have signed above the chain's tip)",
    )
    .action(async (o) => {
      // loaded here so that commands which never start a node do not load libp2p and the stores
      const { TallyNode } = await import('../node.js')
      const node = await TallyNode.start(resolve(o.home), { allowMissingSafetyRecord: o.allowMissingValidatorState === true, processWide: true })
      await new Promise<void>((done) => {
        let stopping = false
        const stop = (code: number) => {
          if (stopping) return
          stopping = true
          // a stop that hangs (after an unexpected error, say) must not keep a broken node running
          setTimeout(() => process.exit(code), STOP_DEADLINE_MS).unref()
          const exit = () => {
            process.exitCode = code
            done()
          }
          node.stop().then(exit, exit)
        }
        process.once('SIGINT', () => stop(0))
        process.once('SIGTERM', () => stop(0))
        node.onFatal(() => stop(70))
        process.on('uncaughtException', (e) => node.unexpected(e))
        process.on('unhandledRejection', (e) => node.unexpected(e))
      })
    })

  program
    .command('init')
    .description('create the keys and a config for one validator of a multi-machine network, or for a full node')
    .requiredOption('--home <dir>', 'the node home to create')
    .option('--moniker <name>', 'a human-readable node name', 'tally-node')
    .option('--p2p-port <port>', 'p2p port to listen on', int('--p2p-port', 1, 65535), 26656)
    .option('--rpc-port <port>', 'RPC port', int('--rpc-port', 1, 65535), 8545)
    .option('--full-node', 'no validator key: the node syncs, follows consensus and serves the JSON-RPC, and never signs')
    .option('--json', 'machine-readable output')
    .action((o) => {
      const home = resolve(o.home)
      const fullNode = o.fullNode === true
      for (const f of [HomeFiles.validatorKey, HomeFiles.nodeKey]) {
        // isPresent: a symlink to nothing is there too, and writing through it would put the key where it points
        if (isPresent(join(home, f))) throw new UsageError(`${join(home, f)} already exists: refusing to overwrite a key`)
      }
      // checked with the same rules `tallyd start` applies, before anything is written
      const config = {
        ...DEFAULT_CONFIG,
        moniker: o.moniker,
        p2p: { ...DEFAULT_CONFIG.p2p, listen: `0.0.0.0:${o.p2pPort}` },
        rpc: { ...DEFAULT_CONFIG.rpc, port: o.rpcPort },
      }
      const checked = parseConfig(config)
      const flag: Record<string, string> = { moniker: '--moniker', 'p2p.listen': '--p2p-port', 'rpc.port': '--rpc-port' }
      if (!checked.ok) throw new UsageError(checked.error.errors.map((e) => `${flag[e.path] ?? e.path}: ${e.message}`).join('; '))
      inDirectory('--home', home, () => makeDirectory(home))
      const validatorSeed = fullNode ? undefined : new Uint8Array(randomBytes(32))
      const nodeSeed = new Uint8Array(randomBytes(32))
      const keys: [string, Uint8Array][] = [
        [HomeFiles.nodeKey, nodeSeed],
        ...(validatorSeed === undefined ? [] : [[HomeFiles.validatorKey, validatorSeed] as [string, Uint8Array]]),
      ]
      for (const [f, seed] of keys) {
        writeFileSync(join(home, f), encodeKeyFile(seed), { mode: 0o600, flag: 'wx' })
        chmodSync(join(home, f), 0o600)
      }
      if (!isPresent(join(home, HomeFiles.config))) {
        writeFileSync(join(home, HomeFiles.config), `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx' })
      }
      const peerId = peerIdOf(keyPairFromSeed(nodeSeed).publicKey)
      if (validatorSeed === undefined) {
        if (o.json) out(JSON.stringify({ home, peerId, fullNode: true }))
        else {
          out(`created ${home} (a full node: no validator key)`)
          out(`  peer id     ${peerId}`)
          out(`next: copy the network's genesis.json into ${home}, list validators in its config.json p2p.peers,`)
          out("and have each validator's operator add this peer id to p2p.allowedPeerIds in their config.json and restart")
          out('their node (docs/operations.md, "A full node")')
        }
        return
      }
      const publicKey = keyPairFromSeed(validatorSeed).publicKey
      const info = { home, publicKey: to0x(publicKey), address: formatAddress(addressFromPublicKey(publicKey)), peerId }
      if (o.json) out(JSON.stringify(info))
      else {
        out(`created ${home}`)
        out(`  public key  ${info.publicKey}`)
        out(`  address     ${info.address}`)
        out(`  peer id     ${info.peerId}`)
        out("send the public key, the peer id and this host's p2p address to the genesis coordinator, or, to join a running")
        out("network, to the validators' operators, who vote it in with `tallyd validator propose-add` (docs/operations.md)")
      }
    })

  program
    .command('devnet')
    .description('create (if needed) and run a local testnet, every validator a child process; Ctrl-C stops all')
    .option('--validators <n>', 'number of validators', int('--validators', 1, 32), 4)
    .option('--dir <dir>', 'testnet directory', '.devnet')
    .option('--reset', 'delete the directory first')
    .option('--p2p-port <port>', 'p2p port of validator 0', int('--p2p-port', 1, 65535), 26656)
    .option('--rpc-port <port>', 'RPC port of validator 0', int('--rpc-port', 1, 65535), 8545)
    .action(async (o) => {
      process.exitCode = await runDevnet({
        validators: o.validators,
        dir: o.dir,
        reset: o.reset === true,
        p2pPort: o.p2pPort,
        rpcPort: o.rpcPort,
        out,
        createTestnet: async (t) =>
          void inDirectory('--dir', t.out, () => writeTestnet({ ...t, chainId: 'tally-devnet', host: '127.0.0.1', balance: 1_000_000_000_000n })),
      })
    })

  const genesis = program.command('genesis').description("assemble a genesis from operators' keys and initial balances")
  genesis
    .command('new')
    .description('write an empty genesis (add validators and balances next)')
    .requiredOption('--chain-id <id>', 'chain id', chainId)
    .requiredOption('--out <file>', 'genesis file to write')
    .option('--genesis-time <rfc3339>', 'genesis time (default: now)', genesisTime)
    .action((o) => {
      if (isPresent(o.out)) throw new UsageError(`${o.out} already exists`)
      // the file's directory must exist: a genesis is written where the operator said, no directories made for it
      const parent = dirname(resolve(o.out))
      if (inDirectory('--out', o.out, () => checkDirectory(parent)).length > 0) throw new UsageError(`--out ${o.out}: ${parent} does not exist`)
      const json = { chainId: o.chainId, genesisTime: o.genesisTime ?? new Date().toISOString(), validators: [], balances: [], params: DEFAULT_PARAMS }
      try {
        writeFileSync(o.out, `${JSON.stringify(json, null, 2)}\n`, { flag: 'wx' })
      } catch (e) {
        throw new UsageError(`--out ${o.out} cannot be written: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
      }
      out(`wrote ${o.out}`)
    })
  genesis
    .command('add-validator')
    .description('add a validator (its public key and libp2p peer id from `tallyd init`)')
    .requiredOption('--genesis <file>', 'genesis file')
    .requiredOption('--name <name>', 'validator name')
    .requiredOption('--public-key <hex>', 'Ed25519 public key, 0x + 64 hex')
    .requiredOption('--peer-id <id>', 'libp2p peer id of its node', peerId)
    .option('--power <n>', 'voting power', int('--power', 1, 2 ** 40), 1)
    .action((o) => {
      const pk = fromHex(o.publicKey, 32)
      if (pk === undefined || !isAcceptablePublicKey(pk)) throw new UsageError('--public-key must be 0x + 64 hex digits of a valid Ed25519 public key')
      const json = readGenesisJson(o.genesis)
      json.validators = [...(json.validators ?? []), { name: o.name, publicKey: to0x(pk), power: o.power, peerId: o.peerId }]
      writeGenesisJson(o.genesis, json)
      out(`added validator ${o.name} (${formatAddress(addressFromPublicKey(pk))})`)
    })
  genesis
    .command('add-balance')
    .description('add an initial balance')
    .requiredOption('--genesis <file>', 'genesis file')
    .requiredOption('--address <address>', '0x + 40 hex')
    .requiredOption('--amount <n>', 'amount', amount)
    .action((o) => {
      const a = parseAddress(o.address)
      if (a === undefined) throw new UsageError('--address must be 0x + 40 hex digits')
      const json = readGenesisJson(o.genesis)
      json.balances = [...(json.balances ?? []), { address: formatAddress(a), amount: o.amount.toString() }]
      writeGenesisJson(o.genesis, json)
      out(`added ${o.amount} to ${formatAddress(a)}`)
    })
  genesis
    .command('validate')
    .description('validate a genesis and print its hash (every operator compares it)')
    .requiredOption('--genesis <file>', 'genesis file')
    .action((o) => {
      const parsed = parseGenesis(readGenesisJson(o.genesis))
      if (!parsed.ok) throw new UsageError(`${o.genesis} is invalid:\n  ${parsed.error.errors.map((e) => `${e.path}: ${e.message}`).join('\n  ')}`)
      if (parsed.value.validators.length === 0) throw new UsageError(`${o.genesis} has no validators`)
      out(`valid: chain ${parsed.value.chainId}, ${parsed.value.validators.length} validators, ${parsed.value.balances.length} balances`)
      out(`genesis hash ${to0x(genesisHash(parsed.value))}`)
    })
  genesis
    .command('show-key')
    .description("print the public key, address and peer id of a home's keys, as JSON (a full node has only a peer id)")
    .requiredOption('--home <dir>', 'node home')
    .option('--json', 'JSON output (the only form: accepted for symmetry with the other commands)')
    .action((o) => {
      const home = resolve(o.home)
      const n = keyPairFromSeed(readKeySeed(join(home, HomeFiles.nodeKey))).publicKey
      if (!isPresent(join(home, HomeFiles.validatorKey))) {
        out(JSON.stringify({ peerId: peerIdOf(n) }))
        return
      }
      const v = keyPairFromSeed(readKeySeed(join(home, HomeFiles.validatorKey))).publicKey
      out(JSON.stringify({ publicKey: to0x(v), address: formatAddress(addressFromPublicKey(v)), peerId: peerIdOf(n) }))
    })
  validatorCommand(program, { out })
  return program
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram((s) => process.stdout.write(`${s}\n`))
  try {
    await program.parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2
    if (e instanceof UsageError || e instanceof HomeError || e instanceof TestnetError) {
      process.stderr.write(`tallyd: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`tallyd: ${(e as Error).message}\n`)
    return 1
  }
}
