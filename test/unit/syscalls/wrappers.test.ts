import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { InvalidOptionError, SyscallError } from '../../../src/common/errors.js';
import {
  AF_INET,
  EAFNOSUPPORT,
  EAGAIN,
  EBADF,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINVAL,
  ENOPROTOOPT,
  ENOTCONN,
  EPIPE,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLLIN,
  EPOLLOUT,
  F_GETFD,
  F_GETFL,
  FD_CLOEXEC,
  IOV_MAX,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  LAYOUT,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  O_NONBLOCK,
  POLLIN,
  SHUT_RDWR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SO_TYPE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_NODELAY,
  TCP_USER_TIMEOUT,
} from '../../../src/syscalls/constants.js';
import * as sys from '../../../src/syscalls/libc.js';
import { decodeSockaddr } from '../../../src/syscalls/sockaddr.js';
import {
  applySocketOptions,
  isListening,
  localAddress,
  openListenSocket,
  peerAddress,
  type SocketOptions,
  setLingerReset,
  setNonBlocking,
  sockaddrFor,
  socketError,
  startConnect,
  validateSocketOptions,
} from '../../../src/syscalls/socket.js';
import { thrownBy } from '../../support.js';

const EEXIST = osConstants.errno.EEXIST;
const ENOENT = osConstants.errno.ENOENT;
const ENOTSOCK = osConstants.errno.ENOTSOCK;
const EADDRINUSE = osConstants.errno.EADDRINUSE;

/** Descriptors opened by the current test; closed (once) in afterEach. */
const open: number[] = [];

function track(fd: number): number {
  expect(fd, `expected a descriptor, got ${fd}`).to.be.at.least(0);
  open.push(fd);
  return fd;
}

function closeTracked(fd: number): void {
  const i = open.indexOf(fd);
  expect(i, `fd ${fd} is not tracked`).to.be.at.least(0);
  open.splice(i, 1);
  expect(sys.close(fd)).to.equal(0);
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function newTcpSocket(flags = SOCK_NONBLOCK | SOCK_CLOEXEC): number {
  return track(sys.socket(AF_INET, SOCK_STREAM | flags, 0));
}

function newEventfd(): number {
  return track(sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

function closeAllTracked(): void {
  while (open.length > 0) sys.close(open.pop() as number);
}

describe('syscalls/libc: -errno contract', () => {
  afterEach(closeAllTracked);

  it('close(-1) returns -EBADF without throwing', () => {
    expect(sys.close(-1)).to.equal(-EBADF);
  });

  it('read/write/recv/send on -1 return -EBADF', () => {
    const buf = Buffer.alloc(4);
    expect(sys.read(-1, buf, 1)).to.equal(-EBADF);
    expect(sys.write(-1, buf, 1)).to.equal(-EBADF);
    expect(sys.recv(-1, buf, 1, 0)).to.equal(-EBADF);
    expect(sys.send(-1, buf, 1, MSG_NOSIGNAL)).to.equal(-EBADF);
  });

  it('the other fd-taking wrappers return -EBADF on -1', () => {
    expect(sys.fcntl(-1, F_GETFL, 0)).to.equal(-EBADF);
    expect(sys.shutdown(-1, SHUT_RDWR)).to.equal(-EBADF);
    expect(sys.listen(-1, 1)).to.equal(-EBADF);
    expect(sys.accept4(-1, SOCK_NONBLOCK)).to.equal(-EBADF);
    expect(sys.setsockoptInt(-1, SOL_SOCKET, SO_RCVBUF, 1)).to.equal(-EBADF);
    expect(sys.getsockoptInt(-1, SOL_SOCKET, SO_RCVBUF)).to.equal(-EBADF);
    expect(sys.getsockname(-1)).to.equal(-EBADF);
    expect(sys.getpeername(-1)).to.equal(-EBADF);
    expect(sys.bind(-1, sockaddrFor('127.0.0.1', 0))).to.equal(-EBADF);
    expect(sys.epollCtl(-1, EPOLL_CTL_ADD, 0, EPOLLIN, 0, 0)).to.equal(-EBADF);
    expect(sys.epollWait(-1, new Uint32Array(LAYOUT.epollEventSize / 4), 1, 0)).to.equal(-EBADF);
    expect(sys.writevBuffers(-1, [Buffer.from('x')], 0, 1, 0)).to.equal(-EBADF);
  });

  it('socket() with an unknown address family returns -EAFNOSUPPORT (97)', () => {
    const r = sys.socket(12345, SOCK_STREAM, 0);
    if (r >= 0) sys.close(r);
    expect(r).to.equal(-EAFNOSUPPORT);
    expect(r).to.equal(-97);
  });

  it('the errno of one failure does not leak into the next successful call', () => {
    expect(sys.close(-1)).to.equal(-EBADF);
    const fd = newTcpSocket();
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_TYPE)).to.equal(SOCK_STREAM);
  });
});

describe('syscalls/libc: a real TCP socket (no connections)', () => {
  afterEach(closeAllTracked);

  it('socket() returns a non-blocking, close-on-exec descriptor of type SOCK_STREAM', () => {
    const fd = newTcpSocket();
    expect(sys.fcntl(fd, F_GETFL, 0) & O_NONBLOCK).to.equal(O_NONBLOCK);
    expect(sys.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC).to.equal(FD_CLOEXEC);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_TYPE)).to.equal(SOCK_STREAM);
    expect(socketError(fd)).to.equal(0);
  });

  it('accept4 on a socket that is not listening returns -EINVAL', () => {
    const fd = newTcpSocket();
    expect(sys.accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC)).to.equal(-EINVAL);
  });

  it('read/recv on an unconnected socket return -ENOTCONN', () => {
    const fd = newTcpSocket();
    const buf = Buffer.alloc(16);
    const r = sys.read(fd, buf, buf.length);
    expect(r).to.be.lessThan(0);
    expect(r).to.equal(-ENOTCONN);
    expect(sys.recv(fd, buf, buf.length, MSG_DONTWAIT)).to.equal(-ENOTCONN);
  });

  it('send with MSG_NOSIGNAL on an unconnected socket returns -EPIPE', () => {
    const fd = newTcpSocket();
    expect(sys.send(fd, Buffer.from('x'), 1, MSG_NOSIGNAL)).to.equal(-EPIPE);
  });

  it('shutdown and getpeername on an unconnected socket return -ENOTCONN; peerAddress is undefined', () => {
    const fd = newTcpSocket();
    expect(sys.shutdown(fd, SHUT_RDWR)).to.equal(-ENOTCONN);
    expect(sys.getpeername(fd)).to.equal(-ENOTCONN);
    expect(peerAddress(fd)).to.equal(undefined);
  });

  it('an unbound socket reports 0.0.0.0:0 as its local address', () => {
    const fd = newTcpSocket();
    expect(localAddress(fd)).to.deep.equal({ address: '0.0.0.0', family: 'IPv4', port: 0 });
  });

  it('setsockoptInt/getsockoptInt round-trip SO_RCVBUF (the kernel doubles it) and SO_SNDBUF', () => {
    const fd = newTcpSocket();
    expect(sys.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 65536)).to.equal(0);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF)).to.be.at.least(65536);
    expect(sys.setsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, 32768)).to.equal(0);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_SNDBUF)).to.be.at.least(32768);
  });

  it('setsockoptInt/getsockoptInt round-trip TCP_NODELAY', () => {
    const fd = newTcpSocket();
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY)).to.equal(0);
    expect(sys.setsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY, 1)).to.equal(0);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY)).to.equal(1);
    expect(sys.setsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY, 0)).to.equal(0);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY)).to.equal(0);
  });

  it('an unknown option returns -ENOPROTOOPT; an option on a non-socket returns -ENOTSOCK', () => {
    const fd = newTcpSocket();
    expect(sys.getsockoptInt(fd, SOL_SOCKET, 9999)).to.equal(-ENOPROTOOPT);
    const efd = newEventfd();
    expect(sys.getsockoptInt(efd, SOL_SOCKET, SO_TYPE)).to.equal(-ENOTSOCK);
    expect(isListening(efd)).to.equal(false);
  });

  it('setNonBlocking sets O_NONBLOCK on a blocking socket and is idempotent', () => {
    const fd = newTcpSocket(SOCK_CLOEXEC);
    const before = sys.fcntl(fd, F_GETFL, 0);
    expect(before & O_NONBLOCK).to.equal(0);
    setNonBlocking(fd);
    const after = sys.fcntl(fd, F_GETFL, 0);
    expect(after & O_NONBLOCK).to.equal(O_NONBLOCK);
    expect(after & ~O_NONBLOCK).to.equal(before); // no other flag touched
    setNonBlocking(fd);
    expect(sys.fcntl(fd, F_GETFL, 0)).to.equal(after);
  });

  it('setNonBlocking throws SyscallError on a bad descriptor', () => {
    const err = thrownBy(() => setNonBlocking(-1));
    expect(err).to.be.instanceOf(SyscallError);
    expect((err as SyscallError).code).to.equal('EBADF');
    expect((err as SyscallError).syscall).to.equal('fcntl(F_GETFL)');
  });

  it('applySocketOptions sets every option it is given', () => {
    const fd = newTcpSocket();
    const r = applySocketOptions(fd, {
      noDelay: true,
      keepAlive: { idle: 60, interval: 10, count: 5 },
      userTimeout: 5000,
      sendBufferSize: 32768,
      receiveBufferSize: 16384,
    });
    expect(r).to.equal(0);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY)).to.equal(1);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE)).to.equal(1);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_KEEPIDLE)).to.equal(60);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_KEEPINTVL)).to.equal(10);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_KEEPCNT)).to.equal(5);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT)).to.equal(5000);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_SNDBUF)).to.be.at.least(32768);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF)).to.be.at.least(16384);
  });

  it('applySocketOptions leaves Nagle and keep-alive alone when told to', () => {
    const fd = newTcpSocket();
    expect(applySocketOptions(fd, { noDelay: false, keepAlive: false })).to.equal(0);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY)).to.equal(0);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE)).to.equal(0);
  });

  it('applySocketOptions returns -errno instead of throwing', () => {
    expect(applySocketOptions(-1, { noDelay: true })).to.equal(-EBADF);
  });

  it('applySocketOptions touches nothing it is not given (no syscall: even a bad fd passes)', () => {
    expect(applySocketOptions(-1, {})).to.equal(0);
    const fd = newTcpSocket();
    expect(applySocketOptions(fd, { userTimeout: 100 })).to.equal(0);
    expect(sys.getsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY)).to.equal(0);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE)).to.equal(0);
  });

  it('setLingerReset turns SO_LINGER on', () => {
    const fd = newTcpSocket();
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_LINGER)).to.equal(0);
    expect(setLingerReset(fd)).to.equal(0);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_LINGER)).to.equal(1); // l_onoff
  });
});

describe('syscalls/libc: eventfd', () => {
  afterEach(closeAllTracked);

  it('is non-blocking and close-on-exec as asked', () => {
    const efd = newEventfd();
    expect(sys.fcntl(efd, F_GETFL, 0) & O_NONBLOCK).to.equal(O_NONBLOCK);
    expect(sys.fcntl(efd, F_GETFD, 0) & FD_CLOEXEC).to.equal(FD_CLOEXEC);
  });

  it('write then read round-trips; a second read returns -EAGAIN', () => {
    const efd = newEventfd();
    expect(sys.eventfdRead(efd)).to.equal(-EAGAIN);
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    expect(sys.eventfdWrite(efd, 2)).to.equal(8);
    expect(sys.eventfdRead(efd)).to.equal(8);
    expect(sys.eventfdRead(efd)).to.equal(-EAGAIN);
  });

  it('counts the written values (read through the raw read wrapper)', () => {
    const efd = newEventfd();
    expect(sys.eventfdWrite(efd, 3)).to.equal(8);
    expect(sys.eventfdWrite(efd, 4)).to.equal(8);
    const out = Buffer.alloc(8);
    expect(sys.read(efd, out, 8)).to.equal(8);
    expect(out.readBigUInt64LE(0)).to.equal(7n);
  });

  it('a read into fewer than 8 bytes returns -EINVAL', () => {
    const efd = newEventfd();
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    expect(sys.read(efd, Buffer.alloc(4), 4)).to.equal(-EINVAL);
  });
});

describe('syscalls/libc: epoll', () => {
  afterEach(closeAllTracked);

  const stride = LAYOUT.epollEventSize / 4; // in 32-bit words
  const data = LAYOUT.epollEventDataOffset / 4;

  function decode(events: Uint32Array, n: number): { events: number; lo: number; hi: number }[] {
    const out: { events: number; lo: number; hi: number }[] = [];
    for (let i = 0; i < n; i++) {
      out.push({
        events: events[i * stride] as number,
        lo: events[i * stride + data] as number,
        hi: events[i * stride + data + 1] as number,
      });
    }
    return out;
  }

  it('epollCreate1 returns a close-on-exec descriptor', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    expect(sys.fcntl(epfd, F_GETFD, 0) & FD_CLOEXEC).to.equal(FD_CLOEXEC);
  });

  it('epollCreate1 with bad flags returns -EINVAL', () => {
    const r = sys.epollCreate1(1);
    if (r >= 0) sys.close(r);
    expect(r).to.equal(-EINVAL);
  });

  it('reports a written eventfd with the data words intact at the layout offset', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    const efd = newEventfd();
    const token = 0xdeadbeef;
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, efd, EPOLLIN, efd, token)).to.equal(0);
    const events = new Uint32Array(4 * stride);
    expect(sys.epollWait(epfd, events, 4, 0)).to.equal(0);
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    expect(sys.epollWait(epfd, events, 4, 0)).to.equal(1);
    expect(decode(events, 1)).to.deep.equal([{ events: EPOLLIN, lo: efd, hi: token }]);
    // Level-triggered: still ready until drained.
    expect(sys.epollWait(epfd, events, 4, 0)).to.equal(1);
    expect(sys.eventfdRead(efd)).to.equal(8);
    expect(sys.epollWait(epfd, events, 4, 0)).to.equal(0);
  });

  it('decodes several events at the layout stride, with full 32-bit tokens', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    const a = newEventfd();
    const b = newEventfd();
    const c = newEventfd();
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, a, EPOLLIN, a, 0xffffffff)).to.equal(0);
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, b, EPOLLIN, b, 0)).to.equal(0);
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, c, EPOLLIN, c, 0x80000001)).to.equal(0);
    for (const fd of [a, b, c]) expect(sys.eventfdWrite(fd, 1)).to.equal(8);
    // A sentinel just past the space we offer: maxEvents must be respected.
    const events = new Uint32Array(4 * stride).fill(0x5a5a5a5a);
    expect(sys.epollWait(epfd, events, 3, 0)).to.equal(3);
    const got = decode(events, 3).sort((x, y) => x.lo - y.lo);
    const want = [
      { events: EPOLLIN, lo: a, hi: 0xffffffff },
      { events: EPOLLIN, lo: b, hi: 0 },
      { events: EPOLLIN, lo: c, hi: 0x80000001 },
    ].sort((x, y) => x.lo - y.lo);
    expect(got).to.deep.equal(want);
    expect(Array.from(events.subarray(3 * stride))).to.deep.equal(new Array(stride).fill(0x5a5a5a5a));
  });

  it('returns at most maxEvents and reports the rest on the next wait', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    const a = newEventfd();
    const b = newEventfd();
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, a, EPOLLIN, a, 1)).to.equal(0);
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, b, EPOLLIN, b, 2)).to.equal(0);
    expect(sys.eventfdWrite(a, 1)).to.equal(8);
    expect(sys.eventfdWrite(b, 1)).to.equal(8);
    const events = new Uint32Array(stride);
    expect(sys.epollWait(epfd, events, 1, 0)).to.equal(1);
    const first = decode(events, 1)[0]?.lo;
    expect(sys.eventfdRead(first === a ? a : b)).to.equal(8);
    expect(sys.epollWait(epfd, events, 1, 0)).to.equal(1);
    expect(decode(events, 1)[0]?.lo).to.equal(first === a ? b : a);
  });

  it('accepts a Uint8Array event buffer too', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    const efd = newEventfd();
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, efd, EPOLLIN, efd, 42)).to.equal(0);
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    const bytes = Buffer.alloc(2 * LAYOUT.epollEventSize);
    expect(sys.epollWait(epfd, bytes, 2, 0)).to.equal(1);
    expect(bytes.readUInt32LE(0)).to.equal(EPOLLIN);
    expect(bytes.readUInt32LE(LAYOUT.epollEventDataOffset)).to.equal(efd);
    expect(bytes.readUInt32LE(LAYOUT.epollEventDataOffset + 4)).to.equal(42);
  });

  it('ADD twice returns -EEXIST; MOD changes the interest set and the data; DEL removes', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    const efd = newEventfd();
    const events = new Uint32Array(4 * stride);
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, efd, EPOLLIN, efd, 1)).to.equal(0);
    expect(sys.epollCtl(epfd, EPOLL_CTL_ADD, efd, EPOLLIN, efd, 1)).to.equal(-EEXIST);
    // An eventfd with a counter below the maximum is always writable.
    expect(sys.epollCtl(epfd, EPOLL_CTL_MOD, efd, EPOLLOUT, efd, 7)).to.equal(0);
    expect(sys.epollWait(epfd, events, 4, 0)).to.equal(1);
    expect(decode(events, 1)).to.deep.equal([{ events: EPOLLOUT, lo: efd, hi: 7 }]);
    expect(sys.epollCtl(epfd, EPOLL_CTL_DEL, efd, 0, 0, 0)).to.equal(0);
    expect(sys.epollWait(epfd, events, 4, 0)).to.equal(0);
    expect(sys.epollCtl(epfd, EPOLL_CTL_DEL, efd, 0, 0, 0)).to.equal(-ENOENT);
    expect(sys.epollCtl(epfd, EPOLL_CTL_MOD, efd, EPOLLIN, efd, 0)).to.equal(-ENOENT);
  });

  it('epollWait with maxEvents 0 returns -EINVAL', () => {
    const epfd = track(sys.epollCreate1(EPOLL_CLOEXEC));
    expect(sys.epollWait(epfd, new Uint32Array(stride), 0, 0)).to.equal(-EINVAL);
  });
});

describe('syscalls/libc: poll', () => {
  afterEach(closeAllTracked);

  function pollfd(fd: number, events: number): Buffer {
    const b = Buffer.alloc(LAYOUT.pollfdSize);
    b.writeInt32LE(fd, 0);
    b.writeInt16LE(events, 4);
    return b;
  }

  it('poll reports an eventfd readable only after it is written (revents at offset 6)', () => {
    const efd = newEventfd();
    const fds = pollfd(efd, POLLIN);
    expect(sys.poll(fds, 1, 0)).to.equal(0);
    expect(fds.readInt16LE(6)).to.equal(0);
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    expect(sys.poll(fds, 1, 0)).to.equal(1);
    expect(fds.readInt16LE(6)).to.equal(POLLIN);
  });

  it('pollAsync delivers the count on the main thread', async () => {
    const efd = newEventfd();
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    const fds = pollfd(efd, POLLIN);
    const n = await new Promise<number>((resolve) => sys.pollAsync(fds, 1, 0, resolve));
    expect(n).to.equal(1);
    expect(fds.readInt16LE(6) & POLLIN).to.equal(POLLIN);
  });

  it('watchReadable calls back once the descriptor becomes readable', async () => {
    const efd = newEventfd();
    let calls = 0;
    const seen = new Promise<void>((resolve) => {
      const watch = sys.watchReadable(efd, () => {
        calls++;
        // Drain, then stop watching before the descriptor is closed in afterEach.
        sys.eventfdRead(efd);
        watch.close();
        resolve();
      });
    });
    expect(calls).to.equal(0);
    expect(sys.eventfdWrite(efd, 1)).to.equal(8);
    await seen;
    expect(calls).to.equal(1);
    expect(sys.eventfdRead(efd)).to.equal(-EAGAIN); // drained by the callback
  });
});

describe('syscalls/libc: writevBuffers', () => {
  let dir = '';
  let file = '';
  let fd = -1;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'multireactor-writev-'));
    file = join(dir, 'out');
    fd = openSync(file, 'w');
  });

  afterEach(() => {
    if (fd >= 0) closeSync(fd);
    fd = -1;
    rmSync(dir, { recursive: true, force: true });
  });

  it('gathers buffers (pooled Buffers, subarrays, plain Uint8Arrays) honouring start and firstOffset', () => {
    const bufs = [
      Buffer.from('skip me'),
      Buffer.from('--hello'), // a small pooled Buffer: non-zero byteOffset
      Buffer.from('xx world').subarray(2),
      new Uint8Array([0x21, 0x21]),
      Buffer.from('not sent'),
    ];
    const n = sys.writevBuffers(fd, bufs, 1, 3, 2);
    expect(n).to.equal('hello world!!'.length);
    expect(readFileSync(file, 'utf8')).to.equal('hello world!!');
  });

  it('skips empty buffers and writes nothing for count 0', () => {
    const bufs = [Buffer.alloc(0), Buffer.from('x'), new Uint8Array(0), Buffer.from('yz')];
    expect(sys.writevBuffers(fd, bufs, 0, 0, 0)).to.equal(0);
    expect(sys.writevBuffers(fd, bufs, 0, bufs.length, 0)).to.equal(3);
    // firstOffset equal to the first buffer's length sends none of it.
    expect(sys.writevBuffers(fd, [Buffer.from('ab'), Buffer.from('c')], 0, 2, 2)).to.equal(1);
    expect(readFileSync(file, 'utf8')).to.equal('xyzc');
  });

  it(`writes at most IOV_MAX (${IOV_MAX}) buffers per call`, () => {
    const bufs = Array.from({ length: IOV_MAX + 100 }, (_, i) => Buffer.from([i & 0xff]));
    expect(sys.writevBuffers(fd, bufs, 0, bufs.length, 0)).to.equal(IOV_MAX);
    const written = readFileSync(file);
    expect(written.length).to.equal(IOV_MAX);
    expect(written[IOV_MAX - 1]).to.equal((IOV_MAX - 1) & 0xff);
  });

  it('write and read work on ordinary file descriptors', () => {
    expect(sys.write(fd, Buffer.from('abcdef'), 3)).to.equal(3);
    expect(readFileSync(file, 'utf8')).to.equal('abc');
    const rfd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(8);
      expect(sys.read(rfd, buf, 8)).to.equal(3);
      expect(buf.subarray(0, 3).toString()).to.equal('abc');
      expect(sys.read(rfd, buf, 8)).to.equal(0); // end of file
    } finally {
      closeSync(rfd);
    }
  });
});

describe('syscalls/socket: listen sockets on loopback (no connections)', () => {
  afterEach(closeAllTracked);

  it('openListenSocket on 127.0.0.1:0 gets a real port and listens', () => {
    const fd = track(openListenSocket({ host: '127.0.0.1', port: 0, backlog: 16, reusePort: false }));
    const addr = localAddress(fd);
    expect(addr.address).to.equal('127.0.0.1');
    expect(addr.family).to.equal('IPv4');
    expect(addr.port).to.be.greaterThan(0).and.at.most(65535);
    expect(isListening(fd)).to.equal(true);
    expect(sys.fcntl(fd, F_GETFL, 0) & O_NONBLOCK).to.equal(O_NONBLOCK);
    expect(sys.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC).to.equal(FD_CLOEXEC);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR)).to.equal(1);
    expect(sys.getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT)).to.equal(0);
    expect(socketError(fd)).to.equal(0);
    expect(peerAddress(fd)).to.equal(undefined);
    // Nothing is connecting: a non-blocking accept has nothing to give.
    expect(sys.accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC)).to.equal(-EAGAIN);
  });

  for (const host of ['127.0.0.1', '::1']) {
    it(`accept4 with an address buffer fills in the peer's sockaddr (${host})`, () => {
      const lfd = track(openListenSocket({ host, port: 0, backlog: 16, reusePort: false }));
      const client = startConnect(host, localAddress(lfd).port);
      track(client.fd);
      const addr = Buffer.alloc(LAYOUT.sockaddrStorageSize, 0xaa);
      const len = new Uint32Array(1);
      // Loopback completes the handshake at once; the connection waits in the accept queue.
      let fd = -EAGAIN;
      for (let i = 0; i < 1000 && fd === -EAGAIN; i++) fd = sys.accept4(lfd, SOCK_NONBLOCK | SOCK_CLOEXEC, addr, len);
      track(fd);
      expect(len[0]).to.equal(host === '::1' ? LAYOUT.sockaddrIn6Size : LAYOUT.sockaddrInSize);
      expect(decodeSockaddr(addr, len[0] as number)).to.deep.equal(localAddress(client.fd));
      expect(peerAddress(fd)).to.deep.equal(localAddress(client.fd));
    });
  }

  it('isListening is false for a socket that was never listened on', () => {
    const fd = newTcpSocket();
    expect(isListening(fd)).to.equal(false);
  });

  it('binding the same port twice without reusePort throws SyscallError EADDRINUSE and leaks no fd', () => {
    const first = track(openListenSocket({ host: '127.0.0.1', port: 0, backlog: 16, reusePort: false }));
    const port = localAddress(first).port;
    const before = openFdCount();
    const err = thrownBy(() => openListenSocket({ host: '127.0.0.1', port, backlog: 16, reusePort: false }));
    expect(openFdCount()).to.equal(before);
    expect(err).to.be.instanceOf(SyscallError);
    const e = err as SyscallError;
    expect(e.code).to.equal('EADDRINUSE');
    expect(e.errno).to.equal(EADDRINUSE);
    expect(e.syscall).to.equal('bind');
    expect(e.address).to.equal('127.0.0.1');
    expect(e.port).to.equal(port);
    expect(e.message).to.contain(`127.0.0.1:${port}`);
  });

  it('reusePort on only the second socket is not enough', () => {
    const first = track(openListenSocket({ host: '127.0.0.1', port: 0, backlog: 16, reusePort: false }));
    const port = localAddress(first).port;
    const err = thrownBy(() => openListenSocket({ host: '127.0.0.1', port, backlog: 16, reusePort: true }));
    expect((err as SyscallError).code).to.equal('EADDRINUSE');
  });

  it('with reusePort on both, two sockets listen on the same port', () => {
    const first = track(openListenSocket({ host: '127.0.0.1', port: 0, backlog: 16, reusePort: true }));
    const port = localAddress(first).port;
    const second = track(openListenSocket({ host: '127.0.0.1', port, backlog: 16, reusePort: true }));
    expect(second).not.to.equal(first);
    expect(localAddress(second)).to.deep.equal({ address: '127.0.0.1', family: 'IPv4', port });
    expect(isListening(first)).to.equal(true);
    expect(isListening(second)).to.equal(true);
    expect(sys.getsockoptInt(second, SOL_SOCKET, SO_REUSEPORT)).to.equal(1);
  });

  it('a huge backlog is capped (listen succeeds)', () => {
    const fd = track(openListenSocket({ host: '127.0.0.1', port: 0, backlog: 1_000_000, reusePort: false }));
    expect(isListening(fd)).to.equal(true);
  });

  it('an invalid host fails with InvalidOptionError before any descriptor is opened', () => {
    const before = openFdCount();
    const err = thrownBy(() => openListenSocket({ host: 'localhost', port: 0, backlog: 16, reusePort: false }));
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect(openFdCount()).to.equal(before);
  });

  it('an address this host does not own fails in bind with EADDRNOTAVAIL', () => {
    const err = thrownBy(() => openListenSocket({ host: '192.0.2.1', port: 0, backlog: 16, reusePort: false }));
    expect(err).to.be.instanceOf(SyscallError);
    expect((err as SyscallError).code).to.equal('EADDRNOTAVAIL');
    expect((err as SyscallError).syscall).to.equal('bind');
  });

  it('IPv6 loopback: openListenSocket binds ::1 and honours ipv6Only', function () {
    let fd: number;
    try {
      fd = track(openListenSocket({ host: '::1', port: 0, backlog: 16, reusePort: false }));
    } catch (err) {
      const code = (err as SyscallError).code;
      if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') this.skip(); // no IPv6 here
      throw err;
    }
    const addr = localAddress(fd);
    expect(addr.address).to.equal('::1');
    expect(addr.family).to.equal('IPv6');
    expect(addr.port).to.be.greaterThan(0);
    expect(addr.scopeId).to.equal(0);
    expect(isListening(fd)).to.equal(true);
    // No IPV6_V6ONLY check for the default here: Linux forces it on when a socket binds a specific,
    // non-v4-mapped IPv6 address such as ::1 (inet6_bind), and binding :: would listen on every
    // interface, which unit tests do not do.
    const v6only = track(openListenSocket({ host: '::1', port: 0, backlog: 16, reusePort: false, ipv6Only: true }));
    expect(sys.getsockoptInt(v6only, IPPROTO_IPV6, IPV6_V6ONLY)).to.equal(1);
    expect(localAddress(v6only).family).to.equal('IPv6');
  });

  it('localAddress on a bad descriptor throws SyscallError from getsockname', () => {
    const err = thrownBy(() => localAddress(-1));
    expect(err).to.be.instanceOf(SyscallError);
    expect((err as SyscallError).syscall).to.equal('getsockname');
    expect((err as SyscallError).code).to.equal('EBADF');
  });

  it('closing a listen socket through the wrapper returns 0', () => {
    const fd = track(openListenSocket({ host: '127.0.0.1', port: 0, backlog: 1, reusePort: false }));
    closeTracked(fd);
    expect(open).not.to.include(fd);
  });
});

describe('syscalls/socket: sockaddrFor zones', () => {
  afterEach(closeAllTracked);

  it('resolves an interface name with if_nametoindex', () => {
    const lo = sys.ifNameToIndex('lo');
    expect(lo).to.be.greaterThan(0);
    const buf = sockaddrFor('fe80::1%lo', 80);
    expect(buf.readUInt32LE(24)).to.equal(lo);
  });

  it('an unknown interface is index 0 and makes sockaddrFor throw InvalidOptionError', () => {
    expect(sys.ifNameToIndex('no-such-if0')).to.equal(0);
    const err = thrownBy(() => sockaddrFor('fe80::1%no-such-if0', 80));
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).message).to.contain('no-such-if0');
  });
});

describe('syscalls/socket: validateSocketOptions', () => {
  afterEach(closeAllTracked);

  function rejects(o: unknown, name: string, prefix?: string): void {
    const err = thrownBy(() =>
      prefix === undefined
        ? validateSocketOptions(o as SocketOptions)
        : validateSocketOptions(o as SocketOptions, prefix),
    );
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).code).to.equal('ERR_INVALID_OPTION');
    expect((err as InvalidOptionError).message).to.contain(`option ${name}:`);
  }

  it('rejects keepAlive.idle -1 naming keepAlive.idle', () => {
    rejects({ keepAlive: { idle: -1, interval: 1, count: 1 } }, 'keepAlive.idle');
  });

  it('names keepAlive.interval and keepAlive.count, with their kernel limits', () => {
    rejects({ keepAlive: { idle: 1, interval: 0, count: 1 } }, 'keepAlive.interval');
    rejects({ keepAlive: { idle: 1, interval: 32768, count: 1 } }, 'keepAlive.interval');
    rejects({ keepAlive: { idle: 1, interval: 1, count: 128 } }, 'keepAlive.count');
    rejects({ keepAlive: { idle: 1.5, interval: 1, count: 1 } }, 'keepAlive.idle');
  });

  it('names the other options', () => {
    rejects({ noDelay: 'yes' }, 'noDelay');
    rejects({ userTimeout: 0 }, 'userTimeout');
    rejects({ sendBufferSize: -5 }, 'sendBufferSize');
    rejects({ receiveBufferSize: 1.5 }, 'receiveBufferSize');
    rejects({ receiveBufferSize: '1024' }, 'receiveBufferSize');
  });

  it('prefixes the option name when asked', () => {
    rejects({ keepAlive: { idle: -1, interval: 1, count: 1 } }, 'socket.keepAlive.idle', 'socket.');
  });

  it('keepAlive true (no numbers) is rejected naming keepAlive and its fields', () => {
    rejects({ keepAlive: true }, 'keepAlive');
  });

  // Regression test (found while writing these tests).
  it('keepAlive null is rejected with InvalidOptionError, not a TypeError', () => {
    const err = thrownBy(() => validateSocketOptions({ keepAlive: null } as unknown as SocketOptions));
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).message).to.contain('option keepAlive');
  });

  it('accepts valid options, keepAlive false and an empty object', () => {
    expect(() => validateSocketOptions({})).not.to.throw();
    expect(() => validateSocketOptions({ keepAlive: false, noDelay: false })).not.to.throw();
    expect(() =>
      validateSocketOptions({
        noDelay: true,
        keepAlive: { idle: 32767, interval: 32767, count: 127 },
        userTimeout: 1,
        sendBufferSize: 1,
        receiveBufferSize: 0x7fffffff,
      }),
    ).not.to.throw();
  });
});
