import { request, type Agent } from 'node:http'

/**
 * POSTs `body` as JSON over `agent` (a keep-alive pool) and resolves with the parsed answer: the lean client the
 * benchmarks stand in for clients with (Node's own HTTP client, no per-request set-up). With `timeoutMs`, a request
 * that gets no answer in that time fails.
 */
export function postJson(url: string, body: unknown, agent: Agent, timeoutMs?: number): Promise<any> {
  const payload = JSON.stringify(body)
  return new Promise((resolvePost, rejectPost) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          try {
            resolvePost(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch (e) {
            rejectPost(e as Error)
          }
        })
        res.on('error', rejectPost)
      },
    )
    if (timeoutMs !== undefined) req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', rejectPost)
    req.end(payload)
  })
}
