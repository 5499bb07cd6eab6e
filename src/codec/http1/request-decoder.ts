/**
 * The HTTP/1.1 request decoder: bytes → `HttpRequest`, strict as llhttp's strict mode (RFC 9112).
 *
 * A byte-level state machine that resumes where it stopped: every byte of a request head is
 * examined once, however the reads cut it (a head arriving one byte per read costs what it costs
 * in one read), and malformed input is rejected as soon as the offending byte arrives — a bad
 * version in a request line that has not ended yet, a duplicate `Content-Length` in a head that
 * has not ended yet — as llhttp does. Inner loops are table lookups over `input.buf`; nothing
 * is called per byte and no string is made per header.
 *
 * The head stays in the decoder's input until it is complete (the field line being scanned is
 * recorded as offsets from the head's first byte), then becomes one owned block with `input.takeSpan`:
 * the request's headers are that block, whose field offsets are found on first use (headers.ts). A
 * `Content-Length` body is taken whole once it has arrived (`take`: no copy beyond the per-read
 * one); a chunked body is consumed chunk by chunk and joined once at its end.
 *
 * A head that repeats the connection's previous one byte for byte (clients send the same head over
 * and over) is recognised by comparing words, and its parse taken from a memo (see recallHead).
 *
 * After an error the stream cannot be resynchronised (where would the next request start?), so
 * the decoder discards everything that follows: one `HttpParseError` per connection, then silence.
 * The server answers the error's `statusCode` and closes.
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../../common/errors.js';
import { checkOptions, type OptionKeys, optionalInt } from '../../common/options.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';
import { type ByteCursor, ByteToMessageDecoder } from '../byte-to-message-decoder.js';
import { HttpBodyChunk } from './body.js';
import {
  ALNUM,
  COLON,
  CR,
  charClass,
  FIELD_CHAR,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_TRANSFER_ENCODING,
  HEX,
  HTAB,
  LF,
  listElement,
  lit,
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
import { HttpExpectContinueEvent, HttpParseError, HttpRequest, HttpRequestProgress } from './request.js';

export interface HttpRequestDecoderOptions {
  /** Longest request head (request line and header fields, line ends included) in bytes; longer → 431. Default 16 KiB. */
  readonly maxHeaderSize?: number;
  /** Longest request target in bytes; longer (or a request line longer than `maxHeaderSize`) → 414. Default 8 KiB. */
  readonly maxUrlLength?: number;
  /** Most header fields in a head (and trailer fields in a trailer section); more → 431. Default 100. */
  readonly maxHeaders?: number;
  /** Largest body in bytes, checked against `Content-Length` before reading and against the chunked total; larger → 413. Default 1 MiB. */
  readonly maxBodySize?: number;
  /** Accept any token as the method (true) rather than answering methods llhttp does not know with 501 (false, the default). */
  readonly allowUnknownMethods?: boolean;
  /**
   * Emit a request with a body as soon as its head is complete (`streamed`), then its body as
   * `HttpBodyChunk`s as they arrive, instead of once the whole body is in. `maxBodySize` still
   * bounds the body. Default false.
   */
  readonly streamBodies?: boolean;
  /**
   * Answer an HTTP/1.1 request without a `Host` field with 400 (`HPE_MISSING_HOST`), as RFC 9112
   * §3.2 requires of a server (node:http's `requireHostHeader`). A repeated or malformed Host is
   * 400 whatever this says. Default true; false only for parsing traffic that is not a client's
   * (test vectors written without Host).
   */
  readonly requireHostHeader?: boolean;
}

/** The keys of `HttpRequestDecoderOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_REQUEST_DECODER_OPTIONS = {
  maxHeaderSize: true,
  maxUrlLength: true,
  maxHeaders: true,
  maxBodySize: true,
  allowUnknownMethods: true,
  streamBodies: true,
  requireHostHeader: true,
} as const satisfies OptionKeys<HttpRequestDecoderOptions>;

// ---- bytes and character classes (RFC 9110 §5.6.2 token, §5.5 field values, RFC 3986) ----

const DQUOTE = 0x22;
const STAR = 0x2a;
const DOT = 0x2e;
const SLASH = 0x2f;
const EQUALS = 0x3d;
const QUESTION = 0x3f;
const AT = 0x40;
const BACKSLASH = 0x5c;

/** Visible ASCII: the request target after its first byte (llhttp's URL_CHAR plus `?` and `#`). */
const VCHAR = charClass('', [[0x21, 0x7e]]);
/** The authority of an absolute-form or authority-form target (llhttp's USERINFO_CHARS and brackets). */
const SERVER_CHAR = charClass(`-_.!~*'()%;:&=+$,[]${ALNUM}`);
const ALPHA = charClass(ALNUM.slice(0, 52));
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

const H_UPGRADE = lit('upgrade');
const H_EXPECT = lit('expect');
const H_HOST = lit('host');
/**
 * A Host value, RFC 9110 §7.2: `uri-host [ ":" port ]` (RFC 3986 §3.2.2). reg-name and IPv4 are
 * unreserved, pct-encoded and sub-delims characters; an IP-literal is bracketed (IPv6, IPvFuture:
 * the same characters and `:`). No userinfo, no path, no whitespace: a Host a proxy and an origin
 * could read differently is refused, not guessed at.
 */
const REG_NAME_CHAR = charClass(`-._~%!$&'()*+,;=${ALNUM}`);
const IP_LITERAL_CHAR = charClass(`-._~%!$&'()*+,;=:${ALNUM}`);
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const T_UPGRADE = lit('upgrade');
const T_100_CONTINUE = lit('100-continue');

// ---- methods ----

const M_OTHER = 0;
const M_CONNECT = 1;
const M_PRI = 2;

interface KnownMethod {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly kind: number;
}

/**
 * llhttp's methods for `HTTP/x.y` requests (constants.ts METHODS_HTTP: RFC 9110, WebDAV,
 * Subversion, UPnP, CalDAV, PURGE, QUERY, SOURCE, and PRI for the HTTP/2 preface). Strict llhttp
 * rejects any other method, RTSP's included; most frequent first, so GET is found first.
 */
const KNOWN_METHODS = [
  'GET',
  'POST',
  'PUT',
  'HEAD',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'CONNECT',
  'TRACE',
  'QUERY',
  'COPY',
  'LOCK',
  'MKCOL',
  'MOVE',
  'PROPFIND',
  'PROPPATCH',
  'SEARCH',
  'UNLOCK',
  'BIND',
  'REBIND',
  'UNBIND',
  'ACL',
  'REPORT',
  'MKACTIVITY',
  'CHECKOUT',
  'MERGE',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PURGE',
  'MKCALENDAR',
  'LINK',
  'UNLINK',
  'SOURCE',
  'PRI',
];
/** Known methods by length: matching compares bytes, so no string is made for a known method. */
const METHODS_BY_LENGTH: KnownMethod[][] = [];
let longestMethod = 0;
for (const name of KNOWN_METHODS) {
  const kind = name === 'CONNECT' ? M_CONNECT : name === 'PRI' ? M_PRI : M_OTHER;
  const sameLength = METHODS_BY_LENGTH[name.length] ?? [];
  sameLength.push({ name, bytes: lit(name), kind });
  METHODS_BY_LENGTH[name.length] = sameLength;
  longestMethod = Math.max(longestMethod, name.length);
}

// ---- states ----

// What the decoder is doing between calls.
/** The known method `buf[from, to)`, or undefined. */
function knownMethod(buf: Buffer, from: number, to: number): KnownMethod | undefined {
  const length = to - from;
  const candidates = METHODS_BY_LENGTH[length];
  if (candidates === undefined) return undefined;
  next: for (let i = 0; i < candidates.length; i++) {
    const m = candidates[i] as KnownMethod;
    const bytes = m.bytes;
    for (let j = 0; j < length; j++) if (buf[from + j] !== bytes[j]) continue next;
    return m;
  }
  return undefined;
}

// The last request target decoded on this thread (see urlString): shared by every connection,
// which decodes synchronously, one request at a time.
const URL_CACHE_BYTES = 256;
const lastUrlBytes = new Uint8Array(URL_CACHE_BYTES);
let lastUrlLength = -1;
let lastUrl = '';

const P_IDLE = 0; // between requests: skipping empty lines
const P_HEAD = 1; // inside a request head (kept in the input until complete)
const P_BODY = 2; // waiting for a Content-Length body
const P_CHUNKED = 3; // inside a chunked body (consumed as it comes)
const P_TRAILERS = 4; // inside the trailer section (kept in the input until complete)
const P_CLOSED = 5; // after a request that closes the connection
const P_DEAD = 6; // after an error: everything is discarded
const P_UPGRADED = 7; // after an upgrade: removed from the pipeline

// What the server stage was told of the request being received (signalProgress).
const S_HEAD_SENT = 1;
const S_BODY_SENT = 2;

// Head and trailer scanner.
const S_METHOD = 0;
const S_URL_START = 1;
const S_URL_PATH = 2;
const S_URL_SCHEME = 3;
const S_URL_SLASH1 = 4;
const S_URL_SLASH2 = 5;
const S_URL_SERVER = 6;
const S_URL_END = 7;
const S_VERSION = 8;
const S_LINE_CR = 9;
const S_LINE_LF = 10;
const S_FIELD_START = 11; // request-line states are < S_FIELD_START
const S_FIELD_NAME = 12;
const S_VALUE_OWS = 13;
const S_VALUE = 14;
const S_VALUE_LF = 15;
const S_EMPTY_VALUE_LF = 16;
const S_END_LF = 17;

// Chunked body.
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

// What the head said.
const F_CONN_CLOSE = 1;
const F_CONN_KEEP_ALIVE = 2;
const F_CONN_UPGRADE = 4;
const F_UPGRADE = 8;
const F_CONTENT_LENGTH = 16;
const F_TRANSFER_ENCODING = 32;
const F_CHUNKED = 64;
const F_EXPECT_CONTINUE = 128;
const F_URL_AT = 256;
const F_HOST = 512;

const HTTP_SLASH = lit('HTTP/');
/** A chunk-size line with more digits than this is malformed (16 hex digits already exceed any body). */
const MAX_CHUNK_SIZE_DIGITS = 16;
const EMPTY = Buffer.alloc(0);

/** Heads up to this size are remembered for `recallHead` (64 words: a copy costs ~30 ns at most). */
const MEMO_MAX_HEAD = 256;
/**
 * After this many heads in a row that were not the one before, the client is not repeating itself
 * (changing URLs, cookies, ids): the memo rests for MEMO_REST heads, which then cost only quickHead
 * (the compare and the copy cost ~10% of quickHead for an 80-byte head).
 */
const MEMO_MAX_MISSES = 4;
const MEMO_REST = 32;

/**
 * The last head the straight path accepted: its bytes as 32-bit words (read through a DataView,
 * so the byte order is the DataView's on both sides) and what parsing them produced — all of it
 * relative to the head's first byte, and a function of the bytes and the decoder's options only.
 */
class HeadMemo {
  readonly words = new Int32Array(MEMO_MAX_HEAD / 4);
  length = 0;
  /** The head's last four bytes (a head's length is rarely a multiple of 4). */
  tail = 0;
  methodName = '';
  methodKind = 0;
  urlStart = 0;
  urlEnd = 0;
  minor = 0;
  nf = 0;
  flags = 0;
  contentLength = 0;
  /**
   * The request target and the headers of the head, made when it is first recalled and shared by
   * every request recalled after it (both are immutable): no copy of the head per request. The
   * headers own an exact copy of the head, so a connection's memo keeps no pool memory alive.
   */
  url = '';
  headers: HttpHeaders | undefined = undefined;
}

/**
 * Decodes HTTP/1.0 and HTTP/1.1 requests: one `HttpRequest` per complete message (body received
 * and de-chunked, trailers parsed), in order, however many arrive in one read (pipelining).
 * Malformed input raises one `HttpParseError` (`statusCode` to answer, llhttp-style `code`,
 * stream `offset`), after which the connection's bytes are ignored. See docs/http.md.
 */
export class HttpRequestDecoder extends ByteToMessageDecoder {
  readonly maxHeaderSize: number;
  readonly maxUrlLength: number;
  readonly maxHeaders: number;
  readonly maxBodySize: number;
  readonly allowUnknownMethods: boolean;
  readonly streamBodies: boolean;
  readonly requireHostHeader: boolean;

  private phase = P_IDLE;
  /** Stream offset of `input.start` when `decode` was entered, minus `input.start`. */
  private origin = 0;
  /** Bytes consumed from the stream so far. */
  private consumed = 0;

  // Head / trailer scanner, resumable: position relative to the section's first byte, state.
  private hp = 0;
  private hs = S_METHOD;
  /** Field lines of the section so far. */
  private nf = 0;
  /**
   * The field line being scanned: `[nameStart, nameEnd, valueStart, valueEnd]`, relative to the
   * section start (nothing is consumed before the section ends, so they hold across reads), read
   * by specialField when the line ends. Earlier lines are not kept: HttpHeaders finds the fields
   * of the validated section again when a handler first reads one.
   */
  private readonly field = new Int32Array(4);
  private flags = 0;
  private contentLength = 0;
  private methodName = '';
  private methodKind = M_OTHER;
  private urlStart = 0;
  private urlEnd = 0;
  /** Index into `HTTP/d.d` while the version is read byte by byte. */
  private vi = 0;
  private major = 0;
  private minor = 0;
  /** The last head of this connection parsed by the straight path (see recallHead), made on first use. */
  private memo: HeadMemo | undefined;
  /** The head being completed is the memo's (recallHead said so). */
  private recalled = false;
  /** Heads in a row that the memo did not have; heads left to parse without it (see MEMO_REST). */
  private memoMisses = 0;
  private memoRest = 0;

  // The request whose body is being read.
  private reqUrl = '';
  private reqHeaders: HttpHeaders = HttpHeaders.EMPTY;
  private reqKeepAlive = true;
  private reqUpgrade = false;
  /** Body bytes still to come: of the Content-Length body, or of the current chunk. */
  private remaining = 0;

  // Chunked body.
  private cs = C_SIZE_START;
  private chunkSize = 0;
  private sizeDigits = 0;
  private extBytes = 0;
  private bodyLength = 0;
  private pieces: Buffer[] | null = null;
  /** The current request was emitted at its head; its body goes out in chunks (streamBodies). */
  private streaming = false;

  /**
   * What the server stage was told of the request being received (see signalProgress): 0 nothing,
   * S_HEAD_SENT its head started, S_BODY_SENT its body is awaited.
   */
  private progress = 0;

  constructor(options: HttpRequestDecoderOptions = {}) {
    super();
    checkOptions('HttpRequestDecoder', options, HTTP_REQUEST_DECODER_OPTIONS);
    this.maxHeaderSize = optionalInt('maxHeaderSize', options.maxHeaderSize, 16 * 1024, 1);
    this.maxUrlLength = optionalInt('maxUrlLength', options.maxUrlLength, 8 * 1024, 1);
    this.maxHeaders = optionalInt('maxHeaders', options.maxHeaders, 100, 1);
    this.maxBodySize = optionalInt('maxBodySize', options.maxBodySize, 1024 * 1024, 0);
    const unknown: unknown = options.allowUnknownMethods;
    if (unknown !== undefined && typeof unknown !== 'boolean') {
      throw new InvalidOptionError('allowUnknownMethods', `must be a boolean, got ${String(unknown)}`);
    }
    this.allowUnknownMethods = unknown ?? false;
    const stream: unknown = options.streamBodies;
    if (stream !== undefined && typeof stream !== 'boolean') {
      throw new InvalidOptionError('streamBodies', `must be a boolean, got ${String(stream)}`);
    }
    this.streamBodies = stream ?? false;
    const host: unknown = options.requireHostHeader;
    if (host !== undefined && typeof host !== 'boolean') {
      throw new InvalidOptionError('requireHostHeader', `must be a boolean, got ${String(host)}`);
    }
    this.requireHostHeader = host ?? true;
  }

  protected override decode(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const entry = input.start;
    this.origin = this.consumed - entry;
    try {
      this.step(ctx, input, out);
    } finally {
      this.consumed += input.start - entry;
    }
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    super.onRead(ctx, msg);
    // The read's requests have gone on: say whether one is left half-received (one compare per
    // read when none is).
    const phase = this.phase;
    if (phase === P_HEAD || (phase >= P_BODY && phase <= P_TRAILERS)) this.signalProgress(ctx, phase);
  }

  /**
   * Tells the server stage, which owns the connection's clocks (the keep-alive, head and request
   * timeouts, as undici keeps `headersTimeout` out of its parser), that a request is under way:
   * its first bytes came in this read (`HttpRequestProgress.HEAD`: the keep-alive timer must not
   * cut it, the head timeout starts), or its head is complete and its body is awaited
   * (`HttpRequestProgress.BODY`). At the end of a read, after the requests it completed, and once
   * per request and phase: a request whole in one read costs nothing here.
   */
  private signalProgress(ctx: HandlerContext, phase: number): void {
    if (phase === P_HEAD) {
      if (this.progress !== 0) return;
      this.progress = S_HEAD_SENT;
      ctx.fireUserEvent(HttpRequestProgress.HEAD);
    } else if (this.progress !== S_BODY_SENT) {
      this.progress = S_BODY_SENT;
      ctx.fireUserEvent(HttpRequestProgress.BODY);
    }
  }

  /** Advances through as many phases as the input allows; returns after one request. */
  private step(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    for (;;) {
      switch (this.phase) {
        case P_IDLE: {
          // RFC 9112 §2.2: empty lines before a request line are ignored (llhttp skips any CR and
          // LF here, in strict mode too). They are consumed at once and do not start the header
          // timer, so a client that ends a body with an extra CRLF is not timed out while idle.
          const buf = input.buf;
          const end = input.end;
          let p = input.start;
          while (p < end && (buf[p] === CR || buf[p] === LF)) p++;
          input.skip(p - input.start);
          if (p === end) return;
          this.startHead();
          this.phase = P_HEAD;
          this.progress = 0;
          continue;
        }
        case P_HEAD: {
          // A head's first look tries the straight path; a head that came in pieces goes on in
          // the state machine where the last read left it.
          let length = this.hp === 0 && this.hs === S_METHOD ? this.firstLook(input) : -1;
          if (length < 0) length = this.scanHead(input, false);
          if (length < 0) return;
          if (this.headDone(ctx, input, out, length)) return;
          continue;
        }
        case P_BODY: {
          if (this.streaming) {
            // What is here of the body goes out now.
            const n = Math.min(this.remaining, input.end - input.start);
            if (n === 0) return;
            this.remaining -= n;
            const data = input.take(n);
            if (this.remaining === 0) this.endStream(out, data, HttpHeaders.EMPTY);
            else out.push(new HttpBodyChunk(data, false, HttpHeaders.EMPTY));
            return;
          }
          if (input.end - input.start < this.remaining) return;
          this.emit(ctx, out, input.take(this.remaining), HttpHeaders.EMPTY);
          return;
        }
        case P_CHUNKED: {
          const last = this.scanChunks(input);
          if (this.streaming && this.pieces !== null) {
            for (const piece of this.pieces) out.push(new HttpBodyChunk(piece, false, HttpHeaders.EMPTY));
            this.pieces = null;
          }
          if (!last) return;
          continue;
        }
        case P_TRAILERS: {
          const length = this.scanHead(input, true);
          if (length < 0) return;
          const nf = this.nf;
          const trailers = HttpHeaders.take(input, length, nf, false);
          if (this.streaming) {
            this.endStream(out, EMPTY, trailers);
            return;
          }
          const pieces = this.pieces;
          this.pieces = null;
          const body =
            pieces === null
              ? EMPTY
              : pieces.length === 1
                ? (pieces[0] as Buffer)
                : Buffer.concat(pieces, this.bodyLength);
          this.emit(ctx, out, body, trailers);
          return;
        }
        case P_CLOSED: {
          // llhttp strict (CLOSED_CONNECTION): after a request that closes the connection only
          // empty lines may follow; anything else is an error, reported after that request.
          const buf = input.buf;
          const end = input.end;
          let p = input.start;
          while (p < end && (buf[p] === CR || buf[p] === LF)) p++;
          if (p < end) throw this.fail(input, 400, 'HPE_CLOSED_CONNECTION', 'data after `Connection: close`', p);
          input.skip(p - input.start);
          return;
        }
        case P_DEAD:
          input.skip(input.end - input.start);
          return;
        default:
          // P_UPGRADED: removed from the pipeline, so no more input comes here.
          return;
      }
    }
  }

  private startHead(): void {
    this.hp = 0;
    this.hs = S_METHOD;
    this.nf = 0;
    this.flags = 0;
    this.contentLength = 0;
    this.vi = 0;
  }

  /**
   * A head's first look: the last head again (recallHead), or the straight path (quickHead), whose
   * head is then remembered — unless the memo rests. Returns the head's length, or -1.
   */
  private firstLook(input: ByteCursor): number {
    if (this.memoRest > 0) {
      const n = this.quickHead(input);
      // The rest's last head is remembered, for the next head to be compared with.
      if (--this.memoRest === 0 && n > 0 && n <= MEMO_MAX_HEAD) this.rememberHead(input, n);
      return n;
    }
    const recalled = this.recallHead(input);
    if (recalled >= 0) {
      this.memoMisses = 0;
      return recalled;
    }
    const n = this.quickHead(input);
    if (n > 0 && n <= MEMO_MAX_HEAD) {
      if (this.memo !== undefined && ++this.memoMisses === MEMO_MAX_MISSES) {
        this.memoMisses = 0;
        this.memoRest = MEMO_REST;
      } else {
        this.rememberHead(input, n);
      }
    }
    return n;
  }

  /**
   * A client sends the same head again and again (a poller, a load balancer's check, an API client,
   * every request of a pipelined benchmark): when the input starts with exactly the bytes of the
   * last head quickHead accepted, parsing them again would give the same result, so take it from
   * the memo. Comparing 4 bytes at a time costs ~15 ns for wrk's 49-byte head where scanning and
   * validating it byte by byte costs ~90. Returns the head's length, or -1 (not the same bytes).
   */
  private recallHead(input: ByteCursor): number {
    const memo = this.memo;
    if (memo === undefined) return -1;
    const n = memo.length;
    const base = input.start;
    if (input.end - base < n) return -1;
    const dv = input.dataView();
    const words = memo.words;
    const last = n - 4;
    for (let i = 0, w = 0; i < last; i += 4, w++) if (dv.getInt32(base + i, true) !== words[w]) return -1;
    if (dv.getInt32(base + last, true) !== memo.tail) return -1;
    this.methodName = memo.methodName;
    this.methodKind = memo.methodKind;
    this.urlStart = memo.urlStart;
    this.urlEnd = memo.urlEnd;
    this.major = 1;
    this.minor = memo.minor;
    this.nf = memo.nf;
    this.flags = memo.flags;
    this.contentLength = memo.contentLength;
    this.recalled = true;
    return n;
  }

  /** Keeps the head quickHead just accepted (`length` bytes, at most MEMO_MAX_HEAD) for recallHead. */
  private rememberHead(input: ByteCursor, length: number): void {
    let memo = this.memo;
    if (memo === undefined) memo = this.memo = new HeadMemo();
    memo.headers = undefined;
    const dv = input.dataView();
    const base = input.start;
    const words = memo.words;
    const last = length - 4;
    for (let i = 0, w = 0; i < last; i += 4, w++) words[w] = dv.getInt32(base + i, true);
    memo.tail = dv.getInt32(base + last, true);
    memo.length = length;
    memo.methodName = this.methodName;
    memo.methodKind = this.methodKind;
    memo.urlStart = this.urlStart;
    memo.urlEnd = this.urlEnd;
    memo.minor = this.minor;
    memo.nf = this.nf;
    memo.flags = this.flags;
    memo.contentLength = this.contentLength;
  }

  /**
   * The usual head, whole in the input: a known method other than CONNECT and PRI, an origin-form
   * target (`/…`), `HTTP/1.1` or `HTTP/1.0`, well-formed field lines, within the limits — parsed
   * in one pass with nothing kept between bytes (the state machine pays a dispatch per state and
   * field loads and stores per byte run: ~25% of a plaintext request's decoding). Returns the
   * head's length as scanHead would, with the same fields set; or -1 for anything else —
   * incomplete, unusual or wrong — after resetting what it set, and scanHead then parses the same
   * bytes from the start and says what is wrong. It throws only what specialField throws for a
   * field line, which scanHead would throw at the same field: every byte before it is valid.
   */
  private quickHead(input: ByteCursor): number {
    const buf = input.buf;
    const base = input.start;
    const end = input.end;
    const max = base + this.maxHeaderSize;
    const limit = end < max ? end : max;
    let p = base;
    const methodStop = Math.min(limit, base + longestMethod + 1);
    while (p < methodStop && TOKEN[buf[p] as number] === 1) p++;
    if (p === methodStop || buf[p] !== SP) return -1;
    const m = knownMethod(buf, base, p);
    if (m === undefined || m.kind !== M_OTHER) return -1;
    p++;
    if (p >= limit || buf[p] !== SLASH) return -1;
    const urlStart = p - base;
    const cap = p + this.maxUrlLength;
    const stop = cap < limit ? cap : limit;
    p++;
    while (p < stop && VCHAR[buf[p] as number] === 1) p++;
    if (p === limit || buf[p] !== SP) return -1;
    const urlEnd = p - base;
    p++;
    if (
      p + 10 > limit ||
      buf[p] !== 0x48 ||
      buf[p + 1] !== 0x54 ||
      buf[p + 2] !== 0x54 ||
      buf[p + 3] !== 0x50 ||
      buf[p + 4] !== SLASH ||
      buf[p + 5] !== 0x31 ||
      buf[p + 6] !== DOT ||
      (buf[p + 7] !== 0x31 && buf[p + 7] !== 0x30) ||
      buf[p + 8] !== CR ||
      buf[p + 9] !== LF
    ) {
      return -1;
    }
    this.methodName = m.name;
    this.methodKind = m.kind;
    this.urlStart = urlStart;
    this.urlEnd = urlEnd;
    this.major = 1;
    this.minor = (buf[p + 7] as number) - 0x30; // specialField reads it (Expect)
    p += 10;
    const f = this.field;
    let nf = 0;
    for (;;) {
      if (p >= limit) break;
      const c = buf[p] as number;
      if (c === CR) {
        if (p + 1 >= limit || buf[p + 1] !== LF) break;
        this.nf = nf;
        return p + 2 - base;
      }
      if (TOKEN[c] !== 1 || nf === this.maxHeaders) break;
      f[0] = p - base;
      p++;
      while (p < limit && TOKEN[buf[p] as number] === 1) p++;
      if (p >= limit || buf[p] !== COLON) break;
      f[1] = p - base;
      p++;
      while (p < limit && (buf[p] === SP || buf[p] === HTAB)) p++;
      const vs = p;
      while (p < limit && FIELD_CHAR[buf[p] as number] === 1) p++;
      if (p + 1 >= limit || buf[p] !== CR || buf[p + 1] !== LF) break;
      let ve = p;
      while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
      f[2] = vs - base;
      f[3] = ve - base;
      this.specialField(input, buf, base);
      nf++;
      p += 2;
    }
    // Not the usual case (or not complete): scanHead starts over, as if this pass had not been.
    this.startHead();
    return -1;
  }

  /**
   * Scans the head (or the trailer section) at `input.start` from where the last call stopped.
   * Returns its length once its final CRLF is in, or -1 to wait for more bytes. Nothing is
   * consumed before the section is complete: the recorded offsets point into it.
   */
  private scanHead(input: ByteCursor, trailer: boolean): number {
    const buf = input.buf;
    const base = input.start;
    const end = input.end;
    const max = base + this.maxHeaderSize;
    const limit = end < max ? end : max;
    const f = this.field;
    let p = base + this.hp;
    let s = this.hs;
    let nf = this.nf;
    let c = 0;
    scan: while (p < limit) {
      switch (s) {
        case S_METHOD: {
          // Without allowUnknownMethods, a token longer than any known method is 501 at its
          // first extra byte (not at a read boundary: the outcome must not depend on the reads).
          const methodLimit = this.allowUnknownMethods ? limit : Math.min(limit, base + longestMethod + 1);
          while (p < methodLimit && TOKEN[buf[p] as number] === 1) p++;
          if (p === base + longestMethod + 1 && !this.allowUnknownMethods) {
            throw this.fail(input, 501, 'HPE_INVALID_METHOD', 'unknown method', base);
          }
          if (p === limit) break scan;
          if (buf[p] !== SP || p === base) {
            throw this.fail(input, 400, 'HPE_INVALID_METHOD', 'invalid character in method', p);
          }
          this.setMethod(input, base, p);
          p++;
          this.urlStart = p - base;
          s = S_URL_START;
          continue;
        }
        case S_URL_START: {
          // The target's form (RFC 9112 §3.2): authority for CONNECT, origin (`/…`) or asterisk,
          // or absolute (`scheme://authority…`) — llhttp's url.ts entry states.
          if (this.methodKind === M_CONNECT) {
            s = S_URL_SERVER;
            continue;
          }
          c = buf[p] as number;
          if (c === SLASH || c === STAR) s = S_URL_PATH;
          else if (ALPHA[c] === 1) s = S_URL_SCHEME;
          else throw this.fail(input, 400, 'HPE_INVALID_URL', 'unexpected start character in the request target', p);
          p++;
          continue;
        }
        case S_URL_PATH: {
          const cap = base + this.urlStart + this.maxUrlLength;
          const stop = cap < limit ? cap : limit;
          while (p < stop && VCHAR[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (p === cap && c !== SP) throw this.uriTooLong(input, base);
          if (c === SP) {
            s = S_URL_END;
            continue;
          }
          if (c === CR) {
            // `GET /` alone is an HTTP/0.9 request, which llhttp accepts; a request has no way
            // to carry version 0.9 here, and its response could not carry a status line.
            throw this.fail(input, 505, 'HPE_INVALID_VERSION', 'HTTP/0.9 requests are not supported', p);
          }
          if (c === LF) throw this.fail(input, 400, 'HPE_CR_EXPECTED', 'bare LF in the request line', p);
          throw this.fail(input, 400, 'HPE_INVALID_URL', 'invalid character in the request target', p);
        }
        case S_URL_SCHEME: {
          const cap = base + this.urlStart + this.maxUrlLength;
          const stop = cap < limit ? cap : limit;
          while (p < stop && ALPHA[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          if (p === cap && buf[p] !== SP) throw this.uriTooLong(input, base);
          if (buf[p] !== COLON) {
            throw this.fail(input, 400, 'HPE_INVALID_URL', 'invalid character in the URL scheme', p);
          }
          p++;
          s = S_URL_SLASH1;
          continue;
        }
        case S_URL_SLASH1:
        case S_URL_SLASH2: {
          if (p === base + this.urlStart + this.maxUrlLength && buf[p] !== SP) throw this.uriTooLong(input, base);
          if (buf[p] !== SLASH) throw this.fail(input, 400, 'HPE_INVALID_URL', 'expected `//` after the URL scheme', p);
          p++;
          s = s === S_URL_SLASH1 ? S_URL_SLASH2 : S_URL_SERVER;
          continue;
        }
        case S_URL_SERVER: {
          const cap = base + this.urlStart + this.maxUrlLength;
          const stop = cap < limit ? cap : limit;
          while (p < stop && SERVER_CHAR[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (p === cap && c !== SP) throw this.uriTooLong(input, base);
          if (c === AT) {
            if ((this.flags & F_URL_AT) !== 0)
              throw this.fail(input, 400, 'HPE_INVALID_URL', 'double `@` in the URL', p);
            this.flags |= F_URL_AT;
            p++;
          } else if (c === SLASH || c === QUESTION) {
            p++;
            s = S_URL_PATH;
          } else if (c === SP && p - base > this.urlStart) {
            s = S_URL_END;
          } else {
            throw this.fail(input, 400, 'HPE_INVALID_URL', 'invalid character in the URL authority', p);
          }
          continue;
        }
        case S_URL_END: {
          // buf[p] is the space after the target (at most maxUrlLength bytes: the URL states
          // stop at the byte after the limit, whatever the reads, and fail there unless it is
          // this space).
          this.urlEnd = p - base;
          p++;
          s = S_VERSION;
          continue;
        }
        case S_VERSION: {
          // The usual case in one test: `HTTP/1.1` or `HTTP/1.0` whole.
          if (
            this.vi === 0 &&
            p + 8 <= limit &&
            buf[p] === 0x48 &&
            buf[p + 1] === 0x54 &&
            buf[p + 2] === 0x54 &&
            buf[p + 3] === 0x50 &&
            buf[p + 4] === SLASH &&
            buf[p + 5] === 0x31 &&
            buf[p + 6] === DOT &&
            (buf[p + 7] === 0x31 || buf[p + 7] === 0x30) &&
            this.methodKind !== M_PRI
          ) {
            this.major = 1;
            this.minor = (buf[p + 7] as number) - 0x30;
            p += 8;
            s = S_LINE_CR;
            continue;
          }
          c = buf[p] as number;
          const vi = this.vi;
          if (vi < 5) {
            // RFC 9112 §2.3: HTTP-name is case-sensitive "HTTP"; RTSP/ICE (which llhttp also
            // parses) are not HTTP.
            if (c !== HTTP_SLASH[vi]) throw this.fail(input, 400, 'HPE_INVALID_CONSTANT', 'expected `HTTP/`', p);
          } else if (vi === 5 || vi === 7) {
            if (c < 0x30 || c > 0x39) throw this.fail(input, 400, 'HPE_INVALID_VERSION', 'invalid HTTP version', p);
            if (vi === 5) this.major = c - 0x30;
            else {
              this.minor = c - 0x30;
              if (this.methodKind === M_PRI) {
                // llhttp pauses on `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (HTTP/2 with prior
                // knowledge): this server speaks HTTP/1.x only.
                throw this.fail(
                  input,
                  505,
                  'HPE_PAUSED_H2_UPGRADE',
                  'HTTP/2 connection preface: HTTP/2 is not supported',
                  p,
                );
              }
              if (this.major !== 1 || this.minor > 1) {
                throw this.fail(
                  input,
                  505,
                  'HPE_INVALID_VERSION',
                  `HTTP/${this.major}.${this.minor} is not supported`,
                  p,
                );
              }
              s = S_LINE_CR;
            }
          } else if (c !== DOT) {
            throw this.fail(input, 400, 'HPE_INVALID_VERSION', 'invalid HTTP version', p);
          }
          this.vi = vi + 1;
          p++;
          continue;
        }
        case S_LINE_CR: {
          if (buf[p] !== CR) throw this.fail(input, 400, 'HPE_INVALID_VERSION', 'expected CRLF after the version', p);
          p++;
          s = S_LINE_LF;
          continue;
        }
        case S_LINE_LF: {
          if (buf[p] !== LF) throw this.fail(input, 400, 'HPE_STRICT', 'expected LF after CR', p);
          p++;
          s = S_FIELD_START;
          continue;
        }
        case S_FIELD_START: {
          c = buf[p] as number;
          if (TOKEN[c] === 1) {
            if (nf === this.maxHeaders) {
              throw this.fail(input, 431, 'HPE_HEADER_OVERFLOW', `more than ${this.maxHeaders} header fields`, p);
            }
            f[0] = p - base;
            p++;
            s = S_FIELD_NAME;
            continue;
          }
          if (c === CR) {
            p++;
            s = S_END_LF;
            continue;
          }
          if (c === SP || c === HTAB) {
            // RFC 9112 §2.2 (whitespace after the start line) and §5.2 (obs-fold): rejected.
            if (nf === 0 && !trailer) {
              throw this.fail(input, 400, 'HPE_UNEXPECTED_SPACE', 'unexpected space after the request line', p);
            }
            throw this.fail(input, 400, 'HPE_INVALID_HEADER_TOKEN', 'line folding (whitespace after a field line)', p);
          }
          throw this.fail(input, 400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header field name', p);
        }
        case S_FIELD_NAME: {
          while (p < limit && TOKEN[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          // RFC 9112 §5.1: no whitespace between the name and the colon.
          if (buf[p] !== COLON) throw this.fail(input, 400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header field char', p);
          f[1] = p - base;
          p++;
          s = S_VALUE_OWS;
          continue;
        }
        case S_VALUE_OWS: {
          while (p < limit && (buf[p] === SP || buf[p] === HTAB)) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (FIELD_CHAR[c] === 1) {
            f[2] = p - base;
            p++;
            s = S_VALUE;
          } else if (c === CR) {
            f[2] = f[3] = p - base;
            p++;
            s = S_EMPTY_VALUE_LF;
          } else {
            throw this.fail(input, 400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value char', p);
          }
          continue;
        }
        case S_VALUE: {
          while (p < limit && FIELD_CHAR[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (c === CR) {
            // Trailing OWS is not part of the value.
            const vs = base + (f[2] as number);
            let ve = p;
            while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
            f[3] = ve - base;
            p++;
            s = S_VALUE_LF;
            continue;
          }
          if (c === LF) throw this.fail(input, 400, 'HPE_CR_EXPECTED', 'missing CR before LF after a header value', p);
          throw this.fail(input, 400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value char', p);
        }
        case S_VALUE_LF:
        case S_EMPTY_VALUE_LF: {
          if (buf[p] !== LF) {
            if (s === S_EMPTY_VALUE_LF) throw this.fail(input, 400, 'HPE_STRICT', 'expected LF after CR', p);
            throw this.fail(input, 400, 'HPE_LF_EXPECTED', 'missing LF after a header value', p);
          }
          if (!trailer) this.specialField(input, buf, base);
          nf++;
          p++;
          s = S_FIELD_START;
          continue;
        }
        default: {
          // S_END_LF
          if (buf[p] !== LF) throw this.fail(input, 400, 'HPE_STRICT', 'expected LF after the header section', p);
          p++;
          this.nf = nf;
          this.hp = 0;
          return p - base;
        }
      }
    }
    this.nf = nf;
    this.hs = s;
    this.hp = p - base;
    if (p === max && end > max) {
      // One more byte would not fit: the section is too long.
      if (!trailer && s < S_FIELD_START) throw this.uriTooLong(input, base);
      throw this.fail(
        input,
        431,
        'HPE_HEADER_OVERFLOW',
        `${trailer ? 'trailer section' : 'request head'} longer than ${this.maxHeaderSize} bytes`,
        p,
      );
    }
    return -1;
  }

  private uriTooLong(input: ByteCursor, base: number): HttpParseError {
    return this.fail(
      input,
      414,
      'HPE_URI_TOO_LONG',
      `request target longer than ${this.maxUrlLength} bytes or request line longer than ${this.maxHeaderSize}`,
      base + this.urlStart,
    );
  }

  /** Identifies the method `buf[from, to)` (a token) without making a string for known ones. */
  private setMethod(input: ByteCursor, from: number, to: number): void {
    const buf = input.buf;
    const m = knownMethod(buf, from, to);
    if (m !== undefined) {
      this.methodName = m.name;
      this.methodKind = m.kind;
      return;
    }
    // RFC 9110 §9.1: an unrecognised method is answered with 501 (Not Implemented).
    if (!this.allowUnknownMethods) throw this.fail(input, 501, 'HPE_INVALID_METHOD', 'unknown method', from);
    this.methodName = buf.toString('latin1', from, to);
    this.methodKind = M_OTHER;
  }

  /**
   * A complete field line of the head (in `field`): the fields that decide framing and connection
   * handling are recognised by length, then bytes, case-insensitively.
   */
  private specialField(input: ByteCursor, buf: Buffer, base: number): void {
    const f = this.field;
    const ns = base + (f[0] as number);
    const vs = base + (f[2] as number);
    const ve = base + (f[3] as number);
    switch (base + (f[1] as number) - ns) {
      case 14:
        if (lowerEq(buf, ns, H_CONTENT_LENGTH)) this.contentLengthField(input, buf, ns, vs, ve);
        return;
      case 17:
        if (lowerEq(buf, ns, H_TRANSFER_ENCODING)) this.transferEncodingField(input, buf, ns, vs, ve);
        return;
      case 10:
        if (lowerEq(buf, ns, H_CONNECTION)) this.connectionField(buf, vs, ve);
        return;
      case 7:
        if (vs < ve && lowerEq(buf, ns, H_UPGRADE)) this.flags |= F_UPGRADE;
        return;
      case 4:
        if (lowerEq(buf, ns, H_HOST)) this.hostField(input, buf, vs, ve);
        return;
      case 6:
        if (lowerEq(buf, ns, H_EXPECT)) {
          if (ve - vs === 12 && lowerEq(buf, vs, T_100_CONTINUE)) this.flags |= F_EXPECT_CONTINUE;
          // RFC 9110 §10.1.1: any other expectation may be answered 417; an HTTP/1.0 server
          // must ignore Expect altogether.
          else if (vs < ve && this.minor === 1) {
            throw this.fail(input, 417, 'HPE_EXPECTATION_FAILED', 'unsupported expectation', vs);
          }
        }
        return;
      default:
        return;
    }
  }

  /**
   * RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host field line or an
   * invalid Host value (and, HTTP/1.1, to one without: see headDone). Two Hosts are how a request
   * reaches one virtual host through a proxy that read the other (request smuggling by host).
   */
  private hostField(input: ByteCursor, buf: Buffer, vs: number, ve: number): void {
    if ((this.flags & F_HOST) !== 0) {
      throw this.fail(input, 400, 'HPE_DUPLICATE_HOST', 'more than one Host field', vs);
    }
    this.flags |= F_HOST;
    let p = vs;
    if (p < ve && buf[p] === OPEN_BRACKET) {
      p++;
      while (p < ve && IP_LITERAL_CHAR[buf[p] as number] === 1) p++;
      if (p === ve || buf[p] !== CLOSE_BRACKET) throw this.fail(input, 400, 'HPE_INVALID_HOST', 'invalid Host', p);
      p++;
    } else {
      while (p < ve && REG_NAME_CHAR[buf[p] as number] === 1) p++;
    }
    if (p === ve) return;
    if (buf[p] !== COLON) throw this.fail(input, 400, 'HPE_INVALID_HOST', 'invalid character in Host', p);
    for (p++; p < ve; p++) {
      const d = buf[p] as number;
      if (d < 0x30 || d > 0x39) throw this.fail(input, 400, 'HPE_INVALID_HOST', 'invalid port in Host', p);
    }
  }

  private contentLengthField(input: ByteCursor, buf: Buffer, ns: number, vs: number, ve: number): void {
    // RFC 9112 §6.3 (smuggling): Content-Length with Transfer-Encoding is an error (llhttp 9).
    if ((this.flags & F_TRANSFER_ENCODING) !== 0) {
      throw this.fail(
        input,
        400,
        'HPE_INVALID_CONTENT_LENGTH',
        "Content-Length can't be present with Transfer-Encoding",
        ns,
      );
    }
    if (vs === ve) throw this.fail(input, 400, 'HPE_INVALID_CONTENT_LENGTH', 'empty Content-Length', vs);
    // 1*DIGIT only: no sign, no list, no inner whitespace.
    let n = 0;
    for (let q = vs; q < ve; q++) {
      const d = (buf[q] as number) - 0x30;
      if (d < 0 || d > 9)
        throw this.fail(input, 400, 'HPE_INVALID_CONTENT_LENGTH', 'invalid character in Content-Length', q);
      n = n * 10 + d;
      if (n > Number.MAX_SAFE_INTEGER)
        throw this.fail(input, 400, 'HPE_INVALID_CONTENT_LENGTH', 'Content-Length overflow', q);
    }
    if ((this.flags & F_CONTENT_LENGTH) !== 0 && n !== this.contentLength) {
      throw this.fail(input, 400, 'HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting Content-Length values', vs);
    }
    this.flags |= F_CONTENT_LENGTH;
    this.contentLength = n;
  }

  private transferEncodingField(input: ByteCursor, buf: Buffer, ns: number, vs: number, ve: number): void {
    if ((this.flags & F_CONTENT_LENGTH) !== 0) {
      throw this.fail(
        input,
        400,
        'HPE_INVALID_TRANSFER_ENCODING',
        "Transfer-Encoding can't be present with Content-Length",
        ns,
      );
    }
    this.flags |= F_TRANSFER_ENCODING;
    // The codings of every Transfer-Encoding field form one list (RFC 9110 §5.3); chunked must
    // come last and only once (RFC 9112 §6.1) — anything after it is an error at once, as in llhttp.
    for (let q = nextListElement(buf, vs, ve); q >= 0; q = nextListElement(buf, q, ve)) {
      const { start, end } = listElement;
      if ((this.flags & F_CHUNKED) !== 0) {
        throw this.fail(input, 400, 'HPE_INVALID_TRANSFER_ENCODING', 'a transfer coding after chunked', start);
      }
      if (end - start === 7 && lowerEq(buf, start, T_CHUNKED)) this.flags |= F_CHUNKED;
    }
  }

  private connectionField(buf: Buffer, vs: number, ve: number): void {
    for (let q = nextListElement(buf, vs, ve); q >= 0; q = nextListElement(buf, q, ve)) {
      const { start, end } = listElement;
      const n = end - start;
      if (n === 5 && lowerEq(buf, start, T_CLOSE)) this.flags |= F_CONN_CLOSE;
      else if (n === 10 && lowerEq(buf, start, T_KEEP_ALIVE)) this.flags |= F_CONN_KEEP_ALIVE;
      else if (n === 7 && lowerEq(buf, start, T_UPGRADE)) this.flags |= F_CONN_UPGRADE;
    }
  }

  /**
   * The head (`length` bytes at `input.start`) is complete: decides the framing, takes the head
   * block, and emits the request when it has no body. Returns whether a request was emitted.
   */
  private headDone(ctx: HandlerContext, input: ByteCursor, out: unknown[], length: number): boolean {
    const flags = this.flags;
    const recalled = this.recalled;
    this.recalled = false;
    const base = input.start;
    const minor = this.minor;
    const connect = this.methodKind === M_CONNECT;
    if (minor === 1 && (flags & F_HOST) === 0 && this.requireHostHeader) {
      // RFC 9112 §3.2: HTTP/1.1 requests carry Host (empty when the target has no authority).
      throw this.fail(input, 400, 'HPE_MISSING_HOST', 'HTTP/1.1 request without a Host field', base + length - 2);
    }
    // CONNECT has no content (RFC 9110 §9.3.6) and, like an upgrade, hands the connection over
    // right after its head; llhttp ignores its Content-Length too.
    let framing = 0; // 0 none, 1 Content-Length, 2 chunked
    if (!connect) {
      if ((flags & F_TRANSFER_ENCODING) !== 0) {
        // RFC 9112 §6.3: a request whose final transfer coding is not chunked has no reliable length.
        if ((flags & F_CHUNKED) === 0) {
          throw this.fail(
            input,
            400,
            'HPE_INVALID_TRANSFER_ENCODING',
            'request has invalid Transfer-Encoding',
            base + length,
          );
        }
        framing = 2;
      } else if (this.contentLength > 0) {
        if (this.contentLength > this.maxBodySize) {
          throw this.fail(
            input,
            413,
            'HPE_BODY_TOO_LARGE',
            `Content-Length ${this.contentLength} exceeds the maximum body size of ${this.maxBodySize}`,
            base + length,
          );
        }
        framing = 1;
      }
    }
    // RFC 9110 §7.8: Upgrade needs `Connection: upgrade`, and is ignored in an HTTP/1.0 request.
    const upgrade = connect || (minor === 1 && (flags & (F_CONN_UPGRADE | F_UPGRADE)) === (F_CONN_UPGRADE | F_UPGRADE));
    let keepAlive =
      minor === 1 ? (flags & F_CONN_CLOSE) === 0 : (flags & (F_CONN_KEEP_ALIVE | F_CONN_CLOSE)) === F_CONN_KEEP_ALIVE;
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing: close after this request.
    if (minor === 0 && (flags & F_TRANSFER_ENCODING) !== 0) keepAlive = false;
    let url: string;
    let headers: HttpHeaders;
    if (recalled) {
      const memo = this.memo as HeadMemo;
      if (memo.headers === undefined) {
        memo.url = this.urlString(input.buf, base + this.urlStart, base + this.urlEnd);
        memo.headers = HttpHeaders.copy(input, length, this.nf, true);
      } else {
        input.skip(length);
      }
      url = memo.url;
      headers = memo.headers;
    } else {
      url = this.urlString(input.buf, base + this.urlStart, base + this.urlEnd);
      headers = HttpHeaders.take(input, length, this.nf, true);
    }
    if (framing === 0) {
      // No body: straight out, without parking the head in this (long-lived) decoder's fields.
      this.emitRequest(ctx, out, url, headers, keepAlive, upgrade, EMPTY, HttpHeaders.EMPTY);
      return true;
    }
    if ((flags & F_EXPECT_CONTINUE) !== 0 && minor === 1) {
      // The handler decides whether to send `100 Continue` (or a final status instead).
      ctx.fireUserEvent(new HttpExpectContinueEvent(this.methodName, url));
    }
    this.reqUrl = url;
    this.reqHeaders = headers;
    this.reqKeepAlive = keepAlive;
    this.reqUpgrade = upgrade;
    if (this.streamBodies && !upgrade) {
      // The request goes out now; its body follows in chunks (an upgrade's body is not streamed:
      // the connection changes hands right after it).
      this.streaming = true;
      this.reqHeaders = HttpHeaders.EMPTY;
      const version = this.minor === 1 ? '1.1' : '1.0';
      out.push(
        new HttpRequest(this.methodName, url, version, headers, EMPTY, HttpHeaders.EMPTY, keepAlive, false, true),
      );
    }
    if (framing === 1) {
      this.remaining = this.contentLength;
      this.phase = P_BODY;
    } else {
      this.cs = C_SIZE_START;
      this.bodyLength = 0;
      this.extBytes = 0;
      this.pieces = null;
      this.phase = P_CHUNKED;
    }
    return false;
  }

  /**
   * Reads chunk framing and data from `input.start`, consuming as it goes (data becomes views,
   * joined at the end). Returns true when the last chunk's line is read (trailers next).
   */
  private scanChunks(input: ByteCursor): boolean {
    const buf = input.buf;
    const end = input.end;
    let p = input.start;
    let s = this.cs;
    let c = 0;
    scan: while (p < end) {
      switch (s) {
        case C_SIZE_START:
          if ((HEX[buf[p] as number] as number) < 0) {
            throw this.fail(input, 400, 'HPE_INVALID_CHUNK_SIZE', 'invalid character in chunk size', p);
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
              throw this.fail(
                input,
                413,
                'HPE_BODY_TOO_LARGE',
                `chunked body exceeds the maximum body size of ${this.maxBodySize}`,
                p,
              );
            }
            if (++digits > MAX_CHUNK_SIZE_DIGITS) {
              throw this.fail(input, 400, 'HPE_INVALID_CHUNK_SIZE', 'chunk size has too many digits', p);
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
          else throw this.fail(input, 400, 'HPE_INVALID_CHUNK_SIZE', 'invalid character in chunk size', p);
          p++;
          continue;
        }
        case C_EXT_NAME_START:
          // chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), no BWS in strict mode.
          if (TOKEN[buf[p] as number] !== 1) {
            throw this.fail(input, 400, 'HPE_STRICT', 'invalid character in chunk extensions', p);
          }
          p = this.extension(input, p + 1, 1);
          s = C_EXT_NAME;
          continue;
        case C_EXT_NAME:
        case C_EXT_VALUE: {
          const from = p;
          while (p < end && TOKEN[buf[p] as number] === 1) p++;
          this.extension(input, p, p - from);
          if (p === end) break scan;
          c = buf[p] as number;
          if (c === SEMICOLON) s = C_EXT_NAME_START;
          else if (c === CR) s = C_SIZE_LF;
          else if (c === EQUALS && s === C_EXT_NAME) s = C_EXT_VALUE_START;
          else throw this.fail(input, 400, 'HPE_STRICT', 'invalid character in chunk extensions', p);
          p = this.extension(input, p + 1, 1);
          continue;
        }
        case C_EXT_VALUE_START:
          c = buf[p] as number;
          if (c === DQUOTE) s = C_EXT_QUOTED;
          else if (TOKEN[c] === 1) s = C_EXT_VALUE;
          else throw this.fail(input, 400, 'HPE_STRICT', 'invalid character in chunk extension value', p);
          p = this.extension(input, p + 1, 1);
          continue;
        case C_EXT_QUOTED: {
          const from = p;
          while (p < end && QDTEXT[buf[p] as number] === 1) p++;
          this.extension(input, p, p - from);
          if (p === end) break scan;
          c = buf[p] as number;
          if (c === DQUOTE) s = C_EXT_QUOTED_END;
          else if (c === BACKSLASH) s = C_EXT_QUOTED_PAIR;
          else throw this.fail(input, 400, 'HPE_STRICT', 'invalid character in chunk extensions quoted value', p);
          p = this.extension(input, p + 1, 1);
          continue;
        }
        case C_EXT_QUOTED_PAIR:
          if (QUOTED_PAIR[buf[p] as number] !== 1) {
            throw this.fail(input, 400, 'HPE_STRICT', 'invalid quoted-pair in chunk extensions quoted value', p);
          }
          p = this.extension(input, p + 1, 1);
          s = C_EXT_QUOTED;
          continue;
        case C_EXT_QUOTED_END:
          c = buf[p] as number;
          if (c === SEMICOLON) s = C_EXT_NAME_START;
          else if (c === CR) s = C_SIZE_LF;
          else throw this.fail(input, 400, 'HPE_STRICT', 'invalid character after a chunk extension quoted value', p);
          p = this.extension(input, p + 1, 1);
          continue;
        case C_SIZE_LF:
          if (buf[p] !== LF) throw this.fail(input, 400, 'HPE_STRICT', 'expected LF after chunk size', p);
          p++;
          if (this.chunkSize === 0) {
            // The last chunk: the trailer section follows (possibly just its empty line).
            input.skip(p - input.start);
            this.cs = C_SIZE_START;
            this.phase = P_TRAILERS;
            this.hp = 0;
            this.hs = S_FIELD_START;
            this.nf = 0;
            return true;
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
          if (buf[p] !== CR) throw this.fail(input, 400, 'HPE_STRICT', 'expected CRLF after chunk data', p);
          p++;
          s = C_DATA_LF;
          continue;
        default:
          // C_DATA_LF
          if (buf[p] !== LF) throw this.fail(input, 400, 'HPE_STRICT', 'expected LF after chunk data', p);
          p++;
          s = C_SIZE_START;
          continue;
      }
    }
    input.skip(p - input.start);
    this.cs = s;
    return false;
  }

  /**
   * Counts the `n` bytes of chunk extensions that end before `to`, which no limit on the body
   * covers: Node's HPE_CHUNK_EXTENSIONS_OVERFLOW (CVE-2024-22019) caps them per message. The error
   * points at the first byte over the cap, however the reads cut the line. Returns `to`.
   */
  private extension(input: ByteCursor, to: number, n: number): number {
    this.extBytes += n;
    if (this.extBytes > this.maxHeaderSize) {
      throw this.fail(
        input,
        413,
        'HPE_CHUNK_EXTENSIONS_OVERFLOW',
        `chunk extensions longer than ${this.maxHeaderSize} bytes`,
        to - (this.extBytes - this.maxHeaderSize),
      );
    }
    return to;
  }

  /**
   * The request target as a string. Clients tend to ask for the same path again and again (a
   * benchmark, a poller, a health check, every connection of a load balancer's probe): when the
   * bytes match the last URL this thread decoded, its string is reused instead of decoding a new
   * one (~50 ns). The comparison is against a copy of its bytes: typed-array loads, half the cost
   * of `charCodeAt` on the string.
   */
  private urlString(buf: Buffer, from: number, to: number): string {
    const n = to - from;
    if (n === lastUrlLength) {
      let i = 0;
      while (i < n && lastUrlBytes[i] === buf[from + i]) i++;
      if (i === n) return lastUrl;
    }
    const url = buf.toString('latin1', from, to);
    if (n <= URL_CACHE_BYTES) {
      for (let i = 0; i < n; i++) lastUrlBytes[i] = buf[from + i] as number;
      lastUrlLength = n;
      lastUrl = url;
    }
    return url;
  }

  /** Emits the request whose head is pending, and decides what the connection does next. */
  private emit(ctx: HandlerContext, out: unknown[], body: Buffer, trailers: HttpHeaders): void {
    const headers = this.reqHeaders;
    this.reqHeaders = HttpHeaders.EMPTY;
    this.emitRequest(ctx, out, this.reqUrl, headers, this.reqKeepAlive, this.reqUpgrade, body, trailers);
  }

  /** Emits a request, and decides what the connection does next. */
  private emitRequest(
    ctx: HandlerContext,
    out: unknown[],
    url: string,
    headers: HttpHeaders,
    keepAlive: boolean,
    upgrade: boolean,
    body: Buffer,
    trailers: HttpHeaders,
  ): void {
    // Built here rather than in a helper shared with the streamed path: this is inlined into the
    // per-request path (headDone), and an extra call level cost ~10 ns per pipelined request.
    const version = this.minor === 1 ? '1.1' : '1.0';
    out.push(
      new HttpRequest(this.methodName, url, version, headers, body, trailers, keepAlive, upgrade, false, undefined),
    );
    if (upgrade) {
      // The bytes after the request belong to another protocol: leave the pipeline, and the base
      // class passes what is left of the input on to the next handler, after this request.
      this.phase = P_UPGRADED;
      ctx.pipeline.remove(this);
    } else {
      this.phase = keepAlive ? P_IDLE : P_CLOSED;
    }
  }

  /** The last chunk of a streamed body: the request is whole. */
  private endStream(out: unknown[], data: Buffer, trailers: HttpHeaders): void {
    this.streaming = false;
    out.push(new HttpBodyChunk(data, true, trailers));
    this.phase = this.reqKeepAlive ? P_IDLE : P_CLOSED;
  }

  /** Records an error at `p` (an index in `input.buf`), drops the rest of the stream, and returns the error to throw. */
  private fail(input: ByteCursor, status: number, code: string, message: string, p: number): HttpParseError {
    const offset = this.origin + p;
    this.phase = P_DEAD;
    this.pieces = null;
    this.reqHeaders = HttpHeaders.EMPTY;
    input.skip(input.end - input.start);
    return new HttpParseError(status, code, `${message} (at byte ${offset} of the stream)`, offset);
  }
}
