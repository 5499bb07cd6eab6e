/**
 * The HTTP/1.1 response decoder (the client side): bytes → `HttpClientResponse`, one per
 * response, body complete and de-chunked (RFC 9112).
 *
 * A response head is kept in the input until its empty line has arrived (found with one native
 * `indexOf` per read, resuming where the last search stopped), then parsed in one pass and taken
 * as one owned block: header fields stay bytes (`HttpHeaders`, decoded on demand) as on the server
 * side. The body length follows RFC 9112 §6.3, in its order: no body for a response to HEAD, for
 * 1xx, 204 and 304; `Transfer-Encoding` ending in `chunked` → chunked (it overrides any
 * `Content-Length`); `Content-Length` → that many bytes; otherwise the body runs until the server
 * closes the connection.
 *
 * Interim 1xx responses (100 Continue, 103 Early Hints) are skipped: they are not the answer to
 * a request. `101 Switching Protocols`, and a 2xx to CONNECT, are emitted, and every byte after
 * them is passed on raw to the next handler.
 *
 * Malformed input raises one `HttpResponseError` (a `ProtocolError` with an llhttp-style `code`)
 * and the rest of the stream is discarded: there is no telling where the next response would
 * start. A connection that ends in the middle of a response raises `HPE_INVALID_EOF_STATE`.
 */
import { Buffer } from 'node:buffer';
import { ProtocolError } from '../../common/errors.js';
import { checkOptions, type OptionKeys, optionalInt } from '../../common/options.js';
import { Queue } from '../../common/queue.js';
import type { CloseReason } from '../../pipeline/handler.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';
import { type ByteCursor, ByteToMessageDecoder } from '../byte-to-message-decoder.js';
import {
  COLON,
  COMMA,
  CR,
  FIELD_CHAR,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_TRANSFER_ENCODING,
  HEX,
  HTAB,
  LF,
  listElement,
  lowerEq,
  nextListElement,
  SEMICOLON,
  SP,
  T_CHUNKED,
  T_CLOSE,
  T_KEEP_ALIVE,
  TOKEN,
} from './chars.js';
import { HttpHeaders } from './headers.js';

/** A response the client could not parse. `code` names the problem as llhttp does (`HPE_*`). */
export class HttpResponseError extends ProtocolError {
  /** Position in the connection's byte stream where the problem was found. */
  readonly offset: number;

  constructor(code: string, message: string, offset: number) {
    super(`${message} (at byte ${offset} of the response stream)`, { code });
    this.name = 'HttpResponseError';
    this.offset = offset;
  }
}

/** One decoded response. */
export class HttpClientResponse {
  constructor(
    /** The status code, e.g. 200. */
    readonly statusCode: number,
    /** The reason phrase as sent (may be empty). */
    readonly statusMessage: string,
    readonly httpVersion: '1.0' | '1.1',
    readonly headers: HttpHeaders,
    /** The whole body (empty when there is none); chunked bodies arrive de-chunked. */
    readonly body: Buffer,
    /** Trailer fields of a chunked body (EMPTY when none). */
    readonly trailers: HttpHeaders,
    /** Whether the server keeps the connection open after this response. */
    readonly keepAlive: boolean,
  ) {}

  /** The body as UTF-8 text. */
  text(): string {
    return this.body.toString('utf8');
  }

  /** The body parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.body.toString('utf8')) as T;
  }
}

/** Limits of the client-side response decoder; a response past one raises `HttpResponseError`. */
export interface HttpResponseDecoderOptions {
  /** Longest response head (status line and fields, line ends included), in bytes. Default 64 KiB. */
  readonly maxHeaderSize?: number;
  /** Most header (or trailer) fields in a head. Default 100. */
  readonly maxHeaders?: number;
  /** Largest body, in bytes (`Content-Length`, the chunked total, or a body read until close). Default 16 MiB. */
  readonly maxBodySize?: number;
}

/** The keys of `HttpResponseDecoderOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_RESPONSE_DECODER_OPTIONS = {
  maxHeaderSize: true,
  maxHeaders: true,
  maxBodySize: true,
} as const satisfies OptionKeys<HttpResponseDecoderOptions>;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/** Whether `buf[at, end)` is the lower-case `word`, ignoring ASCII case. */
function isWord(buf: Buffer, at: number, end: number, word: Uint8Array): boolean {
  return end - at === word.length && lowerEq(buf, at, word);
}

/** Whether the comma-separated list `buf[from, to)` holds `word` (any case). */
function listHas(buf: Buffer, from: number, to: number, word: Uint8Array): boolean {
  for (let q = nextListElement(buf, from, to); q >= 0; q = nextListElement(buf, q, to)) {
    if (isWord(buf, listElement.start, listElement.end, word)) return true;
  }
  return false;
}

/** The last element of the comma-separated list `buf[from, to)` is `word` (any case). */
function listEndsWith(buf: Buffer, from: number, to: number, word: Uint8Array): boolean {
  let k = to;
  while (k > from && (buf[k - 1] === SP || buf[k - 1] === HTAB)) k--;
  let i = k;
  while (i > from && buf[i - 1] !== COMMA) i--;
  while (i < k && (buf[i] === SP || buf[i] === HTAB)) i++;
  return isWord(buf, i, k, word);
}

// What the decoder is doing between calls.
const P_HEAD = 0;
const P_BODY = 1; // a Content-Length body
const P_CHUNK_SIZE = 2;
const P_CHUNK_DATA = 3;
const P_CHUNK_END = 4; // the CRLF after a chunk's data
const P_TRAILERS = 5;
const P_UNTIL_CLOSE = 6;
const P_RAW = 7; // after 101 / CONNECT: bytes pass through
const P_DEAD = 8; // after an error, or after the response that closes the connection

// Body framing found in a head, besides a Content-Length (>= 0).
const F_CHUNKED = -2;
const F_UNTIL_CLOSE = -1;

/** Requests that change how their response is framed. */
export const EXPECT_NORMAL = 0;
export const EXPECT_HEAD = 1;
export const EXPECT_CONNECT = 2;

/**
 * The client side's HTTP/1.1 response decoder: bytes → `HttpClientResponse`, one per response,
 * body complete and de-chunked, framed as RFC 9112 §6.3 says (no body for HEAD, 1xx, 204, 304;
 * chunked; Content-Length; or until the server closes). Interim 1xx responses are skipped; after
 * a `101` or a 2xx to CONNECT every byte is passed on raw. Malformed input raises one
 * `HttpResponseError` and the rest of the stream is discarded — there is no telling where the
 * next response would start. Usually built by `HttpClientCodec` (`httpClient()`), which tells it
 * which requests were HEAD or CONNECT.
 */
export class HttpResponseDecoder extends ByteToMessageDecoder {
  readonly maxHeaderSize: number;
  readonly maxHeaders: number;
  readonly maxBodySize: number;

  private phase = P_HEAD;
  /** Bytes consumed from the stream before the current `decode` call's `input.start`. */
  private consumed = 0;
  /** How far the search for the end of the head got (relative to the head's start). */
  private scanned = 0;
  /** `[nameStart, nameEnd, valueStart, valueEnd]` per field, relative to the head start. */
  private scratch: Int32Array;
  private nf = 0;
  /** Framing expectations of the requests sent, oldest first (see `expect`). */
  private readonly expects = new Queue<number>();

  // The response whose body is being read.
  private status = 0;
  private reason = '';
  /** The last reason phrase decoded, and its bytes (see reasonText). */
  private lastReason = '';
  private lastReasonBytes: Buffer = EMPTY;
  private version: '1.0' | '1.1' = '1.1';
  private headers: HttpHeaders = HttpHeaders.EMPTY;
  private keepAlive = true;
  private remaining = 0;
  private bodyLength = 0;
  private pieces: Buffer[] = [];

  constructor(options: HttpResponseDecoderOptions = {}) {
    super();
    checkOptions('HttpResponseDecoder', options, HTTP_RESPONSE_DECODER_OPTIONS);
    this.maxHeaderSize = optionalInt('maxHeaderSize', options.maxHeaderSize, 64 * 1024, 16);
    this.maxHeaders = optionalInt('maxHeaders', options.maxHeaders, 100, 1);
    this.maxBodySize = optionalInt('maxBodySize', options.maxBodySize, 16 * 1024 * 1024, 0);
    this.scratch = new Int32Array(Math.min(this.maxHeaders, 32) * 4);
  }

  /**
   * Tells the decoder a request was sent whose response is framed unusually: `EXPECT_HEAD` (no
   * body whatever the headers say) or `EXPECT_CONNECT` (a 2xx opens a tunnel). Every request
   * must be announced, in order, once this is used; the encoder of `HttpClientCodec` does it.
   */
  expect(kind: number): void {
    this.expects.push(kind);
  }

  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const entry = input.start;
    try {
      this.step(input, out);
    } finally {
      this.consumed += input.start - entry;
    }
  }

  protected override decodeLast(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const before = input.start;
    this.decode(ctx, input, out);
    if (input.start === before && input.readable > 0) {
      // The input ended inside a head (or a body the server promised): it will never complete.
      const at = this.consumed;
      input.skip(input.readable);
      this.consumed += input.start - before;
      this.phase = P_DEAD;
      throw new HttpResponseError('HPE_INVALID_EOF_STATE', 'the connection ended inside a response', at);
    }
  }

  override onInputShutdown(ctx: HandlerContext): void {
    this.atEof(ctx);
    super.onInputShutdown(ctx);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.atEof(ctx);
    super.onInactive(ctx, reason);
  }

  /** The input ended: a body read until close is complete; anything else in progress is broken. */
  private atEof(ctx: HandlerContext): void {
    if (this.phase === P_UNTIL_CLOSE) {
      this.phase = P_DEAD;
      const body = this.joinBody();
      ctx.fireRead(this.response(body, HttpHeaders.EMPTY));
      return;
    }
    // With bytes left in the cumulation, decodeLast sees them and reports; without, report here.
    const mid = this.phase === P_BODY || this.phase === P_CHUNK_SIZE || this.phase === P_CHUNK_DATA;
    if ((mid || this.phase === P_CHUNK_END || this.phase === P_TRAILERS) && this.pendingBytes === 0) {
      this.phase = P_DEAD;
      ctx.fireError(
        new HttpResponseError('HPE_INVALID_EOF_STATE', 'the connection ended inside a response body', this.consumed),
      );
    }
  }

  private fail(code: string, message: string, input: ByteCursor, at: number): never {
    const offset = this.consumed + (at - input.start);
    this.phase = P_DEAD;
    this.pieces = [];
    input.skip(input.readable);
    throw new HttpResponseError(code, message, offset);
  }

  private step(input: ByteCursor, out: unknown[]): void {
    for (;;) {
      switch (this.phase) {
        case P_HEAD:
          if (!this.head(input, out)) return;
          continue;
        case P_BODY: {
          if (input.readable < this.remaining) return;
          const body = this.remaining === 0 ? EMPTY : input.take(this.remaining);
          this.finish(out, body, HttpHeaders.EMPTY);
          return;
        }
        case P_CHUNK_SIZE:
          if (!this.chunkSize(input)) return;
          continue;
        case P_CHUNK_DATA: {
          const n = Math.min(this.remaining, input.readable);
          if (n === 0) return;
          this.pieces.push(input.take(n));
          this.remaining -= n;
          if (this.remaining > 0) return;
          this.phase = P_CHUNK_END;
          continue;
        }
        case P_CHUNK_END: {
          if (input.readable < 2) return;
          if (input.buf[input.start] !== CR || input.buf[input.start + 1] !== LF) {
            this.fail('HPE_STRICT', 'a chunk does not end with CRLF', input, input.start);
          }
          input.skip(2);
          this.phase = P_CHUNK_SIZE;
          continue;
        }
        case P_TRAILERS:
          if (!this.trailers(input, out)) return;
          return;
        case P_UNTIL_CLOSE: {
          const n = input.readable;
          if (n === 0) return;
          this.bodyLength += n;
          if (this.bodyLength > this.maxBodySize) {
            this.fail('HPE_BODY_OVERFLOW', `body longer than maxBodySize (${this.maxBodySize})`, input, input.start);
          }
          this.pieces.push(input.take(n));
          return;
        }
        case P_RAW:
          if (input.readable > 0) out.push(input.take(input.readable));
          return;
        default:
          // Dead: after an error, or after a response that closes the connection.
          input.skip(input.readable);
          return;
      }
    }
  }

  /** Parses a head if it is complete; returns whether the decoder moved on. */
  private head(input: ByteCursor, out: unknown[]): boolean {
    const buf = input.buf;
    // Empty lines between responses are tolerated (RFC 9112 §2.2, the same as for requests).
    let s = input.start;
    while (s < input.end && (buf[s] === CR || buf[s] === LF)) s++;
    if (s > input.start) {
      input.skip(s - input.start);
      this.scanned = 0;
    }
    if (input.readable === 0) return false;
    const from = s + Math.max(0, this.scanned - 3);
    const at = buf.indexOf(CRLFCRLF, from);
    if (at < 0) {
      this.scanned = input.readable;
      if (input.readable > this.maxHeaderSize) {
        this.fail('HPE_HEADER_OVERFLOW', `response head longer than maxHeaderSize (${this.maxHeaderSize})`, input, s);
      }
      return false;
    }
    this.scanned = 0;
    const length = at + 4 - s;
    if (length > this.maxHeaderSize) {
      this.fail('HPE_HEADER_OVERFLOW', `response head longer than maxHeaderSize (${this.maxHeaderSize})`, input, s);
    }
    const framing = this.parseHead(input, s, s + length);
    const status = this.status;
    if (status < 200 && status !== 101) {
      // Interim response: the real one follows.
      input.skip(length);
      return true;
    }
    const expect = this.expects.shift() ?? EXPECT_NORMAL;
    this.headers = HttpHeaders.take(input, length, this.nf, true);
    if (status === 101 || (expect === EXPECT_CONNECT && status >= 200 && status < 300)) {
      out.push(this.response(EMPTY, HttpHeaders.EMPTY));
      this.phase = P_RAW;
      return true;
    }
    if (expect === EXPECT_HEAD || status === 204 || status === 304) {
      this.finish(out, EMPTY, HttpHeaders.EMPTY);
      return true;
    }
    this.bodyLength = 0;
    this.pieces = [];
    if (framing === F_CHUNKED) {
      this.phase = P_CHUNK_SIZE;
    } else if (framing >= 0) {
      if (framing > this.maxBodySize) {
        this.fail(
          'HPE_BODY_OVERFLOW',
          `Content-Length ${framing} exceeds maxBodySize (${this.maxBodySize})`,
          input,
          input.start,
        );
      }
      this.remaining = framing;
      this.phase = P_BODY;
    } else {
      this.keepAlive = false;
      this.phase = P_UNTIL_CLOSE;
    }
    return true;
  }

  /**
   * Parses the status line and fields of the head at `buf[s, e)` (ending with CRLFCRLF) into the
   * decoder's state. Returns the body framing: a Content-Length, F_CHUNKED, or F_UNTIL_CLOSE.
   */
  private parseHead(input: ByteCursor, s: number, e: number): number {
    const buf = input.buf;
    // Status line: HTTP/d.d SP ddd [SP reason] CRLF
    if (
      e - s < 14 ||
      buf[s] !== 0x48 ||
      buf[s + 1] !== 0x54 ||
      buf[s + 2] !== 0x54 ||
      buf[s + 3] !== 0x50 ||
      buf[s + 4] !== 0x2f
    ) {
      this.fail('HPE_INVALID_CONSTANT', 'the response does not start with HTTP/', input, s);
    }
    const major = (buf[s + 5] as number) - 0x30;
    const minor = (buf[s + 7] as number) - 0x30;
    if (major !== 1 || buf[s + 6] !== 0x2e || (minor !== 0 && minor !== 1)) {
      this.fail('HPE_INVALID_VERSION', 'unsupported HTTP version (expected 1.0 or 1.1)', input, s + 5);
    }
    this.version = minor === 1 ? '1.1' : '1.0';
    if (buf[s + 8] !== SP) this.fail('HPE_INVALID_STATUS', 'expected a space after the version', input, s + 8);
    let status = 0;
    for (let i = s + 9; i < s + 12; i++) {
      const d = (buf[i] as number) - 0x30;
      if (d < 0 || d > 9) this.fail('HPE_INVALID_STATUS', 'the status code is not three digits', input, i);
      status = status * 10 + d;
    }
    if (status < 100) this.fail('HPE_INVALID_STATUS', `invalid status code ${status}`, input, s + 9);
    this.status = status;
    let p = s + 12;
    let reasonStart = p;
    if (buf[p] === SP) reasonStart = ++p;
    else if (buf[p] !== CR) this.fail('HPE_INVALID_STATUS', 'expected a space after the status code', input, p);
    while (FIELD_CHAR[buf[p] as number] === 1) p++;
    if (buf[p] !== CR || buf[p + 1] !== LF) this.fail('HPE_STRICT', 'invalid character in the reason phrase', input, p);
    this.reason = this.reasonText(buf, reasonStart, p);
    p += 2;
    const nf = this.parseFields(input, p, e, s);
    // What frames the body, from the fields just recorded.
    const o = this.scratch;
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = false;
    let close = this.version === '1.0';
    for (let i = 0; i < nf; i++) {
      const nameStart = s + (o[i * 4] as number);
      const nameEnd = s + (o[i * 4 + 1] as number);
      const valueStart = s + (o[i * 4 + 2] as number);
      const valueEnd = s + (o[i * 4 + 3] as number);
      const nameLength = nameEnd - nameStart;
      if (nameLength === 14 && lowerEq(buf, nameStart, H_CONTENT_LENGTH)) {
        const v = this.contentLength(input, valueStart, valueEnd);
        if (contentLength >= 0 && v !== contentLength) {
          this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting Content-Length values', input, valueStart);
        }
        contentLength = v;
      } else if (nameLength === 17 && lowerEq(buf, nameStart, H_TRANSFER_ENCODING)) {
        transferEncoding = true;
        // Only the final coding matters for framing (RFC 9112 §6.3 item 4).
        chunked = listEndsWith(buf, valueStart, valueEnd, T_CHUNKED);
      } else if (nameLength === 10 && lowerEq(buf, nameStart, H_CONNECTION)) {
        if (listHas(buf, valueStart, valueEnd, T_CLOSE)) close = true;
        else if (listHas(buf, valueStart, valueEnd, T_KEEP_ALIVE)) close = false;
      }
    }
    this.nf = nf;
    this.keepAlive = !close;
    if (transferEncoding) return chunked ? F_CHUNKED : F_UNTIL_CLOSE;
    return contentLength >= 0 ? contentLength : F_UNTIL_CLOSE;
  }

  /**
   * The reason phrase as a string. A server sends the same few phrases again and again ("OK"):
   * the last one is kept with its bytes, and reused when they match, instead of a new string
   * per response.
   */
  private reasonText(buf: Buffer, from: number, to: number): string {
    const n = to - from;
    if (n === 0) return '';
    const last = this.lastReasonBytes;
    if (last.length === n) {
      let i = 0;
      while (i < n && last[i] === buf[from + i]) i++;
      if (i === n) return this.lastReason;
    }
    this.lastReasonBytes = Buffer.from(buf.subarray(from, to));
    this.lastReason = buf.toString('latin1', from, to);
    return this.lastReason;
  }

  /** A Content-Length value: digits, or a list of identical ones ("42, 42", RFC 9110 §8.6). */
  private contentLength(input: ByteCursor, from: number, to: number): number {
    const buf = input.buf;
    let value = -1;
    let p = from;
    while (p < to) {
      let v = 0;
      const start = p;
      while (p < to && buf[p] !== COMMA && buf[p] !== SP && buf[p] !== HTAB) {
        const d = (buf[p] as number) - 0x30;
        if (d < 0 || d > 9) this.fail('HPE_INVALID_CONTENT_LENGTH', 'Content-Length is not a number', input, p);
        v = v * 10 + d;
        if (v > Number.MAX_SAFE_INTEGER)
          this.fail('HPE_INVALID_CONTENT_LENGTH', 'Content-Length too large', input, start);
        p++;
      }
      if (p === start) this.fail('HPE_INVALID_CONTENT_LENGTH', 'empty Content-Length', input, p);
      if (value >= 0 && v !== value)
        this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting Content-Length values', input, start);
      value = v;
      while (p < to && (buf[p] === SP || buf[p] === HTAB)) p++;
      if (p < to) {
        if (buf[p] !== COMMA) this.fail('HPE_INVALID_CONTENT_LENGTH', 'Content-Length is not a number', input, p);
        p++;
        while (p < to && (buf[p] === SP || buf[p] === HTAB)) p++;
      }
    }
    return value;
  }

  /** Reads a chunk-size line if it is complete; returns whether the decoder moved on. */
  private chunkSize(input: ByteCursor): boolean {
    const buf = input.buf;
    const lf = buf.indexOf(LF, input.start);
    if (lf < 0) {
      // A size line is short: hex digits and extensions, bounded like a head.
      if (input.readable > this.maxHeaderSize)
        this.fail('HPE_INVALID_CHUNK_SIZE', 'chunk-size line too long', input, input.start);
      return false;
    }
    let p = input.start;
    let size = 0;
    let digits = 0;
    for (; p < lf; p++) {
      const h = HEX[buf[p] as number] as number;
      if (h < 0) break;
      if (++digits > 15) this.fail('HPE_INVALID_CHUNK_SIZE', 'chunk size too large', input, p);
      size = size * 16 + h;
    }
    if (digits === 0) this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size', input, p);
    // Chunk extensions (";name=value") carry nothing a client needs: checked for junk and skipped.
    while (p < lf && (buf[p] === SP || buf[p] === HTAB)) p++;
    if (buf[p] === SEMICOLON) {
      for (p++; p < lf - 1; p++) if (FIELD_CHAR[buf[p] as number] !== 1) break;
    }
    if (p !== lf - 1 || buf[p] !== CR) this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk-size line', input, p);
    input.skip(lf + 1 - input.start);
    if (size === 0) {
      this.phase = P_TRAILERS;
      return true;
    }
    this.bodyLength += size;
    if (this.bodyLength > this.maxBodySize) {
      this.fail('HPE_BODY_OVERFLOW', `chunked body longer than maxBodySize (${this.maxBodySize})`, input, input.start);
    }
    this.remaining = size;
    this.phase = P_CHUNK_DATA;
    return true;
  }

  /** Reads the trailer section (after the last chunk) if complete and emits the response. */
  private trailers(input: ByteCursor, out: unknown[]): boolean {
    const buf = input.buf;
    const s = input.start;
    if (input.readable < 2) return false;
    if (buf[s] === CR && buf[s + 1] === LF) {
      input.skip(2);
      this.finish(out, this.joinBody(), HttpHeaders.EMPTY);
      return true;
    }
    const at = buf.indexOf(CRLFCRLF, s);
    if (at < 0) {
      if (input.readable > this.maxHeaderSize) this.fail('HPE_HEADER_OVERFLOW', 'trailer section too long', input, s);
      return false;
    }
    // Parse the trailers as a head with a dummy status line: the same field rules apply.
    const length = at + 4 - s;
    const fields = this.parseFields(input, s, s + length, s);
    const trailers = HttpHeaders.take(input, length, fields, false);
    this.finish(out, this.joinBody(), trailers);
    return true;
  }

  /**
   * Parses the field lines in `buf[from, e)` (the section ends with CRLFCRLF) into `scratch`, as
   * offsets relative to `base`; returns their count. No whitespace before a colon (RFC 9112
   * §5.1), no obs-fold (§5.2), no bare CR or LF, at most `maxHeaders` fields.
   */
  private parseFields(input: ByteCursor, from: number, e: number, base: number): number {
    const buf = input.buf;
    let p = from;
    let nf = 0;
    const end = e - 2; // the final CRLF
    while (p < end) {
      const nameStart = p;
      while (TOKEN[buf[p] as number] === 1) p++;
      if (p === nameStart || buf[p] !== COLON) this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid field name', input, p);
      const nameEnd = p++;
      while (buf[p] === SP || buf[p] === HTAB) p++;
      const valueStart = p;
      while (FIELD_CHAR[buf[p] as number] === 1) p++;
      if (buf[p] !== CR || buf[p + 1] !== LF) {
        this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid character in a field value', input, p);
      }
      let valueEnd = p;
      while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
      p += 2;
      if (nf === this.maxHeaders) {
        this.fail('HPE_HEADER_OVERFLOW', `more than maxHeaders (${this.maxHeaders}) fields`, input, nameStart);
      }
      if (nf * 4 + 4 > this.scratch.length) {
        const bigger = new Int32Array(Math.min(this.maxHeaders, nf * 2) * 4);
        bigger.set(this.scratch);
        this.scratch = bigger;
      }
      const o = this.scratch;
      o[nf * 4] = nameStart - base;
      o[nf * 4 + 1] = nameEnd - base;
      o[nf * 4 + 2] = valueStart - base;
      o[nf * 4 + 3] = valueEnd - base;
      nf++;
    }
    return nf;
  }

  private joinBody(): Buffer {
    const pieces = this.pieces;
    this.pieces = [];
    if (pieces.length === 0) return EMPTY;
    if (pieces.length === 1) return pieces[0] as Buffer;
    return Buffer.concat(pieces, this.bodyLength);
  }

  private response(body: Buffer, trailers: HttpHeaders): HttpClientResponse {
    return new HttpClientResponse(this.status, this.reason, this.version, this.headers, body, trailers, this.keepAlive);
  }

  /** A response is complete: emit it and wait for the next head (or for the close it announced). */
  private finish(out: unknown[], body: Buffer, trailers: HttpHeaders): void {
    out.push(this.response(body, trailers));
    this.headers = HttpHeaders.EMPTY;
    this.phase = this.keepAlive ? P_HEAD : P_DEAD;
  }
}
