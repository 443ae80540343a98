import { Command, CommanderError } from 'commander'
import { formatAddress } from '../crypto/address.js'
import { to0x } from '../crypto/bytes.js'
import type { ScryptParams } from '../crypto/keyfile.js'
import { createTransfer } from '../ledger/transaction.js'
import { RpcClient, RpcError, RpcUnreachableError, type TxView } from '../rpc/client.js'
import { ConflictingHeadersError, TrustError } from '../rpc/light/errors.js'
import { NoVerifiedAnswerError, type Verified } from '../rpc/light/verifiedClient.js'
import { isControl } from '../rpc/light/proofs.js'
import {
  CliError,
  parseAddressArg,
  parseAmountArg,
  parseChainIdArg,
  parseEndpoints,
  parseHashArg,
  parseHeightArg,
  parseNonceArg,
  parseTxHexArg,
} from './args.js'
import { createKey, loadKey, loadKeyInfo } from './keyStore.js'
import { terminalPrompt } from './prompt.js'
import { openVerifier, trustAdvice, type Verifier } from './trust.js'

/**
 * The `tally` wallet: keys, offline signing, and look-ups and submissions over JSON-RPC (docs/wallet.md).
 * `runCli` is the whole program as a function of its arguments and I/O, so tests run it in-process;
 * `bin/tally.js` calls `main`.
 */

/** What the CLI reads and writes. Tests pass their own; `main` passes the process's. */
export interface CliIo {
  readonly env: Record<string, string | undefined>
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown }
  /** Interactive password prompt; null when there is no terminal; undefined to use the process's terminal. */
  readonly prompt?: ((question: string) => Promise<string>) | null
  /** scrypt parameters for new encrypted keys (tests use cheap ones); default DEFAULT_SCRYPT_PARAMS. */
  readonly scrypt?: ScryptParams
  /** How long `transfer` waits for the commit (default 120 s). */
  readonly waitTimeoutMs?: number
  /** HTTP timeout per RPC exchange (default 5 s). */
  readonly rpcTimeoutMs?: number
  /** The clock the light client judges header times and the trusting period by (default Date.now). */
  readonly now?: () => number
}

interface GlobalOptions {
  rpc?: string
  json?: boolean
  /** False with --no-verify. */
  verify: boolean
  genesis?: string
  trustHeight?: string
  trustHash?: string
  lightDir?: string
  trustingPeriod?: string
  witnessTimeout?: string
}

/** Runs the wallet with `argv` (the arguments after the program name); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const prompt = io.prompt === undefined ? terminalPrompt() : io.prompt
  const passwords = { env: io.env, prompt }
  let jsonMode = argv.includes('--json')
  const print = (human: string, json: unknown) => {
    io.stdout.write(jsonMode ? jsonLine(json) : printable(human.endsWith('\n') ? human : `${human}\n`))
  }

  const program = new Command()
  program
    .name('tally')
    .description('The Tally wallet: keys, signing, transfers and look-ups over JSON-RPC.')
    .option('--rpc <urls>', 'RPC endpoints, comma-separated, tried in order (default: $TALLY_RPC or http://127.0.0.1:8545)')
    .option('--json', 'machine-readable output')
    .option('--no-verify', 'show answers without checking their proofs and commit certificates')
    .option('--genesis <file>', 'the trusted genesis to verify answers from (default: $TALLY_GENESIS)')
    .option('--trust-height <h>', 'verify from the block at this height instead of a genesis (with --trust-hash)')
    .option('--trust-hash <hash>', 'the hash of the block at --trust-height, from a source you trust')
    .option('--light-dir <dir>', 'where the light client keeps its trusted headers (default: $TALLY_LIGHT_DIR or ~/.tally/light)')
    .option('--trusting-period <duration>', 'how old a trusted header may be to verify from, e.g. 14d or 336h (default 14d)')
    .option(
      '--witness-timeout <ms>',
      'time each other endpoint has to check a header of the answer, 100 to 20000 ms (default: $TALLY_WITNESS_TIMEOUT or 10000)',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`${s.split('\n')[0]}\n`),
    })
    .showSuggestionAfterError(false)
    .allowExcessArguments(false)

  const globals = (cmd: Command): GlobalOptions => {
    const g = cmd.optsWithGlobals<GlobalOptions>()
    jsonMode = g.json === true
    return g
  }
  const client = (g: GlobalOptions) => new RpcClient({ endpoints: parseEndpoints(g.rpc, io.env), timeoutMs: io.rpcTimeoutMs ?? 5000, retries: 1 })
  const warn = (message: string, fields: Record<string, unknown> = {}) => {
    io.stderr.write(jsonMode ? jsonLine({ warning: { message, ...fields } }) : `warning: ${printable(message.replace(/\s*\n\s*/g, ' '))}\n`)
  }
  const verifier = (g: GlobalOptions): Promise<Verifier> =>
    openVerifier(g, parseEndpoints(g.rpc, io.env), { env: io.env, warn, now: io.now ?? Date.now, rpcTimeoutMs: io.rpcTimeoutMs ?? 5000 })
  /** Prints a verified result: the fields on stdout, and `verified at height H` on stderr (stdout keeps its form). */
  const printVerified = (human: string, json: Record<string, unknown>, v: Verified) => {
    print(human, { ...json, verifiedHeight: v.verifiedHeight, blockHash: v.blockHash })
    if (!jsonMode) io.stderr.write(`verified at height ${v.verifiedHeight} (block ${v.blockHash})\n`)
  }

  program
    .command('keygen')
    .description('create a new key file (encrypted with TALLY_PASSWORD or a prompted password) and print its address')
    .requiredOption('--out <file>', 'where to write the key file (must not exist)')
    .option('--insecure-plaintext', 'write an unencrypted dev key')
    .action(async (opts: { out: string; insecurePlaintext?: boolean }, cmd: Command) => {
      globals(cmd)
      const info = await createKey(opts.out, { plaintext: opts.insecurePlaintext === true, ...(io.scrypt ? { scrypt: io.scrypt } : {}) }, passwords)
      const address = formatAddress(info.address)
      print(`${address}\n`, { address, publicKey: to0x(info.publicKey), file: opts.out, encrypted: info.encrypted })
    })

  program
    .command('address')
    .description('print the address of a key file')
    .requiredOption('--key <file>', 'key file')
    .action(async (opts: { key: string }, cmd: Command) => {
      globals(cmd)
      const info = await loadKeyInfo(opts.key)
      const address = formatAddress(info.address)
      print(address, { address, publicKey: to0x(info.publicKey), encrypted: info.encrypted })
    })

  program
    .command('balance')
    .description('print the balance of an address')
    .argument('<address>')
    .action(async (addressText: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const address = formatAddress(parseAddressArg(addressText))
      if (!g.verify) {
        const balance = await client(g).getBalance(address)
        print(balance.toString(), { address, balance: balance.toString() })
        return
      }
      const b = await (await verifier(g)).rpc.balance(address)
      printVerified(b.balance.toString(), { address, balance: b.balance.toString() }, b)
    })

  program
    .command('account')
    .description('print the balance and next nonce of an address')
    .argument('<address>')
    .action(async (addressText: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const address = formatAddress(parseAddressArg(addressText))
      const human = (a: { address: string; balance: bigint; nonce: bigint }) => `address  ${a.address}\nbalance  ${a.balance}\nnonce    ${a.nonce}`
      if (!g.verify) {
        const a = await client(g).getAccount(address)
        print(human(a), { address: a.address, balance: a.balance.toString(), nonce: a.nonce.toString() })
        return
      }
      const a = await (await verifier(g)).rpc.account(address)
      printVerified(human(a), { address: a.address, balance: a.balance.toString(), nonce: a.nonce.toString() }, a)
    })

  program
    .command('transfer')
    .description('sign a transfer with the next nonce, submit it, and wait until it is committed')
    .requiredOption('--key <file>', 'sender key file')
    .requiredOption('--to <address>', 'recipient address')
    .requiredOption('--amount <n>', 'amount: a positive integer below 2^64')
    .option('--no-wait', 'return once the node has admitted the transfer to its mempool')
    .action(async (opts: { key: string; to: string; amount: string; wait: boolean }, cmd: Command) => {
      const g = globals(cmd)
      const to = parseAddressArg(opts.to, 'recipient address')
      const amount = parseAmountArg(opts.amount)
      const key = await loadKey(opts.key, passwords)
      const rpc = client(g)
      // verifying, the chain id is the trusted one (and a missing trusted starting point fails before anything is sent)
      const v = g.verify && opts.wait ? await verifier(g) : undefined
      const chainId = v?.chainId ?? (await rpc.status()).chainId
      const nonce = await rpc.getNextNonce(formatAddress(key.address))
      const tx = createTransfer(key.secretKey, { chainId, to, amount, nonce })
      const hash = to0x(tx.hash)
      try {
        await rpc.submitTx(to0x(tx.bytes))
      } catch (e) {
        // Admitted already (e.g. a retry after a lost answer): the same bytes, so the same transfer.
        if (!(e instanceof RpcError && e.reason === 'duplicate')) throw e
      }
      if (!opts.wait) {
        print(`hash    ${hash}\nnonce   ${nonce}\nstatus  pending`, { hash, nonce: nonce.toString(), status: 'pending' })
        return
      }
      const wait = { timeoutMs: io.waitTimeoutMs ?? 120_000, pollMs: 500 }
      if (v !== undefined) {
        const done = await v.rpc.waitForTx(hash, wait)
        printVerified(
          `hash    ${hash}\nheight  ${done.height}`,
          { hash, nonce: nonce.toString(), status: 'committed', height: done.height, index: done.index },
          done,
        )
        return
      }
      const done = await rpc.waitForTx(hash, wait)
      if (done.ok === false) {
        throw new CliError(`transaction ${hash} was committed at height ${done.height} but failed: ${done.error ?? 'unknown error'}`, done.error)
      }
      print(`hash    ${hash}\nheight  ${done.height}`, { hash, nonce: nonce.toString(), status: 'committed', height: done.height, index: done.index })
    })

  program
    .command('sign')
    .description('sign a transfer offline and print it as hex (no network)')
    .requiredOption('--key <file>', 'sender key file')
    .requiredOption('--to <address>', 'recipient address')
    .requiredOption('--amount <n>', 'amount: a positive integer below 2^64')
    .requiredOption('--nonce <k>', 'the sender account nonce to use')
    .requiredOption('--chain-id <id>', 'the chain id of the network')
    .action(async (opts: { key: string; to: string; amount: string; nonce: string; chainId: string }, cmd: Command) => {
      globals(cmd)
      const to = parseAddressArg(opts.to, 'recipient address')
      const amount = parseAmountArg(opts.amount)
      const nonce = parseNonceArg(opts.nonce)
      const chainId = parseChainIdArg(opts.chainId)
      const key = await loadKey(opts.key, passwords)
      const tx = createTransfer(key.secretKey, { chainId, to, amount, nonce })
      print(to0x(tx.bytes), { tx: to0x(tx.bytes), hash: to0x(tx.hash) })
    })

  program
    .command('send')
    .description('submit a signed transaction (hex)')
    .argument('<hex>')
    .action(async (hexText: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const hash = await client(g).submitTx(parseTxHexArg(hexText))
      print(hash, { hash })
    })

  program
    .command('tx')
    .description('look up a transaction by hash')
    .argument('<hash>')
    .action(async (hashText: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const hash = parseHashArg(hashText)
      if (!g.verify) {
        const t = await client(g).getTx(hash)
        print(formatTxHuman(t), t)
        return
      }
      const t = await (await verifier(g)).rpc.tx(hash)
      if (t.status === 'committed') {
        const { verifiedHeight: _h, blockHash: _b, ...plain } = t
        printVerified(formatTxHuman(plain), plain, t)
        return
      }
      print(formatTxHuman(t), t)
      if (!jsonMode) io.stderr.write(`not verified: no endpoint proved it committed, and only a committed transaction comes with a proof\n`)
    })

  program
    .command('block')
    .description('show a block (the latest without HEIGHT)')
    .argument('[height]')
    .action(async (heightText: string | undefined, _opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const height = heightText === undefined ? undefined : parseHeightArg(heightText)
      const notFound = () => new CliError(height === undefined ? 'no block yet' : `no block at height ${height}`, 'not_found')
      if (!g.verify) {
        const b = await client(g).getBlock(height)
        if (b === null) throw notFound()
        print(formatBlockHuman(b), b)
        return
      }
      const b = await (await verifier(g)).rpc.block(height)
      if (b === undefined) throw notFound()
      const { verifiedHeight: _h, blockHash: _b, ...plain } = b
      printVerified(formatBlockHuman(plain), plain, b)
    })

  program
    .command('status')
    .description('show the node status')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd)
      const s = await client(g).status()
      const lines = Object.entries(s).map(([k, v]) => `${k.padEnd(11)}${v === null ? '-' : String(v)}`)
      print(lines.join('\n'), s)
    })

  try {
    if (argv.length === 0) {
      program.outputHelp()
      return 1
    }
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : e.exitCode || 1
    }
    const { message, reason, code, fork } = describeError(e)
    if (jsonMode) {
      const error = { message, ...(reason === undefined ? {} : { reason }), ...(code === undefined ? {} : { code }), ...(fork === undefined ? {} : { fork }) }
      io.stderr.write(jsonLine({ error }))
    } else io.stderr.write(`error: ${printable(message.replace(/\s*\n\s*/g, ' '))}\n`)
    return 1
  }
}

/**
 * Text for the terminal: control characters but the newline and the tab become U+FFFD. Endpoints' words reach the
 * human output (a transaction's error, an error message), and escape sequences in them could redraw the screen.
 */
function printable(text: string): string {
  let out = ''
  for (const ch of text) out += isControl(ch) && ch !== '\n' && ch !== '\t' ? '\ufffd' : ch
  return out
}

/**
 * A value as one line of JSON for the terminal: `JSON.stringify` escapes C0 controls but leaves DEL and the C1 ones
 * (U+009B is a CSI, which a terminal acts on) as they are; those are written as `\u` escapes too, the same JSON.
 */
function jsonLine(value: unknown): string {
  return `${JSON.stringify(value).replace(/[\u007f-\u009f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`
}

function describeError(e: unknown): { message: string; reason?: string; code?: number; fork?: object } {
  if (e instanceof CliError) return { message: e.message, ...(e.reason === undefined ? {} : { reason: e.reason }) }
  if (e instanceof RpcUnreachableError) return { message: e.message, reason: 'unreachable' }
  if (e instanceof NoVerifiedAnswerError) return { message: e.message, reason: 'unverified' }
  if (e instanceof TrustError) return { message: trustAdvice(e), reason: e.code }
  if (e instanceof ConflictingHeadersError) {
    const fork = {
      height: e.height,
      endpoints: [
        { endpoint: e.primary, blockHash: e.primaryHash },
        { endpoint: e.witness, blockHash: e.witnessHash },
      ],
      trustedHeight: e.trustedHeight,
      ...(e.accountability === undefined ? {} : e.accountability),
    }
    return { message: e.message, reason: e.code, fork }
  }
  if (e instanceof RpcError) {
    return {
      message: e.reason === undefined ? `${e.message} (code ${e.code})` : e.message,
      ...(e.reason === undefined ? {} : { reason: e.reason }),
      code: e.code,
    }
  }
  const err = e as Error
  return { message: err?.message ?? String(e) }
}

function formatTxHuman(t: TxView): string {
  const lines = [`hash    ${t.hash}`, `status  ${t.status}`]
  if (t.status === 'committed') {
    lines.push(`height  ${t.height}`, `index   ${t.index}`, `result  ${t.ok ? 'ok' : `failed: ${t.error ?? 'unknown'}`}`)
  }
  if (t.status === 'rejected') lines.push(`error   ${t.error ?? 'unknown'}`, ...(t.reason ? [`reason  ${t.reason}`] : []))
  return lines.join('\n')
}

function formatBlockHuman(b: Record<string, unknown>): string {
  const header = (b.header ?? {}) as Record<string, unknown>
  const txs = (b.txs ?? []) as {
    hash?: string
    kind?: string
    from?: string
    to?: string
    amount?: string
    nonce?: string
    ok?: boolean
    error?: string
    action?: Record<string, unknown>
  }[]
  const fields: [string, string][] = [
    ['height', String(b.height)],
    ['hash', String(b.hash)],
  ]
  for (const [k, v] of Object.entries(header)) {
    if (k !== 'height' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) fields.push([k, String(v)])
  }
  fields.push(['txs', String(txs.length)])
  const width = Math.max(...fields.map(([k]) => k.length)) + 2
  const lines = fields.map(([k, v]) => k.padEnd(width) + v)
  for (const t of txs) {
    const outcome = t.ok === undefined ? '' : t.ok ? '  ok' : `  failed: ${t.error ?? ''}`
    if (t.kind === 'governance') {
      // a validator's vote for a set change: what it votes for, in the action's own words
      const a = t.action ?? {}
      const what =
        a.type === 'add'
          ? `add ${String(a.name)} ${String(a.address)} power ${String(a.power)}`
          : a.type === 'remove'
            ? `remove ${String(a.address)}`
            : a.type === 'power'
              ? `set power of ${String(a.address)} to ${String(a.power)}`
              : 'unknown action'
      lines.push(`  ${t.hash ?? '?'}  ${t.from ?? '?'} votes: ${what} (nonce ${t.nonce ?? '?'})${outcome}`)
      continue
    }
    lines.push(`  ${t.hash ?? '?'}  ${t.from ?? '?'} -> ${t.to ?? '?'}  ${t.amount ?? '?'} (nonce ${t.nonce ?? '?'})${outcome}`)
  }
  return lines.join('\n')
}

/** The executable's entry: runs with the process's arguments and I/O and sets the exit code. */
export async function main(): Promise<void> {
  const code = await runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr })
  process.exitCode = code
}
