/**
 * `http(handler)`: the HTTP/1.1 server pipeline, ready for `Server.listen`.
 *
 * ```ts
 * await Server.listen({
 *   port: 8080,
 *   pipeline: http((req, res) => {
 *     if (req.path === '/plaintext') res.setHeader('Content-Type', 'text/plain').end('Hello, World!');
 *     else res.writeHead(404).end();
 *   }),
 * });
 * ```
 */
import { checkOptions, type KnownKeys, type OptionKeys, pickOptions } from '../../common/options.js';
import { Pipeline } from '../../pipeline/pipeline.js';
import { HTTP_REQUEST_DECODER_OPTIONS, HttpRequestDecoder, type HttpRequestDecoderOptions } from './request-decoder.js';
import {
  HTTP_SERVER_HANDLER_OPTIONS,
  type HttpHandler,
  HttpServerHandler,
  type HttpServerHandlerOptions,
} from './server.js';

/** Decoder limits and server behaviour; every field has a default (docs/http.md). */
export interface HttpOptions extends HttpRequestDecoderOptions, HttpServerHandlerOptions {}

/** The keys of `HttpOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_OPTIONS = {
  ...HTTP_REQUEST_DECODER_OPTIONS,
  ...HTTP_SERVER_HANDLER_OPTIONS,
} as const satisfies OptionKeys<HttpOptions>;

/**
 * Checks the keys of `options` (those of `known`: `http()`'s, or a larger set), splits them between
 * the decoder and the server handler — each checks its own keys on every connection — and builds
 * both once, so that a bad value fails now (`listen()`), not each connection.
 */
export function splitHttpOptions(
  owner: string,
  options: HttpOptions,
  known: KnownKeys = HTTP_OPTIONS,
): { decoder: HttpRequestDecoderOptions; server: HttpServerHandlerOptions } {
  checkOptions(owner, options, known);
  const decoder = pickOptions<HttpRequestDecoderOptions>(options, HTTP_REQUEST_DECODER_OPTIONS);
  const server = pickOptions<HttpServerHandlerOptions>(options, HTTP_SERVER_HANDLER_OPTIONS);
  // Both throw InvalidOptionError for a bad option.
  new HttpRequestDecoder(decoder);
  new HttpServerHandler(() => {}, server);
  return { decoder, server };
}

/**
 * A pipeline factory: an `HttpRequestDecoder` then an `HttpServerHandler` calling `handler` for
 * each request. Options are validated now, so a bad limit fails `listen()`, not each connection.
 */
export function http(handler: HttpHandler, options: HttpOptions = {}): () => Pipeline {
  if (typeof handler !== 'function') throw new TypeError('http(handler): handler must be a function (req, res) => …');
  const { decoder, server } = splitHttpOptions('http', options);
  return () =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder(decoder))
      .addLast('http', new HttpServerHandler(handler, server));
}
