/**
 * A pool of client connections to one server, for request/response protocols.
 *
 * ```ts
 * const pool = new Pool({
 *   host: '127.0.0.1',
 *   port: 7000,
 *   pipeline: () => new Pipeline().addLast(new JsonLinesDecoder()).addLast(new JsonLinesEncoder()),
 *   maxConnections: 4,
 *   pipelining: 16,
 * });
 * const reply = await pool.request({ op: 'get', key: 'a' });
 * await pool.close();
 * ```
 *
 * - Connections open on demand, up to `maxConnections` (and `minConnections` are kept open).
 *   Each gets the user's pipeline, then — unless it has one — a `RequestResponseHandler` at the
 *   end (options `ids`, `maxPending`, `timeout`), and with `heartbeat` a `HeartbeatHandler`
 *   before it: a server that stops answering pings is closed (`heartbeat`) and replaced.
 * - A request goes to a connection with fewer than `pipelining` requests in flight, chosen
 *   `least-pending` (fewest in flight; ties to the oldest connection, so surplus ones go idle
 *   and close after `idleTimeout`) or `round-robin`. With none free it waits in a bounded queue
 *   (`maxWaiting`), and a connection is opened if the pool may grow.
 * - A connection that dies rejects its requests in flight with the close reason (they may have
 *   reached the server: the pool never resends them), and is replaced when work waits for it.
 *   Connects that fail back off exponentially with jitter; while no connection is open, a failed
 *   connect rejects the waiting requests with its error instead of letting them hang — no request
 *   is lost silently: each one resolves or rejects.
 * - `close()` rejects what waits or is in flight with `PoolClosedError`, closes every
 *   connection and cancels connects in progress. `close({ drain: ms })` first refuses new
 *   requests and lets those already made finish, for up to `ms`.
 */
import { setMaxListeners } from 'node:events';
import { InvalidOptionError, PoolClosedError, RequestTimeoutError, TooManyPendingError } from '../common/errors.js';
import {
  checkOptions,
  intOption,
  msOption,
  numberOption,
  type OptionKeys,
  oneOf,
  pickOptions,
} from '../common/options.js';
import { Queue } from '../common/queue.js';
import type { Timeout } from '../common/timing-wheel.js';
import { HeartbeatHandler, type HeartbeatOptions } from '../handlers/heartbeat.js';
import type { CloseReason } from '../pipeline/handler.js';
import { TlsContext } from '../tls/context.js';
import {
  CLIENT_OPTIONS,
  type ClientConnection,
  type ClientOptions,
  openConnection,
  type ResolvedClientOptions,
  resolveClientOptions,
} from './client.js';
import { acquireLoop, type LoopLease } from './loops.js';
import {
  findRequestHandler,
  REQUEST_OPTIONS,
  REQUEST_RESPONSE_OPTIONS,
  type RequestOptions,
  RequestResponseHandler,
  type RequestResponseOptions,
} from './request-response.js';

/** Exponential backoff between failed connects: `initialDelay × factor^(n-1)`, capped, ± jitter. */
export interface ReconnectOptions {
  /** ms before the first retry. Default 100. */
  readonly initialDelay?: number;
  /** Largest delay, in ms. Default 10 000. */
  readonly maxDelay?: number;
  /** Growth per failure. Default 2. */
  readonly factor?: number;
  /** Random spread, a fraction of the delay (0.2: ±20%), so that many clients do not retry in step. Default 0.2. */
  readonly jitter?: number;
}

/**
 * What `new Pool()` takes: the client options of {@link ClientOptions} (but `signal`: the pool's
 * `close()` cancels its connects), the request options of {@link RequestResponseOptions} for the
 * handler added to each connection, and how the pool grows, shrinks, picks and retries. Checked in
 * the constructor: a bad value or an unknown key throws `InvalidOptionError` naming it.
 */
export interface PoolOptions extends Omit<ClientOptions, 'signal'>, RequestResponseOptions {
  /** Most connections open (or opening) at once. Default 4. */
  readonly maxConnections?: number;
  /** Connections kept open (reopened when lost). Default 0. */
  readonly minConnections?: number;
  /** Requests in flight on one connection before the pool uses (or opens) another. Default 1. */
  readonly pipelining?: number;
  /** How a connection is chosen among those with room. Default `'least-pending'`. */
  readonly strategy?: 'round-robin' | 'least-pending';
  /** ms a connection may stay without requests before it closes (above `minConnections`); 0 keeps it. Default 30 000. */
  readonly idleTimeout?: number;
  /** Requests waiting for a free connection; one more is refused with `TooManyPendingError`. Default 1024. */
  readonly maxWaiting?: number;
  /** Ping mode of `HeartbeatHandler` (`interval`, `ping`, `isPong`, `missed`) on every connection. Default: none. */
  readonly heartbeat?: HeartbeatOptions;
  /** Backoff between failed connects. */
  readonly reconnect?: ReconnectOptions;
}

/** A snapshot of the pool's state and counters. */
export interface PoolStats {
  /** Connections open. */
  readonly open: number;
  /** Connects in progress. */
  readonly connecting: number;
  /** Requests in flight on the connections. */
  readonly pending: number;
  /** Requests waiting for a connection. */
  readonly waiting: number;
  /** Connections established so far. */
  readonly connects: number;
  /** Connects that failed. */
  readonly connectFailures: number;
  /** Connections that closed without the pool asking (server gone, reset, heartbeat). */
  readonly lost: number;
}

interface Pooled {
  readonly client: ClientConnection;
  readonly rr: RequestResponseHandler;
  idleTimer: Timeout | undefined;
}

/** A request waiting for a connection. */
interface Waiter {
  readonly msg: unknown;
  readonly resolve: (reply: unknown) => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal | undefined;
  /** Absolute deadline on the loop's clock; 0: none. */
  readonly deadline: number;
  readonly timeout: number;
  timer: Timeout | undefined;
  onAbort: (() => void) | undefined;
}

const { signal: _signal, ...POOL_CLIENT_OPTIONS } = CLIENT_OPTIONS;

/** The keys of `PoolOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const POOL_OPTIONS = {
  ...POOL_CLIENT_OPTIONS,
  ...REQUEST_RESPONSE_OPTIONS,
  maxConnections: true,
  minConnections: true,
  pipelining: true,
  strategy: true,
  idleTimeout: true,
  maxWaiting: true,
  heartbeat: true,
  reconnect: true,
} as const satisfies OptionKeys<PoolOptions>;

/** The keys of `ReconnectOptions`. */
const RECONNECT_OPTIONS = {
  initialDelay: true,
  maxDelay: true,
  factor: true,
  jitter: true,
} as const satisfies OptionKeys<ReconnectOptions>;

/** The keys of `close()`'s options. */
const CLOSE_OPTIONS = { drain: true } as const;

/**
 * A pool of client connections to one server, for request/response protocols: `request(msg)`
 * picks a connection with room, waits in a bounded queue when none has, and opens connections on
 * demand up to `maxConnections`. Each connection gets the user's pipeline, then a
 * {@link RequestResponseHandler} unless the pipeline has one (and with `heartbeat` a
 * `HeartbeatHandler` before it, so that a server that stops answering pings is replaced).
 *
 * Contract: every request resolves or rejects — none is lost silently. A connection that dies
 * rejects its requests in flight with `ChannelClosedError` (they may have reached the server: the
 * pool never resends), and is replaced when work waits; failed connects back off exponentially
 * with jitter, and while no connection is open a failed connect rejects the waiting requests with
 * its error. `close()` rejects what waits or is in flight with `PoolClosedError`; `close({ drain })`
 * first lets the requests already made finish.
 *
 * @example
 * ```ts
 * import { JsonLinesDecoder, JsonLinesEncoder, Pipeline, Pool } from 'multireactor';
 *
 * const pool = new Pool({
 *   host: '127.0.0.1',
 *   port: 7000,
 *   pipeline: () => new Pipeline().addLast(new JsonLinesDecoder()).addLast(new JsonLinesEncoder()),
 *   maxConnections: 4,
 *   pipelining: 16, // requests in flight per connection before another one is used
 *   timeout: 2000,
 * });
 * const reply = await pool.request({ op: 'get', key: 'a' });
 * console.log(reply, pool.stats());
 * await pool.close({ drain: 1000 });
 * ```
 */
export class Pool {
  readonly maxConnections: number;
  readonly minConnections: number;
  readonly pipelining: number;
  readonly strategy: 'round-robin' | 'least-pending';
  readonly idleTimeout: number;
  readonly maxWaiting: number;
  private readonly client: ResolvedClientOptions;
  private readonly rrOptions: RequestResponseOptions;
  private readonly defaultTimeout: number;
  private readonly heartbeat: HeartbeatOptions | undefined;
  private readonly backoff: Required<ReconnectOptions>;
  private readonly lease: LoopLease;
  private readonly connLease: LoopLease;
  /** With `tls`: one context for every connection (sessions resume across them); ours to free unless given. */
  private readonly tls: TlsContext | undefined;
  private readonly ownsTls: boolean;
  private readonly aborter = new AbortController();
  private readonly conns: Pooled[] = [];
  private readonly waiting = new Queue<Waiter>();
  private connecting = 0;
  private cursor = 0;
  private failures = 0;
  private retryAt = 0;
  private retryTimer: Timeout | undefined;
  private isClosed = false;
  private closing: Promise<void> | undefined;
  /** `close({ drain })` in progress: new requests are refused, the others may finish. */
  private refusing = false;
  /** Called when nothing waits or is in flight any more, while draining. */
  private onDrained: (() => void) | undefined;
  private connects = 0;
  private connectFailures = 0;
  private lost = 0;

  constructor(options: PoolOptions) {
    this.client = resolveClientOptions(options, 'Pool', POOL_OPTIONS);
    const tls = this.client.tls;
    this.maxConnections = intOption('maxConnections', options.maxConnections ?? 4, 1, 65535);
    this.minConnections = intOption('minConnections', options.minConnections ?? 0, 0, this.maxConnections);
    this.pipelining = intOption('pipelining', options.pipelining ?? 1, 1);
    this.strategy = oneOf('strategy', options.strategy, ['round-robin', 'least-pending'], 'least-pending');
    this.idleTimeout = msOption('idleTimeout', options.idleTimeout ?? 30_000);
    this.maxWaiting = intOption('maxWaiting', options.maxWaiting ?? 1024, 0);
    const r = checkOptions('Pool', options.reconnect, RECONNECT_OPTIONS, 'reconnect.');
    const initialDelay = numberOption('reconnect.initialDelay', r.initialDelay ?? 100, 0, 3_600_000);
    this.backoff = {
      initialDelay,
      maxDelay: numberOption(
        'reconnect.maxDelay',
        r.maxDelay ?? Math.max(10_000, initialDelay),
        initialDelay,
        3_600_000,
      ),
      factor: numberOption('reconnect.factor', r.factor ?? 2, 1, 100),
      jitter: numberOption('reconnect.jitter', r.jitter ?? 0.2, 0, 1),
    };
    if (options.heartbeat !== undefined) {
      // Built once here so that a bad heartbeat option fails the constructor, not each connection.
      const probe = new HeartbeatHandler(options.heartbeat);
      if (probe.mode !== 'ping') {
        throw new InvalidOptionError('heartbeat', 'a pool pings its servers: give interval, ping and isPong');
      }
    }
    this.heartbeat = options.heartbeat;
    this.rrOptions = pickOptions<RequestResponseOptions>(options, REQUEST_RESPONSE_OPTIONS);
    // Validate the handler options now (the handler throws InvalidOptionError naming them).
    this.defaultTimeout = new RequestResponseHandler(this.rrOptions).timeout;
    // Every connect in progress listens to the pool's abort signal: up to maxConnections at once.
    setMaxListeners(0, this.aborter.signal);
    // Built last, once every other option passed: a throwing constructor leaks nothing.
    this.ownsTls = tls !== undefined && !(tls instanceof TlsContext);
    this.tls = tls === undefined ? undefined : tls instanceof TlsContext ? tls : TlsContext.client(tls);
    this.lease = acquireLoop(options.loop);
    // Connections ride on the pool's lease: the loop stays until the pool closes.
    this.connLease = { loop: this.lease.loop, release: () => {} };
    this.grow();
  }

  /** The loop the pool's connections run on. */
  get loop(): LoopLease['loop'] {
    return this.lease.loop;
  }

  /** Whether `close()` was called (also while it drains). */
  get closed(): boolean {
    return this.isClosed || this.refusing;
  }

  stats(): PoolStats {
    let pending = 0;
    for (const c of this.conns) pending += c.rr.pending;
    return {
      open: this.conns.length,
      connecting: this.connecting,
      pending,
      waiting: this.waiting.size,
      connects: this.connects,
      connectFailures: this.connectFailures,
      lost: this.lost,
    };
  }

  /**
   * Sends `msg` on a pooled connection and resolves with its reply. The timeout (default: the
   * pool's `timeout`) counts from this call, waiting for a connection included. Rejects with
   * `RequestTimeoutError`, `TooManyPendingError`, `ChannelClosedError` (the connection died with
   * the request in flight; `reason` says how), a connect error (no connection could be opened),
   * `PoolClosedError`, or the signal's reason.
   */
  request<R = unknown>(msg: unknown, options: RequestOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      checkOptions('request', options, REQUEST_OPTIONS); // in the executor: a rejection
      if (this.isClosed || this.refusing) {
        reject(new PoolClosedError());
        return;
      }
      const signal = options.signal;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const timeout = options.timeout === undefined ? this.defaultTimeout : msOption('timeout', options.timeout);
      const c = this.pick();
      if (c !== undefined && this.waiting.size === 0) {
        // The chosen connection is busy: maybe all are, and the pool may grow for the next requests.
        if (c.rr.pending > 0) this.growForLoad();
        this.send(c, msg, timeout, signal, resolve as (reply: unknown) => void, reject);
        return;
      }
      if (this.waiting.size >= this.maxWaiting) {
        reject(new TooManyPendingError('requests waiting for a pooled connection (maxWaiting)', this.maxWaiting));
        return;
      }
      const now = this.loop.timers.now();
      const w: Waiter = {
        msg,
        resolve: resolve as (reply: unknown) => void,
        reject,
        signal,
        deadline: timeout > 0 ? now + timeout : 0,
        timeout,
        timer: undefined,
        onAbort: undefined,
      };
      if (timeout > 0)
        w.timer = this.loop.timers.schedule(timeout, () => this.dropWaiter(w, new RequestTimeoutError(timeout)));
      if (signal !== undefined) {
        w.onAbort = () => this.dropWaiter(w, signal.reason);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiting.push(w);
      this.grow();
    });
  }

  /**
   * Closes the pool: new requests are refused, waiting and in-flight ones rejected with
   * `PoolClosedError`, connects in progress cancelled, connections closed. Resolves once every
   * connection is closed.
   *
   * With `drain` (ms), gracefully: new requests are refused at once, but the ones already made —
   * in flight or waiting for a connection, which may still open for them — get up to `drain` ms to
   * finish; what is left then is rejected as above. (undici's `close()` drains, its `destroy()`
   * does not; here `close()` without `drain` is the latter.)
   */
  close(options: { readonly drain?: number } = {}): Promise<void> {
    checkOptions('Pool.close', options, CLOSE_OPTIONS);
    if (this.closing !== undefined) return this.closing;
    const drain = options.drain === undefined ? 0 : msOption('drain', options.drain);
    this.closing = drain > 0 && !this.idle() ? this.drainThenClose(drain) : this.doClose();
    return this.closing;
  }

  /** Nothing waits and nothing is in flight. */
  private idle(): boolean {
    if (this.waiting.size > 0) return false;
    for (const c of this.conns) if (c.rr.pending > 0) return false;
    return true;
  }

  private async drainThenClose(ms: number): Promise<void> {
    this.refusing = true;
    await new Promise<void>((resolve) => {
      const deadline = this.loop.timers.schedule(ms, () => this.onDrained?.());
      this.onDrained = () => {
        this.onDrained = undefined;
        deadline.cancel();
        resolve();
      };
    });
    await this.doClose();
  }

  /** While draining: done when nothing waits or is in flight. */
  private checkDrained(): void {
    if (this.onDrained !== undefined && this.idle()) this.onDrained();
  }

  private async doClose(): Promise<void> {
    this.isClosed = true;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.aborter.abort(new PoolClosedError('the pool closed while connecting'));
    this.rejectWaiting(new PoolClosedError('the pool closed before the request was sent'));
    const closing: Promise<CloseReason>[] = [];
    for (const c of this.conns.splice(0)) {
      c.idleTimer?.cancel();
      c.rr.rejectAll(new PoolClosedError('the pool closed before the reply came'));
      closing.push(c.client.close());
    }
    await Promise.all(closing);
    if (this.ownsTls) this.tls?.close();
    this.lease.release();
  }

  // ---- choosing ----

  /** A connection with room for one more request, by strategy; undefined when none has room. */
  private pick(): Pooled | undefined {
    const conns = this.conns;
    const n = conns.length;
    const limit = this.pipelining;
    if (this.strategy === 'least-pending') {
      let best: Pooled | undefined;
      for (let i = 0; i < n; i++) {
        const c = conns[i] as Pooled;
        const p = c.rr.pending;
        if (p < limit && c.client.isActive && (best === undefined || p < best.rr.pending)) best = c;
      }
      return best;
    }
    for (let i = 0; i < n; i++) {
      const at = (this.cursor + i) % n;
      const c = conns[at] as Pooled;
      if (c.rr.pending < limit && c.client.isActive) {
        this.cursor = (at + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  private send(
    c: Pooled,
    msg: unknown,
    timeout: number,
    signal: AbortSignal | undefined,
    resolve: (reply: unknown) => void,
    reject: (err: unknown) => void,
  ): void {
    c.idleTimer?.cancel();
    const opts: RequestOptions = signal === undefined ? { timeout } : { timeout, signal };
    c.rr.request(msg, opts).then(
      (reply) => {
        resolve(reply);
        this.settled(c);
      },
      (err: unknown) => {
        reject(err);
        this.settled(c);
      },
    );
  }

  /** A request on `c` finished: its room goes to a waiting request, or `c` may go idle. */
  private settled(c: Pooled): void {
    this.dispatchWaiting();
    this.checkDrained();
    if (c.rr.pending === 0 && this.idleTimeout > 0 && c.client.isActive && !this.isClosed) {
      if (c.idleTimer === undefined) c.idleTimer = this.loop.timers.schedule(this.idleTimeout, () => this.onIdle(c));
      else c.idleTimer.reschedule(this.idleTimeout);
    }
  }

  private onIdle(c: Pooled): void {
    if (c.rr.pending > 0 || this.isClosed || this.conns.length <= this.minConnections) return;
    const i = this.conns.indexOf(c);
    if (i >= 0) this.conns.splice(i, 1);
    void c.client.close('idle-timeout');
  }

  // ---- the waiting queue ----

  private dispatchWaiting(): void {
    while (this.waiting.size > 0) {
      const c = this.pick();
      if (c === undefined) return;
      const w = this.waiting.shift() as Waiter;
      this.clearWaiter(w);
      let timeout = w.timeout;
      if (w.deadline > 0) {
        timeout = w.deadline - this.loop.timers.now();
        if (timeout <= 0) {
          w.reject(new RequestTimeoutError(w.timeout));
          continue;
        }
      }
      this.send(c, w.msg, timeout, w.signal, w.resolve, w.reject);
    }
  }

  private clearWaiter(w: Waiter): void {
    w.timer?.cancel();
    w.timer = undefined;
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    w.onAbort = undefined;
  }

  /** A waiting request timed out or was aborted. */
  private dropWaiter(w: Waiter, error: unknown): void {
    if (!this.waiting.remove(w)) return;
    this.clearWaiter(w);
    w.reject(error);
    this.checkDrained();
  }

  private rejectWaiting(error: unknown): void {
    for (const w of this.waiting.drain()) {
      this.clearWaiter(w);
      w.reject(error);
    }
    this.checkDrained();
  }

  // ---- connections ----

  /** Opens connections for what waits and for `minConnections`, within `maxConnections`. */
  private grow(): void {
    if (this.isClosed) return;
    const waiting = this.waiting.size;
    const wanted = Math.max(this.minConnections, this.conns.length + Math.ceil(waiting / this.pipelining));
    const target = Math.min(this.maxConnections, wanted);
    while (this.conns.length + this.connecting < target) {
      if (!this.connectSoon()) return;
    }
  }

  /** When every connection is busy, open one more (one at a time) while the pool may grow. */
  private growForLoad(): void {
    if (this.connecting > 0 || this.conns.length >= this.maxConnections) return;
    for (const c of this.conns) if (c.rr.pending === 0) return;
    this.connectSoon();
  }

  /** Connects now, or — backing off after failures — arms the retry timer. Returns whether it connected now. */
  private connectSoon(): boolean {
    const now = this.loop.timers.now();
    if (now < this.retryAt) {
      if (this.retryTimer === undefined) {
        this.retryTimer = this.loop.timers.schedule(this.retryAt - now, () => {
          this.retryTimer = undefined;
          this.retryAt = 0;
          this.grow();
        });
      }
      return false;
    }
    this.connecting++;
    openConnection(this.client, this.connLease, this.aborter.signal, {
      afterOpen: (c) => this.adopt(c),
      ...(this.tls !== undefined ? { tls: this.tls } : {}),
    }).then(
      () => {
        this.connecting--;
        this.connects++;
        this.failures = 0;
        this.retryAt = 0;
        this.dispatchWaiting();
        this.grow();
      },
      (err: unknown) => {
        this.connecting--;
        if (this.isClosed) return;
        this.connectFailures++;
        this.failures++;
        const delay = this.delayAfter(this.failures);
        this.retryAt = this.loop.timers.now() + delay;
        if (this.failures === 1) {
          this.loop.logger.warn(
            `pool: connecting to ${this.client.host}:${this.client.port} failed (${(err as Error)?.message ?? String(err)}); retrying with backoff`,
          );
        }
        // Nothing open and nothing else coming: fail what waits rather than let it hang.
        if (this.conns.length === 0 && this.connecting === 0) this.rejectWaiting(err);
        this.grow();
      },
    );
    return true;
  }

  /** The delay before the next connect after `n` failures in a row. */
  private delayAfter(n: number): number {
    const b = this.backoff;
    const base = Math.min(b.maxDelay, b.initialDelay * b.factor ** (n - 1));
    return Math.max(0, base * (1 + b.jitter * (2 * Math.random() - 1)));
  }

  /** Called right after a connection's pipeline is built, before it reads anything. */
  private adopt(client: ClientConnection): void {
    const pipeline = client.pipeline;
    let rr = findRequestHandler(pipeline);
    if (rr === undefined) {
      rr = new RequestResponseHandler(this.rrOptions);
      pipeline.addLast('pool-requests', rr);
    }
    if (this.heartbeat !== undefined) {
      const name = pipeline.context(rr)?.name as string;
      pipeline.addBefore(name, 'pool-heartbeat', new HeartbeatHandler(this.heartbeat));
    }
    if (this.isClosed) {
      void client.abort();
      return;
    }
    const pooled: Pooled = { client, rr, idleTimer: undefined };
    this.conns.push(pooled);
    void client.closed.then(() => this.onClosed(pooled));
  }

  private onClosed(c: Pooled): void {
    c.idleTimer?.cancel();
    c.idleTimer = undefined;
    const i = this.conns.indexOf(c);
    if (i < 0) return; // closed by the pool (idle, close())
    this.conns.splice(i, 1);
    this.lost++;
    this.grow();
  }
}
