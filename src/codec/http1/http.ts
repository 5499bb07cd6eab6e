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
import { HttpRequestDecoder, type HttpRequestDecoderOptions } from './request-decoder.js';
import { type HttpHandler, HttpServerHandler, type HttpServerHandlerOptions } from './server.js';

/** Decoder limits and server behaviour; every field has a default (docs/http.md). */
export interface HttpOptions extends HttpRequestDecoderOptions, HttpServerHandlerOptions {}

/**
 * A pipeline factory: an `HttpRequestDecoder` then an `HttpServerHandler` calling `handler` for
 * each request. Options are validated now, so a bad limit fails `listen()`, not each connection.
 */
export function http(handler: HttpHandler, options: HttpOptions = {}): () => Pipeline {
  if (typeof handler !== 'function') throw new TypeError('http(handler): handler must be a function (req, res) => …');
  // Both throw InvalidOptionError for a bad option.
  new HttpRequestDecoder(options);
  new HttpServerHandler(handler, options);
  return () =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder(options))
      .addLast('http', new HttpServerHandler(handler, options));
}
