/**
 * The thread pool of a worker process: one piscina pool per task module and set of pool options,
 * shared by every connection, created at the first task and destroyed when the last server of the
 * process has closed (after its connections drained).
 *
 * Admission is ours, not piscina's. The pool hands piscina at most `maxThreads` tasks — one per
 * thread, so none waits inside piscina — and keeps the rest in its own FIFO, bounded by
 * `maxQueue`. Three reasons:
 * - piscina does not enforce `maxQueue` for tasks that carry an AbortSignal (they wait in a
 *   separate queue that the limit does not count: 10 tasks on a pool of 1 thread with maxQueue 2
 *   all queue), and every task here is tied to its connection;
 * - aborting a task that piscina holds terminates the thread running it, if it runs; dropping a
 *   task from our queue costs nothing, and we know which tasks are queued and which are running;
 * - exact counts: queued, running, refused, aborted, dropped.
 */
import type { Piscina as PiscinaPool } from 'piscina';
import { Piscina } from 'piscina';
import { addWorkerReport, onLastServingClosed } from '../worker/serving.js';
import type { ResolvedPoolOptions } from './options.js';
import type { Prepared } from './transfer.js';

/**
 * How a task ended, for its owner: `DONE` (it returned a value), `FAILED` (it threw, or its thread
 * died), `ABORTED` (dropped before it ran, stopped while running, or the pool was destroyed).
 */
export type Outcome = typeof DONE | typeof FAILED | typeof ABORTED;
export const DONE = 0;
export const FAILED = 1;
export const ABORTED = 2;

/** Who submitted a task and hears how it ended. */
export interface TaskOwner {
  taskEnded(task: OffloadTask, outcome: Outcome, value: unknown): void;
}

const QUEUED = 1;
const RUNNING = 2;
const ENDED = 3;

/** One unit of work: what goes to the thread, and its place in the pool's queue. */
export class OffloadTask implements Prepared {
  payload: unknown = undefined;
  transfer: ArrayBuffer[] | undefined = undefined;
  /** @internal */ state = 0;
  /** @internal */ prev: OffloadTask | null = null;
  /** @internal */ next: OffloadTask | null = null;

  constructor(
    readonly owner: TaskOwner,
    /** The owner's own reference (the message's place, a promise's settlers …). */
    readonly tag: unknown,
    /** What the task is for (the message): errors about it carry it. */
    readonly input: unknown,
    /** The export to call, or undefined for the default. */
    readonly name: string | undefined,
    /** Given to piscina while the task runs, so that aborting it stops the thread (abortRunning). */
    readonly signal: AbortSignal | undefined,
  ) {}

  get isQueued(): boolean {
    return this.state === QUEUED;
  }
}

/** Counters of one pool (one worker process). */
export interface OffloadPoolStats {
  /** The task module. */
  readonly filename: string;
  readonly maxThreads: number;
  readonly maxQueue: number;
  /** Threads alive now. */
  threads: number;
  /** Tasks running on a thread now. */
  running: number;
  /** Tasks waiting for a thread now. */
  queued: number;
  /** The most tasks that ever waited at once (never above maxQueue). */
  peakQueued: number;
  /** Tasks accepted (run at once or queued). */
  submitted: number;
  /** Tasks that returned a value. */
  completed: number;
  /** Tasks that threw, or whose thread died. */
  failed: number;
  /** Tasks refused because `maxQueue` tasks were waiting already (overload). */
  overloaded: number;
  /** Tasks that never ran (or were stopped) because their connection closed or the pool was destroyed. */
  aborted: number;
  /** Results thrown away because their connection had closed while the task ran. */
  dropped: number;
}

export class OffloadPool {
  private readonly piscina: PiscinaPool;
  private head: OffloadTask | null = null;
  private tail: OffloadTask | null = null;
  private destroyed = false;
  readonly counters: OffloadPoolStats;

  constructor(readonly options: ResolvedPoolOptions) {
    this.piscina = new Piscina({
      filename: options.filename,
      minThreads: options.minThreads,
      maxThreads: options.maxThreads,
      idleTimeout: options.idleTimeout,
      // Never used: tasks reach piscina only when a thread is free (see the header).
      maxQueue: Number.POSITIVE_INFINITY,
      // The pool's own per-task timing histogram is not read by anyone here.
      recordTiming: false,
      ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
    });
    // piscina emits 'error' for a thread that failed with no task to blame (an exception from a
    // timer its module left running): worth a warning, never worth the process (an 'error'
    // event without a listener would throw).
    this.piscina.on('error', (err: unknown) => {
      process.emitWarning(
        `offload pool ${options.filename}: a thread failed outside a task: ${err instanceof Error ? err.message : String(err)}`,
        { code: 'MULTIREACTOR_OFFLOAD_THREAD' },
      );
    });
    this.counters = {
      filename: options.filename,
      maxThreads: options.maxThreads,
      maxQueue: options.maxQueue,
      threads: 0,
      running: 0,
      queued: 0,
      peakQueued: 0,
      submitted: 0,
      completed: 0,
      failed: 0,
      overloaded: 0,
      aborted: 0,
      dropped: 0,
    };
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** A snapshot of the counters. */
  stats(): OffloadPoolStats {
    return { ...this.counters, threads: this.destroyed ? 0 : this.piscina.threads.length };
  }

  /**
   * Runs `task` now if a thread is free, else queues it. Returns false — and keeps nothing — when
   * `maxQueue` tasks wait already, or the pool is destroyed.
   */
  submit(task: OffloadTask): boolean {
    const c = this.counters;
    if (this.destroyed) return false;
    if (c.running < this.options.maxThreads) {
      c.submitted++;
      this.dispatch(task);
      return true;
    }
    if (c.queued >= this.options.maxQueue) {
      c.overloaded++;
      return false;
    }
    c.submitted++;
    task.state = QUEUED;
    task.prev = this.tail;
    if (this.tail === null) this.head = task;
    else this.tail.next = task;
    this.tail = task;
    if (++c.queued > c.peakQueued) c.peakQueued = c.queued;
    return true;
  }

  /** Drops a queued task (true), counted as aborted; a running or ended one is left alone (false). */
  cancel(task: OffloadTask): boolean {
    if (task.state !== QUEUED) return false;
    this.unlink(task);
    task.state = ENDED;
    this.counters.aborted++;
    return true;
  }

  /** Counts tasks an owner dropped before they reached the pool (its connection closed). */
  countAborted(n: number): void {
    this.counters.aborted += n;
  }

  /** Counts a result its owner threw away (its connection had closed). */
  countDropped(): void {
    this.counters.dropped++;
  }

  private unlink(task: OffloadTask): void {
    if (task.prev === null) this.head = task.next;
    else task.prev.next = task.next;
    if (task.next === null) this.tail = task.prev;
    else task.next.prev = task.prev;
    task.prev = task.next = null;
    this.counters.queued--;
  }

  private dispatch(task: OffloadTask): void {
    task.state = RUNNING;
    this.counters.running++;
    const run = this.piscina.run(task.payload, {
      transferList: task.transfer,
      name: task.name ?? null,
      signal: task.signal ?? null,
    });
    // The pool thread has the bytes now (or a copy); nothing here should keep the payload alive.
    task.payload = undefined;
    task.transfer = undefined;
    run.then(
      (result) => this.ended(task, DONE, result),
      // Aborted only when we stopped it: a task may throw an AbortError of its own (a fetch it timed out).
      (err) =>
        this.ended(task, this.destroyed || (task.signal?.aborted === true && isAbort(err)) ? ABORTED : FAILED, err),
    );
  }

  private ended(task: OffloadTask, outcome: Outcome, value: unknown): void {
    const c = this.counters;
    c.running--;
    task.state = ENDED;
    if (outcome === DONE) c.completed++;
    else if (outcome === FAILED) c.failed++;
    else c.aborted++;
    // Keep the threads busy before running the owner's code.
    this.pump();
    task.owner.taskEnded(task, outcome, value);
  }

  private pump(): void {
    while (this.head !== null && this.counters.running < this.options.maxThreads && !this.destroyed) {
      const next = this.head;
      this.unlink(next);
      this.dispatch(next);
    }
  }

  /**
   * Terminates the threads. Queued tasks end as aborted now; running ones end as aborted when
   * piscina reports their thread gone.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const queued: OffloadTask[] = [];
    for (let t = this.head; t !== null; t = t.next) queued.push(t);
    for (const t of queued) {
      this.unlink(t);
      t.state = ENDED;
      this.counters.aborted++;
    }
    for (const t of queued) t.owner.taskEnded(t, ABORTED, undefined);
    await this.piscina.destroy();
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

// ---- the registry: one pool per key per process ----

const pools = new Map<string, OffloadPool>();

/** The pool of this process for `options` (created now if there is none). */
export function offloadPool(options: ResolvedPoolOptions): OffloadPool {
  let pool = pools.get(options.key);
  if (pool === undefined) {
    pool = new OffloadPool(options);
    pools.set(options.key, pool);
  }
  return pool;
}

/**
 * Destroys every offload pool of this process (their threads end; queued tasks are aborted). Runs
 * by itself when the last server of the process has closed; call it yourself when you used
 * offloading without a server (EmbeddedChannel tests) or want the threads gone sooner.
 */
export async function destroyOffloadPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.destroy()));
}

/** Counters of every offload pool of this process. */
export function offloadStats(): OffloadPoolStats[] {
  return [...pools.values()].map((p) => p.stats());
}

onLastServingClosed(destroyOffloadPools);
// The master's collectStats() shows each worker's pools (`workers[i].reports.offload`).
addWorkerReport('offload', offloadStats);
