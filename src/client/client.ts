/**
 * `Client.connect()`: outgoing connections on the same loop, `Connection` and pipelines as the
 * server's (Netty's `Bootstrap` beside `ServerBootstrap`).
 *
 * ```ts
 * const conn = await Client.connect({
 *   host: '127.0.0.1',
 *   port: 7000,
 *   pipeline: () =>
 *     new Pipeline()
 *       .addLast('decoder', new JsonLinesDecoder())
 *       .addLast('encoder', new JsonLinesEncoder())
 *       .addLast('requests', new RequestResponseHandler({ ids: jsonIds('uid') })),
 * });
 * const reply = await conn.request({ op: 'echo', text: 'hi' }, { timeout: 1000 });
 * await conn.close();
 * ```
 *
 * The socket is connected first (connector.ts); only then does a `Connection` take the descriptor
 * and build the pipeline, so handlers see `onActive` on a connected socket, exactly as on the
 * server. Which loop drives it is decided by loops.ts (the given one, the serving one, or a
 * standalone one that closes with its last connection).
 */
import { isIP } from 'node:net';
import { ChannelClosedError, InvalidOptionError, ReactorError, SyscallError } from '../common/errors.js';
import {
  checkOptions,
  describeValue,
  fnOption,
  intOption,
  type KnownKeys,
  type OptionKeys,
} from '../common/options.js';
import type { Channel } from '../pipeline/channel.js';
import type { CloseReason } from '../pipeline/handler.js';
import type { Pipeline, PipelineSpec } from '../pipeline/pipeline.js';
import { close as sysClose } from '../syscalls/libc.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { applySocketOptions, sockaddrFor } from '../syscalls/socket.js';
import { type ClientTarget, TlsContext } from '../tls/context.js';
import { TlsHandler } from '../tls/handler.js';
import { resolveTlsClientOptions, type TlsClientOptions } from '../tls/options.js';
import { Connection } from '../worker/connection.js';
import type { EventLoop } from '../worker/loop.js';
import {
  CONNECTION_OPTIONS,
  type ConnectionOptions,
  type ResolvedConnectionOptions,
  resolveConnectionOptions,
} from '../worker/options.js';
import { connectSocket, defaultLookup, type LookupFunction } from './connector.js';
import { acquireLoop, type LoopLease } from './loops.js';
import { findRequestHandler, type RequestOptions, type RequestResponseHandler } from './request-response.js';

/**
 * What `Client.connect()` takes (and, but for `signal`, a `Pool`). Only `port` and `pipeline` are
 * required. The connection options ({@link ConnectionOptions}: watermarks, read sizes, TCP options
 * such as `noDelay`, `keepAlive`) are the server's. Every field is checked before any socket is
 * opened: a bad value or an unknown key rejects with `InvalidOptionError` naming it.
 */
export interface ClientOptions extends ConnectionOptions {
  /** An IPv4 or IPv6 literal, or a host name resolved with `dns.lookup` (every address tried in order). Default `'localhost'`. */
  readonly host?: string;
  /** The port to connect to (1–65535). */
  readonly port: number;
  /** The connection's pipeline: a `Pipeline` subclass or a factory `(channel) => Pipeline`, as for servers. */
  readonly pipeline: PipelineSpec;
  /** ms for resolving and connecting, all addresses together; 0 leaves it to the kernel (~2 min). Default 10 000. */
  readonly connectTimeout?: number;
  /** Address family for host names: 4, 6, or 0 for both. Default 0. */
  readonly family?: 0 | 4 | 6;
  /** Resolves host names; default `dns.lookup` with `all: true`. */
  readonly lookup?: LookupFunction;
  /** The loop to run on. Default: the loop serving in this process, else a standalone one (docs/client.md). */
  readonly loop?: EventLoop;
  /** Aborting cancels a connect in progress (rejecting with the signal's reason). */
  readonly signal?: AbortSignal;
  /**
   * Speak TLS (docs/tls.md): options (`true` for every default: Node's root CAs, the server's name
   * checked), or a `TlsContext.client(…)` shared by many connections. `connect` resolves once the
   * handshake completed and rejects with `TlsHandshakeError` when it failed.
   */
  readonly tls?: TlsClientOptions | TlsContext | true;
}

/** The keys of `ClientOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const CLIENT_OPTIONS = {
  ...CONNECTION_OPTIONS,
  host: true,
  port: true,
  pipeline: true,
  connectTimeout: true,
  family: true,
  lookup: true,
  loop: true,
  signal: true,
  tls: true,
} as const satisfies OptionKeys<ClientOptions>;

/** Client options checked and defaulted (shared with the pool). */
export interface ResolvedClientOptions {
  readonly host: string;
  readonly port: number;
  readonly pipeline: PipelineSpec;
  readonly connectTimeout: number;
  readonly family: 0 | 4 | 6;
  readonly lookup: LookupFunction;
  readonly connection: ResolvedConnectionOptions;
  /** TLS options (checked; the context is built per connection or per pool), or a context to use. */
  readonly tls: TlsClientOptions | TlsContext | true | undefined;
}

/**
 * Checks every client option; throws `InvalidOptionError` naming the first bad one. `owner` and
 * `known`: the API whose (larger) options these are, and its keys (a pool's).
 */
export function resolveClientOptions(
  options: ClientOptions,
  owner = 'Client.connect',
  known: KnownKeys = CLIENT_OPTIONS,
): ResolvedClientOptions {
  checkOptions(owner, options as ClientOptions | undefined, known);
  if (options === undefined) throw new InvalidOptionError('port', 'is required');
  const host = options.host ?? 'localhost';
  if (typeof host !== 'string' || host.length === 0) {
    throw new InvalidOptionError('host', `must be a non-empty string, got ${describeValue(host)}`);
  }
  if (typeof (options.pipeline as unknown) !== 'function') {
    throw new InvalidOptionError('pipeline', 'must be a Pipeline subclass or a function returning a Pipeline');
  }
  const family = options.family ?? 0;
  if (family !== 0 && family !== 4 && family !== 6) {
    throw new InvalidOptionError('family', `must be 0, 4 or 6, got ${describeValue(family)}`);
  }
  const lookup = fnOption('lookup', options.lookup) ?? defaultLookup;
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidOptionError('signal', `must be an AbortSignal, got ${describeValue(options.signal)}`);
  }
  const tls = options.tls;
  if (tls instanceof TlsContext) {
    if (tls.isServer) throw new InvalidOptionError('tls', 'is a server context: use TlsContext.client()');
  } else if (tls !== undefined) {
    resolveTlsClientOptions(tls);
  }
  return {
    host,
    port: intOption('port', options.port, 1, 65535),
    pipeline: options.pipeline,
    connectTimeout: intOption('connectTimeout', options.connectTimeout ?? 10_000, 0),
    family,
    lookup,
    connection: resolveConnectionOptions(options, owner),
    tls,
  };
}

/** Whom a TLS client connection talks to: SNI (never an IP address, RFC 6066 §3), the name to check, the session key. */
function tlsTarget(o: ResolvedClientOptions): ClientTarget {
  const tls = o.tls;
  const given = tls !== undefined && tls !== true && !(tls instanceof TlsContext) ? tls.servername : undefined;
  const servername = given ?? (isIP(o.host) === 0 ? o.host : undefined);
  return { servername, verifyHost: servername ?? o.host, sessionKey: `${servername ?? o.host}:${o.port}` };
}

/** Internal: what the pool needs beyond the public options. */
export interface OpenHooks {
  /** Called once the pipeline is built and active (with TLS: once the handshake completed). */
  readonly afterOpen?: (conn: ClientConnection) => void;
  /** The TLS context to use (a pool's), instead of one built for this connection. */
  readonly tls?: TlsContext;
}

/**
 * An established client connection: its `channel` (as handlers see it), its pipeline, and a
 * promise for its end. `request()` forwards to the pipeline's `RequestResponseHandler`.
 */
export class ClientConnection {
  /** Resolves with the close reason once the connection closed (never rejects). */
  readonly closed: Promise<CloseReason>;
  private handler: RequestResponseHandler | undefined;

  /** @internal */
  constructor(
    private readonly conn: Connection,
    /** The address that answered (one of those `host` resolved to). */
    readonly address: string,
    closed: Promise<CloseReason>,
  ) {
    this.closed = closed;
  }

  /** The connection as handlers see it (`ctx.channel`). */
  get channel(): Channel {
    return this.conn;
  }

  get pipeline(): Pipeline {
    return this.conn.pipeline;
  }

  get isActive(): boolean {
    return this.conn.isActive;
  }

  get remoteAddress(): SocketAddress | undefined {
    return this.conn.remoteAddress;
  }

  get localAddress(): SocketAddress | undefined {
    return this.conn.localAddress;
  }

  /** The socket's own peer (see `Channel.socketRemoteAddress`): the same as `remoteAddress` unless a stage set others. */
  get socketRemoteAddress(): SocketAddress | undefined {
    return this.conn.socketRemoteAddress;
  }

  /** The pipeline's `RequestResponseHandler` (the first one), if it has one. */
  get requests(): RequestResponseHandler | undefined {
    if (this.handler === undefined && this.conn.isActive) this.handler = findRequestHandler(this.conn.pipeline);
    return this.handler;
  }

  /** Writes at the tail of the pipeline (encoders turn it into bytes). */
  write(msg: unknown): void {
    this.conn.write(msg);
  }

  flush(): void {
    this.conn.flush();
  }

  writeAndFlush(msg: unknown): void {
    this.conn.writeAndFlush(msg);
  }

  /**
   * Sends a request through the pipeline's `RequestResponseHandler` and resolves with its reply
   * (see `RequestResponseHandler.request`).
   */
  request<R = unknown>(msg: unknown, options?: RequestOptions): Promise<R> {
    const h = this.requests;
    if (h === undefined) {
      return Promise.reject(
        this.conn.isActive
          ? new ReactorError('ERR_NO_REQUEST_HANDLER', 'request(): the pipeline has no RequestResponseHandler')
          : new ChannelClosedError('the connection is closed', this.conn.closeReason),
      );
    }
    return h.request<R>(msg, options);
  }

  /** Graceful close: flush, FIN, wait for the peer's FIN (lingerTimeout); resolves with the reason. */
  close(reason: CloseReason = 'local'): Promise<CloseReason> {
    this.conn.close(reason);
    return this.closed;
  }

  /** Closes now, dropping what is queued; resolves with the reason. */
  abort(reason: CloseReason = 'aborted'): Promise<CloseReason> {
    this.conn.abort(reason);
    return this.closed;
  }
}

/** Connects an already validated request on a leased loop; the lease is released when it closes. */
export async function openConnection(
  o: ResolvedClientOptions,
  lease: LoopLease,
  signal: AbortSignal | undefined,
  hooks: OpenHooks = {},
): Promise<ClientConnection> {
  const loop = lease.loop;
  if (o.connection.maxReadSize > loop.readBuffer.length) {
    lease.release();
    throw new InvalidOptionError(
      'maxReadSize',
      `must not exceed the loop's read buffer (${loop.readBuffer.length} bytes), got ${o.connection.maxReadSize}`,
    );
  }
  let connected: { fd: number; address: string };
  try {
    connected = await connectSocket(loop, {
      host: o.host,
      port: o.port,
      connectTimeout: o.connectTimeout,
      family: o.family,
      lookup: o.lookup,
      signal,
    });
  } catch (err) {
    lease.release();
    throw err;
  }
  const { fd, address } = connected;
  const r = applySocketOptions(fd, o.connection.socket);
  if (r < 0) {
    sysClose(fd);
    lease.release();
    throw new SyscallError('setsockopt', -r, { address, port: o.port });
  }
  let resolveClosed: (reason: CloseReason) => void = () => {};
  const closed = new Promise<CloseReason>((resolve) => {
    resolveClosed = resolve;
  });
  let removeHook: (() => void) | undefined;
  let ended = false;
  let end = (reason: CloseReason) => {
    if (ended) return;
    ended = true;
    removeHook?.();
    lease.release();
    resolveClosed(reason);
  };
  // TLS: the context the pool shares, one given in the options, or one made for this connection
  // (and freed with it).
  let tls: TlsContext | undefined = hooks.tls ?? (o.tls instanceof TlsContext ? o.tls : undefined);
  if (tls === undefined && o.tls !== undefined && !(o.tls instanceof TlsContext)) {
    try {
      tls = TlsContext.client(o.tls, loop.logger);
    } catch (err) {
      sysClose(fd);
      lease.release();
      throw err;
    }
    const own = tls;
    const release = end;
    end = (reason) => {
      own.close();
      release(reason);
    };
  }
  const tlsHandler = tls === undefined ? undefined : new TlsHandler(tls, tlsTarget(o));
  const conn = new Connection(
    {
      loop,
      pipeline: o.pipeline,
      options: o.connection,
      onClosed: (c) => end(c.closeReason ?? 'local'),
      // TLS goes first, before the user's pipeline, as on the server side (pipeline/stages.ts).
      ...(tlsHandler === undefined ? {} : { stages: [{ name: 'tls', create: () => tlsHandler }] }),
    },
    fd,
  );
  // The peer is the address that answered: known without a getpeername, and for the connection's
  // whole life (also in onInactive, after the descriptor is closed).
  const peer = sockaddrFor(address, o.port);
  conn.setSocketAddresses(peer, peer.length);
  if (!conn.open()) {
    // open() closed the descriptor and logged why (a pipeline that threw, an fd the poller refused).
    end(conn.closeReason ?? 'error');
    throw new ChannelClosedError(
      `connected to ${address}:${o.port} but the connection could not be opened (see the log)`,
      conn.closeReason,
    );
  }
  const client = new ClientConnection(conn, address, closed);
  if (conn.isActive) {
    // A server stopping closes its loop: client connections on it end then, as 'shutdown'.
    removeHook = loop.onClose(() => conn.abort('shutdown'));
    if (tlsHandler !== undefined) {
      // The signal still cancels while the handshake runs (handshakeTimeout bounds it otherwise).
      let aborted: unknown;
      const onAbort = () => {
        aborted = signal?.reason;
        conn.abort();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await tlsHandler.handshake();
      } catch (err) {
        conn.abort();
        throw aborted ?? err;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      if (!conn.isActive) {
        throw new ChannelClosedError(
          `the connection to ${address}:${o.port} closed after the TLS handshake`,
          conn.closeReason,
        );
      }
    }
    hooks.afterOpen?.(client);
  }
  return client;
}

/**
 * Outgoing connections on the same loop as the server's (Netty's `Bootstrap` beside
 * `ServerBootstrap`): a client connection is a `Connection` with a pipeline, exactly like an
 * accepted one — the same handlers, codecs, backpressure and close reasons. Inside a worker it runs
 * on the worker's loop (a proxy or gateway talks to its upstreams without leaving the loop);
 * elsewhere on a standalone loop that closes with its last connection (docs/client.md).
 *
 * The socket is connected first; only then is the pipeline built, so handlers see `onActive` on a
 * connected socket. For request/response protocols put a {@link RequestResponseHandler} last and
 * call `conn.request()`, or use a {@link Pool}.
 *
 * @example
 * ```ts
 * import { Client, JsonLinesDecoder, JsonLinesEncoder, jsonIds, Pipeline, RequestResponseHandler } from 'multireactor';
 *
 * const conn = await Client.connect({
 *   host: '127.0.0.1',
 *   port: 7000,
 *   pipeline: () =>
 *     new Pipeline()
 *       .addLast('decoder', new JsonLinesDecoder())
 *       .addLast('encoder', new JsonLinesEncoder())
 *       .addLast('requests', new RequestResponseHandler({ ids: jsonIds('uid') })),
 * });
 * const reply = await conn.request<{ text: string }>({ op: 'echo', text: 'hi' }, { timeout: 1000 });
 * console.log(reply.text);
 * await conn.close();
 * ```
 */
export const Client = {
  /**
   * Connects and builds the pipeline; resolves once `onActive` ran. Rejects with
   * `InvalidOptionError` for a bad option (before anything is opened), `SyscallError` carrying
   * the address (`ECONNREFUSED`, `ENETUNREACH`, … — of the last address tried),
   * `ConnectTimeoutError`, a DNS error (`ENOTFOUND`), or the signal's reason.
   */
  async connect(options: ClientOptions): Promise<ClientConnection> {
    const o = resolveClientOptions(options);
    const lease = acquireLoop(options.loop);
    return openConnection(o, lease, options.signal);
  },
};
