/**
 * Linux constants and struct layouts, chosen once by `process.arch`.
 *
 * The values below come from the kernel's uapi headers (asm-generic for arm64, the x86 ones for
 * x64): socket.h, in.h, in6.h, tcp.h, eventpoll.h, poll.h, fcntl.h, eventfd.h. Both architectures
 * share every number we use; they differ in one layout: `struct epoll_event` is declared
 * `__attribute__((packed))` on x86-64 only (eventpoll.h, `EPOLL_PACKED`), so it is 12 bytes there
 * (u32 events, u64 data at offset 4) and 16 bytes on arm64 (data at offset 8).
 *
 * No koffi here: this module is pure data so that tests and the layout checks can load it
 * anywhere. An unsupported platform fails at load with {@link UnsupportedPlatformError}.
 */
import { endianness } from 'node:os';
import { UnsupportedPlatformError } from '../common/errors.js';

/** Sizes and offsets of the C structs we read and write by hand. */
export interface StructLayout {
  /** sizeof(struct epoll_event) */
  readonly epollEventSize: number;
  /** offsetof(struct epoll_event, data) */
  readonly epollEventDataOffset: number;
  /** sizeof(struct sockaddr_in) */
  readonly sockaddrInSize: number;
  /** sizeof(struct sockaddr_in6) */
  readonly sockaddrIn6Size: number;
  /** sizeof(struct sockaddr_storage) */
  readonly sockaddrStorageSize: number;
  /** sizeof(struct iovec) */
  readonly iovecSize: number;
  /** sizeof(struct pollfd) */
  readonly pollfdSize: number;
  /** sizeof(struct linger) */
  readonly lingerSize: number;
}

const LAYOUTS: Readonly<Record<string, StructLayout>> = {
  x64: {
    epollEventSize: 12,
    epollEventDataOffset: 4,
    sockaddrInSize: 16,
    sockaddrIn6Size: 28,
    sockaddrStorageSize: 128,
    iovecSize: 16,
    pollfdSize: 8,
    lingerSize: 8,
  },
  arm64: {
    epollEventSize: 16,
    epollEventDataOffset: 8,
    sockaddrInSize: 16,
    sockaddrIn6Size: 28,
    sockaddrStorageSize: 128,
    iovecSize: 16,
    pollfdSize: 8,
    lingerSize: 8,
  },
};

/** The architectures with a layout table. */
export const SUPPORTED_ARCHES: readonly string[] = Object.keys(LAYOUTS);

/** Returns the layout for `arch`, or throws a clear error naming what is supported. */
export function layoutFor(platform: string, arch: string): StructLayout {
  if (platform !== 'linux') {
    throw new UnsupportedPlatformError(
      `multireactor's loop calls Linux syscalls (epoll, accept4, eventfd); this is ${platform}/${arch}`,
    );
  }
  const layout = LAYOUTS[arch];
  if (layout === undefined) {
    throw new UnsupportedPlatformError(
      `no struct layout for linux/${arch}: supported are ${SUPPORTED_ARCHES.map((a) => `linux/${a}`).join(', ')}`,
    );
  }
  return layout;
}

// The loop decodes events straight from typed-array views, which read in host byte order. Every
// supported target is little-endian; say so now rather than mis-decode later.
if (endianness() !== 'LE') {
  throw new UnsupportedPlatformError('multireactor supports little-endian hosts only');
}

/** The layout of this process. */
export const LAYOUT: StructLayout = layoutFor(process.platform, process.arch);

// socket.h / in.h
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const SO_ACCEPTCONN = 30;
/** The socket's address family (socket(7), Linux 2.6.32). */
export const SO_DOMAIN = 39;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const TCP_NODELAY = 1;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
/** Wake a listener only when data arrives (tcp(7); seconds in, SYN-ACK retransmits inside the kernel). */
export const TCP_DEFER_ACCEPT = 9;
export const TCP_USER_TIMEOUT = 18;
export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

// fcntl.h
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0o4000;

// eventpoll.h
export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLPRI = 0x002;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
export const EPOLLEXCLUSIVE = 1 << 28;
export const EPOLLONESHOT = 1 << 30;
/** 1 << 31: written unsigned so that it survives `>>> 0` arithmetic. */
export const EPOLLET = 0x80000000;

// poll.h: the low bits coincide with EPOLL* on Linux (the kernel defines EPOLLIN as POLLIN…),
// which lets both pollers report events in one vocabulary.
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDHUP = 0x2000;

// eventfd.h
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

// errno values the loop branches on (asm-generic/errno-base.h, errno.h; same on x64 and arm64).
export const EINTR = 4;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const EPIPE = 32;
export const ENOBUFS = 105;
export const ENOTCONN = 107;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const EALREADY = 114;
export const EINPROGRESS = 115;
export const EPROTO = 71;
export const EPERM = 1;
export const ENOENT = 2;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ENOPROTOOPT = 92;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const EAFNOSUPPORT = 97;

/** `IOV_MAX` on Linux (limits.h: UIO_MAXIOV). */
export const IOV_MAX = 1024;
