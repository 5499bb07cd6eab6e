/**
 * `Server.listen()`: the entry point.
 *
 * - In a process started by a multireactor master (it finds its part in the environment), it
 *   serves on the sockets the master handed down: role `'worker'`.
 * - Otherwise, with `workers >= 1` (the default is one per CPU), this process becomes the
 *   master: it opens the sockets and forks the workers, which run this same script and reach
 *   this same call: role `'master'`.
 * - With `workers: 0` it serves right here: role `'single'`.
 *
 * ```ts
 * const server = await Server.listen({ host: '127.0.0.1', port: 8080, pipeline: EchoPipeline });
 * if (server.role !== 'worker') console.log('listening on', server.address());
 * ```
 */
import { adaptLogger, childLogger, consoleLogger, type Logger } from './common/logger.js';
import { type MasterHandle, MasterServer } from './master/master.js';
import { workerSpecFromEnv } from './master/protocol.js';
import { isUpgradedMaster } from './master/upgrade.js';
import { type WorkerHandle, WorkerServer } from './master/worker-side.js';
import { openMasterOps } from './ops/ops.js';
import { Pipeline } from './pipeline/pipeline.js';
import {
  type CloseOptions,
  DEFAULT_SOCKET_MODE,
  resolveDeferAccept,
  type ServerOptions,
  servingOptions,
  validateServerOptions,
} from './server-options.js';
import { close as sysClose } from './syscalls/libc.js';
import type { SocketAddress } from './syscalls/sockaddr.js';
import {
  openServerSocket,
  openUnixListenSocket,
  removeUnixSocketFile,
  type UnixListenSocket,
} from './syscalls/socket.js';
import { shareTicketKeys, type TlsStats } from './tls/context.js';
import { EventLoop } from './worker/loop.js';
import { Serving, ServingHandle, type ServingStats } from './worker/serving.js';

/** A serving process's counters: the loop's, and with TLS its handshakes under `tls`. */
export type ServerStats = ServingStats & { tls?: TlsStats };

/** The handle of a server serving in this process (`workers: 0`). */
export interface SingleHandle {
  readonly role: 'single';
  /** The bound address (the real port when listening on port 0). */
  address(): SocketAddress;
  /** Connections open now. */
  readonly connections: number;
  /** A snapshot of the loop's counters (with TLS, its handshake counters under `tls`). */
  stats(): ServerStats;
  /** Stops accepting, drains every connection (within the drain timeout), releases every descriptor. */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * What `Server.listen()` resolves with; `role` tells which process this is, and narrows the type:
 *
 * | member | `'single'` ({@link SingleHandle}) | `'master'` ({@link MasterHandle}) | `'worker'` ({@link WorkerHandle}) |
 * | --- | --- | --- | --- |
 * | `address()` | the bound address | the address the workers serve | the same |
 * | `connections` | open now | all workers, as of the last `collectStats()` | this worker's, now |
 * | `stats()` | this loop's counters | the workers' summed, as of the last `collectStats()` | this worker's counters |
 * | `close(options?)` | drains, frees every descriptor | drains every worker, reaps them | drains and exits this process |
 * | role-only | — | `collectStats()`, `workers()`, `reload()`, `upgrade()`, `stopped` | `slot`, `generation` |
 *
 * Every `close()` is graceful: accepting stops, each pipeline sees `ServerDrainingEvent` (HTTP
 * answers the request in flight and closes), and connections still open after the drain timeout
 * (`drainTimeout`, or `close({ timeout })`) are aborted. Calling it again returns the same promise.
 */
export type ServerHandle = SingleHandle | MasterHandle | WorkerHandle;

class InProcessServer extends ServingHandle implements SingleHandle {
  readonly role = 'single' as const;
  private closing: Promise<void> | undefined;

  constructor(
    serving: Serving,
    private readonly drainTimeout: number,
    /** The Unix socket file this server created, removed once it stopped listening. */
    private readonly socketFile: UnixListenSocket | undefined,
  ) {
    super(serving);
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.serving.close(options.timeout ?? this.drainTimeout).finally(() => {
      const f = this.socketFile;
      if (f?.file !== undefined) removeUnixSocketFile(f.path, f.file);
    });
    return this.closing;
  }
}

/** The listening socket of a server that serves in this process: a TCP port or a Unix socket path. */
function openSingleSocket(options: ServerOptions, logger: Logger): { fd: number; unix: UnixListenSocket | undefined } {
  if (options.path !== undefined) {
    const unix = openUnixListenSocket({
      path: options.path,
      backlog: options.backlog ?? 511,
      mode: options.socketMode ?? DEFAULT_SOCKET_MODE,
    });
    if (unix.replacedStale) logger.warn(`${options.path}: replaced a stale socket file (nothing listened on it)`);
    return { fd: unix.fd, unix };
  }
  const fd = openServerSocket({
    host: options.host,
    port: options.port ?? 0,
    backlog: options.backlog ?? 511,
    reusePort: options.reusePort ?? false,
    ipv6Only: options.ipv6Only ?? false,
    deferAccept: resolveDeferAccept(options),
  });
  return { fd, unix: undefined };
}

/**
 * The entry point: `Server.listen(options)` opens the listening socket and serves `options.pipeline`
 * on every connection. One call plays three roles, chosen by where it runs (the handle's `role`):
 *
 * - `'master'` (`workers >= 1`, the default: one per CPU): this process binds the socket, forks the
 *   workers — which run this same script and reach this same call — supervises, reloads (SIGUSR2)
 *   and stops them. It serves no connection itself.
 * - `'worker'`: a process forked by a master; it serves on the master's sockets.
 * - `'single'` (`workers: 0`): this process serves alone, on a loop of its own.
 *
 * So code before `Server.listen()` runs in the master and in every worker; state kept in memory
 * (a `Map` of sessions, a cache) is per worker. See {@link ServerHandle} for what each role's
 * handle offers, and docs/master.md for reloads and signals.
 *
 * @example
 * ```ts
 * import { http, Server } from 'multireactor';
 *
 * const server = await Server.listen({
 *   host: '127.0.0.1',
 *   port: 8080,
 *   workers: 2,
 *   pipeline: http((req, res) => res.setHeader('Content-Type', 'text/plain').end(`hello from ${process.pid}\n`)),
 * });
 * if (server.role === 'master') {
 *   console.log('listening on', server.address()); // { address: '127.0.0.1', family: 'IPv4', port: 8080 }
 *   const { ok } = await server.reload(); // what SIGUSR2 does: new workers, no connection dropped
 *   console.log('reloaded', ok);
 * }
 * ```
 */
export const Server = {
  /**
   * Starts serving; resolves once connections are being accepted (in a master: once every
   * worker is ready). Rejects with `InvalidOptionError` for a bad option (before anything is
   * opened), `SyscallError` (e.g. `EADDRINUSE`) when binding fails, and an Error when workers
   * cannot start. A worker process serves one `listen()` call: a second one rejects.
   */
  async listen(options: ServerOptions): Promise<ServerHandle> {
    const { connection, cluster } = validateServerOptions(options);
    // A pino logger is recognised and its lines get the details as fields (common/logger.ts).
    const logger = adaptLogger(options.logger ?? consoleLogger());
    const spec = workerSpecFromEnv();
    if (spec !== undefined) {
      // Every line of a worker says which one: its slot (the `worker` label of the metrics) and generation.
      const bound = childLogger(logger, { worker: spec.slot, generation: spec.generation });
      return WorkerServer.start(spec, options, connection, bound);
    }
    if (cluster.workers > 0) {
      // One set of session-ticket keys for every worker: a ticket resumes on whichever worker the
      // kernel hands the next connection to, and across reloads.
      if (options.tls !== undefined) shareTicketKeys(options.tls);
      return MasterServer.start(options, cluster, logger, (view) =>
        openMasterOps(view, {
          operations: cluster.operations,
          drainTimeout: cluster.drainTimeout,
          logger,
          // A master started by upgrade() takes over its predecessor's pid file.
          predecessor: isUpgradedMaster() ? process.ppid : undefined,
        }),
      );
    }
    const { fd, unix } = openSingleSocket(options, logger);
    let loop: EventLoop | undefined;
    try {
      loop = new EventLoop({ ...options, logger, readBufferSize: connection.maxReadSize });
      const serving = new Serving(loop, options.pipeline, connection, servingOptions(options));
      serving.listen(fd);
      return new InProcessServer(serving, cluster.drainTimeout, unix);
    } catch (err) {
      sysClose(fd);
      if (unix?.file !== undefined) removeUnixSocketFile(unix.path, unix.file);
      await loop?.close();
      throw err;
    }
  },
};

export type { CloseOptions, ServerOptions };
export { Pipeline };
