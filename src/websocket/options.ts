/**
 * WebSocket options shared by the server (`websocket()`, and the HTTP route) and the client: one
 * sentence each, a default for every one, checked when the factory is built.
 */
import { InvalidOptionError } from '../common/errors.js';
import { DeflateConfig, type PerMessageDeflateOptions } from './deflate.js';

/** What `send()` does when the connection's outbound queue is above its high watermark. */
export type BackpressurePolicy = 'drop' | 'close' | 'wait';

/**
 * `WebSocketOptions.heartbeat`: ping after `interval` ms of silence from the peer (any byte
 * counts as life); when `missed` pings in a row found it still silent, abort the connection
 * (reason `heartbeat`, `onClose` gets 1006). Pings are control frames every conforming peer —
 * browsers too — answers by itself.
 */
export interface WebSocketHeartbeatOptions {
  /** ms of silence from the peer before a ping is sent. */
  readonly interval: number;
  /** Pings that may go unanswered in a row; the next silence closes (reason `heartbeat`). Default 2. */
  readonly missed?: number;
}

/**
 * The options of every WebSocket — server ({@link websocket}, {@link websocketRoute}) and client
 * ({@link connectWebSocket}): limits, closing, backpressure, compression, liveness. Checked once
 * when the factory is built (`InvalidOptionError`) and shared by its connections.
 */
export interface WebSocketOptions {
  /** Largest frame payload accepted, in bytes; more → close 1009. Default 16 MiB. */
  readonly maxPayload?: number;
  /** Largest message, after joining its frames and after inflation; more → close 1009. Default 16 MiB. */
  readonly maxMessageSize?: number;
  /** ms to wait for the peer's close frame after sending ours, then close the connection. Default 5 000. */
  readonly closeTimeout?: number;
  /**
   * `send()` while more than the high watermark is queued for this peer: `'drop'` the message
   * (`send` returns false), `'close'` the connection (1008), or `'wait'`: queue it anyway (`send`
   * returns false; wait for `onDrain`) up to `maxBufferedAmount` more bytes, beyond which the
   * connection closes. Default `'wait'`.
   */
  readonly backpressure?: BackpressurePolicy;
  /**
   * With `backpressure: 'wait'`: bytes of messages sent while above the high watermark beyond
   * which a send closes the connection (1008). Default 4 MiB.
   */
  readonly maxBufferedAmount?: number;
  /** permessage-deflate (RFC 7692): false (default), true, or its parameters. */
  readonly perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Ping the peer after `interval` ms of silence; close when `missed` pings in a row go unanswered. Default: off. */
  readonly heartbeat?: WebSocketHeartbeatOptions;
  /** Close a connection whose peer sends nothing for this many ms (1001, reason `idle-timeout`). Default: off. */
  readonly idleTimeout?: number;
  /**
   * true (default): a message is memory the application may keep. false: a message that came whole
   * in one read is unmasked where it lies and lent to `onMessage` for the call only (uWebSockets.js'
   * semantics) — no copy and no allocation per read; copy (`Buffer.from(data)`) what you keep.
   */
  readonly copyMessages?: boolean;
}

/** The checked options, shared by every connection of one server (or client). */
export class WebSocketConfig {
  readonly maxPayload: number;
  readonly maxMessageSize: number;
  readonly closeTimeout: number;
  readonly backpressure: BackpressurePolicy;
  readonly maxBufferedAmount: number;
  readonly deflate: DeflateConfig | undefined;
  readonly heartbeatInterval: number;
  readonly heartbeatMissed: number;
  readonly idleTimeout: number;
  readonly copyMessages: boolean;

  constructor(
    /** Client connections mask what they send and refuse masked frames (RFC 6455 §5.1). */
    readonly client: boolean,
    o: WebSocketOptions,
  ) {
    this.maxPayload = int('maxPayload', o.maxPayload, 16 * 1024 * 1024, 1, 2 ** 40);
    this.maxMessageSize = int('maxMessageSize', o.maxMessageSize, 16 * 1024 * 1024, 1, 2 ** 40);
    this.closeTimeout = int('closeTimeout', o.closeTimeout, 5000, 1, 2 ** 31 - 1);
    const bp = o.backpressure ?? 'wait';
    if (bp !== 'drop' && bp !== 'close' && bp !== 'wait') {
      throw new InvalidOptionError('backpressure', `must be 'drop', 'close' or 'wait', got ${String(bp)}`);
    }
    this.backpressure = bp;
    this.maxBufferedAmount = int('maxBufferedAmount', o.maxBufferedAmount, 4 * 1024 * 1024, 1, 2 ** 40);
    const d = o.perMessageDeflate ?? false;
    if (typeof d === 'boolean') this.deflate = d ? new DeflateConfig(true) : undefined;
    else this.deflate = new DeflateConfig(d);
    const hb = o.heartbeat;
    if (hb !== undefined) {
      if (hb === null || typeof hb !== 'object')
        throw new InvalidOptionError('heartbeat', 'must be { interval, missed? }');
      for (const k of Object.keys(hb)) {
        if (k !== 'interval' && k !== 'missed') throw new InvalidOptionError(`heartbeat.${k}`, 'is not a known option');
      }
      this.heartbeatInterval = int('heartbeat.interval', hb.interval, 0, 1, 2 ** 31 - 1);
      if (hb.interval === undefined) throw new InvalidOptionError('heartbeat.interval', 'is required');
      this.heartbeatMissed = int('heartbeat.missed', hb.missed, 2, 0, 1000);
    } else {
      this.heartbeatInterval = 0;
      this.heartbeatMissed = 0;
    }
    this.idleTimeout = int('idleTimeout', o.idleTimeout, 0, 0, 2 ** 31 - 1);
    const copy = o.copyMessages ?? true;
    if (typeof copy !== 'boolean')
      throw new InvalidOptionError('copyMessages', `must be a boolean, got ${String(copy)}`);
    this.copyMessages = copy;
  }
}

/** The keys of `WebSocketOptions`, for the factories' unknown-key checks. */
export const WEBSOCKET_OPTION_KEYS: readonly string[] = [
  'maxPayload',
  'maxMessageSize',
  'closeTimeout',
  'backpressure',
  'maxBufferedAmount',
  'perMessageDeflate',
  'heartbeat',
  'idleTimeout',
  'copyMessages',
];

/** Throws `InvalidOptionError` for a key of `o` that is not in `known`. */
export function rejectUnknown(o: object, known: readonly string[], prefix = ''): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new InvalidOptionError(`${prefix}${k}`, 'is not a known option');
  }
}

function int(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(name, `must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}
