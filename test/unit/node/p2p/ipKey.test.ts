import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { ipKey, ipKeyOfMultiaddr } from '../../../../node/p2p/ipKey.js'

describe('ipKey', () => {
  const rows: { desc: string; ip: string; key: string | undefined }[] = [
    { desc: 'IPv4 as written', ip: '203.0.113.7', key: '203.0.113.7' },
    { desc: 'IPv4-mapped IPv6 as IPv4', ip: '::ffff:127.0.0.2', key: '127.0.0.2' },
    { desc: 'IPv4-mapped IPv6 in hex as IPv4', ip: '::ffff:7f00:2', key: '127.0.0.2' },
    { desc: 'IPv6 as its /64', ip: '2001:db8:0:1:aaaa:bbbb:cccc:dddd', key: '2001:db8:0:1::/64' },
    { desc: 'another address of the same /64', ip: '2001:db8:0:1::5', key: '2001:db8:0:1::/64' },
    { desc: 'compressed IPv6', ip: '2001:db8::1', key: '2001:db8:0:0::/64' },
    { desc: 'IPv6 loopback', ip: '::1', key: '0:0:0:0::/64' },
    { desc: 'zone id dropped', ip: 'fe80::1%eth0', key: 'fe80:0:0:0::/64' },
    { desc: 'a name is no address', ip: 'example.com', key: undefined },
    { desc: 'malformed', ip: '1.2.3.400', key: undefined },
  ]
  for (const r of rows) it(r.desc, () => assert.equal(ipKey(r.ip), r.key))

  it('reads the address component of a multiaddr', () => {
    assert.equal(ipKeyOfMultiaddr(multiaddr('/ip4/127.0.0.2/tcp/4001')), '127.0.0.2')
    assert.equal(ipKeyOfMultiaddr(multiaddr('/ip6/2001:db8::1/tcp/4001')), '2001:db8:0:0::/64')
    assert.equal(ipKeyOfMultiaddr(multiaddr('/dns4/example.com/tcp/4001')), undefined)
  })
})
