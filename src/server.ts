/**
 * `Server.listen()`: the entry point. Binds, builds a loop, accepts, and gives each connection a
 * pipeline of the user's `Pipeline` subclass.
 *
 * ```ts
 * const server = await Server.listen({ host: '127.0.0.1', port: 8080, pipeline: EchoPipeline });
 * console.log(server.address());
 * await server.close();
 * ```
 */
import { InvalidOptionError, SyscallError } from './errors.js';
import type { Logger } from './logger.js';
import type { PipelineSpec } from './pipeline/pipeline.js';
import { Pipeline } from './pipeline/pipeline.js';
import { EAFNOSUPPORT } from './syscalls/constants.js';
import { close as sysClose } from './syscalls/libc.js';
import { ipFamily, type SocketAddress } from './syscalls/sockaddr.js';
import { applySocketOptions, openListenSocket } from './syscalls/socket.js';
import { Acceptor } from './worker/acceptor.js';
import { Connection, type ConnectionContext } from './worker/connection.js';
import { EventLoop, type LoopStats } from './worker/loop.js';
import {
  type ConnectionOptions,
  intOption,
  type LoopOptions,
  type ResolvedConnectionOptions,
  resolveConnectionOptions,
  resolveLoopOptions,
} from './worker/options.js';

export interface ServerOptions extends ConnectionOptions, LoopOptions {
  /** Address to bind: an IPv4 or IPv6 literal. Default `'::'` (IPv4 too, dual-stack), or `'0.0.0.0'` without IPv6. */
  readonly host?: string;
  /** Port; 0 picks a free one (see `address()`). Default 0. */
  readonly port?: number;
  /** The pipeline of each connection: a `Pipeline` subclass, or a factory `(channel) => Pipeline`. */
  readonly pipeline: PipelineSpec;
  /** listen(2) backlog, capped by net.core.somaxconn. Default 511. */
  readonly backlog?: number;
  /** Worker processes. Default 0: serve in this process (the multi-process master comes with `src/master`). */
  readonly workers?: number;
  /** SO_REUSEPORT on the listening socket, so that other processes may bind the same port. Default false. */
  readonly reusePort?: boolean;
  /** IPV6_V6ONLY for an IPv6 host (`::` then accepts IPv6 only). Default false. */
  readonly ipv6Only?: boolean;
  /** accept4 calls per wake-up. Default 64. */
  readonly maxAcceptsPerWakeup?: number;
  /** Pause after EMFILE/ENFILE, in ms. Default 100. */
  readonly acceptBackoffMs?: number;
  /** How long `close()` lets connections flush before aborting them, in ms. Default 10 000. */
  readonly drainTimeout?: number;
}

export interface CloseOptions {
  /** Override `drainTimeout` for this close, in ms. 0 aborts every connection at once. */
  readonly timeout?: number;
}

/** A serving server. */
export interface ServerHandle {
  /** The bound address (the real port when listening on port 0). */
  address(): SocketAddress;
  /** Connections open now. */
  readonly connections: number;
  /** A snapshot of the loop's counters. */
  stats(): LoopStats;
  /** Stops accepting, closes every connection (flushing first, within the drain timeout), releases every descriptor. */
  close(options?: CloseOptions): Promise<void>;
}

function validate(options: ServerOptions): void {
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
  intOption('maxAcceptsPerWakeup', options.maxAcceptsPerWakeup ?? 64, 1);
  intOption('acceptBackoffMs', options.acceptBackoffMs ?? 100, 1);
  intOption('drainTimeout', options.drainTimeout ?? 10_000, 0);
  const workers = intOption('workers', options.workers ?? 0, 0, 1024);
  if (workers !== 0) {
    throw new InvalidOptionError(
      'workers',
      'this build serves in-process only: use workers: 0 (the master/worker mode is not built yet)',
    );
  }
  resolveLoopOptions(options);
}

class InProcessServer implements ServerHandle {
  private readonly conns = new Set<Connection>();
  private readonly acceptor: Acceptor;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(
    private readonly loop: EventLoop,
    listenFd: number,
    private readonly options: ServerOptions,
    connOptions: ResolvedConnectionOptions,
  ) {
    const ctx: ConnectionContext = {
      loop,
      pipeline: options.pipeline,
      options: connOptions,
      onClosed: (c) => {
        this.conns.delete(c);
        if (this.conns.size === 0) this.drained?.();
      },
    };
    const socketOptions = connOptions.socket;
    this.acceptor = new Acceptor(
      loop,
      listenFd,
      (fd) => {
        // A peer that reset while queued fails here; that connection is simply gone.
        if (applySocketOptions(fd, socketOptions) < 0) {
          sysClose(fd);
          loop.stats.closed.reset++;
          return;
        }
        const conn = new Connection(ctx, fd);
        this.conns.add(conn);
        if (!conn.open()) this.conns.delete(conn);
      },
      {
        maxAcceptsPerWakeup: options.maxAcceptsPerWakeup ?? 64,
        acceptBackoffMs: options.acceptBackoffMs ?? 100,
      },
    );
    this.acceptor.start();
  }

  address(): SocketAddress {
    return this.acceptor.address;
  }

  get connections(): number {
    return this.conns.size;
  }

  stats(): LoopStats {
    return structuredClone(this.loop.stats);
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(options.timeout ?? this.options.drainTimeout ?? 10_000);
    return this.closing;
  }

  private async doClose(timeout: number): Promise<void> {
    this.acceptor.close();
    if (this.conns.size > 0) {
      const allClosed = new Promise<void>((resolve) => {
        this.drained = resolve;
      });
      for (const c of [...this.conns]) {
        if (timeout === 0) c.abort('shutdown');
        else c.close('shutdown');
      }
      if (this.conns.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeout);
        });
        await Promise.race([allClosed, deadline]);
        clearTimeout(timer);
        for (const c of [...this.conns]) c.abort('shutdown');
      }
    }
    await this.loop.close();
  }
}

function bindListener(options: ServerOptions, logger: Logger | undefined): number {
  const port = options.port ?? 0;
  const common = {
    port,
    backlog: options.backlog ?? 511,
    reusePort: options.reusePort ?? false,
    ipv6Only: options.ipv6Only ?? false,
  };
  if (options.host !== undefined) return openListenSocket({ host: options.host, ...common });
  try {
    return openListenSocket({ host: '::', ...common });
  } catch (err) {
    // No IPv6 on this host: the dual-stack default degrades to IPv4, as Node's does.
    if (err instanceof SyscallError && err.errno === EAFNOSUPPORT) {
      logger?.debug('IPv6 unavailable, listening on 0.0.0.0');
      return openListenSocket({ host: '0.0.0.0', ...common });
    }
    throw err;
  }
}

/** The server API. */
export const Server = {
  /**
   * Binds and starts serving; resolves once connections are being accepted. Rejects with
   * `InvalidOptionError` for a bad option and `SyscallError` (e.g. `EADDRINUSE`) when binding fails.
   */
  async listen(options: ServerOptions): Promise<ServerHandle> {
    validate(options);
    const connOptions = resolveConnectionOptions(options);
    const fd = bindListener(options, options.logger);
    let loop: EventLoop | undefined;
    try {
      loop = new EventLoop({ ...options, readBufferSize: connOptions.maxReadSize });
      return new InProcessServer(loop, fd, options, connOptions);
    } catch (err) {
      sysClose(fd);
      await loop?.close();
      throw err;
    }
  },
};

export { Pipeline };
