/**
 * Accepts connections from one listening socket.
 *
 * Always level-triggered: accept4() runs until EAGAIN but at most `maxAcceptsPerWakeup` times,
 * and what is left in the accept queue is reported again on the next wake-up (edge-triggered,
 * the bound would strand it). Accepted sockets are non-blocking and close-on-exec from birth
 * (accept4 flags, one syscall instead of three). The same call fills in the peer's address, into
 * the acceptor's own scratch buffer: the connection keeps it packed in a few numbers, so its peer
 * stays known after the descriptor is closed, at no extra syscall (getpeername per connection).
 *
 * Running out of descriptors (EMFILE/ENFILE) or kernel memory (ENOBUFS/ENOMEM) must not spin: the
 * pending connection stays queued and level-triggered epoll would wake us again at once, forever.
 * So we stop watching the listener for `acceptBackoffMs`, log once per episode, and resume.
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { SyscallError } from '../common/errors.js';
import type { Timeout } from '../common/timing-wheel.js';
import {
  EAGAIN,
  ECONNABORTED,
  EINTR,
  EMFILE,
  ENFILE,
  ENOBUFS,
  ENOMEM,
  EPERM,
  EPROTO,
  LAYOUT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
} from '../syscalls/constants.js';
import { accept4, close as sysClose } from '../syscalls/libc.js';
import { ipFamily, parseIPv4, parseIPv6, type SocketAddress } from '../syscalls/sockaddr.js';
import { localAddress } from '../syscalls/socket.js';
import type { EventLoop, IoHandle } from './loop.js';
import { EXCLUSIVE, READABLE } from './poller.js';

export interface AcceptorOptions {
  /** accept4 calls per wake-up. Default 64. */
  readonly maxAcceptsPerWakeup?: number;
  /** Register with EPOLLEXCLUSIVE (several workers sharing one listening socket). Default false. */
  readonly exclusive?: boolean;
  /** Pause after EMFILE/ENFILE/ENOBUFS/ENOMEM, in ms. Default 100. */
  readonly acceptBackoffMs?: number;
  /** Close the listening socket with the acceptor (false when the master owns it). Default true. */
  readonly ownsFd?: boolean;
}

export class Acceptor implements IoHandle {
  token = 0;
  /** The bound address (real port after port 0). */
  readonly address: SocketAddress;
  /**
   * The local address of every connection accepted here, when the listener is bound to one
   * address (then getsockname on each would say the same); undefined on a wildcard (`::`,
   * `0.0.0.0`), where it depends on the address the client reached.
   */
  readonly connectionLocalAddress: SocketAddress | undefined;
  /** Where accept4 writes the peer's sockaddr (read by `onAccept` before the next accept). */
  private readonly peer = Buffer.alloc(LAYOUT.sockaddrStorageSize);
  private readonly peerLength = new Uint32Array(1);
  private readonly maxAccepts: number;
  private readonly exclusive: boolean;
  private readonly backoffMs: number;
  private readonly ownsFd: boolean;
  private watching = false;
  private closed = false;
  /** Held off by the owner (`hold`): nothing restarts accepting until it lets go. */
  private held = false;
  private resumeTimer: Timeout | undefined;
  private pausedSince = 0;

  constructor(
    private readonly loop: EventLoop,
    readonly fd: number,
    /** A new connection: its descriptor and the peer's sockaddr (valid during the call only). */
    private readonly onAccept: (fd: number, peer: Buffer, peerLength: number) => void,
    options: AcceptorOptions = {},
  ) {
    this.maxAccepts = options.maxAcceptsPerWakeup ?? 64;
    this.exclusive = options.exclusive ?? false;
    this.backoffMs = options.acceptBackoffMs ?? 100;
    this.ownsFd = options.ownsFd ?? true;
    this.address = localAddress(fd);
    // A Unix socket's path is every connection's local address; a wildcard IP is not.
    this.connectionLocalAddress =
      this.address.family !== 'Unix' && isWildcard(this.address.address) ? undefined : this.address;
  }

  /** Starts (or resumes) accepting. */
  start(): void {
    if (this.watching || this.closed || this.held) return;
    // EPOLLEXCLUSIVE can only be given at EPOLL_CTL_ADD (MOD fails with EINVAL), so pausing is a
    // DEL and resuming an ADD, the same for both modes.
    const r = this.loop.register(this, READABLE | (this.exclusive ? EXCLUSIVE : 0));
    if (r < 0) throw new SyscallError('epoll_ctl(ADD listener)', -r);
    this.watching = true;
  }

  /** Stops accepting; queued connections stay in the kernel's accept queue. */
  stop(): void {
    this.resumeTimer?.cancel();
    this.resumeTimer = undefined;
    if (!this.watching) return;
    this.watching = false;
    this.loop.deregister(this, false);
  }

  /**
   * Holds accepting off (true) until released (false) — the owner's reason (its connection
   * limit), which the EMFILE backoff's resume does not override. Queued connections wait in the
   * kernel meanwhile.
   */
  hold(on: boolean): void {
    if (on === this.held) return;
    this.held = on;
    if (on) {
      if (!this.watching) return;
      this.watching = false;
      this.loop.deregister(this, false);
    } else if (this.resumeTimer === undefined) {
      this.start(); // else the backoff's timer resumes
    }
  }

  /** Stops, and closes the socket when this acceptor owns it. */
  close(): void {
    if (this.closed) return;
    this.stop();
    this.closed = true;
    if (this.ownsFd) sysClose(this.fd);
  }

  onIoEvent(): void {
    const stats = this.loop.stats;
    for (let i = 0; this.watching; i++) {
      if (i === this.maxAccepts) {
        // Our share of this wake-up: the rest of the queue is reported again after Node's loop
        // ran (the poller does not ask epoll again in this wake-up).
        this.loop.yieldAfterBatch();
        return;
      }
      const fd = accept4(this.fd, SOCK_NONBLOCK | SOCK_CLOEXEC, this.peer, this.peerLength);
      if (fd >= 0) {
        stats.accepted++;
        this.onAccept(fd, this.peer, this.peerLength[0] as number);
        continue;
      }
      const errno = -fd;
      if (errno === EAGAIN) return;
      if (errno === EINTR) continue;
      stats.acceptErrors++;
      // The connection died in the queue (ECONNABORTED), or a firewall/protocol error hit it
      // (EPERM, EPROTO: accept(2) "Error handling"): skip it, the next may be fine.
      if (errno === ECONNABORTED || errno === EPROTO || errno === EPERM) continue;
      if (errno === EMFILE || errno === ENFILE || errno === ENOBUFS || errno === ENOMEM) {
        this.pause(errno);
        return;
      }
      this.loop.warnOnce(
        `accept:${errno}`,
        'accept4 failed unexpectedly; pausing accepts',
        new SyscallError('accept4', errno),
      );
      this.pause(errno);
      return;
    }
  }

  private pause(errno: number): void {
    this.loop.stats.acceptPauses++;
    if (this.pausedSince === 0) {
      this.pausedSince = performance.now();
      const e = new SyscallError('accept4', errno);
      this.loop.logger.warn(
        `${e.message}: pausing accepts on ${this.address.address}:${this.address.port} for ${this.backoffMs} ms ` +
          `(${this.loop.stats.active} connections open); queued connections wait`,
      );
    }
    this.stop();
    this.resumeTimer = this.loop.timers.schedule(this.backoffMs, () => {
      this.resumeTimer = undefined;
      this.start();
      // Try at once: if descriptors are back, the episode is over.
      this.onIoEvent();
      if (this.watching && this.resumeTimer === undefined && this.pausedSince !== 0) {
        this.loop.logger.info(
          `accepting again on ${this.address.address}:${this.address.port} after ${Math.round(performance.now() - this.pausedSince)} ms`,
        );
        this.pausedSince = 0;
      }
    });
  }
}

/** `0.0.0.0` or `::` (any all-zero address): accepted connections' local address varies. */
function isWildcard(address: string): boolean {
  const bytes = ipFamily(address) === 4 ? parseIPv4(address) : parseIPv6(address)?.bytes;
  return bytes === undefined || bytes.every((b) => b === 0);
}
