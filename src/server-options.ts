/**
 * The options of `Server.listen()`, their defaults, and their validation — one place for the
 * in-process server, the master and its workers.
 */
import { availableParallelism } from 'node:os';
import { InvalidOptionError } from './common/errors.js';
import { bool, checkOptions, describeValue, intOption, type OptionKeys, oneOf, optionalInt } from './common/options.js';
import type { PipelineSpec } from './pipeline/pipeline.js';
import type { ServerStage } from './pipeline/stages.js';
import { tryPipeline } from './pipeline/trial.js';
import { type ServerProxyProtocolOptions, serverStages } from './server-stages.js';
import { ipFamily } from './syscalls/sockaddr.js';
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

export interface ServerOptions extends ConnectionOptions, LoopOptions, ClusterOptions {
  /** Address to bind: an IPv4 or IPv6 literal. Default `'::'` (IPv4 too, dual-stack), or `'0.0.0.0'` without IPv6. */
  readonly host?: string;
  /** Port; 0 picks a free one (see `address()`). Default 0. */
  readonly port?: number;
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
  host: true,
  port: true,
  pipeline: true,
  backlog: true,
  reusePort: true,
  ipv6Only: true,
  maxAcceptsPerWakeup: true,
  acceptBackoffMs: true,
  maxConnections: true,
  drainTimeout: true,
  proxyProtocol: true,
} as const satisfies OptionKeys<ServerOptions>;

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
  intOption('backlog', options.backlog ?? 511, 1);
  bool('reusePort', options.reusePort, false);
  servingOptions(options);
  resolveLoopOptions(options);
  const restartDelay = intOption('restartDelay', options.restartDelay ?? 100, 0);
  const cluster: ResolvedClusterOptions = {
    workers: intOption('workers', options.workers ?? availableParallelism(), 0, 1024),
    balance: oneOf('balance', options.balance, ['reuseport', 'shared'], 'reuseport'),
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
  };
  const connection = resolveConnectionOptions(options, 'Server.listen');
  // Handlers check their options when they are built, and that is per connection: build one
  // pipeline now, so that a bad handler option rejects listen() instead of every connection.
  tryPipeline(options.pipeline);
  return { connection, cluster };
}
