/**
 * The options of `Server.listen()`, their defaults, and their validation — one place for the
 * in-process server, the master and its workers.
 */
import { availableParallelism } from 'node:os';
import { InvalidOptionError } from './errors.js';
import type { PipelineSpec } from './pipeline/pipeline.js';
import { ipFamily } from './syscalls/sockaddr.js';
import { validateTlsServerOptions } from './tls/context.js';
import type { TlsServerOptions } from './tls/options.js';
import {
  type ConnectionOptions,
  intOption,
  type LoopOptions,
  oneOf,
  optionalInt,
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
  /** SO_REUSEPORT on the listening socket of an in-process server (masters always set it). Default false. */
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
   * Serve TLS: a `TlsHandler` goes first in every connection's pipeline (docs/tls.md). The
   * certificate and key are checked at `listen` (a bad PEM, a key that does not match: an
   * `InvalidOptionError` naming the option). Default: plaintext.
   */
  readonly tls?: TlsServerOptions;
}

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
}

/** What a process's `Serving` needs from the options: accepting and the connection limit, checked and resolved. */
export function servingOptions(options: ServerOptions): {
  maxAcceptsPerWakeup: number;
  acceptBackoffMs: number;
  maxConnections: number;
  tls: TlsServerOptions | undefined;
} {
  return {
    maxAcceptsPerWakeup: intOption('maxAcceptsPerWakeup', options.maxAcceptsPerWakeup ?? 64, 1),
    acceptBackoffMs: intOption('acceptBackoffMs', options.acceptBackoffMs ?? 100, 1),
    maxConnections: optionalInt('maxConnections', options.maxConnections, 10_000, 0),
    tls: options.tls,
  };
}

/** Checks every option (throws InvalidOptionError naming it) and resolves the connection ones. */
export function validateServerOptions(options: ServerOptions): {
  connection: ResolvedConnectionOptions;
  cluster: ResolvedClusterOptions;
} {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'must be an object');
  const p = options.pipeline as unknown;
  if (typeof p !== 'function') {
    throw new InvalidOptionError('pipeline', 'must be a Pipeline subclass or a function returning a Pipeline');
  }
  if (options.host !== undefined && ipFamily(options.host) === 0) {
    throw new InvalidOptionError('host', `must be an IPv4 or IPv6 address, got ${JSON.stringify(options.host)}`);
  }
  intOption('port', options.port ?? 0, 0, 65535);
  intOption('backlog', options.backlog ?? 511, 1);
  servingOptions(options);
  // Built and freed at once: the PEMs are parsed and the key checked against its certificate here,
  // in the master too, which never serves.
  if (options.tls !== undefined) validateTlsServerOptions(options.tls);
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
    handleSignals: options.handleSignals ?? true,
  };
  if (typeof cluster.handleSignals !== 'boolean') {
    throw new InvalidOptionError('handleSignals', `must be a boolean, got ${String(options.handleSignals)}`);
  }
  return { connection: resolveConnectionOptions(options), cluster };
}
