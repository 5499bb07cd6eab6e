/**
 * Offloading from an HTTP handler: `httpOffload(handler, options)` is `http()` whose handler gets a
 * third argument, `offload(task)`, which runs `task` on the process's thread pool and resolves with
 * its result.
 *
 * ```ts
 * await Server.listen({
 *   port: 8080,
 *   pipeline: httpOffload(
 *     async (req, res, offload) => {
 *       if (req.path === '/plaintext') return res.end('Hello, World!'); // on the loop
 *       res.end(await offload({ rounds: 1000 }, { name: 'hash' })); // on a pool thread
 *     },
 *     { offload: { filename: new URL('./tasks.js', import.meta.url), maxThreads: 2 } },
 *   ),
 * });
 * ```
 *
 * Why a helper and not an `OffloadHandler` between the decoder and the server handler: the server
 * handler already keeps responses in request order when handlers answer late, closes politely
 * after the responses owed when the server drains, and does not count a connection waiting for a
 * handler as idle. A handler that awaits `offload()` is such a late handler, so all of that holds
 * unchanged, and the handler decides per request what runs where. What the helper adds is
 * per connection: at most `maxInFlight` tasks in flight (then the connection stops reading), its
 * queued tasks dropped when it closes — and the answers the pool's outcomes need:
 *
 * | `offload()` rejects with | and the handler lets it propagate → |
 * |---|---|
 * | `OffloadOverloadedError` (`maxQueue` tasks wait already) | `503` with `Retry-After`, connection kept |
 * | `OffloadTaskError` (the task threw) | `500`, connection kept; the error logged or to `onHandlerError` (as any handler error) |
 * | `OffloadAbortedError` (the connection closed) | nothing: there is nobody to answer |
 *
 * Return or await what `offload()` returns: a rejection nobody handles ends the process (Node's
 * default for unhandled rejections).
 */

import { HTTP_OPTIONS, type HttpOptions, splitHttpOptions } from '../codec/http1/http.js';
import type { HttpRequest } from '../codec/http1/request.js';
import { HttpRequestDecoder } from '../codec/http1/request-decoder.js';
import type { HttpResponse } from '../codec/http1/response.js';
import { type HttpHandler, HttpServerHandler } from '../codec/http1/server.js';
import { intOption, type OptionKeys } from '../common/options.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { markClientSpeaksFirst } from '../pipeline/speaks-first.js';
import { OffloadAbortedError, OffloadOverloadedError } from './errors.js';
import { type OffloadOptions, type ResolvedOffloadOptions, resolveOffloadOptions } from './options.js';
import { OffloadSession, type OffloadSessionStats, type SessionOwner } from './session.js';

/** Runs `task` on the pool (the export `name`, or the module's default); resolves with its result. */
export type Offload = <R = unknown>(task: unknown, options?: { readonly name?: string }) => Promise<R>;

/** An HTTP handler that may offload: `(req, res, offload) => …`. */
export type OffloadingHttpHandler = (req: HttpRequest, res: HttpResponse, offload: Offload) => unknown;

/**
 * What {@link httpOffload} takes: every option of `http()`, the pool (`offload`, required) and the
 * `Retry-After` of its 503s. Checked when `httpOffload()` is called (`InvalidOptionError`; the task
 * module must exist).
 */
export interface HttpOffloadOptions extends HttpOptions {
  /** The pool, and each connection's share of it. */
  readonly offload: OffloadOptions;
  /** `Retry-After` of the 503 answered when the pool is overloaded, in seconds. Default 1. */
  readonly retryAfter?: number;
}

/** The keys of `HttpOffloadOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_OFFLOAD_OPTIONS = {
  ...HTTP_OPTIONS,
  offload: true,
  retryAfter: true,
} as const satisfies OptionKeys<HttpOffloadOptions>;

/** The settlers of one `offload()` promise. */
interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

const OVERLOAD_HEADERS = ['content-length', 'transfer-encoding', 'content-type'];

/**
 * A connection's offloading: the `offload` function its handler calls, and the stage (first in
 * the pipeline) that hears the connection close.
 */
export class HttpOffloadConnection extends ChannelInboundHandler implements SessionOwner {
  private session: OffloadSession | undefined;
  private ctx: HandlerContext | undefined;

  constructor(
    private readonly options: ResolvedOffloadOptions,
    private readonly retryAfter: string,
  ) {
    super();
  }

  /** This connection's tasks: offloaded, aborted because it closed, results dropped. */
  get stats(): OffloadSessionStats {
    return this.session === undefined ? { tasks: 0, aborted: 0, dropped: 0 } : { ...this.session.stats };
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.session?.close(); // rejects what is pending with OffloadAbortedError
    ctx.fireInactive(reason);
  }

  readonly offload: Offload = <R>(task: unknown, options?: { readonly name?: string }): Promise<R> => {
    const ctx = this.ctx;
    if (ctx === undefined || !ctx.channel.isActive) return Promise.reject(OffloadAbortedError.create());
    this.session ??= new OffloadSession(ctx.channel, this.options, this);
    const session = this.session;
    return new Promise<R>((resolve, reject) => {
      const pending: Pending = { resolve: resolve as (value: unknown) => void, reject };
      session.hold();
      const refused = session.run(task, task, pending, options?.name ?? this.options.name);
      if (refused !== undefined) {
        session.release();
        reject(refused);
      }
    });
  };

  /** SessionOwner: a task ended. */
  taskSettled(tag: unknown, ok: boolean, value: unknown): void {
    const session = this.session as OffloadSession;
    if (!session.isClosed) session.release();
    if (ok) (tag as Pending).resolve(value);
    else (tag as Pending).reject(value);
  }

  /** Calls the application's handler; answers the pool's outcomes it lets propagate (see the header). */
  serve(handler: OffloadingHttpHandler, req: HttpRequest, res: HttpResponse): unknown {
    const r = handler(req, res, this.offload);
    if (r === null || typeof r !== 'object' || typeof (r as Promise<unknown>).then !== 'function') return r;
    return (r as Promise<unknown>).then(undefined, (err: unknown) => this.failed(err, res));
  }

  private failed(err: unknown, res: HttpResponse): void {
    if (err instanceof OffloadAbortedError && this.ctx?.channel.isActive !== true) return; // nobody to answer
    if (err instanceof OffloadOverloadedError || err instanceof OffloadAbortedError) {
      if (res.finished) return;
      if (!res.headersSent) {
        res.statusCode = 503;
        res.statusMessage = undefined;
        for (const name of OVERLOAD_HEADERS) res.removeHeader(name);
        res.setHeader('Retry-After', this.retryAfter).setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`503 Service Unavailable (${err.code})\n`);
        return;
      }
    }
    throw err; // the server handler answers 500 (or cuts a started response) and reports it
  }
}

/**
 * The HTTP/1.1 pipeline of `http()`, with `offload` for the handler (see the header). Options are
 * validated now — the task module must exist — so a bad one fails `listen()`.
 */
export function httpOffload(handler: OffloadingHttpHandler, options: HttpOffloadOptions): () => Pipeline {
  if (typeof handler !== 'function') {
    throw new TypeError('httpOffload(handler): handler must be a function (req, res, offload) => …');
  }
  if (options === null || typeof options !== 'object' || options.offload === undefined) {
    throw new TypeError('httpOffload(handler, options): options.offload (the task module and pool) is required');
  }
  // Throw InvalidOptionError for an unknown key or a bad value.
  const { decoder, server } = splitHttpOptions('httpOffload', options, HTTP_OFFLOAD_OPTIONS);
  const offload = resolveOffloadOptions(options.offload, 'httpOffload options.offload');
  const retryAfter = String(intOption('retryAfter', options.retryAfter ?? 1, 0));
  // HTTP: the client speaks first, so listeners may defer accepting (as for http()).
  return markClientSpeaksFirst(() => {
    const conn = new HttpOffloadConnection(offload, retryAfter);
    const serve: HttpHandler = (req, res) => conn.serve(handler, req, res);
    return new Pipeline()
      .addLast('offload', conn)
      .addLast('http-decoder', new HttpRequestDecoder(decoder))
      .addLast('http', new HttpServerHandler(serve, server));
  });
}
