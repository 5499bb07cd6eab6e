/**
 * A connection switched away from HTTP (`res.takeConnection`): what stays of the HTTP stages.
 *
 * After a `101 Switching Protocols` or a `2xx` to CONNECT the HTTP stages leave the pipeline, and
 * the HTTP keep-alive timeout with them; a tunnel or an upgraded protocol that nobody uses must
 * still not hold a connection (and a slot of `maxConnections`) for ever. `SwitchedIdleTimeout`
 * takes the HTTP stage's place and closes the connection after `idleTimeout` ms without a read,
 * with the keep-alive timer's technique: a read only stamps the coarse clock (a field read), and
 * the one wheel timer, when it fires, closes or re-arms itself for the time left.
 */
import type { Timeout } from '../../common/timing-wheel.js';
import { ChannelInboundHandler, type CloseReason } from '../../pipeline/handler.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';

/** Closes the connection after `timeoutMs` without a read (reason `idle-timeout`). */
export class SwitchedIdleTimeout extends ChannelInboundHandler {
  private ctx: HandlerContext | undefined;
  private timer: Timeout | undefined;
  private lastRead = 0;

  constructor(private readonly timeoutMs: number) {
    super();
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
    const timers = ctx.channel.timers;
    this.lastRead = timers.now();
    this.timer = timers.schedule(this.timeoutMs, this.onTimer);
  }

  handlerRemoved(): void {
    this.timer?.cancel();
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    // Coarse: the wheel's last tick (our timer is pending, so it is at most a tick old).
    this.lastRead = ctx.channel.timers.coarseNow();
    ctx.fireRead(msg);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.timer?.cancel();
    ctx.fireInactive(reason);
  }

  private readonly onTimer = (): void => {
    const ctx = this.ctx as HandlerContext;
    if (!ctx.channel.isActive) return;
    const left = this.timeoutMs - (ctx.channel.timers.now() - this.lastRead);
    if (left > 0) (this.timer as Timeout).reschedule(left);
    else ctx.close('idle-timeout');
  };
}
