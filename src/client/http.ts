/**
 * `httpClient()`: the HTTP/1.1 client pipeline, ready for `Client.connect` and `Pool`.
 *
 * ```ts
 * const conn = await Client.connect({ host: '127.0.0.1', port: 8080, pipeline: httpClient() });
 * const res = await conn.request<HttpClientResponse>({ method: 'GET', path: '/plaintext' });
 * console.log(res.statusCode, res.headers.get('content-type'), res.text());
 * ```
 */
import { HTTP_CLIENT_CODEC_OPTIONS, HttpClientCodec, type HttpClientCodecOptions } from '../codec/http1/client.js';
import { checkOptions, type OptionKeys, pickOptions } from '../common/options.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { RequestResponseHandler, type RequestResponseOptions } from './request-response.js';

/**
 * What {@link httpClient} takes: the codec's limits ({@link HttpClientCodecOptions}) and the
 * request handler's. Checked when `httpClient()` is called (`InvalidOptionError`).
 */
export interface HttpClientOptions extends HttpClientCodecOptions {
  /** Requests in flight on one connection (pipelined). Default 1024. */
  readonly maxPending?: number;
  /** Default request timeout in ms; 0 waits forever. Default 30 000. */
  readonly timeout?: number;
}

/** The keys of `HttpClientOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_CLIENT_OPTIONS = {
  ...HTTP_CLIENT_CODEC_OPTIONS,
  maxPending: true,
  timeout: true,
} as const satisfies OptionKeys<HttpClientOptions>;

/**
 * A pipeline factory: `HttpClientCodec`, then a `RequestResponseHandler` that matches responses
 * in order (`ids: 'in-order'`). `request()` resolves with an `HttpClientResponse`; a response
 * with `Connection: close` ends the connection after it (requests pipelined behind it reject
 * with `ChannelClosedError`).
 */
export function httpClient(options: HttpClientOptions = {}): () => Pipeline {
  checkOptions('httpClient', options, HTTP_CLIENT_OPTIONS);
  const codec = pickOptions<HttpClientCodecOptions>(options, HTTP_CLIENT_CODEC_OPTIONS);
  const rr: RequestResponseOptions = {
    ids: 'in-order',
    ...pickOptions<RequestResponseOptions>(options, { maxPending: true, timeout: true }),
  };
  // Built once now so that a bad option fails here, not on each connection.
  new HttpClientCodec(codec);
  new RequestResponseHandler(rr);
  return () =>
    new Pipeline()
      .addLast('http-client', new HttpClientCodec(codec))
      .addLast('requests', new RequestResponseHandler(rr));
}
