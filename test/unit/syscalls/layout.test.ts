import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { expect } from 'chai';
import { ReactorError, UnsupportedPlatformError } from '../../../src/common/errors.js';
import * as C from '../../../src/syscalls/constants.js';
import { LAYOUT, layoutFor, SUPPORTED_ARCHES } from '../../../src/syscalls/constants.js';
import { thrownBy } from '../../support.js';

describe('syscalls/constants: struct layouts', () => {
  it('x64: struct epoll_event is packed (12 bytes, data at offset 4)', () => {
    const l = layoutFor('linux', 'x64');
    expect(l.epollEventSize).to.equal(12);
    expect(l.epollEventDataOffset).to.equal(4);
  });

  it('arm64: struct epoll_event is naturally aligned (16 bytes, data at offset 8)', () => {
    const l = layoutFor('linux', 'arm64');
    expect(l.epollEventSize).to.equal(16);
    expect(l.epollEventDataOffset).to.equal(8);
  });

  for (const arch of ['x64', 'arm64']) {
    it(`${arch}: sockaddr_in 16, sockaddr_in6 28, sockaddr_storage 128, iovec 16, pollfd 8, linger 8`, () => {
      const l = layoutFor('linux', arch);
      expect(l.sockaddrInSize).to.equal(16);
      expect(l.sockaddrIn6Size).to.equal(28);
      expect(l.sockaddrStorageSize).to.equal(128);
      expect(l.iovecSize).to.equal(16);
      expect(l.pollfdSize).to.equal(8);
      expect(l.lingerSize).to.equal(8);
    });

    it(`${arch}: the epoll data u64 fits inside the struct and is 4-byte aligned (Uint32Array views)`, () => {
      const l = layoutFor('linux', arch);
      expect(l.epollEventDataOffset + 8).to.be.at.most(l.epollEventSize);
      expect(l.epollEventDataOffset % 4).to.equal(0);
      expect(l.epollEventSize % 4).to.equal(0);
    });
  }

  it('SUPPORTED_ARCHES lists exactly x64 and arm64', () => {
    expect([...SUPPORTED_ARCHES].sort()).to.deep.equal(['arm64', 'x64']);
  });

  it('LAYOUT is the layout of this process', () => {
    expect(LAYOUT).to.deep.equal(layoutFor(process.platform, process.arch));
  });

  it('a non-Linux platform throws UnsupportedPlatformError naming the platform', () => {
    const err = thrownBy(() => layoutFor('darwin', 'x64'));
    expect(err).to.be.instanceOf(UnsupportedPlatformError);
    expect(err).to.be.instanceOf(ReactorError);
    expect(err).to.be.instanceOf(Error);
    const e = err as UnsupportedPlatformError;
    expect(e.code).to.equal('ERR_UNSUPPORTED_PLATFORM');
    expect(e.name).to.equal('UnsupportedPlatformError');
    expect(e.message).to.contain('darwin/x64');
    expect(e.message).to.contain('Linux');
  });

  it('an unknown Linux architecture throws UnsupportedPlatformError naming the supported arches', () => {
    const err = thrownBy(() => layoutFor('linux', 'riscv64'));
    expect(err).to.be.instanceOf(UnsupportedPlatformError);
    const e = err as UnsupportedPlatformError;
    expect(e.code).to.equal('ERR_UNSUPPORTED_PLATFORM');
    expect(e.message).to.contain('riscv64');
    expect(e.message).to.contain('linux/x64');
    expect(e.message).to.contain('linux/arm64');
  });

  it('an unknown architecture on another platform is reported as a platform problem too', () => {
    const err = thrownBy(() => layoutFor('win32', 'ia32'));
    expect(err).to.be.instanceOf(UnsupportedPlatformError);
    expect((err as UnsupportedPlatformError).code).to.equal('ERR_UNSUPPORTED_PLATFORM');
  });
});

describe('syscalls/constants: values', () => {
  it('epoll event bits match eventpoll.h', () => {
    expect(C.EPOLLIN).to.equal(1);
    expect(C.EPOLLPRI).to.equal(2);
    expect(C.EPOLLOUT).to.equal(4);
    expect(C.EPOLLERR).to.equal(8);
    expect(C.EPOLLHUP).to.equal(0x10);
    expect(C.EPOLLRDHUP).to.equal(0x2000);
    expect(C.EPOLLEXCLUSIVE).to.equal(0x10000000);
    expect(C.EPOLLONESHOT).to.equal(0x40000000);
    expect(C.EPOLLET).to.equal(0x80000000);
    expect(C.EPOLL_CTL_ADD).to.equal(1);
    expect(C.EPOLL_CTL_DEL).to.equal(2);
    expect(C.EPOLL_CTL_MOD).to.equal(3);
  });

  it('EPOLLET is an unsigned 32-bit value that survives `>>> 0` and combines with other bits', () => {
    expect(C.EPOLLET).to.be.greaterThan(0);
    expect(C.EPOLLET >>> 0).to.equal(C.EPOLLET);
    expect((C.EPOLLIN | C.EPOLLET) >>> 0).to.equal(0x80000001);
  });

  it('poll bits coincide with the epoll bits (one event vocabulary for both pollers)', () => {
    expect(C.POLLIN).to.equal(C.EPOLLIN);
    expect(C.POLLOUT).to.equal(C.EPOLLOUT);
    expect(C.POLLERR).to.equal(C.EPOLLERR);
    expect(C.POLLHUP).to.equal(C.EPOLLHUP);
    expect(C.POLLRDHUP).to.equal(C.EPOLLRDHUP);
    expect(C.POLLNVAL).to.equal(0x20);
  });

  it('socket, TCP and message constants match the uapi headers', () => {
    expect(C.AF_INET).to.equal(2);
    expect(C.AF_INET6).to.equal(10);
    expect(C.SOCK_STREAM).to.equal(1);
    expect(C.SOCK_NONBLOCK).to.equal(0o4000);
    expect(C.SOCK_CLOEXEC).to.equal(0o2000000);
    expect(C.SOL_SOCKET).to.equal(1);
    expect(C.SO_REUSEADDR).to.equal(2);
    expect(C.SO_RCVBUF).to.equal(8);
    expect(C.SO_REUSEPORT).to.equal(15);
    expect(C.SO_ACCEPTCONN).to.equal(30);
    expect(C.IPPROTO_TCP).to.equal(6);
    expect(C.TCP_NODELAY).to.equal(1);
    expect(C.TCP_KEEPIDLE).to.equal(4);
    expect(C.TCP_KEEPINTVL).to.equal(5);
    expect(C.TCP_KEEPCNT).to.equal(6);
    expect(C.TCP_DEFER_ACCEPT).to.equal(9);
    expect(C.TCP_USER_TIMEOUT).to.equal(18);
    expect(C.MSG_NOSIGNAL).to.equal(0x4000);
    expect(C.MSG_DONTWAIT).to.equal(0x40);
  });

  it('the *_NONBLOCK and *_CLOEXEC flags are all O_NONBLOCK / O_CLOEXEC, as the kernel defines them', () => {
    expect(C.SOCK_NONBLOCK).to.equal(C.O_NONBLOCK);
    expect(C.EFD_NONBLOCK).to.equal(C.O_NONBLOCK);
    expect(C.SOCK_CLOEXEC).to.equal(C.EPOLL_CLOEXEC);
    expect(C.EFD_CLOEXEC).to.equal(C.EPOLL_CLOEXEC);
    // Node exposes O_NONBLOCK through fs.constants on Linux.
    expect(C.O_NONBLOCK).to.equal(fsConstants.O_NONBLOCK);
  });

  it('well-known errno values', () => {
    expect(C.EAGAIN).to.equal(11);
    expect(C.ECONNRESET).to.equal(104);
    expect(C.EBADF).to.equal(9);
    expect(C.EINVAL).to.equal(22);
    expect(C.ENOTCONN).to.equal(107);
    expect(C.EADDRINUSE).to.equal(98);
    expect(C.EAFNOSUPPORT).to.equal(97);
  });

  it("every errno constant agrees with Node's os.constants.errno", () => {
    const nodeErrno = osConstants.errno as Readonly<Record<string, number>>;
    const ours = C as unknown as Readonly<Record<string, unknown>>;
    const compared: string[] = [];
    for (const [name, value] of Object.entries(nodeErrno)) {
      if (!(name in ours)) continue;
      expect(ours[name], name).to.equal(value);
      compared.push(name);
    }
    // Sanity: the comparison actually covered the errno block of constants.ts.
    expect(compared).to.include.members(['EAGAIN', 'ECONNRESET', 'EINTR', 'EPIPE', 'EADDRINUSE', 'EINPROGRESS']);
    expect(compared.length).to.be.at.least(25);
  });

  it('every E* export that is not an EPOLL/EFD flag is a known errno name', () => {
    const nodeErrno = osConstants.errno as Readonly<Record<string, number>>;
    const errnoLike = Object.keys(C).filter((k) => /^E[A-Z]+$/.test(k) && !k.startsWith('EPOLL'));
    expect(errnoLike.length).to.be.greaterThan(0);
    for (const name of errnoLike) expect(nodeErrno, name).to.have.property(name);
  });

  it('IOV_MAX is 1024', () => {
    expect(C.IOV_MAX).to.equal(1024);
  });
});
