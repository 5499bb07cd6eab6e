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
import { Buffer } from 'node:buffer';
import type { Timeout } from '../../common/timing-wheel.js';
import { ChannelInboundHandler, type CloseReason } from '../../pipeline/handler.js';
import type { HandlerContext } from '../../pipeline/pipeline.js';
import type { ConnectionInstaller, HttpResponse } from './response.js';

/**
 * An Upgrade or CONNECT request being answered (one per such request, none otherwise): the
 * bytes that came after it, held until the connection is taken or closed, and where the decision
 * stands. Reading is paused meanwhile (a hold of `res`'s).
 */
export class PendingSwitch {
  /** Copies of the bytes after the request head (they may be views of the loop's read buffer). */
  held: Buffer[] | undefined;
  /** `res` went out accepted but not taken yet: taken in the same event-loop turn, or closed. */
  awaitingTake = false;
  /** Taken: the switch runs when the current read completes (its bytes all held by then). */
  due = false;
  /** What `res.takeConnection` installs, and the switched connection's idle timeout. */
  install: ConnectionInstaller | undefined;
  idleTimeout = 0;

  constructor(readonly res: HttpResponse) {}

  hold(msg: unknown): void {
    if (!(msg instanceof Uint8Array) || msg.length === 0) return;
    const copy = Buffer.from(msg);
    if (this.held === undefined) this.held = [copy];
    else this.held.push(copy);
  }
}

/**
 * Hands the connection over: the HTTP stage at `ctx` leaves the pipeline (the decoder has
 * already), `SwitchedIdleTimeout` takes its place unless the taker said 0, the taker installs its
 * stages, and the held bytes go to them — from the HTTP stage's place, so that the stages before
 * it (TLS…) do not see them twice. An install that throws goes to `failed`, and the connection is
 * aborted: nobody can serve it.
 */
export function switchPipeline(ctx: HandlerContext, pending: PendingSwitch, failed: (err: unknown) => void): void {
  const res = pending.res;
  const install = pending.install as ConnectionInstaller;
  const idleTimeout = pending.idleTimeout;
  const channel = ctx.channel;
  const pipeline = ctx.pipeline;
  const before = ctx.prev as HandlerContext;
  if (idleTimeout > 0) {
    pipeline.replace(ctx, `${ctx.name}-switched`, new SwitchedIdleTimeout(idleTimeout));
  } else {
    pipeline.remove(ctx);
  }
  try {
    install(pipeline, channel);
  } catch (err) {
    failed(err);
    channel.abort('error');
    return;
  }
  const held = pending.held;
  pending.held = undefined;
  if (held !== undefined) {
    for (const bytes of held) before.fireRead(bytes);
    before.fireReadComplete();
  }
  channel.resumeReading(res);
  channel.flush();
}

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
