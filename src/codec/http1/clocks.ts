/**
 * The clocks of one HTTP/1.1 connection, owned by the server stage: keep-alive idle, the head and
 * request timeouts, the handler timeout, and the drain grace.
 *
 * Which runs depends on what the connection is doing, which only the server stage knows whole:
 * the keep-alive timeout runs between requests — nothing owed and no byte of a next request
 * received —, the head and request timeouts from a request's first byte (the decoder says when
 * that came, and when the head was complete: `HttpRequestProgress`), the handler timeout from a
 * complete request to the start of its response. The decoder keeps no clock, as undici keeps
 * `headersTimeout` out of its parser.
 *
 * All of them are one timer on the loop's timing wheel, never re-armed per request: events only
 * stamp times, from the wheel's coarse clock (a field read, at most a tick old while the timer is
 * pending), and the timer, when it fires, acts on the deadline that passed or re-arms itself for
 * the nearest one (the idle handler's technique). It is moved earlier only when a new deadline
 * comes before the one it is armed for: with the defaults (keep-alive 5 s, the others longer),
 * never in steady traffic.
 */
import type { Timeout, Timers } from '../../common/timing-wheel.js';
import type { HttpResponse } from './response.js';

/** What the clocks need to know of the server stage, and what they make it do. */
export interface ClockOwner {
  /** Nothing is owed nor being decided (an upgrade), and the connection is not closing: idle, if nothing arrives. */
  readonly quiet: boolean;
  /** A response that closes the connection is queued: nothing more is answered, nothing more is timed. */
  readonly ending: boolean;
  /** The oldest response whose request is whole (`readyAt` set) and whose answer has not started. */
  unstarted(): HttpResponse | undefined;
  /** The request arriving was too slow: its head (`head`) or all of it. */
  requestTimedOut(head: boolean): void;
  /** `res`'s handler did not start answering in time. */
  handlerTimedOut(res: HttpResponse): void;
  /** Idle past the keep-alive timeout, or past the drain grace. */
  closeIdle(reason: 'idle-timeout' | 'shutdown'): void;
}

export interface ClockTimeouts {
  readonly keepAliveTimeout: number;
  readonly headerTimeout: number;
  readonly requestTimeout: number;
  readonly handlerTimeout: number;
}

// What the connection is receiving.
/** Between requests: no byte of a next request yet. */
const RX_NONE = 0;
/** A request's head is arriving: the head and request timeouts run. */
const RX_HEAD = 1;
/** Its head is complete, its body arriving: the request timeout runs on. */
const RX_BODY = 2;

const NEVER = Number.POSITIVE_INFINITY;

export class HttpClocks {
  private timers: Timers | undefined;
  private timer: Timeout | undefined;
  /** When `timer` fires; NEVER while it is not pending. */
  private armedAt = NEVER;
  /** What is arriving (RX_*), and since when (the read of its first byte). */
  private rx = RX_NONE;
  private rxStart = 0;
  /** When the connection last became idle: its last answer went out, or its last request came in. */
  private lastActive = 0;
  /** Draining: when an idle connection closes. */
  private drainAt = NEVER;

  constructor(
    private readonly owner: ClockOwner,
    readonly t: ClockTimeouts,
  ) {}

  /** The connection is open: the keep-alive timeout runs from now. */
  start(timers: Timers): void {
    this.timers = timers;
    this.idleFrom(timers.now());
  }

  /** The connection closed, or left HTTP: no clock any more. */
  stop(): void {
    this.timer?.cancel();
    this.armedAt = NEVER;
    this.timers = undefined;
  }

  /** A request is being received (its head or its body). */
  get receiving(): boolean {
    return this.rx !== RX_NONE;
  }

  /**
   * The time for a stamp: the wheel's coarse clock (free, at most a tick old) while our timer is
   * pending — the wheel ticks then —, else a real clock read (the coarse one may be old).
   */
  private stamp(): number {
    const timers = this.timers as Timers;
    return this.armedAt === NEVER ? timers.now() : timers.coarseNow();
  }

  /** The connection may be idle from now: if nothing is owed or arriving, the keep-alive timeout runs. */
  idleNow(): void {
    if (this.t.keepAliveTimeout > 0 && this.timers !== undefined) this.idleFrom(this.stamp());
  }

  private idleFrom(t: number): void {
    this.lastActive = t;
    if (this.t.keepAliveTimeout > 0) this.armBy(t + this.t.keepAliveTimeout);
  }

  /** The decoder says a request is arriving: its first bytes came (`head`), or its body is awaited. */
  arriving(head: boolean): void {
    if (this.timers === undefined || this.owner.ending) return; // nothing more is answered
    if (head || this.rx === RX_NONE) this.rxStart = this.stamp();
    this.rx = head ? RX_HEAD : RX_BODY;
    const start = this.rxStart;
    if (head && this.t.headerTimeout > 0) this.armBy(start + this.t.headerTimeout);
    if (this.t.requestTimeout > 0) this.armBy(start + this.t.requestTimeout);
  }

  /** The request being received is whole (or was answered with an error): nothing is arriving. */
  arrived(): void {
    this.rx = RX_NONE;
  }

  /** `res`'s request is whole: its handler has `handlerTimeout` to start answering. */
  handlerStarts(res: HttpResponse): void {
    if (this.t.handlerTimeout === 0 || this.timers === undefined) return;
    const t = this.stamp();
    res.readyAt = t;
    this.armBy(t + this.t.handlerTimeout);
  }

  /** The server drains: an idle connection closes after `grace` ms. */
  drainIn(grace: number): void {
    if (this.timers === undefined) return;
    this.drainAt = this.stamp() + grace;
    this.armBy(this.drainAt);
  }

  /** Makes sure the timer fires no later than `deadline` (a compare, unless it must move earlier). */
  private armBy(deadline: number): void {
    if (deadline >= this.armedAt) return;
    const timers = this.timers as Timers;
    const delay = deadline - (this.armedAt === NEVER ? timers.now() : timers.coarseNow());
    this.armedAt = deadline;
    if (this.timer === undefined) this.timer = timers.schedule(delay, this.onTimer);
    else this.timer.reschedule(delay);
  }

  /**
   * The timer fired: act on the deadline that passed — the request arriving too slowly (408), a
   * handler that did not start its answer (503), the keep-alive or drain grace of an idle
   * connection (close) — or re-arm for the nearest one.
   */
  private readonly onTimer = (): void => {
    this.armedAt = NEVER;
    const timers = this.timers;
    if (timers === undefined) return;
    const owner = this.owner;
    const t = this.t;
    const now = timers.now();
    let next = NEVER;
    if (this.rx !== RX_NONE && !owner.ending) {
      if (this.rx === RX_HEAD && t.headerTimeout > 0) {
        const at = this.rxStart + t.headerTimeout;
        if (at <= now) {
          this.rx = RX_NONE;
          owner.requestTimedOut(true);
          return;
        }
        next = at;
      }
      if (t.requestTimeout > 0) {
        const at = this.rxStart + t.requestTimeout;
        if (at <= now) {
          this.rx = RX_NONE;
          owner.requestTimedOut(false);
          return;
        }
        if (at < next) next = at;
      }
    }
    if (t.handlerTimeout > 0) {
      const res = owner.unstarted();
      if (res !== undefined) {
        const at = res.readyAt + t.handlerTimeout;
        if (at <= now) {
          // The connection closes after the 503: what comes later needs no clock.
          owner.handlerTimedOut(res);
          return;
        }
        if (at < next) next = at;
      }
    }
    if (this.rx === RX_NONE && owner.quiet) {
      if (t.keepAliveTimeout > 0) {
        const at = this.lastActive + t.keepAliveTimeout;
        if (at <= now) {
          owner.closeIdle('idle-timeout');
          return;
        }
        if (at < next) next = at;
      }
      if (this.drainAt <= now) {
        owner.closeIdle('shutdown');
        return;
      }
      if (this.drainAt < next) next = this.drainAt;
    }
    if (next !== NEVER) this.armBy(next);
  };
}
