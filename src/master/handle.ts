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

/** "killed by SIGKILL" or "exited with code 3". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
}
