/**
 * What master and workers say to each other over the IPC channel of `child_process.fork`, and
 * how a worker learns its part from its environment.
 */
import type { HttpCounters } from '../common/http-metrics.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import type { LoopStats } from '../worker/loop.js';

/** Environment variable that makes a process a worker: JSON of {@link WorkerSpec}. */
export const WORKER_ENV = 'MULTIREACTOR_WORKER';

/** What a worker is told at fork. */
export interface WorkerSpec {
  /** The slot it serves (0 … workers-1); a replacement keeps the slot. */
  readonly slot: number;
  /** Incremented for every process forked on the slot. */
  readonly generation: number;
  /** Its listening sockets, inherited through stdio: 4, 5, … (after stdin, stdout, stderr and ipc). */
  readonly fds: readonly number[];
  /** The socket is shared by every worker: register it with EPOLLEXCLUSIVE. */
  readonly exclusive: boolean;
  readonly masterPid: number;
  /** Its end of the master's pub/sub relay (relay.ts), inherited after the listening sockets. */
  readonly relay?: number;
}

/** Where the first inherited listening socket lands in a worker (stdio index = fd number). */
export const WORKER_FIRST_FD = 4;

/** Master → worker. */
export type ToWorker =
  | { readonly t: 'stop-accepting' }
  | { readonly t: 'drain'; readonly timeout: number | null }
  | { readonly t: 'info'; readonly id: number };

/** Worker → master. */
export type ToMaster =
  | { readonly t: 'ready'; readonly pid: number; readonly address: SocketAddress }
  | { readonly t: 'info'; readonly id: number; readonly info: WorkerInfo }
  | { readonly t: 'draining'; readonly connections: number }
  /** Its last counters, sent once its drain is over, just before it exits (metrics stay monotonic across reloads). */
  | { readonly t: 'final'; readonly info: WorkerInfo };

/** What a worker reports about itself. */
export interface WorkerInfo {
  readonly pid: number;
  readonly slot: number;
  readonly generation: number;
  readonly connections: number;
  readonly stats: LoopStats;
  /** Resident set size of the process, bytes. */
  readonly rss: number;
  /** V8 heap in use, bytes. */
  readonly heapUsed: number;
  /** Responses by status class and the latency histogram, for HTTP (all zero for other protocols). */
  readonly http: HttpCounters;
  /**
   * What other parts of the worker report, by name: `offload` — the counters of its thread pools
   * (`OffloadPoolStats[]`, one per task module) — once the application offloads anything.
   */
  readonly reports: Readonly<Record<string, unknown>>;
}

/** Parses WORKER_ENV; undefined when this process is not a worker. */
export function workerSpecFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerSpec | undefined {
  const raw = env[WORKER_ENV];
  if (raw === undefined || raw === '') return undefined;
  const spec = JSON.parse(raw) as WorkerSpec;
  if (
    !Number.isInteger(spec.slot) ||
    !Array.isArray(spec.fds) ||
    !spec.fds.every(Number.isInteger) ||
    (spec.relay !== undefined && !Number.isInteger(spec.relay))
  ) {
    throw new Error(`malformed ${WORKER_ENV}: ${raw}`);
  }
  return spec;
}

/** Sends to the master if the channel is still open (a dead master is handled elsewhere). */
export function toMaster(msg: ToMaster): void {
  if (process.connected && process.send !== undefined) process.send(msg);
}
