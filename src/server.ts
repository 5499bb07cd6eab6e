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
import { consoleLogger } from './common/logger.js';
import { type MasterHandle, MasterServer } from './master/master.js';
import { workerSpecFromEnv } from './master/protocol.js';
import { type WorkerHandle, WorkerServer } from './master/worker-side.js';
import { Pipeline } from './pipeline/pipeline.js';
import { type CloseOptions, type ServerOptions, servingOptions, validateServerOptions } from './server-options.js';
import { close as sysClose } from './syscalls/libc.js';
import type { SocketAddress } from './syscalls/sockaddr.js';
import { openServerSocket } from './syscalls/socket.js';
import { EventLoop, type LoopStats } from './worker/loop.js';
import { Serving, ServingHandle } from './worker/serving.js';

/** The handle of a server serving in this process (`workers: 0`). */
export interface SingleHandle {
  readonly role: 'single';
  /** The bound address (the real port when listening on port 0). */
  address(): SocketAddress;
  /** Connections open now. */
  readonly connections: number;
  /** A snapshot of the loop's counters. */
  stats(): LoopStats;
  /** Stops accepting, drains every connection (within the drain timeout), releases every descriptor. */
  close(options?: CloseOptions): Promise<void>;
}

/** What `Server.listen()` resolves with; `role` tells which process this is. */
export type ServerHandle = SingleHandle | MasterHandle | WorkerHandle;

class InProcessServer extends ServingHandle implements SingleHandle {
  readonly role = 'single' as const;
  private closing: Promise<void> | undefined;

  constructor(
    serving: Serving,
    private readonly drainTimeout: number,
  ) {
    super(serving);
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.serving.close(options.timeout ?? this.drainTimeout);
    return this.closing;
  }
}

/** The server API. */
export const Server = {
  /**
   * Starts serving; resolves once connections are being accepted (in a master: once every
   * worker is ready). Rejects with `InvalidOptionError` for a bad option, `SyscallError` (e.g.
   * `EADDRINUSE`) when binding fails, and an Error when workers cannot start.
   */
  async listen(options: ServerOptions): Promise<ServerHandle> {
    const { connection, cluster } = validateServerOptions(options);
    const logger = options.logger ?? consoleLogger();
    const spec = workerSpecFromEnv();
    if (spec !== undefined) return WorkerServer.start(spec, options, connection, logger);
    if (cluster.workers > 0) return MasterServer.start(options, cluster, logger);
    const fd = openServerSocket({
      host: options.host,
      port: options.port ?? 0,
      backlog: options.backlog ?? 511,
      reusePort: options.reusePort ?? false,
      ipv6Only: options.ipv6Only ?? false,
    });
    let loop: EventLoop | undefined;
    try {
      loop = new EventLoop({ ...options, logger, readBufferSize: connection.maxReadSize });
      const serving = new Serving(loop, options.pipeline, connection, servingOptions(options));
      serving.listen(fd);
      return new InProcessServer(serving, cluster.drainTimeout);
    } catch (err) {
      sysClose(fd);
      await loop?.close();
      throw err;
    }
  },
};

export type { CloseOptions, ServerOptions };
export { Pipeline };
