/**
 * Application-level liveness on top of idle detection.
 *
 * Two modes (docs/heartbeat.md explains when to use which, and how they compare with TCP
 * keepalive and TCP_USER_TIMEOUT):
 *
 * - **Ping** (`interval`, `ping`): after `interval` ms without hearing from the peer, send a ping;
 *   anything the peer sends counts as an answer. After `missed` unanswered pings in a row the
 *   connection closes with reason `heartbeat`. Detects a peer that vanished without FIN or RST in
 *   about `interval × (missed + 1)`, through NATs and proxies that TCP keepalive never reaches.
 * - **Timeout** (`timeout`): the server-side mode of clients that ping on their own — close a
 *   connection that sends nothing for `timeout` ms, with reason `idle-timeout`.
 *
 * Pings are written from this handler towards the head, so put the encoder that turns them into
 * bytes *before* it in the pipeline. With `isPong`, pong messages are swallowed here; with
 * `isPing`/`pong`, the peer's pings are answered here and swallowed too.
 */
import { InvalidOptionError } from '../common/errors.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { type IdleStateEvent, IdleStateHandler } from './idle-state.js';

export interface HeartbeatOptions {
  /** Ping mode: ms of silence before a ping is sent. */
  readonly interval?: number;
  /** Ping mode: pings that may go unanswered in a row; the next silence closes. Default 3. */
  readonly missed?: number;
  /** Ping mode: builds a ping message (encoded by the handlers before this one). */
  readonly ping?: () => unknown;
  /** Recognises the peer's pongs, which are then not passed on. */
  readonly isPong?: (msg: unknown) => boolean;
  /** Timeout mode: close a connection that sends nothing for this many ms. */
  readonly timeout?: number;
  /** Recognises the peer's pings, answered with `pong(msg)` and not passed on. */
  readonly isPing?: (msg: unknown) => boolean;
  /** Builds the answer to a peer's ping. */
  readonly pong?: (ping: unknown) => unknown;
}

function positive(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidOptionError(name, `must be a positive number of milliseconds, got ${String(v)}`);
  }
  return v;
}

export class HeartbeatHandler extends IdleStateHandler {
  readonly mode: 'ping' | 'timeout';
  readonly missed: number;
  private unanswered = 0;
  private readonly makePing: (() => unknown) | undefined;
  private readonly isPong: ((msg: unknown) => boolean) | undefined;
  private readonly isPing: ((msg: unknown) => boolean) | undefined;
  private readonly makePong: ((ping: unknown) => unknown) | undefined;

  constructor(options: HeartbeatOptions) {
    const ping = options.interval !== undefined;
    const timeout = options.timeout !== undefined;
    if (ping === timeout) {
      throw new InvalidOptionError('heartbeat', 'give either interval (with ping) for ping mode, or timeout');
    }
    const idle = ping ? positive('interval', options.interval) : positive('timeout', options.timeout);
    super({ readerIdle: idle });
    this.mode = ping ? 'ping' : 'timeout';
    this.missed = options.missed ?? 3;
    if (!Number.isInteger(this.missed) || this.missed < 0) {
      throw new InvalidOptionError('missed', `must be a non-negative integer, got ${String(options.missed)}`);
    }
    if (ping && typeof options.ping !== 'function') {
      throw new InvalidOptionError('ping', 'ping mode needs a function that builds the ping message');
    }
    if ((options.isPing === undefined) !== (options.pong === undefined)) {
      throw new InvalidOptionError('isPing', 'isPing and pong go together');
    }
    this.makePing = options.ping;
    this.isPong = options.isPong;
    this.isPing = options.isPing;
    this.makePong = options.pong;
  }

  /** Pings sent since the peer was last heard from. */
  get unansweredPings(): number {
    return this.unanswered;
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    // Anything from the peer proves it is alive, pongs or not.
    this.unanswered = 0;
    this.markRead();
    if (this.isPong?.(msg)) return;
    if (this.isPing?.(msg)) {
      ctx.writeAndFlush((this.makePong as (ping: unknown) => unknown)(msg));
      return;
    }
    ctx.fireRead(msg);
  }

  protected override channelIdle(ctx: HandlerContext, event: IdleStateEvent): void {
    if (event.state !== 'reader-idle') return;
    if (this.mode === 'timeout') {
      ctx.close('idle-timeout');
      return;
    }
    if (this.unanswered >= this.missed) {
      ctx.close('heartbeat');
      return;
    }
    this.unanswered++;
    ctx.writeAndFlush((this.makePing as () => unknown)());
  }
}
