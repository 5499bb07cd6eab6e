/**
 * The HTTP/1.1 request encoder of the client side, paired with the response decoder:
 * `HttpClientCodec` writes requests and reads responses on one connection (Netty's
 * `HttpClientCodec`). `httpClient()` (src/client/http.ts) puts it in a pipeline for
 * `Client.connect` and `Pool`.
 *
 * Requests may be pipelined: responses come in request order (RFC 9112 §9.3.2). The encoder
 * tells the decoder which requests were HEAD (no body in the response, whatever its headers say)
 * or CONNECT (a 2xx opens a tunnel).
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../../common/errors.js';
import { checkOptions, describeValue, type OptionKeys, pickOptions } from '../../common/options.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';
import { isToken } from './chars.js';
import {
  EXPECT_CONNECT,
  EXPECT_HEAD,
  EXPECT_NORMAL,
  HTTP_RESPONSE_DECODER_OPTIONS,
  HttpResponseDecoder,
  type HttpResponseDecoderOptions,
} from './response-decoder.js';

/** A request as `HttpClientCodec` writes it. */
export interface HttpClientRequest {
  /** Default `'GET'`. */
  readonly method?: string;
  /** The request target: origin form (`/path?query`). Default `'/'`. */
  readonly path?: string;
  /** Header fields; an array value repeats the field. `Host` and `Content-Length` are added when missing. */
  readonly headers?: Readonly<Record<string, string | number | readonly string[]>>;
  /** The body; `Content-Length` is set from it. */
  readonly body?: string | Uint8Array;
}

/** What `HttpClientCodec` takes: the response decoder's limits and the default `Host`. */
export interface HttpClientCodecOptions extends HttpResponseDecoderOptions {
  /**
   * The `Host` header of requests that carry none (RFC 9112 §3.2 requires one). Default: the
   * address connected to, `ip:port`.
   */
  readonly host?: string;
}

/** The keys of `HttpClientCodecOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_CLIENT_CODEC_OPTIONS = {
  ...HTTP_RESPONSE_DECODER_OPTIONS,
  host: true,
} as const satisfies OptionKeys<HttpClientCodecOptions>;

/** A request target without whitespace or control characters. */
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const BAD_VALUE = /[\r\n\0]/;
/** Methods whose requests announce an empty body with `Content-Length: 0` (RFC 9110 §8.6). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Encodes `HttpClientRequest` objects (bytes pass through as already-encoded requests, which must
 * not be HEAD or CONNECT) and decodes the responses (`HttpResponseDecoder`), telling the decoder
 * which requests were HEAD or CONNECT so that it frames their responses right.
 */
export class HttpClientCodec extends HttpResponseDecoder {
  private host: string | undefined;

  constructor(options: HttpClientCodecOptions = {}) {
    // The decoder gets its share of the options (it checks its own keys).
    super(
      pickOptions(checkOptions('HttpClientCodec', options, HTTP_CLIENT_CODEC_OPTIONS), HTTP_RESPONSE_DECODER_OPTIONS),
    );
    if (options.host !== undefined && (typeof options.host !== 'string' || BAD_VALUE.test(options.host))) {
      throw new InvalidOptionError('host', `must be a header value, got ${describeValue(options.host)}`);
    }
    this.host = options.host;
  }

  write(ctx: HandlerContext, msg: unknown): void {
    if (msg instanceof Uint8Array || typeof msg === 'string') {
      ctx.write(msg);
      return;
    }
    if (msg === null || typeof msg !== 'object') {
      throw new TypeError('HttpClientCodec: write an HttpClientRequest object (or bytes)');
    }
    const req = msg as HttpClientRequest;
    const method = req.method ?? 'GET';
    const path = req.path ?? '/';
    if (!isToken(method)) throw new TypeError(`invalid HTTP method ${JSON.stringify(method)}`);
    if (!TARGET.test(path)) throw new TypeError(`invalid request target ${JSON.stringify(path)}`);
    const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    const headers = req.headers;
    if (headers !== undefined) {
      for (const name of Object.keys(headers)) {
        if (!isToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
        const lower = name.toLowerCase();
        if (lower === 'host') hasHost = true;
        else if (lower === 'content-length' || lower === 'transfer-encoding') hasLength = true;
        const value = headers[name];
        const values = Array.isArray(value) ? (value as readonly string[]) : [String(value)];
        for (const v of values) {
          if (BAD_VALUE.test(v)) throw new TypeError(`invalid value for header ${name}: CR, LF or NUL`);
          head += `${name}: ${v}\r\n`;
        }
      }
    }
    if (!hasHost) head += `Host: ${this.hostFor(ctx)}\r\n`;
    if (!hasLength && (body !== undefined || BODY_METHODS.has(method))) {
      head += `Content-Length: ${body?.byteLength ?? 0}\r\n`;
    }
    head += '\r\n';
    this.expect(method === 'HEAD' ? EXPECT_HEAD : method === 'CONNECT' ? EXPECT_CONNECT : EXPECT_NORMAL);
    const headBytes = Buffer.from(head, 'latin1');
    if (body === undefined || body.byteLength === 0) ctx.write(headBytes);
    else {
      ctx.write(headBytes);
      ctx.write(body);
    }
  }

  private hostFor(ctx: HandlerContext): string {
    if (this.host === undefined) {
      const peer = ctx.channel.remoteAddress;
      this.host =
        peer === undefined
          ? 'localhost'
          : peer.family === 'IPv6'
            ? `[${peer.address}]:${peer.port}`
            : `${peer.address}:${peer.port}`;
    }
    return this.host;
  }
}
