/**
 * Request/response correlation: the last stage of a client pipeline.
 *
 * ```
 *  request(msg) ──► assign an id ──► write ──► [encoder] ──► socket
 *  promise ◄── match by id ◄── [decoder] ◄── socket
 * ```
 *
 * Two ways to pair a reply with its request:
 *
 * - **By id** (`ids: jsonIds()` — the default —, `frameIds()`, or your own `MessageIds`): each
 *   request carries an id that the server copies into its reply, so replies may come in any
 *   order. A reply whose request already timed out (or was aborted) is dropped and counted
 *   (`stats.late`); a message that carries no id, or an id nobody waits for, is passed on to the
 *   next handler (server pushes) and counted (`stats.unmatched`).
 * - **In order** (`ids: 'in-order'`): replies come in request order (HTTP/1.1 pipelining,
 *   Redis, memcached). A request that timed out keeps its place until its reply comes, which is
 *   then dropped as late — the stream stays in step.
 *
 * A connection that closes rejects every pending request with a `ChannelClosedError` whose
 * `reason` is the close reason. A protocol error from the decoder before this stage (a malformed
 * reply) rejects every pending request with that error and closes the connection; in order, a
 * decoder error does too, since the reply it skipped would put every later one out of step.
 *
 * Requests made in the same tick leave in one write: the first one schedules a flush as a
 * microtask, the others only queue.
 */
import { Buffer } from 'node:buffer';
import {
  ChannelClosedError,
  DecoderError,
  InvalidOptionError,
  ProtocolError,
  ReactorError,
  RequestTimeoutError,
  TooManyPendingError,
} from '../common/errors.js';
import { checkOptions, intOption, msOption, type OptionKeys } from '../common/options.js';
import { Queue } from '../common/queue.js';
import type { Timeout } from '../common/timing-wheel.js';
import { ChannelDuplexHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext, Pipeline } from '../pipeline/pipeline.js';

/** How requests get ids and replies show theirs. */
export interface MessageIds {
  /**
   * The message to write for a request: `msg` with an id added — `seq`, a per-connection counter
   * — when it has none. May return `msg` itself (changed) or a new message.
   */
  assign(msg: unknown, seq: number): unknown;
  /** The id `msg` carries (a request after `assign`, or a reply); undefined when it has none. */
  idOf(msg: unknown): unknown;
}

/**
 * Ids in a field of JSON objects (JSON lines): `{ "uid": 7, … }`. A request that already has the
 * field keeps its value (it must then be unique among the pending ones); otherwise it gets the
 * connection's next sequence number. Default field: `uid`.
 */
export function jsonIds(field = 'uid'): MessageIds {
  if (typeof field !== 'string' || field.length === 0) {
    throw new InvalidOptionError('field', `must be a non-empty string, got ${String(field)}`);
  }
  return {
    assign(msg, seq) {
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
        throw new TypeError(`jsonIds: a request must be a JSON object to carry the "${field}" field`);
      }
      const o = msg as Record<string, unknown>;
      if (o[field] === undefined) o[field] = seq;
      return o;
    },
    idOf(msg) {
      if (msg === null || typeof msg !== 'object') return undefined;
      return (msg as Record<string, unknown>)[field];
    },
  };
}

/**
 * Ids in binary frames: the first 4 bytes of a frame, an unsigned 32-bit big-endian number. A
 * request (a Buffer, Uint8Array or string payload) becomes `[id][payload]`; replies are frames as
 * the decoder emits them (strip the length field: `initialBytesToStrip`) and must begin with the
 * request's id. The promise resolves with the whole reply frame, id included.
 */
export function frameIds(): MessageIds {
  return {
    assign(msg, seq) {
      const payload = typeof msg === 'string' ? Buffer.from(msg) : msg;
      if (!(payload instanceof Uint8Array)) throw new TypeError('frameIds: a request must be a Buffer or a string');
      const out = Buffer.allocUnsafe(4 + payload.byteLength);
      out.writeUInt32BE(seq >>> 0, 0);
      out.set(payload, 4);
      return out;
    },
    idOf(msg) {
      if (!(msg instanceof Uint8Array) || msg.byteLength < 4) return undefined;
      // Read by hand: a Uint8Array frame has no readUInt32BE.
      return (
        ((msg[0] as number) * 0x1000000 +
          (((msg[1] as number) << 16) | ((msg[2] as number) << 8) | (msg[3] as number))) >>>
        0
      );
    },
  };
}

/** How a {@link RequestResponseHandler} pairs replies with requests, and its limits. */
export interface RequestResponseOptions {
  /** How replies are matched: a `MessageIds`, or `'in-order'`. Default `jsonIds()` (the `uid` field). */
  readonly ids?: MessageIds | 'in-order';
  /** Requests waiting for a reply on this connection; one more is refused with `TooManyPendingError`. Default 1024. */
  readonly maxPending?: number;
  /** Default timeout of a request, in ms; 0 waits forever. Default 30 000. */
  readonly timeout?: number;
}

/** Per-request options of `request()` (on the handler, a `ClientConnection` or a `Pool`). */
export interface RequestOptions {
  /** Reject with `RequestTimeoutError` when no reply came within this many ms; 0 waits forever. Default: the handler's. */
  readonly timeout?: number;
  /** Aborting rejects the request with the signal's reason; its reply, if it comes, is dropped. */
  readonly signal?: AbortSignal;
}

/** The keys of `RequestResponseOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const REQUEST_RESPONSE_OPTIONS = {
  ids: true,
  maxPending: true,
  timeout: true,
} as const satisfies OptionKeys<RequestResponseOptions>;

/** The keys of `RequestOptions`. */
export const REQUEST_OPTIONS = { timeout: true, signal: true } as const satisfies OptionKeys<RequestOptions>;

/** Counters of one handler (one connection). */
export interface RequestStats {
  /** Requests written. */
  sent: number;
  /** Requests that got their reply. */
  completed: number;
  /** Requests rejected with `RequestTimeoutError`. */
  timedOut: number;
  /** Requests rejected because their signal aborted. */
  aborted: number;
  /** Replies that came after their request timed out or was aborted: dropped. */
  late: number;
  /** Messages that matched no request: passed on to the next handler. */
  unmatched: number;
}

/** One request waiting for its reply. */
class Pending {
  /** Settled (resolved, rejected, timed out or aborted); in order, it may still hold its place. */
  done = false;
  timer: Timeout | undefined;
  onAbort: (() => void) | undefined;

  constructor(
    readonly id: unknown,
    readonly resolve: (reply: unknown) => void,
    readonly reject: (err: unknown) => void,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** Stops the timer and the abort listener. */
  clear(): void {
    this.done = true;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
}

const DEFAULT_MAX_PENDING = 1024;
const DEFAULT_TIMEOUT = 30_000;

/**
 * The last stage of a client pipeline for a request/response protocol: `request(msg)` writes `msg`
 * and returns a promise of its reply. Replies are paired with requests by an id the server echoes
 * (`ids: jsonIds()`, the default; `frameIds()`; or your own {@link MessageIds}), in any order, or
 * by position (`ids: 'in-order'`: HTTP/1.1 pipelining, Redis).
 *
 * Contract: a reply whose request already timed out or was aborted is dropped (`stats.late`); a
 * message that matches no request — a server push — is passed on to the next handler
 * (`stats.unmatched`). A connection that closes rejects every pending request with
 * `ChannelClosedError` (its `reason` is the close reason); a decoder error before this stage
 * rejects them all and closes the connection, since the stream can no longer be trusted.
 * Requests made in the same tick leave in one write (the flush is a microtask).
 *
 * @example
 * ```ts
 * import { Client, LineEncoder, LineFrameDecoder, Pipeline, RequestResponseHandler, StringDecoder } from 'multireactor';
 *
 * // A line protocol that answers in order (as Redis or memcached do).
 * const conn = await Client.connect({
 *   port: 7000,
 *   pipeline: () =>
 *     new Pipeline()
 *       .addLast(new LineFrameDecoder())
 *       .addLast(new StringDecoder())
 *       .addLast(new LineEncoder())
 *       .addLast(new RequestResponseHandler({ ids: 'in-order', timeout: 5000 })),
 * });
 * const [a, b] = await Promise.all([conn.request<string>('GET a'), conn.request<string>('GET b')]);
 * console.log(a, b);
 * ```
 */
export class RequestResponseHandler extends ChannelDuplexHandler {
  readonly maxPending: number;
  readonly timeout: number;
  readonly stats: RequestStats = { sent: 0, completed: 0, timedOut: 0, aborted: 0, late: 0, unmatched: 0 };
  private readonly ids: MessageIds | undefined;
  /** By id: the requests waiting. */
  private readonly byId = new Map<unknown, Pending>();
  /** By id: ids of requests that timed out or were aborted, oldest first, at most `maxPending`. */
  private readonly expired = new Map<unknown, true>();
  /** In order: the requests in flight, settled ones included (they hold their reply's place). */
  private readonly queue = new Queue<Pending>();
  private live = 0;
  private seq = 0;
  private ctx: HandlerContext | undefined;
  private closedReason: CloseReason | undefined;
  private flushScheduled = false;
  /** Set while this handler writes a request: an encoder's error then belongs to that request. */
  private writeError: { error: unknown } | undefined;
  private writing = false;

  constructor(options: RequestResponseOptions = {}) {
    super();
    checkOptions('RequestResponseHandler', options, REQUEST_RESPONSE_OPTIONS);
    const ids = options.ids ?? jsonIds();
    if (
      ids !== 'in-order' &&
      (typeof ids !== 'object' || typeof ids.assign !== 'function' || typeof ids.idOf !== 'function')
    ) {
      throw new InvalidOptionError('ids', "must be 'in-order' or an object with assign(msg, seq) and idOf(msg)");
    }
    this.ids = ids === 'in-order' ? undefined : ids;
    this.maxPending = intOption('maxPending', options.maxPending ?? DEFAULT_MAX_PENDING, 1);
    this.timeout = msOption('timeout', options.timeout ?? DEFAULT_TIMEOUT);
  }

  /** Requests waiting for their reply now. */
  get pending(): number {
    return this.live;
  }

  /** Whether replies are matched in order (rather than by id). */
  get inOrder(): boolean {
    return this.ids === undefined;
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
  }

  override onActive(ctx: HandlerContext): void {
    this.ctx = ctx;
    ctx.fireActive();
  }

  /**
   * Writes `msg` and resolves with its reply. Rejects with `RequestTimeoutError`, the signal's
   * reason, `TooManyPendingError` (more than `maxPending` waiting), `ChannelClosedError` (the
   * connection closed, `reason` says why), or the error an encoder raised for this message.
   */
  request<R = unknown>(msg: unknown, options: RequestOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.start(msg, options, resolve as (reply: unknown) => void, reject);
    });
  }

  /** Rejects every pending request with `error` (they stay out of step: close the connection after). */
  rejectAll(error: unknown): void {
    if (this.ids !== undefined) {
      const list = [...this.byId.values()];
      this.byId.clear();
      for (const p of list) this.settleError(p, error);
    } else {
      for (const p of this.queue.drain()) if (!p.done) this.settleError(p, error);
    }
    this.live = 0;
  }

  private start(
    msg: unknown,
    options: RequestOptions,
    resolve: (reply: unknown) => void,
    reject: (err: unknown) => void,
  ): void {
    checkOptions('request', options, REQUEST_OPTIONS); // in the promise's executor: a rejection
    const ctx = this.ctx;
    if (this.closedReason !== undefined || ctx === undefined || !ctx.channel.isActive) {
      reject(this.closedError());
      return;
    }
    const signal = options.signal;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timeout = options.timeout === undefined ? this.timeout : msOption('timeout', options.timeout);
    const inFlight = this.ids === undefined ? this.queue.size : this.byId.size;
    if (inFlight >= this.maxPending) {
      reject(new TooManyPendingError('requests pending on this connection (maxPending)', this.maxPending));
      return;
    }
    let out: unknown = msg;
    let id: unknown;
    const seq = ++this.seq;
    if (this.ids !== undefined) {
      try {
        out = this.ids.assign(msg, seq);
        id = this.ids.idOf(out);
      } catch (err) {
        reject(err);
        return;
      }
      if (id === undefined) {
        reject(new TypeError('the request carries no id after assign(): check the MessageIds'));
        return;
      }
      if (this.byId.has(id)) {
        reject(new ReactorError('ERR_DUPLICATE_REQUEST_ID', `a request with id ${String(id)} is already pending`));
        return;
      }
    }
    const p = new Pending(id, resolve, reject, signal);
    if (this.ids !== undefined) this.byId.set(id, p);
    else this.queue.push(p);
    this.live++;
    // Written before the timer is armed: an encoder that throws rejects this request at once.
    this.writing = true;
    this.writeError = undefined;
    try {
      ctx.write(out);
    } finally {
      this.writing = false;
    }
    // (Set by onError during the write: TypeScript cannot see that.)
    const failed = this.writeError as { error: unknown } | undefined;
    if (failed !== undefined) {
      this.writeError = undefined;
      this.forget(p);
      this.settleError(p, failed.error);
      return;
    }
    if (p.done) return; // the write closed the connection, which rejected it already
    this.stats.sent++;
    if (timeout > 0)
      p.timer = ctx.channel.timers.schedule(timeout, () => this.expire(p, new RequestTimeoutError(timeout)));
    if (signal !== undefined) {
      p.onAbort = () => this.expire(p, signal.reason);
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushNow);
  }

  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    const ctx = this.ctx;
    if (ctx !== undefined && this.closedReason === undefined) ctx.flush();
  };

  /** A request timed out or was aborted: reject it and remember that its reply is not wanted. */
  private expire(p: Pending, error: unknown): void {
    if (p.done) return;
    if (error instanceof RequestTimeoutError) this.stats.timedOut++;
    else this.stats.aborted++;
    if (this.ids !== undefined) {
      this.byId.delete(p.id);
      this.expired.set(p.id, true);
      if (this.expired.size > this.maxPending) this.expired.delete(this.expired.keys().next().value);
    }
    // In order, the settled request keeps its place in the queue: its reply is still to come.
    this.live--;
    p.clear();
    p.reject(error);
  }

  /** Removes a request that was never sent from where it waits. */
  private forget(p: Pending): void {
    if (this.ids !== undefined) this.byId.delete(p.id);
    else this.queue.remove(p);
    this.live--;
  }

  private settleError(p: Pending, error: unknown): void {
    p.clear();
    p.reject(error);
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (this.ids === undefined) {
      const p = this.queue.shift();
      if (p === undefined) {
        this.stats.unmatched++;
        ctx.fireRead(msg);
        return;
      }
      if (p.done) {
        this.stats.late++;
        return;
      }
      this.complete(p, msg);
      return;
    }
    const id = this.ids.idOf(msg);
    const p = id === undefined ? undefined : this.byId.get(id);
    if (p !== undefined) {
      this.byId.delete(id);
      this.complete(p, msg);
    } else if (id !== undefined && this.expired.delete(id)) {
      this.stats.late++;
    } else {
      this.stats.unmatched++;
      ctx.fireRead(msg);
    }
  }

  private complete(p: Pending, reply: unknown): void {
    this.live--;
    this.stats.completed++;
    p.clear();
    p.resolve(reply);
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    if (this.writing) {
      // An encoder failed on the request being written: that request fails, nothing else.
      this.writeError = { error };
      return;
    }
    const fatal = error instanceof ProtocolError || (this.ids === undefined && error instanceof DecoderError);
    if (fatal && this.live > 0) {
      // A reply was malformed (or, in order, skipped): no later reply can be trusted to match.
      this.rejectAll(error);
      ctx.close('protocol-error');
      return;
    }
    ctx.fireError(error);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.closedReason = reason;
    if (this.live > 0 || this.queue.size > 0) this.rejectAll(this.closedError());
    this.expired.clear();
    ctx.fireInactive(reason);
  }

  private closedError(): ChannelClosedError {
    const reason = this.closedReason ?? this.ctx?.channel.closeReason;
    return new ChannelClosedError(
      reason === undefined ? 'the connection is closed' : `the connection closed (${reason}) before the reply came`,
      reason,
    );
  }
}

/** The first `RequestResponseHandler` in `pipeline`, if any. */
export function findRequestHandler(pipeline: Pipeline): RequestResponseHandler | undefined {
  for (const name of pipeline.names()) {
    const h = pipeline.get(name);
    if (h instanceof RequestResponseHandler) return h;
  }
  return undefined;
}
