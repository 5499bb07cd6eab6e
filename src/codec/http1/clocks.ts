/**
 * The clocks of one HTTP/1.1 connection: keep-alive idle, the head and request timeouts, the
 * handler timeout, and the drain grace — the base class of the server stage, which says what the
 * connection is doing and acts when a deadline passes.
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
 *
 * Memory: the clocks live as long as their connection, which is mostly idle, so they keep little.
 * They are their own timer (a `TimerEntry`: the wheel links them through their `wheel*` fields and
 * calls their `onTimeout`, so there is no Timeout object, closure or context per connection);
 * they are fields of the server stage (its base class), not an object of their own; and every time
 * is kept as a small integer — whole ms modulo 2^30, as the idle handler keeps its stamps: a
 * double (the clock reads fractions) would be boxed in a heap number per field. Hence a
 * timeout may be at most 2^29 - 1 ms (6.2 days): `MAX_HTTP_TIMEOUT`, checked with the options.
 */
import type { TimerEntry, Timers } from '../../common/timing-wheel.js';
import { ChannelInboundHandler } from '../../pipeline/handler.js';
import type { HttpResponse } from './response.js';

/** The timeouts, in ms (0: off), each at most `MAX_HTTP_TIMEOUT`. */
export interface ClockTimeouts {
  readonly keepAliveTimeout: number;
  readonly headerTimeout: number;
  readonly requestTimeout: number;
  readonly handlerTimeout: number;
  readonly drainGrace: number;
}

// What the connection is receiving.
/** Between requests: no byte of a next request yet. */
const RX_NONE = 0;
/** A request's head is arriving: the head and request timeouts run. */
const RX_HEAD = 1;
/** Its head is complete, its body arriving: the request timeout runs on. */
const RX_BODY = 2;

/**
 * The longest timeout the clocks keep (6.2 days): times are whole ms modulo 2^30, and two of them
 * compare right while less than 2^29 ms apart (see `diff` and the module comment).
 */
export const MAX_HTTP_TIMEOUT = 2 ** 29 - 1;
const STAMP_MASK = 0x3fffffff;
/** The longest the timer is armed for at once (3.1 days): a longer wait fires early and re-arms. */
const MAX_ARM = 2 ** 28;

/** A time as kept: whole ms modulo 2^30, a small integer. */
function stamp(ms: number): number {
  return ms & STAMP_MASK;
}

/**
 * `a - b` in ms, for stamps less than 2^29 ms apart either way: the difference modulo 2^30,
 * sign-extended from its bit 29 — negative when `a` is earlier (a coarse reading may be a tick
 * older than a stamp taken from the real clock).
 */
function diff(a: number, b: number): number {
  return ((a - b) << 2) >> 2;
}

/** `drainFrom` while the connection is not draining (stamps are never negative). */
const NOT_DRAINING = -1;

/**
 * The clocks of an HTTP/1.1 server connection, as the base class of its server stage
 * (`HttpServerHandler`), which implements the abstract members: what the connection is doing, and
 * what to do when a deadline passes. It is its own timer on the wheel (`TimerEntry`): a subclass
 * leaves the `wheel*` fields and `onTimeout` alone.
 */
export abstract class HttpClocks<C extends ClockTimeouts> extends ChannelInboundHandler implements TimerEntry {
  private timers: Timers | undefined = undefined;
  /** @internal The timer's place in the wheel (`TimerEntry`): -1 while it is not armed. */
  wheelTick = -1;
  /** @internal */ wheelPrev: TimerEntry | null = null;
  /** @internal */ wheelNext: TimerEntry | null = null;
  /** When the timer fires (a stamp), while it is armed. */
  private armedAt = 0;
  /** What is arriving (RX_*), and since when (the read of its first byte, stamped). */
  private rx = RX_NONE;
  private rxStart = 0;
  /** When the connection last became idle: its last answer went out, or its last request came in. */
  private lastActive = 0;
  /** Draining: since when (the grace runs from it); NOT_DRAINING otherwise. */
  private drainFrom = NOT_DRAINING;

  constructor(
    /** The checked options, shared with the other stages built from them. */
    readonly config: C,
  ) {
    super();
  }

  /** Nothing is owed nor being decided (an upgrade), and the connection is not closing: idle, if nothing arrives. */
  protected abstract get quiet(): boolean;
  /** A response that closes the connection is queued: nothing more is answered, nothing more is timed. */
  protected abstract get ending(): boolean;
  /** The oldest response whose request is whole (`readyAt` set) and whose answer has not started. */
  protected abstract unstarted(): HttpResponse | undefined;
  /** The request arriving was too slow: its head (`head`) or all of it. */
  protected abstract requestTimedOut(head: boolean): void;
  /** `res`'s handler did not start answering in time. */
  protected abstract handlerTimedOut(res: HttpResponse): void;
  /** Idle past the keep-alive timeout, or past the drain grace. */
  protected abstract closeIdle(reason: 'idle-timeout' | 'shutdown'): void;

  /** The connection is open: the keep-alive timeout runs from now. */
  protected startClocks(timers: Timers): void {
    this.timers = timers;
    this.idleFrom(stamp(timers.now()));
  }

  /** The connection closed, or left HTTP: no clock any more. */
  protected stopClocks(): void {
    this.timers?.disarm(this);
    this.timers = undefined;
  }

  /** A request is being received (its head or its body). */
  protected get receiving(): boolean {
    return this.rx !== RX_NONE;
  }

  /**
   * The time for a stamp: the wheel's coarse clock (free, at most a tick old) while our timer is
   * armed — the wheel ticks then —, else a real clock read (the coarse one may be old).
   */
  private stamp(): number {
    const timers = this.timers as Timers;
    return stamp(this.wheelTick === -1 ? timers.now() : timers.coarseNow());
  }

  /** The connection may be idle from now: if nothing is owed or arriving, the keep-alive timeout runs. */
  protected idleNow(): void {
    if (this.config.keepAliveTimeout > 0 && this.timers !== undefined) this.idleFrom(this.stamp());
  }

  private idleFrom(now: number): void {
    this.lastActive = now;
    if (this.config.keepAliveTimeout > 0) this.armBy(now, this.config.keepAliveTimeout);
  }

  /** The decoder says a request is arriving: its first bytes came (`head`), or its body is awaited. */
  protected arriving(head: boolean): void {
    if (this.timers === undefined || this.ending) return; // nothing more is answered
    const now = this.stamp();
    if (head || this.rx === RX_NONE) this.rxStart = now;
    this.rx = head ? RX_HEAD : RX_BODY;
    const gone = diff(now, this.rxStart);
    if (head && this.config.headerTimeout > 0) this.armBy(now, this.config.headerTimeout - gone);
    if (this.config.requestTimeout > 0) this.armBy(now, this.config.requestTimeout - gone);
  }

  /** The request being received is whole (or was answered with an error): nothing is arriving. */
  protected arrived(): void {
    this.rx = RX_NONE;
  }

  /** `res`'s request is whole: its handler has `handlerTimeout` to start answering. */
  protected handlerStarts(res: HttpResponse): void {
    if (this.config.handlerTimeout === 0 || this.timers === undefined) return;
    const now = this.stamp();
    res.readyAt = now;
    this.armBy(now, this.config.handlerTimeout);
  }

  /** The server drains: an idle connection closes after `drainGrace` ms. */
  protected drainSoon(): void {
    if (this.timers === undefined) return;
    const now = this.stamp();
    this.drainFrom = now;
    this.armBy(now, this.config.drainGrace);
  }

  /**
   * Makes sure the timer fires no later than `delay` ms after `now` (a stamp): a compare, unless
   * it must move earlier.
   */
  private armBy(now: number, delay: number): void {
    const timers = this.timers as Timers;
    if (delay > MAX_ARM) delay = MAX_ARM;
    if (this.wheelTick !== -1 && diff(this.armedAt, now) <= delay) return;
    this.armedAt = stamp(now + delay);
    timers.arm(this, delay);
  }

  /**
   * @internal The timer fired (`TimerEntry`): act on the deadline that passed — the request
   * arriving too slowly (408), a handler that did not start its answer (503), the keep-alive or
   * drain grace of an idle connection (close) — or re-arm for the nearest one.
   */
  onTimeout(): void {
    const timers = this.timers;
    if (timers === undefined) return;
    const t = this.config;
    const now = stamp(timers.now());
    /** The least time left before a deadline that has not passed. */
    let next = Number.POSITIVE_INFINITY;
    if (this.rx !== RX_NONE && !this.ending) {
      const gone = diff(now, this.rxStart);
      if (this.rx === RX_HEAD && t.headerTimeout > 0) {
        const left = t.headerTimeout - gone;
        if (left <= 0) {
          this.rx = RX_NONE;
          this.requestTimedOut(true);
          return;
        }
        next = left;
      }
      if (t.requestTimeout > 0) {
        const left = t.requestTimeout - gone;
        if (left <= 0) {
          this.rx = RX_NONE;
          this.requestTimedOut(false);
          return;
        }
        if (left < next) next = left;
      }
    }
    if (t.handlerTimeout > 0) {
      const res = this.unstarted();
      if (res !== undefined) {
        const left = t.handlerTimeout - diff(now, res.readyAt);
        if (left <= 0) {
          // The connection closes after the 503: what comes later needs no clock.
          this.handlerTimedOut(res);
          return;
        }
        if (left < next) next = left;
      }
    }
    if (this.rx === RX_NONE && this.quiet) {
      if (t.keepAliveTimeout > 0) {
        const left = t.keepAliveTimeout - diff(now, this.lastActive);
        if (left <= 0) {
          this.closeIdle('idle-timeout');
          return;
        }
        if (left < next) next = left;
      }
      if (this.drainFrom !== NOT_DRAINING) {
        const left = t.drainGrace - diff(now, this.drainFrom);
        if (left <= 0) {
          this.closeIdle('shutdown');
          return;
        }
        if (left < next) next = left;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.armBy(now, next);
  }
}
