/**
 * The load generator behind `multireactor-load`: closed-loop load on N connections, each keeping
 * `pipeline` requests in flight, for a fixed duration, on one loop of this process.
 *
 * ```ts
 * const report = await runLoad({ url: 'http://127.0.0.1:8080/plaintext', connections: 50, duration: 10_000 });
 * console.log(report.requestsPerSecond, report.latency.p99, report.errors);
 * ```
 *
 * - **HTTP** (`mode: 'http'`): one pre-encoded request (method, path, `Host`, extra headers,
 *   body) written again and again; responses are decoded by `HttpClientCodec` and matched in
 *   order. A status outside 2xx/3xx counts as `badStatus` (as wrk's "Non-2xx or 3xx").
 * - **Echo** (`mode: 'echo'`): frames of a 2-byte big-endian length and `size` payload bytes
 *   (the protocol of `examples/echo-server.ts --framing length`), each echoed whole; an echo of
 *   another length counts as `badStatus`.
 * - **WebSocket** (`mode: 'ws'`, `ws://host:port/path` or `wss://…` over TLS): after the opening
 *   handshake, binary messages of `size` bytes (masked, as a client must), each echoed by the
 *   server (`examples/ws-echo-server.ts`); `deflate` offers permessage-deflate. With `wss://` every
 *   connection of the run shares one client `TlsContext` (so reconnects resume their sessions),
 *   made from `tls` and freed at the end; its handshake is part of connecting, not of latency.
 *
 * Latency — from writing a request to decoding its answer — goes into a fixed-memory
 * `Histogram` (µs); the clock is read once per read burst, not per response. Errors are counted
 * by kind: `refused` (connect refused), `tls` (a failed TLS handshake, wss:// only), `reset` (a connection reset or closed by the server with
 * requests in flight: each lost request counts), `timeout` (connects, and requests without an
 * answer after `timeout`: the connection is dropped and replaced), `badStatus`, `protocol` (a
 * response that does not parse) and `other`. A connection that fails is replaced after a short
 * backoff (10 ms doubling to 1 s) so that a dead server does not make the generator spin.
 *
 * At `duration` exactly (a Node timer, not the wheel's 20 ms ticks) the counts are frozen — as
 * wrk does, answers still in flight are not counted — and every connection is aborted; the loop
 * is closed if the generator made it, so the process has nothing left to wait for.
 */
import { Buffer } from 'node:buffer';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { isToken } from '../codec/http1/chars.js';
import { HttpClientCodec } from '../codec/http1/client.js';
import type { HttpClientResponse } from '../codec/http1/response-decoder.js';
import { LengthFieldFrameDecoder } from '../codec/length-field.js';
import { ConnectTimeoutError, InvalidOptionError, ProtocolError, SyscallError } from '../common/errors.js';
import { checkOptions, describeValue, intOption, type OptionKeys } from '../common/options.js';
import type { Timeout } from '../common/timing-wheel.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { ECONNREFUSED } from '../syscalls/constants.js';
import { ipFamily } from '../syscalls/sockaddr.js';
import { TlsContext } from '../tls/context.js';
import { TlsHandshakeError } from '../tls/errors.js';
import type { TlsClientOptions } from '../tls/options.js';
import { WebSocketOpenEvent, websocketClientPipeline, websocketClientTls } from '../websocket/client.js';
import { EventLoop } from '../worker/loop.js';
import { Client, type ClientConnection } from './client.js';
import { Histogram } from './histogram.js';

/**
 * What {@link runLoad} (and `multireactor-load`) takes. Only `url` is required; checked before
 * any connection opens (`InvalidOptionError` naming a bad field or an unknown key).
 */
export interface LoadOptions {
  /** `http://host:port/path` (HTTP), or `tcp://host:port` / `http://host:port` with `mode: 'echo'`. */
  readonly url: string;
  /** `'http'` (default), `'echo'` (2-byte length-field frames) or `'ws'` (WebSocket messages). */
  readonly mode?: 'http' | 'echo' | 'ws';
  /** Connections, 1–10 000. Default 10. */
  readonly connections?: number;
  /** Run time in ms (≥ 1). Default 10 000. */
  readonly duration?: number;
  /** Requests in flight per connection, 1–1024. Default 1. */
  readonly pipeline?: number;
  /** ms without an answer before a request (or a connect) counts as a timeout. Default 2 000. */
  readonly timeout?: number;
  /** HTTP method. Default `'GET'`. */
  readonly method?: string;
  /** Extra HTTP header fields. */
  readonly headers?: Readonly<Record<string, string>>;
  /** HTTP request body. */
  readonly body?: string;
  /** Echo payload bytes per frame (0–65535), or WebSocket message bytes (0–16 MiB). Default 64. */
  readonly size?: number;
  /** `ws` mode: offer permessage-deflate. Default false. */
  readonly deflate?: boolean;
  /**
   * `ws` mode with a `wss://` URL: the TLS client options (as `Client.connect` takes them; ALPN
   * `http/1.1` unless given), e.g. `{ ca }` for a private CA or `{ rejectUnauthorized: false }`
   * for a test server's self-signed certificate, or a `TlsContext.client(…)` to use as it is.
   * Default (absent or `true`): Node's root CAs, the host checked. Not allowed with other URLs.
   */
  readonly tls?: TlsClientOptions | TlsContext | true;
  /** The loop to run on; default a loop of its own, closed at the end. */
  readonly loop?: EventLoop;
}

/** The keys of `LoadOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const LOAD_OPTIONS = {
  url: true,
  mode: true,
  connections: true,
  duration: true,
  pipeline: true,
  timeout: true,
  method: true,
  headers: true,
  body: true,
  size: true,
  loop: true,
  deflate: true,
  tls: true,
} as const satisfies OptionKeys<LoadOptions>;

/** Latencies in ms. */
export interface LatencySummary {
  readonly min: number;
  readonly mean: number;
  readonly stdev: number;
  readonly max: number;
  readonly p50: number;
  readonly p75: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
}

/** Failures of a load run by kind; each lost request counts once. */
export interface LoadErrors {
  /** Connects refused (ECONNREFUSED). */
  refused: number;
  /** Requests lost to a connection reset or closed by the server while they were in flight; other failed connects. */
  reset: number;
  /** Requests unanswered after `timeout`, and connects that timed out. */
  timeout: number;
  /** HTTP responses outside 2xx/3xx; echo frames of the wrong length. */
  badStatus: number;
  /** Responses that did not parse. */
  protocol: number;
  /** TLS handshakes that failed (wss://): a certificate that does not verify, a peer that speaks no TLS. */
  tls: number;
}

/**
 * What {@link runLoad} resolves with: the options it ran with, throughput, latency and errors.
 * As wrk does, answers still in flight at the end of `duration` are not counted.
 */
export interface LoadReport {
  readonly url: string;
  readonly mode: 'http' | 'echo' | 'ws';
  readonly connections: number;
  readonly pipeline: number;
  /** Measured run time in seconds (from the start of connecting to the stop). */
  readonly seconds: number;
  /** Answers received within the run (bad statuses included, as wrk counts them). */
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly latency: LatencySummary;
  readonly errors: LoadErrors;
  /** Connections opened over the run (reconnects included). */
  readonly connects: number;
  /** Why the first failed TLS handshake failed (OpenSSL's reason), when one did. */
  readonly tlsFailure?: string;
}

/** What every connection of one run shares. */
interface Run {
  running: boolean;
  readonly depth: number;
  readonly timeout: number;
  readonly request: Buffer;
  readonly echo: boolean;
  /** WebSocket messages: requests start when the handshake is done. */
  readonly ws: boolean;
  readonly histogram: Histogram;
  readonly errors: LoadErrors;
  requests: number;
  bytesRead: number;
  bytesWritten: number;
  connects: number;
  tlsFailure: string | undefined;
}

/**
 * One connection's load: keeps `depth` requests in flight, times each answer, replaces itself
 * when the connection ends while the run goes on.
 */
class LoadHandler extends ChannelInboundHandler {
  /** Send times of the requests in flight, oldest at `head` (a ring of `depth` slots). */
  private readonly sent: Float64Array;
  private head = 0;
  private inFlight = 0;
  /** The clock read for the current read burst (0: not read yet). */
  private now = 0;
  /** The server announced it closes after this answer: send no more here. */
  private draining = false;
  private timedOut = false;
  private checker: Timeout | undefined;
  private ctx: HandlerContext | undefined;

  constructor(private readonly run: Run) {
    super();
    this.sent = new Float64Array(run.depth);
  }

  override onActive(ctx: HandlerContext): void {
    this.ctx = ctx;
    if (!this.run.ws) this.start(ctx);
    const period = Math.max(10, this.run.timeout / 4);
    this.checker = ctx.channel.timers.schedule(period, this.check);
    ctx.fireActive();
  }

  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (event instanceof WebSocketOpenEvent) this.start(ctx);
    else ctx.fireUserEvent(event);
  }

  private start(ctx: HandlerContext): void {
    const now = performance.now();
    for (let i = 0; i < this.run.depth; i++) this.send(ctx, now);
    ctx.flush();
  }

  private send(ctx: HandlerContext, now: number): void {
    this.sent[(this.head + this.inFlight) % this.run.depth] = now;
    this.inFlight++;
    ctx.write(this.run.request);
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    const run = this.run;
    if (this.now === 0) this.now = performance.now();
    const now = this.now;
    if (this.inFlight === 0) return; // an answer to nothing (a server's 408 before closing, say)
    const t = this.sent[this.head] as number;
    this.head = (this.head + 1) % run.depth;
    this.inFlight--;
    if (!run.running) return;
    run.requests++;
    run.histogram.record((now - t) * 1000);
    if (run.ws) {
      if (!(msg instanceof Uint8Array) || msg.length !== run.request.length) run.errors.badStatus++;
    } else if (run.echo) {
      if ((msg as Buffer).byteLength !== run.request.byteLength) run.errors.badStatus++;
    } else {
      const res = msg as HttpClientResponse;
      if (res.statusCode < 200 || res.statusCode >= 400) run.errors.badStatus++;
      if (!res.keepAlive) this.draining = true;
    }
    if (!this.draining) this.send(ctx, now);
  }

  override onReadComplete(ctx: HandlerContext): void {
    this.now = 0;
    ctx.fireReadComplete();
  }

  /** Runs every timeout/4: the oldest request waiting longer than `timeout` dooms the connection. */
  private readonly check = (): void => {
    const ctx = this.ctx;
    if (ctx === undefined || !ctx.channel.isActive || !this.run.running) return;
    if (this.inFlight > 0 && performance.now() - (this.sent[this.head] as number) > this.run.timeout) {
      this.timedOut = true;
      this.run.errors.timeout += this.inFlight;
      ctx.channel.abort();
      return;
    }
    this.checker?.reschedule(Math.max(10, this.run.timeout / 4));
  };

  override onError(ctx: HandlerContext, error: unknown): void {
    if (this.run.running) {
      if (error instanceof ProtocolError) this.run.errors.protocol++;
      else this.run.errors.reset++;
    }
    ctx.close('protocol-error');
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.checker?.cancel();
    const run = this.run;
    if (run.running && !this.timedOut && this.inFlight > 0 && reason !== 'protocol-error') {
      // The server closed or reset with answers owed: each lost request is an error.
      run.errors.reset += this.inFlight;
    }
    run.bytesRead += ctx.channel.bytesRead;
    run.bytesWritten += ctx.channel.bytesWritten;
    ctx.fireInactive(reason);
  }
}

/** `10s`, `500ms`, `1m`, `2h`, or a bare number of seconds (as wrk) → ms. */
export function parseDuration(name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) {
    throw new InvalidOptionError(name, `must be a duration like 10s, 500ms or 1m, got ${JSON.stringify(text)}`);
  }
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  const ms = Math.round(Number(m[1]) * factor);
  if (ms < 1) throw new InvalidOptionError(name, `must be at least 1 ms, got ${JSON.stringify(text)}`);
  return ms;
}

function parseTarget(url: string, mode: 'http' | 'echo' | 'ws'): { host: string; port: number; path: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidOptionError('url', `not a URL: ${JSON.stringify(url)}`);
  }
  const okProtocol =
    mode === 'http'
      ? u.protocol === 'http:'
      : mode === 'ws'
        ? u.protocol === 'ws:' || u.protocol === 'wss:'
        : u.protocol === 'tcp:' || u.protocol === 'http:';
  if (!okProtocol) {
    throw new InvalidOptionError(
      'url',
      mode === 'http'
        ? 'must be http://host:port/path (https is not supported)'
        : mode === 'ws'
          ? 'must be ws://host:port/path or wss://host:port/path'
          : 'must be tcp://host:port',
    );
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? (mode === 'echo' ? 0 : u.protocol === 'wss:' ? 443 : 80) : Number(u.port);
  if (port === 0) throw new InvalidOptionError('url', 'needs a port');
  return { host, port, path: `${u.pathname || '/'}${u.search}` };
}

function httpRequest(o: LoadOptions, host: string, port: number, path: string): Buffer {
  const method = o.method ?? 'GET';
  if (!isToken(method)) throw new InvalidOptionError('method', `not a method: ${method}`);
  const authority = ipFamily(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${authority}\r\n`;
  for (const [name, value] of Object.entries(o.headers ?? {})) {
    if (!isToken(name) || /[\r\n\0]/.test(value)) {
      throw new InvalidOptionError('headers', `invalid header ${JSON.stringify(name)}`);
    }
    head += `${name}: ${value}\r\n`;
  }
  const body = o.body === undefined ? undefined : Buffer.from(o.body);
  if (body !== undefined) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  return body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

function echoFrame(size: number): Buffer {
  const frame = Buffer.alloc(2 + size, 0x61);
  frame.writeUInt16BE(size, 0);
  return frame;
}

function summary(h: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    min: ms(h.min),
    mean: ms(h.mean),
    stdev: ms(h.stdev),
    max: ms(h.max),
    p50: ms(h.percentile(50)),
    p75: ms(h.percentile(75)),
    p90: ms(h.percentile(90)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
  };
}

/** Runs the load and resolves with the report once every connection is closed. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  checkOptions('runLoad', options, LOAD_OPTIONS);
  if (options === undefined) throw new InvalidOptionError('url', 'is required');
  const mode = options.mode ?? 'http';
  if (mode !== 'http' && mode !== 'echo' && mode !== 'ws')
    throw new InvalidOptionError('mode', `must be 'http', 'echo' or 'ws', got ${describeValue(mode)}`);
  const { host, port, path } = parseTarget(options.url, mode);
  const connections = intOption('connections', options.connections ?? 10, 1, 10_000);
  const duration = intOption('duration', options.duration ?? 10_000, 1);
  const depth = intOption('pipeline', options.pipeline ?? 1, 1, 1024);
  const timeout = intOption('timeout', options.timeout ?? 2000, 1);
  const size = intOption('size', options.size ?? 64, 0, mode === 'ws' ? 16 * 1024 * 1024 : 0xffff);
  const echo = mode === 'echo';
  const ws = mode === 'ws';
  if (!ws && options.tls !== undefined) throw new InvalidOptionError('tls', 'is for wss:// URLs (mode ws)');
  // Checked (and the PEMs parsed, by building the context) before the loop or a connection exists.
  const tlsGiven = ws ? websocketClientTls(options.url, options.tls) : undefined;
  const tls =
    tlsGiven === undefined || tlsGiven instanceof TlsContext
      ? tlsGiven
      : TlsContext.client(tlsGiven, options.loop?.logger);
  /** Made here (not given): freed at the end. */
  const ownTls = tls !== options.tls ? tls : undefined;
  const run: Run = {
    running: true,
    depth,
    timeout,
    request: echo ? echoFrame(size) : ws ? Buffer.alloc(size, 0x61) : httpRequest(options, host, port, path),
    echo,
    ws,
    histogram: new Histogram(),
    errors: { refused: 0, reset: 0, timeout: 0, badStatus: 0, protocol: 0, tls: 0 },
    requests: 0,
    bytesRead: 0,
    bytesWritten: 0,
    connects: 0,
    tlsFailure: undefined,
  };
  const ownLoop = options.loop === undefined;
  const loop = options.loop ?? new EventLoop();
  const stop = new AbortController();
  // Every connect in progress listens to it: one per connection, legitimately more than 10.
  setMaxListeners(0, stop.signal);
  const open = new Set<ClientConnection>();
  /** Slots sleeping after a failed connect: the stop wakes them at once. */
  const sleeping = new Map<NodeJS.Timeout, () => void>();
  const wsPipeline = ws
    ? websocketClientPipeline(options.url, {
        handshakeTimeout: timeout,
        maxMessageSize: Math.max(1, size),
        maxPayload: Math.max(1, size),
        ...(options.deflate === true ? { perMessageDeflate: true } : {}),
      })
    : undefined;
  const pipeline = () =>
    wsPipeline !== undefined
      ? wsPipeline().addLast('load', new LoadHandler(run))
      : new Pipeline()
          .addLast(
            'decoder',
            echo
              ? new LengthFieldFrameDecoder({ lengthFieldLength: 2, maxFrameLength: 2 + 0xffff })
              : new HttpClientCodec(),
          )
          .addLast('load', new LoadHandler(run));

  /** One connection slot: connect, load until the connection ends, again while the run goes on. */
  const slot = async (): Promise<void> => {
    let backoff = 10;
    while (run.running) {
      let conn: ClientConnection;
      try {
        conn = await Client.connect({
          host,
          port,
          loop,
          pipeline,
          connectTimeout: timeout,
          signal: stop.signal,
          ...(tls !== undefined ? { tls } : {}),
        });
      } catch (err) {
        if (!run.running) return;
        if (err instanceof SyscallError && err.errno === ECONNREFUSED) run.errors.refused++;
        else if (err instanceof ConnectTimeoutError) run.errors.timeout++;
        else if (err instanceof TlsHandshakeError) {
          run.errors.tls++;
          run.tlsFailure ??= err.message;
        } else run.errors.reset++;
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            sleeping.delete(t);
            resolve();
          }, backoff);
          sleeping.set(t, resolve);
        });
        backoff = Math.min(1000, backoff * 2);
        continue;
      }
      run.connects++;
      backoff = 10;
      open.add(conn);
      await conn.closed;
      open.delete(conn);
    }
  };

  const started = performance.now();
  const slots: Promise<void>[] = [];
  for (let i = 0; i < connections; i++) slots.push(slot());
  await new Promise<void>((resolve) => setTimeout(resolve, duration));
  // Freeze the figures first: what arrives while closing is not part of the run. Everything
  // below up to the await runs in this one turn, so no answer can slip in between.
  run.running = false;
  const seconds = (performance.now() - started) / 1000;
  const requests = run.requests;
  const latency = summary(run.histogram);
  const errors = { ...run.errors };
  stop.abort();
  for (const [t, wake] of sleeping) {
    clearTimeout(t);
    wake();
  }
  sleeping.clear();
  for (const c of open) void c.abort();
  await Promise.all(slots);
  if (ownLoop) await loop.close();
  ownTls?.close();
  return {
    url: options.url,
    mode,
    connections,
    pipeline: depth,
    seconds,
    requests,
    requestsPerSecond: seconds > 0 ? requests / seconds : 0,
    bytesRead: run.bytesRead,
    bytesWritten: run.bytesWritten,
    latency,
    errors,
    connects: run.connects,
    ...(run.tlsFailure !== undefined ? { tlsFailure: run.tlsFailure } : {}),
  };
}
