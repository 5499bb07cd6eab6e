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
import { Pipeline } from '../../pipeline/pipeline.js';
import { HttpDecoderConfig, HttpRequestDecoder, type HttpRequestDecoderOptions } from './request-decoder.js';
import { ResponseStage } from './response.js';
import { Router } from './router.js';
import { type HttpHandler, HttpServerConfig, HttpServerHandler, type HttpServerHandlerOptions } from './server.js';

/** Decoder limits and server behaviour; every field has a default (docs/http.md). */
export interface HttpOptions extends HttpRequestDecoderOptions, HttpServerHandlerOptions {}

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
  // Both throw InvalidOptionError for a bad option.
  const config = new HttpDecoderConfig(options);
  const serverConfig = new HttpServerConfig(options);
  // The server's responses are encoded and staged there, whichever connection answers.
  const stage = new ResponseStage();
  return () =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder(config))
      .addLast('http', new HttpServerHandler(fn, serverConfig, stage));
}
