/**
 * WebSocket liveness on the idle-detection machinery (handlers/idle-state.ts): a stage before the
 * WebSocket's own, seeing the raw bytes. Any byte from the peer — a message, a pong, anything —
 * proves it alive; after `interval` ms of silence the WebSocket sends a ping (RFC 6455 §5.5.2,
 * answered by every conforming peer, browsers included), and when `missed` pings in a row found
 * the peer still silent the connection is aborted with reason `heartbeat` — a dead peer gets no
 * lingering close, and what was queued for it is freed at once. With `idleTimeout` instead, a
 * silent connection is closed with 1001 (reason `idle-timeout`): for peers that ping on their own.
 *
 * The kernel's own detectors run beside it (server options `keepAlive`, `userTimeout`): whichever
 * notices first closes the connection, and `onClose` says which — 1006 with `heartbeat`, or
 * `timeout` when the kernel gave up (ETIMEDOUT from keepalive probes or TCP_USER_TIMEOUT).
 * The timer is the loop's timing wheel: an idle connection costs one wheel slot per period, a busy
 * one a timestamp per read burst.
 */
import { type IdleStateEvent, IdleStateHandler } from '../handlers/idle-state.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import type { WebSocket } from './websocket.js';

/**
 * The stage `heartbeat` and `idleTimeout` put before a WebSocket (you do not build it yourself):
 * any byte from the peer proves it alive; after `interval` ms of silence the WebSocket pings,
 * and when `missed` pings in a row found the peer silent the connection is aborted (reason
 * `heartbeat`) — a dead peer gets no lingering close. With `idleTimeout` instead, a silent
 * connection is closed with 1001 (`idle-timeout`). Runs on the loop's timing wheel.
 */
export class WebSocketHeartbeat extends IdleStateHandler {
  private unanswered = 0;

  /**
   * `interval` > 0: ping mode (`missed` unanswered pings close); else `idleTimeout` ms of silence
   * closes with 1001.
   */
  constructor(
    private readonly ws: WebSocket,
    interval: number,
    private readonly missed: number,
    idleTimeout: number,
  ) {
    super({ readerIdle: interval > 0 ? interval : idleTimeout });
    this.pinging = interval > 0;
  }

  private readonly pinging: boolean;

  /** Pings sent since the peer was last heard from. */
  get unansweredPings(): number {
    return this.unanswered;
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    this.unanswered = 0;
    this.markRead();
    ctx.fireRead(msg);
  }

  protected override channelIdle(_ctx: HandlerContext, event: IdleStateEvent): void {
    if (event.state !== 'reader-idle') return;
    const ws = this.ws;
    // Closing already: the close timeout ends it.
    if (ws.closing) return;
    if (!this.pinging) {
      ws.idleClose();
      return;
    }
    if (this.unanswered >= this.missed) {
      ws.channel.abort('heartbeat');
      return;
    }
    this.unanswered++;
    ws.ping();
  }
}
