/**
 * A worker process: serves on the listening sockets its master handed down, and does what the
 * master says over IPC.
 *
 * It never binds: the sockets belong to the master, which keeps them open across worker
 * deaths and reloads, so connections waiting in their accept queues are never lost. Closing the
 * worker's own copies (when it drains or exits) leaves the sockets open in the master.
 *
 * Lifetime belongs to the master: `drain` → stop accepting, let connections finish (DRAINING
 * through every pipeline), exit. If the master dies, even by SIGKILL, the worker drains and exits
 * on its own: no orphans. It learns it from the IPC channel closing and from the parent-death
 * signal (parent.ts), which is armed as soon as this module loads — a worker still loading its
 * application when the master dies is terminated by it, before it could serve as an orphan.
 * SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group; the master
 * coordinates); SIGTERM and SIGQUIT drain and exit.
 */
import { httpMetrics } from '../common/http-metrics.js';
import { consoleLogger, type Logger } from '../common/logger.js';
import { type ServerOptions, servingOptions } from '../server-options.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { isListening, setNonBlocking } from '../syscalls/socket.js';
import { EventLoop, type LoopStats } from '../worker/loop.js';
import type { ResolvedConnectionOptions } from '../worker/options.js';
import { Serving, ServingHandle, workerReports } from '../worker/serving.js';
import { setCloseOnExec } from './listen-fds.js';
import { armParentDeathSignal, type ParentWatch, watchParent } from './parent.js';
import { type ToWorker, toMaster, type WorkerInfo, type WorkerSpec, workerSpecFromEnv } from './protocol.js';

let serving = false;

// In a process forked by a master, from the moment the framework is loaded: the death of the
// master terminates it (SIGPWR's default action) until WorkerServer.start turns that into a drain.
// A master that died before the signal was armed never sends it: then leave now.
// The variable is inherited by whatever a worker spawns; only the process the master forked holds
// the listening sockets the spec names (and an IPC channel): a grandchild with the variable must
// neither be armed (it would die with the worker) nor leave.
const specAtLoad = ((): WorkerSpec | undefined => {
  try {
    const spec = workerSpecFromEnv();
    const forked = spec !== undefined && process.send !== undefined && spec.fds.length > 0;
    return forked && spec.fds.every((fd) => isListening(fd)) ? spec : undefined;
  } catch {
    return undefined; // Server.listen reports it
  }
})();
// The relay's end (pub/sub, relay.ts) must not leak into processes this worker spawns either: a
// grandchild holding it would keep the master from seeing this worker's end close.
if (specAtLoad?.relay !== undefined) {
  try {
    setCloseOnExec(specAtLoad.relay);
    setNonBlocking(specAtLoad.relay);
  } catch {
    // Not there (a spec written by hand): src/pubsub/ finds it unusable and says so.
  }
}
if (specAtLoad !== undefined && armParentDeathSignal() && process.ppid !== specAtLoad.masterPid) {
  consoleLogger().warn(
    `worker ${process.pid}: master ${specAtLoad.masterPid} died before this worker started; exiting`,
  );
  process.exit(1);
}

/**
 * This worker's end of its master's pub/sub relay (master/relay.ts), for src/pubsub/ (in-cluster
 * mode): its descriptor, or undefined in a process that is not a worker forked by a master.
 */
export function relaySocket(): number | undefined {
  return specAtLoad?.relay;
}

/**
 * The handle `Server.listen()` returns in a worker process (a process forked by a master, running
 * the same script). It serves on the master's listening sockets and never binds one, so a worker
 * that exits or is replaced loses no connection waiting in the accept queue. Its lifetime belongs
 * to the master: a reload or a stop drains it and it exits; if the master dies, even by SIGKILL,
 * it drains and exits on its own. Use `slot` to tell workers apart (a replacement takes the same
 * slot, with the next `generation`).
 */
export interface WorkerHandle {
  readonly role: 'worker';
  /** This worker's slot and generation (for logs and metrics). */
  readonly slot: number;
  /** Counts the workers started for this slot: 1 for the first, one more for each replacement. */
  readonly generation: number;
  /** The address the master listens on (the workers serve it together). */
  address(): SocketAddress;
  /** Connections this worker has open now. */
  readonly connections: number;
  /** This worker's counters (the master sums every worker's in `collectStats()`). */
  stats(): LoopStats;
  /** Drains this worker and exits the process (the master replaces it if it did not ask for it). */
  close(options?: { timeout?: number }): Promise<void>;
}

export class WorkerServer extends ServingHandle implements WorkerHandle {
  readonly role = 'worker' as const;
  readonly slot: number;
  readonly generation: number;
  private stopping: Promise<void> | undefined;
  private parentWatch: ParentWatch | undefined;
  private readonly drainTimeout: number;
  private readonly logger: Logger;

  private constructor(
    spec: WorkerSpec,
    options: ServerOptions,
    connOptions: ResolvedConnectionOptions,
    logger: Logger,
  ) {
    const loop = new EventLoop({ ...options, logger, readBufferSize: connOptions.maxReadSize });
    super(new Serving(loop, options.pipeline, connOptions, servingOptions(options)));
    this.slot = spec.slot;
    this.generation = spec.generation;
    this.drainTimeout = options.drainTimeout ?? 10_000;
    this.logger = logger;
    for (const fd of spec.fds) {
      if (!isListening(fd)) throw new Error(`worker: inherited descriptor ${fd} is not a listening socket`);
      // dup2 in the fork cleared close-on-exec: set it again so that processes this worker
      // spawns do not inherit the listening socket.
      setCloseOnExec(fd);
      setNonBlocking(fd);
      this.serving.listen(fd, { exclusive: spec.exclusive, ownsFd: true });
    }
  }

  /** Starts serving as the worker described by `spec`, and tells the master it is ready. */
  static start(
    spec: WorkerSpec,
    options: ServerOptions,
    connOptions: ResolvedConnectionOptions,
    logger: Logger,
  ): WorkerServer {
    if (serving) {
      throw new Error('a worker serves one Server.listen() call: this process already serves one');
    }
    serving = true;
    const w = new WorkerServer(spec, options, connOptions, logger);
    process.on('message', w.onMessage);
    process.on('disconnect', w.onMasterGone);
    w.parentWatch = watchParent(spec.masterPid, w.onMasterGone, logger);
    // The master may have died while this worker loaded: 'disconnect' has fired already then.
    if (!process.connected) setImmediate(w.onMasterGone);
    process.on('SIGINT', () => {});
    process.on('SIGTERM', () => void w.close());
    process.on('SIGQUIT', () => void w.close({ timeout: Number.POSITIVE_INFINITY }));
    toMaster({ t: 'ready', pid: process.pid, address: w.address() });
    return w;
  }

  close(options: { timeout?: number } = {}): Promise<void> {
    this.stopping ??= this.drainAndExit(options.timeout ?? this.drainTimeout);
    return this.stopping;
  }

  private async drainAndExit(timeout: number): Promise<void> {
    this.parentWatch?.close();
    toMaster({ t: 'draining', connections: this.serving.connections });
    try {
      await this.serving.close(timeout);
    } catch (err) {
      this.logger.error('drain failed', err);
    }
    await this.sendFinal();
    // The master owns this process's lifetime: leave now rather than wait for whatever else
    // the application left running (timers, other handles).
    process.exit(0);
  }

  /**
   * The counters as the drain left them, so that the master's totals lose nothing of this worker
   * (Prometheus counters that go backwards read as resets). Waits until the message is written to
   * the channel — process.exit() would drop it otherwise — for at most a second.
   */
  private sendFinal(): Promise<void> {
    if (!process.connected || process.send === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      try {
        process.send?.({ t: 'final', info: this.info() }, undefined, undefined, () => {
          clearTimeout(timer);
          resolve();
        });
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private info(): WorkerInfo {
    const mem = process.memoryUsage();
    return {
      pid: process.pid,
      slot: this.slot,
      generation: this.generation,
      connections: this.serving.connections,
      stats: this.serving.stats(),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      http: httpMetrics.snapshot(),
      reports: workerReports(),
    };
  }

  private readonly onMessage = (raw: unknown): void => {
    const msg = raw as ToWorker;
    switch (msg?.t) {
      case 'stop-accepting':
        this.serving.stopAccepting();
        break;
      case 'drain':
        void this.close({ timeout: msg.timeout ?? Number.POSITIVE_INFINITY });
        break;
      case 'info':
        toMaster({ t: 'info', id: msg.id, info: this.info() });
        break;
      default:
        break;
    }
  };

  private readonly onMasterGone = (): void => {
    if (this.stopping !== undefined) return;
    this.logger.warn(`worker ${process.pid} (slot ${this.slot}): the master is gone; draining and exiting`);
    void this.close();
  };
}
