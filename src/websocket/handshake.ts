/**
 * The server's opening handshake (RFC 6455 §4.2) and `websocket(onConnection, options)`, the
 * pipeline of a port that speaks WebSocket only.
 *
 * ```ts
 * await Server.listen({
 *   port: 8080,
 *   pipeline: websocket((ws, req) => {
 *     ws.onMessage = (data, isBinary) => ws.send(data, isBinary);
 *   }, { perMessageDeflate: true, heartbeat: { interval: 30_000 } }),
 * });
 * ```
 *
 * The pipeline starts as `HttpRequestDecoder` → `WebSocketHandshakeHandler`. The handshake request
 * is validated (§4.2.1): `GET`, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`,
 * `Sec-WebSocket-Version: 13` (else 426 naming the version we speak), one `Sec-WebSocket-Key` of
 * 16 base64-encoded bytes (else 400); the application may refuse the `Origin` (403) and picks the
 * subprotocol; permessage-deflate is negotiated. The 101 goes out and the handshake stage replaces
 * itself with the WebSocket's (and the heartbeat's, when asked); the decoder has already stepped
 * aside after the upgrade request and hands on the bytes that followed it, so frames pipelined
 * behind the handshake are not lost. Anything else is answered with its status and closed.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { HttpParseError, HttpRequest } from '../codec/http1/request.js';
import { HttpRequestDecoder } from '../codec/http1/request-decoder.js';
import { InvalidOptionError } from '../common/errors.js';
import type { Timeout } from '../common/timing-wheel.js';
import { DRAINING } from '../pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { markClientSpeaksFirst } from '../pipeline/speaks-first.js';
import type { DeflateParams } from './deflate.js';
import { WebSocketHeartbeat } from './heartbeat.js';
import { rejectUnknown, WEBSOCKET_OPTION_KEYS, WebSocketConfig, type WebSocketOptions } from './options.js';
import { WebSocket, WebSocketHandler } from './websocket.js';

/** RFC 6455 §1.3: appended to the key before hashing. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2: base64 of the SHA-1 of key + GUID). */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** 16 bytes in base64: 22 characters and `==` (§4.1: "a randomly selected 16-byte value"). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Called with each new WebSocket, before any of its messages: set `onMessage`, `onClose` … here. */
export type ConnectionHandler = (ws: WebSocket, req: HttpRequest) => void;

/**
 * What {@link websocket} takes: the WebSocket's own options ({@link WebSocketOptions}) and the
 * handshake's — who may connect (`origin`), which subprotocol, and its limits.
 */
export interface WebSocketServerOptions extends WebSocketOptions {
  /**
   * Accepts or refuses the page a browser connects from (`Origin`, undefined for non-browser
   * clients): false answers 403. Default: every origin.
   */
  readonly origin?: (origin: string | undefined, req: HttpRequest) => boolean;
  /**
   * Chooses the subprotocol among those the client offers (`Sec-WebSocket-Protocol`, in its order
   * of preference): one of them, or undefined for none. Default: none.
   */
  readonly protocols?: (offered: readonly string[], req: HttpRequest) => string | undefined;
  /** ms from the connection's start until its handshake must be done, else it is closed. Default 10 000. */
  readonly handshakeTimeout?: number;
  /** Largest handshake request head, in bytes (431 beyond). Default 16 KiB. */
  readonly maxHeaderSize?: number;
}

const SERVER_KEYS = [...WEBSOCKET_OPTION_KEYS, 'origin', 'protocols', 'handshakeTimeout', 'maxHeaderSize'];
/** The options of a WebSocket route in an HTTP server (route.ts). */
export const ROUTE_KEYS = [...WEBSOCKET_OPTION_KEYS, 'origin', 'protocols'];

/** The checked server options and the application's callbacks. */
export class WebSocketServerConfig {
  readonly config: WebSocketConfig;
  readonly handshakeTimeout: number;
  readonly maxHeaderSize: number;
  readonly origin: ((origin: string | undefined, req: HttpRequest) => boolean) | undefined;
  readonly protocols: ((offered: readonly string[], req: HttpRequest) => string | undefined) | undefined;

  constructor(
    readonly onConnection: ConnectionHandler,
    o: WebSocketServerOptions,
    /** The option keys allowed (the HTTP route takes no handshake limits: the HTTP stage has them). */
    keys: readonly string[] = SERVER_KEYS,
  ) {
    if (typeof onConnection !== 'function') {
      throw new TypeError('websocket(onConnection): onConnection must be a function (ws, req) => …');
    }
    if (o === null || typeof o !== 'object') throw new InvalidOptionError('options', 'must be an object');
    rejectUnknown(o, keys);
    this.config = new WebSocketConfig(false, o);
    this.handshakeTimeout = positive('handshakeTimeout', o.handshakeTimeout, 10_000);
    this.maxHeaderSize = positive('maxHeaderSize', o.maxHeaderSize, 16 * 1024);
    for (const name of ['origin', 'protocols'] as const) {
      if (o[name] !== undefined && typeof o[name] !== 'function') {
        throw new InvalidOptionError(name, `must be a function, got ${typeof o[name]}`);
      }
    }
    this.origin = o.origin;
    this.protocols = o.protocols;
  }
}

/** What a handshake request gets: the 101's fields and what was agreed, or a refusal. */
export type HandshakeResult =
  | {
      readonly ok: true;
      /** Fields of the 101 response. */
      readonly headers: ReadonlyArray<readonly [string, string]>;
      readonly protocol: string;
      readonly deflate: DeflateParams | undefined;
    }
  | {
      readonly ok: false;
      readonly status: number;
      readonly message: string;
      readonly headers: ReadonlyArray<readonly [string, string]>;
    };

const NEED_UPGRADE: ReadonlyArray<readonly [string, string]> = [
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Version', '13'],
];

/** Validates a handshake request (§4.2.1) and negotiates; throws only for an application bug. */
export function handshake(req: HttpRequest, server: WebSocketServerConfig): HandshakeResult {
  const h = req.headers;
  const refuse = (status: number, message: string, headers: ReadonlyArray<readonly [string, string]> = []) =>
    ({ ok: false, status, message, headers }) as const;
  if (req.method !== 'GET') return refuse(405, 'a WebSocket handshake is a GET request', [['Allow', 'GET']]);
  if (req.httpVersion !== '1.1') return refuse(400, 'a WebSocket handshake needs HTTP/1.1');
  // RFC 9110 §15.5.22: a 426 says which protocol to upgrade to.
  if (!hasToken(h.get('upgrade'), 'websocket')) return refuse(426, 'this endpoint speaks WebSocket', NEED_UPGRADE);
  if (!hasToken(h.get('connection'), 'upgrade')) return refuse(426, 'Connection: upgrade is missing', NEED_UPGRADE);
  if (h.get('sec-websocket-version') !== '13') {
    return refuse(426, 'unsupported Sec-WebSocket-Version (13 is)', [['Sec-WebSocket-Version', '13']]);
  }
  const keys = h.getAll('sec-websocket-key');
  const key = keys.length === 1 ? (keys[0] as string) : '';
  if (!KEY.test(key)) return refuse(400, 'Sec-WebSocket-Key must be one base64-encoded 16-byte value');
  if (server.origin !== undefined && !server.origin(h.get('origin') ?? undefined, req)) {
    return refuse(403, 'origin not allowed');
  }
  const headers: [string, string][] = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', acceptKey(key)],
  ];
  let protocol = '';
  const offered = h.get('sec-websocket-protocol');
  if (offered !== undefined && offered !== null && server.protocols !== undefined) {
    const list = offered
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    if (!list.every((p) => TOKEN.test(p))) return refuse(400, 'Sec-WebSocket-Protocol must be a list of tokens');
    const chosen = server.protocols(list, req);
    if (chosen !== undefined) {
      if (!list.includes(chosen))
        throw new TypeError(`protocols() chose ${JSON.stringify(chosen)}, which was not offered`);
      protocol = chosen;
      headers.push(['Sec-WebSocket-Protocol', chosen]);
    }
  }
  let deflate: DeflateParams | undefined;
  const ext = h.get('sec-websocket-extensions');
  if (ext !== undefined && ext !== null && server.config.deflate !== undefined) {
    deflate = server.config.deflate.accept(ext);
    if (deflate !== undefined) headers.push(['Sec-WebSocket-Extensions', deflate.response]);
  }
  return { ok: true, headers, protocol, deflate };
}

/**
 * Makes the WebSocket for an accepted handshake and puts its stages in place of `ctx`'s handler,
 * or at the end of a pipeline (the heartbeat before it when asked); then calls the application.
 * Returns the WebSocket.
 */
export function installWebSocket(
  ctx: HandlerContext | Pipeline,
  server: WebSocketServerConfig,
  req: HttpRequest,
  protocol: string,
  deflate: DeflateParams | undefined,
): WebSocket {
  const config = server.config;
  const ws = new WebSocket(config, protocol, deflate);
  // In place of the handshake stage (a WebSocket-only port), or at the end (a switched HTTP connection).
  let pipeline: Pipeline;
  if (ctx instanceof Pipeline) {
    pipeline = ctx;
    pipeline.addLast('ws', new WebSocketHandler(ws));
  } else {
    pipeline = ctx.pipeline;
    pipeline.replace(ctx, 'ws', new WebSocketHandler(ws));
  }
  if (config.heartbeatInterval > 0 || config.idleTimeout > 0) {
    pipeline.addBefore(
      'ws',
      'ws-heartbeat',
      new WebSocketHeartbeat(ws, config.heartbeatInterval, config.heartbeatMissed, config.idleTimeout),
    );
  }
  try {
    server.onConnection(ws, req);
  } catch (err) {
    ws.close(1011, 'internal error');
    pipeline.fireError(err);
  }
  return ws;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  505: 'HTTP Version Not Supported',
};

/** An HTTP/1.1 response head (and a short text body for errors), as bytes. */
function responseBytes(status: number, headers: ReadonlyArray<readonly [string, string]>, body?: string): Buffer {
  let head = `HTTP/1.1 ${status} ${status === 101 ? 'Switching Protocols' : (STATUS_TEXT[status] ?? 'Error')}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  if (body !== undefined) {
    const text = `${body}\n`;
    head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`;
  } else head += '\r\n';
  return Buffer.from(head);
}

/** The stage that answers the handshake on a WebSocket-only port (see the module comment). */
export class WebSocketHandshakeHandler extends ChannelInboundHandler {
  private timer: Timeout | undefined;
  private done = false;

  constructor(private readonly server: WebSocketServerConfig) {
    super();
  }

  handlerAdded(ctx: HandlerContext): void {
    if (ctx.channel.isActive) this.arm(ctx);
  }

  handlerRemoved(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  override onActive(ctx: HandlerContext): void {
    this.arm(ctx);
    ctx.fireActive();
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (this.done || !isRequest(msg)) {
      // Bytes that followed the handshake: the WebSocket's (the decoder hands them on from here).
      ctx.fireRead(msg);
      return;
    }
    this.done = true;
    this.timer?.cancel();
    this.timer = undefined;
    let result: HandshakeResult;
    try {
      result = handshake(msg, this.server);
    } catch (err) {
      this.refuse(ctx, 500, 'internal error', []);
      ctx.fireError(err);
      return;
    }
    if (!result.ok) {
      this.refuse(ctx, result.status, result.message, result.headers);
      return;
    }
    ctx.write(responseBytes(101, result.headers));
    installWebSocket(ctx, this.server, msg, result.protocol, result.deflate);
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    if (error instanceof HttpParseError && !this.done) {
      this.done = true;
      this.refuse(ctx, error.statusCode, error.message, []);
      return;
    }
    ctx.fireError(error);
  }

  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    // Stopping before the handshake completed: nothing to say goodbye to.
    if (event === DRAINING && !this.done) ctx.close('shutdown');
    else ctx.fireUserEvent(event);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.handlerRemoved();
    ctx.fireInactive(reason);
  }

  private refuse(
    ctx: HandlerContext,
    status: number,
    message: string,
    headers: ReadonlyArray<readonly [string, string]>,
  ): void {
    ctx.write(responseBytes(status, headers, message));
    ctx.close('protocol-error');
  }

  private arm(ctx: HandlerContext): void {
    if (this.timer !== undefined || this.done) return;
    this.timer = ctx.channel.timers.schedule(this.server.handshakeTimeout, () => {
      this.timer = undefined;
      if (this.done) return;
      this.done = true;
      this.refuse(ctx, 408, 'handshake timeout', []);
    });
  }
}

/**
 * A pipeline factory for a port that speaks WebSocket only (RFC 6455, permessage-deflate): the
 * opening handshake on any path, then `onConnection(ws, req)` for each connection — set the
 * {@link WebSocket}'s callbacks there; no message is delivered before it returns. A handshake that
 * is not valid is answered (400, 403 from `origin`, 426) and closed. Options are checked now,
 * once, for every connection (`InvalidOptionError`). To serve WebSocket on a path of an HTTP
 * server instead, use {@link websocketRoute}.
 *
 * @example
 * ```ts
 * import { Server, WebSocketGroup, websocket } from 'multireactor';
 *
 * const everyone = new WebSocketGroup(); // per worker: see docs/websocket.md for every worker
 * await Server.listen({
 *   port: 9001,
 *   pipeline: websocket(
 *     (ws, req) => {
 *       ws.data = { name: req.query.name ?? 'anonymous' };
 *       everyone.join(ws); // left again when it closes
 *       ws.onMessage = (data, isBinary) => everyone.publish(data, isBinary, ws); // to everyone else
 *       ws.onClose = (code, reason) => console.log('closed', code, reason);
 *     },
 *     {
 *       perMessageDeflate: true,
 *       heartbeat: { interval: 30_000 }, // ping after 30 s of silence; 2 unanswered pings close
 *       maxMessageSize: 1024 * 1024,
 *       origin: (origin) => origin === undefined || origin === 'https://example.com',
 *     },
 *   ),
 * });
 * ```
 */
export function websocket(onConnection: ConnectionHandler, options: WebSocketServerOptions = {}): () => Pipeline {
  const server = new WebSocketServerConfig(onConnection, options);
  // The decoder keeps no clock (the HTTP server stage owns HTTP's timeouts): the handshake stage's
  // own timer bounds the whole handshake (handshakeTimeout, 408).
  const decoderOptions = { maxHeaderSize: server.maxHeaderSize, maxBodySize: 0 };
  // The client opens with its HTTP Upgrade request (RFC 6455 §4.1): listeners may defer accepting.
  return markClientSpeaksFirst(() =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder(decoderOptions))
      .addLast('ws-handshake', new WebSocketHandshakeHandler(server)),
  );
}

function isRequest(msg: unknown): msg is HttpRequest {
  return msg instanceof HttpRequest;
}

/** Whether the comma-separated `value` lists `token` (case-insensitive). */
function hasToken(value: string | undefined | null, token: string): boolean {
  if (value === undefined || value === null) return false;
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

function positive(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new InvalidOptionError(name, `must be a positive integer, got ${String(v)}`);
  }
  return v;
}
