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
 * and the old one keeps serving: the reload reports failure. A request during a reload queues one
 * more pass (see `reload()`): otherwise the slots already done would keep older code for good.
 *
 * Crashes: the first crash of a slot within `crashWindow` restarts it at once, later ones back
 * off; a slot past `maxCrashes` is abandoned until a reload retries it, and when every slot is
 * abandoned the master gives up and exits 1 so that its supervisor restarts it. A master whose
 * parent process dies stops as on SIGTERM (parent.ts), unless it is a daemon on purpose.
 */

import { performance } from 'node:perf_hooks';
import type { Logger } from '../common/logger.js';
import type { ResolvedClusterOptions, ServerOptions } from '../server-options.js';
import { close as sysClose } from '../syscalls/libc.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { removeUnixSocketFile, type UnixListenSocket } from '../syscalls/socket.js';
import { type LoopStats, newStats } from '../worker/loop.js';
import {
  type ClusterStats,
  type MasterCounters,
  type MasterHandle,
  type MasterOps,
  type MasterOpsFactory,
  type MasterPhase,
  type MasterStopped,
  type MasterView,
  type ReloadResult,
  summarize,
  type WorkerSnapshot,
  type WorkerState,
  type WorkerStatus,
} from './handle.js';
import { type ParentWatch, watchParent } from './parent.js';
import type { WorkerInfo } from './protocol.js';
import { RelayHub } from './relay.js';
import { type Balance, describeAddress, openGroupSocket, openMasterSockets, slotSockets } from './sockets.js';
import { isUpgradedMaster, notifyPredecessor, spawnSuccessor, UPGRADE_ENV } from './upgrade.js';
import { forkWorker, sendTo, type WorkerProc } from './worker-proc.js';

export type { ClusterStats, MasterHandle, MasterPhase, MasterStopped, ReloadResult, WorkerSnapshot } from './handle.js';

/** How long stragglers get after the drain deadline before SIGKILL. */
const KILL_GRACE_MS = 1000;

interface Slot {
  readonly index: number;
  fds: number[];
  /** The worker serving this slot (the one that reported ready last). */
  worker: WorkerProc | undefined;
  generation: number;
  /** Timestamps of recent crashes, for backoff and crash-loop detection. */
  crashes: number[];
  /** How the last worker of this slot that failed ended (for the crash-loop error line). */
  lastFailure: string | undefined;
  /** In a crash loop: not restarted until a reload retries it. */
  abandoned: boolean;
  restartTimer?: NodeJS.Timeout | undefined;
  /** A crash restart in flight: settles once its worker is installed, or its failure handled. */
  restarting?: Promise<void> | undefined;
  /** Crash restarts since the master started (for status and metrics). */
  restarts: number;
}

/** A reload requested while one runs: one more pass, for every request made meanwhile. */
interface QueuedReload {
  /** When the latest of those requests came (performance.now()). */
  requestedAt: number;
  readonly result: Promise<ReloadResult>;
  readonly resolve: (r: ReloadResult) => void;
}

let masterStarted = false;
/** Our parent when this module was loaded: the process the master stops with (parent.ts). */
const PARENT_AT_LOAD = process.ppid;

export class MasterServer implements MasterHandle, MasterView {
  readonly role = 'master' as const;
  readonly pid = process.pid;
  readonly startedAtMs = Date.now();
  private phaseNow: MasterPhase = 'starting';
  /** The Unix socket file this master created for `path` (removed at stop unless handed over). */
  private unixSocket: UnixListenSocket | undefined;
  /** The sockets went to a successor (upgrade): its files are its own now. */
  private handedOver = false;
  private ops: MasterOps | undefined;
  private reloadsOk = 0;
  private reloadsFailed = 0;
  private shutdownDelayTimer: NodeJS.Timeout | undefined;
  private readonly goneListeners: Array<(slot: number, last: WorkerInfo, counted: WorkerInfo | undefined) => void> = [];
  private resolveWorkersDown!: () => void;
  /** Every worker reaped and the listening sockets closed (the operations side is still open). */
  private readonly workersDown = new Promise<void>((resolve) => {
    this.resolveWorkersDown = resolve;
  });
  private readonly slots: Slot[] = [];
  /** Every listening socket this master holds open. */
  private readonly sockets: number[] = [];
  private readonly live = new Set<WorkerProc>();
  private addr!: SocketAddress;
  private balance: Balance;
  /** TCP_DEFER_ACCEPT seconds of our listening sockets, for a socket opened later to join them. */
  private deferAccept = 0;
  private readonly script: string;
  private readonly args: readonly string[];
  private stopping: Promise<void> | undefined;
  /** Why the master stops (set by the first stop). */
  private stopReason: MasterStopped | undefined;
  private resolveStopped!: (why: MasterStopped) => void;
  readonly stopped = new Promise<MasterStopped>((resolve) => {
    this.resolveStopped = resolve;
  });
  private reloading: Promise<ReloadResult> | undefined;
  private queuedReload: QueuedReload | undefined;
  private parentWatch: ParentWatch | undefined;
  private lastStats: LoopStats = newStats();
  private lastConnections = 0;
  private infoSeq = 0;
  private readonly infoWaiters = new Map<number, (info: WorkerInfo) => void>();
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** The workers' pub/sub relay (relay.ts): a socket pair per worker, on a loop of its own once the first one forks. */
  private readonly relay: RelayHub;

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
    this.relay = new RelayHub(logger);
  }

  /**
   * Opens the operations side (pid file, control socket, admin listener: `ops`), opens (or
   * inherits) the sockets, forks every worker and resolves once all are ready.
   */
  static async start(
    options: ServerOptions,
    cluster: ResolvedClusterOptions,
    logger: Logger,
    ops?: MasterOpsFactory,
  ): Promise<MasterServer> {
    if (masterStarted)
      throw new Error('this process is already a master: one Server.listen() per process in cluster mode');
    masterStarted = true;
    const m = new MasterServer(options, cluster, logger);
    try {
      // First: a pid file naming a live master refuses this start before anything is bound.
      m.ops = await ops?.(m);
      m.openSockets();
      await m.startAll();
    } catch (err) {
      masterStarted = false;
      await m.shutdown(0);
      throw err;
    }
    m.phaseNow = 'serving';
    if (cluster.handleSignals) m.installSignals();
    // A master started by upgrade() outlives its parent (the master it replaces) by design.
    if (!cluster.daemon && !isUpgradedMaster())
      m.parentWatch = watchParent(PARENT_AT_LOAD, () => m.onParentGone(), logger);
    notifyPredecessor();
    return m;
  }

  // ---- sockets ----

  private openSockets(): void {
    const n = this.cluster.workers;
    const { addr, balance, unix, deferAccept } = openMasterSockets(
      this.options,
      n,
      this.balance,
      this.logger,
      this.sockets,
    );
    this.addr = addr;
    this.balance = balance;
    this.deferAccept = deferAccept;
    this.unixSocket = unix;
    for (let i = 0; i < n; i++) {
      this.slots.push({
        index: i,
        fds: slotSockets(this.sockets, n, i, balance),
        worker: undefined,
        generation: 0,
        crashes: [],
        lastFailure: undefined,
        abandoned: false,
        restarts: 0,
      });
    }
  }

  address(): SocketAddress {
    return this.addr;
  }

  // ---- workers ----

  private fork(slot: Slot): WorkerProc {
    const generation = slot.generation + 1;
    // The worker's end of its relay goes down at the fork; the master's copy is closed right after.
    const relayFd = this.relay.open(`worker slot ${slot.index} generation ${generation}`);
    try {
      return this.forkOn(slot, relayFd);
    } finally {
      sysClose(relayFd);
    }
  }

  private forkOn(slot: Slot, relayFd: number): WorkerProc {
    const w = forkWorker({
      script: this.script,
      args: this.args,
      slot: slot.index,
      generation: ++slot.generation,
      fds: slot.fds,
      relayFd,
      exclusive: this.balance === 'shared',
      startTimeout: this.cluster.startTimeout,
      dropEnv: [UPGRADE_ENV],
      logger: this.logger,
      onInfo: (id, info) => {
        const waiter = this.infoWaiters.get(id);
        this.infoWaiters.delete(id);
        waiter?.(info);
      },
      onExit: (proc, was) => {
        // Its counters leave the live set and join the slot's past at the same instant.
        this.live.delete(proc);
        this.workerGone(proc);
        this.onExit(proc, was);
      },
      // A final report that arrived after the exit is folded in now (only what it adds).
      onGone: (proc) => this.workerGone(proc),
    });
    this.live.add(w);
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
      `master ${process.pid}: ${this.slots.length} workers ready on ${describeAddress(this.addr)} (${this.balance}): pids ${this.slots.map((s) => s.worker?.pid).join(', ')}`,
    );
  }

  /** Tells a worker to drain and exit; kills it if it is still there after the deadline. */
  private retire(w: WorkerProc, timeout: number): void {
    if (w.state === 'exited' || w.state === 'draining') return;
    if (w.state === 'starting') {
      w.child.kill('SIGKILL');
      return;
    }
    w.state = 'draining';
    sendTo(w, { t: 'drain', timeout: Number.isFinite(timeout) ? timeout : null });
    if (Number.isFinite(timeout)) {
      w.killTimer = setTimeout(() => {
        if (w.state !== 'exited') {
          this.logger.warn(`worker ${w.pid} (slot ${w.slot}) still draining after ${timeout} ms: killing it`);
          w.child.kill('SIGKILL');
        }
      }, timeout + KILL_GRACE_MS);
    }
  }

  // ---- supervision ----

  private onExit(w: WorkerProc, was: WorkerState): void {
    const slot = this.slots[w.slot] as Slot;
    if (slot.worker !== w) return; // replaced, draining, or never made it: expected
    slot.worker = undefined;
    if (this.stopping !== undefined || was !== 'ready') return;
    slot.lastFailure = w.exitStatus;
    this.logger.error(`worker ${w.pid} (slot ${slot.index}, generation ${w.generation}) ${w.exitStatus} unexpectedly`);
    this.scheduleRestart(slot, performance.now());
  }

  /**
   * Counts a crash of `slot` and restarts it: the first crash within `crashWindow` at once (a
   * lone crash is no loop, and every ms without the worker its socket's queue grows); later ones
   * after `restartDelay`, doubling, up to `maxRestartDelay`. More than `maxCrashes` is a loop.
   */
  private scheduleRestart(slot: Slot, since: number): void {
    const now = Date.now();
    slot.crashes = slot.crashes.filter((t) => now - t < this.cluster.crashWindow);
    slot.crashes.push(now);
    const n = slot.crashes.length;
    if (n > this.cluster.maxCrashes) {
      this.abandon(slot);
      return;
    }
    const delay = n === 1 ? 0 : Math.min(this.cluster.restartDelay * 2 ** (n - 2), this.cluster.maxRestartDelay);
    this.logger.warn(
      `slot ${slot.index}: restarting ${delay === 0 ? 'now' : `in ${delay} ms`} (crash ${n} in the window)`,
    );
    const restart = () => {
      slot.restartTimer = undefined;
      this.restart(slot, since);
    };
    if (delay === 0) restart();
    else slot.restartTimer = setTimeout(restart, delay);
  }

  private restart(slot: Slot, since: number): void {
    if (this.stopping !== undefined || slot.worker !== undefined || slot.abandoned) return;
    const w = this.fork(slot);
    const settled = w.ready.then(
      () => {
        if (this.stopping !== undefined) {
          this.retire(w, 0);
          return;
        }
        if (slot.worker !== undefined) {
          // A reload filled the slot meanwhile, with code as fresh as this one's.
          this.retire(w, this.cluster.drainTimeout);
          return;
        }
        slot.worker = w;
        slot.restarts++;
        const now = performance.now();
        this.logger.info(
          `worker ${w.pid} (slot ${slot.index}, generation ${w.generation}) ready after a restart: ${Math.round(now - since)} ms after the crash, ${Math.round(now - w.forkedAt)} ms to start`,
        );
      },
      (err: Error) => {
        slot.lastFailure = w.exitStatus === undefined ? err.message : `${w.exitStatus} before it was ready`;
        this.logger.error(`slot ${slot.index}: restart failed: ${err.message}`);
        if (this.stopping === undefined) this.scheduleRestart(slot, since);
      },
    );
    slot.restarting = settled;
    void settled.then(() => {
      if (slot.restarting === settled) slot.restarting = undefined;
    });
  }

  private abandon(slot: Slot): void {
    slot.abandoned = true;
    this.logger.error(
      `slot ${slot.index}: crash loop (${slot.crashes.length} crashes within ${this.cluster.crashWindow} ms, last: ${slot.lastFailure}): not restarting it until a reload`,
    );
    if (this.balance === 'reuseport') {
      // Nobody accepts from this slot's sockets any more, but the kernel would keep hashing new
      // connections to them: close them so that it stops (the connections queued there now are
      // reset; with net.ipv4.tcp_migrate_req = 1 the kernel would move them to another socket).
      // A reload that retries the slot opens new ones.
      for (const fd of slot.fds) this.closeSocket(fd);
      slot.fds = [];
    }
    if (this.slots.every((s) => s.abandoned)) this.giveUp();
  }

  /**
   * Every slot is in a crash loop: nothing serves, and only a restart of the whole master (by its
   * supervisor: systemd's Restart=on-failure, a container's restart policy) can help. Say why,
   * stop, and exit non-zero so that the supervisor sees a failure.
   */
  private giveUp(): void {
    const why = `every worker slot is in a crash loop (${this.slots
      .map((s) => `slot ${s.index}: ${s.lastFailure ?? 'unknown'}`)
      .join('; ')})`;
    this.logger.error(`master ${process.pid}: ${why}: stopping${this.cluster.handleSignals ? ', exit status 1' : ''}`);
    this.stopFor({ ok: false, reason: why }, 0, this.cluster.handleSignals);
  }

  private closeSocket(fd: number): void {
    const i = this.sockets.indexOf(fd);
    if (i >= 0) this.sockets.splice(i, 1);
    sysClose(fd);
  }

  // ---- reload ----

  /**
   * Replaces every worker by one started after this call. A request while a reload runs is not
   * folded into it — the slots that pass already replaced would keep the code loaded before this
   * request — but queued: one more pass runs after the current one, for every request made
   * meanwhile, and replaces each worker forked before the latest of them.
   */
  reload(): Promise<ReloadResult> {
    if (this.stopping !== undefined) return Promise.reject(new Error('the server is stopping'));
    const requestedAt = performance.now();
    if (this.reloading === undefined) {
      this.reloading = this.runReload(requestedAt);
      return this.reloading;
    }
    if (this.queuedReload === undefined) {
      let resolve!: (r: ReloadResult) => void;
      const result = new Promise<ReloadResult>((r) => {
        resolve = r;
      });
      this.queuedReload = { requestedAt, result, resolve };
      this.logger.info(
        'reload requested while a reload runs: one more pass queued after it, so that every worker runs code loaded after this request',
      );
    } else {
      this.queuedReload.requestedAt = requestedAt;
      this.logger.info('reload requested while a reload runs: joins the pass already queued');
    }
    return this.queuedReload.result;
  }

  private async runReload(requestedAt: number): Promise<ReloadResult> {
    try {
      return await this.doReload(requestedAt);
    } finally {
      this.reloading = undefined;
      const next = this.queuedReload;
      this.queuedReload = undefined;
      if (next !== undefined) {
        if (this.stopping !== undefined) {
          next.resolve({ ok: false, replaced: [], error: 'the server is stopping', durationMs: 0 });
        } else {
          this.reloading = this.runReload(next.requestedAt);
          this.reloading.then(next.resolve, (err: Error) =>
            next.resolve({ ok: false, replaced: [], error: err.message, durationMs: 0 }),
          );
        }
      }
    }
  }

  /** Whether `slot` needs a new worker for a reload requested at `requestedAt`. */
  private stale(slot: Slot, requestedAt: number): boolean {
    return slot.abandoned || slot.worker === undefined || slot.worker.forkedAt < requestedAt;
  }

  /**
   * Forks a worker for a reload. A slot abandoned after a crash loop is retried: in `reuseport`
   * mode it gets a new socket in our group (its old one was closed), closed again if the worker
   * does not start.
   */
  private forkForReload(slot: Slot): WorkerProc {
    if (slot.abandoned && this.balance === 'reuseport' && slot.fds.length === 0) {
      const fd = openGroupSocket(this.addr, this.options, this.deferAccept);
      this.sockets.push(fd);
      slot.fds = [fd];
    }
    return this.fork(slot);
  }

  /** A reload's worker for an abandoned slot did not start: the slot stays abandoned, socket closed. */
  private reloadFailedOn(slot: Slot): void {
    if (!slot.abandoned || this.balance !== 'reuseport') return;
    for (const fd of slot.fds) this.closeSocket(fd);
    slot.fds = [];
  }

  private async doReload(requestedAt: number): Promise<ReloadResult> {
    const t0 = performance.now();
    // A crash restart in flight settles first: its worker may already run fresh code.
    await Promise.all(this.slots.map((s) => s.restarting));
    const planned = this.slots.filter((s) => this.stale(s, requestedAt));
    const retried = planned.filter((s) => s.abandoned).length;
    this.logger.info(
      `reload: replacing ${planned.length} of ${this.slots.length} workers (${this.cluster.reloadStrategy})${retried > 0 ? `, retrying ${retried} slot(s) abandoned after a crash loop` : ''}`,
    );
    const replaced: Array<{ slot: number; oldPid: number | undefined; newPid: number }> = [];
    const swap = (slot: Slot, fresh: WorkerProc) => {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      if (slot.abandoned) {
        slot.abandoned = false;
        slot.crashes = [];
        this.logger.info(`slot ${slot.index}: serving again after its crash loop (worker ${fresh.pid})`);
      }
      const old = slot.worker;
      slot.worker = fresh;
      replaced.push({ slot: slot.index, oldPid: old?.pid, newPid: fresh.pid });
      if (old !== undefined) this.retire(old, this.cluster.drainTimeout);
    };
    let error: string | undefined;
    if (this.cluster.reloadStrategy === 'rolling') {
      for (const slot of this.slots) {
        if (this.stopping !== undefined) break;
        await slot.restarting;
        if (!this.stale(slot, requestedAt)) continue;
        const fresh = this.forkForReload(slot);
        try {
          await fresh.ready;
        } catch (err) {
          this.reloadFailedOn(slot);
          error = `slot ${slot.index}: ${(err as Error).message}`;
          break;
        }
        if (this.stopping !== undefined) break; // the stop retires it with the others
        swap(slot, fresh);
      }
    } else {
      const slots = this.slots.filter((s) => this.stale(s, requestedAt));
      const fresh = slots.map((s) => this.forkForReload(s));
      const settled = await Promise.allSettled(fresh.map((w) => w.ready));
      const bad = settled.findIndex((r) => r.status === 'rejected');
      if (bad >= 0) {
        error = `slot ${slots[bad]?.index}: ${((settled[bad] as PromiseRejectedResult).reason as Error).message}`;
        for (const w of fresh) this.retire(w, 0);
        for (const s of slots) this.reloadFailedOn(s);
      } else if (this.stopping === undefined) {
        for (let i = 0; i < slots.length; i++) swap(slots[i] as Slot, fresh[i] as WorkerProc);
      }
    }
    const durationMs = Math.round(performance.now() - t0);
    if (error === undefined) this.reloadsOk++;
    else this.reloadsFailed++;
    if (error !== undefined) {
      this.logger.error(`reload failed after ${durationMs} ms: ${error}; the current workers keep serving`);
    } else {
      this.logger.info(
        `reload done in ${durationMs} ms: ${replaced.map((r) => `${r.oldPid ?? '(none)'} -> ${r.newPid}`).join(', ') || 'every worker was already fresh'}`,
      );
    }
    return error === undefined ? { ok: true, replaced, durationMs } : { ok: false, replaced, error, durationMs };
  }

  // ---- stats ----

  workers(): Array<{ slot: number; pid: number; generation: number; state: WorkerState }> {
    return [...this.live]
      .map((w) => ({ slot: w.slot, pid: w.pid, generation: w.generation, state: w.state }))
      .sort((a, b) => a.slot - b.slot || a.generation - b.generation);
  }

  get connections(): number {
    return this.lastConnections;
  }

  // ---- what the operations side sees (MasterView) ----

  phase(): MasterPhase {
    return this.phaseNow;
  }

  readiness(): { ready: boolean; reason: string } {
    switch (this.phaseNow) {
      case 'starting':
        return { ready: false, reason: 'starting: not every worker is ready yet' };
      case 'delaying':
        return { ready: false, reason: 'shutting down: serving out shutdownDelay before the drain' };
      case 'stopping':
        return { ready: false, reason: 'stopping: draining the workers' };
      default:
        break;
    }
    const missing = this.slots.filter((s) => s.worker === undefined || s.worker.state !== 'ready');
    if (missing.length > 0) {
      const why = missing.map((s) => `slot ${s.index} ${s.abandoned ? 'abandoned after a crash loop' : 'restarting'}`);
      return { ready: false, reason: `not every worker is ready: ${why.join(', ')}` };
    }
    const n = this.slots.length;
    return { ready: true, reason: `${n} worker${n === 1 ? '' : 's'} serving` };
  }

  /**
   * Asks every worker for its report, then lists the workers alive *now* with their latest one
   * (`lastInfo`: the answer, or an older report when it did not answer in time), built in one
   * synchronous step: with `onWorkerGone`'s reports of the workers gone, a caller that reads both
   * without awaiting in between counts every worker exactly once.
   */
  async inspect(timeoutMs = 2000): Promise<WorkerStatus[]> {
    // A starting worker has no handler for the question yet; a draining one still answers.
    const asked = [...this.live].filter((w) => w.state === 'ready' || w.state === 'draining');
    await Promise.all(asked.map((w) => this.ask(w, timeoutMs)));
    return [...this.live]
      .sort((a, b) => a.slot - b.slot || a.generation - b.generation)
      .map((w) => ({
        slot: w.slot,
        pid: w.pid,
        generation: w.generation,
        state: w.state,
        startedAtMs: w.startedAtMs,
        restarts: (this.slots[w.slot] as Slot).restarts,
        info: w.lastInfo,
      }));
  }

  counters(): MasterCounters {
    return {
      slots: this.slots.length,
      reloadsOk: this.reloadsOk,
      reloadsFailed: this.reloadsFailed,
      restarts: this.slots.map((s) => s.restarts),
      abandoned: this.slots.filter((s) => s.abandoned).map((s) => s.index),
    };
  }

  onWorkerGone(fn: (slot: number, last: WorkerInfo, counted: WorkerInfo | undefined) => void): void {
    this.goneListeners.push(fn);
  }

  /** Tells the listeners what a gone worker's last report adds to what was told of it already. */
  private workerGone(w: WorkerProc): void {
    if (w.lastInfo === undefined || w.lastInfo === w.foldedInfo) return;
    const counted = w.foldedInfo;
    w.foldedInfo = w.lastInfo;
    for (const fn of this.goneListeners) fn(w.slot, w.lastInfo, counted);
  }

  async stopFromControl(timeoutMs: number, reason: string): Promise<MasterStopped> {
    void this.stopFor({ ok: true, reason }, timeoutMs, this.cluster.handleSignals);
    await this.workersDown;
    return this.stopReason ?? { ok: true, reason };
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
      sendTo(w, { t: 'info', id });
    });
  }

  async collectStats(timeoutMs = 2000): Promise<ClusterStats> {
    const ready = [...this.live].filter((w) => w.state === 'ready');
    const answers = await Promise.all(ready.map((w) => this.ask(w, timeoutMs)));
    const workers: WorkerSnapshot[] = [];
    answers.forEach((info, i) => {
      if (info !== undefined) workers.push({ ...info, state: (ready[i] as WorkerProc).state });
    });
    const { connections, ...stats } = summarize(workers);
    this.lastStats = stats.total;
    this.lastConnections = connections;
    return stats;
  }

  // ---- stop ----

  close(options: { timeout?: number } = {}): Promise<void> {
    return this.stopFor({ ok: true, reason: 'close()' }, options.timeout ?? this.cluster.drainTimeout, false);
  }

  /**
   * Stops (once; a later call joins the first stop) and, with `exit`, exits the process when done:
   * status 0, or 1 when the first stop's reason is not ok.
   */
  private stopFor(why: MasterStopped, timeout: number, exit: boolean): Promise<void> {
    if (this.stopping === undefined) {
      this.stopReason = why;
      this.stopping = this.shutdown(timeout).then(() => this.resolveStopped(why));
    }
    clearTimeout(this.shutdownDelayTimer);
    this.shutdownDelayTimer = undefined;
    if (exit) {
      this.stopping.then(
        () => process.exit(this.stopReason?.ok === false ? 1 : 0),
        (err: unknown) => {
          this.logger.error('stop failed', err);
          process.exit(1);
        },
      );
    }
    return this.stopping;
  }

  /** Our parent process died (parent.ts): stop as on SIGTERM. */
  private onParentGone(): void {
    this.logger.warn(
      `master ${process.pid}: its parent process ${PARENT_AT_LOAD} is gone: stopping gracefully (daemon: true keeps a master running without its parent)`,
    );
    this.stopFor(
      { ok: true, reason: `parent process ${PARENT_AT_LOAD} is gone` },
      this.cluster.drainTimeout,
      this.cluster.handleSignals,
    );
  }

  private async shutdown(timeout: number): Promise<void> {
    this.phaseNow = 'stopping';
    this.parentWatch?.close();
    this.parentWatch = undefined;
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
    await this.relay.close();
    for (const fd of this.sockets.splice(0)) sysClose(fd);
    // The socket file goes with the socket — unless a successor serves on it now (upgrade).
    const unix = this.unixSocket;
    if (unix?.file !== undefined && !this.handedOver) removeUnixSocketFile(unix.path, unix.file);
    this.removeSignals();
    if (workers.length > 0) this.logger.info(`master ${process.pid}: stopped, every worker reaped`);
    this.resolveWorkersDown();
    try {
      await this.ops?.close();
    } catch (err) {
      this.logger.error('closing the control socket and admin listener failed', err);
    }
    masterStarted = false;
  }

  /** Second signal during a stop: no more waiting. */
  private killAll(): void {
    for (const w of this.live) w.child.kill('SIGKILL');
  }

  private installSignals(): void {
    const stopThenExit =
      (timeout: number, delay = 0) =>
      () => {
        if (this.stopping !== undefined) {
          this.logger.warn('second stop signal: killing the workers now');
          this.killAll();
          return;
        }
        if (this.phaseNow === 'delaying') {
          this.logger.warn('second stop signal during shutdownDelay: draining now');
          this.stopFor({ ok: true, reason: 'a stop signal' }, timeout, true);
          return;
        }
        if (delay > 0) {
          // Kubernetes removes a terminating pod from its endpoints only after a while: connections
          // keep coming for seconds. Fail /readyz now, go on serving, and drain after the delay.
          this.phaseNow = 'delaying';
          this.logger.info(
            `master ${process.pid}: SIGTERM: /readyz fails from now on; serving ${delay} ms more before draining (shutdownDelay)`,
          );
          this.shutdownDelayTimer = setTimeout(() => {
            this.shutdownDelayTimer = undefined;
            this.stopFor({ ok: true, reason: 'a stop signal' }, timeout, true);
          }, delay);
          return;
        }
        this.stopFor({ ok: true, reason: 'a stop signal' }, timeout, true);
      };
    const reload = () => {
      this.reload().catch((err: unknown) => this.logger.error('reload failed', err));
    };
    const handlers: Array<[NodeJS.Signals, () => void]> = [
      ['SIGTERM', stopThenExit(this.cluster.drainTimeout, this.cluster.operations.shutdownDelay)],
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
    // The successor opens the control socket and admin listener at the same places: free them.
    await this.ops?.suspend();
    let pid: number;
    try {
      pid = await spawnSuccessor({
        fds: this.sockets,
        script: this.script,
        args: this.args,
        timeoutMs: this.cluster.startTimeout * 2,
        logger: this.logger,
      });
    } catch (err) {
      this.ops?.resume();
      throw err;
    }
    this.handedOver = true;
    this.logger.info(`upgrade: master ${pid} serves; draining this master's workers`);
    await this.close();
    return pid;
  }
}
