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
import { checkOptions, fnOption, intOption, msOption, type OptionKeys } from '../common/options.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { type IdleStateEvent, IdleStateHandler } from './idle-state.js';

/**
 * One of two modes, checked in the constructor (`InvalidOptionError`): ping mode (`interval` and
 * `ping`, optionally `missed` and `isPong`) or timeout mode (`timeout`). `isPing` with `pong`
 * answers the peer's own pings in either mode.
 */
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

/** The keys of `HeartbeatOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const HEARTBEAT_OPTIONS = {
  interval: true,
  missed: true,
  ping: true,
  isPong: true,
  timeout: true,
  isPing: true,
  pong: true,
} as const satisfies OptionKeys<HeartbeatOptions>;

/**
 * Application-level liveness: finds a peer that vanished without FIN or RST — through NATs and
 * proxies that TCP keepalive never reaches — and closes its connection (docs/heartbeat.md
 * compares it with TCP keepalive and `userTimeout`).
 *
 * - Ping mode (`interval`, `ping`): after `interval` ms without hearing from the peer it writes
 *   `ping()`; anything the peer sends counts as the answer. After `missed` unanswered pings in a
 *   row the next silence closes the connection with reason `heartbeat`: a dead peer is found in
 *   about `interval × (missed + 1)`.
 * - Timeout mode (`timeout`), for servers whose clients ping on their own: a connection silent for
 *   `timeout` ms is closed with reason `idle-timeout`.
 *
 * Pings are written from this handler towards the head: put the encoder that turns them into
 * bytes before it. Pongs (`isPong`) and answered pings (`isPing`) are swallowed here; every other
 * message is passed on. It runs on the channel's timing wheel, costing nothing per message.
 *
 * @example
 * ```ts
 * import { HeartbeatHandler, JsonLinesDecoder, JsonLinesEncoder, Pipeline } from 'multireactor';
 *
 * class App extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast('decoder', new JsonLinesDecoder())
 *       .addLast('encoder', new JsonLinesEncoder()) // before the heartbeat: it encodes the pings
 *       .addLast(
 *         'heartbeat',
 *         new HeartbeatHandler({
 *           interval: 30_000,
 *           missed: 2,
 *           ping: () => ({ op: 'ping' }),
 *           isPong: (msg) => (msg as { op?: unknown }).op === 'pong',
 *         }),
 *       );
 *   }
 * }
 * ```
 */
export class HeartbeatHandler extends IdleStateHandler {
  readonly mode: 'ping' | 'timeout';
  readonly missed: number;
  private unanswered = 0;
  private readonly makePing: (() => unknown) | undefined;
  private readonly isPong: ((msg: unknown) => boolean) | undefined;
  private readonly isPing: ((msg: unknown) => boolean) | undefined;
  private readonly makePong: ((ping: unknown) => unknown) | undefined;

  constructor(options: HeartbeatOptions) {
    if (options === undefined) {
      throw new InvalidOptionError('heartbeat', 'give either interval (with ping) for ping mode, or timeout');
    }
    checkOptions('HeartbeatHandler', options, HEARTBEAT_OPTIONS);
    const ping = options.interval !== undefined;
    const timeout = options.timeout !== undefined;
    if (ping === timeout) {
      throw new InvalidOptionError('heartbeat', 'give either interval (with ping) for ping mode, or timeout');
    }
    const idle = ping ? msOption('interval', options.interval, true) : msOption('timeout', options.timeout, true);
    super({ readerIdle: idle });
    this.mode = ping ? 'ping' : 'timeout';
    this.missed = intOption('missed', options.missed ?? 3, 0);
    if (ping && typeof options.ping !== 'function') {
      throw new InvalidOptionError('ping', 'ping mode needs a function that builds the ping message');
    }
    if ((options.isPing === undefined) !== (options.pong === undefined)) {
      throw new InvalidOptionError('isPing', 'isPing and pong go together');
    }
    this.makePing = fnOption('ping', options.ping);
    this.isPong = fnOption('isPong', options.isPong);
    this.isPing = fnOption('isPing', options.isPing);
    this.makePong = fnOption('pong', options.pong);
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
