/**
 * The chunked-body scanner (RFC 9112 §7.1), in the manner of picohttpparser's
 * `phr_decode_chunked`: a small resumable state — where in the chunk framing it is, the size being
 * read, the data bytes still owed — fed whatever bytes have arrived, consuming them as it goes. Data
 * becomes views of the read's copy (`input.take`, no copy per chunk); the framing (size lines,
 * extensions, the CRLF after data) is validated byte by byte as llhttp's strict mode does, and
 * dropped. The trailer section after the last chunk is the head scanner's (trailer mode).
 *
 * One per request with a chunked body, made when its head is complete and dropped with it.
 * Errors are returned as SCAN_ERROR with the details in `error*`, as the head scanner's.
 */
import type { Buffer } from 'node:buffer';
import type { ByteCursor } from '../byte-to-message-decoder.js';
import { CR, charClass, HEX, LF, SEMICOLON, TOKEN } from './chars.js';
import { SCAN_ERROR } from './head-scanner.js';

const DQUOTE = 0x22;
const EQUALS = 0x3d;
const BACKSLASH = 0x5c;

/** qdtext of a quoted chunk extension value (RFC 9110 §5.6.4). */
const QDTEXT = charClass('\t !', [
  [0x23, 0x5b],
  [0x5d, 0x7e],
  [0x80, 0xff],
]);
/** What may follow a backslash in a quoted string. */
const QUOTED_PAIR = charClass('\t ', [
  [0x21, 0x7e],
  [0x80, 0xff],
]);

/** A chunk-size line with more digits than this is malformed (16 hex digits already exceed any body). */
const MAX_CHUNK_SIZE_DIGITS = 16;

/** `scan`: the last chunk's line was read; the trailer section follows. */
export const CHUNKS_DONE = 1;
/** `scan`: more bytes are needed. */
export const CHUNKS_MORE = 0;

const C_SIZE_START = 0;
const C_SIZE = 1;
const C_EXT_NAME_START = 2;
const C_EXT_NAME = 3;
const C_EXT_VALUE_START = 4;
const C_EXT_VALUE = 5;
const C_EXT_QUOTED = 6;
const C_EXT_QUOTED_PAIR = 7;
const C_EXT_QUOTED_END = 8;
const C_SIZE_LF = 9;
const C_DATA = 10;
const C_DATA_CR = 11;
const C_DATA_LF = 12;

export class ChunkedScanner {
  private cs = C_SIZE_START;
  private chunkSize = 0;
  private sizeDigits = 0;
  /** Bytes of chunk extensions so far (capped: see `extension`). */
  private extBytes = 0;
  /** Data bytes still owed by the current chunk. */
  private remaining = 0;
  /** Data bytes so far. */
  bodyLength = 0;
  /** The data taken since the owner last collected it (views of the reads' copies), or null. */
  pieces: Buffer[] | null = null;

  errorStatus = 0;
  errorCode = '';
  errorMessage = '';
  errorAt = 0;

  constructor(
    private readonly maxBodySize: number,
    /** The cap on a message's chunk extensions, in bytes (the decoder's `maxHeaderSize`). */
    private readonly maxExtensions: number,
  ) {}

  /**
   * Reads chunk framing and data from `input.start`, consuming as it goes. Returns CHUNKS_DONE
   * when the last chunk's line is read (the trailer section is next, at `input.start`),
   * CHUNKS_MORE when the input ran out, or SCAN_ERROR (`errorAt` an index in `input.buf`).
   */
  scan(input: ByteCursor): number {
    const buf = input.buf;
    const end = input.end;
    let p = input.start;
    let s = this.cs;
    let c = 0;
    scan: while (p < end) {
      switch (s) {
        case C_SIZE_START:
          if ((HEX[buf[p] as number] as number) < 0) {
            return this.fail(400, 'HPE_INVALID_CHUNK_SIZE', 'invalid character in chunk size', p);
          }
          this.chunkSize = 0;
          this.sizeDigits = 0;
          s = C_SIZE;
          continue;
        case C_SIZE: {
          let size = this.chunkSize;
          let digits = this.sizeDigits;
          // Checked per digit: a size only grows, so the body limit also bounds the arithmetic.
          const room = this.maxBodySize - this.bodyLength;
          while (p < end) {
            const h = HEX[buf[p] as number] as number;
            if (h < 0) break;
            size = size * 16 + h;
            if (size > room) {
              return this.fail(
                413,
                'HPE_BODY_TOO_LARGE',
                `chunked body exceeds the maximum body size of ${this.maxBodySize}`,
                p,
              );
            }
            if (++digits > MAX_CHUNK_SIZE_DIGITS) {
              return this.fail(400, 'HPE_INVALID_CHUNK_SIZE', 'chunk size has too many digits', p);
            }
            p++;
          }
          this.chunkSize = size;
          this.sizeDigits = digits;
          if (p === end) break scan;
          c = buf[p] as number;
          if (c === CR) s = C_SIZE_LF;
          else if (c === SEMICOLON) s = C_EXT_NAME_START;
          // No whitespace after the size in strict mode (llhttp: SPACES_AFTER_CHUNK_SIZE is lenient).
          else return this.fail(400, 'HPE_INVALID_CHUNK_SIZE', 'invalid character in chunk size', p);
          p++;
          continue;
        }
        case C_EXT_NAME_START:
          // chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), no BWS in strict mode.
          if (TOKEN[buf[p] as number] !== 1) {
            return this.fail(400, 'HPE_STRICT', 'invalid character in chunk extensions', p);
          }
          if (this.extension(p + 1, 1)) return SCAN_ERROR;
          p++;
          s = C_EXT_NAME;
          continue;
        case C_EXT_NAME:
        case C_EXT_VALUE: {
          const from = p;
          while (p < end && TOKEN[buf[p] as number] === 1) p++;
          if (this.extension(p, p - from)) return SCAN_ERROR;
          if (p === end) break scan;
          c = buf[p] as number;
          if (c === SEMICOLON) s = C_EXT_NAME_START;
          else if (c === CR) s = C_SIZE_LF;
          else if (c === EQUALS && s === C_EXT_NAME) s = C_EXT_VALUE_START;
          else return this.fail(400, 'HPE_STRICT', 'invalid character in chunk extensions', p);
          if (this.extension(p + 1, 1)) return SCAN_ERROR;
          p++;
          continue;
        }
        case C_EXT_VALUE_START:
          c = buf[p] as number;
          if (c === DQUOTE) s = C_EXT_QUOTED;
          else if (TOKEN[c] === 1) s = C_EXT_VALUE;
          else return this.fail(400, 'HPE_STRICT', 'invalid character in chunk extension value', p);
          if (this.extension(p + 1, 1)) return SCAN_ERROR;
          p++;
          continue;
        case C_EXT_QUOTED: {
          const from = p;
          while (p < end && QDTEXT[buf[p] as number] === 1) p++;
          if (this.extension(p, p - from)) return SCAN_ERROR;
          if (p === end) break scan;
          c = buf[p] as number;
          if (c === DQUOTE) s = C_EXT_QUOTED_END;
          else if (c === BACKSLASH) s = C_EXT_QUOTED_PAIR;
          else return this.fail(400, 'HPE_STRICT', 'invalid character in chunk extensions quoted value', p);
          if (this.extension(p + 1, 1)) return SCAN_ERROR;
          p++;
          continue;
        }
        case C_EXT_QUOTED_PAIR:
          if (QUOTED_PAIR[buf[p] as number] !== 1) {
            return this.fail(400, 'HPE_STRICT', 'invalid quoted-pair in chunk extensions quoted value', p);
          }
          if (this.extension(p + 1, 1)) return SCAN_ERROR;
          p++;
          s = C_EXT_QUOTED;
          continue;
        case C_EXT_QUOTED_END:
          c = buf[p] as number;
          if (c === SEMICOLON) s = C_EXT_NAME_START;
          else if (c === CR) s = C_SIZE_LF;
          else return this.fail(400, 'HPE_STRICT', 'invalid character after a chunk extension quoted value', p);
          if (this.extension(p + 1, 1)) return SCAN_ERROR;
          p++;
          continue;
        case C_SIZE_LF:
          if (buf[p] !== LF) return this.fail(400, 'HPE_STRICT', 'expected LF after chunk size', p);
          p++;
          if (this.chunkSize === 0) {
            // The last chunk: the trailer section follows (possibly just its empty line).
            input.skip(p - input.start);
            this.cs = C_SIZE_START;
            return CHUNKS_DONE;
          }
          this.remaining = this.chunkSize;
          s = C_DATA;
          continue;
        case C_DATA: {
          const n = Math.min(this.remaining, end - p);
          input.skip(p - input.start);
          const piece = input.take(n);
          if (this.pieces === null) this.pieces = [piece];
          else this.pieces.push(piece);
          this.bodyLength += n;
          this.remaining -= n;
          p += n;
          if (this.remaining === 0) s = C_DATA_CR;
          continue;
        }
        case C_DATA_CR:
          if (buf[p] !== CR) return this.fail(400, 'HPE_STRICT', 'expected CRLF after chunk data', p);
          p++;
          s = C_DATA_LF;
          continue;
        default:
          // C_DATA_LF
          if (buf[p] !== LF) return this.fail(400, 'HPE_STRICT', 'expected LF after chunk data', p);
          p++;
          s = C_SIZE_START;
          continue;
      }
    }
    input.skip(p - input.start);
    this.cs = s;
    return CHUNKS_MORE;
  }

  /**
   * Counts the `n` bytes of chunk extensions that end before `to`, which no limit on the body
   * covers: Node's HPE_CHUNK_EXTENSIONS_OVERFLOW (CVE-2024-22019) caps them per message. The error
   * points at the first byte over the cap, however the reads cut the line. Returns true (an
   * error) past the cap.
   */
  private extension(to: number, n: number): boolean {
    this.extBytes += n;
    if (this.extBytes <= this.maxExtensions) return false;
    this.fail(
      413,
      'HPE_CHUNK_EXTENSIONS_OVERFLOW',
      `chunk extensions longer than ${this.maxExtensions} bytes`,
      to - (this.extBytes - this.maxExtensions),
    );
    return true;
  }

  private fail(status: number, code: string, message: string, at: number): number {
    this.errorStatus = status;
    this.errorCode = code;
    this.errorMessage = message;
    this.errorAt = at;
    this.pieces = null;
    return SCAN_ERROR;
  }
}
