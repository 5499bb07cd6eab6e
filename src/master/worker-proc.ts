/**
 * One worker process as the master sees it: forked on its slot's listening sockets, with promises
 * for "ready" and "exited" and the exit described for logs.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../common/logger.js';
import { describeExit, type WorkerState } from './handle.js';
import {
  type ToMaster,
  type ToWorker,
  WORKER_ENV,
  WORKER_FIRST_FD,
  type WorkerInfo,
  type WorkerSpec,
} from './protocol.js';

export interface WorkerProc {
  /** The slot it serves. */
  readonly slot: number;
  readonly generation: number;
  readonly child: ChildProcess;
  readonly pid: number;
  /** performance.now() just before the fork: the worker runs code loaded after this moment. */
  readonly forkedAt: number;
  /** Date.now() at the fork, for uptimes and start times. */
  readonly startedAtMs: number;
  /** Its latest report (an `info` answer, or its final one). */
  lastInfo?: WorkerInfo;
  /** It sent its final report (it drained and is exiting). */
  final?: boolean;
  /** The report already told to the master's `onWorkerGone` listeners. */
  foldedInfo?: WorkerInfo;
  state: WorkerState;
  /** Resolves when the worker reports ready; rejects if it exits or times out first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited (been reaped). */
  readonly exited: Promise<void>;
  /** "exited with code 3", "killed by SIGKILL", once it exited. */
  exitStatus?: string;
  killTimer?: NodeJS.Timeout;
}

export interface ForkOptions {
  readonly script: string;
  readonly args: readonly string[];
  readonly slot: number;
  readonly generation: number;
  /** The slot's listening sockets: they become the worker's descriptors 4, 5, … */
  readonly fds: readonly number[];
  /** Every worker shares one socket (EPOLLEXCLUSIVE). */
  readonly exclusive: boolean;
  /** The worker's end of the pub/sub relay (relay.ts): its descriptor after the listening sockets. */
  readonly relayFd?: number;
  readonly startTimeout: number;
  /** Variables the worker must not inherit from the master. */
  readonly dropEnv: readonly string[];
  readonly logger: Logger;
  /** An `info` answer arrived. */
  readonly onInfo: (id: number, info: WorkerInfo) => void;
  /** The process exited; `was` is the state it was in. */
  readonly onExit: (w: WorkerProc, was: WorkerState) => void;
  /** Exited and its IPC channel closed: nothing more will come from it (its `lastInfo` is final). */
  readonly onGone?: (w: WorkerProc) => void;
}

/** Forks a worker; it is killed if it is not ready within `startTimeout`. */
export function forkWorker(o: ForkOptions): WorkerProc {
  const spec: WorkerSpec = {
    slot: o.slot,
    generation: o.generation,
    fds: o.fds.map((_, i) => WORKER_FIRST_FD + i),
    exclusive: o.exclusive,
    masterPid: process.pid,
    ...(o.relayFd !== undefined ? { relay: WORKER_FIRST_FD + o.fds.length } : {}),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, [WORKER_ENV]: JSON.stringify(spec) };
  for (const name of o.dropEnv) delete env[name];
  // Before the fork: the child reads its code after this moment, never before.
  const forkedAt = performance.now();
  const startedAtMs = Date.now();
  const child = fork(o.script, [...o.args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...o.fds, ...(o.relayFd !== undefined ? [o.relayFd] : [])],
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
  const w: WorkerProc = {
    slot: o.slot,
    generation: o.generation,
    child,
    pid: child.pid ?? -1,
    forkedAt,
    startedAtMs,
    state: 'starting',
    ready,
    exited,
  };
  const startTimer = setTimeout(() => {
    if (w.state !== 'starting') return;
    rejectReady(new Error(`worker ${w.pid} (slot ${o.slot}) not ready within ${o.startTimeout} ms`));
    child.kill('SIGKILL');
  }, o.startTimeout);
  // One case per message type of protocol.ts (ToMaster): a new kind of message is one more case.
  child.on('message', (raw: unknown) => {
    const msg = raw as ToMaster;
    switch (msg?.t) {
      case 'ready':
        if (w.state !== 'starting') break;
        clearTimeout(startTimer);
        w.state = 'ready';
        resolveReady();
        break;
      case 'info':
        w.lastInfo = msg.info;
        o.onInfo(msg.id, msg.info);
        break;
      case 'final':
        w.lastInfo = msg.info;
        w.final = true;
        break;
      default:
        break;
    }
  });
  child.on('error', (err) => {
    o.logger.error(`worker ${w.pid} (slot ${o.slot}): ${err.message}`);
  });
  child.on('exit', (code, signal) => {
    clearTimeout(startTimer);
    clearTimeout(w.killTimer);
    const was = w.state;
    w.state = 'exited';
    w.exitStatus = describeExit(code, signal);
    if (was === 'starting')
      rejectReady(new Error(`worker ${w.pid} (slot ${o.slot}) ${w.exitStatus} before it was ready`));
    resolveExited();
    o.onExit(w, was);
  });
  // After 'exit' and the IPC channel's end: every message the worker sent has been delivered.
  child.on('close', () => o.onGone?.(w));
  return w;
}

/** Sends to a worker if its channel is still open. */
export function sendTo(w: WorkerProc, msg: ToWorker): void {
  if (w.child.connected) w.child.send(msg);
}
