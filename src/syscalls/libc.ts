/**
 * The libc bindings: the only module that talks to koffi (see the lint rule and
 * test/unit/syscalls/koffi-boundary.test.ts).
 *
 * Contract of every wrapper here, as in mio's `syscall!`: return the C result when it succeeds and
 * `-errno` when it fails. No wrapper allocates on failure, so `EAGAIN` and `EINTR` cost a compare
 * in the caller, never an Error object. Callers that must report a failure build a
 * `SyscallError` themselves.
 *
 * Koffi notes (koffi 3.3, measured in ARCHITECTURE.md): Buffers and typed arrays passed as
 * `void *` go by reference, without copy; `ssize_t` is declared `intptr_t`; `koffi.errno()` must be
 * read right after the call, before any other native call can overwrite it.
 */
import { Buffer } from 'node:buffer';
import { isMainThread } from 'node:worker_threads';
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { SyscallError, UnsupportedPlatformError } from '../common/errors.js';
import { IOV_MAX, LAYOUT } from './constants.js';

function loadLibc(): LibraryHandle {
  // glibc installs its soname as libc.so.6. Elsewhere (musl) fall back to the symbols already
  // loaded into the process: node links libc, so dlopen(NULL) sees every function we need.
  try {
    return koffi.load('libc.so.6');
  } catch {
    try {
      return koffi.load(null);
    } catch (err) {
      throw new UnsupportedPlatformError(`cannot load libc through koffi: ${(err as Error).message}`);
    }
  }
}

const libc = loadLibc();

// One prototype per line, in C, so that each can be checked against its man page.
const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, int *sv)'),
  setsockopt: libc.func('int setsockopt(int sockfd, int level, int optname, const void *optval, uint32_t optlen)'),
  getsockopt: libc.func('int getsockopt(int sockfd, int level, int optname, void *optval, void *optlen)'),
  bind: libc.func('int bind(int sockfd, const void *addr, uint32_t addrlen)'),
  listen: libc.func('int listen(int sockfd, int backlog)'),
  accept4: libc.func('int accept4(int sockfd, void *addr, void *addrlen, int flags)'),
  connect: libc.func('int connect(int sockfd, const void *addr, uint32_t addrlen)'),
  read: libc.func('intptr_t read(int fd, void *buf, size_t count)'),
  write: libc.func('intptr_t write(int fd, const void *buf, size_t count)'),
  writev: libc.func('intptr_t writev(int fd, const void *iov, int iovcnt)'),
  recv: libc.func('intptr_t recv(int sockfd, void *buf, size_t len, int flags)'),
  send: libc.func('intptr_t send(int sockfd, const void *buf, size_t len, int flags)'),
  shutdown: libc.func('int shutdown(int sockfd, int how)'),
  close: libc.func('int close(int fd)'),
  fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
  getsockname: libc.func('int getsockname(int sockfd, void *addr, void *addrlen)'),
  getpeername: libc.func('int getpeername(int sockfd, void *addr, void *addrlen)'),
  epoll_create1: libc.func('int epoll_create1(int flags)'),
  epoll_ctl: libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
  epoll_wait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *ifname)'),
  prctl: libc.func('int prctl(int option, ...)'),
};

// Scratch out-parameters for int-sized options and socklen_t (one thread, calls do not nest).
const intArg = new Int32Array(1);
const lenArg = new Uint32Array(1);

/** `errno` of the last failed call on this thread (koffi keeps it per call). */
function errno(): number {
  return koffi.errno();
}

export function socket(domain: number, type: number, protocol: number): number {
  const r = c.socket(domain, type, protocol) as number;
  return r >= 0 ? r : -errno();
}

/** setsockopt with a C `int` value. */
/**
 * socketpair(2): two connected sockets, `[fd0, fd1]`, or -errno. AF_UNIX stream pairs give the
 * transport a real kernel socket to read and write without a TCP handshake (the Connection's unit
 * tests use them).
 */
export function socketpair(domain: number, type: number, protocol: number): [number, number] | number {
  const sv = new Int32Array(2); // typed arrays go by reference: the kernel writes the pair into it
  const r = c.socketpair(domain, type, protocol, sv) as number;
  return r === 0 ? [sv[0] as number, sv[1] as number] : -errno();
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): number {
  intArg[0] = value;
  const r = c.setsockopt(fd, level, name, intArg, 4) as number;
  return r === 0 ? 0 : -errno();
}

/** setsockopt with an arbitrary struct (linger, …). */
export function setsockoptBytes(fd: number, level: number, name: number, value: Uint8Array): number {
  const r = c.setsockopt(fd, level, name, value, value.byteLength) as number;
  return r === 0 ? 0 : -errno();
}

/**
 * getsockopt for a C `int` option. Returns the value (>= 0 for every option we read) or -errno;
 * options that can be negative must not use this wrapper.
 */
export function getsockoptInt(fd: number, level: number, name: number): number {
  intArg[0] = 0;
  lenArg[0] = 4;
  const r = c.getsockopt(fd, level, name, intArg, lenArg) as number;
  return r === 0 ? (intArg[0] as number) : -errno();
}

export function bind(fd: number, addr: Uint8Array): number {
  const r = c.bind(fd, addr, addr.byteLength) as number;
  return r === 0 ? 0 : -errno();
}

export function listen(fd: number, backlog: number): number {
  const r = c.listen(fd, backlog) as number;
  return r === 0 ? 0 : -errno();
}

/**
 * accept4(2). With `addr` (a sockaddr_storage-sized buffer) and `addrLen` (one socklen_t, set to
 * `addr.length` before the call), the kernel fills in the peer's address as it accepts — in the
 * same syscall, so the peer stays known after the descriptor is closed, without a getpeername()
 * per connection. The caller owns both buffers (they are reused for every accept).
 */
export function accept4(fd: number, flags: number, addr?: Uint8Array, addrLen?: Uint32Array): number {
  let r: number;
  if (addr === undefined || addrLen === undefined) r = c.accept4(fd, null, null, flags) as number;
  else {
    addrLen[0] = addr.length;
    r = c.accept4(fd, addr, addrLen, flags) as number;
  }
  return r >= 0 ? r : -errno();
}

export function connect(fd: number, addr: Uint8Array): number {
  const r = c.connect(fd, addr, addr.byteLength) as number;
  return r === 0 ? 0 : -errno();
}

export function read(fd: number, buf: Uint8Array, len: number): number {
  const r = c.read(fd, buf, len) as number;
  return r >= 0 ? r : -errno();
}

export function write(fd: number, buf: Uint8Array, len: number): number {
  const r = c.write(fd, buf, len) as number;
  return r >= 0 ? r : -errno();
}

export function recv(fd: number, buf: Uint8Array, len: number, flags: number): number {
  const r = c.recv(fd, buf, len, flags) as number;
  return r >= 0 ? r : -errno();
}

export function send(fd: number, buf: Uint8Array, len: number, flags: number): number {
  const r = c.send(fd, buf, len, flags) as number;
  return r >= 0 ? r : -errno();
}

// One iovec array per process: writev is called from one thread and returns before the next call.
const iovecs = Buffer.alloc(IOV_MAX * LAYOUT.iovecSize);

/**
 * writev over `count` buffers of `bufs` starting at `start`, the first one from `firstOffset`.
 * The iovec entries get the buffers' addresses (`koffi.address`): the backing stores of Node
 * Buffers live outside the V8 heap and do not move, and the call returns before JS runs again.
 */
export function writevBuffers(
  fd: number,
  bufs: readonly Uint8Array[],
  start: number,
  count: number,
  firstOffset: number,
): number {
  const n = Math.min(count, IOV_MAX);
  for (let i = 0; i < n; i++) {
    const b = bufs[start + i] as Uint8Array;
    const skip = i === 0 ? firstOffset : 0;
    const at = i * LAYOUT.iovecSize;
    iovecs.writeBigUInt64LE(koffi.address(b) + BigInt(skip), at);
    iovecs.writeUInt32LE(b.byteLength - skip, at + 8);
    iovecs.writeUInt32LE(0, at + 12);
  }
  const r = c.writev(fd, iovecs, n) as number;
  return r >= 0 ? r : -errno();
}

export function shutdown(fd: number, how: number): number {
  const r = c.shutdown(fd, how) as number;
  return r === 0 ? 0 : -errno();
}

/**
 * close(2). Never retried on EINTR: Linux releases the descriptor before it can report EINTR, so
 * a retry could close a descriptor that another open just reused (close(2), "Dealing with error
 * returns from close()").
 */
export function close(fd: number): number {
  const r = c.close(fd) as number;
  return r === 0 ? 0 : -errno();
}

/** fcntl with an int argument (F_GETFL, F_SETFL, F_GETFD, F_SETFD). */
export function fcntl(fd: number, cmd: number, arg: number): number {
  const r = c.fcntl(fd, cmd, 'int', arg) as number;
  return r >= 0 ? r : -errno();
}

const nameBuf = Buffer.alloc(LAYOUT.sockaddrStorageSize);

/** getsockname into a shared buffer; returns the length or -errno. Read the bytes before the next call. */
export function getsockname(fd: number): { readonly buf: Buffer; readonly len: number } | number {
  lenArg[0] = nameBuf.length;
  const r = c.getsockname(fd, nameBuf, lenArg) as number;
  return r === 0 ? { buf: nameBuf, len: lenArg[0] as number } : -errno();
}

/** getpeername, same contract as {@link getsockname}. */
export function getpeername(fd: number): { readonly buf: Buffer; readonly len: number } | number {
  lenArg[0] = nameBuf.length;
  const r = c.getpeername(fd, nameBuf, lenArg) as number;
  return r === 0 ? { buf: nameBuf, len: lenArg[0] as number } : -errno();
}

export function epollCreate1(flags: number): number {
  const r = c.epoll_create1(flags) as number;
  return r >= 0 ? r : -errno();
}

// One struct epoll_event for epoll_ctl, viewed as 32-bit words. Data is a u64 we split in two
// u32 (fd low, generation high), at the arch's offset (4 on x64, where the struct is packed).
const ctlEvent = new Uint32Array(LAYOUT.epollEventSize / 4);
const CTL_DATA = LAYOUT.epollEventDataOffset / 4;

/** epoll_ctl; `dataLo`/`dataHi` become `event.data.u64`. */
export function epollCtl(epfd: number, op: number, fd: number, events: number, dataLo: number, dataHi: number): number {
  ctlEvent[0] = events >>> 0;
  ctlEvent[CTL_DATA] = dataLo >>> 0;
  ctlEvent[CTL_DATA + 1] = dataHi >>> 0;
  const r = c.epoll_ctl(epfd, op, fd, ctlEvent) as number;
  return r === 0 ? 0 : -errno();
}

export function epollWait(epfd: number, events: Uint8Array | Uint32Array, maxEvents: number, timeout: number): number {
  const r = c.epoll_wait(epfd, events, maxEvents, timeout) as number;
  return r >= 0 ? r : -errno();
}

/** poll(2) on a `struct pollfd[]` buffer, blocking the calling thread. */
export function poll(fds: Uint8Array, nfds: number, timeout: number): number {
  const r = c.poll(fds, nfds, timeout) as number;
  return r >= 0 ? r : -errno();
}

/**
 * poll(2) on one of koffi's worker threads; `done(result)` runs on the main thread with the count
 * or -errno. `fds` must not be touched until `done` runs: the other thread reads and writes it.
 */
export function pollAsync(fds: Uint8Array, nfds: number, timeout: number, done: (result: number) => void): void {
  c.poll.async(fds, nfds, timeout, (err: unknown, res: unknown) => {
    // koffi swallows exceptions thrown in this callback; `done` must not throw (the poller
    // wraps its dispatch in try/catch).
    if (err) {
      done(-(errno() || 5)); // EIO when koffi itself failed
      return;
    }
    const r = res as number;
    done(r >= 0 ? r : -errno());
  });
}

export function eventfd(initval: number, flags: number): number {
  const r = c.eventfd(initval, flags) as number;
  return r >= 0 ? r : -errno();
}

const counter = new BigUint64Array(1);
const counterBytes = new Uint8Array(counter.buffer);

/** Adds `value` to an eventfd counter (wakes a poll on it). */
export function eventfdWrite(fd: number, value: number): number {
  counter[0] = BigInt(value);
  return write(fd, counterBytes, 8);
}

/** Reads and resets an eventfd counter; returns 8 or -errno. */
export function eventfdRead(fd: number): number {
  return read(fd, counterBytes, 8);
}

/** Interface name → index, 0 when unknown (if_nametoindex(3)). */
export function ifNameToIndex(name: string): number {
  return c.if_nametoindex(name) as number;
}

// prctl(2) options (linux/prctl.h).
const PR_SET_PDEATHSIG = 1;
const PR_GET_PDEATHSIG = 2;

/**
 * prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when the *thread*
 * that created it exits (prctl(2)) — when the parent process dies, or only one of its threads.
 * 0 clears it. Cleared in the child of a fork, kept across execve. Returns 0 or -errno.
 */
export function setParentDeathSignal(signal: number): number {
  const r = c.prctl(PR_SET_PDEATHSIG, 'unsigned long', signal) as number;
  return r === 0 ? 0 : -errno();
}

/** prctl(PR_GET_PDEATHSIG): the signal set by {@link setParentDeathSignal} (0: none), or -errno. */
export function getParentDeathSignal(): number {
  intArg[0] = 0;
  const r = c.prctl(PR_GET_PDEATHSIG, 'int *', intArg) as number;
  return r === 0 ? (intArg[0] as number) : -errno();
}

export interface FdWatch {
  /** Stops watching and releases the libuv handle (asynchronously, as uv_close does). */
  close(): void;
  /** Lets the process exit while this watch is the only thing left. */
  unref(): void;
  ref(): void;
}

/**
 * libuv's poll handle, driven directly: `uv_poll_init/start/stop`, `uv_close`, `uv_ref/unref`,
 * called through koffi on the symbols the node binary exports for addons, with a registered koffi
 * callback as the `uv_poll_cb`.
 *
 * Why not `koffi.node.poll`, which does the same: on every wake-up it builds an options object and
 * sets three named properties on it (string internalisation, map transitions) before calling us —
 * ~0.5 µs per wake-up, measured with an eventfd ping-pong (1.55 µs per round trip against 1.04 µs
 * here). In plaintext HTTP under wrk a worker wakes for 2–3 requests, so that was ~0.2 µs of CPU
 * per request. Semantics are the same: the callback runs in libuv's poll phase, and promise jobs
 * queued in it run after the phase, as with koffi.node.poll (checked in the unit tests).
 *
 * Only on the main thread: `uv_default_loop()` is the main thread's loop, and a worker_threads
 * Worker has its own, which only N-API can name; there (and where the symbols are missing) we fall
 * back to koffi.node.poll. `MULTIREACTOR_FD_WATCH=koffi` forces the fallback (for comparisons).
 */
interface UvBindings {
  readonly loop: unknown;
  readonly handleSize: number;
  readonly pollInit: (loop: unknown, handle: unknown, fd: number) => number;
  readonly pollStart: (handle: unknown, events: number, cb: unknown) => number;
  readonly pollStop: (handle: unknown) => number;
  readonly close: (handle: unknown, cb: unknown) => void;
  readonly ref: (handle: unknown) => void;
  readonly unref: (handle: unknown) => void;
  readonly pollCbType: TypeObject;
  /** The one uv_close_cb of every handle: releases what the handle's watch holds. */
  readonly closeCb: bigint;
  /** Handles whose uv_close has not called back yet, by address. */
  readonly closing: Map<number, () => void>;
}

const UV_POLL = 8; // uv_handle_type (uv.h); uv_handle_size checks it is a poll handle's size
const UV_READABLE = 1;

function loadUv(): UvBindings | undefined {
  if (process.env.MULTIREACTOR_FD_WATCH === 'koffi' || !isMainThread) return undefined;
  try {
    const self = koffi.load(null);
    const pollCbType = koffi.proto('void multireactor_uv_poll_cb(intptr_t handle, int status, int events)');
    const closeCbType = koffi.proto('void multireactor_uv_close_cb(intptr_t handle)');
    const handleSize = Number(self.func('size_t uv_handle_size(int type)')(UV_POLL));
    if (!(handleSize > 0 && handleSize < 4096)) return undefined;
    const closing = new Map<number, () => void>();
    const closeCb = koffi.register((address: number) => {
      const release = closing.get(address);
      closing.delete(address);
      release?.();
    }, koffi.pointer(closeCbType));
    return {
      loop: self.func('void *uv_default_loop(void)')(),
      handleSize,
      pollInit: self.func('int uv_poll_init(void *loop, void *handle, int fd)'),
      pollStart: self.func('int uv_poll_start(void *handle, int events, multireactor_uv_poll_cb *cb)'),
      pollStop: self.func('int uv_poll_stop(void *handle)'),
      close: self.func('void uv_close(void *handle, multireactor_uv_close_cb *cb)'),
      ref: self.func('void uv_ref(void *handle)'),
      unref: self.func('void uv_unref(void *handle)'),
      pollCbType,
      closeCb,
      closing,
    };
  } catch {
    return undefined;
  }
}

let uv: UvBindings | null | undefined = null; // null: not loaded yet

/** Which mechanism `watchReadable` uses in this thread (for logs and benchmarks). */
export function fdWatchKind(): 'uv_poll' | 'koffi.node.poll' {
  if (uv === null) uv = loadUv();
  return uv === undefined ? 'koffi.node.poll' : 'uv_poll';
}

/** uv_poll handles closed whose uv_close has not called back yet (their memory is still held). */
export function pendingWatchCloses(): number {
  return uv === null || uv === undefined ? 0 : uv.closing.size;
}

/**
 * Watches `fd` for readability from Node's own libuv loop: a uv_poll handle (see UvBindings for
 * how it is driven). The callback runs on the main thread in libuv's poll phase, with timers, IPC
 * and promise jobs still running around it; nothing blocks and nothing spins. We take neither the
 * status nor the events: the owner drains the fd itself.
 */
export function watchReadable(fd: number, onReadable: () => void): FdWatch {
  if (uv === null) uv = loadUv();
  const b = uv;
  if (b === undefined) {
    const handle = koffi.node.poll(fd, { readable: true }, () => onReadable());
    return {
      close: () => handle.close(),
      unref: () => handle.unref(),
      ref: () => handle.ref(),
    };
  }
  const memory = koffi.alloc('uint8_t', b.handleSize);
  const pollCb = koffi.register(() => onReadable(), koffi.pointer(b.pollCbType));
  const release = () => {
    koffi.unregister(pollCb);
    koffi.free(memory);
  };
  let r = b.pollInit(b.loop, memory, fd);
  if (r === 0) {
    r = b.pollStart(memory, UV_READABLE, pollCb);
    if (r !== 0) {
      // Initialised: the handle is in the loop's list and must go through uv_close.
      b.closing.set(Number(koffi.address(memory)), release);
      b.close(memory, b.closeCb);
    }
  } else {
    release();
  }
  // libuv errors are negated errnos (uv-errno.h on Unix).
  if (r !== 0) throw new SyscallError('uv_poll_start', -r);
  let open = true;
  return {
    close: () => {
      if (!open) return;
      open = false;
      b.pollStop(memory);
      // The memory and the callback stay valid until libuv calls back: uv_close is asynchronous.
      b.closing.set(Number(koffi.address(memory)), release);
      b.close(memory, b.closeCb);
    },
    unref: () => {
      if (open) b.unref(memory);
    },
    ref: () => {
      if (open) b.ref(memory);
    },
  };
}
