import { Command } from 'commander'
import { keyPairFromSeed } from '../crypto/index.js'
import { silentLogger } from '../node/logger.js'
import { DirectStreams } from '../node/p2p/directStreams.js'
import { P2p } from '../node/p2p/p2p.js'
import { peerIdOf } from '../node/p2p/peerId.js'

/**
 * `node dist/bench/p2pMessages.js`: the CPU one message costs between two validators' p2p layers (libp2p over TCP,
 * Noise and Yamux, then {@link DirectStreams}), sender and receiver together, in one process on loopback.
 *
 * Messages go one per event-loop turn, as a validator's votes and small transaction batches do, so each is framed,
 * encrypted and written on its own; `--burst` queues them all at once instead (what coalescing can reach). The
 * process's CPU time (user and system) over the run, divided by the messages, is the figure; run it on a quiet
 * machine, as any CPU measurement.
 */
const program = new Command()
  .name('p2p-messages')
  .option('--messages <n>', 'messages to send', '20000')
  .option('--bytes <n>', 'size of each message', '200')
  .option('--burst', 'queue every message at once instead of one per turn')
  .option('--rounds <n>', 'measured rounds (after one unmeasured warm-up round)', '3')
  .parse()
const opts = program.opts<{ messages: string; bytes: string; burst?: boolean; rounds: string }>()
const messages = Number(opts.messages)
const size = Number(opts.bytes)
const rounds = Number(opts.rounds)
// a burst is queued whole, and a peer's outbound queue holds 16 MiB (DirectStreams drops beyond it)
if (opts.burst === true && messages * (size + 5) > 16 * 1024 * 1024) {
  console.error('p2p-messages: a burst must fit the 16 MiB outbound queue (--messages × --bytes)')
  process.exit(2)
}

const PROTOCOL = '/tally/bench-messages/1'

async function main(): Promise<void> {
  const seeds = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)]
  const allow = seeds.map((s) => peerIdOf(keyPairFromSeed(s).publicKey))
  const nodes = seeds.map((seed) => new P2p({ seed, listen: ['/ip4/127.0.0.1/tcp/0'], allow }, { logger: silentLogger() }))
  await Promise.all(nodes.map((n) => n.start()))
  const [a, b] = nodes as [P2p, P2p]
  b.addStaticPeer({ peerId: allow[0]!, multiaddr: a.addresses()[0]! })
  while (a.peerCount < 1 || b.peerCount < 1) await new Promise((r) => setTimeout(r, 10))
  const sender = new DirectStreams(a, silentLogger())
  const receiver = new DirectStreams(b, silentLogger())
  let received = 0
  let onAll: (() => void) | undefined
  await receiver.subscribe(PROTOCOL, async (): Promise<'accept'> => {
    if (++received === messages) onAll?.()
    return 'accept'
  })
  const payload = new Uint8Array(size).fill(7)

  const round = async (): Promise<{ cpuUs: number; wallMs: number }> => {
    received = 0
    const done = new Promise<void>((r) => {
      onAll = r
    })
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    if (opts.burst === true) {
      for (let i = 0; i < messages; i++) sender.sendTo(allow[1]!, PROTOCOL, payload)
    } else {
      for (let i = 0; i < messages; i++) {
        sender.sendTo(allow[1]!, PROTOCOL, payload)
        await new Promise<void>((r) => setImmediate(r))
      }
    }
    await done
    const cpu = process.cpuUsage(cpu0)
    return { cpuUs: cpu.user + cpu.system, wallMs: performance.now() - t0 }
  }

  await round()
  const results: { cpuUsPerMessage: number; systemShare: number; wallMs: number }[] = []
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage()
    const { cpuUs, wallMs } = await round()
    const sys = process.cpuUsage(cpu0).system
    results.push({ cpuUsPerMessage: cpuUs / messages, systemShare: sys / cpuUs, wallMs })
    console.log(
      `${messages} messages of ${size} B${opts.burst === true ? ' (burst)' : ''}: ${(cpuUs / messages).toFixed(1)} µs CPU each, ` +
        `${((100 * sys) / cpuUs).toFixed(0)}% system, ${wallMs.toFixed(0)} ms`,
    )
  }
  sender.stop()
  receiver.stop()
  await Promise.all(nodes.map((n) => n.stop()))
  console.log(JSON.stringify({ messages, bytes: size, burst: opts.burst === true, results }))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
