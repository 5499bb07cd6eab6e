/**
 * One reactor: a poller, the descriptors registered with it, a timing wheel and the buffers its
 * connections share. Runs inside Node's own event loop (see EpollPoller), so a worker process
 * keeps timers, IPC and promises.
 *
 * Dispatch: every registered descriptor has a handle and a token (a 30-bit counter that never
 * repeats for a reused fd number); the poller reports `(fd, token, events)` and the loop drops an
 * event whose token is no longer the handle's — the stale-event guard.
 */

import { Buffer } from 'node:buffer';
import { bufferView } from '../common/buffer-view.js';
import { CLOSE_REASONS, type CloseReason } from '../common/close-reason.js';
import { consoleLogger, type Logger } from '../common/logger.js';
import { TimingWheel } from '../common/timing-wheel.js';
import { endLoan, type Lender, lend } from '../pipeline/read-loan.js';
import { EpollPoller } from './epoll-poller.js';
import { type LoopOptions, type ResolvedLoopOptions, resolveLoopOptions } from './options.js';
import { OutboundQueue } from './outbound-queue.js';
import { PollPoller } from './poll-poller.js';
import type { Poller } from './poller.js';
import { EDGE } from './poller.js';

/** Something registered with the loop. */
export interface IoHandle {
  readonly fd: number;
  /** Set by `register`; events carrying another token are stale. */
  token: number;
  onIoEvent(events: number): void;
}

/** A handle with more to read than one wake-up allows (edge-triggered mode). */
export interface ReadAgain {
  readAgain(): void;
}

/** Counters of one loop (one worker). Plain numbers, cheap to bump on the hot path. */
export interface LoopStats {
  /** Connections accepted (or connected) so far. */
  accepted: number;
  /** Connections open now. */
  active: number;
  /** Connections closed, by reason. */
  closed: Record<CloseReason, number>;
  bytesIn: number;
  bytesOut: number;
  /** Requests, for protocols that count them (`channel.countRequest()`). */
  requests: number;
  /** Wake-ups from Node's loop (poller batches handled). */
  wakeups: number;
  /**
   * Readiness queries (epoll_wait or poll calls). Above `wakeups` by the times the loop asked
   * again within a wake-up, after a batch of two or more events (`maxWaitsPerWakeup`).
   */
  polls: number;
  /** Events dispatched. */
  events: number;
  /** Events dropped because their descriptor was closed (and maybe reused) meanwhile. */
  staleEvents: number;
  /** accept4 failures other than EAGAIN/EINTR. */
  acceptErrors: number;
  /** Times accepting paused for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). */
  acceptPauses: number;
  /** Times accepting paused because `maxConnections` were open. */
  connectionLimitPauses: number;
  /** Times a connection stopped reading because its peer was not reading our writes. */
  readPauses: number;
  /** Writes dropped because the channel was closing or closed. */
  droppedWrites: number;
  /** Inbound messages that reached the tail of a pipeline unhandled. */
  unhandledMessages: number;
  /** Errors that reached the tail of a pipeline unhandled (each closed its connection). */
  unhandledErrors: number;
  /** Decoder errors that reached the tail with `decoderErrors: 'continue'` (connection kept). */
  decoderErrors: number;
}

export function newStats(): LoopStats {
  const closed = {} as Record<CloseReason, number>;
  for (const r of CLOSE_REASONS) closed[r] = 0;
  return {
    accepted: 0,
    active: 0,
    closed,
    bytesIn: 0,
    bytesOut: 0,
    requests: 0,
    wakeups: 0,
    polls: 0,
    events: 0,
    staleEvents: 0,
    acceptErrors: 0,
    acceptPauses: 0,
    connectionLimitPauses: 0,
    readPauses: 0,
    droppedWrites: 0,
    unhandledMessages: 0,
    unhandledErrors: 0,
    decoderErrors: 0,
  };
}

/** What `new EventLoop()` takes: {@link LoopOptions} and the size of its read buffer. */
export interface EventLoopOptions extends LoopOptions {
  /** Size of the shared read buffer (the largest single read). Default 64 KiB. */
  readonly readBufferSize?: number;
}

/** Outbound chunks totalling at most this many bytes are copied into one send() instead of a writev(). */
export const COALESCE_LIMIT = 16 * 1024;

/**
 * One reactor: a poller (epoll, or poll(2)) with the descriptors registered on it, a timing wheel
 * (`timers`) and the read buffer its connections share. It runs inside Node's own event loop —
 * woken by a libuv poll handle on the epoll descriptor — so timers, IPC and promises keep working
 * beside it. `Server.listen()` makes one per serving process; you make one only to run client
 * connections on a loop with options of your own (`ClientOptions.loop`, `LoadOptions.loop`), and
 * then you close it, after its connections (docs/client.md, "Which loop").
 *
 * @example
 * ```ts
 * import { Client, EventLoop, type HttpClientResponse, httpClient } from 'multireactor';
 *
 * const loop = new EventLoop({ trigger: 'edge', maxEventsPerWait: 256 });
 * const conn = await Client.connect({ host: '127.0.0.1', port: 8080, pipeline: httpClient(), loop });
 * const res = await conn.request<HttpClientResponse>({ path: '/plaintext' });
 * console.log(res.statusCode, res.text(), loop.stats.bytesIn);
 * await conn.close();
 * await loop.close(); // ours to close: the standalone loop would close itself
 * ```
 */
export class EventLoop implements Lender {
  readonly options: ResolvedLoopOptions;
  readonly poller: Poller;
  /** Connections register edge-triggered. */
  readonly edge: boolean;
  /** The interest bits added to every connection registration (EDGE in edge mode). */
  readonly connectionFlags: number;
  readonly timers: TimingWheel;
  /**
   * The one read buffer of this loop: every read() lands here, decoders read it in place. A
   * decoder may claim it (read-loan.ts); then a fresh one takes its place.
   */
  readBuffer: Buffer;
  /** Its ArrayBuffer, to recognise views of it that must be copied before they are kept. */
  readArrayBuffer: ArrayBufferLike;
  private readonly readBufferSize: number;
  private lastView: Buffer = Buffer.alloc(0);
  private lastViewSource: Buffer | undefined;
  /** Scratch space to coalesce small queued chunks into one send(). */
  readonly writeScratch: Buffer;
  readonly stats: LoopStats = newStats();
  readonly logger: Logger;
  private readonly handles: (IoHandle | undefined)[] = [];
  private nextToken = 0;
  private readAgain: ReadAgain[] = [];
  private readAgainScheduled = false;
  private tickTimer: NodeJS.Timeout | undefined;
  /**
   * An empty outbound queue for the next connection that writes. A connection holds a queue only
   * while it has bytes the kernel has not taken — an idle one none — and gives it back here when
   * it drains; one spare is enough for a loop that answers each read before the next (the
   * connections of one batch write and flush in turn), more are made only for connections that
   * wait for their peer.
   */
  private spareQueue: OutboundQueue | undefined = new OutboundQueue();
  private readonly warned = new Set<string>();
  private closeHooks: Set<() => void> | undefined;
  private closed = false;

  constructor(options: EventLoopOptions = {}) {
    this.options = resolveLoopOptions(options);
    this.logger = options.logger ?? consoleLogger();
    this.edge = this.options.trigger === 'edge';
    this.connectionFlags = this.edge ? EDGE : 0;
    this.readBufferSize = options.readBufferSize ?? 64 * 1024;
    this.readBuffer = Buffer.allocUnsafeSlow(this.readBufferSize);
    this.readArrayBuffer = this.readBuffer.buffer;
    lend(this.readArrayBuffer, this);
    this.writeScratch = Buffer.allocUnsafeSlow(COALESCE_LIMIT);
    this.timers = new TimingWheel({
      tickMs: this.options.timerTickMs,
      onActive: () => this.startTicking(),
      onError: (err) => this.logger.error('timer callback failed', err),
    });
    const onError = (errno: number) => this.warnOnce(`poller:${errno}`, `poller wait failed with errno ${errno}`);
    this.poller =
      this.options.poller === 'poll'
        ? new PollPoller({ onError })
        : new EpollPoller({
            maxEvents: this.options.maxEventsPerWait,
            maxWaits: this.options.maxWaitsPerWakeup,
            onError,
          });
    this.poller.start(this.dispatch, this.afterBatch);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * A view of the first `n` bytes of the read buffer, to hand to a pipeline. The same object comes
   * back while `n` and the buffer stay the same — steady traffic (a benchmark's requests, a
   * protocol's fixed-size messages) then costs no view allocation per read (~50 ns each). Sharing
   * it is safe for the same reason lending the buffer is: its bytes are only valid during the read
   * anyway, and whoever keeps them copies or claims them (read-loan.ts).
   */
  readView(n: number): Buffer {
    const buf = this.readBuffer;
    let view = this.lastView;
    if (view.length !== n || this.lastViewSource !== buf) {
      view = bufferView(this.readArrayBuffer, 0, n);
      this.lastView = view;
      this.lastViewSource = buf;
    }
    return view;
  }

  /** Lender: a decoder keeps the current read buffer; read into a new one from now on. */
  release(): boolean {
    this.readBuffer = Buffer.allocUnsafeSlow(this.readBufferSize);
    this.readArrayBuffer = this.readBuffer.buffer;
    lend(this.readArrayBuffer, this);
    return true;
  }

  /** @internal An empty outbound queue for a connection about to write (see `spareQueue`). */
  takeOutboundQueue(): OutboundQueue {
    const q = this.spareQueue;
    if (q === undefined) return new OutboundQueue();
    this.spareQueue = undefined;
    return q;
  }

  /** @internal A connection's queue drained (or it closed): kept as the spare if there is none. */
  giveBackOutboundQueue(q: OutboundQueue): void {
    if (this.spareQueue === undefined) this.spareQueue = q;
  }

  /** Registers `handle` for `interest`; returns 0 or -errno. Assigns a fresh token. */
  register(handle: IoHandle, interest: number): number {
    // 30 bits, not the 32 the event's data has room for: a token stays a small integer (a Smi)
    // in every handle, where a larger one would make V8 box the field (16 B per connection).
    this.nextToken = (this.nextToken + 1) & 0x3fffffff || 1;
    handle.token = this.nextToken;
    const r = this.poller.register(handle.fd, handle.token, interest);
    if (r === 0) this.handles[handle.fd] = handle;
    return r;
  }

  /** @internal The handles registered now (a copy), for whoever must visit them all (a drain). */
  registeredHandles(): IoHandle[] {
    const out: IoHandle[] = [];
    for (const h of this.handles) if (h !== undefined) out.push(h);
    return out;
  }

  /** Changes the interest of a registered handle; returns 0 or -errno. */
  modify(handle: IoHandle, interest: number): number {
    return this.poller.modify(handle.fd, handle.token, interest);
  }

  /** Forgets `handle`; `closing` when its descriptor is about to be closed. */
  deregister(handle: IoHandle, closing: boolean): void {
    if (this.handles[handle.fd] === handle) this.handles[handle.fd] = undefined;
    if (!this.closed) this.poller.deregister(handle.fd, closing);
  }

  /**
   * A handle used its share of this wake-up (`maxReadPerWakeup`, `maxAcceptsPerWakeup`): the
   * poller hands back to Node's loop after the current batch instead of asking for more.
   */
  yieldAfterBatch(): void {
    this.poller.yieldAfterBatch();
  }

  /** Edge mode: `handle` drained `direction`; some pollers need to hear it. */
  rearm(handle: IoHandle, direction: number): void {
    this.poller.rearm(handle.fd, handle.token, direction);
  }

  /**
   * Edge mode: `h` stopped reading with data possibly left (the per-wake-up cap, or reading was
   * resumed); no new edge will come for it, so read again once the current batch is done.
   */
  scheduleRead(h: ReadAgain): void {
    this.readAgain.push(h);
    if (!this.readAgainScheduled) {
      this.readAgainScheduled = true;
      // setImmediate, not a microtask: let libuv run its poll phase (other fds) and timers first.
      setImmediate(this.runReadAgain);
    }
  }

  private readonly runReadAgain = (): void => {
    this.readAgainScheduled = false;
    const list = this.readAgain;
    this.readAgain = [];
    for (const h of list) {
      try {
        h.readAgain();
      } catch (err) {
        this.logger.error('read retry failed', err);
      }
    }
  };

  private readonly dispatch = (fd: number, token: number, events: number): void => {
    const h = this.handles[fd];
    if (h === undefined || h.token !== token) {
      this.stats.staleEvents++;
      return;
    }
    this.stats.events++;
    try {
      h.onIoEvent(events);
    } catch (err) {
      // Handler errors are caught inside the pipeline; reaching here is a bug in the loop.
      this.logger.error(`internal error handling events 0x${events.toString(16)} on fd ${fd}`, err);
    }
  };

  private readonly afterBatch = (polls: number): void => {
    this.stats.wakeups++;
    this.stats.polls += polls;
  };

  private startTicking(): void {
    if (this.tickTimer !== undefined || this.closed) return;
    this.tickTimer = setTimeout(this.onTick, this.options.timerTickMs);
    // The wheel never keeps a process alive on its own; open sockets do (the poller's handle).
    this.tickTimer.unref();
  }

  private readonly onTick = (): void => {
    this.tickTimer = undefined;
    this.timers.advance();
    if (this.timers.size > 0) this.startTicking();
  };

  /** Logs a warning the first time `key` is seen. */
  warnOnce(key: string, message: string, ...details: unknown[]): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(message, ...details);
  }

  /**
   * Calls `fn` when the loop closes, before the poller stops, so that owners of handles the
   * server does not track (client connections, connects in progress) can close them. Returns a
   * function that removes the hook.
   */
  onClose(fn: () => void): () => void {
    if (this.closeHooks === undefined) this.closeHooks = new Set();
    this.closeHooks.add(fn);
    return () => {
      this.closeHooks?.delete(fn);
    };
  }

  /** Stops the poller and the timers. Handles must have been closed by their owners (or close hooks). */
  async close(): Promise<void> {
    if (this.closed) return;
    const hooks = this.closeHooks;
    this.closeHooks = undefined;
    if (hooks !== undefined) {
      for (const fn of hooks) {
        try {
          fn();
        } catch (err) {
          this.logger.error('a loop close hook failed', err);
        }
      }
    }
    this.closed = true;
    if (this.tickTimer !== undefined) clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    this.timers.clear();
    endLoan(this.readArrayBuffer);
    this.handles.length = 0;
    this.readAgain = [];
    await this.poller.close();
  }
}
