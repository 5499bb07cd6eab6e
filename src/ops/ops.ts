/**
 * The operations side of a master: its pid file, its control socket (the `multireactor` command
 * line) and its admin HTTP listener (`/metrics`, `/healthz`, `/readyz`), served on an event loop
 * of its own in the master process — the same epoll loop, pipelines and HTTP stage the workers
 * run, with its own counters, so that an operator's scrapes never show in the workers' numbers.
 *
 * One loop, one `Serving`, one or two listening sockets: the pipeline of a connection depends on
 * the socket it came in on (its local address), the control socket's path or the admin address.
 */
import type { Logger } from '../common/logger.js';
import type { MasterOps, MasterView } from '../master/handle.js';
import { describeAddress } from '../master/sockets.js';
import type { Channel } from '../pipeline/channel.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { ResolvedOperations } from '../server-options.js';
import { close as sysClose } from '../syscalls/libc.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import {
  localAddress,
  openListenSocket,
  openUnixListenSocket,
  removeUnixSocketFile,
  type UnixListenSocket,
} from '../syscalls/socket.js';
import { EventLoop } from '../worker/loop.js';
import { resolveConnectionOptions } from '../worker/options.js';
import { Serving } from '../worker/serving.js';
import { adminPipeline } from './admin.js';
import { controlPipeline } from './control.js';
import { MasterMetrics } from './metrics.js';
import { writePidFile } from './pid-file.js';

/** Connections the operations loop holds at once: probes, scrapes and a few operators. */
const MAX_CONNECTIONS = 256;
/** How long a stop lets admin and control connections finish. */
const CLOSE_TIMEOUT_MS = 2000;

export interface OpsSettings {
  readonly operations: ResolvedOperations;
  /** The master's drainTimeout: the deadline of a `stop` that names none. */
  readonly drainTimeout: number;
  readonly logger: Logger;
  /** The pid of the master this one replaces (upgrade): its pid file is taken over. */
  readonly predecessor?: number | undefined;
}

/** Where the admin listener and the control socket listen now (for `status` and the logs). */
export interface OpsAddresses {
  admin: SocketAddress | undefined;
  control: string | undefined;
}

class Ops implements MasterOps {
  private readonly loop: EventLoop;
  private readonly serving: Serving;
  private controlSocket: UnixListenSocket | undefined;
  private adminSocket: UnixListenSocket | undefined;
  private suspended = false;
  private closed = false;
  readonly addresses: OpsAddresses = { admin: undefined, control: undefined };

  constructor(
    private readonly view: MasterView,
    private readonly s: OpsSettings,
    private readonly removePidFile: (() => void) | undefined,
  ) {
    const logger = s.logger;
    const metrics = new MasterMetrics(view);
    const control = controlPipeline({
      view,
      metrics,
      logger,
      drainTimeout: s.drainTimeout,
      addresses: this.addresses,
    });
    const admin = adminPipeline(view, metrics, logger);
    const controlPath = s.operations.control?.path;
    const pipeline = (channel: Channel): Pipeline => {
      const local = channel.localAddress;
      return local?.family === 'Unix' && local.address === controlPath ? control() : admin();
    };
    this.loop = new EventLoop({ logger });
    this.serving = new Serving(this.loop, pipeline, resolveConnectionOptions({}, 'operations'), {
      maxConnections: MAX_CONNECTIONS,
    });
  }

  /** Opens the listeners (again, after `suspend`). Throws, with nothing left open, when one cannot. */
  open(): void {
    const { control, admin } = this.s.operations;
    const logger = this.s.logger;
    const opened: number[] = [];
    try {
      if (control !== undefined) {
        const sock = openUnixListenSocket({ path: control.path, backlog: 64, mode: control.mode });
        opened.push(sock.fd);
        if (sock.replacedStale) logger.info(`control socket ${control.path}: replaced a stale socket file`);
        this.controlSocket = sock;
        this.serving.listen(sock.fd);
        this.addresses.control = control.path;
      }
      if (admin !== undefined) {
        let fd: number;
        if ('path' in admin) {
          const sock = openUnixListenSocket({ path: admin.path, backlog: 64, mode: admin.mode });
          fd = sock.fd;
          this.adminSocket = sock;
          if (sock.replacedStale) logger.info(`admin socket ${admin.path}: replaced a stale socket file`);
        } else {
          fd = openListenSocket({ host: admin.host, port: admin.port, backlog: 64, reusePort: false });
        }
        opened.push(fd);
        this.serving.listen(fd);
        this.addresses.admin = localAddress(fd);
      }
    } catch (err) {
      this.serving.stopAccepting();
      for (const fd of opened) sysClose(fd);
      this.removeFiles();
      throw err;
    }
    const parts: string[] = [];
    if (this.addresses.admin !== undefined) {
      parts.push(`admin on ${describeAddress(this.addresses.admin)} (/metrics, /healthz, /readyz)`);
    }
    if (this.addresses.control !== undefined) parts.push(`control socket ${this.addresses.control}`);
    if (parts.length > 0) logger.info(`master ${this.view.pid}: ${parts.join('; ')}`);
  }

  private removeFiles(): void {
    for (const sock of [this.controlSocket, this.adminSocket]) {
      if (sock?.file !== undefined) removeUnixSocketFile(sock.path, sock.file);
    }
    this.controlSocket = this.adminSocket = undefined;
    this.addresses.admin = this.addresses.control = undefined;
  }

  async suspend(): Promise<void> {
    if (this.suspended || this.closed) return;
    this.suspended = true;
    // The acceptors own the listening sockets: closing them frees the address and the path for a
    // successor, which replaces the socket files (stale to it now). Ours are left to it.
    this.serving.stopAccepting();
    this.controlSocket = this.adminSocket = undefined;
    this.addresses.admin = this.addresses.control = undefined;
  }

  resume(): void {
    if (!this.suspended || this.closed) return;
    this.suspended = false;
    try {
      this.open();
    } catch (err) {
      this.s.logger.error('reopening the control socket and admin listener failed', err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.serving.close(CLOSE_TIMEOUT_MS);
    this.removeFiles();
    this.removePidFile?.();
  }
}

/**
 * Opens the operations side of a master (server.ts hands this to the master): the pid file first
 * (a live master there refuses this start before anything is bound), then the listeners.
 * Undefined when none of them is configured.
 */
export async function openMasterOps(view: MasterView, s: OpsSettings): Promise<MasterOps | undefined> {
  const o = s.operations;
  if (o.pidFile === undefined && o.control === undefined && o.admin === undefined) return undefined;
  const removePidFile = o.pidFile !== undefined ? writePidFile(o.pidFile, s.logger, s.predecessor) : undefined;
  let ops: Ops | undefined;
  try {
    ops = new Ops(view, s, removePidFile);
    ops.open();
    return ops;
  } catch (err) {
    if (ops !== undefined) await ops.close();
    else removePidFile?.();
    throw err;
  }
}
