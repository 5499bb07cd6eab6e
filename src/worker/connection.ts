/**
 * A TCP connection on a loop: the bottom of a pipeline.
 *
 * Reads: `read()` into the loop's shared buffer, sized adaptively per connection (grow when a
 * read fills its size, shrink after two reads that fill less than half — Netty's
 * AdaptiveRecvByteBufAllocator), at most `maxReadPerWakeup` bytes per wake-up so that one fast
 * peer cannot starve the rest (gnet does the same). The pipeline sees a view of the shared
 * buffer, valid during `onRead` only; decoders copy just the leftover.
 *
 * Writes: chunks queue in order; a flush tries to write at once — one send() for a single chunk
 * or for small ones copied together, writev() for large batches — and only what the kernel
 * refused stays queued. Level-triggered, EPOLLOUT is armed while that queue is non-empty and
 * disarmed when it drains (an always-armed EPOLLOUT would wake us on every loop). Above the high
 * watermark the channel turns unwritable and stops reading: a peer that does not read our
 * answers gets no more of its requests read, instead of making us buffer without bound.
 *
 * Closing: `close()` flushes, then closes (aborting after `closeTimeout`); `abort()` closes now.
 * `read() == 0` (or EPOLLRDHUP) is the peer's FIN: with `allowHalfOpen` the pipeline hears
 * `onInputShutdown` and may still write; otherwise we close after flushing. ECONNRESET/EPIPE
 * close quietly (counted); other failures reach `onError` as a `SyscallError`.
 *
 * Errno discipline: every syscall result is compared with -EAGAIN/-EINTR as numbers; an
 * Error object is built only for failures a user must hear about.
 *
 * Memory: a server holds many idle connections, so an idle one holds little (docs/benchmarks.md,
 * "Connections"). Its flags, the registered interest and the close reason share one integer; the
 * outbound queue is taken from the loop when something is written and given back when it drained;
 * what few connections need (holds on reading, a close timer, decoded addresses, byte counts past
 * 2^29) lives in a side object made on first use; and every number field stays a small integer
 * (a Smi), since a double field costs a 16-byte box per object in V8.
 */
import { Buffer } from 'node:buffer';
import { isOutboundView } from '../common/buffer-view.js';
import { CLOSE_REASONS } from '../common/close-reason.js';
import {
  ChannelClosedError,
  DecoderError,
  errorLine,
  ProtocolError,
  SyscallError,
  UnsupportedMessageError,
} from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Timeout, Timers, TimerTarget } from '../common/timing-wheel.js';
import { type Channel, checkProxiedAddresses, type ProxiedAddresses, type Transport } from '../pipeline/channel.js';
import type { CloseReason } from '../pipeline/handler.js';
import { createPipeline, type Pipeline, type PipelineSpec } from '../pipeline/pipeline.js';
import { installStages, type ServerStage } from '../pipeline/stages.js';
import {
  EAGAIN,
  ECONNRESET,
  EINTR,
  ENOTCONN,
  EPIPE,
  ETIMEDOUT,
  IOV_MAX,
  MSG_NOSIGNAL,
  SHUT_WR,
} from '../syscalls/constants.js';
import {
  close as sysClose,
  read as sysRead,
  send as sysSend,
  shutdown as sysShutdown,
  writevBuffers,
} from '../syscalls/libc.js';
import {
  type PackedAddress,
  type PackedIPv6,
  packSockaddr,
  type SocketAddress,
  unpackAddress,
} from '../syscalls/sockaddr.js';
import {
  applySocketOptions,
  type EffectiveSocketOptions,
  localAddress,
  peerAddress,
  readSocketOptions,
  type SocketOptions,
  setLingerReset,
  socketError,
  validateSocketOptions,
} from '../syscalls/socket.js';
import { COALESCE_LIMIT, type EventLoop, type IoHandle, type ReadAgain } from './loop.js';
import type { ResolvedConnectionOptions } from './options.js';
import { type OutboundQueue, sharesMemory } from './outbound-queue.js';
import { ERROR, HANGUP, READ_CLOSED, READABLE, WRITABLE } from './poller.js';

// State bits.
const INPUT_SHUT = 1 << 0;
const OUTPUT_SHUT = 1 << 1;
const CLOSING = 1 << 2;
const CLOSED = 1 << 3;
const SHUTDOWN_PENDING = 1 << 4;
/** The kernel refused part of a write; wait for writability. */
const WRITE_BLOCKED = 1 << 5;
/** Reading paused because our queue for this peer is over the high watermark. */
const BACKPRESSURED = 1 << 6;
/** The application set autoRead = false. */
const NO_AUTO_READ = 1 << 7;
/** Inside onIoEvent: interest updates and onInactive wait for its end. */
const IN_EVENT = 1 << 8;
const INACTIVE_PENDING = 1 << 9;
const READ_SCHEDULED = 1 << 10;
/**
 * An event said the peer's FIN is queued (EPOLLRDHUP/EPOLLHUP). It raises no further edge, so
 * from then on reads go on until read() returns 0 — also in reads resumed later.
 */
const FIN_QUEUED = 1 << 11;
/**
 * Closing after our FIN: reading only to discard, until the peer's FIN or `lingerTimeout`
 * (see `finishClose`).
 */
const LINGERING = 1 << 12;
/** Some stage holds reading paused (`pauseReading`). */
const READ_HELD = 1 << 13;
/** Any of these stops reading (except while lingering, which reads to discard). */
const NO_READ = INPUT_SHUT | CLOSING | CLOSED | BACKPRESSURED | NO_AUTO_READ | READ_HELD;
/** The last read filled less than half its size: one more such read shrinks the read size. */
const SHRINK_NEXT = 1 << 14;
/** Over the high watermark, until the queue drains below the low one (`isWritable` false). */
const UNWRITABLE = 1 << 15;
/** Level-triggered: the interest registered now — reading (READABLE | READ_CLOSED), writing (WRITABLE). */
const WANT_READ = 1 << 16;
const WANT_WRITE = 1 << 17;
/** `open()` succeeded: `onClosed` will be called once the pipeline heard `onInactive`. */
const OPENED = 1 << 18;
/** The close reason (pending while closing, final once closed): its index in CLOSE_REASONS, plus 1. */
const REASON_SHIFT = 20;
const REASON_MASK = 15 << REASON_SHIFT;
/** The read size: an index into the server's `readSizes` (at most 22 of them: options.ts). */
const READ_SIZE_SHIFT = 24;
const READ_SIZE_MASK = 31 << READ_SIZE_SHIFT;
const REASON_CODE = Object.fromEntries(CLOSE_REASONS.map((r, i) => [r, i + 1])) as Record<CloseReason, number>;

/**
 * Byte counts stay below this in the connection's own fields, so that they remain small integers
 * (Smis: 31 bits with pointer compression, 32 without); the rest is carried into `ConnectionExtras`.
 */
const COUNT_CARRY = 1 << 29;

/** Whether the state allows reading: normally, or to discard while lingering. */
function readable(state: number): boolean {
  return (state & NO_READ) === 0 || (state & (LINGERING | CLOSED)) === LINGERING;
}

let nextChannelId = 1;

/** What few connections need, made on first use (see the module comment). */
class ConnectionExtras {
  /** Who paused reading (`pauseReading`). */
  readHolders: object[] | undefined = undefined;
  /** The close timeout, then the linger timeout (`onTimeout`). */
  closeTimer: Timeout | undefined = undefined;
  /** The socket's peer as decoded on first use; until then only the packed words. */
  remote: SocketAddress | undefined = undefined;
  /** The socket's own address, looked up on first use or given (`setSocketAddresses`). */
  local: SocketAddress | undefined = undefined;
  /** What a stage reported of the real endpoints (`setProxiedAddresses`). */
  proxied: ProxiedAddresses | undefined = undefined;
  /** The rest of an IPv6 peer (sockaddr.ts `PackedAddress`). */
  addrV6: PackedIPv6 | undefined = undefined;
  /** Bytes read and written carried out of the connection's own counters (multiples of COUNT_CARRY). */
  bytesReadCarried = 0;
  bytesWrittenCarried = 0;
}

/** Options shared by every connection of a server (resolved once). */
export interface ConnectionContext {
  readonly loop: EventLoop;
  readonly pipeline: PipelineSpec;
  readonly options: ResolvedConnectionOptions;
  /**
   * The connections' own address when the listener knows it without a syscall (bound to one
   * address): shared by all of them, not kept per connection.
   */
  readonly local?: SocketAddress | undefined;
  /** Who made the connections (a server), to find its own among a loop's handles (`madeBy`). */
  readonly owner?: object | undefined;
  /** Stages put before the user's pipeline (PROXY protocol, TLS: pipeline/stages.ts). */
  readonly stages?: readonly ServerStage[] | undefined;
  /**
   * Called after the pipeline heard `onInactive`, once, for a connection whose `open()` returned
   * true (one that failed to open is the caller's to account for).
   */
  readonly onClosed?: (conn: Connection) => void;
}

export class Connection implements Channel, Transport, IoHandle, ReadAgain, PackedAddress, TimerTarget {
  readonly id = nextChannelId++;
  token = 0;
  /** @internal The socket's peer from accept/connect, packed (sockaddr.ts `PackedAddress`): no string until asked. */
  addrTag = 0;
  /** @internal */ addrW0 = 0;
  private fdValue: number;
  /** Flags, the registered interest, the close reason and the read size (the constants above). */
  private state: number;
  /** Bytes read and written, below COUNT_CARRY; the rest in `more`. */
  private rx = 0;
  private tx = 0;
  /** What was written and not yet accepted by the kernel; taken from the loop while non-empty. */
  private out: OutboundQueue | undefined = undefined;
  private pipelineRef: Pipeline | undefined = undefined;
  private more: ConnectionExtras | undefined = undefined;
  private readonly ctx: ConnectionContext;

  constructor(ctx: ConnectionContext, fd: number) {
    this.ctx = ctx;
    this.fdValue = fd;
    this.state = ctx.options.initialReadIndex << READ_SIZE_SHIFT;
  }

  /** @internal Whether `owner` made this connection (`ConnectionContext.owner`: a server's, among a loop's handles). */
  madeBy(owner: object): boolean {
    return this.ctx.owner === owner;
  }

  private extras(): ConnectionExtras {
    if (this.more === undefined) this.more = new ConnectionExtras();
    return this.more;
  }

  /**
   * Registers the socket and builds the pipeline. Returns false (with the descriptor closed) when
   * that fails — a pipeline constructor that throws, or an fd the poller refuses.
   */
  open(): boolean {
    const loop = this.ctx.loop;
    this.state |= WANT_READ;
    const interest = loop.edge ? READABLE | WRITABLE | READ_CLOSED | loop.connectionFlags : READABLE | READ_CLOSED;
    const r = loop.register(this, interest);
    if (r < 0) {
      loop.logger.error(`cannot register connection fd ${this.fdValue}`, new SyscallError('epoll_ctl', -r));
      sysClose(this.fdValue);
      this.fdValue = -1;
      this.state |= CLOSED;
      return false;
    }
    loop.stats.active++;
    this.state |= IN_EVENT;
    try {
      const pipeline = createPipeline(this.ctx.pipeline, this);
      this.pipelineRef = pipeline;
      pipeline.attach(this, this);
      const stages = this.ctx.stages;
      if (stages !== undefined && stages.length > 0) installStages(pipeline, this, this, stages);
    } catch (err) {
      // One line per connection, not a stack each (a pipeline that cannot be built fails every
      // connection); the stack at debug level.
      const peer = this.remoteAddress;
      loop.logger.error(
        `connection ${this.id}${peer ? ` from ${peer.address}:${peer.port}` : ''}: pipeline initialisation failed; closing: ${errorLine(err)}`,
      );
      loop.logger.debug('pipeline initialisation failed:', err);
      this.pipelineRef = undefined;
      this.state &= ~IN_EVENT;
      this.closeNow('error');
      return false;
    }
    this.state |= OPENED;
    this.pipelineRef.fireActive();
    this.endEvent();
    return true;
  }

  // ---- Channel ----

  get fd(): number {
    return this.fdValue;
  }

  get pipeline(): Pipeline {
    if (this.pipelineRef === undefined) throw new Error('connection has no pipeline yet');
    return this.pipelineRef;
  }

  get timers(): Timers {
    return this.ctx.loop.timers;
  }

  get logger(): Logger {
    return this.ctx.loop.logger;
  }

  get bytesRead(): number {
    return this.more === undefined ? this.rx : this.rx + this.more.bytesReadCarried;
  }

  get bytesWritten(): number {
    return this.more === undefined ? this.tx : this.tx + this.more.bytesWrittenCarried;
  }

  /** Set once the connection closed: why. */
  get closeReason(): CloseReason | undefined {
    return (this.state & CLOSED) === 0 ? undefined : this.reason;
  }

  /** The close reason kept in the state (pending while closing). */
  private get reason(): CloseReason {
    const code = (this.state & REASON_MASK) >>> REASON_SHIFT;
    return code === 0 ? 'local' : (CLOSE_REASONS[code - 1] as CloseReason);
  }

  private set reason(r: CloseReason) {
    this.state = (this.state & ~REASON_MASK) | (REASON_CODE[r] << REASON_SHIFT);
  }

  /** @internal The rest of an IPv6 peer (`PackedAddress`), kept with the rarely needed state. */
  get addrV6(): PackedIPv6 | undefined {
    return this.more?.addrV6;
  }

  set addrV6(v: PackedIPv6 | undefined) {
    if (v !== undefined || this.more !== undefined) this.extras().addrV6 = v;
  }

  /**
   * Remembers the socket's addresses as accept(2)/connect(2) gave them, before `open()`: the peer's
   * sockaddr packed into a few numbers (decoded when first asked), and the local address when the
   * caller knows it without a syscall (a listener bound to one address), shared, not copied.
   */
  setSocketAddresses(peer: Uint8Array, peerLength: number, local?: SocketAddress): void {
    packSockaddr(peer, peerLength, this);
    if (local !== undefined) this.extras().local = local;
  }

  get remoteAddress(): SocketAddress | undefined {
    const p = this.more?.proxied;
    if (p !== undefined && p.remote !== undefined) return p.remote;
    return this.socketRemoteAddress;
  }

  get localAddress(): SocketAddress | undefined {
    const p = this.more?.proxied;
    if (p !== undefined && p.local !== undefined) return p.local;
    return this.socketLocalAddress;
  }

  get socketRemoteAddress(): SocketAddress | undefined {
    let remote = this.more?.remote;
    if (remote === undefined) {
      // Packed at accept/connect; getpeername only for a socket handed over without them.
      if (this.addrTag !== 0) remote = unpackAddress(this);
      else if (this.fdValue >= 0) remote = peerAddress(this.fdValue);
      if (remote !== undefined) this.extras().remote = remote;
    }
    return remote;
  }

  get proxied(): ProxiedAddresses | undefined {
    return this.more?.proxied;
  }

  setProxiedAddresses(proxied: ProxiedAddresses): void {
    checkProxiedAddresses(proxied);
    this.extras().proxied = proxied;
  }

  get socketLocalAddress(): SocketAddress | undefined {
    const known = this.more?.local ?? this.ctx.local;
    if (known !== undefined || this.fdValue < 0) return known;
    // A wildcard listener or a client connection: getsockname once, remembered.
    try {
      const local = localAddress(this.fdValue);
      if (local !== undefined) this.extras().local = local;
      return local;
    } catch {
      return undefined;
    }
  }

  get isActive(): boolean {
    return (this.state & CLOSED) === 0;
  }

  get isWritable(): boolean {
    return (this.state & (UNWRITABLE | CLOSED | CLOSING | OUTPUT_SHUT | SHUTDOWN_PENDING)) === 0;
  }

  get isInputShutdown(): boolean {
    return (this.state & INPUT_SHUT) !== 0;
  }

  get isOutputShutdown(): boolean {
    return (this.state & OUTPUT_SHUT) !== 0;
  }

  get pendingWriteBytes(): number {
    return this.out === undefined ? 0 : this.out.bytes;
  }

  get autoRead(): boolean {
    return (this.state & NO_AUTO_READ) === 0;
  }

  set autoRead(on: boolean) {
    if (on === this.autoRead) return;
    if (on) {
      this.state &= ~NO_AUTO_READ;
      this.readingMayResume();
    } else {
      this.state |= NO_AUTO_READ;
      this.interestChanged();
    }
  }

  pauseReading(holder: object): void {
    const more = this.extras();
    if (more.readHolders === undefined) more.readHolders = [];
    const holders = more.readHolders;
    if (holders.includes(holder)) return;
    holders.push(holder);
    if (holders.length === 1) {
      this.state |= READ_HELD;
      this.interestChanged();
    }
  }

  resumeReading(holder: object): void {
    const more = this.more;
    const holders = more?.readHolders;
    const i = holders === undefined ? -1 : holders.indexOf(holder);
    if (i < 0) return;
    (holders as object[]).splice(i, 1);
    if ((holders as object[]).length === 0) {
      // Let the array go: a connection paused once (a response piling up) is usually not again.
      (more as ConnectionExtras).readHolders = undefined;
      this.state &= ~READ_HELD;
      this.readingMayResume();
    }
  }

  get isReadingPaused(): boolean {
    return (this.state & READ_HELD) !== 0;
  }

  write(msg: unknown): void {
    this.pipeline.write(msg);
  }

  flush(): void {
    this.pipeline.flush();
  }

  writeAndFlush(msg: unknown): void {
    this.pipeline.writeAndFlush(msg);
  }

  close(reason: CloseReason = 'local'): void {
    if (this.pipelineRef === undefined) this.transportClose(reason);
    else this.pipelineRef.close(reason);
  }

  shutdownOutput(): void {
    this.pipeline.shutdownOutput();
  }

  abort(reason: CloseReason = 'aborted'): void {
    this.closeNow(reason);
  }

  setSocketOptions(options: SocketOptions): void {
    validateSocketOptions(options);
    if (this.fdValue < 0) throw new ChannelClosedError('cannot set socket options: the connection is closed');
    const r = applySocketOptions(this.fdValue, options);
    if (r < 0) throw new SyscallError('setsockopt', -r);
  }

  getSocketOptions(): EffectiveSocketOptions {
    if (this.fdValue < 0) throw new ChannelClosedError('cannot read socket options: the connection is closed');
    return readSocketOptions(this.fdValue);
  }

  countRequest(): void {
    this.ctx.loop.stats.requests++;
  }

  /** Closes with RST instead of FIN (SO_LINGER 0): the peer sees ECONNRESET. */
  reset(): void {
    if (this.fdValue >= 0) setLingerReset(this.fdValue);
    this.closeNow('aborted');
  }

  // ---- events ----

  onIoEvent(events: number): void {
    this.state |= IN_EVENT;
    // Writability first: draining our queue may let this read's answers go straight out.
    if ((events & WRITABLE) !== 0) this.onWritable();
    // HANGUP/ERROR also go through read(): it returns the data still buffered, then 0 or the
    // error (ECONNRESET), which tells us why better than the event bits do.
    if ((events & (READ_CLOSED | HANGUP)) !== 0) this.state |= FIN_QUEUED;
    if ((events & (READABLE | READ_CLOSED | HANGUP | ERROR)) !== 0 && readable(this.state)) {
      this.readLoop();
    }
    if ((events & (HANGUP | ERROR)) !== 0 && (this.state & CLOSED) === 0) this.onHangup(events);
    this.endEvent();
  }

  readAgain(): void {
    this.state &= ~READ_SCHEDULED;
    if (!readable(this.state)) return;
    this.state |= IN_EVENT;
    this.readLoop();
    this.endEvent();
  }

  private endEvent(): void {
    this.state &= ~IN_EVENT;
    if ((this.state & CLOSED) !== 0) {
      if ((this.state & INACTIVE_PENDING) !== 0) this.fireInactive();
    } else {
      this.updateInterest();
    }
  }

  private readLoop(): void {
    if ((this.state & LINGERING) !== 0) {
      this.discardLoop();
      return;
    }
    const loop = this.ctx.loop;
    const opts = this.ctx.options;
    const cap = opts.maxReadPerWakeup;
    const sizes = opts.readSizes;
    const pipeline = this.pipelineRef as Pipeline;
    let total = 0;
    let eof = false;
    for (;;) {
      const want = sizes[(this.state & READ_SIZE_MASK) >>> READ_SIZE_SHIFT] as number;
      // Fetched each time: a decoder may have claimed the previous buffer (read-loan.ts).
      const buf = loop.readBuffer;
      const n = sysRead(this.fdValue, buf, want);
      if (n > 0) {
        total += n;
        this.rx += n;
        if (this.rx >= COUNT_CARRY) this.carryRead();
        loop.stats.bytesIn += n;
        this.adaptReadSize(n, want, sizes.length - 1);
        pipeline.fireRead(loop.readView(n));
        if ((this.state & NO_READ) !== 0) break;
        if (n < want && (this.state & FIN_QUEUED) === 0) {
          // A short read means the receive queue was empty at that moment; any byte arriving
          // later raises a new edge, so even in edge mode we need not read to EAGAIN. Not so
          // when the FIN is already queued behind the data: it raises no new edge, so then we
          // read on until read() returns 0.
          if (loop.edge) loop.rearm(this, READABLE);
          break;
        }
        if (total >= cap) {
          // Fair share used. Level-triggered, epoll reports the rest again; edge-triggered it
          // will not, so we come back after this batch. Either way not before Node's loop ran:
          // the poller does not ask epoll again in this wake-up.
          if (loop.edge) this.scheduleRead();
          loop.yieldAfterBatch();
          break;
        }
        continue;
      }
      if (n === 0) {
        eof = true;
        break;
      }
      if (n === -EAGAIN) {
        if (loop.edge) loop.rearm(this, READABLE);
        break;
      }
      if (n === -EINTR) continue;
      this.failIo('read', -n);
      return;
    }
    if (total > 0 && (this.state & CLOSED) === 0) {
      pipeline.fireReadComplete();
      // Answers written during this read go out now, in one write, without each handler having
      // to flush (writes from timers or promises still need writeAndFlush).
      if (this.out !== undefined && (this.state & (WRITE_BLOCKED | CLOSED)) === 0) this.doWrite();
    }
    if (eof && (this.state & CLOSED) === 0) this.onInputEof();
  }

  private carryRead(): void {
    this.extras().bytesReadCarried += this.rx;
    this.rx = 0;
  }

  private carryWritten(): void {
    this.extras().bytesWrittenCarried += this.tx;
    this.tx = 0;
  }

  /** Adapts the read size (`readSizes` index `i`, of at most `last`) to a read of `n` of `want` bytes. */
  private adaptReadSize(n: number, want: number, last: number): void {
    const state = this.state;
    const i = (state & READ_SIZE_MASK) >>> READ_SIZE_SHIFT;
    if (n === want) {
      // Filled: four times larger (two doublings), up to maxReadSize.
      this.state =
        i < last
          ? (state & ~(READ_SIZE_MASK | SHRINK_NEXT)) | (Math.min(i + 2, last) << READ_SIZE_SHIFT)
          : state & ~SHRINK_NEXT;
    } else if (n <= want >>> 1 && i > 0) {
      // Shrink (halve) only after two under-filled reads in a row, so that one small message
      // between large ones does not cost the next large read.
      if ((state & SHRINK_NEXT) !== 0) {
        this.state = (state & ~(READ_SIZE_MASK | SHRINK_NEXT)) | ((i - 1) << READ_SIZE_SHIFT);
      } else {
        this.state = state | SHRINK_NEXT;
      }
    } else if ((state & SHRINK_NEXT) !== 0) {
      this.state = state & ~SHRINK_NEXT;
    }
  }

  private scheduleRead(): void {
    if ((this.state & READ_SCHEDULED) !== 0) return;
    this.state |= READ_SCHEDULED;
    this.ctx.loop.scheduleRead(this);
  }

  private onInputEof(): void {
    this.state |= INPUT_SHUT;
    if (this.ctx.options.allowHalfOpen) {
      this.pipeline.fireInputShutdown();
      if ((this.state & OUTPUT_SHUT) !== 0) this.closeNow('peer-closed');
      else this.interestChanged();
    } else {
      this.transportClose('peer-closed');
    }
  }

  private onHangup(events: number): void {
    // EPOLLERR: the socket has a pending error; EPOLLHUP: both directions are shut (an RST, or
    // our FIN after theirs). SO_ERROR says which.
    const err = socketError(this.fdValue);
    if (err > 0) {
      this.failIo('socket', err);
      return;
    }
    this.closeNow((events & ERROR) !== 0 ? 'reset' : 'peer-closed');
  }

  /** A syscall failed on this connection: close it, quietly for the expected errnos. */
  private failIo(syscall: string, errno: number): void {
    if (errno === ECONNRESET || errno === EPIPE) {
      this.closeNow('reset');
    } else if (errno === ETIMEDOUT) {
      // TCP keepalive probes or TCP_USER_TIMEOUT ran out: the kernel gave up on the peer.
      this.closeNow('timeout');
    } else {
      this.pipelineRef?.fireError(new SyscallError(syscall, errno));
      this.closeNow('error');
    }
  }

  // ---- writing ----

  /**
   * @internal What `transportFlush` and `transportClose` leave queued is what they could not send,
   * and a queue that waits (`blocked`) copies out every chunk that is not a whole buffer of its own
   * (as do writes made while it waits): after a flush, no queued chunk is a view of someone's slab.
   * A getter, not a field: no memory per connection.
   */
  get releasesOnFlush(): boolean {
    return true;
  }

  transportWrite(msg: unknown): void {
    let chunk: Uint8Array;
    if (msg instanceof Uint8Array) chunk = msg;
    else if (typeof msg === 'string') chunk = Buffer.from(msg);
    else throw new UnsupportedMessageError(describe(msg));
    const loop = this.ctx.loop;
    if ((this.state & (CLOSED | CLOSING | OUTPUT_SHUT | SHUTDOWN_PENDING)) !== 0) {
      loop.stats.droppedWrites++;
      return;
    }
    // `.length`, not `.byteLength` (equal for bytes): V8 inlines the former; the latter is a
    // builtin call (~8 ns) in Node 20.
    const n = chunk.length;
    if (n === 0) return;
    // A view of the shared read buffer (echoing what was read) is overwritten by the next read:
    // copy it before it waits in the queue. An outbound view (the HTTP stage's slab) is known not
    // to be one, which spares the `chunk.buffer` getter call (~30 ns, buffer-view.ts).
    if (!isOutboundView(chunk) && chunk.buffer === loop.readArrayBuffer) chunk = Buffer.from(chunk);
    else if ((this.state & WRITE_BLOCKED) !== 0 && sharesMemory(chunk, n)) chunk = Buffer.from(chunk);
    let out = this.out;
    if (out === undefined) out = this.out = loop.takeOutboundQueue();
    out.push(chunk);
    if (out.bytes > this.ctx.options.highWaterMark && (this.state & UNWRITABLE) === 0) {
      this.state |= UNWRITABLE;
      if ((this.state & BACKPRESSURED) === 0) {
        this.state |= BACKPRESSURED;
        loop.stats.readPauses++;
        this.interestChanged();
      }
      this.pipeline.fireWritabilityChanged(false);
    }
  }

  transportFlush(): void {
    if (this.out === undefined || (this.state & (WRITE_BLOCKED | CLOSED)) !== 0) return;
    this.doWrite();
  }

  private onWritable(): void {
    this.state &= ~WRITE_BLOCKED;
    if (this.out !== undefined) this.doWrite();
  }

  /** Sends what is queued (the queue exists: it is made non-empty and given back once empty). */
  private doWrite(): void {
    const loop = this.ctx.loop;
    const out = this.out as OutboundQueue;
    while (out.bytes > 0) {
      let attempted: number;
      let n: number;
      if (out.count > 1) out.mergeContiguous();
      const count = out.count;
      if (count === 1) {
        const b = out.first();
        attempted = b.length;
        n = sysSend(this.fdValue, b, attempted, MSG_NOSIGNAL);
      } else if (out.bytes <= COALESCE_LIMIT) {
        // Many small chunks (pipelined answers, header + body): one copy into scratch and one
        // send() is cheaper than a writev() of many tiny iovecs (measured: ~1 µs vs ~3.6 µs for 16).
        attempted = out.gather(loop.writeScratch);
        n = sysSend(this.fdValue, loop.writeScratch, attempted, MSG_NOSIGNAL);
      } else {
        // writev has no flags argument, so no MSG_NOSIGNAL: we rely on Node ignoring SIGPIPE
        // (it does at startup), which turns a write to a reset peer into EPIPE.
        attempted = count <= IOV_MAX ? out.bytes : out.bytesOfFirst(IOV_MAX);
        n = writevBuffers(this.fdValue, out.array, out.headIndex, count, out.firstOffset);
      }
      if (n >= 0) {
        this.tx += n;
        if (this.tx >= COUNT_CARRY) this.carryWritten();
        loop.stats.bytesOut += n;
        this.consume(out, n);
        // A handler that heard the connection turn writable may have closed it: the queue went
        // back to the loop with it, and may already be another connection's.
        if (this.out !== out) return;
        if (n < attempted) {
          this.blocked();
          break;
        }
      } else if (n === -EAGAIN) {
        this.blocked();
        break;
      } else if (n !== -EINTR) {
        this.failIo('write', -n);
        return;
      }
    }
    if (out.bytes === 0) {
      // Empty: the loop keeps the queue for the next connection that writes.
      this.out = undefined;
      loop.giveBackOutboundQueue(out);
      this.drained();
    }
  }

  private blocked(): void {
    this.state |= WRITE_BLOCKED;
    // What waits for a slow peer may wait long: it should hold its own bytes only.
    (this.out as OutboundQueue).detachShared();
    const loop = this.ctx.loop;
    if (loop.edge) loop.rearm(this, WRITABLE);
    else this.interestChanged();
  }

  /** Drops `n` written bytes from the front of the queue and updates writability. */
  private consume(out: OutboundQueue, n: number): void {
    out.consume(n);
    if (out.bytes <= this.ctx.options.lowWaterMark) {
      if ((this.state & BACKPRESSURED) !== 0) {
        this.state &= ~BACKPRESSURED;
        this.readingMayResume();
      }
      if ((this.state & UNWRITABLE) !== 0) {
        this.state &= ~UNWRITABLE;
        this.pipelineRef?.fireWritabilityChanged(true);
      }
    }
  }

  private drained(): void {
    this.state &= ~WRITE_BLOCKED;
    if ((this.state & CLOSED) !== 0) return;
    if ((this.state & CLOSING) !== 0) {
      if ((this.state & LINGERING) === 0) this.finishClose();
      return;
    }
    if ((this.state & SHUTDOWN_PENDING) !== 0) this.doShutdownOutput();
    this.interestChanged();
  }

  // ---- interest ----

  private readingMayResume(): void {
    if (!readable(this.state)) return;
    // Edge-triggered, the readiness we skipped while paused will not be reported again.
    if (this.ctx.loop.edge) this.scheduleRead();
    else this.interestChanged();
  }

  private interestChanged(): void {
    if ((this.state & IN_EVENT) === 0) this.updateInterest();
  }

  /** Level-triggered: make the registered interest match the state (one epoll_ctl when it changed). */
  private updateInterest(): void {
    const state = this.state;
    const loop = this.ctx.loop;
    if (loop.edge || (state & CLOSED) !== 0) return;
    let want = 0;
    if (readable(state)) want |= WANT_READ;
    if ((state & WRITE_BLOCKED) !== 0 && this.out !== undefined) want |= WANT_WRITE;
    if (want === (state & (WANT_READ | WANT_WRITE))) return;
    this.state = (state & ~(WANT_READ | WANT_WRITE)) | want;
    const interest =
      ((want & WANT_READ) !== 0 ? READABLE | READ_CLOSED : 0) | ((want & WANT_WRITE) !== 0 ? WRITABLE : 0);
    const r = loop.modify(this, interest);
    if (r < 0) this.failIo('epoll_ctl', -r);
  }

  // ---- closing ----

  transportClose(reason: CloseReason): void {
    if ((this.state & (CLOSED | CLOSING)) !== 0) return;
    this.state |= CLOSING;
    this.reason = reason;
    if (this.out === undefined) {
      this.finishClose();
      return;
    }
    if ((this.state & WRITE_BLOCKED) === 0) this.doWrite();
    // Closed, or drained and lingering (finishClose armed the timer as the linger timer).
    if ((this.state & (CLOSED | LINGERING)) !== 0) return;
    // The peer may never read: give it closeTimeout, then drop what is left (`onTimeout`).
    this.armCloseTimer(this.ctx.options.closeTimeout);
    this.interestChanged();
  }

  /** Arms the close timer (the connection is its target: see `onTimeout`). */
  private armCloseTimer(ms: number): void {
    const more = this.extras();
    if (more.closeTimer === undefined) more.closeTimer = this.ctx.loop.timers.schedule(ms, this);
    else more.closeTimer.reschedule(ms);
  }

  /**
   * @internal The close timer fired: a graceful close whose queue did not drain in closeTimeout
   * is aborted; a lingering one (see `finishClose`) closes with the reason it was asked for.
   */
  onTimeout(): void {
    if ((this.state & CLOSED) !== 0) return;
    this.closeNow((this.state & LINGERING) !== 0 ? this.reason : 'aborted');
  }

  transportShutdownOutput(): void {
    if ((this.state & (CLOSED | CLOSING | OUTPUT_SHUT | SHUTDOWN_PENDING)) !== 0) return;
    if (this.out === undefined) {
      this.doShutdownOutput();
      return;
    }
    this.state |= SHUTDOWN_PENDING;
    if ((this.state & WRITE_BLOCKED) === 0) this.doWrite();
  }

  /**
   * The queue of a closing connection is empty. If the peer may still be sending, closing now
   * would make the kernel answer its unread bytes with RST — which can destroy our last answer
   * in flight at the peer (RFC 9112 §9.6; nginx's lingering_close exists for this). So we send
   * our FIN (shutdown SHUT_WR), read and discard until the peer's FIN, and close then — or after
   * `lingerTimeout`, whichever comes first.
   */
  private finishClose(): void {
    const reason = this.reason;
    const lingerTimeout = this.ctx.options.lingerTimeout;
    if ((this.state & INPUT_SHUT) !== 0 || lingerTimeout === 0) {
      this.closeNow(reason);
      return;
    }
    const r = sysShutdown(this.fdValue, SHUT_WR);
    if (r < 0) {
      this.closeNow(reason);
      return;
    }
    this.state |= LINGERING | OUTPUT_SHUT;
    // The close timer, if armed, becomes the linger timer (`onTimeout` tells them apart).
    this.armCloseTimer(lingerTimeout);
    // Edge-triggered, what is already queued raised its edge long ago: go and read it.
    if (this.ctx.loop.edge) this.scheduleRead();
    else this.interestChanged();
  }

  /** Lingering: read and drop until the peer's FIN, an error, or the linger timer. */
  private discardLoop(): void {
    const loop = this.ctx.loop;
    let total = 0;
    for (;;) {
      const n = sysRead(this.fdValue, loop.readBuffer, loop.readBuffer.length);
      if (n > 0) {
        this.rx += n;
        if (this.rx >= COUNT_CARRY) this.carryRead();
        loop.stats.bytesIn += n;
        total += n;
        if (total >= this.ctx.options.maxReadPerWakeup) {
          if (loop.edge) this.scheduleRead();
          loop.yieldAfterBatch();
          return;
        }
        continue;
      }
      if (n === -EAGAIN) {
        if (loop.edge) loop.rearm(this, READABLE);
        return;
      }
      if (n === -EINTR) continue;
      // EOF, or the peer reset after our FIN: either way the conversation is over, and the
      // close keeps the reason it was asked for.
      this.closeNow(this.reason);
      return;
    }
  }

  private doShutdownOutput(): void {
    this.state = (this.state & ~SHUTDOWN_PENDING) | OUTPUT_SHUT;
    const r = sysShutdown(this.fdValue, SHUT_WR);
    if (r < 0 && r !== -ENOTCONN) {
      this.failIo('shutdown', -r);
      return;
    }
    if ((this.state & INPUT_SHUT) !== 0) this.closeNow('local');
  }

  /** Closes the descriptor now; the pipeline hears onInactive (after the current event). */
  closeNow(reason: CloseReason): void {
    if ((this.state & CLOSED) !== 0) return;
    this.state = (this.state | CLOSED) & ~CLOSING;
    const more = this.more;
    if (more !== undefined && more.closeTimer !== undefined) {
      more.closeTimer.cancel();
      more.closeTimer = undefined;
    }
    const loop = this.ctx.loop;
    const fd = this.fdValue;
    if (fd >= 0) {
      loop.deregister(this, true);
      sysClose(fd);
      this.fdValue = -1;
    }
    const out = this.out;
    if (out !== undefined) {
      this.out = undefined;
      out.clear();
      loop.giveBackOutboundQueue(out);
    }
    this.reason = reason;
    loop.stats.closed[reason]++;
    loop.stats.active--;
    if ((this.state & IN_EVENT) !== 0) this.state |= INACTIVE_PENDING;
    else this.fireInactive();
  }

  private fireInactive(): void {
    this.state &= ~INACTIVE_PENDING;
    try {
      this.pipelineRef?.fireInactive(this.reason);
    } finally {
      if ((this.state & OPENED) !== 0) this.ctx.onClosed?.(this);
    }
  }

  // ---- tail of the pipeline ----

  unhandledError(error: unknown): void {
    const loop = this.ctx.loop;
    if (error instanceof DecoderError && this.ctx.options.decoderErrors === 'continue') {
      // The decoder already skipped the bad input (a too-long frame, an invalid JSON line) and
      // goes on with the next message; nobody downstream wanted to hear of it.
      loop.stats.decoderErrors++;
      loop.logger.debug(`connection ${this.id}: ${error.message}; continuing`);
      return;
    }
    loop.stats.unhandledErrors++;
    const protocol = error instanceof DecoderError || error instanceof ProtocolError;
    if (!protocol) {
      const peer = this.remoteAddress;
      loop.logger.error(
        `connection ${this.id}${peer ? ` from ${peer.address}:${peer.port}` : ''}: unhandled error in the pipeline; closing`,
        error,
      );
    }
    this.transportClose(protocol ? 'protocol-error' : 'error');
  }

  unhandledMessage(_msg: unknown): void {
    const loop = this.ctx.loop;
    loop.stats.unhandledMessages++;
    loop.warnOnce(
      'unhandled-message',
      'an inbound message reached the end of a pipeline unhandled (is a handler missing?); further ones are only counted',
    );
  }
}

function describe(msg: unknown): string {
  if (msg === null) return 'null';
  if (typeof msg === 'object') return (msg as object).constructor?.name ?? 'object';
  return typeof msg;
}
