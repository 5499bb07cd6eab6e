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
  /**
   * The peer's address as the application should see it: the client's as a PROXY protocol header
   * reported it (`setProxiedAddresses`), else the socket's peer (`socketRemoteAddress`). Readable
   * for the connection's whole life, also in `onInactive` and after.
   */
  readonly remoteAddress: SocketAddress | undefined;
  /** Our address as the application should see it: the proxied one when reported, else the socket's. */
  readonly localAddress: SocketAddress | undefined;
  /**
   * The socket's own peer — the proxy or load balancer, behind one — whatever a PROXY header said.
   * Captured when the connection was accepted (or connected): known for the connection's whole life.
   */
  readonly socketRemoteAddress: SocketAddress | undefined;
  /**
   * The socket's own address: the listener's when it is bound to one address; on a wildcard
   * listener (`::`, `0.0.0.0`) and for client connections looked up (getsockname) on first use and
   * remembered — read it while the connection is open if you need it after it closed.
   */
  readonly socketLocalAddress: SocketAddress | undefined;
  /**
   * What a stage before the application reported about the connection's real endpoints (the PROXY
   * protocol decoder puts its `ProxyHeader` here, TLVs included); undefined when none did.
   */
  readonly proxied: ProxiedAddresses | undefined;
  /**
   * Reports endpoints other than the socket's: from now on `remoteAddress` / `localAddress` return
   * `proxied.remote` / `proxied.local` where they are given (the socket's where not), and
   * `proxied` returns this object. For a stage that learnt the real client from the bytes — the
   * PROXY protocol decoder; a handler trusting `X-Forwarded-For` from its own proxies. Only ever
   * from a trusted source: whatever is set here is what logs and access checks will believe.
   * Throws `TypeError` for an address that is not `{ address, family, port }`.
   */
  setProxiedAddresses(proxied: ProxiedAddresses): void;
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
 * The real endpoints of a connection that reached us through a proxy (`Channel.setProxiedAddresses`).
 * A missing address means "the socket's": a PROXY v2 `LOCAL` header (a health check), `UNKNOWN`,
 * or an AF_UNIX client keep the socket's addresses.
 */
export interface ProxiedAddresses {
  /** The original client. */
  readonly remote?: SocketAddress | undefined;
  /** The address the client connected to (the proxy's front end). */
  readonly local?: SocketAddress | undefined;
}

function checkAddress(what: string, a: unknown): void {
  if (a === undefined) return;
  const s = a as SocketAddress;
  if (
    a === null ||
    typeof a !== 'object' ||
    typeof s.address !== 'string' ||
    s.address.length === 0 ||
    (s.family !== 'IPv4' && s.family !== 'IPv6') ||
    !Number.isInteger(s.port) ||
    s.port < 0 ||
    s.port > 65535
  ) {
    throw new TypeError(`setProxiedAddresses: ${what} must be { address, family: 'IPv4' | 'IPv6', port }`);
  }
}

/** Checks what `setProxiedAddresses` was given (shared by every Channel implementation). */
export function checkProxiedAddresses(proxied: ProxiedAddresses): void {
  if (proxied === null || typeof proxied !== 'object') {
    throw new TypeError('setProxiedAddresses: expects { remote?, local? }');
  }
  checkAddress('remote', proxied.remote);
  checkAddress('local', proxied.local);
}

/**
 * What the head and the tail of a pipeline call on the connection below them. Implemented by
 * the real connection and by `EmbeddedChannel`.
 */
export interface Transport {
  /**
   * True when, once `transportFlush` (or `transportClose`) returns, the transport holds no chunk
   * written before it that is a view of part of a buffer: it has sent it, or copied what it has to
   * keep (a worker connection: src/worker/connection.ts). A stage writing straight to such a
   * transport may then rewrite the memory of its flushed views (the WebSocket encoder's slab) —
   * provided no view it wrote covers a whole buffer, which the transport takes for the writer's to
   * give away (a Buffer of its own, sent without a copy).
   */
  readonly releasesOnFlush?: boolean;
  transportWrite(msg: unknown): void;
  transportFlush(): void;
  transportClose(reason: CloseReason): void;
  transportShutdownOutput(): void;
  /** An error reached the tail with nobody handling it: log it and close. */
  unhandledError(error: unknown): void;
  /** A message reached the tail with nobody reading it. */
  unhandledMessage(msg: unknown): void;
}
