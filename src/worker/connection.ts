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
 */
import { Buffer } from 'node:buffer';
import { isOutboundView } from '../common/buffer-view.js';
import {
  ChannelClosedError,
  DecoderError,
  errorLine,
  ProtocolError,
  SyscallError,
  UnsupportedMessageError,
} from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Timeout, Timers } from '../common/timing-wheel.js';
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
import { OutboundQueue, pins } from './outbound-queue.js';
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

/** Whether the state allows reading: normally, or to discard while lingering. */
function readable(state: number): boolean {
  return (state & NO_READ) === 0 || (state & (LINGERING | CLOSED)) === LINGERING;
}

let nextChannelId = 1;

/** Options shared by every connection of a server (resolved once). */
export interface ConnectionContext {
  readonly loop: EventLoop;
  readonly pipeline: PipelineSpec;
  readonly options: ResolvedConnectionOptions;
  /** Stages put before the user's pipeline (PROXY protocol, TLS: pipeline/stages.ts). */
  readonly stages?: readonly ServerStage[];
  /** Called after the pipeline heard `onInactive`. */
  readonly onClosed?: (conn: Connection) => void;
}

export class Connection implements Channel, Transport, IoHandle, ReadAgain, PackedAddress {
  readonly id = nextChannelId++;
  token = 0;
  bytesRead = 0;
  bytesWritten = 0;
  closeReason: CloseReason | undefined;
  private fdValue: number;
  private state = 0;
  /** The interest currently registered (level-triggered mode). */
  private interest = 0;
  private readSize: number;
  private shrinkNext = false;
  /** What was written and not yet accepted by the kernel (outbound-queue.ts). */
  private readonly out = new OutboundQueue();
  private writable = true;
  /** Who paused reading (`pauseReading`); usually none, made on first use. */
  private readHolders: object[] | undefined;
  private pendingCloseReason: CloseReason = 'local';
  private closeTimer: Timeout | undefined;
  /** The socket's peer as decoded on first use; until then only the packed words below. */
  private remote: SocketAddress | undefined;
  private local: SocketAddress | undefined;
  /** What a stage reported of the real endpoints (`setProxiedAddresses`). */
  private proxiedRef: ProxiedAddresses | undefined;
  /** @internal The socket's peer from accept/connect, packed (sockaddr.ts `PackedAddress`): no string until asked. */
  addrTag = 0;
  /** @internal */ addrW0 = 0;
  /** @internal */ addrV6: PackedIPv6 | undefined = undefined;
  private pipelineRef: Pipeline | undefined;
  private readonly loop: EventLoop;
  private readonly opts: ResolvedConnectionOptions;

  constructor(
    private readonly ctx: ConnectionContext,
    fd: number,
  ) {
    this.fdValue = fd;
    this.loop = ctx.loop;
    this.opts = ctx.options;
    this.readSize = ctx.options.initialReadSize;
  }

  /**
   * Registers the socket and builds the pipeline. Returns false (with the descriptor closed) when
   * that fails — a pipeline constructor that throws, or an fd the poller refuses.
   */
  open(): boolean {
    const loop = this.loop;
    this.interest = READABLE | READ_CLOSED;
    const interest = loop.edge ? READABLE | WRITABLE | READ_CLOSED | loop.connectionFlags : this.interest;
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
    return this.loop.timers;
  }

  get logger(): Logger {
    return this.loop.logger;
  }

  /**
   * Remembers the socket's addresses as accept(2)/connect(2) gave them, before `open()`: the peer's
   * sockaddr packed into a few numbers (decoded when first asked), and the local address when the
   * caller knows it without a syscall (a listener bound to one address), shared, not copied.
   */
  setSocketAddresses(peer: Uint8Array, peerLength: number, local?: SocketAddress): void {
    packSockaddr(peer, peerLength, this);
    if (local !== undefined) this.local = local;
  }

  get remoteAddress(): SocketAddress | undefined {
    const p = this.proxiedRef;
    if (p !== undefined && p.remote !== undefined) return p.remote;
    return this.socketRemoteAddress;
  }

  get localAddress(): SocketAddress | undefined {
    const p = this.proxiedRef;
    if (p !== undefined && p.local !== undefined) return p.local;
    return this.socketLocalAddress;
  }

  get socketRemoteAddress(): SocketAddress | undefined {
    if (this.remote === undefined) {
      // Packed at accept/connect; getpeername only for a socket handed over without them.
      if (this.addrTag !== 0) this.remote = unpackAddress(this);
      else if (this.fdValue >= 0) this.remote = peerAddress(this.fdValue);
    }
    return this.remote;
  }

  get proxied(): ProxiedAddresses | undefined {
    return this.proxiedRef;
  }

  setProxiedAddresses(proxied: ProxiedAddresses): void {
    checkProxiedAddresses(proxied);
    this.proxiedRef = proxied;
  }

  get socketLocalAddress(): SocketAddress | undefined {
    if (this.local === undefined && this.fdValue >= 0) {
      try {
        this.local = localAddress(this.fdValue);
      } catch {
        return undefined;
      }
    }
    return this.local;
  }

  get isActive(): boolean {
    return (this.state & CLOSED) === 0;
  }

  get isWritable(): boolean {
    return this.writable && (this.state & (CLOSED | CLOSING | OUTPUT_SHUT | SHUTDOWN_PENDING)) === 0;
  }

  get isInputShutdown(): boolean {
    return (this.state & INPUT_SHUT) !== 0;
  }

  get isOutputShutdown(): boolean {
    return (this.state & OUTPUT_SHUT) !== 0;
  }

  get pendingWriteBytes(): number {
    return this.out.bytes;
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
    if (this.readHolders === undefined) this.readHolders = [];
    const holders = this.readHolders;
    if (holders.includes(holder)) return;
    holders.push(holder);
    if (holders.length === 1) {
      this.state |= READ_HELD;
      this.interestChanged();
    }
  }

  resumeReading(holder: object): void {
    const holders = this.readHolders;
    const i = holders === undefined ? -1 : holders.indexOf(holder);
    if (i < 0) return;
    (holders as object[]).splice(i, 1);
    if ((holders as object[]).length === 0) {
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
    this.loop.stats.requests++;
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
    const loop = this.loop;
    const cap = this.opts.maxReadPerWakeup;
    const pipeline = this.pipelineRef as Pipeline;
    let total = 0;
    let eof = false;
    for (;;) {
      const want = this.readSize;
      // Fetched each time: a decoder may have claimed the previous buffer (read-loan.ts).
      const buf = loop.readBuffer;
      const n = sysRead(this.fdValue, buf, want);
      if (n > 0) {
        total += n;
        this.bytesRead += n;
        loop.stats.bytesIn += n;
        this.adaptReadSize(n, want);
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
      if (this.out.bytes > 0 && (this.state & (WRITE_BLOCKED | CLOSED)) === 0) this.doWrite();
    }
    if (eof && (this.state & CLOSED) === 0) this.onInputEof();
  }

  private adaptReadSize(n: number, want: number): void {
    if (n === want) {
      this.shrinkNext = false;
      if (want < this.opts.maxReadSize) this.readSize = Math.min(want * 4, this.opts.maxReadSize);
    } else if (n <= want >>> 1 && want > this.opts.minReadSize) {
      // Shrink only after two under-filled reads in a row, so that one small message between
      // large ones does not cost the next large read.
      if (this.shrinkNext) {
        this.readSize = Math.max(want >>> 1, this.opts.minReadSize);
        this.shrinkNext = false;
      } else {
        this.shrinkNext = true;
      }
    } else {
      this.shrinkNext = false;
    }
  }

  private scheduleRead(): void {
    if ((this.state & READ_SCHEDULED) !== 0) return;
    this.state |= READ_SCHEDULED;
    this.loop.scheduleRead(this);
  }

  private onInputEof(): void {
    this.state |= INPUT_SHUT;
    if (this.opts.allowHalfOpen) {
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

  transportWrite(msg: unknown): void {
    let chunk: Uint8Array;
    if (msg instanceof Uint8Array) chunk = msg;
    else if (typeof msg === 'string') chunk = Buffer.from(msg);
    else throw new UnsupportedMessageError(describe(msg));
    if ((this.state & (CLOSED | CLOSING | OUTPUT_SHUT | SHUTDOWN_PENDING)) !== 0) {
      this.loop.stats.droppedWrites++;
      return;
    }
    // `.length`, not `.byteLength` (equal for bytes): V8 inlines the former; the latter is a
    // builtin call (~8 ns) in Node 20.
    const n = chunk.length;
    if (n === 0) return;
    // A view of the shared read buffer (echoing what was read) is overwritten by the next read:
    // copy it before it waits in the queue. An outbound view (the HTTP stage's slab) is known not
    // to be one, which spares the `chunk.buffer` getter call (~30 ns, buffer-view.ts).
    if (!isOutboundView(chunk) && chunk.buffer === this.loop.readArrayBuffer) chunk = Buffer.from(chunk);
    else if ((this.state & WRITE_BLOCKED) !== 0 && pins(chunk, n)) chunk = Buffer.from(chunk);
    const out = this.out;
    out.push(chunk);
    if (out.bytes > this.opts.highWaterMark && this.writable) {
      this.writable = false;
      if ((this.state & BACKPRESSURED) === 0) {
        this.state |= BACKPRESSURED;
        this.loop.stats.readPauses++;
        this.interestChanged();
      }
      this.pipeline.fireWritabilityChanged(false);
    }
  }

  transportFlush(): void {
    if (this.out.bytes === 0 || (this.state & (WRITE_BLOCKED | CLOSED)) !== 0) return;
    this.doWrite();
  }

  private onWritable(): void {
    this.state &= ~WRITE_BLOCKED;
    if (this.out.bytes > 0) this.doWrite();
  }

  private doWrite(): void {
    const loop = this.loop;
    const out = this.out;
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
        this.consume(n);
        this.bytesWritten += n;
        loop.stats.bytesOut += n;
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
    if (out.bytes === 0) this.drained();
  }

  private blocked(): void {
    this.state |= WRITE_BLOCKED;
    // What waits for a slow peer may wait long: it should hold its own bytes only.
    this.out.detachPinned();
    if (this.loop.edge) this.loop.rearm(this, WRITABLE);
    else this.interestChanged();
  }

  /** Drops `n` written bytes from the front of the queue and updates writability. */
  private consume(n: number): void {
    const out = this.out;
    out.consume(n);
    if (out.bytes <= this.opts.lowWaterMark) {
      if ((this.state & BACKPRESSURED) !== 0) {
        this.state &= ~BACKPRESSURED;
        this.readingMayResume();
      }
      if (!this.writable) {
        this.writable = true;
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
    if (this.loop.edge) this.scheduleRead();
    else this.interestChanged();
  }

  private interestChanged(): void {
    if ((this.state & IN_EVENT) === 0) this.updateInterest();
  }

  /** Level-triggered: make the registered interest match the state (one epoll_ctl when it changed). */
  private updateInterest(): void {
    if (this.loop.edge || (this.state & CLOSED) !== 0) return;
    let want = 0;
    if (readable(this.state)) want |= READABLE | READ_CLOSED;
    if ((this.state & WRITE_BLOCKED) !== 0 && this.out.bytes > 0) want |= WRITABLE;
    if (want === this.interest) return;
    this.interest = want;
    const r = this.loop.modify(this, want);
    if (r < 0) this.failIo('epoll_ctl', -r);
  }

  // ---- closing ----

  transportClose(reason: CloseReason): void {
    if ((this.state & (CLOSED | CLOSING)) !== 0) return;
    this.state |= CLOSING;
    this.pendingCloseReason = reason;
    if (this.out.bytes === 0) {
      this.finishClose();
      return;
    }
    if ((this.state & WRITE_BLOCKED) === 0) this.doWrite();
    if ((this.state & CLOSED) !== 0) return;
    // The peer may never read: give it closeTimeout, then drop what is left.
    this.closeTimer = this.loop.timers.schedule(this.opts.closeTimeout, () => this.closeNow('aborted'));
    this.interestChanged();
  }

  transportShutdownOutput(): void {
    if ((this.state & (CLOSED | CLOSING | OUTPUT_SHUT | SHUTDOWN_PENDING)) !== 0) return;
    if (this.out.bytes === 0) {
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
    const reason = this.pendingCloseReason;
    if ((this.state & INPUT_SHUT) !== 0 || this.opts.lingerTimeout === 0) {
      this.closeNow(reason);
      return;
    }
    const r = sysShutdown(this.fdValue, SHUT_WR);
    if (r < 0) {
      this.closeNow(reason);
      return;
    }
    this.state |= LINGERING | OUTPUT_SHUT;
    this.closeTimer?.cancel();
    this.closeTimer = this.loop.timers.schedule(this.opts.lingerTimeout, () => this.closeNow(reason));
    // Edge-triggered, what is already queued raised its edge long ago: go and read it.
    if (this.loop.edge) this.scheduleRead();
    else this.interestChanged();
  }

  /** Lingering: read and drop until the peer's FIN, an error, or the linger timer. */
  private discardLoop(): void {
    const loop = this.loop;
    let total = 0;
    for (;;) {
      const n = sysRead(this.fdValue, loop.readBuffer, loop.readBuffer.length);
      if (n > 0) {
        this.bytesRead += n;
        loop.stats.bytesIn += n;
        total += n;
        if (total >= this.opts.maxReadPerWakeup) {
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
      this.closeNow(this.pendingCloseReason);
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
    this.closeTimer?.cancel();
    this.closeTimer = undefined;
    const loop = this.loop;
    const fd = this.fdValue;
    if (fd >= 0) {
      loop.deregister(this, true);
      sysClose(fd);
      this.fdValue = -1;
    }
    this.out.clear();
    this.closeReason = reason;
    loop.stats.closed[reason]++;
    loop.stats.active--;
    if ((this.state & IN_EVENT) !== 0) this.state |= INACTIVE_PENDING;
    else this.fireInactive();
  }

  private fireInactive(): void {
    this.state &= ~INACTIVE_PENDING;
    try {
      this.pipelineRef?.fireInactive(this.closeReason ?? 'local');
    } finally {
      this.ctx.onClosed?.(this);
    }
  }

  // ---- tail of the pipeline ----

  unhandledError(error: unknown): void {
    const loop = this.loop;
    if (error instanceof DecoderError && this.opts.decoderErrors === 'continue') {
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
    this.loop.stats.unhandledMessages++;
    this.loop.warnOnce(
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
