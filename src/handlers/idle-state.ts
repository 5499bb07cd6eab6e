/**
 * Idle detection, as Netty's IdleStateHandler: fires an `IdleStateEvent` through `onUserEvent`
 * when a connection has not read, not written, or neither, for a while.
 *
 * Driven by the loop's timing wheel: one wheel timer per enabled kind, re-armed in place
 * (`Timeout.reschedule`, no allocation). Reads do not touch the timers — a read burst only
 * records a timestamp (at `onReadComplete`, the wheel's clock as it last read it: no clock call)
 * — and the timer, when it fires, compares and re-arms itself for the remaining time. So a busy
 * connection costs nothing per message, and an idle one one wheel slot per period. The clock is
 * the channel's (`channel.timers`): in an `EmbeddedChannel`, tests advance it instead of sleeping.
 * Times are accurate to a tick of the loop's wheel (20 ms by default).
 *
 * Memory: a handler lives as long as its connection, which is mostly idle, so it keeps little:
 * its options are resolved once and shared by every handler built from equal options; the handler
 * is its own reader timer (a `TimerEntry`: no Timeout object, the wheel calls its `onTimeout`),
 * the writer and all-idle timers — rarely used —
 * and what they need are made only when enabled; timestamps are kept as small integers (ms
 * modulo 2^30: a double would be boxed per handler by V8), which is why a period may be at most
 * 2^30 - 1 ms (12.4 days).
 */

import { InvalidOptionError } from '../common/errors.js';
import { bool, checkOptions, msOption, type OptionKeys, SharedResolutions } from '../common/options.js';
import type { Timeout, TimerEntry, Timers, TimerTarget } from '../common/timing-wheel.js';
import { ChannelDuplexHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';

/** Which kind of inactivity an {@link IdleStateEvent} reports: no read, no write, or neither. */
export type IdleState = 'reader-idle' | 'writer-idle' | 'all-idle';

/**
 * Fired through `onUserEvent`. `first` is true for the first event of an idle period and false
 * for the ones that follow while the connection stays idle. The six possible events are shared
 * constants: compare with `===` or read the fields.
 */
export class IdleStateEvent {
  static readonly FIRST_READER_IDLE = new IdleStateEvent('reader-idle', true);
  static readonly READER_IDLE = new IdleStateEvent('reader-idle', false);
  static readonly FIRST_WRITER_IDLE = new IdleStateEvent('writer-idle', true);
  static readonly WRITER_IDLE = new IdleStateEvent('writer-idle', false);
  static readonly FIRST_ALL_IDLE = new IdleStateEvent('all-idle', true);
  static readonly ALL_IDLE = new IdleStateEvent('all-idle', false);

  private constructor(
    readonly state: IdleState,
    readonly first: boolean,
  ) {}

  static of(state: IdleState, first: boolean): IdleStateEvent {
    switch (state) {
      case 'reader-idle':
        return first ? IdleStateEvent.FIRST_READER_IDLE : IdleStateEvent.READER_IDLE;
      case 'writer-idle':
        return first ? IdleStateEvent.FIRST_WRITER_IDLE : IdleStateEvent.WRITER_IDLE;
      default:
        return first ? IdleStateEvent.FIRST_ALL_IDLE : IdleStateEvent.ALL_IDLE;
    }
  }
}

/**
 * The idle periods of an {@link IdleStateHandler}, in ms; set at least one. Checked in its
 * constructor (`InvalidOptionError`).
 */
export interface IdleStateOptions {
  /** No read for this many ms fires `reader-idle`. 0 or absent: off. */
  readonly readerIdle?: number;
  /** No write for this many ms fires `writer-idle`. 0 or absent: off. */
  readonly writerIdle?: number;
  /** Neither for this many ms fires `all-idle`. 0 or absent: off. */
  readonly allIdle?: number;
  /**
   * Count progress of the outbound queue as write activity (Netty's `observeOutput`): a slow
   * peer still draining a large answer is then not "writer idle". Default false.
   */
  readonly observeOutput?: boolean;
}

/** The keys of `IdleStateOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const IDLE_STATE_OPTIONS = {
  readerIdle: true,
  writerIdle: true,
  allIdle: true,
  observeOutput: true,
} as const satisfies OptionKeys<IdleStateOptions>;

/** The longest period: times are kept modulo 2^30 ms (see the module comment). */
export const MAX_IDLE_PERIOD = 2 ** 30 - 1;
const STAMP_MASK = 0x3fffffff;

/** A time as kept: whole ms modulo 2^30, a small integer. */
function stamp(ms: number): number {
  return ms & STAMP_MASK;
}

/** Milliseconds from the stamp `last` to the time `now` (less than 2^30 apart). */
function since(now: number, last: number): number {
  return ((now & STAMP_MASK) - last) & STAMP_MASK;
}

/** Checks an idle period: a number of ms, at most MAX_IDLE_PERIOD (`positive`: above 0). */
export function idlePeriod(name: string, v: unknown, positive = false): number {
  const ms = msOption(name, v, positive);
  if (ms > MAX_IDLE_PERIOD) {
    throw new InvalidOptionError(name, `must be at most ${MAX_IDLE_PERIOD} ms (12.4 days), got ${ms}`);
  }
  return ms;
}

/**
 * Resolved idle options, shared by every handler built from equal options (`SharedResolutions`).
 * @internal
 */
export class IdleConfig {
  constructor(
    readonly readerIdle: number,
    readonly writerIdle: number,
    readonly allIdle: number,
    readonly observeOutput: boolean,
  ) {}
}

const IDLE_CONFIGS = new SharedResolutions<IdleStateOptions, IdleConfig>((o) => {
  const options = checkOptions('IdleStateHandler', o, IDLE_STATE_OPTIONS);
  const period = (name: string, v: number | undefined) => (v === undefined ? 0 : idlePeriod(name, v));
  return new IdleConfig(
    period('readerIdle', options.readerIdle),
    period('writerIdle', options.writerIdle),
    period('allIdle', options.allIdle),
    bool('observeOutput', options.observeOutput, false),
  );
});

// Flags of a handler.
/** A read burst is in progress (reads seen, onReadComplete not yet). */
const READING = 1;
const FIRST_READER = 2;
const FIRST_WRITER = 4;
const FIRST_ALL = 8;
const DESTROYED = 16;
/** Bits 8 and up of the flags: a count a subclass may keep there (`counter`), below 2^22. */
const COUNTER_SHIFT = 8;
/** The largest `counter`. */
export const MAX_COUNTER = 2 ** 22 - 1;

/** What only the writer-idle and all-idle kinds (and `observeOutput`) need: made when they are enabled. */
class WriteTracking {
  /** The last write, stamped. */
  lastWrite: number;
  writerTimer: Timeout | undefined = undefined;
  allTimer: Timeout | undefined = undefined;
  /** `observeOutput`: the outbound queue as last seen. */
  lastBytesWritten = 0;
  lastPending = 0;

  constructor(now: number) {
    this.lastWrite = now;
  }
}

/** The writer-idle or all-idle timer's target. */
class KindTimer implements TimerTarget {
  constructor(
    private readonly owner: IdleStateHandler,
    private readonly all: boolean,
  ) {}
  onTimeout(): void {
    if (this.all) this.owner.allIdleTimeout();
    else this.owner.writerIdleTimeout();
  }
}

/**
 * Idle detection, as Netty's `IdleStateHandler`: fires an {@link IdleStateEvent} through
 * `onUserEvent` when the connection has not read (`readerIdle`), not written (`writerIdle`) or
 * neither (`allIdle`) for that many ms — once with `first: true`, then again each period while it
 * stays idle. It closes nothing itself: a handler after it decides (or use `HeartbeatHandler`).
 *
 * Cheap on busy connections: reads only stamp a time once per read burst, and each kind has one
 * timer on the channel's timing wheel, re-armed in place when it fires — nothing is allocated per
 * message. On an `EmbeddedChannel` tests advance the fake clock (`advanceTime`).
 *
 * @example
 * ```ts
 * import { ChannelInboundHandler, type HandlerContext, IdleStateEvent, IdleStateHandler, LineFrameDecoder, Pipeline } from 'multireactor';
 *
 * class CloseWhenSilent extends ChannelInboundHandler {
 *   override onUserEvent(ctx: HandlerContext, event: unknown): void {
 *     if (event === IdleStateEvent.FIRST_READER_IDLE) ctx.close('idle-timeout');
 *     else ctx.fireUserEvent(event);
 *   }
 * }
 * class App extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast(new IdleStateHandler({ readerIdle: 60_000 }))
 *       .addLast(new CloseWhenSilent())
 *       .addLast(new LineFrameDecoder());
 *   }
 * }
 * ```
 *
 * A subclass may take the events through `channelIdle` instead. The handler is its own reader-idle timer: the wheel calls its
 * `onTimeout` method and links it through its `wheel*` fields, which a subclass must leave alone.
 */
export class IdleStateHandler extends ChannelDuplexHandler implements TimerEntry {
  /** The options, shared with every handler built from equal ones. */
  protected readonly cfg: IdleConfig;
  private ctx: HandlerContext | undefined = undefined;
  private timers: Timers | undefined = undefined;
  /** @internal The reader-idle timer's place in the wheel (`TimerEntry`). */
  wheelTick = -1;
  /** @internal */ wheelPrev: TimerEntry | null = null;
  /** @internal */ wheelNext: TimerEntry | null = null;
  private flags = FIRST_READER | FIRST_WRITER | FIRST_ALL;
  /** The end of the last read burst, stamped. */
  private lastRead = 0;
  private writes: WriteTracking | undefined = undefined;

  constructor(options: IdleStateOptions | IdleConfig) {
    super();
    this.cfg = options instanceof IdleConfig ? options : IDLE_CONFIGS.get(options);
  }

  get readerIdle(): number {
    return this.cfg.readerIdle;
  }
  get writerIdle(): number {
    return this.cfg.writerIdle;
  }
  get allIdle(): number {
    return this.cfg.allIdle;
  }

  handlerAdded(ctx: HandlerContext): void {
    if (ctx.channel.isActive) this.initialize(ctx);
  }

  handlerRemoved(): void {
    this.destroy();
  }

  override onActive(ctx: HandlerContext): void {
    this.initialize(ctx);
    ctx.fireActive();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.destroy();
    ctx.fireInactive(reason);
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    this.markRead();
    ctx.fireRead(msg);
  }

  /**
   * A small count a subclass keeps in this handler's flags rather than in a field of its own (a
   * connection's handler stays small): 0 to MAX_COUNTER.
   */
  protected get counter(): number {
    return this.flags >>> COUNTER_SHIFT;
  }

  protected set counter(n: number) {
    this.flags = (this.flags & ((1 << COUNTER_SHIFT) - 1)) | (n << COUNTER_SHIFT);
  }

  /** Records read activity (for subclasses that consume a message instead of passing it on). */
  protected markRead(): void {
    this.flags |= READING | FIRST_READER | FIRST_ALL;
  }

  override onReadComplete(ctx: HandlerContext): void {
    if ((this.flags & READING) !== 0 && this.timers !== undefined) {
      this.lastRead = stamp(this.timers.coarseNow());
      this.flags &= ~READING;
    }
    ctx.fireReadComplete();
  }

  override write(ctx: HandlerContext, msg: unknown): void {
    const writes = this.writes;
    if (writes !== undefined) {
      writes.lastWrite = stamp((this.timers as Timers).coarseNow());
      this.flags |= FIRST_WRITER | FIRST_ALL;
    }
    ctx.write(msg);
  }

  /** Called with each event; the default passes it on (`onUserEvent` of the next handler). */
  protected channelIdle(ctx: HandlerContext, event: IdleStateEvent): void {
    ctx.fireUserEvent(event);
  }

  private initialize(ctx: HandlerContext): void {
    // Called from handlerAdded and from onActive: the first one wins.
    if (this.timers !== undefined || (this.flags & DESTROYED) !== 0) return;
    this.ctx = ctx;
    const timers = ctx.channel.timers;
    this.timers = timers;
    const now = stamp(timers.now());
    this.lastRead = now;
    const cfg = this.cfg;
    if (cfg.readerIdle > 0) timers.arm(this, cfg.readerIdle);
    if (cfg.writerIdle > 0 || cfg.allIdle > 0 || cfg.observeOutput) {
      const writes = new WriteTracking(now);
      this.writes = writes;
      writes.lastBytesWritten = ctx.channel.bytesWritten;
      writes.lastPending = ctx.channel.pendingWriteBytes;
      if (cfg.writerIdle > 0) writes.writerTimer = timers.schedule(cfg.writerIdle, new KindTimer(this, false));
      if (cfg.allIdle > 0) writes.allTimer = timers.schedule(cfg.allIdle, new KindTimer(this, true));
    }
  }

  private destroy(): void {
    this.flags |= DESTROYED;
    this.timers?.disarm(this);
    const writes = this.writes;
    if (writes !== undefined) {
      writes.writerTimer?.cancel();
      writes.allTimer?.cancel();
      this.writes = undefined;
    }
  }

  /**
   * Netty's `hasOutputChanged`: whether the outbound queue moved since the last check (bytes
   * left for the kernel, or its length changed). Only with `observeOutput`.
   */
  private outputChanged(writes: WriteTracking, first: boolean): boolean {
    if (!this.cfg.observeOutput) return false;
    const ch = (this.ctx as HandlerContext).channel;
    const written = ch.bytesWritten;
    const pending = ch.pendingWriteBytes;
    if (written !== writes.lastBytesWritten || pending !== writes.lastPending) {
      writes.lastBytesWritten = written;
      writes.lastPending = pending;
      // Progress since the last event: this period counts as active, unless it is the first.
      if (!first) return true;
    }
    return false;
  }

  /**
   * Re-arms `timer` for what is left of `period` since the last activity (`idleFor` ms ago), or —
   * when the period has passed in silence — for a whole period, and returns true: the connection
   * is idle.
   */
  private due(timer: Timeout | undefined, period: number, idleFor: number, busy: boolean): boolean {
    const left = busy ? period : period - idleFor;
    if (left > 0) {
      timer?.reschedule(left);
      return false;
    }
    timer?.reschedule(period);
    return true;
  }

  /** @internal The reader-idle timer fired (`TimerEntry`). */
  onTimeout(): void {
    const timers = this.timers as Timers;
    const period = this.cfg.readerIdle;
    const left = (this.flags & READING) !== 0 ? period : period - since(timers.now(), this.lastRead);
    if (left > 0) {
      timers.arm(this, left);
      return;
    }
    timers.arm(this, period);
    const first = (this.flags & FIRST_READER) !== 0;
    this.flags &= ~FIRST_READER;
    this.channelIdle(this.ctx as HandlerContext, IdleStateEvent.of('reader-idle', first));
  }

  /** @internal The writer-idle timer fired. */
  writerIdleTimeout(): void {
    const writes = this.writes;
    if (writes === undefined) return;
    const now = (this.timers as Timers).now();
    if (!this.due(writes.writerTimer, this.cfg.writerIdle, since(now, writes.lastWrite), false)) return;
    const first = (this.flags & FIRST_WRITER) !== 0;
    this.flags &= ~FIRST_WRITER;
    if (this.outputChanged(writes, first)) return;
    this.channelIdle(this.ctx as HandlerContext, IdleStateEvent.of('writer-idle', first));
  }

  /** @internal The all-idle timer fired. */
  allIdleTimeout(): void {
    const writes = this.writes;
    if (writes === undefined) return;
    const now = (this.timers as Timers).now();
    const idleFor = Math.min(since(now, this.lastRead), since(now, writes.lastWrite));
    if (!this.due(writes.allTimer, this.cfg.allIdle, idleFor, (this.flags & READING) !== 0)) return;
    const first = (this.flags & FIRST_ALL) !== 0;
    this.flags &= ~FIRST_ALL;
    if (this.outputChanged(writes, first)) return;
    this.channelIdle(this.ctx as HandlerContext, IdleStateEvent.of('all-idle', first));
  }
}
