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
import {
  HTTP_REQUEST_DECODER_OPTIONS,
  HttpDecoderConfig,
  HttpRequestDecoder,
  type HttpRequestDecoderOptions,
} from './request-decoder.js';
import { ResponseStage } from './response.js';
import { Router } from './router.js';
import {
  HTTP_SERVER_HANDLER_OPTIONS,
  type HttpHandler,
  HttpServerConfig,
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
 * the decoder and the server handler, and checks each part once into the config every connection's
 * stage shares — so that a bad value fails now (`listen()`), not each connection.
 */
export function splitHttpOptions(
  owner: string,
  options: HttpOptions,
  known: KnownKeys = HTTP_OPTIONS,
): { decoder: HttpDecoderConfig; server: HttpServerConfig } {
  checkOptions(owner, options, known);
  // Both throw InvalidOptionError for a bad option.
  const decoder = new HttpDecoderConfig(pickOptions<HttpRequestDecoderOptions>(options, HTTP_REQUEST_DECODER_OPTIONS));
  const server = new HttpServerConfig(pickOptions<HttpServerHandlerOptions>(options, HTTP_SERVER_HANDLER_OPTIONS));
  return { decoder, server };
}

/**
 * A pipeline factory: an `HttpRequestDecoder` then an `HttpServerHandler` calling `handler` — a
 * function `(req, res) => …`, or a `router()` — for each request. Options are validated now, so a
 * bad limit fails `listen()`, not each connection; the decoder's are checked once and shared by
 * every connection's decoder.
 */
export function http(handler: HttpHandler | Router, options: HttpOptions = {}): () => Pipeline {
  const fn = handler instanceof Router ? handler.handle : handler;
  if (typeof fn !== 'function')
    throw new TypeError('http(handler): handler must be a function (req, res) => … or a router()');
  // Throws InvalidOptionError for an unknown key or a bad value.
  const { decoder, server } = splitHttpOptions('http', options);
  // The server's responses are encoded and staged there, whichever connection answers.
  const stage = new ResponseStage();
  return () =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder(decoder))
      .addLast('http', new HttpServerHandler(fn, server, stage));
}
