/**
 * The master process: owns the listening sockets, forks and supervises the workers, reloads
 * them without dropping a connection, and stops them gracefully. (docs/master.md has the
 * diagrams; this header is the why.)
 *
 * Why the master owns the sockets: with SO_REUSEPORT each socket has its own accept queue, and
 * closing one resets every connection queued in it — the classic reload loss. The master opens
 * the sockets, keeps them open for its whole life, and hands the *same* descriptor to each
 * generation of a slot's worker through `fork`'s stdio. A worker that dies, and a worker being
 * replaced, never closes the socket: connections queued in it wait for the next accept.
 *
 * Reload (SIGUSR2, SIGHUP, `reload()`): for each slot, fork the new worker on the slot's socket,
 * wait until it is ready (it accepts from the same queue from then on), then tell the old one
 * to drain and exit. A new worker that throws or is not ready within `startTimeout` is killed
 * and the old one keeps serving: the reload reports failure.
 */

import { type ChildProcess, fork, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { CloseReason } from '../common/close-reason.js';
import type { Logger } from '../common/logger.js';
import type { ResolvedClusterOptions, ServerOptions } from '../server-options.js';
import { close as sysClose } from '../syscalls/libc.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { localAddress, openServerSocket } from '../syscalls/socket.js';
import { type LoopStats, newStats } from '../worker/loop.js';
import { hasReusePort, takeListenFds } from './listen-fds.js';
import {
  type ToMaster,
  type ToWorker,
  WORKER_ENV,
  WORKER_FIRST_FD,
  type WorkerInfo,
  type WorkerSpec,
} from './protocol.js';

/** Set in a master spawned by `upgrade()`: report to the old master once serving. */
const UPGRADE_ENV = 'MULTIREACTOR_UPGRADE';
/** How long stragglers get after the drain deadline before SIGKILL. */
const KILL_GRACE_MS = 1000;

type WorkerState = 'starting' | 'ready' | 'draining' | 'exited';

interface WorkerProc {
  readonly slot: Slot;
  readonly generation: number;
  readonly child: ChildProcess;
  readonly pid: number;
  state: WorkerState;
  /** Resolves when the worker reports ready; rejects if it exits or times out first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited (been reaped). */
  readonly exited: Promise<void>;
  exitStatus?: string;
  killTimer?: NodeJS.Timeout;
}

interface Slot {
  readonly index: number;
  fds: number[];
  /** The worker serving this slot (the one that reported ready last). */
  worker: WorkerProc | undefined;
  generation: number;
  /** Timestamps of recent crashes, for backoff and crash-loop detection. */
  crashes: number[];
  abandoned: boolean;
  restartTimer?: NodeJS.Timeout | undefined;
}

/** What one worker looked like at a `collectStats()`. */
export interface WorkerSnapshot extends WorkerInfo {
  readonly state: WorkerState;
}

export interface ClusterStats {
  /** Each ready worker's own report. */
  readonly workers: readonly WorkerSnapshot[];
  /** Their counters summed. */
  readonly total: LoopStats;
  /** How evenly connections were spread: accepted per worker. */
  readonly balance: { readonly minAccepted: number; readonly maxAccepted: number; readonly ratio: number };
}

export interface ReloadResult {
  readonly ok: boolean;
  /** Slots whose worker was replaced, with the old and new pids. */
  readonly replaced: ReadonlyArray<{
    readonly slot: number;
    readonly oldPid: number | undefined;
    readonly newPid: number;
  }>;
  /** Why it stopped, when it failed. */
  readonly error?: string;
  readonly durationMs: number;
}

/** The handle `Server.listen()` returns in the master. */
export interface MasterHandle {
  readonly role: 'master';
  /** The address the workers serve. */
  address(): SocketAddress;
  /** Open connections in all workers, as of the last `collectStats()`. */
  readonly connections: number;
  /** Every worker's counters summed, as of the last `collectStats()`. */
  stats(): LoopStats;
  /** Asks every ready worker for its counters now. */
  collectStats(timeoutMs?: number): Promise<ClusterStats>;
  /** The worker processes now: slot, pid, generation, state. */
  workers(): ReadonlyArray<{ slot: number; pid: number; generation: number; state: WorkerState }>;
  /** Replaces every worker by a freshly started one without dropping a connection (SIGUSR2, SIGHUP). */
  reload(): Promise<ReloadResult>;
  /**
   * Starts a new master on the same listening sockets (passed as LISTEN_FDS, the systemd
   * convention), waits until it serves, then drains and stops this one's workers. Resolves with
   * the new master's pid; this process should then exit.
   */
  upgrade(): Promise<number>;
  /** Graceful stop: workers stop accepting, finish within the drain timeout (then are killed), exit. */
  close(options?: { timeout?: number }): Promise<void>;
}

let masterStarted = false;

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
}

export class MasterServer implements MasterHandle {
  readonly role = 'master' as const;
  private readonly slots: Slot[] = [];
  /** Every listening socket this master holds open. */
  private readonly sockets: number[] = [];
  private readonly live = new Set<WorkerProc>();
  private addr!: SocketAddress;
  private balance: 'reuseport' | 'shared';
  private readonly script: string;
  private readonly args: readonly string[];
  private stopping: Promise<void> | undefined;
  private reloading: Promise<ReloadResult> | undefined;
  private lastStats: LoopStats = newStats();
  private lastConnections = 0;
  private infoSeq = 0;
  private readonly infoWaiters = new Map<number, (info: WorkerInfo) => void>();
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];

  private constructor(
    private readonly options: ServerOptions,
    private readonly cluster: ResolvedClusterOptions,
    private readonly logger: Logger,
  ) {
    this.balance = cluster.balance;
    const script = options.workerScript ?? process.argv[1];
    if (script === undefined) {
      throw new Error('cannot fork workers: this process has no entry script (set workerScript, or workers: 0)');
    }
    this.script = script;
    this.args = options.workerArgs ?? process.argv.slice(2);
  }

  /** Opens (or inherits) the sockets, forks every worker and resolves once all are ready. */
  static async start(options: ServerOptions, cluster: ResolvedClusterOptions, logger: Logger): Promise<MasterServer> {
    if (masterStarted)
      throw new Error('this process is already a master: one Server.listen() per process in cluster mode');
    masterStarted = true;
    const m = new MasterServer(options, cluster, logger);
    try {
      m.openSockets();
      await m.startAll();
    } catch (err) {
      masterStarted = false;
      await m.shutdown(0);
      throw err;
    }
    if (cluster.handleSignals) m.installSignals();
    m.notifyPredecessor();
    return m;
  }

  // ---- sockets ----

  private openSockets(): void {
    const n = this.cluster.workers;
    const inherited = takeListenFds();
    const common = { backlog: this.options.backlog ?? 511, ipv6Only: this.options.ipv6Only ?? false };
    if (inherited.length > 0) {
      this.sockets.push(...inherited);
      this.addr = localAddress(inherited[0] as number);
      this.logger.info(
        `master ${process.pid}: serving on ${inherited.length} inherited socket(s) (LISTEN_FDS), ${this.addr.address}:${this.addr.port}`,
      );
      if (this.balance === 'reuseport' && inherited.length < n) {
        if (hasReusePort(inherited[0] as number)) {
          while (this.sockets.length < n) this.sockets.push(this.openSlotSocket());
        } else {
          this.logger.warn('inherited sockets lack SO_REUSEPORT: balancing with one shared socket instead');
          this.balance = 'shared';
        }
      }
    } else {
      // The first socket refuses an address something already listens on ('exclusive', see
      // openListenSocket): without that, SO_REUSEPORT would let this master join another
      // server's port and silently take half of its connections. `reusePort: true` joins on
      // purpose. Either way the socket ends up with SO_REUSEPORT: our other slots (reuseport
      // balance), a reload of an abandoned slot and a successor master (upgrade) add sockets to
      // the port.
      const first = openServerSocket({
        host: this.options.host,
        port: this.options.port ?? 0,
        reusePort: this.options.reusePort === true ? true : 'exclusive',
        ...common,
      });
      this.sockets.push(first);
      this.addr = localAddress(first);
      // reuseport: the rest bound to the port the first one got (port 0 picks it).
      while (this.balance === 'reuseport' && this.sockets.length < n) this.sockets.push(this.openSlotSocket());
    }
    for (let i = 0; i < n; i++) {
      const fds =
        this.balance === 'shared'
          ? [...this.sockets]
          : // Slot i takes socket i, and any sockets beyond the worker count are shared out
            // round-robin, so that no socket is left without a worker to accept from it.
            this.sockets.filter((_, j) => j % n === i);
      this.slots.push({ index: i, fds, worker: undefined, generation: 0, crashes: [], abandoned: false });
    }
  }

  /** One more socket in our own SO_REUSEPORT group on the port (the first socket opened it). */
  private openSlotSocket(): number {
    return openServerSocket({
      host: this.addr.address,
      port: this.addr.port,
      reusePort: true,
      backlog: this.options.backlog ?? 511,
      ipv6Only: this.options.ipv6Only ?? false,
    });
  }

  address(): SocketAddress {
    return this.addr;
  }

  // ---- workers ----

  private fork(slot: Slot): WorkerProc {
    const generation = ++slot.generation;
    const spec: WorkerSpec = {
      slot: slot.index,
      generation,
      fds: slot.fds.map((_, i) => WORKER_FIRST_FD + i),
      exclusive: this.balance === 'shared',
      masterPid: process.pid,
    };
    const env: NodeJS.ProcessEnv = { ...process.env, [WORKER_ENV]: JSON.stringify(spec) };
    delete env[UPGRADE_ENV];
    const child = fork(this.script, [...this.args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...slot.fds],
      env,
      execArgv: process.execArgv,
    });
    let resolveReady!: () => void;
    let rejectReady!: (err: Error) => void;
    let resolveExited!: () => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    // Nobody may await `ready` (a worker started during a stop): do not let it go unhandled.
    ready.catch(() => {});
    const exited = new Promise<void>((res) => {
      resolveExited = res;
    });
    const w: WorkerProc = { slot, generation, child, pid: child.pid ?? -1, state: 'starting', ready, exited };
    this.live.add(w);
    const startTimer = setTimeout(() => {
      if (w.state !== 'starting') return;
      rejectReady(new Error(`worker ${w.pid} (slot ${slot.index}) not ready within ${this.cluster.startTimeout} ms`));
      child.kill('SIGKILL');
    }, this.cluster.startTimeout);
    child.on('message', (raw: unknown) => {
      const msg = raw as ToMaster;
      if (msg?.t === 'ready' && w.state === 'starting') {
        clearTimeout(startTimer);
        w.state = 'ready';
        resolveReady();
      } else if (msg?.t === 'info') {
        const waiter = this.infoWaiters.get(msg.id);
        this.infoWaiters.delete(msg.id);
        waiter?.(msg.info);
      }
    });
    child.on('error', (err) => {
      this.logger.error(`worker ${w.pid} (slot ${slot.index}): ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      clearTimeout(w.killTimer);
      const was = w.state;
      w.state = 'exited';
      w.exitStatus = describeExit(code, signal);
      this.live.delete(w);
      if (was === 'starting')
        rejectReady(new Error(`worker ${w.pid} (slot ${slot.index}) ${w.exitStatus} before it was ready`));
      resolveExited();
      this.onExit(w, was);
    });
    return w;
  }

  /** Forks a worker for `slot` and waits until it is ready (or throws, the process killed). */
  private async startOn(slot: Slot): Promise<WorkerProc> {
    const w = this.fork(slot);
    await w.ready;
    return w;
  }

  private async startAll(): Promise<void> {
    const started = await Promise.allSettled(this.slots.map((s) => this.startOn(s)));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    started.forEach((r, i) => {
      (this.slots[i] as Slot).worker = (r as PromiseFulfilledResult<WorkerProc>).value;
    });
    this.logger.info(
      `master ${process.pid}: ${this.slots.length} workers ready on ${this.addr.address}:${this.addr.port} (${this.balance}): pids ${this.slots.map((s) => s.worker?.pid).join(', ')}`,
    );
  }

  private send(w: WorkerProc, msg: ToWorker): void {
    if (w.child.connected) w.child.send(msg);
  }

  /** Tells a worker to drain and exit; kills it if it is still there after the deadline. */
  private retire(w: WorkerProc, timeout: number): void {
    if (w.state === 'exited' || w.state === 'draining') return;
    if (w.state === 'starting') {
      w.child.kill('SIGKILL');
      return;
    }
    w.state = 'draining';
    this.send(w, { t: 'drain', timeout: Number.isFinite(timeout) ? timeout : null });
    if (Number.isFinite(timeout)) {
      w.killTimer = setTimeout(() => {
        if (w.state !== 'exited') {
          this.logger.warn(`worker ${w.pid} (slot ${w.slot.index}) still draining after ${timeout} ms: killing it`);
          w.child.kill('SIGKILL');
        }
      }, timeout + KILL_GRACE_MS);
    }
  }

  // ---- supervision ----

  private onExit(w: WorkerProc, was: WorkerState): void {
    const slot = w.slot;
    if (slot.worker !== w) return; // replaced, draining, or never made it: expected
    slot.worker = undefined;
    if (this.stopping !== undefined || was !== 'ready') return;
    this.logger.error(`worker ${w.pid} (slot ${slot.index}, generation ${w.generation}) ${w.exitStatus} unexpectedly`);
    this.scheduleRestart(slot);
  }

  private scheduleRestart(slot: Slot): void {
    const now = Date.now();
    slot.crashes = slot.crashes.filter((t) => now - t < this.cluster.crashWindow);
    slot.crashes.push(now);
    if (slot.crashes.length > this.cluster.maxCrashes) {
      this.abandon(slot);
      return;
    }
    const delay = Math.min(this.cluster.restartDelay * 2 ** (slot.crashes.length - 1), this.cluster.maxRestartDelay);
    this.logger.warn(`slot ${slot.index}: restarting in ${delay} ms (crash ${slot.crashes.length} in the window)`);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.stopping !== undefined || slot.worker !== undefined) return;
      this.startOn(slot).then(
        (w) => {
          if (this.stopping !== undefined) {
            this.retire(w, 0);
            return;
          }
          slot.worker = w;
          this.logger.info(`worker ${w.pid} (slot ${slot.index}, generation ${w.generation}) ready after a restart`);
        },
        (err: Error) => {
          this.logger.error(`slot ${slot.index}: restart failed: ${err.message}`);
          if (this.stopping === undefined) this.scheduleRestart(slot);
        },
      );
    }, delay);
  }

  private abandon(slot: Slot): void {
    slot.abandoned = true;
    this.logger.error(
      `slot ${slot.index}: crash loop (${slot.crashes.length} crashes within ${this.cluster.crashWindow} ms): not restarting it`,
    );
    if (this.balance !== 'reuseport') return;
    // Nobody accepts from this slot's sockets any more, but the kernel would keep hashing new
    // connections to them: close them so that it stops (the connections queued there now are
    // reset; with net.ipv4.tcp_migrate_req = 1 the kernel would move them to another socket).
    for (const fd of slot.fds) {
      const i = this.sockets.indexOf(fd);
      if (i >= 0) this.sockets.splice(i, 1);
      sysClose(fd);
    }
    slot.fds = [];
  }

  // ---- reload ----

  reload(): Promise<ReloadResult> {
    if (this.stopping !== undefined) return Promise.reject(new Error('the server is stopping'));
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(): Promise<ReloadResult> {
    const t0 = performance.now();
    const slots = this.slots.filter((s) => !s.abandoned);
    this.logger.info(`reload: replacing ${slots.length} workers (${this.cluster.reloadStrategy})`);
    const replaced: Array<{ slot: number; oldPid: number | undefined; newPid: number }> = [];
    const swap = (slot: Slot, fresh: WorkerProc) => {
      const old = slot.worker;
      slot.worker = fresh;
      replaced.push({ slot: slot.index, oldPid: old?.pid, newPid: fresh.pid });
      if (old !== undefined) this.retire(old, this.cluster.drainTimeout);
    };
    let error: string | undefined;
    if (this.cluster.reloadStrategy === 'rolling') {
      for (const slot of slots) {
        if (this.stopping !== undefined) break;
        try {
          swap(slot, await this.startOn(slot));
        } catch (err) {
          error = `slot ${slot.index}: ${(err as Error).message}`;
          break;
        }
      }
    } else {
      const fresh = slots.map((s) => this.fork(s));
      const settled = await Promise.allSettled(fresh.map((w) => w.ready));
      const bad = settled.findIndex((r) => r.status === 'rejected');
      if (bad >= 0) {
        error = `slot ${slots[bad]?.index}: ${((settled[bad] as PromiseRejectedResult).reason as Error).message}`;
        for (const w of fresh) this.retire(w, 0);
      } else {
        for (let i = 0; i < slots.length; i++) swap(slots[i] as Slot, fresh[i] as WorkerProc);
      }
    }
    const durationMs = Math.round(performance.now() - t0);
    if (error !== undefined) {
      this.logger.error(`reload failed after ${durationMs} ms: ${error}; the current workers keep serving`);
    } else {
      this.logger.info(
        `reload done in ${durationMs} ms: ${replaced.map((r) => `${r.oldPid} -> ${r.newPid}`).join(', ')}`,
      );
    }
    return error === undefined ? { ok: true, replaced, durationMs } : { ok: false, replaced, error, durationMs };
  }

  // ---- stats ----

  workers(): Array<{ slot: number; pid: number; generation: number; state: WorkerState }> {
    return [...this.live]
      .map((w) => ({ slot: w.slot.index, pid: w.pid, generation: w.generation, state: w.state }))
      .sort((a, b) => a.slot - b.slot || a.generation - b.generation);
  }

  get connections(): number {
    return this.lastConnections;
  }

  stats(): LoopStats {
    return structuredClone(this.lastStats);
  }

  private ask(w: WorkerProc, timeoutMs: number): Promise<WorkerInfo | undefined> {
    return new Promise((resolve) => {
      const id = ++this.infoSeq;
      const timer = setTimeout(() => {
        this.infoWaiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.infoWaiters.set(id, (info) => {
        clearTimeout(timer);
        resolve(info);
      });
      this.send(w, { t: 'info', id });
    });
  }

  async collectStats(timeoutMs = 2000): Promise<ClusterStats> {
    const ready = [...this.live].filter((w) => w.state === 'ready');
    const answers = await Promise.all(ready.map((w) => this.ask(w, timeoutMs)));
    const workers: WorkerSnapshot[] = [];
    answers.forEach((info, i) => {
      if (info !== undefined) workers.push({ ...info, state: (ready[i] as WorkerProc).state });
    });
    const total = newStats();
    let connections = 0;
    for (const w of workers) {
      connections += w.connections;
      const sums = total as unknown as Record<string, number>;
      for (const [k, v] of Object.entries(w.stats)) {
        if (typeof v === 'number') sums[k] = (sums[k] ?? 0) + v;
      }
      for (const [reason, count] of Object.entries(w.stats.closed)) total.closed[reason as CloseReason] += count;
    }
    const accepted = workers.map((w) => w.stats.accepted);
    const minAccepted = accepted.length > 0 ? Math.min(...accepted) : 0;
    const maxAccepted = accepted.length > 0 ? Math.max(...accepted) : 0;
    this.lastStats = total;
    this.lastConnections = connections;
    return {
      workers,
      total,
      balance: {
        minAccepted,
        maxAccepted,
        ratio: minAccepted > 0 ? maxAccepted / minAccepted : Number.POSITIVE_INFINITY,
      },
    };
  }

  // ---- stop ----

  close(options: { timeout?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.timeout ?? this.cluster.drainTimeout);
    return this.stopping;
  }

  private async shutdown(timeout: number): Promise<void> {
    for (const slot of this.slots) clearTimeout(slot.restartTimer);
    const workers = [...this.live];
    if (workers.length > 0) {
      this.logger.info(`master ${process.pid}: stopping ${workers.length} workers (drain ${timeout} ms)`);
    }
    for (const w of workers) {
      if (w.state === 'draining' && Number.isFinite(timeout)) {
        // Already draining (from a reload): hold it to this stop's deadline too.
        clearTimeout(w.killTimer);
        w.killTimer = setTimeout(() => w.child.kill('SIGKILL'), timeout + KILL_GRACE_MS);
      }
      this.retire(w, timeout);
    }
    await Promise.all(workers.map((w) => w.exited));
    for (const fd of this.sockets.splice(0)) sysClose(fd);
    this.removeSignals();
    masterStarted = false;
    if (workers.length > 0) this.logger.info(`master ${process.pid}: stopped, every worker reaped`);
  }

  /** Second signal during a stop: no more waiting. */
  private killAll(): void {
    for (const w of this.live) w.child.kill('SIGKILL');
  }

  private installSignals(): void {
    const stopThenExit = (timeout: number) => () => {
      if (this.stopping !== undefined) {
        this.logger.warn('second stop signal: killing the workers now');
        this.killAll();
        return;
      }
      this.close({ timeout }).then(
        () => process.exit(0),
        (err: unknown) => {
          this.logger.error('stop failed', err);
          process.exit(1);
        },
      );
    };
    const reload = () => {
      this.reload().catch((err: unknown) => this.logger.error('reload failed', err));
    };
    const handlers: Array<[NodeJS.Signals, () => void]> = [
      ['SIGTERM', stopThenExit(this.cluster.drainTimeout)],
      ['SIGINT', stopThenExit(this.cluster.drainTimeout)],
      ['SIGQUIT', stopThenExit(Number.POSITIVE_INFINITY)],
      ['SIGUSR2', reload],
      ['SIGHUP', reload],
    ];
    for (const [sig, fn] of handlers) {
      process.on(sig, fn);
      this.signalHandlers.push([sig, fn]);
    }
  }

  private removeSignals(): void {
    for (const [sig, fn] of this.signalHandlers.splice(0)) process.off(sig, fn);
  }

  // ---- master upgrade ----

  async upgrade(): Promise<number> {
    if (this.stopping !== undefined) throw new Error('the server is stopping');
    const fds = [...this.sockets];
    // LISTEN_PID must name the new process itself (sd_listen_fds checks it). Its pid is only
    // known after the fork, so a shell sets it and exec()s node in the same process.
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"',
        process.execPath,
        ...process.execArgv,
        this.script,
        ...this.args,
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit', ...fds, 'ipc'],
        env: { ...process.env, LISTEN_FDS: String(fds.length), [UPGRADE_ENV]: '1' },
      },
    );
    this.logger.info(`upgrade: started master ${child.pid} with ${fds.length} listening socket(s)`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`upgrade: the new master did not report ready within ${this.cluster.startTimeout * 2} ms`));
      }, this.cluster.startTimeout * 2);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`upgrade: the new master ${describeExit(code, signal)} before serving`));
      });
    });
    child.disconnect();
    child.unref();
    this.logger.info(`upgrade: master ${child.pid} serves; draining this master's workers`);
    await this.close();
    return child.pid as number;
  }

  /** A master started by `upgrade()` tells its predecessor that it serves. */
  private notifyPredecessor(): void {
    if (process.env[UPGRADE_ENV] !== '1') return;
    delete process.env[UPGRADE_ENV];
    if (process.send !== undefined && process.connected) {
      process.send({ t: 'upgraded', pid: process.pid });
      process.disconnect();
    }
  }
}
