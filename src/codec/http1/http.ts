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
import { markClientSpeaksFirst } from '../../pipeline/speaks-first.js';
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
 * The HTTP/1.1 server as a pipeline factory for `Server.listen({ pipeline })`: an
 * `HttpRequestDecoder` then an `HttpServerHandler` calling `handler` — a function `(req, res) => …`,
 * or a `router()` — for each request. Keep-alive, pipelining with answers in request order, limits
 * answered 400/408/413/414/431 and a close, `Expect: 100-continue` and upgrades (docs/http.md).
 *
 * The handler may answer at once or later (a returned promise is watched: a rejection, like a
 * throw, becomes a 500 and is logged; the worker never dies of it). Options are checked now, once
 * — `InvalidOptionError` for a bad value or an unknown key — so a bad limit fails `http()` and
 * `listen()`, not each connection; every connection shares the checked object.
 *
 * @example
 * ```ts
 * import { http, Server } from 'multireactor';
 *
 * await Server.listen({
 *   port: 8080,
 *   pipeline: http(
 *     (req, res) => {
 *       if (req.path === '/plaintext') res.setHeader('Content-Type', 'text/plain').end('Hello, World!');
 *       else if (req.path === '/json') res.json({ message: 'Hello, World!' });
 *       else res.writeHead(404).end();
 *     },
 *     { keepAliveTimeout: 10_000, maxBodySize: 64 * 1024 },
 *   ),
 * });
 * ```
 */
export function http(handler: HttpHandler | Router, options: HttpOptions = {}): () => Pipeline {
  const fn = handler instanceof Router ? handler.handle : handler;
  if (typeof fn !== 'function')
    throw new TypeError('http(handler): handler must be a function (req, res) => … or a router()');
  // Throws InvalidOptionError for an unknown key or a bad value.
  const { decoder, server } = splitHttpOptions('http', options);
  // The server's responses are encoded and staged there, whichever connection answers.
  const stage = new ResponseStage();
  // The client sends the request, the server only answers (RFC 9112 §2.1): listeners may defer
  // accepting a connection until its request arrives (`deferAccept`).
  return markClientSpeaksFirst(() =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder(decoder))
      .addLast('http', new HttpServerHandler(fn, server, stage)),
  );
}
