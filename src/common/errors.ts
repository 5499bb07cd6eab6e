/**
 * Error classes. Every error carries a stable `code` that users match on (as with Node's own
 * errors and undici's); messages are for people and may change. The list lives in docs/errors.md.
 */
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { CloseReason } from './close-reason.js';

/** Base class of every error this framework raises on purpose. */
export class ReactorError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReactorError';
    this.code = code;
  }
}

// errno → [name, description]. Names come from os.constants.errno (the kernel's errnos only);
// util.getSystemErrorMap() also holds libuv's own codes (-4095 is "EOF"), so it is used only for
// the description of a name both agree on.
let errnoNames: Map<number, [string, string]> | undefined;

function describeErrno(errno: number): [string, string] {
  if (errnoNames === undefined) {
    errnoNames = new Map();
    const uv = getSystemErrorMap();
    for (const [name, value] of Object.entries(osConstants.errno)) {
      if (errnoNames.has(value)) continue; // EWOULDBLOCK aliases EAGAIN: keep the first name
      const known = uv.get(-value);
      errnoNames.set(value, [name, known !== undefined && known[0] === name ? known[1] : 'system error']);
    }
  }
  const positive = Math.abs(errno);
  return errnoNames.get(positive) ?? [`E${positive}`, 'Unknown system error'];
}

/** The symbolic name of an errno value: `errnoName(104) === 'ECONNRESET'`. */
export function errnoName(errno: number): string {
  return describeErrno(errno)[0];
}

/**
 * A failed system call that reaches user code. Shaped like Node's system errors:
 * `syscall`, `errno` (positive, as in C), `code` (`'ECONNRESET'`).
 *
 * The hot path never builds one for `EAGAIN` or `EINTR`: wrappers return `-errno` and the
 * caller branches on the number; only failures a user must hear about become objects.
 */
export class SyscallError extends ReactorError {
  readonly syscall: string;
  readonly errno: number;
  /** The address involved (connect, bind), when there is one. */
  readonly address: string | undefined;
  readonly port: number | undefined;

  constructor(syscall: string, errno: number, where?: { address?: string; port?: number }) {
    const positive = Math.abs(errno);
    const [name, description] = describeErrno(positive);
    const target =
      where?.address === undefined ? '' : ` ${where.address}${where.port === undefined ? '' : `:${where.port}`}`;
    super(name, `${syscall}(..) failed with error(-${positive}): ${description} (${name})${target}`);
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = positive;
    this.address = where?.address;
    this.port = where?.port;
  }
}

/** The platform cannot run the native loop (not Linux, or an architecture without a layout table). */
export class UnsupportedPlatformError extends ReactorError {
  constructor(message: string) {
    super('ERR_UNSUPPORTED_PLATFORM', message);
    this.name = 'UnsupportedPlatformError';
  }
}

/**
 * A bad option — a value out of range or of the wrong type, or a key that names no option —
 * raised where the options are taken (`listen()`, `connect()`, a handler's constructor, a
 * pipeline factory), before anything is opened.
 */
export class InvalidOptionError extends ReactorError {
  /** The option at fault, as a path for a nested one (`keepAlive.idle`). */
  readonly option: string;

  /**
   * The message reads `option NAME: MESSAGE`; with `standalone`, just MESSAGE (which then names
   * the option itself, as "unknown option 'prot' (did you mean 'port'?)" does).
   */
  constructor(option: string, message: string, options?: { cause?: unknown; standalone?: boolean }) {
    super(
      'ERR_INVALID_OPTION',
      options?.standalone === true ? message : `option ${option}: ${message}`,
      options !== undefined && 'cause' in options ? { cause: options.cause } : undefined,
    );
    this.name = 'InvalidOptionError';
    this.option = option;
  }
}

/**
 * A decoder saw input that breaks the protocol (a malformed frame, invalid JSON, a bad request).
 * `offset`, when known, is the position in the connection's byte stream where the bad input starts.
 */
export class DecoderError extends ReactorError {
  readonly offset: number | undefined;

  constructor(message: string, options?: { cause?: unknown; code?: string; offset?: number }) {
    super(options?.code ?? 'ERR_DECODER', message, options);
    this.name = 'DecoderError';
    this.offset = options?.offset;
  }
}

/**
 * A frame longer than the decoder's limit. `length` is the length the decoder saw (or, when the
 * frame had no end yet, the bytes it had seen so far); `maxLength` the configured limit.
 */
export class TooLongFrameError extends DecoderError {
  readonly length: number;
  readonly maxLength: number;

  constructor(length: number, maxLength: number, detail = 'frame', offset?: number) {
    super(
      `${detail} length ${length} exceeds the maximum of ${maxLength}${offset === undefined ? '' : ` (at byte ${offset} of the stream)`}`,
      offset === undefined ? { code: 'ERR_TOO_LONG_FRAME' } : { code: 'ERR_TOO_LONG_FRAME', offset },
    );
    this.name = 'TooLongFrameError';
    this.length = length;
    this.maxLength = maxLength;
  }
}

/** A frame whose header makes no sense (negative length, length shorter than its own header). */
export class CorruptedFrameError extends DecoderError {
  constructor(message: string) {
    super(message, { code: 'ERR_CORRUPTED_FRAME' });
    this.name = 'CorruptedFrameError';
  }
}

/** A peer broke the application protocol in a way the pipeline reports and closes on. */
export class ProtocolError extends ReactorError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'ERR_PROTOCOL', message, options);
    this.name = 'ProtocolError';
  }
}

/**
 * An operation on a channel that is already closed — or one that was waiting on a connection that
 * closed: `reason` then says why it closed (a request pending when the server went away carries
 * `'peer-closed'` or `'reset'`).
 */
export class ChannelClosedError extends ReactorError {
  readonly reason: CloseReason | undefined;

  constructor(message = 'channel is closed', reason?: CloseReason) {
    super('ERR_CHANNEL_CLOSED', message);
    this.name = 'ChannelClosedError';
    this.reason = reason;
  }
}

/** A pipeline head received a message it cannot put on the wire (no encoder before it). */
export class UnsupportedMessageError extends ReactorError {
  constructor(what: string) {
    super(
      'ERR_UNSUPPORTED_MESSAGE',
      `the transport writes Buffer, Uint8Array or string, got ${what}: add an encoder to the pipeline`,
    );
    this.name = 'UnsupportedMessageError';
  }
}

/** A connect did not complete within `connectTimeout` (the peer never answered the SYN). */
export class ConnectTimeoutError extends ReactorError {
  readonly address: string;
  readonly port: number;
  /** The timeout that ran out, in ms. */
  readonly timeout: number;

  constructor(address: string, port: number, timeout: number) {
    super('ERR_CONNECT_TIMEOUT', `connect to ${formatHostPort(address, port)} timed out after ${timeout} ms`);
    this.name = 'ConnectTimeoutError';
    this.address = address;
    this.port = port;
    this.timeout = timeout;
  }
}

/** A request got no reply within its timeout. A reply arriving later is dropped and counted. */
export class RequestTimeoutError extends ReactorError {
  /** The timeout that ran out, in ms. */
  readonly timeout: number;

  constructor(timeout: number) {
    super('ERR_REQUEST_TIMEOUT', `no reply within ${timeout} ms`);
    this.name = 'RequestTimeoutError';
    this.timeout = timeout;
  }
}

/** A bounded queue of requests (pending on a connection, or waiting in a pool) is full. */
export class TooManyPendingError extends ReactorError {
  /** The bound that was reached. */
  readonly limit: number;

  constructor(what: string, limit: number) {
    super('ERR_TOO_MANY_PENDING', `${what}: the limit of ${limit} is reached`);
    this.name = 'TooManyPendingError';
    this.limit = limit;
  }
}

/** The pool was closed: the request was refused, or was still waiting or unanswered. */
export class PoolClosedError extends ReactorError {
  constructor(message = 'the pool is closed') {
    super('ERR_POOL_CLOSED', message);
    this.name = 'PoolClosedError';
  }
}

/**
 * An error on one line, for logs that must not print a stack per event: its name, code, message
 * and the place it was thrown (`TypeError: x is not a function (at initChannel (file:///app.js:12:5))`).
 */
export function errorLine(err: unknown): string {
  if (!(err instanceof Error)) return String(err).replace(/\s*\n\s*/g, ' ');
  const code = (err as { code?: unknown }).code;
  const head = `${err.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${err.message}`;
  const frame = /\n\s+at (.+)/.exec(err.stack ?? '')?.[1];
  return `${head}${frame === undefined ? '' : ` (at ${frame})`}`.replace(/\s*\n\s*/g, ' ');
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
