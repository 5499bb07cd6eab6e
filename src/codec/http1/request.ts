/**
 * What the HTTP/1.1 decoder produces: requests with lazily materialised headers.
 *
 * Header names and values stay bytes in the request's head block (one owned copy per read, see
 * ByteCursor.take) until someone asks for them: `headers.get('host')` compares bytes
 * case-insensitively and decodes only the value it returns. A plaintext benchmark request thus
 * costs one object and one offsets array, not a string per header.
 */
import { Buffer } from 'node:buffer';
import { parse as parseQueryString } from 'node:querystring';
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

/**
 * An error with the HTTP status to answer it with (4xx, 5xx). Thrown by `req.json()` (400 for
 * malformed JSON, 413 past a limit, 415 for another content type) and by handlers that want a
 * status of their own: a handler that throws or rejects with one is answered with `statusCode`
 * and `message` (as plain text) instead of a 500, and it is not logged as a handler failure.
 */
export class HttpError extends Error {
  constructor(
    /** 400–599. */
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
    if (!Number.isInteger(statusCode) || statusCode < 400 || statusCode > 599) {
      throw new RangeError(`HttpError: a status from 400 to 599, got ${statusCode}`);
    }
  }
}

/** The parsed query string: each name's value, or its values in order when it came more than once. */
export type HttpQuery = Record<string, string | string[] | undefined>;

/** What `req.params` is for a request no router matched. */
const NO_PARAMS: Readonly<Record<string, string | undefined>> = Object.freeze(Object.create(null));

/** Options of `req.json()` and `req.text()`. */
export interface BodyReadOptions {
  /** Longest body accepted, in bytes (413 beyond). Default: the server's `maxBodySize`, which already bounds every body. */
  readonly limit?: number;
}

/** `application/json`, or any `+json` media type (RFC 6839), with or without parameters. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * One decoded request, as the `(req, res)` handler gets it: method, target (`url`, `path`,
 * `query`), `headers` (bytes, decoded on first use), the whole `body` — or, with `streamBodies`,
 * `bodyStream` to read as it arrives — and, after a router matched, `params`. The body is the
 * handler's to keep; it is bounded by `maxBodySize` before the handler runs. `text()` and `json()`
 * reject with an `HttpError` that the server answers with its status (400, 413, 415) when the
 * handler lets it propagate.
 */
export class HttpRequest {
  /**
   * The route's parameters when a router matched the request (`/users/:id` → `{ id: '42' }`),
   * decoded; an empty object otherwise.
   */
  params: Readonly<Record<string, string | undefined>> = NO_PARAMS;
  private parsedQuery: HttpQuery | undefined = undefined;

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

  /** The query string as sent (after `?`, without it; before a `#`), or ''. */
  get queryString(): string {
    const url = this.url;
    const q = url.indexOf('?');
    if (q < 0) return '';
    const hash = url.indexOf('#', q);
    return hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash);
  }

  /**
   * The query string parsed, on first use: `?page=2&tag=a&tag=b` → `{ page: '2', tag: ['a', 'b'] }`
   * (`+` and percent-escapes decoded; a name that came more than once has its values in order).
   * A plain object without a prototype, as Express's and node:querystring's: `req.query.page`;
   * `queryString` keeps the raw string, `new URLSearchParams(req.queryString)` reads it another way.
   */
  get query(): HttpQuery {
    let q = this.parsedQuery;
    if (q === undefined) {
      const raw = this.queryString;
      q = this.parsedQuery = (raw === '' ? Object.create(null) : parseQueryString(raw)) as HttpQuery;
    }
    return q;
  }

  /**
   * The body as text (UTF-8 unless the Content-Type names another charset Node knows): the whole
   * body (`body`), or — with `streamBodies` — the stream read to its end. Rejects with HttpError 413
   * past `limit`.
   */
  async text(options: BodyReadOptions = NO_OPTIONS): Promise<string> {
    const bytes = this.bodyStream === undefined ? this.wholeBody(options) : await this.streamedBody(options);
    return bytes.toString(charsetOf(this.headers.get('content-type')));
  }

  /**
   * The body parsed as JSON. Rejects with an HttpError the server answers: 415 when the request's
   * Content-Type is not JSON (`application/json` or a `+json` type), 400 when the body is empty or
   * not valid JSON, 413 past `limit`.
   */
  async json<T = unknown>(options: BodyReadOptions = NO_OPTIONS): Promise<T> {
    const type = this.headers.get('content-type');
    if (type === undefined || !JSON_TYPE.test(type)) {
      throw new HttpError(
        415,
        `expected a JSON body (Content-Type: application/json), got ${type ?? 'no Content-Type'}`,
      );
    }
    // A whole body (no bodyStream) is decoded here and now, without text()'s and the stream
    // reader's awaits, and with the Content-Type already looked up.
    const bytes = this.bodyStream === undefined ? this.wholeBody(options) : await this.streamedBody(options);
    const text = bytes.toString(charsetOf(type));
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      // Whitespace alone is no JSON text (RFC 8259 §2) and fails to parse: told apart from other
      // malformed bodies only here, off the path of the bodies that parse.
      if (text.trim() === '') throw new HttpError(400, 'empty JSON body');
      throw new HttpError(400, `malformed JSON body: ${(err as Error).message}`);
    }
  }

  /** `body`, within `options.limit`. */
  private wholeBody(options: BodyReadOptions): Buffer {
    const limit = bodyLimit(options);
    if (this.body.length > limit) throw new HttpError(413, `request body longer than ${limit} bytes`);
    return this.body;
  }

  /** `bodyStream` read to its end, within `options.limit`. */
  private async streamedBody(options: BodyReadOptions): Promise<Buffer> {
    const limit = bodyLimit(options);
    const stream = this.bodyStream as HttpRequestBody;
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of stream) {
      n += chunk.length;
      if (n > limit) throw new HttpError(413, `request body longer than ${limit} bytes`);
      parts.push(chunk);
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }
}

const NO_OPTIONS: BodyReadOptions = Object.freeze({});

/** The limit of `options`, validated. */
function bodyLimit(options: BodyReadOptions): number {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (!(limit >= 0)) throw new RangeError(`limit must be a non-negative number, got ${String(options.limit)}`);
  return limit;
}

/** The charset a Content-Type names, when Node can decode it; else UTF-8. */
function charsetOf(type: string | undefined): BufferEncoding {
  // No parameters, no charset: the usual `application/json` without a regex.
  if (type === undefined || type.indexOf(';') < 0) return 'utf8';
  const m = type === undefined ? null : /;\s*charset\s*=\s*"?([\w-]+)"?/i.exec(type);
  const name = m?.[1]?.toLowerCase();
  if (name === undefined) return 'utf8';
  if (name === 'iso-8859-1' || name === 'latin1' || name === 'us-ascii') return 'latin1';
  return Buffer.isEncoding(name) ? (name as BufferEncoding) : 'utf8';
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
