/**
 * The HTTP/1.1 server stage: calls the application's `(req, res)` handler for each decoded
 * request and writes the responses back in request order.
 *
 * Ordering (RFC 9112 §9.3.2): responses are queued per connection in request order; a response
 * that finishes early waits until every earlier one is written. Written bytes are flushed when
 * the read that carried the requests completes, so 16 pipelined requests answered synchronously
 * leave in one write.
 *
 * Closing: after a response that says `Connection: close` (HTTP/1.0 without keep-alive, a client
 * asking for it, a protocol error, the server draining), nothing more is read and the connection
 * closes once that response is out. A protocol error (`HttpParseError`) is answered with its status
 * (400, 408, 413, 414, 431, 501, 505) — after the responses to the requests before it — and closes.
 * A handler that throws or rejects gets a 500 — the connection goes on — and its error is logged
 * with the request line (or given to `onHandlerError`); if it already sent headers, its connection
 * is aborted. The worker never dies of it.
 */
import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { outboundView } from '../../common/buffer-view.js';
import { ChannelClosedError, InvalidOptionError } from '../../common/errors.js';
import { httpMetrics } from '../../common/http-metrics.js'; // metrics (issue 21)
import { checkOptions, msOption, type OptionKeys, optionalInt } from '../../common/options.js';
import { DRAINING } from '../../pipeline/events.js';
import type { CloseReason } from '../../pipeline/handler.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';
import { HttpBodyChunk, HttpRequestBody } from './body.js';
import { type ClockTimeouts, HttpClocks, MAX_HTTP_TIMEOUT } from './clocks.js';
import { HttpError, HttpExpectContinueEvent, HttpParseError, HttpRequest, HttpRequestProgress } from './request.js';
import { type ConnectionInstaller, HttpDate, HttpResponse, type ResponseOwner, ResponseStage } from './response.js';
import { PendingSwitch, switchPipeline } from './switch.js';

/** The application: answer `req` through `res` (now or later; a returned promise is awaited for errors). */
export type HttpHandler = (req: HttpRequest, res: HttpResponse) => unknown;

/**
 * The server stage's timeouts and limits (part of `http()`'s options). Every timeout runs on the
 * loop's timing wheel, so it fires within one tick (20 ms by default) after its deadline; each is
 * at most 2^29 - 1 ms (6.2 days).
 */
export interface HttpServerHandlerOptions {
  /**
   * Close a keep-alive connection idle for this long, in ms: nothing owed and no byte of a next
   * request received. 0: never. Default 5 000.
   */
  readonly keepAliveTimeout?: number;
  /** From the first byte of a request head until the head is complete, in ms; then 408 and close. 0: off. Default 30 000. */
  readonly headerTimeout?: number;
  /**
   * From the first byte of a request until all of it — head and body — is in, in ms; then 408 and
   * close. Bounds a client that trickles a body, which `headerTimeout` does not see. 0: off.
   * Default 300 000 (node:http's `requestTimeout`).
   */
  readonly requestTimeout?: number;
  /**
   * From a complete request (a streamed one: its body complete) until its handler starts the
   * response (`write`, `end`), in ms; then 503 and close. A handler that never answers would
   * otherwise hold the request, its connection and a slot of `maxConnections` for ever. 0: off.
   * Default 120 000.
   */
  readonly handlerTimeout?: number;
  /** Close a connection after this many requests (the last response says `Connection: close`). 0: no limit. Default 0. */
  readonly maxRequestsPerConnection?: number;
  /**
   * Where handler errors are reported (they never reach the worker). Default: the server's logger,
   * one line with the request line and what became of the response.
   */
  readonly onHandlerError?: (err: unknown, req: HttpRequest) => void;
  /**
   * Requests of one connection in progress — handed to the handler, response not complete — at
   * which the server stops reading from that connection, until half of them are answered. A client
   * pipelining behind a slow request would otherwise make the worker run handlers and hold answers
   * without bound. The requests already in the read being decoded are still served (at most one
   * read's worth, 64 KiB, more). Default 64.
   */
  readonly maxPipelinedRequests?: number;
  /**
   * When the server drains (stop, reload), how long an idle keep-alive connection may still send
   * one more request — answered with `Connection: close` — before it is closed, in ms. Closing it at
   * once races a request the client has already sent (RFC 9112 §9.3.1: the client cannot know), and
   * that request is lost; under load that is most idle connections. 0: close at once. Default 300.
   */
  readonly drainGrace?: number;
}

/** The keys of `HttpServerHandlerOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HTTP_SERVER_HANDLER_OPTIONS = {
  keepAliveTimeout: true,
  headerTimeout: true,
  requestTimeout: true,
  handlerTimeout: true,
  maxRequestsPerConnection: true,
  onHandlerError: true,
  maxPipelinedRequests: true,
  drainGrace: true,
} as const satisfies OptionKeys<HttpServerHandlerOptions>;

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** Larger responses get a Buffer of their own (a slab holds several batches). */
const SLAB_SIZE = 64 * 1024;
const SLAB_MAX_RESPONSE = SLAB_SIZE / 4;

// The bits of HttpServerHandler.states.
const S_HOLDING_READS = 1;
const S_CLOSING = 2;
const S_DRAINING = 4;
const S_IN_READ = 16;

/** `"GET /path HTTP/1.1"` for logs (a long target cut short). */
function requestLine(req: HttpRequest): string {
  const url = req.url.length > 200 ? `${req.url.slice(0, 200)}…` : req.url;
  return `"${req.method} ${url} HTTP/${req.httpVersion}"`;
}

/** A number of ms, at most MAX_HTTP_TIMEOUT (clocks.ts). */
function timeoutOption(name: string, v: unknown): number {
  const ms = msOption(name, v);
  if (ms > MAX_HTTP_TIMEOUT) {
    throw new InvalidOptionError(name, `must be at most ${MAX_HTTP_TIMEOUT} ms (6.2 days), got ${ms}`);
  }
  return ms;
}

/**
 * The server stage's options, checked: one object shared by every connection's stage built from
 * the same options (`http()` makes it once), so that a connection's stage holds state, not a copy
 * of its settings.
 */
export class HttpServerConfig implements ClockTimeouts {
  readonly keepAliveTimeout: number;
  readonly headerTimeout: number;
  readonly requestTimeout: number;
  readonly handlerTimeout: number;
  readonly maxRequests: number;
  readonly maxPipelined: number;
  readonly drainGrace: number;
  readonly onHandlerError: ((err: unknown, req: HttpRequest) => void) | undefined;

  /** Checks `options` (InvalidOptionError naming the first bad one, or an unknown key). */
  constructor(options: HttpServerHandlerOptions = {}) {
    // Only undefined means "the default": null or any other non-number is an error.
    const o = checkOptions('HttpServerHandler', options, HTTP_SERVER_HANDLER_OPTIONS);
    // Every timeout at most MAX_HTTP_TIMEOUT (6.2 days): the clocks keep times as small integers.
    this.keepAliveTimeout =
      o.keepAliveTimeout === undefined ? 5000 : timeoutOption('keepAliveTimeout', o.keepAliveTimeout);
    this.headerTimeout = optionalInt('headerTimeout', o.headerTimeout, 30_000, 0, MAX_HTTP_TIMEOUT);
    this.requestTimeout = optionalInt('requestTimeout', o.requestTimeout, 300_000, 0, MAX_HTTP_TIMEOUT);
    this.handlerTimeout = optionalInt('handlerTimeout', o.handlerTimeout, 120_000, 0, MAX_HTTP_TIMEOUT);
    this.maxRequests = optionalInt('maxRequestsPerConnection', o.maxRequestsPerConnection, 0, 0);
    this.maxPipelined = optionalInt('maxPipelinedRequests', o.maxPipelinedRequests, 64, 1);
    this.drainGrace = o.drainGrace === undefined ? 300 : timeoutOption('drainGrace', o.drainGrace);
    const onError: unknown = o.onHandlerError;
    if (onError !== undefined && typeof onError !== 'function') {
      throw new InvalidOptionError('onHandlerError', `must be a function, got ${typeof onError}`);
    }
    this.onHandlerError = o.onHandlerError;
  }
}

/**
 * The HTTP/1.1 server stage: calls the application's `(req, res)` handler for each request the
 * `HttpRequestDecoder` before it emits, and writes the responses back in request order (RFC 9112
 * §9.3.2: a response that finishes early waits for the earlier ones). Responses of one read leave
 * in one write, when the read completes. `http()` builds it with the decoder; build it yourself to
 * put handlers of your own around it (a PROXY protocol or TLS stage goes before the decoder).
 *
 * It owns the connection's life: keep-alive and its idle timeout, header/request/handler
 * timeouts (408, 503), `Connection: close`, draining on a server stop (the request in flight is
 * answered with `Connection: close`), and the switch to another protocol (`res.takeConnection`).
 * A decoder error is answered with its status and closes the connection; a handler that throws
 * or rejects gets a 500 and the connection goes on — unless the response had started, then the
 * connection is aborted. Options are checked in the constructor (`InvalidOptionError`).
 *
 * @example
 * ```ts
 * import { HttpRequestDecoder, HttpServerHandler, Pipeline, Server } from 'multireactor';
 *
 * // What http() builds, by hand: handlers of your own may go before the decoder.
 * class App extends Pipeline {
 *   override initChannel(): void {
 *     const answer = new HttpServerHandler((req, res) => res.end(`${req.method} ${req.path}\n`), {
 *       keepAliveTimeout: 5000,
 *     });
 *     this.addLast('decoder', new HttpRequestDecoder({ maxBodySize: 1024 * 1024 })).addLast('http', answer);
 *   }
 * }
 * await Server.listen({ port: 8080, pipeline: App });
 * ```
 */
export class HttpServerHandler extends HttpClocks<HttpServerConfig> implements ResponseOwner {
  /**
   * The connection's yes-or-no states, bits of one small integer rather than five fields (8 B each
   * in every connection's handler): read and written through the accessors below.
   */
  private states = 0;
  /** The streamed body being received (`streamBodies`), and the response of its request. */
  private bodyIn: HttpRequestBody | undefined;
  private bodyRes: HttpResponse | undefined;
  /** Streaming handlers waiting for their response to be writable (`res.drained()`). */
  private drainWaiters: Array<{ readonly res: HttpResponse; readonly resolve: () => void }> | undefined;
  /**
   * The responses owed, in request order, linked through their `nextOwed`; their output waits in
   * them until their turn (`queued`, `done`). A list rather than an array: an idle connection owes
   * nothing, and an emptied array would keep its elements store (~140 B with the array) for the
   * connection's life; linking costs no allocation per request either.
   */
  private firstOwed: HttpResponse | undefined = undefined;
  private lastOwed: HttpResponse | undefined = undefined;
  /** How many responses are owed (the list's length). */
  private owed = 0;
  private ctx: HandlerContext | undefined;
  private served = 0;
  /**
   * An Upgrade or CONNECT request is being answered, which decides what the connection becomes:
   * the decoder has left the pipeline, and the bytes after the request wait (switch.ts).
   */
  private upgrade: PendingSwitch | undefined;
  /** Bytes of this read's responses staged in the stage's slab (from its `stageFrom`), written when the read completes. */
  private staged = 0;

  /** `options`, or a config made from them once and shared (what `http()` passes). */
  constructor(
    private readonly handler: HttpHandler,
    options: HttpServerHandlerOptions | HttpServerConfig = {},
    /**
     * Where this stage's responses are encoded and the answers of a read staged (response.ts):
     * one per `http()` server, shared by its connections; the thread's by default.
     */
    readonly stage: ResponseStage = ResponseStage.thread,
  ) {
    // Keep-alive idle, head, request and handler timeouts, drain grace: the base class, one
    // wheel timer (clocks.ts).
    super(options instanceof HttpServerConfig ? options : new HttpServerConfig(options));
    HttpDate.start();
  }

  private state(bit: number): boolean {
    return (this.states & bit) !== 0;
  }
  private setState(bit: number, on: boolean): void {
    this.states = on ? this.states | bit : this.states & ~bit;
  }
  /** Reading is paused by us: `maxPipelinedRequests` requests are in progress. */
  private get holdingReads(): boolean {
    return this.state(S_HOLDING_READS);
  }
  private set holdingReads(on: boolean) {
    this.setState(S_HOLDING_READS, on);
  }
  /** A response that closes the connection is queued: further requests are not answered. */
  private get closing(): boolean {
    return this.state(S_CLOSING);
  }
  private set closing(on: boolean) {
    this.setState(S_CLOSING, on);
  }
  /** The server drains (see drain). */
  private get draining(): boolean {
    return this.state(S_DRAINING);
  }
  private set draining(on: boolean) {
    this.setState(S_DRAINING, on);
  }
  /** Between a read's first request and its read-complete: the connection flushes at the end. */
  private get inRead(): boolean {
    return this.state(S_IN_READ);
  }
  private set inRead(on: boolean) {
    this.setState(S_IN_READ, on);
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
  }

  override onActive(ctx: HandlerContext): void {
    this.ctx = ctx;
    this.startClocks(ctx.channel.timers);
    ctx.fireActive();
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (!(msg instanceof HttpRequest)) {
      if (msg instanceof HttpBodyChunk) this.bodyChunk(msg);
      // After an upgrade request the bytes are not HTTP: they wait for the stages that take the
      // connection (copied: they may be a view of the loop's read buffer, reused by the next read).
      else if (this.upgrade !== undefined) this.upgrade.hold(msg);
      else ctx.fireRead(msg);
      return;
    }
    if (this.closing) return; // sent after a request that closes the connection: no answer
    // Whole: what arrives next is a next request. (Streamed, only its head is: the decoder says at
    // the end of the read whether its body is still awaited, or its last chunk comes.)
    if (!msg.streamed) this.arrived();
    this.inRead = true;
    this.served++;
    ctx.channel.countRequest();
    // An upgrade's keep-alive is not its request's to decide (a CONNECT may come as HTTP/1.0): its
    // answer decides (a switch, or a close: see advance, and HttpResponse.encodeHead).
    const keepAlive =
      (msg.keepAlive || msg.upgrade) &&
      !this.draining &&
      (this.config.maxRequests === 0 || this.served < this.config.maxRequests);
    const res = new HttpResponse(this, msg, keepAlive);
    res.arrivedAt = ctx.channel.timers.coarseNow(); // metrics (issue 21): latency from here, common/http-metrics.ts
    if (!keepAlive) this.closing = true;
    if (msg.upgrade) {
      // Nothing after it is HTTP (the decoder has stepped aside): read no more until it is decided.
      this.upgrade = new PendingSwitch(res);
      ctx.channel.pauseReading(res);
    }
    if (msg.streamed) {
      // The body follows as HttpBodyChunks: the handler reads it from req.bodyStream; while it
      // holds more than its high watermark unread, the connection stops reading (a hold of its own).
      const body = new HttpRequestBody((pause) => {
        if (pause) ctx.channel.pauseReading(body);
        else ctx.channel.resumeReading(body);
      });
      msg.bodyStream = body;
      this.bodyIn = body;
      this.bodyRes = res;
    }
    // Synchronous answers leave the queue before the next request comes: only handlers that answer
    // later (timers, promises, offloaded work) let it grow to the limit.
    this.enqueue(res);
    if (this.holding() >= this.config.maxPipelined) this.holdReads(ctx);
    try {
      const r = this.handler(msg, res);
      if (r !== undefined && r !== null && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<unknown>).then(undefined, (err: unknown) => this.fail(res, err));
      }
    } catch (err) {
      this.fail(res, err);
    }
    // The handler's clock runs from the whole request (a streamed one: its body's end) to the
    // start of its answer. Stamped after the call, for answers that did not start in it: a handler
    // that answers at once costs nothing here, and the call's own time is a few µs at most.
    if (!res.headersSent && !msg.streamed) this.handlerStarts(res);
  }

  /**
   * The requests in progress that count against `maxPipelinedRequests`: those owed, but for a
   * streamed request whose body is still coming — the last owed, if it is — which needs reads to
   * complete. Counted, the hold would keep its own body out until the requests before it are
   * answered — for ever with a limit of 1, where the hold ends only when nothing is owed. It
   * counts once its body is in (bodyChunk).
   */
  private holding(): number {
    return this.bodyIn !== undefined && this.lastOwed === this.bodyRes ? this.owed - 1 : this.owed;
  }

  /** `maxPipelinedRequests` requests are in progress: read no more until half of them are answered (advance). */
  private holdReads(ctx: HandlerContext): void {
    if (this.holdingReads) return;
    this.holdingReads = true;
    ctx.channel.pauseReading(this);
  }

  /** A piece of the streamed body being received: to its reader. */
  private bodyChunk(chunk: HttpBodyChunk): void {
    const body = this.bodyIn;
    if (body === undefined) return; // its request was not answered (sent after a close)
    body.push(chunk.data);
    if (chunk.last) {
      const res = this.bodyRes as HttpResponse;
      this.bodyIn = undefined;
      this.bodyRes = undefined;
      this.arrived();
      if (!res.headersSent) this.handlerStarts(res);
      if (this.firstOwed === undefined) {
        this.idleNow(); // answered before its body ended
      } else if (this.holding() >= this.config.maxPipelined) {
        // Its body is in: the request counts against the limit now (see `holding`).
        this.holdReads(this.ctx as HandlerContext);
      }
      body.end(chunk.trailers);
    }
  }

  override onReadComplete(ctx: HandlerContext): void {
    if (this.inRead) {
      this.inRead = false;
      this.flushPending(ctx);
      // Coarse (the wheel's last tick, ≤ 20 ms old, see stamp): the keep-alive timeout is seconds
      // long, and a clock call per read was ~2% of a plaintext worker's time.
      this.idleNow();
    }
    if (this.upgrade?.due === true) {
      // The bytes of this read that followed the upgrade request are held now: switch.
      this.switchConnection(ctx);
      return;
    }
    ctx.fireReadComplete();
  }

  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (event === HttpRequestProgress.HEAD || event === HttpRequestProgress.BODY) {
      this.arriving(event === HttpRequestProgress.HEAD);
      return;
    }
    if (event instanceof HttpExpectContinueEvent) {
      // Interim responses may not overtake earlier responses: send it when this request is next.
      // The expecting request is not owed yet (its body is awaited, or its head is being decoded):
      // every request before it is, so it is next in line once the last of them is done — not
      // once *a* response is: a 100 written before an earlier request's answer is taken by the
      // client for that request's interim response, and its own request waits for it in vain.
      const last = this.lastOwed;
      if (last === undefined) {
        this.writeOrdered(ctx, CONTINUE);
        ctx.flush();
      } else last.continueAfter = true;
      return;
    }
    if (event === DRAINING) {
      this.drain();
      return;
    }
    ctx.fireUserEvent(event);
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    if (error instanceof HttpParseError) this.protocolError(ctx, error);
    else ctx.fireError(error);
  }

  /**
   * The request being received is malformed, too large or too slow (408, from our own clocks):
   * answer it — after the responses owed — and close.
   */
  private protocolError(ctx: HandlerContext, error: HttpParseError): void {
    this.arrived();
    const body = this.bodyIn;
    if (body !== undefined) {
      // The body of the request being answered was cut short (a timeout, a bad chunk, too large):
      // its reader sees the error, and the error is the answer to that request — if its answer has
      // not started; else the connection cannot say more than closing.
      this.bodyIn = undefined;
      const res = this.bodyRes as HttpResponse;
      this.bodyRes = undefined;
      body.fail(error);
      this.closing = true;
      if (!res.finished && !res.headersSent && this.owes(res)) {
        this.answerError(res, error);
        res.superseded = true; // the handler, still reading the body, learns of it there
        return;
      }
      if (!res.finished) {
        ctx.channel.abort('error'); // its answer has started: it cannot be completed
        return;
      }
      // Answered already (the rest of its body was being dropped): close once what is owed is out.
      const last = this.lastOwed;
      if (last !== undefined) last.closeAfter = true;
      else {
        this.flushPending(ctx);
        ctx.close('local');
      }
      return;
    }
    // Answer what came before, then the error, then close (the decoder reads nothing more).
    // Already closing after an earlier response: the connection ends there anyway.
    if (this.closing) return;
    this.closing = true;
    const res = new HttpResponse(this, undefined, false);
    this.enqueue(res);
    this.answerError(res, error);
    ctx.channel.countRequest();
  }

  /** Answers `res` with the status of a protocol error, and closes after it. */
  private answerError(res: HttpResponse, error: HttpParseError): void {
    res.closeAfter = true;
    // The reason and the code say enough; the message (with stream offsets) is for our logs.
    res.answerInstead(
      error.statusCode,
      `${error.statusCode} ${STATUS_CODES[error.statusCode] ?? 'Error'} (${error.code})\n`,
    );
  }

  override onWritabilityChanged(ctx: HandlerContext, writable: boolean): void {
    if (writable) this.wakeWriters();
    ctx.fireWritabilityChanged(writable);
  }

  /** Appends `res` to the responses owed; returns how many are owed now. */
  private enqueue(res: HttpResponse): number {
    const last = this.lastOwed;
    if (last === undefined) this.firstOwed = res;
    else last.nextOwed = res;
    this.lastOwed = res;
    return ++this.owed;
  }

  /** Takes the oldest response owed off the list (there is one). */
  private dequeue(): HttpResponse {
    const res = this.firstOwed as HttpResponse;
    const next = res.nextOwed;
    res.nextOwed = undefined; // a response a handler still holds keeps none after it alive
    this.firstOwed = next;
    if (next === undefined) this.lastOwed = undefined;
    this.owed--;
    return res;
  }

  /** Whether `res` is still owed (not answered, its connection not closed). */
  private owes(res: HttpResponse): boolean {
    for (let r = this.firstOwed; r !== undefined; r = r.nextOwed) if (r === res) return true;
    return false;
  }

  /** Owes nothing any more: the connection closed or closes now. */
  private dropOwed(): void {
    while (this.firstOwed !== undefined) this.dequeue();
  }

  /** ResponseOwner: `res` is the response being sent and the connection is under its high watermark. */
  isWritable(res: HttpResponse): boolean {
    const ctx = this.ctx;
    return ctx !== undefined && this.firstOwed === res && ctx.channel.isWritable;
  }

  /** ResponseOwner: resolves once `res` is writable, or the connection closed. */
  whenWritable(res: HttpResponse): Promise<void> {
    if (this.isWritable(res) || this.ctx?.channel.isActive !== true) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters ??= [];
      this.drainWaiters.push({ res, resolve });
    });
  }

  /** Resolves the waiters whose response became writable (all of them once the connection closed). */
  private wakeWriters(): void {
    const waiters = this.drainWaiters;
    if (waiters === undefined || waiters.length === 0) return;
    const open = this.ctx?.channel.isActive === true;
    for (let i = 0; i < waiters.length; ) {
      const w = waiters[i] as { readonly res: HttpResponse; readonly resolve: () => void };
      if (!open || this.isWritable(w.res)) {
        waiters.splice(i, 1);
        w.resolve();
      } else i++;
    }
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.stopClocks();
    this.upgrade = undefined;
    this.staged = 0;
    if (this.stage.stager === this) this.stage.stager = undefined;
    // Responses that finish later write into a closed channel: dropped, counted by the transport.
    this.dropOwed();
    if (this.bodyIn !== undefined) {
      this.bodyIn.fail(new ChannelClosedError('the connection closed before the request body was complete', reason));
      this.bodyIn = undefined;
      this.bodyRes = undefined;
    }
    this.wakeWriters(); // the channel is closed: every waiting writer goes on (and finds it so)
    ctx.fireInactive(reason);
  }

  /**
   * The server is draining: close after the responses already owed, or — idle — after the next
   * request (answered with `Connection: close`, as every request from now on) or `drainGrace`.
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    const ctx = this.ctx as HandlerContext;
    const last = this.lastOwed;
    if (last !== undefined) {
      this.closing = true;
      last.closeAfter = true; // says Connection: close, if its head is not out yet
      return;
    }
    // A request arriving is answered (with Connection: close), within its head and request timeouts.
    if (this.receiving) return;
    if (this.config.drainGrace === 0) {
      this.flushPending(ctx);
      ctx.close('shutdown');
      return;
    }
    // On the connection's clock: it closes then unless a request came meanwhile (its answer
    // closes the connection).
    this.drainSoon();
  }

  /**
   * Reports an application error (a handler's, a taker's install): to `onHandlerError`, or logged
   * once, with the request line and what became of its response. Not fired into the pipeline: its
   * tail closes the connection on an unhandled error, which would cut the 500 and the responses
   * owed after it.
   */
  private report(err: unknown, req: HttpRequest | undefined, outcome: string): void {
    const onError = this.config.onHandlerError;
    const channel = this.ctx?.channel;
    if (onError !== undefined && req !== undefined) {
      try {
        onError(err, req);
        return;
      } catch (failure) {
        channel?.logger.error('onHandlerError threw', failure);
      }
    }
    if (channel === undefined) return;
    const peer = channel.remoteAddress;
    const line = req === undefined ? 'a request' : requestLine(req);
    channel.logger.error(
      `HTTP handler failed on ${line} (connection ${channel.id}${peer ? ` from ${peer.address}:${peer.port}` : ''}); ${outcome}`,
      err,
    );
  }

  /**
   * A handler failed. Nothing sent yet: its response becomes a 500 — complete, so the connection
   * goes on as the request said and the requests pipelined after it are answered. Headers sent
   * already: the response cannot be completed in a way the client could tell from a good one,
   * so the connection is aborted.
   */
  private fail(res: HttpResponse, err: unknown): void {
    // A handler that let its streamed body's failure escape: that error was answered (or the
    // connection is going away) already; it is not a handler bug to report.
    if (err !== undefined && res.req?.bodyStream?.error === err) return;
    if (res.finished) {
      this.report(err, res.req, 'its response was already complete');
      return;
    }
    if (!res.headersSent) {
      if (err instanceof HttpError) {
        // A status the handler (or req.json()) chose: the client's error, not a handler bug —
        // answered, not logged.
        res.answerInstead(
          err.statusCode,
          `${err.statusCode} ${STATUS_CODES[err.statusCode] ?? 'Error'}: ${err.message}\n`,
        );
        return;
      }
      this.report(err, res.req, 'answered 500');
      res.answerInstead(500, '500 Internal Server Error\n');
      return;
    }
    this.report(err, res.req, 'its response was cut short: connection aborted');
    this.ctx?.channel.abort('error');
  }

  /**
   * ResponseOwner: `res` was just encoded. The oldest unfinished response, answered during a read,
   * joins the read's batch in the slab; any other gets a Buffer of its own, through `output`.
   */
  outputEncoded(res: HttpResponse, length: number, last: boolean): void {
    const head = this.firstOwed;
    if (head === undefined) return; // the connection closed meanwhile
    const stage = this.stage;
    if (head !== res || !this.inRead) {
      const out = Buffer.allocUnsafe(length);
      stage.write(out, 0);
      this.output(res, out, last);
      return;
    }
    const ctx = this.ctx as HandlerContext;
    if (this.makeRoom(ctx, length)) {
      this.staged = stage.write(stage.slab as Buffer, stage.stageFrom + this.staged) - stage.stageFrom;
    } else {
      // Large, or the slab is another handler's (a nested read): a Buffer of its own.
      const out = Buffer.allocUnsafe(length);
      stage.write(out, 0);
      this.writeOrdered(ctx, out);
    }
    if (!last) return;
    head.done = true;
    this.advance(ctx);
  }

  /** Whether `length` more bytes can be staged by this handler (taking the slab if free). */
  private makeRoom(ctx: HandlerContext, length: number): boolean {
    const stage = this.stage;
    if (stage.stager !== undefined && stage.stager !== this) return false;
    if (length > SLAB_MAX_RESPONSE) return false;
    if (stage.slab === undefined || stage.stageFrom + this.staged + length > SLAB_SIZE) {
      // Full: what is staged goes out as it is, and a fresh slab takes over (the views of the
      // old one keep it alive until they are sent).
      this.flushPending(ctx);
      const slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      stage.slab = slab;
      stage.slabMemory = slab.buffer;
      stage.stageFrom = 0;
    }
    stage.stager = this;
    return true;
  }

  /**
   * Writes the staged responses of this read (to the transport's queue; the read's end flushes
   * it). Called before anything else this handler writes, at the read's end, and before the
   * connection closes or changes hands (upgrade, drain).
   */
  private flushPending(ctx: HandlerContext): void {
    const n = this.staged;
    if (n === 0) return;
    const stage = this.stage;
    const from = stage.stageFrom;
    stage.stageFrom = from + n;
    this.staged = 0;
    stage.stager = undefined;
    ctx.write(outboundView(stage.slabMemory as ArrayBufferLike, from, n));
  }

  /** Every write of this handler goes after the pending batch, so that order holds. */
  private writeOrdered(ctx: HandlerContext, bytes: Buffer): void {
    this.flushPending(ctx);
    ctx.write(bytes);
  }

  /** ResponseOwner: bytes of `res`, written now if it is the oldest unfinished response. */
  output(res: HttpResponse, bytes: Buffer, last: boolean): void {
    const ctx = this.ctx as HandlerContext;
    const head = this.firstOwed;
    if (head === undefined) return; // the connection closed meanwhile
    if (head === res) {
      if (bytes.length > 0) this.writeOrdered(ctx, bytes);
      if (!last) {
        if (!this.inRead) ctx.flush(); // streaming: let the chunk go
        return;
      }
      head.done = true;
      this.advance(ctx);
      return;
    }
    if (!this.owes(res)) return; // answered after its connection closed
    if (bytes.length > 0) {
      if (res.queued === undefined) res.queued = [bytes];
      else res.queued.push(bytes);
    }
    if (last) res.done = true;
  }

  /** The head response finished: write the ones after it that are ready, then flush or close. */
  private advance(ctx: HandlerContext): void {
    let closeNow = false;
    for (;;) {
      const done = this.dequeue();
      httpMetrics.record(done.statusCode, done.arrivedAt, ctx.channel.timers.coarseNow()); // metrics (issue 21)
      // Answered before its streamed body was read: the rest of the body is read and dropped, so
      // that the requests after it can be.
      const unread = done.req?.bodyStream;
      if (unread !== undefined && !unread.complete) unread.discard();
      if (done.closeAfter) {
        closeNow = true;
        break;
      }
      if (done.req?.upgrade === true) {
        // The decoder has stepped aside: the connection becomes what takes it, or closes. Declined
        // (any other status), the client would go on speaking HTTP to a connection that no longer
        // parses it; accepted but not taken, nobody would read its bytes (a CONNECT answered 200
        // by a handler that answers everything 200 would be an endless tunnel into nothing).
        if (!done.switches()) closeNow = true;
        else if (this.upgrade?.install !== undefined) this.switchSoon(ctx);
        else this.awaitTake(ctx);
        break;
      }
      const next = this.firstOwed;
      // The request after `done` expects 100 Continue and is next in line now: not owed yet (its
      // body awaited), or owed and not answered. Answered already, the 100 is moot (RFC 9110
      // §10.1.1: a final status instead) — and must not go out before a later request's answer.
      if (
        done.continueAfter &&
        !this.closing &&
        (next === undefined || (next.queued === undefined && !next.headersSent))
      ) {
        this.writeOrdered(ctx, CONTINUE);
      }
      if (next === undefined) break;
      if (next.queued !== undefined) {
        for (const b of next.queued) this.writeOrdered(ctx, b);
        next.queued = undefined;
      }
      if (!next.done) break;
    }
    if (closeNow) {
      this.dropOwed();
      this.upgrade = undefined;
      this.flushPending(ctx);
      ctx.close('local'); // flushes first
      return;
    }
    if (this.holdingReads && this.holding() <= this.config.maxPipelined >> 1) {
      // Hysteresis: one pause and one resume (an epoll_ctl each) per half of the limit answered.
      this.holdingReads = false;
      ctx.channel.resumeReading(this);
    }
    // A response waiting for its turn may have it now.
    if (this.drainWaiters !== undefined) this.wakeWriters();
    // Inside a read the connection flushes when the read completes (one write for the batch);
    // from a timer or a promise nobody else will.
    if (!this.inRead) {
      ctx.flush();
      // An answer that came later (a timer, a promise): idleness starts now.
      if (this.firstOwed === undefined) this.idleNow();
    }
  }

  /** ResponseOwner: `res.takeConnection(install, { idleTimeout })` was called. */
  connectionTaken(res: HttpResponse, install: ConnectionInstaller, idleTimeout: number): void {
    const upgrade = this.upgrade;
    if (upgrade?.res !== res) {
      // Its connection closed already (nothing to take), or it went out without it: too late.
      if (this.ctx?.channel.isActive !== true) return;
      throw new Error('takeConnection: the response went out without it and the connection is closing');
    }
    if (upgrade.install !== undefined) throw new Error('takeConnection: the connection is already taken');
    upgrade.install = install;
    upgrade.idleTimeout = idleTimeout;
    if (upgrade.awaitingTake) {
      // Sent already, in its turn: the switch waited for this.
      upgrade.awaitingTake = false;
      this.switchSoon(this.ctx as HandlerContext);
    }
    // Otherwise not sent yet, or not in its turn yet: advance() sees the install when it is.
  }

  /**
   * The upgrade response went out accepted, without `takeConnection`: the handler may still call
   * it in this turn of the event loop (`res.end(); res.takeConnection(…)`, or after an `await` of
   * something already settled); after that nobody took the connection, so it closes — waiting
   * longer would let a 101 that nobody takes park the connection. One Immediate per such answer.
   */
  private awaitTake(ctx: HandlerContext): void {
    const upgrade = this.upgrade as PendingSwitch;
    upgrade.awaitingTake = true;
    setImmediate(() => {
      if (this.upgrade !== upgrade || !upgrade.awaitingTake) return; // taken, or the connection closed
      this.upgrade = undefined;
      ctx.close('local');
    });
  }

  /** Switches now, or — inside a read — when it completes, so that the bytes it carried are held first. */
  private switchSoon(ctx: HandlerContext): void {
    if (this.inRead) (this.upgrade as PendingSwitch).due = true;
    else this.switchConnection(ctx);
  }

  /** The upgrade response is out and taken: this stage hands the connection over (switch.ts). */
  private switchConnection(ctx: HandlerContext): void {
    const upgrade = this.upgrade as PendingSwitch;
    this.upgrade = undefined;
    // Our answers (the 101 among them) go before anything the new stages write.
    this.flushPending(ctx);
    this.stopClocks();
    if (this.holdingReads) {
      this.holdingReads = false;
      ctx.channel.resumeReading(this);
    }
    switchPipeline(ctx, upgrade, (err) =>
      this.report(err, upgrade.res.req, 'the connection could not be switched: aborted'),
    );
  }

  // ---- HttpClocks: what the clocks see and do (clocks.ts) ----

  /** @internal Nothing owed nor being decided, not closing: idle unless a request arrives. */
  protected get quiet(): boolean {
    return this.firstOwed === undefined && !this.closing && this.upgrade === undefined;
  }

  /** @internal Nothing more is answered on this connection. */
  protected get ending(): boolean {
    return this.closing;
  }

  /** @internal The oldest response whose request is whole and whose handler has not started it. */
  protected unstarted(): HttpResponse | undefined {
    for (let res = this.firstOwed; res !== undefined; res = res.nextOwed) {
      if (!res.headersSent && res.readyAt >= 0) return res;
    }
    return undefined;
  }

  /** @internal Idle past the keep-alive timeout or the drain grace. */
  protected closeIdle(reason: 'idle-timeout' | 'shutdown'): void {
    this.ctx?.close(reason);
  }

  /** @internal The request being received took too long: 408, after the responses owed, then close (RFC 9110 §15.5.9). */
  protected requestTimedOut(head: boolean): void {
    const t = this.config;
    const error = head
      ? new HttpParseError(408, 'HPE_HEADER_TIMEOUT', `request head not complete within ${t.headerTimeout} ms`)
      : new HttpParseError(408, 'HPE_REQUEST_TIMEOUT', `request not complete within ${t.requestTimeout} ms`);
    this.protocolError(this.ctx as HandlerContext, error);
  }

  /**
   * `res`'s handler did not start answering within `handlerTimeout`: the server answers 503 in
   * its stead — not 504, which RFC 9110 §15.6.5 keeps for a gateway whose upstream did not answer;
   * the handler is this server's own work, and 503 (§15.6.4) says it could not serve the request
   * now, as Go's http.TimeoutHandler answers — and closes the connection after it: the handler
   * may still be running, and what it writes later is dropped. @internal
   */
  protected handlerTimedOut(res: HttpResponse): void {
    const channel = (this.ctx as HandlerContext).channel;
    const peer = channel.remoteAddress;
    channel.logger.warn(
      `HTTP handler did not start its answer to ${res.req === undefined ? 'a request' : requestLine(res.req)} within ` +
        `handlerTimeout (${this.config.handlerTimeout} ms) (connection ${channel.id}${peer ? ` from ${peer.address}:${peer.port}` : ''}); answered 503, closing`,
    );
    this.closing = true;
    res.closeAfter = true;
    res.answerInstead(503, '503 Service Unavailable (the handler did not answer in time)\n');
    res.superseded = true;
  }
}
