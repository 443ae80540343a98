import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Json = Record<string, unknown>

/**
 * A JSON-RPC endpoint in front of `target` for tests: each request (a batch's one by one) is answered by `answer`,
 * which may pass it on to `target` with `passOn`. An answer whose client left is not written.
 */
export async function jsonRpcRelay(
  target: string,
  answer: (request: Json, passOn: (request: Json) => Promise<Json>) => Promise<Json>,
): Promise<{ url: string; server: Server }> {
  const passOn = async (request: Json): Promise<Json> => {
    const r = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) })
    return (await r.json()) as Json
  }
  const one = (request: Json) => answer(request, passOn)
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json | Json[]
      const out = Array.isArray(body) ? await Promise.all(body.map(one)) : await one(body)
      if (res.destroyed) return
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(out))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}
