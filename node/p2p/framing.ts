import type { ConnectionEncrypter, MessageStream, MultiaddrConnection, StreamMuxer, StreamMuxerFactory } from '@libp2p/interface'
import * as varint from 'uint8-varint'

/**
 * Cheaper per-message framing on libp2p connections. Two costs of the libraries' defaults are paid for every
 * message, however small, and together they are a fifth of what a small message costs both ends
 * (`bench/p2pMessages.ts`):
 *
 *  - **Writes.** Noise hands the raw connection every frame as two chunks, its 2-byte length and its ciphertext, and
 *    the TCP connection writes each chunk with its own `socket.write`: one system call, and on loopback one pass
 *    through the receiver's network stack, per chunk. {@link joinSends} joins the chunks of each send, so it is one
 *    write; a copy of at most a few frames costs far less than a system call. The bytes on the wire are unchanged.
 *  - **Reads.** A length-prefixed decoder asks its length decoder for the next length until that throws a
 *    `RangeError` for want of bytes, which happens once for every chunk read; building an error captures a stack.
 *    {@link quietLengthDecoder} throws one prebuilt error instead.
 *  - **Window updates.** Yamux's receiver answered every data frame with a window-update frame, so each message cost
 *    a second frame the other way (encrypted, written, read, decrypted). {@link fewerWindowUpdates} sends one only
 *    once half the stream's receive window is used, as the reference implementation (Go's yamux) does: the sender
 *    still holds the other half while the update travels.
 *
 * These reach into libp2p's own classes (`AbstractMessageStream.sendData`, the Noise stream's `decoder`, Yamux's
 * streams), which are not part of its interface; what lacks them is left as it is, and unit tests check that the
 * shipped versions have them.
 */
export function cheapFraming<E extends ConnectionEncrypter>(encrypter: E): E {
  const secureInbound = encrypter.secureInbound.bind(encrypter)
  const secureOutbound = encrypter.secureOutbound.bind(encrypter)
  encrypter.secureInbound = async (connection, options) => tuneSecured(await secureInbound(joinSends(connection), options))
  encrypter.secureOutbound = async (connection, options) => tuneSecured(await secureOutbound(joinSends(connection), options))
  return encrypter
}

/** Thrown by the quiet length decoders while too few bytes are buffered; the decoder catches it and waits. */
const NEED_MORE = new RangeError('need more bytes for a length prefix')

/** A length decoder (of `LengthPrefixedDecoder`) that throws {@link NEED_MORE} while the buffer is too short. */
export function quietLengthDecoder<D extends { readonly byteLength: number }>(decode: (data: D) => number, prefixBytes: number): (data: D) => number {
  return (data) => {
    if (data.byteLength < prefixBytes) throw NEED_MORE
    return decode(data)
  }
}

/** An unsigned varint length decoder for `LengthPrefixedDecoder` that builds no error while the buffer is empty. */
export const quietVarintDecoder = quietLengthDecoder(varint.decode, 1)

/** Thrown for a frame of length 0; not a `RangeError`, so the decoder passes it on rather than wait for more. */
const EMPTY_FRAME = new Error('a message of no bytes')

/**
 * {@link quietVarintDecoder} that refuses a length of 0. `LengthPrefixedDecoder` skips an empty frame without a word:
 * a stream of zero bytes, one empty frame each, would cost its reader's thread hundreds of nanoseconds a byte with
 * nothing handled, judged or paused. No message is empty, so such a frame is a fault of its sender.
 */
export function nonEmptyVarintDecoder(data: Parameters<typeof quietVarintDecoder>[0]): number {
  const n = quietVarintDecoder(data)
  if (n === 0) throw EMPTY_FRAME
  return n
}

/** Noise's frame length: 2 bytes, big-endian. */
function uint16BE(data: Uint8Array | { readonly byteLength: number; getUint16(offset: number): number }): number {
  return data instanceof Uint8Array ? (data[0]! << 8) | data[1]! : data.getUint16(0)
}

/** The part of a byte list (libp2p's `Uint8ArrayList`) that {@link joinSends} uses. */
interface ByteList {
  readonly byteLength: number
  subarray(): Uint8Array
}

interface Sender {
  sendData?: (data: ByteList) => unknown
}

/** Makes `connection` write each send as a single chunk; returns it. */
export function joinSends<S extends MessageStream>(connection: S): S {
  const target = connection as unknown as Sender
  const sendData = target.sendData
  if (typeof sendData !== 'function') return connection
  target.sendData = function (this: unknown, data: ByteList) {
    // a list of one chunk, of the class it was given: subarray() joins the chunks (and returns a single one as it is)
    const List = data.constructor as new (...chunks: Uint8Array[]) => ByteList
    return sendData.call(this, new List(data.subarray()))
  }
  return connection
}

interface NoiseStream {
  decoder?: { lengthDecoder?: typeof uint16BE }
}

/** Gives a Noise stream's frame decoder (2-byte big-endian lengths) a quiet length decoder. */
function tuneSecured<T extends { connection: MessageStream }>(secured: T): T {
  const decoder = (secured.connection as unknown as NoiseStream).decoder
  if (decoder !== undefined && typeof decoder.lengthDecoder === 'function') {
    decoder.lengthDecoder = quietLengthDecoder(uint16BE, 2)
  }
  return secured
}

/** The fields of a Yamux stream that {@link fewerWindowUpdates} reads. */
interface YamuxStreamWindow {
  state?: number
  recvWindow?: number
  recvWindowCapacity?: number
  sendWindowUpdate?: () => void
}

/** Yamux's `StreamState.Established`: a window update then carries no flag and may wait. */
const YAMUX_ESTABLISHED = 3

/** Makes a Yamux stream send a window update only once half its receive window is used (or with a flag). */
export function halfWindowUpdates(stream: unknown): void {
  const s = stream as YamuxStreamWindow
  const send = s.sendWindowUpdate
  if (typeof send !== 'function' || typeof s.recvWindow !== 'number' || typeof s.recvWindowCapacity !== 'number') return
  s.sendWindowUpdate = function (this: YamuxStreamWindow) {
    if (this.state === YAMUX_ESTABLISHED && this.recvWindow! - this.recvWindowCapacity! < this.recvWindow! / 2) return
    send.call(this)
  }
}

interface YamuxMuxerStreams {
  _newStream?: (...args: unknown[]) => unknown
}

/** A Yamux muxer factory whose streams send window updates at half the window ({@link halfWindowUpdates}). */
export function fewerWindowUpdates<F extends StreamMuxerFactory>(factory: F): F {
  const create = factory.createStreamMuxer.bind(factory)
  factory.createStreamMuxer = (maConn: MultiaddrConnection): StreamMuxer => {
    const muxer = create(maConn)
    const m = muxer as unknown as YamuxMuxerStreams
    const newStream = m._newStream
    if (typeof newStream === 'function') {
      m._newStream = function (this: unknown, ...args: unknown[]) {
        const stream = newStream.apply(this, args)
        halfWindowUpdates(stream)
        return stream
      }
    }
    return muxer
  }
  return factory
}
