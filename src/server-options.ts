/**
 * The options of `Server.listen()`, their defaults, and their validation — one place for the
 * in-process server, the master and its workers.
 */
import { availableParallelism } from 'node:os';
import { InvalidOptionError } from './common/errors.js';
import { bool, checkOptions, describeValue, intOption, type OptionKeys, oneOf, optionalInt } from './common/options.js';
import { controlPathForPidFile } from './ops/protocol.js';
import type { PipelineSpec } from './pipeline/pipeline.js';
import { clientSpeaksFirst } from './pipeline/speaks-first.js';
import type { ServerStage } from './pipeline/stages.js';
import { tryPipeline } from './pipeline/trial.js';
import { closeStages, type ServerProxyProtocolOptions, serverStages } from './server-stages.js';
import { encodeUnixSockaddr, ipFamily } from './syscalls/sockaddr.js';
import type { TlsServerOptions } from './tls/options.js';
import {
  CONNECTION_OPTIONS,
  type ConnectionOptions,
  LOOP_OPTIONS,
  type LoopOptions,
  type ResolvedConnectionOptions,
  resolveConnectionOptions,
  resolveLoopOptions,
} from './worker/options.js';

/** How the master runs its workers. */
export interface ClusterOptions {
  /** Worker processes. 0 serves in this process. Default `os.availableParallelism()`. */
  readonly workers?: number;
  /**
   * `'reuseport'` (default): one listening socket per worker slot, all bound with SO_REUSEPORT;
   * the kernel spreads new connections across them. `'shared'`: one socket in every worker,
   * registered with EPOLLEXCLUSIVE so that a connection wakes one worker, not all.
   */
  readonly balance?: 'reuseport' | 'shared';
  /** Reload one slot at a time (`'rolling'`, default) or every worker at once (`'all'`). */
  readonly reloadStrategy?: 'rolling' | 'all';
  /** How long a new worker has to report ready, in ms. Default 10 000. */
  readonly startTimeout?: number;
  /** Delay before re-forking a crashed worker, in ms; doubles with each crash in the window. Default 100. */
  readonly restartDelay?: number;
  /** Upper bound of that delay, in ms. Default 5 000. */
  readonly maxRestartDelay?: number;
  /** More crashes than this of one slot within `crashWindow` is a crash loop: the slot is not restarted. Default 5. */
  readonly maxCrashes?: number;
  /** The crash-loop window, in ms. Default 60 000. */
  readonly crashWindow?: number;
  /** The script workers run. Default: this process's entry script (`process.argv[1]`). */
  readonly workerScript?: string;
  /** Arguments for it. Default: this process's (`process.argv.slice(2)`). */
  readonly workerArgs?: readonly string[];
  /**
   * The master handles SIGTERM/SIGINT (stop), SIGQUIT (graceful stop, no deadline) and
   * SIGUSR2/SIGHUP (reload), and exits when stopped by a signal. Default true.
   */
  readonly handleSignals?: boolean;
  /**
   * The master is meant to outlive the process that started it (`nohup`, a script that starts it
   * in the background and exits); it does not detach by itself. Default false: a master whose
   * parent process dies stops gracefully, as on SIGTERM — killing `npm start` stops the server.
   */
  readonly daemon?: boolean;
}

/** The mode of a listening Unix socket file unless `socketMode` says otherwise: owner and group may connect. */
export const DEFAULT_SOCKET_MODE = 0o660;

/** The admin HTTP listener of a master (`/metrics`, `/healthz`, `/readyz`: docs/operations.md). */
export type AdminListenOptions =
  | {
      /** IPv4 or IPv6 literal. Default `'127.0.0.1'`: metrics are not for the whole network unless said so. */
      readonly host?: string;
      /** Port; 0 picks a free one (the master logs it). */
      readonly port: number;
    }
  | {
      /** A Unix domain socket path. */
      readonly path: string;
      /** Permission bits of the socket file. Default 0o660. */
      readonly mode?: number;
    };

/** The control socket of a master, for the `multireactor` command line (docs/operations.md). */
export type ControlSocketOptions =
  | string
  | {
      readonly path: string;
      /** Permission bits of the socket file: who may connect may stop the server. Default 0o600. */
      readonly mode?: number;
    };

/** Running a master in production: pid file, control socket, admin listener, the stop delay (docs/operations.md). */
export interface OperationsOptions {
  /**
   * Writes the master's pid to this file at start and removes it at exit; refuses to start while
   * the file names a live process (a stale file is replaced, and the log says so). Also opens the
   * control socket next to it (`/run/app.pid` → `/run/app.ctl.sock`) unless `control` says where.
   */
  readonly pidFile?: string;
  /** A Unix socket the `multireactor` command line talks to (status, reload, stop, metrics). */
  readonly control?: ControlSocketOptions;
  /** An HTTP listener in the master: `/metrics` (Prometheus), `/healthz`, `/readyz`. */
  readonly admin?: AdminListenOptions;
  /**
   * On SIGTERM, how long to go on serving with `/readyz` failing before the drain starts, in ms:
   * a Kubernetes endpoint takes seconds to stop sending a terminating pod new connections. Default 0.
   */
  readonly shutdownDelay?: number;
}

/** The keys of `OperationsOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const OPERATIONS_OPTIONS = {
  pidFile: true,
  control: true,
  admin: true,
  shutdownDelay: true,
} as const satisfies OptionKeys<OperationsOptions>;

const ADMIN_TCP_OPTIONS = { host: true, port: true } as const;
const ADMIN_PATH_OPTIONS = { path: true, mode: true } as const;
const CONTROL_OPTIONS = { path: true, mode: true } as const;

/** The operations options resolved: where each listener goes, with its mode. */
export interface ResolvedOperations {
  readonly pidFile: string | undefined;
  readonly control: { readonly path: string; readonly mode: number } | undefined;
  readonly admin:
    | { readonly host: string; readonly port: number }
    | { readonly path: string; readonly mode: number }
    | undefined;
  readonly shutdownDelay: number;
}

function modeOption(name: string, v: unknown, fallback: number): number {
  return intOption(name, v ?? fallback, 0, 0o777);
}

function pathOption(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') {
    throw new InvalidOptionError(name, `must be a non-empty path, got ${describeValue(v)}`);
  }
  return v;
}

/** Checks and resolves the operations options (undefined fields: not used). */
export function resolveOperations(options: OperationsOptions): ResolvedOperations {
  const pidFile = options.pidFile === undefined ? undefined : pathOption('pidFile', options.pidFile);
  let control: ResolvedOperations['control'];
  const c: unknown = options.control;
  if (typeof c === 'string') control = { path: pathOption('control', c), mode: 0o600 };
  else if (c !== undefined) {
    const o = checkOptions('control', c as object, CONTROL_OPTIONS, 'control.') as { path?: unknown; mode?: unknown };
    control = { path: pathOption('control.path', o.path), mode: modeOption('control.mode', o.mode, 0o600) };
  } else if (pidFile !== undefined) control = { path: controlPathForPidFile(pidFile), mode: 0o600 };
  let admin: ResolvedOperations['admin'];
  const a: unknown = options.admin;
  if (a !== undefined) {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) {
      throw new InvalidOptionError('admin', `must be { host?, port } or { path, mode? }, got ${describeValue(a)}`);
    }
    if ('path' in a) {
      const o = checkOptions('admin', a, ADMIN_PATH_OPTIONS, 'admin.') as { path?: unknown; mode?: unknown };
      admin = { path: pathOption('admin.path', o.path), mode: modeOption('admin.mode', o.mode, 0o660) };
    } else {
      const o = checkOptions('admin', a, ADMIN_TCP_OPTIONS, 'admin.') as { host?: unknown; port?: unknown };
      const host = o.host ?? '127.0.0.1';
      if (typeof host !== 'string' || ipFamily(host) === 0) {
        throw new InvalidOptionError('admin.host', `must be an IPv4 or IPv6 address, got ${describeValue(host)}`);
      }
      admin = { host, port: intOption('admin.port', o.port, 0, 65535) };
    }
  }
  return {
    pidFile,
    control,
    admin,
    shutdownDelay: intOption('shutdownDelay', options.shutdownDelay ?? 0, 0, 3_600_000),
  };
}

/**
 * Everything `Server.listen()` takes. Only `pipeline` is required; every other field has a default
 * (named on the field, and all in one table in docs/tuning.md). The fields come in groups:
 * where to listen (`host`/`port` or `path`), the stages before the user's pipeline (`tls`,
 * `proxyProtocol`), accepting (`backlog`, `maxConnections`, …), each connection
 * ({@link ConnectionOptions}: watermarks, read sizes, TCP options), the loop ({@link LoopOptions}),
 * the workers and their supervision ({@link ClusterOptions}) and operations
 * ({@link OperationsOptions}: pid file, control socket, admin listener).
 *
 * The whole object is checked before anything is opened: a value out of range, a key that names
 * no option (with the nearest known one in the message), or a handler of the pipeline whose own
 * options are bad — one pipeline is built on a channel that never opens — rejects `listen()` with
 * `InvalidOptionError`. A master checks them too, although it never serves, so a typo fails at
 * start rather than in every worker.
 */
export interface ServerOptions extends ConnectionOptions, LoopOptions, ClusterOptions, OperationsOptions {
  /** Address to bind: an IPv4 or IPv6 literal. Default `'::'` (IPv4 too, dual-stack), or `'0.0.0.0'` without IPv6. */
  readonly host?: string;
  /** Port; 0 picks a free one (see `address()`). Default 0. */
  readonly port?: number;
  /**
   * Listen on a Unix domain socket at this path instead of a TCP port (behind nginx or HAProxy on
   * the same host). A stale socket file is replaced, a live one refused; the file is removed on
   * stop. With a master, every worker shares the one socket (`balance: 'shared'`).
   */
  readonly path?: string;
  /** Permission bits of the socket file at `path` (connecting needs write permission). Default 0o660. */
  readonly socketMode?: number;
  /** The pipeline of each connection: a `Pipeline` subclass, or a factory `(channel) => Pipeline`. */
  readonly pipeline: PipelineSpec;
  /** listen(2) backlog, capped by net.core.somaxconn. Default 511. */
  readonly backlog?: number;
  /**
   * Share the port with sockets of this user that already listen on it with SO_REUSEPORT (the
   * kernel then spreads new connections across all of them), on purpose. Default false: a port
   * something already listens on fails with EADDRINUSE, in every mode. (A master uses
   * SO_REUSEPORT among its own sockets either way.)
   */
  readonly reusePort?: boolean;
  /** IPV6_V6ONLY for an IPv6 host (`::` then accepts IPv6 only). Default false. */
  readonly ipv6Only?: boolean;
  /**
   * Accept a connection only once its first bytes have arrived: TCP_DEFER_ACCEPT on the listening
   * sockets (tcp(7); nginx's `listen … deferred`). Seconds (an integer, 0 = off, at most 3600) or
   * `true` for 1 s, nginx's value. A worker then wakes once per new connection, with the request or
   * ClientHello ready to read, instead of once to accept and again to read. A client that connects
   * and sends nothing is not refused: when the period ends (the kernel rounds it up to its SYN-ACK
   * retransmission schedule: 1, 3, 7, 15, … s) it is accepted anyway. Default: `true` with `tls`
   * or an `http()`/`httpOffload()`/`websocket()` pipeline, whose clients always speak first; off
   * for any other pipeline, where a protocol whose server speaks first (a greeting) would stall for
   * the period.
   * A TCP option: `true` or seconds with a Unix socket `path` are refused. Sockets inherited from
   * systemd (LISTEN_FDS) keep their own `DeferAcceptSec=` unless this is given (docs/tuning.md).
   */
  readonly deferAccept?: boolean | number;
  /** accept4 calls per wake-up. Default 64. */
  readonly maxAcceptsPerWakeup?: number;
  /** Pause after EMFILE/ENFILE, in ms. Default 100. */
  readonly acceptBackoffMs?: number;
  /**
   * Connections open at once per worker (per process with `workers: 0`). At that many the worker
   * stops accepting until one closes; new connections wait in the kernel's accept queue (or, with
   * `shared` balancing, go to another worker) — none is accepted only to be reset. 0: no limit
   * but the descriptor limit (EMFILE pauses accepting too). Default 10 000.
   */
  readonly maxConnections?: number;
  /** How long a stop lets connections finish before aborting them (and killing workers), in ms. Default 10 000. */
  readonly drainTimeout?: number;
  /**
   * Every connection starts with a PROXY protocol header (v1 or v2) from a trusted proxy, which
   * sets its `remoteAddress`/`localAddress` to the client's (docs/proxy-protocol.md):
   * `{ trusted: ['10.0.0.0/8', '127.0.0.1'], required?: true, timeout?: 5000 }`. Off by default.
   */
  readonly proxyProtocol?: ServerProxyProtocolOptions;
  /**
   * Serve TLS: a `TlsHandler` goes first in every connection's pipeline, after the PROXY protocol
   * stage if any (docs/tls.md). The certificate and key are checked at `listen` (a bad PEM, a key
   * that does not match: an `InvalidOptionError` naming the option). Default: plaintext.
   */
  readonly tls?: TlsServerOptions;
}

/** The keys of `ClusterOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const CLUSTER_OPTIONS = {
  workers: true,
  balance: true,
  reloadStrategy: true,
  startTimeout: true,
  restartDelay: true,
  maxRestartDelay: true,
  maxCrashes: true,
  crashWindow: true,
  workerScript: true,
  workerArgs: true,
  handleSignals: true,
  daemon: true,
} as const satisfies OptionKeys<ClusterOptions>;

/** The keys of `ServerOptions`: an option added to the interface is one more line here. */
export const SERVER_OPTIONS = {
  ...CONNECTION_OPTIONS,
  ...LOOP_OPTIONS,
  ...CLUSTER_OPTIONS,
  ...OPERATIONS_OPTIONS,
  host: true,
  port: true,
  path: true,
  socketMode: true,
  pipeline: true,
  backlog: true,
  reusePort: true,
  ipv6Only: true,
  deferAccept: true,
  maxAcceptsPerWakeup: true,
  acceptBackoffMs: true,
  maxConnections: true,
  drainTimeout: true,
  proxyProtocol: true,
  tls: true,
} as const satisfies OptionKeys<ServerOptions>;

/** `deferAccept: true`: 1 s, as nginx's `deferred` (the shortest period: one SYN-ACK retransmit). */
export const DEFAULT_DEFER_ACCEPT = 1;

/**
 * The TCP_DEFER_ACCEPT seconds for the listening sockets (0: off), the default applied; throws
 * InvalidOptionError for a bad value. The default is on only where the first bytes are always the
 * client's: a TLS listener (the ClientHello opens every connection, RFC 8446 §2, whatever protocol
 * runs inside) and a pipeline marked as such (`http()`, `httpOffload()`, `websocket()`: pipeline/speaks-first.ts).
 * For those, deferring costs a client nothing — its first bytes are what the server waits for —
 * and saves each new connection a wake-up of the worker. Any other pipeline may be a protocol
 * whose server greets first, whose clients would wait out the period (tcp(7): the connection is
 * accepted only when the timeout ends), so it stays off unless asked for.
 */
export function resolveDeferAccept(options: ServerOptions): number {
  const v: unknown = options.deferAccept;
  if (v === undefined) {
    if (options.path !== undefined) return 0;
    return options.tls !== undefined || clientSpeaksFirst(options.pipeline) ? DEFAULT_DEFER_ACCEPT : 0;
  }
  if (v === true) return DEFAULT_DEFER_ACCEPT;
  if (v === false) return 0;
  if (typeof v !== 'number') {
    throw new InvalidOptionError('deferAccept', `must be true, false or seconds (0 to 3600), got ${describeValue(v)}`);
  }
  return intOption('deferAccept', v, 0, 3600);
}

/** How `close()` of a {@link ServerHandle} drains. */
export interface CloseOptions {
  /** Override `drainTimeout` for this close, in ms. 0 aborts every connection at once. */
  readonly timeout?: number;
}

/** Cluster options with their defaults applied. */
export interface ResolvedClusterOptions {
  readonly workers: number;
  readonly balance: 'reuseport' | 'shared';
  readonly reloadStrategy: 'rolling' | 'all';
  readonly startTimeout: number;
  readonly restartDelay: number;
  readonly maxRestartDelay: number;
  readonly maxCrashes: number;
  readonly crashWindow: number;
  readonly drainTimeout: number;
  readonly handleSignals: boolean;
  readonly daemon: boolean;
  /** pid file, control socket, admin listener, stop delay. */
  readonly operations: ResolvedOperations;
}

/**
 * What a process's `Serving` needs from the options: accepting, the connection limit, and the
 * stages before the user's pipeline (PROXY protocol, TLS: server-stages.ts), checked and resolved.
 */
export function servingOptions(options: ServerOptions): {
  maxAcceptsPerWakeup: number;
  acceptBackoffMs: number;
  maxConnections: number;
  stages: readonly ServerStage[];
} {
  return {
    maxAcceptsPerWakeup: intOption('maxAcceptsPerWakeup', options.maxAcceptsPerWakeup ?? 64, 1),
    acceptBackoffMs: intOption('acceptBackoffMs', options.acceptBackoffMs ?? 100, 1),
    maxConnections: optionalInt('maxConnections', options.maxConnections, 10_000, 0),
    stages: serverStages(options),
  };
}

/**
 * Checks every option (throws InvalidOptionError naming it), builds one pipeline on a channel that
 * never opened (pipeline/trial.ts: a handler's bad option rejects here), and resolves the
 * connection options.
 */
export function validateServerOptions(options: ServerOptions): {
  connection: ResolvedConnectionOptions;
  cluster: ResolvedClusterOptions;
} {
  checkOptions('Server.listen', options as ServerOptions | undefined, SERVER_OPTIONS);
  if (options === undefined) throw new InvalidOptionError('pipeline', 'is required');
  const p = options.pipeline as unknown;
  if (typeof p !== 'function') {
    throw new InvalidOptionError('pipeline', 'must be a Pipeline subclass or a function returning a Pipeline');
  }
  if (options.host !== undefined && ipFamily(options.host) === 0) {
    throw new InvalidOptionError('host', `must be an IPv4 or IPv6 address, got ${describeValue(options.host)}`);
  }
  bool('reusePort', options.reusePort, false);
  bool('ipv6Only', options.ipv6Only, false);
  const script: unknown = options.workerScript;
  if (script !== undefined && (typeof script !== 'string' || script === '')) {
    throw new InvalidOptionError('workerScript', `must be a path, got ${describeValue(script)}`);
  }
  const args: unknown = options.workerArgs;
  if (args !== undefined && (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))) {
    throw new InvalidOptionError('workerArgs', `must be an array of strings, got ${describeValue(args)}`);
  }
  intOption('port', options.port ?? 0, 0, 65535);
  if (options.path !== undefined) {
    pathOption('path', options.path);
    encodeUnixSockaddr(options.path); // its length
    if (options.host !== undefined || (options.port ?? 0) !== 0) {
      throw new InvalidOptionError('path', 'a Unix socket `path` replaces `host` and `port`: give one or the other');
    }
    if (options.balance === 'reuseport' || options.reusePort === true) {
      throw new InvalidOptionError(
        options.balance === 'reuseport' ? 'balance' : 'reusePort',
        "SO_REUSEPORT does not apply to a Unix socket: every worker shares the one socket (balance: 'shared')",
      );
    }
  }
  if (resolveDeferAccept(options) > 0 && options.path !== undefined) {
    throw new InvalidOptionError(
      'deferAccept',
      'TCP_DEFER_ACCEPT is a TCP option: a Unix socket `path` has no handshake to defer (leave it unset, or false)',
    );
  }
  if (options.socketMode !== undefined) {
    if (options.path === undefined) throw new InvalidOptionError('socketMode', 'applies to a Unix socket `path` only');
    modeOption('socketMode', options.socketMode, DEFAULT_SOCKET_MODE);
  }
  intOption('backlog', options.backlog ?? 511, 1);
  bool('reusePort', options.reusePort, false);
  // The stages are built and freed at once: the PROXY protocol's trusted blocks are parsed, and the
  // TLS PEMs are parsed and the key checked against its certificate here, in the master too, which
  // never serves.
  closeStages(servingOptions(options).stages);
  resolveLoopOptions(options);
  const restartDelay = intOption('restartDelay', options.restartDelay ?? 100, 0);
  const workers = intOption('workers', options.workers ?? availableParallelism(), 0, 1024);
  const operations = resolveOperations(options);
  if (workers === 0) {
    for (const key of ['pidFile', 'control', 'admin', 'shutdownDelay'] as const) {
      if (options[key] !== undefined) {
        throw new InvalidOptionError(
          key,
          'is a master option: it needs workers >= 1 (with workers: 0 this process serves alone and its signals are yours)',
        );
      }
    }
  }
  const cluster: ResolvedClusterOptions = {
    workers,
    balance:
      options.path !== undefined ? 'shared' : oneOf('balance', options.balance, ['reuseport', 'shared'], 'reuseport'),
    reloadStrategy: oneOf('reloadStrategy', options.reloadStrategy, ['rolling', 'all'], 'rolling'),
    startTimeout: intOption('startTimeout', options.startTimeout ?? 10_000, 1),
    restartDelay,
    maxRestartDelay: intOption(
      'maxRestartDelay',
      options.maxRestartDelay ?? Math.max(5000, restartDelay),
      restartDelay,
    ),
    maxCrashes: intOption('maxCrashes', options.maxCrashes ?? 5, 0),
    crashWindow: intOption('crashWindow', options.crashWindow ?? 60_000, 1),
    drainTimeout: intOption('drainTimeout', options.drainTimeout ?? 10_000, 0),
    handleSignals: bool('handleSignals', options.handleSignals, true),
    daemon: bool('daemon', options.daemon, false),
    operations,
  };
  const connection = resolveConnectionOptions(options, 'Server.listen');
  // Handlers check their options when they are built, and that is per connection: build one
  // pipeline now, so that a bad handler option rejects listen() instead of every connection.
  tryPipeline(options.pipeline);
  return { connection, cluster };
}
