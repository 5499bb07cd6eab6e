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
import { checkOptions, fnOption, intOption, type OptionKeys, SharedResolutions } from '../common/options.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { IdleConfig, type IdleStateEvent, IdleStateHandler, idlePeriod, MAX_COUNTER } from './idle-state.js';

/**
 * One of two modes, checked in the constructor (`InvalidOptionError`): ping mode (`interval` and
 * `ping`, optionally `missed` and `isPong`) or timeout mode (`timeout`). `isPing` with `pong`
 * answers the peer's own pings in either mode.
 */
export interface HeartbeatOptions {
  /** Ping mode: ms of silence before a ping is sent. */
  readonly interval?: number;
  /** Ping mode: pings that may go unanswered in a row; the next silence closes. Default 3; at most 4,194,302. */
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

/** Resolved heartbeat options (reader-idle after the interval or timeout), shared like the idle ones. */
class HeartbeatConfig extends IdleConfig {
  constructor(
    idle: number,
    readonly mode: 'ping' | 'timeout',
    readonly missed: number,
    readonly makePing: (() => unknown) | undefined,
    readonly isPong: ((msg: unknown) => boolean) | undefined,
    readonly isPing: ((msg: unknown) => boolean) | undefined,
    readonly makePong: ((ping: unknown) => unknown) | undefined,
  ) {
    super(idle, 0, 0, false);
  }
}

const HEARTBEAT_CONFIGS = new SharedResolutions<HeartbeatOptions, HeartbeatConfig>((options) => {
  if (options === undefined) {
    throw new InvalidOptionError('heartbeat', 'give either interval (with ping) for ping mode, or timeout');
  }
  checkOptions('HeartbeatHandler', options, HEARTBEAT_OPTIONS);
  const ping = options.interval !== undefined;
  const timeout = options.timeout !== undefined;
  if (ping === timeout) {
    throw new InvalidOptionError('heartbeat', 'give either interval (with ping) for ping mode, or timeout');
  }
  const idle = ping ? idlePeriod('interval', options.interval, true) : idlePeriod('timeout', options.timeout, true);
  // The count of unanswered pings lives in the idle handler's flags (`counter`).
  const missed = intOption('missed', options.missed ?? 3, 0, MAX_COUNTER - 1);
  if (ping && typeof options.ping !== 'function') {
    throw new InvalidOptionError('ping', 'ping mode needs a function that builds the ping message');
  }
  if ((options.isPing === undefined) !== (options.pong === undefined)) {
    throw new InvalidOptionError('isPing', 'isPing and pong go together');
  }
  return new HeartbeatConfig(
    idle,
    ping ? 'ping' : 'timeout',
    missed,
    fnOption('ping', options.ping),
    fnOption('isPong', options.isPong),
    fnOption('isPing', options.isPing),
    fnOption('pong', options.pong),
  );
});

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
 *
 * Its options are resolved once and shared by every handler built from equal options:
 * a connection keeps only its own state (when it last read, pings unanswered).
 */
export class HeartbeatHandler extends IdleStateHandler {
  constructor(options: HeartbeatOptions) {
    super(HEARTBEAT_CONFIGS.get(options));
  }

  private get hb(): HeartbeatConfig {
    return this.cfg as HeartbeatConfig;
  }

  get mode(): 'ping' | 'timeout' {
    return this.hb.mode;
  }

  get missed(): number {
    return this.hb.missed;
  }

  /** Pings sent since the peer was last heard from. */
  get unansweredPings(): number {
    return this.counter;
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    // Anything from the peer proves it is alive, pongs or not.
    if (this.counter !== 0) this.counter = 0;
    this.markRead();
    const hb = this.hb;
    if (hb.isPong?.(msg)) return;
    if (hb.isPing?.(msg)) {
      ctx.writeAndFlush((hb.makePong as (ping: unknown) => unknown)(msg));
      return;
    }
    ctx.fireRead(msg);
  }

  protected override channelIdle(ctx: HandlerContext, event: IdleStateEvent): void {
    if (event.state !== 'reader-idle') return;
    const hb = this.hb;
    if (hb.mode === 'timeout') {
      ctx.close('idle-timeout');
      return;
    }
    const unanswered = this.counter;
    if (unanswered >= hb.missed) {
      ctx.close('heartbeat');
      return;
    }
    this.counter = unanswered + 1;
    ctx.writeAndFlush((hb.makePing as () => unknown)());
  }
}
