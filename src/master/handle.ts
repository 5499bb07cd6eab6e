/**
 * What a master hands back from `Server.listen()`: its handle's interface and the shapes of what
 * it reports (worker snapshots, cluster stats, reload results, why it stopped).
 */
import type { CloseReason } from '../common/close-reason.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { type LoopStats, newStats } from '../worker/loop.js';
import type { WorkerInfo } from './protocol.js';

export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited';

/** What one worker looked like at a `collectStats()`. */
export interface WorkerSnapshot extends WorkerInfo {
  readonly state: WorkerState;
}

/**
 * What `MasterHandle.collectStats()` gathers: each worker's report (asked over IPC, so a worker
 * that does not answer in time is missing, not waited for) and the counters summed. The summed
 * counters also become what `stats()` and `connections` return until the next call.
 */
export interface ClusterStats {
  /** Each ready worker's own report. */
  readonly workers: readonly WorkerSnapshot[];
  /** Their counters summed. */
  readonly total: LoopStats;
  /** How evenly connections were spread: accepted per worker. */
  readonly balance: { readonly minAccepted: number; readonly maxAccepted: number; readonly ratio: number };
}

/**
 * How a reload went (`MasterHandle.reload()`, SIGUSR2, `multireactor reload`). A reload that
 * fails — a new worker that did not report ready within `startTimeout` — stops there and keeps the
 * workers not yet replaced serving: `ok` false, `error` says which slot and why, `replaced` lists
 * the slots that were replaced before it.
 */
export interface ReloadResult {
  /** Every slot due was replaced. */
  readonly ok: boolean;
  /** Slots whose worker was replaced, with the old and new pids. */
  readonly replaced: ReadonlyArray<{
    readonly slot: number;
    readonly oldPid: number | undefined;
    readonly newPid: number;
  }>;
  /** Why it stopped, when it failed. */
  readonly error?: string;
  /** From the reload's start to its end, in ms. */
  readonly durationMs: number;
}

/**
 * The handle `Server.listen()` returns in the master (`workers >= 1`): the process that binds the
 * sockets, forks the workers and supervises them — restarting a crashed worker with a growing
 * delay, and giving up on a slot in a crash loop. It serves no connection itself: its numbers come
 * from the workers, over IPC (`collectStats()`). With `handleSignals` (the default) SIGUSR2 or
 * SIGHUP reload, SIGTERM and SIGINT stop within `drainTimeout`, SIGQUIT stops with no deadline
 * (docs/master.md).
 */
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
  /**
   * Resolves once the master has stopped for good, with why: `close()`, a stop signal, its parent
   * process gone, or every slot in a crash loop (`ok: false`). With `handleSignals` (the default)
   * the process then exits by itself, with status 1 when not ok.
   */
  readonly stopped: Promise<MasterStopped>;
}

/** Why a master stopped. */
export interface MasterStopped {
  /** False when it stopped because it could not go on (every slot in a crash loop). */
  readonly ok: boolean;
  readonly reason: string;
}

/** Sums the workers' counters and measures how evenly they accepted. */
export function summarize(workers: readonly WorkerSnapshot[]): ClusterStats & { readonly connections: number } {
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
  return {
    workers,
    total,
    connections,
    balance: {
      minAccepted,
      maxAccepted,
      ratio: minAccepted > 0 ? maxAccepted / minAccepted : Number.POSITIVE_INFINITY,
    },
  };
}

/** Where a master is in its life: `/readyz` and `multireactor status` say it. */
export type MasterPhase = 'starting' | 'serving' | 'delaying' | 'stopping';

/** One worker process as `multireactor status` shows it. */
export interface WorkerStatus {
  readonly slot: number;
  readonly pid: number;
  readonly generation: number;
  /** `ready` shows as "serving". */
  readonly state: WorkerState;
  /** Date.now() when it was forked. */
  readonly startedAtMs: number;
  /** Crash restarts of its slot since the master started. */
  readonly restarts: number;
  /** Its report, when it answered (a starting worker cannot yet). */
  readonly info: WorkerInfo | undefined;
}

/** The master's own counters, for metrics. */
export interface MasterCounters {
  /** Worker slots configured. */
  readonly slots: number;
  readonly reloadsOk: number;
  readonly reloadsFailed: number;
  /** Crash restarts per slot. */
  readonly restarts: readonly number[];
  /** Slots given up after a crash loop (until a reload retries them). */
  readonly abandoned: readonly number[];
}

/**
 * What a master shows the operations side (src/ops/: the control socket, the admin listener):
 * its state, its workers, its counters, and the commands it takes from there.
 */
export interface MasterView {
  readonly pid: number;
  /** Date.now() when the master started. */
  readonly startedAtMs: number;
  address(): SocketAddress;
  phase(): MasterPhase;
  /** Ready to take traffic: serving, not stopping, and every slot has a ready worker. */
  readiness(): { readonly ready: boolean; readonly reason: string };
  /** Every worker process, with the report of each that answers within `timeoutMs`. */
  inspect(timeoutMs?: number): Promise<WorkerStatus[]>;
  counters(): MasterCounters;
  reload(): Promise<ReloadResult>;
  /**
   * Stops as on SIGTERM but with `timeoutMs` as the drain deadline (no shutdown delay); resolves
   * once every worker is reaped (the master then closes the operations side and, with
   * `handleSignals`, exits).
   */
  stopFromControl(timeoutMs: number, reason: string): Promise<MasterStopped>;
  /**
   * Calls `fn` when a worker process is gone, with its last report and what of it was reported by
   * an earlier call (`counted`: a final report that came after the exit adds only its difference).
   */
  onWorkerGone(fn: (slot: number, last: WorkerInfo, counted: WorkerInfo | undefined) => void): void;
}

/** The operations side of a master (src/ops/ops.ts), as the master drives it. */
export interface MasterOps {
  /** Closes the control and admin listeners (before a master upgrade: the successor opens its own). */
  suspend(): Promise<void>;
  /** Opens them again (the upgrade failed). */
  resume(): void;
  /** Closes everything; removes the pid file and the socket files it created. */
  close(): Promise<void>;
}

/** Opens the operations side for a master (given by server.ts, which may import src/ops/). */
export type MasterOpsFactory = (view: MasterView) => Promise<MasterOps | undefined>;

/** "killed by SIGKILL" or "exited with code 3". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
}
