import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressFromPublicKey, formatAddress, parseAddress } from '../../../crypto/address.js'
import { fromHex, toHex } from '../../../crypto/bytes.js'
import { sha256 } from '../../../crypto/hash.js'
import { keyPairFromSeed } from '../../../crypto/ed25519.js'
import { loadFixture } from '../../helpers/fixtures.js'

interface Golden {
  addresses: { seed: string; publicKey: string; address: string }[]
}

test('address derivation matches the golden vectors', () => {
  const g = loadFixture<Golden>('golden/crypto.json')
  for (const a of g.addresses) {
    const kp = keyPairFromSeed(fromHex(a.seed)!)
    assert.equal(toHex(kp.publicKey), a.publicKey)
    assert.equal(formatAddress(addressFromPublicKey(kp.publicKey)), a.address)
  }
})

test('SHA-256 of the empty string', () => {
  assert.equal(toHex(sha256()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
})

test('addresses parse in any case and format in lowercase; anything else is refused', () => {
  const a = `0x${'aB'.repeat(20)}`
  assert.equal(formatAddress(parseAddress(a)!), a.toLowerCase())
  assert.equal(formatAddress(parseAddress(a.toUpperCase().replace('0X', '0X'))!), a.toLowerCase())
  for (const bad of ['', '0x', 'ab'.repeat(21), `0x${'ab'.repeat(19)}`, `0x${'zz'.repeat(20)}`, `0x${'ab'.repeat(21)}`, 1 as unknown as string]) {
    assert.equal(parseAddress(bad), undefined, String(bad))
  }
})
