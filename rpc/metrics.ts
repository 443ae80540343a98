import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * Why the RPC server refused a connection, a request body or message, or an answer before any call of it ran or
 * reached its client (`rpc_refused_total`'s label `reason`): past `maxConnections` (closed unanswered), past
 * `maxConnectionsPerAddress` (503), past `wsMaxConnections` (503), a body past `maxBodyBytes` (413) or a WebSocket
 * message past `wsMaxMessageBytes` (closed 1009), a WebSocket with too many requests waiting (closed 1008), and the
 * byte budgets of bodies and answers, whole (`node`) or the client address's share (`share`), as `busy` says them.
 */
export const RPC_REFUSALS = [
  'connections',
  'address_connections',
  'ws_connections',
  'ws_queue',
  'body_too_large',
  'bodies_node',
  'bodies_share',
  'answers_node',
  'answers_share',
] as const
export type RpcRefusal = (typeof RPC_REFUSALS)[number]

/**
 * The node's Prometheus metrics, on a registry of their own (never prom-client's global one, so several nodes
 * in one process — tests, simulations — keep separate numbers). The node updates the consensus, ledger,
 * mempool and peer metrics; the RPC server updates `rpcRequests` itself. `GET /metrics` serves `registry`.
 */
export class Metrics {
  /** The registry every metric below is registered on. */
  readonly registry: Registry
  /** Height of the latest committed block. */
  readonly height: Gauge
  /** Current consensus round at the current height. */
  readonly round: Gauge
  /** Seconds spent in each consensus step (label `step`: propose, prevote, precommit, commit). */
  readonly consensusStepDuration: Histogram<'step'>
  /** Transactions committed in blocks (label `outcome`: ok or failed). */
  readonly txsCommitted: Counter<'outcome'>
  /** Seconds to execute a block through the state machine. */
  readonly blockExecutionDuration: Histogram
  /** Transactions in the mempool. */
  readonly mempoolSize: Gauge
  /** Wire bytes of the transactions in the mempool. */
  readonly mempoolBytes: Gauge
  /** Connected peers. */
  readonly peers: Gauge
  /**
   * JSON-RPC calls by method and outcome (`ok`, `error`, `invalid`, `timeout`), HTTP and WebSocket. The server
   * counts through {@link countRpcCall}; the counter takes those counts whenever it is read.
   */
  readonly rpcRequests: Counter<'method' | 'outcome'>
  /** Connections, request bodies or messages and answers the RPC server refused ({@link RPC_REFUSALS}). */
  readonly rpcRefused: Counter<'reason'>
  /** Open WebSocket connections. */
  readonly wsConnections: Gauge
  /** Transaction gossip batches this node sent (one published to every peer counts once), and their transactions. */
  readonly txBatchesSent: Counter
  readonly txsGossiped: Counter
  /** Counts of the transaction gossip, read when the counters are read ({@link trackTxGossip}). */
  private txGossip: { readonly stats: { readonly batchesSent: number; readonly txsSent: number } } | undefined
  private txGossipSeen = { batches: 0, txs: 0 }
  /**
   * RPC calls counted since the counter was last read, by method, then outcome. A call is counted with two map
   * look-ups and an addition instead of prom-client's per-increment label hashing and validation: the RPC server
   * counts every call, so this runs per transaction submitted.
   */
  private readonly rpcTally = new Map<string, Map<string, { readonly labels: { method: string; outcome: string }; n: number }>>()

  /**
   * @param options.prefix metric name prefix (default `tally_`)
   * @param options.defaultMetrics also collect process metrics (CPU, memory, event loop) on this registry
   */
  constructor(options: { prefix?: string; defaultMetrics?: boolean } = {}) {
    const prefix = options.prefix ?? 'tally_'
    this.registry = new Registry()
    const registers = [this.registry]
    this.height = new Gauge({ name: `${prefix}height`, help: 'Height of the latest committed block', registers })
    this.round = new Gauge({ name: `${prefix}round`, help: 'Current consensus round', registers })
    this.consensusStepDuration = new Histogram({
      name: `${prefix}consensus_step_duration_seconds`,
      help: 'Time spent in each consensus step',
      labelNames: ['step'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.txsCommitted = new Counter({
      name: `${prefix}txs_committed_total`,
      help: 'Transactions committed in blocks',
      labelNames: ['outcome'],
      registers,
    })
    this.blockExecutionDuration = new Histogram({
      name: `${prefix}block_execution_duration_seconds`,
      help: 'Time to execute a block through the state machine',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    })
    this.mempoolSize = new Gauge({ name: `${prefix}mempool_size`, help: 'Transactions in the mempool', registers })
    this.mempoolBytes = new Gauge({ name: `${prefix}mempool_bytes`, help: 'Wire bytes of the mempool transactions', registers })
    this.peers = new Gauge({ name: `${prefix}peers`, help: 'Connected peers', registers })
    this.rpcRequests = new Counter({
      name: `${prefix}rpc_requests_total`,
      help: 'JSON-RPC calls by method and outcome',
      labelNames: ['method', 'outcome'],
      registers,
      collect: () => this.flushRpcTally(),
    })
    this.rpcRefused = new Counter({
      name: `${prefix}rpc_refused_total`,
      help: 'RPC connections, request bodies and answers refused before a call ran or reached its client, by reason',
      labelNames: ['reason'],
      registers,
    })
    this.wsConnections = new Gauge({ name: `${prefix}rpc_ws_connections`, help: 'Open WebSocket connections', registers })
    this.txBatchesSent = new Counter({
      name: `${prefix}tx_gossip_batches_sent_total`,
      help: 'Transaction gossip batches this node sent to its peers',
      registers,
      collect: () => this.readTxGossip(),
    })
    this.txsGossiped = new Counter({
      name: `${prefix}tx_gossip_txs_sent_total`,
      help: 'Transactions in the gossip batches this node sent',
      registers,
      collect: () => this.readTxGossip(),
    })
    if (options.defaultMetrics === true) collectDefaultMetrics({ register: this.registry, prefix })
  }

  /**
   * Counts one JSON-RPC call in `rpc_requests_total`. `method` must come from a bounded set (the method table's
   * names, or a fixed word for calls that name none), as every label value does.
   */
  countRpcCall(method: string, outcome: string): void {
    let byOutcome = this.rpcTally.get(method)
    if (byOutcome === undefined) {
      byOutcome = new Map()
      this.rpcTally.set(method, byOutcome)
    }
    const entry = byOutcome.get(outcome)
    if (entry === undefined) byOutcome.set(outcome, { labels: { method, outcome }, n: 1 })
    else entry.n++
  }

  /** Counts one refusal of the RPC server in `rpc_refused_total`. */
  countRpcRefusal(reason: RpcRefusal): void {
    this.rpcRefused.inc({ reason })
  }

  /** Reports a transaction gossip's counts in {@link txBatchesSent} and {@link txsGossiped} whenever they are read. */
  trackTxGossip(gossip: { readonly stats: { readonly batchesSent: number; readonly txsSent: number } }): void {
    this.txGossip = gossip
  }

  private readTxGossip(): void {
    const stats = this.txGossip?.stats
    if (stats === undefined) return
    if (stats.batchesSent > this.txGossipSeen.batches) this.txBatchesSent.inc(stats.batchesSent - this.txGossipSeen.batches)
    if (stats.txsSent > this.txGossipSeen.txs) this.txsGossiped.inc(stats.txsSent - this.txGossipSeen.txs)
    this.txGossipSeen = { batches: stats.batchesSent, txs: stats.txsSent }
  }

  /** Moves the counts of {@link countRpcCall} into the counter (run by prom-client before the counter is read). */
  private flushRpcTally(): void {
    for (const byOutcome of this.rpcTally.values()) {
      for (const entry of byOutcome.values()) {
        if (entry.n === 0) continue
        this.rpcRequests.inc(entry.labels, entry.n)
        entry.n = 0
      }
    }
  }
}
