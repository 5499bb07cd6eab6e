/**
 * Socket set-up built from the raw wrappers: listen sockets, options, addresses. Nothing here is
 * on the per-event path, so failures become `SyscallError`s through the one helper, `check`.
 */
import { Buffer } from 'node:buffer';
import { chmodSync, fchmodSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { InvalidOptionError, SyscallError } from '../common/errors.js';
import { checkOptions, describeValue, intOption, type OptionKeys } from '../common/options.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  EADDRINUSE,
  EAFNOSUPPORT,
  ECONNREFUSED,
  EINPROGRESS,
  EINTR,
  F_GETFL,
  F_SETFL,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  LAYOUT,
  O_NONBLOCK,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_DEFER_ACCEPT,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_NODELAY,
  TCP_USER_TIMEOUT,
} from './constants.js';
import * as sys from './libc.js';
import { decodeSockaddr, encodeSockaddr, encodeUnixSockaddr, parseIPv4, type SocketAddress } from './sockaddr.js';

/** Returns `r` when it is a success, throws `SyscallError(name, -r)` when it is `-errno`. */
export function check(name: string, r: number, where?: { address?: string; port?: number }): number {
  if (r < 0) throw new SyscallError(name, -r, where);
  return r;
}

/** Encodes an IP literal and port, resolving IPv6 zone names with if_nametoindex. */
export function sockaddrFor(host: string, port: number): Buffer {
  return encodeSockaddr(host, port, sys.ifNameToIndex);
}

/** `net.core.somaxconn`: the kernel silently caps every listen backlog to it. */
export function somaxconn(): number {
  try {
    const v = Number.parseInt(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'), 10);
    return Number.isFinite(v) && v > 0 ? v : 4096;
  } catch {
    return 4096;
  }
}

export interface ListenSocketOptions {
  readonly host: string;
  readonly port: number;
  /** listen(2) backlog; capped by somaxconn. */
  readonly backlog: number;
  /**
   * SO_REUSEPORT: several sockets on one port, the kernel spreads connections across them.
   * - `false`: not set; nothing else can bind the address while this socket listens.
   * - `true`: set before bind(2): joins the group of this user's SO_REUSEPORT sockets already
   *   listening on the address (or starts one). Only on purpose: any process of the same user can
   *   join a group this way, and a server that joins by accident silently splits the traffic.
   * - `'exclusive'`: bind(2) and listen(2) without it, so that the kernel refuses the address if
   *   any socket already listens on it (EADDRINUSE), then set it, so that sockets opened later
   *   with `true` (a master's other slots) join this one. Why that is race-free: below.
   */
  readonly reusePort: boolean | 'exclusive';
  /** IPV6_V6ONLY for `::`; false (the default) makes `::` accept IPv4 too, as Node does. */
  readonly ipv6Only?: boolean;
  /** TCP_DEFER_ACCEPT in seconds (see {@link setDeferAccept}); 0 or undefined leaves it off. */
  readonly deferAccept?: number;
}

/**
 * socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, non-blocking and close-on-exec.
 * The descriptor is closed again when any step fails.
 *
 * `reusePort: 'exclusive'` relies on the kernel's bind-conflict rule (inet_bind_conflict /
 * inet_csk_bind_conflict, net/ipv4/inet_connection_sock.c), which bind(2) runs and listen(2) runs
 * again (inet_csk_listen_start marks the socket TCP_LISTEN, then calls get_port under the port's
 * bind-bucket lock): another socket bound to an overlapping address (the same one, a wildcard, or
 * `::` dual-stack over IPv4) conflicts unless
 *   (a) both have SO_REUSEADDR and the other is not listening — sockets in TIME_WAIT, or bound and
 *       not yet listening — or
 *   (b) both have SO_REUSEPORT, with the same owner uid (or the other is in TIME_WAIT).
 * Our socket has no SO_REUSEPORT until it listens, so (b) never applies to it: a socket that
 * already listens on the address, with or without SO_REUSEPORT, whoever owns it, fails our
 * bind(2) or our listen(2) with EADDRINUSE. Two servers starting at once cannot both succeed:
 * each one's listen(2) checks under the same lock, with its own state already TCP_LISTEN, so the
 * second to take the lock sees the first listening and fails (both may fail; neither joins).
 * Only then is SO_REUSEPORT set. The kernel accepts it on a listening socket, and the next socket
 * that joins it builds the group from both (reuseport_add_sock allocates the first socket's
 * group when it has none), so a master's own slots still share the port. What stays possible is a
 * process of the same user joining our group later *on purpose*, with SO_REUSEPORT of its own:
 * the kernel has no way to close a group to its owner's other processes.
 */
export function openListenSocket(opts: ListenSocketOptions): number {
  const addr = sockaddrFor(opts.host, opts.port);
  const family = parseIPv4(opts.host) !== undefined ? AF_INET : AF_INET6;
  const fd = check('socket', sys.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT.
    check('setsockopt(SO_REUSEADDR)', sys.setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1));
    if (opts.reusePort === true) {
      check('setsockopt(SO_REUSEPORT)', sys.setsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1));
    }
    if (family === AF_INET6) {
      check('setsockopt(IPV6_V6ONLY)', sys.setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, opts.ipv6Only ? 1 : 0));
    }
    // Before listen(2): no connection reaches the queue without it.
    if (opts.deferAccept) setDeferAccept(fd, opts.deferAccept);
    const where = { address: opts.host, port: opts.port };
    check('bind', sys.bind(fd, addr), where);
    check('listen', sys.listen(fd, Math.min(opts.backlog, somaxconn())), where);
    if (opts.reusePort === 'exclusive') {
      check('setsockopt(SO_REUSEPORT)', sys.setsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1));
    }
    return fd;
  } catch (err) {
    sys.close(fd);
    throw err;
  }
}

/**
 * A listening socket for a server: `host` when given; otherwise `::` (dual-stack, IPv4 too, as
 * Node's default), falling back to `0.0.0.0` on hosts without IPv6.
 */
export function openServerSocket(opts: {
  readonly host?: string | undefined;
  readonly port: number;
  readonly backlog: number;
  readonly reusePort: boolean | 'exclusive';
  readonly ipv6Only?: boolean;
  readonly deferAccept?: number;
}): number {
  const common = {
    port: opts.port,
    backlog: opts.backlog,
    reusePort: opts.reusePort,
    ipv6Only: opts.ipv6Only ?? false,
    deferAccept: opts.deferAccept ?? 0,
  };
  if (opts.host !== undefined) return openListenSocket({ host: opts.host, ...common });
  try {
    return openListenSocket({ host: '::', ...common });
  } catch (err) {
    if (err instanceof SyscallError && err.errno === EAFNOSUPPORT)
      return openListenSocket({ host: '0.0.0.0', ...common });
    throw err;
  }
}

/**
 * TCP_DEFER_ACCEPT (tcp(7)) on a listening TCP socket, `seconds` ≥ 0 (0 turns it off): the kernel
 * keeps a connection whose handshake completed in its SYN queue until the first data arrives, so
 * accept(2) — and our worker's wake-up — happens once there is something to read. A connection that
 * sends nothing is not dropped: the kernel turns the seconds into a count of SYN-ACK retransmits
 * (`secs_to_retrans`, net/ipv4/tcp.c: 1 s, then doubling from the 1 s initial RTO, capped at
 * TCP_RTO_MAX 120 s), sends no SYN-ACK while it waits, sends one last SYN-ACK when the period ends
 * and accepts the connection when the client's ACK to it arrives (`syn_ack_recalc`,
 * net/ipv4/inet_connection_sock.c; `tcp_check_req`, net/ipv4/tcp_minisocks.c). A FIN counts as data
 * (it is accepted at once, to read end-of-file); an RST just drops the request. The option may be
 * set on a socket that already listens: the kernel reads it per arriving ACK.
 */
export function setDeferAccept(fd: number, seconds: number): void {
  check('setsockopt(TCP_DEFER_ACCEPT)', sys.setsockoptInt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, seconds));
}

/**
 * TCP_DEFER_ACCEPT as the kernel reports it, in seconds: not what was set but the length of the
 * retransmission schedule it was rounded up to (`retrans_to_secs`): 1 → 1, 2–3 → 3, 4–7 → 7,
 * 8–15 → 15, …, 64–127 → 127, then +120 s per retransmit. 0 when off.
 */
export function readDeferAccept(fd: number): number {
  return check('getsockopt(TCP_DEFER_ACCEPT)', sys.getsockoptInt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT));
}

/** A Unix domain socket listening on a path (see {@link openUnixListenSocket}). */
export interface UnixListenSocket {
  readonly fd: number;
  readonly path: string;
  /** The socket file as created (device and inode), to remove it only while it is still ours; undefined for `@abstract`. */
  readonly file: { readonly dev: number; readonly ino: number } | undefined;
  /** A socket file nobody listened on was in the way and was removed first (say so in the log). */
  readonly replacedStale: boolean;
}

/**
 * socket(AF_UNIX) + bind + listen on `path`, non-blocking and close-on-exec, closed again if a step
 * fails.
 *
 * The file's mode: bind(2) creates the file with the socket inode's mode less the umask
 * (`unix_bind_bsd`, net/unix/af_unix.c), so fchmod(2) on the socket *before* bind means the file
 * never exists with wider permissions than `mode`, not even for an instant; chmod(2) afterwards puts
 * back the bits the umask took away. Connecting needs write permission on the file (unix(7)), so
 * the mode is who may connect: 0o600 its owner, 0o660 its group too (nginx in the same group).
 *
 * A file already at `path`: if it is a socket that refuses connections (ECONNREFUSED: nobody
 * listens, what a killed server leaves behind) it is stale, removed, and bind retried once
 * (`replacedStale`); a live socket (one that accepts, or whose queue is full: EAGAIN) or any other
 * kind of file fails with EADDRINUSE — never removed.
 */
export function openUnixListenSocket(opts: {
  readonly path: string;
  readonly backlog: number;
  /** Permission bits of the socket file; undefined keeps what the umask gives. */
  readonly mode?: number | undefined;
}): UnixListenSocket {
  const addr = encodeUnixSockaddr(opts.path);
  const abstract = opts.path.startsWith('@');
  const fd = check('socket', sys.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const where = { address: opts.path };
  try {
    if (opts.mode !== undefined && !abstract) fchmodSync(fd, opts.mode);
    let replacedStale = false;
    let r = sys.bind(fd, addr);
    if (r === -EADDRINUSE && !abstract && staleUnixSocket(opts.path, addr)) {
      unlinkSync(opts.path);
      replacedStale = true;
      r = sys.bind(fd, addr);
    }
    check('bind', r, where);
    check('listen', sys.listen(fd, Math.min(opts.backlog, somaxconn())), where);
    let file: UnixListenSocket['file'];
    if (!abstract) {
      if (opts.mode !== undefined) chmodSync(opts.path, opts.mode);
      const st = lstatSync(opts.path);
      file = { dev: st.dev, ino: st.ino };
    }
    return { fd, path: opts.path, file, replacedStale };
  } catch (err) {
    sys.close(fd);
    throw err;
  }
}

/** Whether `path` is a socket file nobody listens on (connect(2) says ECONNREFUSED). */
function staleUnixSocket(path: string, addr: Buffer): boolean {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return false; // gone meanwhile: bind again fails or succeeds on its own
  }
  if (!isSocket) return false;
  const probe = sys.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  // A non-blocking connect to a Unix socket completes at once, or fails with ECONNREFUSED when
  // nothing listens, or EAGAIN when the listener's queue is full (unix(7)): only the first is stale.
  const r = sys.connect(probe, addr);
  sys.close(probe);
  return r === -ECONNREFUSED;
}

/**
 * Removes the socket file a listener created, if it is still that file (same device and inode):
 * a successor may have bound its own at the same path meanwhile (a master upgrade), and that one
 * must stay. Returns whether it removed it.
 */
export function removeUnixSocketFile(path: string, file: { readonly dev: number; readonly ino: number }): boolean {
  try {
    const st = lstatSync(path);
    if (st.dev !== file.dev || st.ino !== file.ino) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether a socket is a Unix domain socket (SO_DOMAIN, socket(7)). */
export function isUnixSocket(fd: number): boolean {
  return sys.getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN) === AF_UNIX;
}

/** A socket whose connect(2) was started: `pending` until the kernel reports writability. */
export interface ConnectingSocket {
  readonly fd: number;
  /** The handshake is under way (EINPROGRESS); false when connect() completed at once. */
  readonly pending: boolean;
}

/**
 * socket + non-blocking connect(2) to an IP literal, close-on-exec. Returns the descriptor, still
 * connecting in the usual case: connect(2) on a non-blocking socket answers EINPROGRESS and the
 * outcome is read with `socketError` once the socket turns writable. EINTR means the same
 * ("the connection is established asynchronously", connect(2)). Any other failure (ENETUNREACH,
 * EADDRNOTAVAIL, …) closes the descriptor and throws a `SyscallError` naming the address.
 */
export function startConnect(address: string, port: number): ConnectingSocket {
  const addr = sockaddrFor(address, port);
  const family = addr.length === LAYOUT.sockaddrInSize ? AF_INET : AF_INET6;
  const fd = check('socket', sys.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const r = sys.connect(fd, addr);
  if (r === 0) return { fd, pending: false };
  if (r === -EINPROGRESS || r === -EINTR) return { fd, pending: true };
  sys.close(fd);
  throw new SyscallError('connect', -r, { address, port });
}

/** The local address of a socket (the real port after binding port 0). */
export function localAddress(fd: number): SocketAddress {
  const r = sys.getsockname(fd);
  if (typeof r === 'number') throw new SyscallError('getsockname', -r);
  return decodeSockaddr(r.buf, r.len);
}

/** The peer address, or undefined when the socket is no longer connected. */
export function peerAddress(fd: number): SocketAddress | undefined {
  const r = sys.getpeername(fd);
  if (typeof r === 'number') return undefined;
  return decodeSockaddr(r.buf, r.len);
}

/** The pending socket error (SO_ERROR, cleared by reading it): 0, an errno, or -errno on failure. */
export function socketError(fd: number): number {
  return sys.getsockoptInt(fd, SOL_SOCKET, SO_ERROR);
}

/** Whether `fd` is a listening socket (SO_ACCEPTCONN). */
export function isListening(fd: number): boolean {
  return sys.getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1;
}

/** Sets O_NONBLOCK (inherited descriptors may arrive blocking). */
export function setNonBlocking(fd: number): void {
  const flags = check('fcntl(F_GETFL)', sys.fcntl(fd, F_GETFL, 0));
  if ((flags & O_NONBLOCK) === 0) check('fcntl(F_SETFL)', sys.fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}

/**
 * Per-socket TCP options, part of `ServerOptions` and `ClientOptions` (through `ConnectionOptions`)
 * and of `channel.setSocketOptions()`; every field optional. Checked when the server, client or
 * call is built: a value out of the kernel's range or an unknown key throws `InvalidOptionError`
 * there, rather than failing later in setsockopt(2) on a live connection.
 */
export interface SocketOptions {
  /** TCP_NODELAY: send small writes at once instead of waiting (Nagle). Default true. */
  readonly noDelay?: boolean;
  /**
   * SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL (seconds) and TCP_KEEPCNT; `false` turns it off.
   * Default: left as the socket comes (off on Linux).
   */
  readonly keepAlive?: false | { readonly idle: number; readonly interval: number; readonly count: number };
  /**
   * TCP_USER_TIMEOUT in ms: how long sent data may stay unacknowledged before the kernel resets.
   * Default: the kernel's retransmission limits (tcp_retries2, ~15 min).
   */
  readonly userTimeout?: number;
  /** SO_SNDBUF in bytes (the kernel doubles it for bookkeeping, socket(7)). Default: the kernel's autotuning. */
  readonly sendBufferSize?: number;
  /** SO_RCVBUF in bytes; setting it turns off the kernel's receive autotuning (tcp(7)). Default: autotuned. */
  readonly receiveBufferSize?: number;
}

/** The keys of `SocketOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const SOCKET_OPTIONS = {
  noDelay: true,
  keepAlive: true,
  userTimeout: true,
  sendBufferSize: true,
  receiveBufferSize: true,
} as const satisfies OptionKeys<SocketOptions>;

type KeepAlive = Exclude<NonNullable<SocketOptions['keepAlive']>, false>;
const KEEPALIVE_OPTIONS = { idle: true, interval: true, count: true } as const satisfies OptionKeys<KeepAlive>;

/**
 * Throws `InvalidOptionError` with a clear message for any out-of-range socket option or unknown
 * key. `owner` undefined: `o` holds socket options only (`channel.setSocketOptions`), and its keys
 * are checked; otherwise `o` is part of `owner`'s larger options object, which checks its own keys
 * (`keepAlive`'s are checked here, reported under `owner`).
 */
export function validateSocketOptions(o: SocketOptions, prefix = '', owner?: string): void {
  if (owner === undefined) checkOptions('setSocketOptions', o, SOCKET_OPTIONS, prefix);
  if (o.noDelay !== undefined && typeof o.noDelay !== 'boolean') {
    throw new InvalidOptionError(`${prefix}noDelay`, `must be a boolean, got ${describeValue(o.noDelay)}`);
  }
  if (o.keepAlive !== undefined && o.keepAlive !== false) {
    if (o.keepAlive === null || typeof o.keepAlive !== 'object' || Array.isArray(o.keepAlive)) {
      throw new InvalidOptionError(
        `${prefix}keepAlive`,
        `must be false or { idle, interval, count } in seconds, got ${describeValue(o.keepAlive)}`,
      );
    }
    checkOptions(owner ?? 'setSocketOptions', o.keepAlive, KEEPALIVE_OPTIONS, `${prefix}keepAlive.`);
    // Kernel limits: tcp(7) MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL 32767 s, MAX_TCP_KEEPCNT 127.
    intOption(`${prefix}keepAlive.idle`, o.keepAlive.idle, 1, 32767);
    intOption(`${prefix}keepAlive.interval`, o.keepAlive.interval, 1, 32767);
    intOption(`${prefix}keepAlive.count`, o.keepAlive.count, 1, 127);
  }
  if (o.userTimeout !== undefined) intOption(`${prefix}userTimeout`, o.userTimeout, 1, 0x7fffffff);
  if (o.sendBufferSize !== undefined) intOption(`${prefix}sendBufferSize`, o.sendBufferSize, 1, 0x7fffffff);
  if (o.receiveBufferSize !== undefined) intOption(`${prefix}receiveBufferSize`, o.receiveBufferSize, 1, 0x7fffffff);
}

/**
 * Applies socket options to a connected socket. Returns 0 or the first -errno: a connection whose
 * peer already reset may fail here, which the caller treats like any other early close.
 */
export function applySocketOptions(fd: number, o: SocketOptions): number {
  let r = 0;
  if (o.noDelay !== undefined) r = sys.setsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY, o.noDelay ? 1 : 0);
  if (r < 0) return r;
  const ka = o.keepAlive;
  if (ka === false) {
    r = sys.setsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
    if (r < 0) return r;
  } else if (ka !== undefined) {
    r = sys.setsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (r === 0) r = sys.setsockoptInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, ka.idle);
    if (r === 0) r = sys.setsockoptInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, ka.interval);
    if (r === 0) r = sys.setsockoptInt(fd, IPPROTO_TCP, TCP_KEEPCNT, ka.count);
    if (r < 0) return r;
  }
  if (o.userTimeout !== undefined) r = sys.setsockoptInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, o.userTimeout);
  if (r === 0 && o.sendBufferSize !== undefined) r = sys.setsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, o.sendBufferSize);
  if (r === 0 && o.receiveBufferSize !== undefined) {
    r = sys.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, o.receiveBufferSize);
  }
  return r;
}

/** Socket options as the kernel reports them (getsockopt). */
export interface EffectiveSocketOptions {
  /** TCP_NODELAY is set. */
  readonly noDelay: boolean;
  /** `false` when SO_KEEPALIVE is off; the probe timings otherwise (seconds). */
  readonly keepAlive: false | { readonly idle: number; readonly interval: number; readonly count: number };
  /** TCP_USER_TIMEOUT in ms; 0 means the kernel's default (retransmission limits). */
  readonly userTimeout: number;
  /** SO_SNDBUF as the kernel reports it (twice what was asked, socket(7)). */
  readonly sendBufferSize: number;
  /** SO_RCVBUF as the kernel reports it (likewise doubled). */
  readonly receiveBufferSize: number;
}

/** Reads the options of a connected socket back from the kernel. Throws SyscallError if it cannot. */
export function readSocketOptions(fd: number): EffectiveSocketOptions {
  const get = (what: string, level: number, name: number) =>
    check(`getsockopt(${what})`, sys.getsockoptInt(fd, level, name));
  const keepAlive = get('SO_KEEPALIVE', SOL_SOCKET, SO_KEEPALIVE) !== 0;
  return {
    noDelay: get('TCP_NODELAY', IPPROTO_TCP, TCP_NODELAY) !== 0,
    keepAlive: keepAlive
      ? {
          idle: get('TCP_KEEPIDLE', IPPROTO_TCP, TCP_KEEPIDLE),
          interval: get('TCP_KEEPINTVL', IPPROTO_TCP, TCP_KEEPINTVL),
          count: get('TCP_KEEPCNT', IPPROTO_TCP, TCP_KEEPCNT),
        }
      : false,
    userTimeout: get('TCP_USER_TIMEOUT', IPPROTO_TCP, TCP_USER_TIMEOUT),
    sendBufferSize: get('SO_SNDBUF', SOL_SOCKET, SO_SNDBUF),
    receiveBufferSize: get('SO_RCVBUF', SOL_SOCKET, SO_RCVBUF),
  };
}

const lingerZero = Buffer.alloc(LAYOUT.lingerSize);
lingerZero.writeInt32LE(1, 0); // l_onoff = 1, l_linger = 0

/**
 * SO_LINGER {on, 0}: the next close(2) sends RST and drops unsent data instead of a FIN
 * (socket(7)). Used by `Channel.reset()` and by tests that simulate crashing peers.
 */
export function setLingerReset(fd: number): number {
  return sys.setsockoptBytes(fd, SOL_SOCKET, SO_LINGER, lingerZero);
}
