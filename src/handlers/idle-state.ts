/**
 * Idle detection, as Netty's IdleStateHandler: fires an `IdleStateEvent` through `onUserEvent`
 * when a connection has not read, not written, or neither, for a while.
 *
 * Driven by the loop's timing wheel: one wheel timer per enabled kind, re-armed in place
 * (`Timeout.reschedule`, no allocation). Reads do not touch the timers — a read burst only
 * records a timestamp (one clock read per burst, at `onReadComplete`) — and the timer, when it
 * fires, compares and re-arms itself for the remaining time. So a busy connection costs nothing
 * per message, and an idle one one wheel slot per period. The clock is the channel's
 * (`channel.timers`): in an `EmbeddedChannel`, tests advance it instead of sleeping.
 */

import { bool, checkOptions, msOption, type OptionKeys } from '../common/options.js';
import type { Timeout, Timers } from '../common/timing-wheel.js';
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

function idleOption(name: string, v: number | undefined): number {
  return v === undefined ? 0 : msOption(name, v);
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
 */
export class IdleStateHandler extends ChannelDuplexHandler {
  readonly readerIdle: number;
  readonly writerIdle: number;
  readonly allIdle: number;
  private readonly observeOutput: boolean;
  private ctx: HandlerContext | undefined;
  private timers: Timers | undefined;
  private readerTimer: Timeout | undefined;
  private writerTimer: Timeout | undefined;
  private allTimer: Timeout | undefined;
  private lastRead = 0;
  private lastWrite = 0;
  private reading = false;
  private firstReader = true;
  private firstWriter = true;
  private firstAll = true;
  private lastBytesWritten = 0;
  private lastPending = 0;
  private destroyed = false;

  constructor(options: IdleStateOptions) {
    super();
    checkOptions('IdleStateHandler', options, IDLE_STATE_OPTIONS);
    this.readerIdle = idleOption('readerIdle', options.readerIdle);
    this.writerIdle = idleOption('writerIdle', options.writerIdle);
    this.allIdle = idleOption('allIdle', options.allIdle);
    this.observeOutput = bool('observeOutput', options.observeOutput, false);
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

  /** Records read activity (for subclasses that consume a message instead of passing it on). */
  protected markRead(): void {
    this.reading = true;
    this.firstReader = this.firstAll = true;
  }

  override onReadComplete(ctx: HandlerContext): void {
    if (this.reading && this.timers !== undefined) {
      this.lastRead = this.timers.now();
      this.reading = false;
    }
    ctx.fireReadComplete();
  }

  override write(ctx: HandlerContext, msg: unknown): void {
    if (this.timers !== undefined) this.lastWrite = this.timers.now();
    this.firstWriter = this.firstAll = true;
    ctx.write(msg);
  }

  /** Called with each event; the default passes it on (`onUserEvent` of the next handler). */
  protected channelIdle(ctx: HandlerContext, event: IdleStateEvent): void {
    ctx.fireUserEvent(event);
  }

  private initialize(ctx: HandlerContext): void {
    // Called from handlerAdded and from onActive: the first one wins.
    if (this.timers !== undefined || this.destroyed) return;
    this.ctx = ctx;
    const timers = ctx.channel.timers;
    this.timers = timers;
    const now = timers.now();
    this.lastRead = this.lastWrite = now;
    this.lastBytesWritten = ctx.channel.bytesWritten;
    this.lastPending = ctx.channel.pendingWriteBytes;
    if (this.readerIdle > 0) this.readerTimer = timers.schedule(this.readerIdle, this.onReaderTimer);
    if (this.writerIdle > 0) this.writerTimer = timers.schedule(this.writerIdle, this.onWriterTimer);
    if (this.allIdle > 0) this.allTimer = timers.schedule(this.allIdle, this.onAllTimer);
  }

  private destroy(): void {
    this.destroyed = true;
    this.readerTimer?.cancel();
    this.writerTimer?.cancel();
    this.allTimer?.cancel();
    this.readerTimer = this.writerTimer = this.allTimer = undefined;
  }

  /**
   * Netty's `hasOutputChanged`: whether the outbound queue moved since the last check (bytes
   * left for the kernel, or its length changed). Only with `observeOutput`.
   */
  private outputChanged(first: boolean): boolean {
    if (!this.observeOutput) return false;
    const ch = (this.ctx as HandlerContext).channel;
    const written = ch.bytesWritten;
    const pending = ch.pendingWriteBytes;
    if (written !== this.lastBytesWritten || pending !== this.lastPending) {
      this.lastBytesWritten = written;
      this.lastPending = pending;
      // Progress since the last event: this period counts as active, unless it is the first.
      if (!first) return true;
    }
    return false;
  }

  /**
   * Re-arms `timer` for what is left of `period` since the last activity, or — when the period
   * has passed in silence — for a whole period, and returns true: the connection is idle.
   */
  private due(timer: Timeout | undefined, period: number, last: number, busy: boolean): boolean {
    const left = busy ? period : period - ((this.timers as Timers).now() - last);
    if (left > 0) {
      timer?.reschedule(left);
      return false;
    }
    timer?.reschedule(period);
    return true;
  }

  private readonly onReaderTimer = (): void => {
    if (!this.due(this.readerTimer, this.readerIdle, this.lastRead, this.reading)) return;
    const first = this.firstReader;
    this.firstReader = false;
    this.channelIdle(this.ctx as HandlerContext, IdleStateEvent.of('reader-idle', first));
  };

  private readonly onWriterTimer = (): void => {
    if (!this.due(this.writerTimer, this.writerIdle, this.lastWrite, false)) return;
    const first = this.firstWriter;
    this.firstWriter = false;
    if (this.outputChanged(first)) return;
    this.channelIdle(this.ctx as HandlerContext, IdleStateEvent.of('writer-idle', first));
  };

  private readonly onAllTimer = (): void => {
    if (!this.due(this.allTimer, this.allIdle, Math.max(this.lastRead, this.lastWrite), this.reading)) return;
    const first = this.firstAll;
    this.firstAll = false;
    if (this.outputChanged(first)) return;
    this.channelIdle(this.ctx as HandlerContext, IdleStateEvent.of('all-idle', first));
  };
}
