/**
 * What the HTTP/1.1 decoder produces: requests with lazily materialised headers.
 *
 * Header names and values stay bytes in the request's head block (one owned copy per read, see
 * ByteCursor.take) until someone asks for them: `headers.get('host')` compares bytes
 * case-insensitively and decodes only the value it returns. A plaintext benchmark request thus
 * costs one object and one offsets array, not a string per header.
 */
import type { Buffer } from 'node:buffer';
import { ProtocolError } from '../../common/errors.js';
import type { HttpRequestBody } from './body.js';
import type { HttpHeaders } from './headers.js';

/** An HTTP protocol violation, with the status the server should answer before closing. */
export class HttpParseError extends ProtocolError {
  /** 400, 408, 413, 414, 417, 431, 501 or 505. */
  readonly statusCode: number;
  /** Position in the connection's byte stream where the problem was found, when known. */
  readonly offset: number | undefined;

  constructor(statusCode: number, code: string, message: string, offset?: number) {
    super(message, { code });
    this.name = 'HttpParseError';
    this.statusCode = statusCode;
    this.offset = offset;
  }
}

/** One decoded request: head, complete body, trailers. */
export class HttpRequest {
  constructor(
    /** The method token, e.g. `GET`. */
    readonly method: string,
    /** The request target as sent (origin form `/path?query`, absolute form, `*`, or authority for CONNECT). */
    readonly url: string,
    /** `'1.0'` or `'1.1'`. */
    readonly httpVersion: '1.0' | '1.1',
    readonly headers: HttpHeaders,
    /** The whole body (empty when there is none); chunked bodies arrive de-chunked. */
    readonly body: Buffer,
    /** Trailer fields of a chunked body (EMPTY when none). */
    readonly trailers: HttpHeaders,
    /** Whether the connection stays open after the response (version defaults and `Connection`). */
    readonly keepAlive: boolean,
    /**
     * An upgrade (`Connection: upgrade` + `Upgrade`) or `CONNECT`: after this request the bytes
     * on the connection are not HTTP any more; they go to the pipeline's next stage.
     */
    readonly upgrade: boolean,
    /**
     * The body comes after the request, as a stream (`streamBodies`): `bodyStream` reads it, and
     * `body` and `trailers` stay empty.
     */
    readonly streamed: boolean = false,
    /** With `streamBodies`, the body of a request that has one, to read as it arrives (set by the server stage). */
    public bodyStream: HttpRequestBody | undefined = undefined,
  ) {}

  /** The path part of the URL (before `?`). */
  get path(): string {
    const q = this.url.indexOf('?');
    return q < 0 ? this.url : this.url.slice(0, q);
  }

  /** The query string (after `?`, without it), or ''. */
  get query(): string {
    const q = this.url.indexOf('?');
    return q < 0 ? '' : this.url.slice(q + 1);
  }
}

/** The decoder saw the head of a request that expects `100 Continue` before its body. */
export class HttpExpectContinueEvent {
  constructor(
    readonly method: string,
    readonly url: string,
  ) {}
}

/**
 * The decoder's word to the server stage, which owns the connection's clocks: fired as a user
 * event at the end of a read that leaves a request incomplete, after the requests that read
 * completed. `HEAD`: the request's first bytes have arrived and its head is not complete — it is
 * not idle any more, and the head timeout runs. `BODY`: its head is complete, its body is not —
 * the request timeout runs on. Once per request and phase; a request whole in one read fires
 * none. The two are shared constants: compare with `===`.
 */
export class HttpRequestProgress {
  static readonly HEAD = new HttpRequestProgress('head');
  static readonly BODY = new HttpRequestProgress('body');

  private constructor(readonly phase: 'head' | 'body') {}
}
