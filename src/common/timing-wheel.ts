/**
 * A hashed timing wheel (Varghese & Lauck; Netty's HashedWheelTimer): one per loop, driving idle
 * detection, heartbeats, graceful-close and connect deadlines without a Node timer per connection.
 *
 * Time is cut into ticks of `tickMs`; a timer lives in slot `ceil(deadline / tickMs) % slots`, in
 * a doubly linked list, so schedule and cancel are O(1). `advance(now)` visits only the slots
 * whose ticks have passed and fires the timers there whose deadline has come (a slot also holds
 * timers for later turns of the wheel; they stay). Accuracy: a timer fires at its deadline
 * rounded up to the next tick the driver observes — never early, late by at most one tick plus
 * the driver's own delay. Idle timeouts are seconds long, so a 20 ms tick costs nothing.
 *
 * The clock is injected: the loop passes `performance.now`, unit tests a number they advance.
 */
// Imported rather than read from globalThis: the global `performance` is a lazy accessor, which
// optimised code cannot fold, so every `performance.now()` through it paid a LoadGlobalIC miss
// (~2% of a plaintext worker's user time in the profile).
import { performance } from 'node:perf_hooks';
import { checkOptions, type OptionKeys } from './options.js';

/**
 * What a timer calls when it fires, instead of a closure: a connection or handler that keeps
 * timers for its whole life passes itself, so that it needs no closure (56 B) and context (40 B)
 * of its own per timer — the wheel calls its `onTimeout()`.
 */
export interface TimerTarget {
  onTimeout(): void;
}

/**
 * An object that is its own timer: the wheel links it into its slots through these fields, so it
 * needs no `Timeout` object (64 B) either — for one that keeps one timer for its whole life (an
 * idle handler of a connection). An entry belongs to one wheel; `wheelTick` starts at -1 (not
 * armed), and the three fields are the wheel's alone.
 */
export interface TimerEntry extends TimerTarget {
  /** @internal The tick it fires at, or -1. */
  wheelTick: number;
  /** @internal */ wheelPrev: TimerEntry | null;
  /** @internal */ wheelNext: TimerEntry | null;
}

/** What a channel or handler uses to schedule work on its loop. */
export interface Timers {
  /** The clock in milliseconds (monotonic). */
  now(): number;
  /**
   * The clock as the wheel last read it (its last tick, or the last schedule): at most one tick
   * old while any timer is pending, and free — no clock call (~60 ns here). For stamping activity
   * on a hot path, where a timer will compare against the stamp.
   */
  coarseNow(): number;
  /**
   * Calls `fn` once, `delayMs` from now (rounded up to the wheel's tick): a function, or an object
   * whose `onTimeout()` is called (see `TimerTarget`).
   */
  schedule(delayMs: number, fn: (() => void) | TimerTarget): Timeout;
  /**
   * Arms `entry` to fire (its `onTimeout()`) `delayMs` from now, moving it when it is armed
   * already: a timer without a `Timeout` object (see `TimerEntry`).
   */
  arm(entry: TimerEntry, delayMs: number): void;
  /** Disarms `entry`; harmless when it is not armed. */
  disarm(entry: TimerEntry): void;
}

/** A scheduled timer. */
export interface Timeout {
  /** Stops the timer; harmless when it already fired or was cancelled. */
  cancel(): void;
  /** Arms it again, `delayMs` from now, with the same callback (pending, fired or cancelled alike). */
  reschedule(delayMs: number): void;
  /** Whether it is still waiting to fire. */
  readonly pending: boolean;
}

/** `WheelTimeout.tick` of a timer that is not pending (ticks count from the wheel's creation, ≥ 0). */
const IDLE = -1;

/**
 * One timer: five fields, every one a pointer or a small integer. Its deadline is kept only as
 * the tick it fires in, counted from the wheel's creation, so it stays a small integer (a Smi):
 * a deadline in ms would be a double, which V8 keeps in a 16-byte box of its own per timer.
 */
class WheelTimeout implements Timeout, TimerEntry {
  wheelTick = IDLE;
  wheelPrev: TimerEntry | null = null;
  wheelNext: TimerEntry | null = null;

  constructor(
    readonly wheel: TimingWheel,
    public fn: (() => void) | TimerTarget | null,
  ) {}

  get pending(): boolean {
    return this.wheelTick !== IDLE;
  }

  cancel(): void {
    // The callback stays: `reschedule` may bring the timer back without giving it again.
    if (this.wheelTick !== IDLE) this.wheel.unlink(this);
  }

  reschedule(delayMs: number): void {
    this.wheel.reschedule(this, delayMs);
  }

  onTimeout(): void {
    const fn = this.fn;
    if (fn === null) return;
    if (typeof fn === 'function') fn();
    else fn.onTimeout();
  }
}

/**
 * How a {@link TimingWheel} cuts time, reads its clock and reports. A `slots` that is not a power
 * of two, or a `tickMs` that is not positive, throws `RangeError` in the constructor.
 */
export interface TimingWheelOptions {
  /** Tick length in ms. Default 20. */
  readonly tickMs?: number;
  /** Number of slots, a power of two. Default 512 (one turn = 10.24 s at 20 ms). */
  readonly slots?: number;
  /** The clock; default `performance.now`. */
  readonly clock?: () => number;
  /** Called when the wheel goes from empty to non-empty, so a driver can start ticking. */
  readonly onActive?: () => void;
  /** Errors thrown by timer callbacks; default rethrows after the tick finishes. */
  readonly onError?: (err: unknown) => void;
}

/** The keys of `TimingWheelOptions` (options.ts: kept in step with the interface by `tsc`). */
const TIMING_WHEEL_OPTIONS = {
  tickMs: true,
  slots: true,
  clock: true,
  onActive: true,
  onError: true,
} as const satisfies OptionKeys<TimingWheelOptions>;

/**
 * A hashed timing wheel (Varghese & Lauck; Netty's `HashedWheelTimer`): schedule and cancel in
 * O(1), no Node timer per connection. Each loop has one (`channel.timers`), which drives idle
 * detection, heartbeats, HTTP timeouts and close deadlines; a handler that needs a timer should
 * use that one rather than `setTimeout`, so that tests on an `EmbeddedChannel` advance its fake
 * clock instead of sleeping.
 *
 * Contract: a timer never fires early; it fires at the first `advance()` at or after its deadline
 * rounded up to a tick — late by at most one tick (20 ms by default) plus the driver's own delay.
 * A callback that schedules a timer (even with delay 0) never sees it fire in the same
 * `advance()`. A callback's throw goes to `onError`, or is rethrown once the tick is done.
 * Build one yourself only to drive it from your own clock.
 *
 * @example
 * ```ts
 * import { TimingWheel } from 'multireactor';
 *
 * let now = 0;
 * const wheel = new TimingWheel({ tickMs: 10, clock: () => now });
 * const timer = wheel.schedule(25, () => console.log('fired at', now));
 * now = 20;
 * wheel.advance(); // nothing yet: the deadline (25) rounds up to the tick ending at 30
 * now = 30;
 * wheel.advance(); // fired at 30
 * timer.reschedule(100); // the same object, armed again
 * ```
 */
export class TimingWheel implements Timers {
  readonly tickMs: number;
  private readonly mask: number;
  private readonly heads: (TimerEntry | null)[];
  private readonly clock: () => number;
  private readonly onActive: (() => void) | undefined;
  private readonly onError: ((err: unknown) => void) | undefined;
  /** The clock's tick when the wheel was made: ticks are counted from it, so they stay small. */
  private readonly base: number;
  /** The last tick whose slot was processed (from `base`). */
  private tick: number;
  /** The latest clock reading (see coarseNow). */
  private lastNow: number;
  private count = 0;

  constructor(options: TimingWheelOptions = {}) {
    checkOptions('TimingWheel', options, TIMING_WHEEL_OPTIONS);
    const slots = options.slots ?? 512;
    if (!Number.isInteger(slots) || slots < 1 || (slots & (slots - 1)) !== 0) {
      throw new RangeError(`slots must be a power of two, got ${slots}`);
    }
    this.tickMs = options.tickMs ?? 20;
    if (!(this.tickMs > 0)) throw new RangeError(`tickMs must be positive, got ${this.tickMs}`);
    this.mask = slots - 1;
    this.heads = new Array<TimerEntry | null>(slots).fill(null);
    this.clock = options.clock ?? (() => performance.now());
    this.onActive = options.onActive;
    this.onError = options.onError;
    this.lastNow = this.clock();
    this.base = Math.floor(this.lastNow / this.tickMs);
    this.tick = 0;
  }

  now(): number {
    return this.clock();
  }

  coarseNow(): number {
    return this.lastNow;
  }

  /** Timers waiting to fire. */
  get size(): number {
    return this.count;
  }

  schedule(delayMs: number, fn: (() => void) | TimerTarget): Timeout {
    const t = new WheelTimeout(this, fn);
    this.lastNow = this.clock();
    this.insert(t, this.lastNow + Math.max(0, delayMs));
    return t;
  }

  /**
   * Moves a pending or fired timer to a new deadline without allocating (Netty-style idle
   * handlers reschedule on every expiry). Returns the same object.
   */
  reschedule(timeout: Timeout, delayMs: number, fn?: (() => void) | TimerTarget): Timeout {
    const t = timeout as WheelTimeout;
    if (t.wheel !== this) throw new Error('timer belongs to another wheel');
    if (fn !== undefined) t.fn = fn;
    this.arm(t, delayMs);
    return t;
  }

  arm(entry: TimerEntry, delayMs: number): void {
    const moving = entry.wheelTick !== IDLE;
    if (moving) this.unlink(entry);
    // A move never takes the wheel through empty, so it does not announce `onActive` again.
    this.lastNow = this.clock();
    this.insert(entry, this.lastNow + Math.max(0, delayMs), !moving);
  }

  disarm(entry: TimerEntry): void {
    if (entry.wheelTick !== IDLE) this.unlink(entry);
  }

  private insert(t: TimerEntry, deadline: number, announce = true): void {
    // A deadline inside a tick already processed belongs to the next tick, not a turn later.
    let tick = Math.ceil(deadline / this.tickMs) - this.base;
    if (tick <= this.tick) tick = this.tick + 1;
    const slot = tick & this.mask;
    t.wheelTick = tick;
    t.wheelPrev = null;
    const head = this.heads[slot] ?? null;
    t.wheelNext = head;
    if (head !== null) head.wheelPrev = t;
    this.heads[slot] = t;
    if (this.count++ === 0 && announce) this.onActive?.();
  }

  /** @internal */
  unlink(t: TimerEntry): void {
    if (t.wheelPrev !== null) t.wheelPrev.wheelNext = t.wheelNext;
    else this.heads[t.wheelTick & this.mask] = t.wheelNext;
    if (t.wheelNext !== null) t.wheelNext.wheelPrev = t.wheelPrev;
    t.wheelPrev = t.wheelNext = null;
    t.wheelTick = IDLE;
    this.count--;
  }

  /**
   * Fires every timer whose deadline is at or before `now`. Returns how many fired. Timers that
   * callbacks schedule land in a later tick and never fire in the same call, so a callback that
   * reschedules itself with delay 0 cannot spin.
   */
  advance(now: number = this.clock()): number {
    if (now > this.lastNow) this.lastNow = now;
    const target = Math.floor(now / this.tickMs) - this.base;
    if (target <= this.tick) return 0;
    // After a long stall every slot is due at most once: visit each slot once, not every tick.
    const steps = Math.min(target - this.tick, this.mask + 1);
    const first = target - steps + 1;
    this.tick = target;
    let fired = 0;
    let failure: unknown;
    let failed = false;
    for (let tick = first; tick <= target; tick++) {
      const s = tick & this.mask;
      let t = this.heads[s] ?? null;
      while (t !== null) {
        if (t.wheelTick > target) {
          t = t.wheelNext; // a later turn of the wheel
          continue;
        }
        const next = t.wheelNext;
        this.unlink(t);
        fired++;
        try {
          t.onTimeout();
        } catch (err) {
          if (this.onError !== undefined) this.onError(err);
          else if (!failed) {
            failed = true;
            failure = err;
          }
        }
        // The callback may have cancelled or moved `next`: then walk the slot again from its
        // head (fired timers are gone from it, later-turn ones are skipped).
        t =
          next !== null && next.wheelTick !== IDLE && (next.wheelTick & this.mask) === s
            ? next
            : (this.heads[s] ?? null);
      }
    }
    if (failed) throw failure;
    return fired;
  }

  /** Cancels every timer (loop shutdown). */
  clear(): void {
    for (let s = 0; s <= this.mask; s++) {
      let t = this.heads[s] ?? null;
      while (t !== null) {
        const next = t.wheelNext;
        t.wheelPrev = t.wheelNext = null;
        t.wheelTick = IDLE;
        // A Timeout loses its callback: one revived by `reschedule` after a shutdown does nothing.
        if (t instanceof WheelTimeout) t.fn = null;
        t = next;
      }
      this.heads[s] = null;
    }
    this.count = 0;
  }
}
