/**
 * Runtime polyfills the node's libraries need on Node 20. libp2p 3 calls `Promise.withResolvers`
 * (Node 22+), so this module must be imported before anything that loads libp2p: `node/p2p.ts` imports it first.
 */

interface Resolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>(): Resolvers<T> {
    let resolve!: (value: T | PromiseLike<T>) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}

/** True once the polyfills are installed (importing this module installs them). */
export const polyfillsInstalled = true
