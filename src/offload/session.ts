/**
 * One connection's use of the pool: at most `maxInFlight` of its tasks in the pool, reading paused
 * while it has that many in flight, and everything it still has queued dropped when it closes.
 *
 * In flight, for backpressure, means "accepted and not yet delivered": the owner (the ordered
 * stage, or the HTTP helper) calls `hold()` when a unit of work enters its queue and `release()`
 * when it leaves it. At `maxInFlight` held the session pauses reading (`channel.pauseReading`) — the peer's
 * bytes then wait in the kernel and TCP flow control slows the peer down, exactly as when our
 * writes back up — and it resumes at half that (hysteresis: one `epoll_ctl` per pause, not per
 * task). A single read may still carry more messages than that (the decoder emits all it has);
 * those wait in the session, unsubmitted, so the pool never holds more than `maxInFlight` tasks of
 * one connection and one connection cannot take the whole queue from the others.
 */
import { setMaxListeners } from 'node:events';
import type { Channel } from '../pipeline/channel.js';
import { OffloadAbortedError, OffloadOverloadedError, OffloadTaskError } from './errors.js';
import type { ResolvedOffloadOptions } from './options.js';
import {
  ABORTED,
  DONE,
  FAILED,
  type OffloadPool,
  OffloadTask,
  type Outcome,
  offloadPool,
  type TaskOwner,
} from './pool.js';
import { asBuffer, prepare } from './transfer.js';

/**
 * Who offloads through a session, and hears how each task ended — exactly once per task accepted
 * by `run()`: when it ends, or with an `OffloadAbortedError` when the session closes first (from
 * `close()`). `value` is the result, or the error (`OffloadTaskError`, `OffloadOverloadedError`
 * when the pool refused a task that had waited in the session, `OffloadAbortedError`).
 */
export interface SessionOwner {
  taskSettled(tag: unknown, ok: boolean, value: unknown): void;
}

/** What one connection sent to the pool (see `OffloadHandler.stats`). */
export interface OffloadSessionStats {
  /** Tasks offloaded. */
  tasks: number;
  /** Tasks dropped before they ran (or stopped, with abortRunning) because the connection closed. */
  aborted: number;
  /** Results thrown away because the connection closed while their task ran. */
  dropped: number;
}

export class OffloadSession implements TaskOwner {
  private pool: OffloadPool | undefined;
  /** Its tasks in the pool: queued there or running. */
  private readonly inPool = new Set<OffloadTask>();
  /** Accepted beyond `maxInFlight` in the pool: submitted as earlier ones end. */
  private readonly waiting: OffloadTask[] = [];
  private held = 0;
  /** Reading paused because `maxInFlight` units are held. */
  private pressure = false;
  /** Reading paused by the owner (events deferred until its queue drains). */
  private blocked = false;
  /** We hold reading paused (`channel.pauseReading(this)`). */
  private readPaused = false;
  private closed = false;
  private controller: AbortController | undefined;
  readonly stats: OffloadSessionStats = { tasks: 0, aborted: 0, dropped: 0 };

  constructor(
    private readonly channel: Channel,
    private readonly options: ResolvedOffloadOptions,
    private readonly owner: SessionOwner,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Offloads `payload` for `input` (the message; errors about it carry it); `tag` comes back with
   * the outcome. Returns the error when the task is refused at once — the pool queue is full, or
   * the session closed — and then nothing comes back for it; undefined when accepted.
   */
  run(
    payload: unknown,
    input: unknown,
    tag: unknown,
    name: string | undefined = this.options.name,
  ): OffloadOverloadedError | OffloadAbortedError | undefined {
    if (this.closed) return OffloadAbortedError.create();
    let signal: AbortSignal | undefined;
    if (this.options.abortRunning) {
      if (this.controller === undefined) {
        this.controller = new AbortController();
        // One listener per running task of this connection (piscina adds and removes them).
        setMaxListeners(this.options.maxInFlight + 1, this.controller.signal);
      }
      signal = this.controller.signal;
    }
    const task = new OffloadTask(this, tag, input, name, signal);
    prepare(task, payload, this.options.transfer);
    this.stats.tasks++;
    if (this.inPool.size >= this.options.maxInFlight) {
      this.waiting.push(task);
      return undefined;
    }
    return this.submit(task) ? undefined : this.overloaded(input);
  }

  private overloaded(input: unknown): OffloadOverloadedError {
    return OffloadOverloadedError.create(input, this.options.pool.maxQueue);
  }

  private submit(task: OffloadTask): boolean {
    let pool = this.pool;
    // A pool destroyed under a live connection (destroyOffloadPools() by hand) is replaced.
    if (pool === undefined || pool.isDestroyed) this.pool = pool = offloadPool(this.options.pool);
    if (!pool.submit(task)) return false;
    this.inPool.add(task);
    return true;
  }

  /** TaskOwner: a task of ours ended in the pool. */
  taskEnded(task: OffloadTask, outcome: Outcome, value: unknown): void {
    this.inPool.delete(task);
    if (this.closed) {
      if (outcome !== ABORTED) {
        this.stats.dropped++;
        this.pool?.countDropped();
      }
      return;
    }
    // Refill the pool from the waiting ones first: their threads should not idle while the owner
    // delivers.
    while (this.waiting.length > 0 && this.inPool.size < this.options.maxInFlight && !this.closed) {
      const next = this.waiting.shift() as OffloadTask;
      if (!this.submit(next)) this.owner.taskSettled(next.tag, false, this.overloaded(next.input));
    }
    if (this.closed) return;
    if (outcome === DONE) this.owner.taskSettled(task.tag, true, asBuffer(value));
    else if (outcome === FAILED) this.owner.taskSettled(task.tag, false, new OffloadTaskError(task.input, value));
    // The session is open, so this is the pool going away under it (destroyOffloadPools()).
    else this.owner.taskSettled(task.tag, false, new OffloadAbortedError('the offload pool was destroyed'));
  }

  /** One more unit in the owner's queue (a task, or a message waiting behind one). */
  hold(): void {
    if (++this.held >= this.options.maxInFlight && !this.pressure) {
      this.pressure = true;
      this.updateReading();
    }
  }

  /** A unit left the owner's queue (delivered). */
  release(): void {
    if (--this.held <= this.options.maxInFlight >> 1 && this.pressure) {
      this.pressure = false;
      this.updateReading();
    }
  }

  /** Pauses (true) or resumes (false) reading for the owner's own reason. */
  block(on: boolean): void {
    if (this.blocked === on) return;
    this.blocked = on;
    this.updateReading();
  }

  private updateReading(): void {
    const pause = this.pressure || this.blocked;
    if (pause === this.readPaused || this.closed) return;
    this.readPaused = pause;
    // A hold of our own, not autoRead: the HTTP stage (responses piling up) or the application
    // may pause the same connection for their reasons, and each resumes only its own.
    if (pause) this.channel.pauseReading(this);
    else this.channel.resumeReading(this);
  }

  /**
   * The connection closed: drop the tasks that wait (here or in the pool's queue), stop the running
   * ones if `abortRunning`, and deliver nothing more.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const pool = this.pool;
    const unsettled = [...this.waiting, ...this.inPool];
    // Waiting here: the pool never saw them, so they are counted for it.
    const unsent = this.waiting.length;
    this.waiting.length = 0;
    if (unsent > 0) pool?.countAborted(unsent);
    let aborted = unsent;
    for (const t of this.inPool) {
      if (pool?.cancel(t) === true) {
        this.inPool.delete(t);
        aborted++;
      }
    }
    // Running tasks: piscina terminates their threads and reports them aborted (the pool counts
    // them); without abortRunning they finish and their results are dropped (taskEnded).
    if (this.controller !== undefined && this.inPool.size > 0) {
      aborted += this.inPool.size;
      this.controller.abort();
    }
    this.stats.aborted += aborted;
    for (const t of unsettled) this.owner.taskSettled(t.tag, false, OffloadAbortedError.create());
  }
}
