/**
 * What a handler sees of its connection, and what the pipeline's ends need from it.
 */

import type { Logger } from '../common/logger.js';
import type { Timers } from '../common/timing-wheel.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import type { EffectiveSocketOptions, SocketOptions } from '../syscalls/socket.js';
import type { CloseReason } from './handler.js';
import type { Pipeline } from './pipeline.js';

/** A connection as handlers see it (the `ctx.channel` of every handler). */
export interface Channel {
  /** Unique per process, increasing. */
  readonly id: number;
  readonly pipeline: Pipeline;
  /** The peer's address (looked up on first use), undefined once unknown. */
  readonly remoteAddress: SocketAddress | undefined;
  /** The local address (looked up on first use). */
  readonly localAddress: SocketAddress | undefined;
  /** Open (not yet closed). */
  readonly isActive: boolean;
  /** False while more than the high watermark is queued, until it drains below the low one. */
  readonly isWritable: boolean;
  /** The peer shut down its sending half (half-open; only seen with `allowHalfOpen`). */
  readonly isInputShutdown: boolean;
  /** We shut down our sending half (`shutdownOutput()` completed). */
  readonly isOutputShutdown: boolean;
  /** Bytes written by the pipeline and not yet accepted by the kernel. */
  readonly pendingWriteBytes: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** Set once the channel closed: why. */
  readonly closeReason: CloseReason | undefined;
  /** The loop's timing wheel (or an embedded channel's fake clock). */
  readonly timers: Timers;
  /**
   * The server's logger (`ServerOptions.logger`), for a stage that handles an error itself and
   * must still say so — the HTTP server stage answers a failing handler with 500 and logs it.
   */
  readonly logger: Logger;
  /**
   * Read from the socket when true (default). Set false to stop reading (the peer's data waits in
   * the kernel, and TCP flow control slows the peer down); true to resume.
   */
  autoRead: boolean;
  /**
   * Stops reading on behalf of `holder` (any object: a handler, a session) until
   * `resumeReading(holder)`. Unlike `autoRead`, holds compose: several stages may pause the same
   * connection for their own reasons (responses piling up, work in flight), each lifts only its
   * own hold, and reading resumes when none is left and `autoRead` is on. Pausing twice with the
   * same holder is one hold.
   */
  pauseReading(holder: object): void;
  /** Lifts `holder`'s hold (nothing if it holds none). */
  resumeReading(holder: object): void;
  /** Some holder paused reading (see `pauseReading`). */
  readonly isReadingPaused: boolean;

  /** Queues a message at the tail of the pipeline (see `Pipeline.write`). */
  write(msg: unknown): void;
  /** Asks every queued byte to be written (from the tail). */
  flush(): void;
  writeAndFlush(msg: unknown): void;
  /** Graceful close: flush what is queued, then close (through the pipeline's outbound handlers). */
  close(reason?: CloseReason): void;
  /** Half-close: send FIN after what is queued (shutdown(SHUT_WR)); keep reading. */
  shutdownOutput(): void;
  /** Close now; queued bytes are dropped. */
  abort(reason?: CloseReason): void;
  /**
   * Changes TCP options of this connection now (`noDelay`, `keepAlive`, `userTimeout`, buffer
   * sizes). Invalid values throw `InvalidOptionError`; a failing setsockopt throws `SyscallError`.
   */
  setSocketOptions(options: SocketOptions): void;
  /** The options as the kernel reports them (getsockopt on the socket). */
  getSocketOptions(): EffectiveSocketOptions;
  /** Counts one request in the loop's stats (`requests`), for protocols that have requests. */
  countRequest(): void;
}

/**
 * What the head and the tail of a pipeline call on the connection below them. Implemented by
 * the real connection and by `EmbeddedChannel`.
 */
export interface Transport {
  transportWrite(msg: unknown): void;
  transportFlush(): void;
  transportClose(reason: CloseReason): void;
  transportShutdownOutput(): void;
  /** An error reached the tail with nobody handling it: log it and close. */
  unhandledError(error: unknown): void;
  /** A message reached the tail with nobody reading it. */
  unhandledMessage(msg: unknown): void;
}
