/**
 * The client side: `connectWebSocket(url, options)` opens a connection with the project's client
 * (`Client.connect`, on the worker's loop or a standalone one), performs the opening handshake
 * (RFC 6455 §4.1) and resolves with a `WebSocket` in the client role — masked frames out, a fresh
 * key per frame drawn from batches of random bytes (frame.ts), the same codec as the server's.
 *
 * ```ts
 * const ws = await connectWebSocket('ws://127.0.0.1:9001/chat', { perMessageDeflate: true });
 * ws.onMessage = (data, isBinary) => console.log(isBinary ? data : data.toString());
 * ws.send('hello');
 * ```
 *
 * `wss://` runs the same over the TLS stage (src/tls/): the connection is TLS from its first byte
 * (RFC 6455 §3: "wss" is WebSocket over TLS, default port 443), with the options of `tls` — by
 * default Node's root CAs, the server's certificate checked against the URL's host, SNI sent for a
 * host name (not for an IP literal, RFC 6066 §3), and ALPN `http/1.1` offered, since the opening
 * handshake is an HTTP/1.1 request (RFC 8441 would be needed for WebSockets over HTTP/2).
 *
 * Like a browser's, a WebSocket resolved here delivers nothing before the code that awaited it
 * has run: frames that came with the 101 (or right after) wait until the next turn of the event
 * loop, so `onMessage` set after `await` misses nothing. For pipelines of one's own (the load
 * generator), `WebSocketClientHandshake` fires a `WebSocketOpenEvent` to the stages after it
 * instead, and messages then flow to them as strings (text) and Buffers (binary).
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Client } from '../client/client.js';
import { HttpClientCodec } from '../codec/http1/client.js';
import { HttpClientResponse, HttpResponseError } from '../codec/http1/response-decoder.js';
import { ChannelClosedError, InvalidOptionError, ReactorError } from '../common/errors.js';
import type { OptionKeys } from '../common/options.js';
import type { Timeout } from '../common/timing-wheel.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { TlsContext } from '../tls/context.js';
import { resolveTlsClientOptions, type TlsClientOptions } from '../tls/options.js';
import type { EventLoop } from '../worker/loop.js';
import type { ConnectionOptions } from '../worker/options.js';
import type { DeflateParams } from './deflate.js';
import { acceptKey } from './handshake.js';
import { WebSocketHeartbeat } from './heartbeat.js';
import { rejectUnknown, WEBSOCKET_OPTION_KEYS, WebSocketConfig, type WebSocketOptions } from './options.js';
import { WebSocket, WebSocketHandler } from './websocket.js';

/** The opening handshake failed: refused (`statusCode`), malformed, or timed out. */
export class WebSocketHandshakeError extends ReactorError {
  /** The server's status when it answered something other than 101. */
  readonly statusCode: number | undefined;

  constructor(message: string, statusCode?: number) {
    super('ERR_WS_HANDSHAKE', message);
    this.name = 'WebSocketHandshakeError';
    this.statusCode = statusCode;
  }
}

/** Fired to the stages after the handshake once the WebSocket is open (`ws` is it). */
export class WebSocketOpenEvent {
  constructor(readonly ws: WebSocket) {}
}

/**
 * What {@link connectWebSocket} takes: the WebSocket options ({@link WebSocketOptions}), what the
 * handshake request says, and how to connect. Checked before connecting (`InvalidOptionError`).
 */
export interface WebSocketClientOptions extends WebSocketOptions {
  /** Subprotocols to offer, in order of preference. */
  readonly protocols?: readonly string[];
  /** `Origin` to send (browsers send the page's). */
  readonly origin?: string;
  /** More request header fields. */
  readonly headers?: Readonly<Record<string, string>>;
  /** ms from connecting until the 101, else the connection is closed. Default 10 000. */
  readonly handshakeTimeout?: number;
  /** ms for the TCP connect. Default 10 000. */
  readonly connectTimeout?: number;
  /** The loop to run on (default: the serving loop, else a standalone one; docs/client.md). */
  readonly loop?: EventLoop;
  /** Connection options (`keepAlive`, `userTimeout`, watermarks …), as for `Client.connect`. */
  readonly connection?: ConnectionOptions;
  /**
   * TLS for a `wss://` URL (docs/tls.md), as `Client.connect` takes it: options, `true` (the same as
   * leaving it out: Node's root CAs, the certificate checked against the URL's host), or a
   * `TlsContext.client(…)` shared by many connections (used as it is). Options without `alpn` get
   * `alpn: ['http/1.1']`; SNI is the URL's host unless it is an IP literal (`servername` overrides
   * it). Only for `wss://`: with `ws://` it is an `InvalidOptionError` (a plaintext URL with TLS
   * options is a mistake either way round). Trusting a private CA: `{ ca: readFileSync('ca.pem') }`.
   */
  readonly tls?: TlsClientOptions | TlsContext | true;
}

/** The client's own keys beside the WebSocket options (kept in step with the interface by `tsc`). */
const CLIENT_OWN_KEYS = {
  protocols: true,
  origin: true,
  headers: true,
  handshakeTimeout: true,
  connectTimeout: true,
  loop: true,
  connection: true,
  tls: true,
} as const satisfies OptionKeys<Omit<WebSocketClientOptions, keyof WebSocketOptions>>;
const CLIENT_KEYS = [...WEBSOCKET_OPTION_KEYS, ...Object.keys(CLIENT_OWN_KEYS)];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The checked client options. */
export class WebSocketClientConfig {
  readonly config: WebSocketConfig;
  readonly protocols: readonly string[];
  readonly origin: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly handshakeTimeout: number;

  constructor(o: WebSocketClientOptions) {
    if (o === null || typeof o !== 'object') throw new InvalidOptionError('options', 'must be an object');
    rejectUnknown(o, CLIENT_KEYS);
    this.config = new WebSocketConfig(true, o);
    const protocols = o.protocols ?? [];
    if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === 'string' && TOKEN.test(p))) {
      throw new InvalidOptionError('protocols', 'must be an array of tokens');
    }
    this.protocols = protocols;
    if (o.origin !== undefined && (typeof o.origin !== 'string' || /[\r\n\0]/.test(o.origin))) {
      throw new InvalidOptionError('origin', 'must be a header value');
    }
    this.origin = o.origin;
    this.headers = o.headers ?? {};
    this.handshakeTimeout = o.handshakeTimeout ?? 10_000;
    if (!Number.isInteger(this.handshakeTimeout) || this.handshakeTimeout < 1) {
      throw new InvalidOptionError('handshakeTimeout', `must be a positive integer, got ${String(o.handshakeTimeout)}`);
    }
  }
}

/**
 * The client's handshake stage, after an `HttpClientCodec`: sends the upgrade request when the
 * connection is up, checks the 101 (§4.1: status, `Upgrade`, `Connection`, the accept key, the
 * subprotocol and extensions it agreed to), then puts the WebSocket in its place and takes the
 * HTTP codec out.
 */
export class WebSocketClientHandshake extends ChannelInboundHandler {
  private readonly key = randomBytes(16).toString('base64');
  private timer: Timeout | undefined;
  private state: 'waiting' | 'starting' | 'open' | 'failed' = 'waiting';
  /** Bytes that came with the 101, held until the WebSocket starts (deferred start). */
  private held: Buffer[] | undefined;

  constructor(
    private readonly client: WebSocketClientConfig,
    private readonly path: string,
    private readonly host: string,
    /** Deferred start (connectWebSocket): called with the WebSocket, or the error. */
    private readonly settle?: (ws: WebSocket | undefined, err?: unknown) => void,
  ) {
    super();
  }

  override onActive(ctx: HandlerContext): void {
    const headers: Record<string, string> = {
      Host: this.host,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': this.key,
      'Sec-WebSocket-Version': '13',
    };
    const c = this.client;
    if (c.protocols.length > 0) headers['Sec-WebSocket-Protocol'] = c.protocols.join(', ');
    if (c.config.deflate !== undefined) headers['Sec-WebSocket-Extensions'] = c.config.deflate.offer();
    if (c.origin !== undefined) headers.Origin = c.origin;
    Object.assign(headers, c.headers);
    ctx.writeAndFlush({ method: 'GET', path: this.path, headers });
    this.timer = ctx.channel.timers.schedule(c.handshakeTimeout, () => {
      this.timer = undefined;
      this.fail(ctx, new WebSocketHandshakeError(`no handshake response within ${c.handshakeTimeout} ms`));
    });
    ctx.fireActive();
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (this.state === 'starting' && msg instanceof Uint8Array) {
      // Bytes after the 101, before the application could set its callbacks: held (copied: they
      // may be the loop's read buffer) until the WebSocket starts.
      if (this.held === undefined) this.held = [];
      this.held.push(Buffer.from(msg));
      return;
    }
    if (this.state !== 'waiting' || !(msg instanceof HttpClientResponse)) {
      ctx.fireRead(msg);
      return;
    }
    this.clearTimer();
    let ws: WebSocket;
    try {
      ws = this.accept(msg);
    } catch (err) {
      this.fail(ctx, err);
      return;
    }
    const pipeline = ctx.pipeline;
    const config = this.client.config;
    pipeline.addAfter(ctx.name, 'ws', new WebSocketHandler(ws));
    if (config.heartbeatInterval > 0 || config.idleTimeout > 0) {
      pipeline.addBefore(
        'ws',
        'ws-heartbeat',
        new WebSocketHeartbeat(ws, config.heartbeatInterval, config.heartbeatMissed, config.idleTimeout),
      );
    }
    // The HTTP codec has nothing more to do: the bytes it still holds come to this stage.
    const codec = pipeline.context('http-client');
    if (codec !== undefined) pipeline.remove(codec);
    const settle = this.settle;
    if (settle === undefined) {
      this.state = 'open';
      pipeline.remove(ctx);
      pipeline.context('ws')?.fireUserEvent(new WebSocketOpenEvent(ws));
      return;
    }
    // Deferred start: this stage stays until the next turn and holds what arrives meanwhile.
    this.state = 'starting';
    const channel = ctx.channel;
    channel.pauseReading(this);
    settle(ws);
    // After the code that awaited the WebSocket has run (its microtasks too): then the bytes flow.
    setImmediate(() => {
      this.state = 'open';
      if (!channel.isActive || ctx.removed) return;
      const held = this.held;
      this.held = undefined;
      if (held !== undefined) {
        for (const b of held) ctx.fireRead(b);
        ctx.fireReadComplete();
        // The connection flushes what a read burst wrote when its own read completes; this burst
        // is not one of its reads: a reply sent from onMessage would wait for the next read.
        ctx.flush();
      }
      if (!ctx.removed) pipeline.remove(ctx);
      channel.resumeReading(this);
    });
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    if (this.state === 'waiting' && error instanceof HttpResponseError) {
      this.fail(ctx, new WebSocketHandshakeError(`malformed handshake response: ${error.message}`));
      return;
    }
    ctx.fireError(error);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.clearTimer();
    if (this.state === 'waiting') {
      this.state = 'failed';
      this.settle?.(undefined, new ChannelClosedError('the connection closed during the WebSocket handshake', reason));
    }
    ctx.fireInactive(reason);
  }

  /** Checks the 101 and makes the WebSocket; throws `WebSocketHandshakeError`. */
  private accept(res: HttpClientResponse): WebSocket {
    if (res.statusCode !== 101) {
      throw new WebSocketHandshakeError(`the server answered ${res.statusCode} ${res.statusMessage}`, res.statusCode);
    }
    const h = res.headers;
    if ((h.get('upgrade') ?? '').toLowerCase() !== 'websocket')
      throw new WebSocketHandshakeError('no Upgrade: websocket in the 101');
    if (!(h.get('connection') ?? '').split(',').some((t) => t.trim().toLowerCase() === 'upgrade')) {
      throw new WebSocketHandshakeError('no Connection: upgrade in the 101');
    }
    if (h.get('sec-websocket-accept') !== acceptKey(this.key))
      throw new WebSocketHandshakeError('wrong Sec-WebSocket-Accept');
    const protocol = h.get('sec-websocket-protocol') ?? '';
    if (protocol !== '' && !this.client.protocols.includes(protocol)) {
      throw new WebSocketHandshakeError(`the server chose a subprotocol not offered: ${protocol}`);
    }
    let deflate: DeflateParams | undefined;
    const ext = h.get('sec-websocket-extensions');
    if (ext !== undefined) {
      const d = this.client.config.deflate;
      if (d === undefined) throw new WebSocketHandshakeError(`the server agreed to extensions not offered: ${ext}`);
      const r = d.acceptResponse(ext);
      if (typeof r === 'string') throw new WebSocketHandshakeError(r);
      deflate = r;
    }
    return new WebSocket(this.client.config, protocol, deflate);
  }

  private fail(ctx: HandlerContext, err: unknown): void {
    if (this.state !== 'waiting') return;
    this.state = 'failed';
    this.clearTimer();
    this.settle?.(undefined, err);
    if (this.settle === undefined) ctx.fireError(err);
    ctx.channel.abort('protocol-error');
  }

  private clearTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}

/**
 * `ws://host:port/path` or `wss://…` (also `http:`/`https:`, RFC 6455 §3's equivalents) → where to
 * connect, what to ask for, and whether over TLS (`secure`). The default port is 80, 443 for
 * `wss:`; `hostHeader` carries the port only when it is not the default (RFC 6455 §4.1, item 4).
 */
export function parseWebSocketUrl(url: string): {
  host: string;
  port: number;
  path: string;
  hostHeader: string;
  secure: boolean;
} {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidOptionError('url', `not a URL: ${JSON.stringify(url)}`);
  }
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  if (!secure && u.protocol !== 'ws:' && u.protocol !== 'http:')
    throw new InvalidOptionError('url', 'must be ws://host:port/path or wss://host:port/path');
  if (u.hash !== '') throw new InvalidOptionError('url', 'must not have a fragment (RFC 6455 §3)');
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port);
  // URL drops a scheme's default port (ws 80, wss 443), so u.host is what §4.1 wants in Host.
  return { host, port, path: `${u.pathname || '/'}${u.search}`, hostHeader: u.host, secure };
}

const HTTP1_ALPN: readonly string[] = ['http/1.1'];

/**
 * The `tls` option of `Client.connect` (or `Pool`) for a WebSocket URL and `options.tls`: undefined
 * for `ws://`; for `wss://` the options given (or `{}` for absent/`true`) with ALPN `http/1.1` unless
 * they name their own, or the given `TlsContext` as it is. Checks the TLS options (structure; the
 * PEMs when the context is built) and throws `InvalidOptionError` for `tls` with a `ws://` URL. For
 * pipelines of one's own ({@link websocketClientPipeline}), which leave TLS to the connection.
 */
export function websocketClientTls(
  url: string,
  tls: TlsClientOptions | TlsContext | true | undefined,
): TlsClientOptions | TlsContext | undefined {
  const { secure } = parseWebSocketUrl(url);
  if (!secure) {
    if (tls !== undefined) throw new InvalidOptionError('tls', 'is for wss:// URLs; this one is ws:// (plaintext)');
    return undefined;
  }
  if (tls instanceof TlsContext) {
    if (tls.isServer) throw new InvalidOptionError('tls', 'is a server context: use TlsContext.client()');
    return tls;
  }
  const given: TlsClientOptions = tls === undefined || tls === true ? {} : tls;
  resolveTlsClientOptions(given);
  return given.alpn !== undefined ? given : { ...given, alpn: HTTP1_ALPN };
}

/**
 * A client pipeline factory: the HTTP codec, then the handshake (for pipelines of one's own). What
 * concerns the connection itself (`tls`, `loop`, `connection`, `connectTimeout`) is checked here
 * but given to `Client.connect`/`Pool`: for `wss://`, connect with `tls: websocketClientTls(url,
 * options.tls)`, whose handshake completes before this pipeline hears `onActive`.
 */
export function websocketClientPipeline(
  url: string,
  options: WebSocketClientOptions = {},
  settle?: (ws: WebSocket | undefined, err?: unknown) => void,
): () => Pipeline {
  const client = new WebSocketClientConfig(options);
  const { path, hostHeader } = parseWebSocketUrl(url);
  websocketClientTls(url, options.tls);
  return () =>
    new Pipeline()
      .addLast('http-client', new HttpClientCodec({ host: hostHeader }))
      .addLast('ws-handshake', new WebSocketClientHandshake(client, path, hostHeader, settle));
}

/**
 * Connects and resolves with an open WebSocket (see the module comment); rejects with why not:
 * `InvalidOptionError` before connecting, the connect's errors, `TlsHandshakeError` for `wss://`
 * when the TLS handshake failed (a certificate that does not verify, a peer that speaks no TLS),
 * `WebSocketHandshakeError`, or `ChannelClosedError`.
 */
export async function connectWebSocket(url: string, options: WebSocketClientOptions = {}): Promise<WebSocket> {
  const target = parseWebSocketUrl(url);
  const tls = websocketClientTls(url, options.tls);
  let resolve!: (ws: WebSocket) => void;
  let reject!: (err: unknown) => void;
  const opened = new Promise<WebSocket>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const pipeline = websocketClientPipeline(url, options, (ws, err) => {
    if (ws !== undefined) resolve(ws);
    else reject(err);
  });
  // When the connect itself rejects (a failed TLS handshake) that error is the one thrown; should
  // the handshake stage have settled too, its rejection must not go unhandled.
  opened.catch(() => {});
  await Client.connect({
    ...(options.connection ?? {}),
    host: target.host,
    port: target.port,
    pipeline,
    ...(options.connectTimeout !== undefined ? { connectTimeout: options.connectTimeout } : {}),
    ...(options.loop !== undefined ? { loop: options.loop } : {}),
    ...(tls !== undefined ? { tls } : {}),
  });
  return opened;
}
