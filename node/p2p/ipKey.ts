import { isIPv4, isIPv6 } from 'node:net'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * The key per-address limits count under: an IPv4 address as written (`203.0.113.7`), an IPv4-mapped IPv6 address
 * as its IPv4 address, and any other IPv6 address as its /64 prefix (`2001:db8:0:1::/64`), because one host
 * commonly holds a whole /64 and could otherwise take a fresh address per connection. Undefined for anything
 * else (DNS names, malformed text).
 */
export function ipKey(ip: string): string | undefined {
  const bare = ip.replace(/%.*$/, '')
  if (isIPv4(bare)) return bare
  if (!isIPv6(bare)) return undefined
  const groups = ipv6Groups(bare)
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.')
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`
}

/** The {@link ipKey} of a multiaddr's `/ip4` or `/ip6` component; undefined when it has none (e.g. `/dns4/...`). */
export function ipKeyOfMultiaddr(addr: Multiaddr): string | undefined {
  const c = addr.getComponents().find((x) => x.name === 'ip4' || x.name === 'ip6')
  return c?.value === undefined ? undefined : ipKey(c.value)
}

/** The eight 16-bit groups of a valid IPv6 address (a dotted IPv4 tail becomes two groups, `::` is expanded). */
function ipv6Groups(ip: string): number[] {
  const text = ip.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_, a: string, b: string, c: string, d: string) => `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  )
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)))
  const gap = text.indexOf('::')
  if (gap < 0) return parse(text)
  const left = parse(text.slice(0, gap))
  const right = parse(text.slice(gap + 2))
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}
