/**
 * Connection and loop options: one sentence each, a default for every one, and validation that
 * names the option — a bad value fails `listen()`, it never becomes a silent default.
 */
import { InvalidOptionError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { bool, describeValue, intOption, type OptionKeys, oneOf } from '../common/options.js';
import { SOCKET_OPTIONS, type SocketOptions, validateSocketOptions } from '../syscalls/socket.js';
import type { PollerKind } from './poller.js';

/**
 * How every connection of a server (or a client) reads, writes and closes, with the TCP options of
 * {@link SocketOptions}; part of `ServerOptions` and `ClientOptions`. The watermarks give
 * backpressure: above `highWaterMark` queued bytes the channel turns unwritable and stops reading
 * until the peer has taken down to `lowWaterMark`, so a slow reader cannot make the worker buffer
 * without bound. Checked when the server or client is built (`InvalidOptionError`).
 */
export interface ConnectionOptions extends SocketOptions {
  /** Keep a connection open after the peer's FIN so the pipeline can still write. Default false. */
  readonly allowHalfOpen?: boolean;
  /** Queued outbound bytes above which the channel turns unwritable and reading pauses. Default 64 KiB. */
  readonly highWaterMark?: number;
  /** Queued bytes at or below which it turns writable again and reading resumes. Default 32 KiB. */
  readonly lowWaterMark?: number;
  /** Bytes read from one connection per wake-up before others get their turn. Default 256 KiB. */
  readonly maxReadPerWakeup?: number;
  /** Smallest read size the adaptive sizing shrinks to. Default 64 B. */
  readonly minReadSize?: number;
  /** First read size of a connection. Default 2 KiB. */
  readonly initialReadSize?: number;
  /** Largest read size (and the size of the loop's shared read buffer). Default 64 KiB. */
  readonly maxReadSize?: number;
  /** How long a graceful close waits for queued bytes to drain before it aborts, in ms. Default 30 000. */
  readonly closeTimeout?: number;
  /**
   * A `DecoderError` nobody handled (a too-long frame, an invalid JSON line): `'continue'` keeps
   * the connection — the decoder has skipped the bad input — and counts it; `'close'` closes it as
   * a protocol error. Default `'continue'`, as Netty's decoders do.
   */
  readonly decoderErrors?: 'continue' | 'close';
  /**
   * Lingering close: after a graceful close has flushed, send FIN and read (discarding) for up to
   * this many ms until the peer's FIN, so that unread input does not turn our close into an RST
   * that destroys the last answer. 0 closes at once. Default 5 000 (nginx's lingering_timeout).
   */
  readonly lingerTimeout?: number;
}

/** How a loop polls and keeps time; part of `ServerOptions`, and what `new EventLoop()` takes. */
export interface LoopOptions {
  /** Readiness backend. Default `'epoll'`; `'poll'` is the portable fallback. */
  readonly poller?: PollerKind;
  /** Level- or edge-triggered readiness for connections (listeners are always level). Default `'level'`. */
  readonly trigger?: 'level' | 'edge';
  /** Events fetched per epoll_wait. Default 1024. */
  readonly maxEventsPerWait?: number;
  /**
   * epoll_wait calls per wake-up from Node's loop: after a batch of two or more events the loop
   * asks epoll again, at most this many calls, before it hands back to libuv (timers, IPC,
   * promise jobs). 1: one batch per wake-up. Default 8. epoll only.
   */
  readonly maxWaitsPerWakeup?: number;
  /** Timing wheel tick in ms. Default 20. */
  readonly timerTickMs?: number;
  /** Where the loop logs. Default: stderr with the pid. */
  readonly logger?: Logger;
}

/** The keys of `ConnectionOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const CONNECTION_OPTIONS = {
  ...SOCKET_OPTIONS,
  allowHalfOpen: true,
  highWaterMark: true,
  lowWaterMark: true,
  maxReadPerWakeup: true,
  minReadSize: true,
  initialReadSize: true,
  maxReadSize: true,
  closeTimeout: true,
  decoderErrors: true,
  lingerTimeout: true,
} as const satisfies OptionKeys<ConnectionOptions>;

/** The keys of `LoopOptions`. */
export const LOOP_OPTIONS = {
  poller: true,
  trigger: true,
  maxEventsPerWait: true,
  maxWaitsPerWakeup: true,
  timerTickMs: true,
  logger: true,
} as const satisfies OptionKeys<LoopOptions>;

export interface ResolvedConnectionOptions {
  readonly allowHalfOpen: boolean;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  readonly maxReadPerWakeup: number;
  readonly minReadSize: number;
  readonly initialReadSize: number;
  readonly maxReadSize: number;
  readonly closeTimeout: number;
  readonly decoderErrors: 'continue' | 'close';
  readonly lingerTimeout: number;
  readonly socket: SocketOptions;
  /**
   * @internal The read sizes a connection adapts between, ascending: from initialReadSize doubling
   * up to maxReadSize and halving down to minReadSize (at most 22). A connection keeps an index into
   * it in its state bits rather than a size of its own (Netty's AdaptiveRecvByteBufAllocator keeps a
   * table too): up two steps (×4) after a read that filled its size, down one (÷2) after two in a row
   * that filled at most half.
   */
  readonly readSizes: readonly number[];
  /** @internal The index of initialReadSize in `readSizes`. */
  readonly initialReadIndex: number;
}

/** The read sizes of `readSizes` (see there), and where initialReadSize is among them. */
function readSizeTable(min: number, initial: number, max: number): { sizes: number[]; initialIndex: number } {
  const below: number[] = [];
  for (let w = initial; w > min; ) {
    w = Math.max(w >>> 1, min);
    below.push(w);
  }
  const above: number[] = [];
  for (let w = initial; w < max; ) {
    w = Math.min(w * 2, max);
    above.push(w);
  }
  return { sizes: [...below.reverse(), initial, ...above], initialIndex: below.length };
}

/**
 * Checks and resolves the connection options in `o`, which may be a larger options object: its
 * keys are checked by the caller (`owner`, named in errors about nested keys).
 */
export function resolveConnectionOptions(
  o: ConnectionOptions = {},
  owner = 'connection options',
): ResolvedConnectionOptions {
  validateSocketOptions(o, '', owner);
  const highWaterMark = intOption('highWaterMark', o.highWaterMark ?? 64 * 1024, 1);
  const lowWaterMark = intOption('lowWaterMark', o.lowWaterMark ?? Math.min(32 * 1024, highWaterMark), 0);
  if (lowWaterMark > highWaterMark) {
    throw new InvalidOptionError(
      'lowWaterMark',
      `must not exceed highWaterMark (${highWaterMark}), got ${lowWaterMark}`,
    );
  }
  const maxReadSize = intOption('maxReadSize', o.maxReadSize ?? 64 * 1024, 64, 16 * 1024 * 1024);
  const minReadSize = intOption('minReadSize', o.minReadSize ?? Math.min(64, maxReadSize), 16, maxReadSize);
  const initialReadSize = intOption(
    'initialReadSize',
    o.initialReadSize ?? Math.min(Math.max(2048, minReadSize), maxReadSize),
    minReadSize,
    maxReadSize,
  );
  const table = readSizeTable(minReadSize, initialReadSize, maxReadSize);
  return {
    allowHalfOpen: bool('allowHalfOpen', o.allowHalfOpen, false),
    highWaterMark,
    lowWaterMark,
    maxReadPerWakeup: intOption('maxReadPerWakeup', o.maxReadPerWakeup ?? 256 * 1024, 1),
    minReadSize,
    initialReadSize,
    maxReadSize,
    closeTimeout: intOption('closeTimeout', o.closeTimeout ?? 30_000, 0),
    decoderErrors: oneOf('decoderErrors', o.decoderErrors, ['continue', 'close'], 'continue'),
    lingerTimeout: intOption('lingerTimeout', o.lingerTimeout ?? 5000, 0),
    socket: {
      noDelay: o.noDelay ?? true,
      ...(o.keepAlive !== undefined ? { keepAlive: o.keepAlive } : {}),
      ...(o.userTimeout !== undefined ? { userTimeout: o.userTimeout } : {}),
      ...(o.sendBufferSize !== undefined ? { sendBufferSize: o.sendBufferSize } : {}),
      ...(o.receiveBufferSize !== undefined ? { receiveBufferSize: o.receiveBufferSize } : {}),
    },
    readSizes: table.sizes,
    initialReadIndex: table.initialIndex,
  };
}

export interface ResolvedLoopOptions {
  readonly poller: PollerKind;
  readonly trigger: 'level' | 'edge';
  readonly maxEventsPerWait: number;
  readonly maxWaitsPerWakeup: number;
  readonly timerTickMs: number;
}

export function resolveLoopOptions(o: LoopOptions = {}): ResolvedLoopOptions {
  const logger: unknown = o.logger;
  if (
    logger !== undefined &&
    (logger === null ||
      typeof logger !== 'object' ||
      !['debug', 'info', 'warn', 'error'].every((m) => typeof (logger as Record<string, unknown>)[m] === 'function'))
  ) {
    throw new InvalidOptionError(
      'logger',
      `must have debug, info, warn and error methods, got ${describeValue(logger)}`,
    );
  }
  return {
    poller: oneOf('poller', o.poller, ['epoll', 'poll'], 'epoll'),
    trigger: oneOf('trigger', o.trigger, ['level', 'edge'], 'level'),
    maxEventsPerWait: intOption('maxEventsPerWait', o.maxEventsPerWait ?? 1024, 1, 65536),
    maxWaitsPerWakeup: intOption('maxWaitsPerWakeup', o.maxWaitsPerWakeup ?? 8, 1, 1024),
    timerTickMs: intOption('timerTickMs', o.timerTickMs ?? 20, 1, 1000),
  };
}
