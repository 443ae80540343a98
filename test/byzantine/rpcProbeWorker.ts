import { parentPort, workerData } from 'node:worker_threads'

/** The worker side of {@link RpcProbe}: polls `node_status` on each URL until told to stop, then reports. */

const { urls, intervalMs, deadlineMs } = workerData as { urls: string[]; intervalMs: number; deadlineMs: number }
const stats = urls.map((url) => ({ url, samples: 0, maxMs: 0, failures: 0 }))
let stopped = false

async function probe(i: number): Promise<void> {
  const s = stats[i]!
  const t0 = performance.now()
  let ms: number
  try {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_status', params: [] }),
      signal: AbortSignal.timeout(deadlineMs),
    })
    await res.json()
    ms = performance.now() - t0
    if (!res.ok) s.failures++
  } catch {
    ms = deadlineMs
    s.failures++
  }
  s.samples++
  s.maxMs = Math.max(s.maxMs, Math.round(ms))
}

const loops = urls.map(async (_, i) => {
  while (!stopped) {
    const t0 = performance.now()
    await probe(i)
    const rest = intervalMs - (performance.now() - t0)
    if (rest > 0 && !stopped) await new Promise((r) => setTimeout(r, rest))
  }
})

parentPort!.once('message', () => {
  stopped = true
  void Promise.all(loops).then(() => parentPort!.postMessage(stats))
})
