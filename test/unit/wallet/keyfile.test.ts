import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../../../crypto/bytes.js'
import { decodeKeyFile, decodeKeyFileInfo, encodeKeyFile } from '../../../crypto/keyfile.js'

const seed = new Uint8Array(32).map((_, i) => i + 1)
const salt = new Uint8Array(16).map((_, i) => 0xa0 + i)
const iv = new Uint8Array(12).map((_, i) => 0x10 + i)
const fast = { n: 1024, r: 8, p: 1 }

// Golden vector, cross-checked with an independent implementation (Python hashlib.scrypt + AESGCM).
const GOLDEN_ENCRYPTED = {
  type: 'tally-key',
  version: 1,
  address: '0x65b60673d6ed884bf01c2c222d82ada0740f29ac',
  publicKey: '0x79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664',
  crypto: {
    kdf: 'scrypt',
    kdfparams: { n: 1024, r: 8, p: 1, dklen: 32, salt: '0xa0a1a2a3a4a5a6a7a8a9aaabacadaeaf' },
    cipher: 'aes-256-gcm',
    iv: '0x101112131415161718191a1b',
    ciphertext: '0x6c5b0e3576afa45239aae8039cf0d4254303eed10fb7056d9368c66badeb687f',
    tag: '0x42d84c6c8bcbdd0c9cab804b14fdf7c5',
  },
}

test('encrypted key file matches the golden vector and decodes', () => {
  const text = encodeKeyFile(seed, { password: 'correct horse', salt, iv, scrypt: fast })
  assert.deepEqual(JSON.parse(text), GOLDEN_ENCRYPTED)
  const d = decodeKeyFile(JSON.stringify(GOLDEN_ENCRYPTED), 'correct horse')
  assert.ok(d.ok)
  assert.equal(toHex(d.value.secretKey), toHex(seed))
  assert.equal(`0x${toHex(d.value.address)}`, GOLDEN_ENCRYPTED.address)
  assert.equal(d.value.encrypted, true)
})

test('plaintext key file round-trips', () => {
  const text = encodeKeyFile(seed)
  assert.deepEqual(JSON.parse(text), {
    type: 'tally-key',
    version: 1,
    address: GOLDEN_ENCRYPTED.address,
    publicKey: GOLDEN_ENCRYPTED.publicKey,
    secretKey: '0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
  })
  const d = decodeKeyFile(text)
  assert.ok(d.ok)
  assert.equal(d.value.encrypted, false)
  assert.equal(toHex(d.value.secretKey), toHex(seed))
})

test('typed errors: wrong password, password required, malformed', () => {
  const enc = JSON.stringify(GOLDEN_ENCRYPTED)
  const code = (r: ReturnType<typeof decodeKeyFile>) => (r.ok ? 'ok' : r.error.code)
  assert.equal(code(decodeKeyFile(enc, 'wrong')), 'wrong_password')
  assert.equal(code(decodeKeyFile(enc)), 'password_required')
  const info = decodeKeyFileInfo(enc)
  assert.ok(info.ok && info.value.encrypted)
  const tamper = (f: (j: any) => void) => {
    const j = structuredClone(GOLDEN_ENCRYPTED) as any
    f(j)
    return JSON.stringify(j)
  }
  const malformed = [
    'not json',
    '[]',
    '{}',
    'x'.repeat(10_000),
    tamper((j) => {
      j.type = 'other'
    }),
    tamper((j) => {
      j.version = 2
    }),
    tamper((j) => {
      j.address = `0x${'00'.repeat(20)}`
    }),
    tamper((j) => {
      j.publicKey = '0x1234'
    }),
    tamper((j) => {
      j.crypto.kdf = 'pbkdf2'
    }),
    tamper((j) => {
      j.crypto.kdfparams.n = 1000
    }),
    tamper((j) => {
      j.crypto.kdfparams.n = 2 ** 30
    }), // would need 1 TiB: refused before any work
    tamper((j) => {
      j.crypto.kdfparams.r = 1e9
    }),
    tamper((j) => {
      j.crypto.kdfparams.p = 1000
    }),
    tamper((j) => {
      j.crypto.kdfparams.dklen = 64
    }),
    tamper((j) => {
      j.crypto.kdfparams.salt = '0x00'
    }),
    tamper((j) => {
      j.crypto.iv = '0x00'
    }),
    tamper((j) => {
      j.crypto.tag = 'zz'
    }),
    tamper((j) => {
      j.secretKey = `0x${'11'.repeat(32)}`
    }),
  ]
  for (const m of malformed) {
    const r = decodeKeyFile(m, 'correct horse')
    assert.equal(code(r), 'malformed', m.slice(0, 200))
    assert.ok(!r.ok && r.error.reason.length > 0)
  }
  // A plaintext file whose secret key belongs to another public key.
  const plain = JSON.parse(encodeKeyFile(seed))
  plain.secretKey = `0x${'11'.repeat(32)}`
  assert.equal(code(decodeKeyFile(JSON.stringify(plain))), 'malformed')
  // A swapped ciphertext fails authentication.
  assert.equal(
    code(
      decodeKeyFile(
        tamper((j) => {
          j.crypto.ciphertext = `0x${'00'.repeat(32)}`
        }),
        'correct horse',
      ),
    ),
    'wrong_password',
  )
})

test('encode refuses arguments outside the format', () => {
  assert.throws(() => encodeKeyFile(new Uint8Array(31)), RangeError)
  assert.throws(() => encodeKeyFile(seed, { password: 'p', salt: new Uint8Array(4), iv, scrypt: fast }), RangeError)
  assert.throws(() => encodeKeyFile(seed, { password: 'p', salt, iv: new Uint8Array(16), scrypt: fast }), RangeError)
  assert.throws(() => encodeKeyFile(seed, { password: 'p', salt, iv, scrypt: { n: 3, r: 8, p: 1 } }), RangeError)
})

test('a field the format does not have is malformed, named by its path, at every level', () => {
  const plain = JSON.parse(encodeKeyFile(seed))
  const rows: [object, string | undefined, RegExp][] = [
    // a plaintext secret beside the encrypted one: the file would pass for encrypted while it leaks the key
    [{ ...GOLDEN_ENCRYPTED, privateKey: plain.secretKey }, 'correct horse', /^privateKey: unknown field$/],
    [{ ...plain, secretkey: plain.secretKey }, undefined, /^secretkey: unknown field$/],
    [{ ...plain, label: 'alice', comment: 'x' }, undefined, /^comment: unknown field; label: unknown field$/],
    [{ ...GOLDEN_ENCRYPTED, crypto: { ...GOLDEN_ENCRYPTED.crypto, mac: '0x00' } }, 'correct horse', /^crypto\.mac: unknown field$/],
    [
      { ...GOLDEN_ENCRYPTED, crypto: { ...GOLDEN_ENCRYPTED.crypto, kdfparams: { ...GOLDEN_ENCRYPTED.crypto.kdfparams, N: 2 } } },
      'correct horse',
      /^crypto\.kdfparams\.N: unknown field$/,
    ],
  ]
  for (const [json, password, reason] of rows) {
    for (const r of [decodeKeyFile(JSON.stringify(json), password), decodeKeyFileInfo(JSON.stringify(json))]) {
      assert.ok(!r.ok, JSON.stringify(json))
      assert.equal(r.error.code, 'malformed')
      assert.match(r.error.reason, reason)
    }
  }
})
