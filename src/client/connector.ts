/**
 * Non-blocking connect on a loop.
 *
 * socket() → connect() → EINPROGRESS → register for writability → on the event read SO_ERROR:
 * 0 means connected; anything else is why the handshake failed (connect(2): "After select(2)
 * indicates writability, use getsockopt(2) to read the SO_ERROR option … to determine whether
 * connect() completed successfully"). Refused ports answer at once with an RST; unreachable
 * networks with ICMP; a host that drops SYNs answers nothing, and the kernel would retry for
 * about two minutes (tcp_syn_retries) — `connectTimeout` cuts that short on the loop's timing
 * wheel.
 *
 * A host name is resolved first (`dns.lookup`, every address, in the resolver's order); the
 * addresses are tried one after the other until one connects — the next one on any connect
 * failure (refused, unreachable), as undici and Happy Eyeballs do, under one deadline for all.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { ChannelClosedError, ConnectTimeoutError, ReactorError, SyscallError } from '../common/errors.js';
import type { Timeout } from '../common/timing-wheel.js';
import { ECONNRESET } from '../syscalls/constants.js';
import { close as sysClose } from '../syscalls/libc.js';
import { ipFamily } from '../syscalls/sockaddr.js';
import { socketError, startConnect } from '../syscalls/socket.js';
import type { EventLoop, IoHandle } from '../worker/loop.js';
import { HANGUP, WRITABLE } from '../worker/poller.js';

/** One address a host name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to the addresses to try, in order. The default is `dns.lookup` with `all: true`. */
export type LookupFunction = (hostname: string, family: 0 | 4 | 6) => Promise<readonly ResolvedAddress[]>;

/** `dns.lookup(hostname, { all: true })` in the resolver's order (/etc/hosts, then DNS). */
export const defaultLookup: LookupFunction = async (hostname, family) => {
  const found = await dnsLookup(hostname, { all: true, family, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface ConnectRequest {
  readonly host: string;
  readonly port: number;
  /** ms for the whole attempt (resolution and every address); 0: no deadline but the kernel's. */
  readonly connectTimeout: number;
  readonly family: 0 | 4 | 6;
  readonly lookup: LookupFunction;
  readonly signal?: AbortSignal | undefined;
}

/** A connected socket, not yet registered with the loop. */
export interface ConnectedSocket {
  readonly fd: number;
  /** The address that answered (of those the host resolved to). */
  readonly address: string;
}

/** Connects to `req.host:req.port` on `loop`; resolves with the connected descriptor. */
export function connectSocket(loop: EventLoop, req: ConnectRequest): Promise<ConnectedSocket> {
  return new Promise((resolve, reject) => new ConnectAttempt(loop, req, resolve, reject).begin());
}

class ConnectAttempt implements IoHandle {
  token = 0;
  fd = -1;
  private addresses: readonly ResolvedAddress[] = [];
  private next = 0;
  private current: string;
  private lastError: unknown;
  private timer: Timeout | undefined;
  private removeHook: (() => void) | undefined;
  private registered = false;
  private settled = false;

  constructor(
    private readonly loop: EventLoop,
    private readonly req: ConnectRequest,
    private readonly resolve: (s: ConnectedSocket) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.current = req.host;
  }

  begin(): void {
    const { signal, connectTimeout, host } = this.req;
    if (signal?.aborted) {
      this.reject(signal.reason);
      return;
    }
    if (connectTimeout > 0) {
      this.timer = this.loop.timers.schedule(connectTimeout, () =>
        this.fail(new ConnectTimeoutError(this.current, this.req.port, connectTimeout)),
      );
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    // A loop closing under a connect in progress (its server stopped) ends the attempt.
    this.removeHook = this.loop.onClose(() => this.fail(new ChannelClosedError('the loop closed while connecting')));
    const family = ipFamily(host);
    if (family !== 0) {
      this.addresses = [{ address: host, family }];
      this.tryNext();
      return;
    }
    this.req.lookup(host, this.req.family).then(
      (found) => {
        if (this.settled) return;
        if (found.length === 0) {
          this.fail(new ReactorError('ENOTFOUND', `${host} resolved to no address`));
          return;
        }
        this.addresses = found;
        this.tryNext();
      },
      (err: unknown) => this.fail(err),
    );
  }

  private readonly onAbort = (): void => {
    this.fail(this.req.signal?.reason);
  };

  /** Starts connecting to the next address, or fails with the last error when none is left. */
  private tryNext(): void {
    while (!this.settled) {
      const a = this.addresses[this.next++];
      if (a === undefined) {
        this.fail(this.lastError);
        return;
      }
      this.current = a.address;
      let started: { fd: number; pending: boolean };
      try {
        started = startConnect(a.address, this.req.port);
      } catch (err) {
        // connect() failed at once (ENETUNREACH, EADDRNOTAVAIL …): try the next address. A
        // failing socket() (EMFILE) is local: no other address will do better.
        if (err instanceof SyscallError && err.syscall === 'connect') {
          this.lastError = err;
          continue;
        }
        this.fail(err);
        return;
      }
      this.fd = started.fd;
      if (!started.pending) {
        this.succeed();
        return;
      }
      const r = this.loop.register(this, WRITABLE);
      if (r < 0) {
        this.fail(new SyscallError('epoll_ctl', -r));
        return;
      }
      this.registered = true;
      return;
    }
  }

  onIoEvent(events: number): void {
    if (this.settled) return;
    let err = socketError(this.fd);
    if (err < 0) err = -err; // getsockopt itself failed
    // Writable with no pending error is a completed handshake. A hang-up without an error
    // (never seen, but not excluded by the man pages) is a failure all the same.
    if (err === 0 && (events & HANGUP) !== 0) err = ECONNRESET;
    if (err === 0) {
      this.loop.deregister(this, false);
      this.registered = false;
      this.succeed();
      return;
    }
    this.dropSocket();
    this.lastError = new SyscallError('connect', err, { address: this.current, port: this.req.port });
    this.tryNext();
  }

  private succeed(): void {
    const fd = this.fd;
    this.fd = -1; // handed over
    this.cleanup();
    this.resolve({ fd, address: this.current });
  }

  private fail(err: unknown): void {
    if (this.settled) return;
    this.dropSocket();
    this.cleanup();
    this.reject(err);
  }

  private dropSocket(): void {
    if (this.fd < 0) return;
    if (this.registered) this.loop.deregister(this, true);
    this.registered = false;
    sysClose(this.fd);
    this.fd = -1;
  }

  private cleanup(): void {
    this.settled = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.req.signal?.removeEventListener('abort', this.onAbort);
    this.removeHook?.();
    this.removeHook = undefined;
  }
}
