/**
 * The HTTP/1.1 request decoder: bytes → `HttpRequest`, strict as llhttp's strict mode (RFC 9112).
 *
 * It drives a request through its phases — empty lines before it, its head, its body (by
 * Content-Length, or chunked, then its trailer section), and what may follow it — and decides the
 * framing, keep-alive and upgrade from what the head said. The bytes themselves are read by two
 * scanners: the head scanner (head-scanner.ts: request line and fields, or a trailer section, in
 * one strict pass of range scans that stops at the end of a read and goes on in the next) and the
 * chunked-body scanner (chunked.ts). Malformed input is rejected as soon as the offending byte
 * arrives, as llhttp does.
 *
 * The head stays in the decoder's input until it is complete, then becomes one owned block with
 * `input.takeSpan`: the request's headers are that block, whose field offsets are found on first
 * use (headers.ts). A `Content-Length` body is taken whole once it has arrived (`take`: no copy
 * beyond the per-read one); a chunked body is consumed chunk by chunk and joined once at its end.
 *
 * What a connection's decoder keeps is small, and nothing of a request while it is idle: the
 * options are one object shared by every connection of a server (`HttpDecoderConfig`); a head
 * whole in one read is scanned by the thread's shared scanner, and a connection gets a scanner of
 * its own only while a head spans reads; a request whose body is awaited has a `PendingRequest`
 * until it is emitted.
 *
 * After an error the stream cannot be resynchronised (where would the next request start?), so
 * the decoder discards everything that follows: one `HttpParseError` per connection, then silence.
 * The server answers the error's `statusCode` and closes.
 */
import { Buffer } from 'node:buffer';
import { bool, checkOptions, type OptionKeys, optionalInt } from '../../common/options.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';
import { type ByteCursor, ByteToMessageDecoder } from '../byte-to-message-decoder.js';
import { HttpBodyChunk } from './body.js';
import { CR, LF } from './chars.js';
import { CHUNKS_MORE, ChunkedScanner } from './chunked.js';
import {
  F_CHUNKED,
  F_CONN_CLOSE,
  F_CONN_KEEP_ALIVE,
  F_CONN_UPGRADE,
  F_EXPECT_CONTINUE,
  F_HOST,
  F_TRANSFER_ENCODING,
  F_UPGRADE,
  type HeadLimits,
  HeadScanner,
  M_CONNECT,
  SCAN_ERROR,
} from './head-scanner.js';
import { HttpHeaders } from './headers.js';
import { HttpExpectContinueEvent, HttpParseError, HttpRequest, HttpRequestProgress } from './request.js';

/**
 * Limits and strictness of the request decoder (part of `http()`'s options). A request past a
 * limit is answered with the status named on the field, and its connection closed: the decoder
 * never holds more than the limits allow.
 */
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

/**
 * A decoder's options, checked: one object shared by every decoder built from the same options
 * (`http()` makes it once), so that a connection's decoder holds state, not a copy of its limits.
 */
export class HttpDecoderConfig implements HeadLimits {
  readonly maxHeaderSize: number;
  readonly maxUrlLength: number;
  readonly maxHeaders: number;
  readonly maxBodySize: number;
  readonly allowUnknownMethods: boolean;
  readonly streamBodies: boolean;
  readonly requireHostHeader: boolean;

  /** Checks `options` (InvalidOptionError naming the first bad one, or an unknown key). */
  constructor(options: HttpRequestDecoderOptions = {}) {
    checkOptions('HttpRequestDecoder', options, HTTP_REQUEST_DECODER_OPTIONS);
    this.maxHeaderSize = optionalInt('maxHeaderSize', options.maxHeaderSize, 16 * 1024, 1);
    this.maxUrlLength = optionalInt('maxUrlLength', options.maxUrlLength, 8 * 1024, 1);
    this.maxHeaders = optionalInt('maxHeaders', options.maxHeaders, 100, 1);
    this.maxBodySize = optionalInt('maxBodySize', options.maxBodySize, 1024 * 1024, 0);
    this.allowUnknownMethods = bool('allowUnknownMethods', options.allowUnknownMethods, false);
    this.streamBodies = bool('streamBodies', options.streamBodies, false);
    this.requireHostHeader = bool('requireHostHeader', options.requireHostHeader, true);
  }
}

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

const EMPTY = Buffer.alloc(0);

/**
 * The thread's scanner for heads and trailer sections whole in one read: decoding is synchronous
 * and a scan completes (or is copied into the connection's own scanner) before decode returns, so
 * one serves every connection of the thread.
 */
const shared = new HeadScanner();

/** A request whose head is complete and whose body is awaited. */
class PendingRequest {
  /** Body bytes still to come (Content-Length). */
  remaining = 0;
  /** The chunked body's scanner (chunked framing), or undefined. */
  chunked: ChunkedScanner | undefined = undefined;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly version: '1.0' | '1.1',
    /** The head's fields; EMPTY once the request went out at its head (streamed). */
    public headers: HttpHeaders,
    readonly keepAlive: boolean,
    readonly upgrade: boolean,
    /** The request was emitted at its head; its body goes out in chunks (streamBodies). */
    readonly streaming: boolean,
  ) {}
}

/**
 * The request target as a string: `latin1Slice` directly (Buffer#toString checks its arguments and
 * dispatches on the encoding first: ~110 against ~70 ns for a short target under load). The head
 * scanner checked every byte of it, all visible ASCII.
 */
function target(buf: Buffer, from: number, to: number): string {
  return (buf as unknown as { latin1Slice(from: number, to: number): string }).latin1Slice(from, to);
}

/**
 * Decodes HTTP/1.0 and HTTP/1.1 requests: one `HttpRequest` per complete message (body received
 * and de-chunked, trailers parsed), in order, however many arrive in one read (pipelining).
 * Malformed input raises one `HttpParseError` (`statusCode` to answer, llhttp-style `code`,
 * stream `offset`), after which the connection's bytes are ignored. See docs/http.md.
 */
export class HttpRequestDecoder extends ByteToMessageDecoder {
  /** The checked options, shared with the other decoders built from them. */
  readonly config: HttpDecoderConfig;
  private phase = P_IDLE;
  /**
   * Bytes consumed from the stream so far; during a `decode`, the stream offset of `input.buf[0]`
   * (what an error's offset counts from). One field for both: a connection's decoder lives long.
   */
  private consumed = 0;
  /**
   * What the server stage was told of the request being received (see signalProgress): 0 nothing,
   * S_HEAD_SENT its head started, S_BODY_SENT its body is awaited.
   */
  private progress = 0;
  /** The scan of a head or trailer section that spans reads; undefined otherwise. */
  private head: HeadScanner | undefined = undefined;
  /** The request whose body is awaited. */
  private req: PendingRequest | undefined = undefined;

  /** `options`, or a config made from them once and shared (what `http()` passes). */
  constructor(options: HttpRequestDecoderOptions | HttpDecoderConfig = {}) {
    super();
    this.config = options instanceof HttpDecoderConfig ? options : new HttpDecoderConfig(options);
  }

  get maxHeaderSize(): number {
    return this.config.maxHeaderSize;
  }
  get maxUrlLength(): number {
    return this.config.maxUrlLength;
  }
  get maxHeaders(): number {
    return this.config.maxHeaders;
  }
  get maxBodySize(): number {
    return this.config.maxBodySize;
  }
  get allowUnknownMethods(): boolean {
    return this.config.allowUnknownMethods;
  }
  get streamBodies(): boolean {
    return this.config.streamBodies;
  }
  get requireHostHeader(): boolean {
    return this.config.requireHostHeader;
  }

  protected override decode(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    this.consumed -= input.start;
    try {
      this.step(ctx, input, out);
    } finally {
      this.consumed += input.start;
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
          this.phase = P_HEAD;
          this.progress = 0;
          continue;
        }
        case P_HEAD: {
          const sc = this.head ?? shared.reset(false);
          const length = sc.scan(input.buf, input.start, input.end, this.config, false);
          if (length < 0) {
            if (length === SCAN_ERROR) throw this.scanFailure(input, sc);
            // The head goes on in the next read: this connection keeps where its scan stopped.
            this.head ??= sc.copyTo(new HeadScanner());
            return;
          }
          this.head = undefined;
          if (this.headDone(ctx, input, out, length, sc)) return;
          continue;
        }
        case P_BODY: {
          const req = this.req as PendingRequest;
          if (req.streaming) {
            // What is here of the body goes out now.
            const n = Math.min(req.remaining, input.end - input.start);
            if (n === 0) return;
            req.remaining -= n;
            const data = input.take(n);
            if (req.remaining === 0) this.endStream(out, data, HttpHeaders.EMPTY);
            else out.push(new HttpBodyChunk(data, false, HttpHeaders.EMPTY));
            return;
          }
          if (input.end - input.start < req.remaining) return;
          this.emitPending(ctx, out, input.take(req.remaining), HttpHeaders.EMPTY);
          return;
        }
        case P_CHUNKED: {
          const req = this.req as PendingRequest;
          const chunked = req.chunked as ChunkedScanner;
          const r = chunked.scan(input);
          if (r === SCAN_ERROR) {
            throw this.fail(input, chunked.errorStatus, chunked.errorCode, chunked.errorMessage, chunked.errorAt);
          }
          if (req.streaming && chunked.pieces !== null) {
            for (const piece of chunked.pieces) out.push(new HttpBodyChunk(piece, false, HttpHeaders.EMPTY));
            chunked.pieces = null;
          }
          if (r === CHUNKS_MORE) return;
          this.phase = P_TRAILERS;
          continue;
        }
        case P_TRAILERS: {
          const sc = this.head ?? shared.reset(true);
          const length = sc.scan(input.buf, input.start, input.end, this.config, true);
          if (length < 0) {
            if (length === SCAN_ERROR) throw this.scanFailure(input, sc);
            this.head ??= sc.copyTo(new HeadScanner());
            return;
          }
          this.head = undefined;
          const trailers = HttpHeaders.take(input, length, sc.nf, false);
          const req = this.req as PendingRequest;
          if (req.streaming) {
            this.endStream(out, EMPTY, trailers);
            return;
          }
          const chunked = req.chunked as ChunkedScanner;
          const pieces = chunked.pieces;
          const body =
            pieces === null
              ? EMPTY
              : pieces.length === 1
                ? (pieces[0] as Buffer)
                : Buffer.concat(pieces, chunked.bodyLength);
          this.emitPending(ctx, out, body, trailers);
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

  /**
   * The head (`length` bytes at `input.start`, scanned by `sc`) is complete: decides the framing,
   * takes the head block, and emits the request when it has no body — or when all of its
   * Content-Length body is here too. Returns whether a request was emitted.
   */
  private headDone(ctx: HandlerContext, input: ByteCursor, out: unknown[], length: number, sc: HeadScanner): boolean {
    const o = this.config;
    const flags = sc.flags;
    const base = input.start;
    const minor = sc.minor;
    const connect = sc.methodKind === M_CONNECT;
    if (minor === 1 && (flags & F_HOST) === 0 && o.requireHostHeader) {
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
      } else if (sc.contentLength > 0) {
        if (sc.contentLength > o.maxBodySize) {
          throw this.fail(
            input,
            413,
            'HPE_BODY_TOO_LARGE',
            `Content-Length ${sc.contentLength} exceeds the maximum body size of ${o.maxBodySize}`,
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
    const url = target(input.buf, base + sc.urlStart, base + sc.urlEnd);
    const method = sc.methodName;
    const version = minor === 1 ? '1.1' : '1.0';
    const headers = HttpHeaders.take(input, length, sc.nf, true);
    if (framing === 0) {
      // No body: straight out, without parking the head in this (long-lived) decoder.
      this.emitRequest(ctx, out, method, url, version, headers, keepAlive, upgrade, EMPTY, HttpHeaders.EMPTY);
      return true;
    }
    if ((flags & F_EXPECT_CONTINUE) !== 0 && minor === 1) {
      // The handler decides whether to send `100 Continue` (or a final status instead).
      ctx.fireUserEvent(new HttpExpectContinueEvent(method, url));
    }
    const streaming = o.streamBodies && !upgrade;
    if (framing === 1 && !streaming && input.end - input.start >= sc.contentLength) {
      // The whole body came with its head (a small POST): out at once, nothing kept.
      const body = input.take(sc.contentLength);
      this.emitRequest(ctx, out, method, url, version, headers, keepAlive, upgrade, body, HttpHeaders.EMPTY);
      return true;
    }
    const req = new PendingRequest(method, url, version, headers, keepAlive, upgrade, streaming);
    this.req = req;
    if (streaming) {
      // The request goes out now; its body follows in chunks (an upgrade's body is not streamed:
      // the connection changes hands right after it).
      req.headers = HttpHeaders.EMPTY;
      out.push(new HttpRequest(method, url, version, headers, EMPTY, HttpHeaders.EMPTY, keepAlive, false, true));
    }
    if (framing === 1) {
      req.remaining = sc.contentLength;
      this.phase = P_BODY;
    } else {
      req.chunked = new ChunkedScanner(o.maxBodySize, o.maxHeaderSize);
      this.phase = P_CHUNKED;
    }
    return false;
  }

  /** Emits the request whose body was awaited, and decides what the connection does next. */
  private emitPending(ctx: HandlerContext, out: unknown[], body: Buffer, trailers: HttpHeaders): void {
    const req = this.req as PendingRequest;
    this.req = undefined;
    this.emitRequest(
      ctx,
      out,
      req.method,
      req.url,
      req.version,
      req.headers,
      req.keepAlive,
      req.upgrade,
      body,
      trailers,
    );
  }

  /** Emits a request, and decides what the connection does next. */
  private emitRequest(
    ctx: HandlerContext,
    out: unknown[],
    method: string,
    url: string,
    version: '1.0' | '1.1',
    headers: HttpHeaders,
    keepAlive: boolean,
    upgrade: boolean,
    body: Buffer,
    trailers: HttpHeaders,
  ): void {
    out.push(new HttpRequest(method, url, version, headers, body, trailers, keepAlive, upgrade, false, undefined));
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
    const req = this.req as PendingRequest;
    this.req = undefined;
    out.push(new HttpBodyChunk(data, true, trailers));
    this.phase = req.keepAlive ? P_IDLE : P_CLOSED;
  }

  private scanFailure(input: ByteCursor, sc: HeadScanner): HttpParseError {
    return this.fail(input, sc.errorStatus, sc.errorCode, sc.errorMessage, sc.errorAt);
  }

  /** Records an error at `p` (an index in `input.buf`), drops the rest of the stream, and returns the error to throw. */
  private fail(input: ByteCursor, status: number, code: string, message: string, p: number): HttpParseError {
    const offset = this.consumed + p;
    this.phase = P_DEAD;
    this.req = undefined;
    this.head = undefined;
    input.skip(input.end - input.start);
    return new HttpParseError(status, code, `${message} (at byte ${offset} of the stream)`, offset);
  }
}
