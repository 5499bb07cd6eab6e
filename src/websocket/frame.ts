/**
 * RFC 6455 §5 on the wire: opcodes, close codes, frame headers and masking.
 *
 * ```
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-------+-+-------------+-------------------------------+
 *  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *  | |1|2|3|       |K|             |                               |
 *  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *  |     Extended payload length continued, if payload len == 127  |
 *  + - - - - - - - - - - - - - - - +-------------------------------+
 *  |                               |Masking-key, if MASK set to 1  |
 *  +-------------------------------+-------------------------------+
 *  | Masking-key (continued)       |          Payload Data         |
 *  +-------------------------------- - - - - - - - - - - - - - - - +
 * ```
 *
 * The mask is handled as one 32-bit word: four key bytes read in memory order form a
 * little-endian word, so XOR-ing the payload four bytes at a time through an `Int32Array` is the
 * same as the RFC's byte-wise `octet[i] ^ key[i % 4]` (§5.3) — about four times faster than a
 * byte loop on large payloads, with no allocation but the view itself.
 */
import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { endianness } from 'node:os';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export const FIN = 0x80;
export const RSV1 = 0x40;

/** RFC 6455 §5.5: control frames carry at most 125 bytes. */
export const MAX_CONTROL_PAYLOAD = 125;

/** 1000, a normal closure. Close codes: RFC 6455 §7.4.1. */
export const CLOSE_NORMAL = 1000;
/** 1001: the endpoint is going away — a server stopping or reloading, an idle timeout. */
export const CLOSE_GOING_AWAY = 1001;
/** 1002: the peer broke the protocol (a bad frame, an unmasked client frame, …). */
export const CLOSE_PROTOCOL_ERROR = 1002;
/** 1003: a kind of message the endpoint does not accept (binary on a text-only protocol). */
export const CLOSE_UNSUPPORTED = 1003;
/** Reported (never sent) when the close frame had no code. */
export const CLOSE_NO_STATUS = 1005;
/** Reported (never sent) when the connection ended without a close frame. */
export const CLOSE_ABNORMAL = 1006;
/** 1007: a text message (or close reason) that is not valid UTF-8. */
export const CLOSE_INVALID_PAYLOAD = 1007;
/**
 * 1008: a policy violation — also what the backpressure policies `'close'` and `'wait'` (past
 * `maxBufferedAmount`) send.
 */
export const CLOSE_POLICY = 1008;
/** 1009: a frame or message over `maxPayload` / `maxMessageSize` (or inflating past it). */
export const CLOSE_TOO_BIG = 1009;
/** 1011: the server failed — an application callback threw. */
export const CLOSE_INTERNAL_ERROR = 1011;

/**
 * Whether `code` may appear in a close frame (RFC 6455 §7.4): 1000–1003 and 1007–1014 (1012–1014
 * are IANA-registered since: service restart, try again later, bad gateway), and 3000–4999
 * (registered and private use). 1004–1006 and 1015 are reserved or only reported locally; other
 * codes below 3000 are reserved for the protocol — Autobahn 7.9.x expects 1002 for them.
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** Bytes of a header for `length` payload bytes (without the mask key). */
export function headerLength(length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10;
}

/**
 * Writes a frame header at `at` in `buf` (`b0`: FIN | RSV | opcode) with the shortest length
 * encoding (§5.2 requires it) and, when `mask` is given, the MASK bit and the 4 key bytes.
 * Returns the offset after the header.
 */
export function writeHeader(buf: Buffer, at: number, b0: number, length: number, mask?: Buffer, maskAt = 0): number {
  const m = mask === undefined ? 0 : 0x80;
  buf[at] = b0;
  if (length < 126) {
    buf[at + 1] = m | length;
    at += 2;
  } else if (length < 0x10000) {
    buf[at + 1] = m | 126;
    buf[at + 2] = length >>> 8;
    buf[at + 3] = length & 0xff;
    at += 4;
  } else {
    buf[at + 1] = m | 127;
    // The top bit stays 0 (§5.2): lengths here are far below 2^53.
    buf.writeUInt32BE(Math.floor(length / 0x100000000), at + 2);
    buf.writeUInt32BE(length >>> 0, at + 6);
    at += 10;
  }
  if (mask !== undefined) {
    buf[at] = mask[maskAt] as number;
    buf[at + 1] = mask[maskAt + 1] as number;
    buf[at + 2] = mask[maskAt + 2] as number;
    buf[at + 3] = mask[maskAt + 3] as number;
    at += 4;
  }
  return at;
}

const LITTLE_ENDIAN = endianness() === 'LE';
/** Below this many bytes the byte loop wins over making an Int32Array view. */
const WORD_LOOP_MIN = 48;

/** The key word read at `at` in `buf` (4 bytes, memory order as a little-endian word). */
export function maskKey(buf: Uint8Array, at: number): number {
  return (
    ((buf[at] as number) |
      ((buf[at + 1] as number) << 8) |
      ((buf[at + 2] as number) << 16) |
      ((buf[at + 3] as number) << 24)) >>>
    0
  );
}

/**
 * XORs `buf[start, end)` in place with the mask `key` (see `maskKey`), starting at key byte
 * `phase` (0–3: how many payload bytes of the frame came before `start`, mod 4). Masking and
 * unmasking are the same operation (§5.3).
 */
export function applyMask(buf: Uint8Array, start: number, end: number, key: number, phase: number): void {
  let i = start;
  let p = phase & 3;
  if (end - start >= WORD_LOOP_MIN && LITTLE_ENDIAN) {
    // Bytes up to a 4-byte boundary of the underlying memory, then whole words.
    let head = (4 - ((buf.byteOffset + i) & 3)) & 3;
    while (head-- > 0) {
      buf[i] = (buf[i] as number) ^ ((key >>> (p << 3)) & 0xff);
      i++;
      p = (p + 1) & 3;
    }
    // `>> 2 | 0`, not `>>> 2`: a uint32 loop bound makes TurboFan keep `j` as a float64.
    const words = ((end - i) >> 2) | 0;
    const w = p === 0 ? key | 0 : (key >>> (p << 3)) | (key << (32 - (p << 3)));
    const view = new Int32Array(buf.buffer, buf.byteOffset + i, words);
    // Four words an iteration: a quarter of the loop's compare-and-branch overhead (measured
    // ~1.3x faster on 4 KiB than one word an iteration).
    const w4 = words & ~3;
    let j = 0;
    for (; j < w4; j += 4) {
      view[j] = (view[j] as number) ^ w;
      view[j + 1] = (view[j + 1] as number) ^ w;
      view[j + 2] = (view[j + 2] as number) ^ w;
      view[j + 3] = (view[j + 3] as number) ^ w;
    }
    for (; j < words; j++) view[j] = (view[j] as number) ^ w;
    i += words << 2;
  }
  while (i < end) {
    buf[i] = (buf[i] as number) ^ ((key >>> (p << 3)) & 0xff);
    i++;
    p = (p + 1) & 3;
  }
}

/**
 * Mask keys for client frames (§5.3: "unpredictable", from a strong source). One
 * `randomFillSync` call fills 1,024 keys: a system call per frame would cost more than the frame.
 */
const MASK_POOL = Buffer.allocUnsafeSlow(4096);
let maskPoolAt = MASK_POOL.length;

/** A fresh mask key: returns the offset of its 4 bytes in `maskPool()`, valid until the next call. */
export function nextMaskKey(): number {
  if (maskPoolAt >= MASK_POOL.length) {
    randomFillSync(MASK_POOL);
    maskPoolAt = 0;
  }
  const at = maskPoolAt;
  maskPoolAt += 4;
  return at;
}

/** The buffer `nextMaskKey` offsets point into. */
export function maskPool(): Buffer {
  return MASK_POOL;
}
