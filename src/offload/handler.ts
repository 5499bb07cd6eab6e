/**
 * `OffloadHandler`: a pipeline stage that runs each message it receives on the process's thread
 * pool and passes the results on, in the order the messages came — the "event loop + business
 * thread pool" model, as a stage.
 *
 * ```
 *  socket ─► [decoder] ─► [OffloadHandler] ═══► pool threads (piscina)
 *                               │  ◄═══ results, in any order
 *                               └─► results in arrival order ─► [protocol stage] ─► writes
 * ```
 *
 * ```ts
 * class HashPipeline extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast('lines', new LineFrameDecoder({ maxLength: 1024 }))
 *       .addLast('offload', new OffloadHandler(HASH_TASKS)) // one options object, shared: resolved once
 *       .addLast('reply', new Replier()); // gets each result in order; OffloadOverloadedError / OffloadTaskError in onError
 *   }
 * }
 * ```
 *
 * Order: every message takes a place in a per-connection queue; a result (or an error) waits there
 * until every earlier message has been passed on. Messages the `filter` keeps on the loop, errors
 * from the stages before, a half-close and the server's `DRAINING` event wait their turn the same
 * way, so that a protocol stage answering them cannot overtake answers still owed.
 *
 * Results that come back from the pool are passed on from a promise callback, not from a read, so
 * after each batch the stage fires `onReadComplete` and flushes the channel — as if a read had
 * just produced them: stages that answer on read-complete, and the flush, work unchanged.
 */
import { fnOption, type OptionKeys } from '../common/options.js';
import { DRAINING } from '../pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { OFFLOAD_OPTIONS, type OffloadOptions, type ResolvedOffloadOptions, resolveOffloadOptions } from './options.js';
import { OffloadSession, type OffloadSessionStats, type SessionOwner } from './session.js';

/**
 * The pool and this connection's share of it ({@link OffloadOptions}), and how messages become
 * tasks and results. Checked once per options object (the task module must exist): build every
 * connection's handler from the same object.
 */
export interface OffloadHandlerOptions<I = unknown, O = unknown> extends OffloadOptions {
  /** The task's argument for a message. Default: the message itself (it must survive structured cloning). */
  readonly toTask?: (msg: I) => unknown;
  /** What is passed on for a task's result. Default: the result itself (a Uint8Array comes back as a Buffer). */
  readonly fromResult?: (result: unknown, msg: I) => O;
  /** Which messages go to the pool; the others are passed on as they are, in their turn. Default: all. */
  readonly filter?: (msg: I) => boolean;
}

const PENDING = 0;
const READY = 1;
const ERROR = 2;

/** A message's place in the connection's queue. */
interface Slot {
  readonly msg: unknown;
  state: typeof PENDING | typeof READY | typeof ERROR;
  /** What is passed on: the result (READY) or the error (ERROR). */
  value: unknown;
}

/** The keys of `OffloadHandlerOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const OFFLOAD_HANDLER_OPTIONS = {
  ...OFFLOAD_OPTIONS,
  toTask: true,
  fromResult: true,
  filter: true,
} as const satisfies OptionKeys<OffloadHandlerOptions>;

/**
 * A pipeline stage that runs each message it receives on the process's thread pool (piscina) and
 * passes the results on — in the order the messages came, whatever order the threads finish in:
 * Netty's "event loop + business thread pool" model, as a stage. Put it after the decoder; the
 * stage after it gets results in `onRead`, and a task's failure in `onError` in its turn
 * (`OffloadTaskError`; `OffloadOverloadedError` when `maxQueue` tasks already wait).
 *
 * Contract: a connection has at most `maxInFlight` tasks in flight, then it stops reading; its
 * queued tasks are dropped when it closes (running ones finish and their results are discarded,
 * unless `abortRunning`). Messages the `filter` keeps on the loop, errors from earlier stages, a
 * half-close and the server's `DRAINING` wait their turn too, so nothing overtakes an answer still
 * owed. Results arrive from a promise callback, not a read: after each batch the stage fires
 * `onReadComplete` and flushes, as a read would. Arguments and results cross threads by
 * structured clone; Buffers in arguments are transferred (`transfer: 'move'`, the default).
 *
 * @example
 * ```ts
 * import { ChannelInboundHandler, type HandlerContext, LineEncoder, LineFrameDecoder, OffloadHandler, type OffloadHandlerOptions, Pipeline } from 'multireactor';
 *
 * // tasks.js (compiled, next to this module) exports `default (line: Uint8Array) => string`, e.g. a slow hash.
 * const HASH: OffloadHandlerOptions<Buffer, string> = { filename: new URL('./tasks.js', import.meta.url), maxThreads: 2 };
 *
 * class Reply extends ChannelInboundHandler<string> {
 *   override onRead(ctx: HandlerContext, digest: string): void {
 *     ctx.write(digest); // in request order
 *   }
 * }
 * class HashPipeline extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast(new LineFrameDecoder({ maxLength: 1024 }))
 *       .addLast(new LineEncoder())
 *       .addLast(new OffloadHandler(HASH)) // the same options object for every connection: checked once
 *       .addLast(new Reply());
 *   }
 * }
 * ```
 */
export class OffloadHandler<I = unknown, O = unknown> extends ChannelInboundHandler<I> implements SessionOwner {
  private readonly options: ResolvedOffloadOptions;
  private readonly toTask: ((msg: I) => unknown) | undefined;
  private readonly fromResult: ((result: unknown, msg: I) => O) | undefined;
  private readonly filter: ((msg: I) => boolean) | undefined;
  private session: OffloadSession | undefined;
  private readonly queue: Slot[] = [];
  private ctx: HandlerContext | undefined;
  private closed = false;
  private flushScheduled = false;
  private deferredInputShutdown = false;
  private deferredDraining = false;

  /**
   * Options are validated (and the task module looked up) once per options object: build every
   * connection's stage from the same object.
   */
  constructor(options: OffloadHandlerOptions<I, O>) {
    super();
    this.options = resolveOffloadOptions(options, 'OffloadHandler', OFFLOAD_HANDLER_OPTIONS);
    this.toTask = fnOption('toTask', options.toTask);
    this.fromResult = fnOption('fromResult', options.fromResult);
    this.filter = fnOption('filter', options.filter);
  }

  /** This connection's tasks: offloaded, aborted because it closed, results dropped. */
  get stats(): OffloadSessionStats {
    return this.session === undefined ? { tasks: 0, aborted: 0, dropped: 0 } : { ...this.session.stats };
  }

  /** Messages (and errors, results) waiting for their turn. */
  get pending(): number {
    return this.queue.length;
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
  }

  handlerRemoved(): void {
    this.shutdown();
  }

  override onRead(ctx: HandlerContext, msg: I): void {
    if (this.closed) return;
    this.ctx = ctx;
    this.session ??= new OffloadSession(ctx.channel, this.options, this);
    const session = this.session;
    const slot: Slot = { msg, state: PENDING, value: undefined };
    this.queue.push(slot);
    session.hold();
    try {
      if (this.filter?.(msg) === false) {
        slot.state = READY;
        slot.value = msg;
      } else {
        const refused = session.run(this.toTask === undefined ? msg : this.toTask(msg), msg, slot);
        if (refused !== undefined) {
          slot.state = ERROR;
          slot.value = refused;
        }
      }
    } catch (err) {
      // toTask or filter threw, or the payload cannot be cloned: this message's error, in its turn.
      slot.state = ERROR;
      slot.value = err;
    }
    // Inside a read: what is passed on now is flushed when the read completes.
    if (slot.state !== PENDING && this.queue[0] === slot) this.deliver(ctx);
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    if (this.queue.length === 0 || this.closed) {
      ctx.fireError(error);
      return;
    }
    this.queue.push({ msg: undefined, state: ERROR, value: error });
    this.session?.hold();
  }

  override onInputShutdown(ctx: HandlerContext): void {
    if (this.queue.length === 0) ctx.fireInputShutdown();
    else this.deferredInputShutdown = true;
  }

  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (event !== DRAINING || this.queue.length === 0) {
      ctx.fireUserEvent(event);
      return;
    }
    // The server is stopping: answer what is owed first, then let the next stage close politely.
    // Nothing more is read meanwhile, so that the queue can only shrink.
    this.deferredDraining = true;
    this.session?.block(true);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.shutdown();
    ctx.fireInactive(reason);
  }

  /** Closed or removed: drop what waits, abort the tasks, pass nothing more on. */
  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.deferredDraining = this.deferredInputShutdown = false;
    this.session?.close();
  }

  /** SessionOwner: a task ended (or was refused after waiting in the session). */
  taskSettled(tag: unknown, ok: boolean, value: unknown): void {
    if (this.closed) return;
    const slot = tag as Slot;
    slot.state = ok ? READY : ERROR;
    slot.value = value;
    if (ok && this.fromResult !== undefined) {
      try {
        slot.value = this.fromResult(value, slot.msg as I);
      } catch (err) {
        slot.value = err;
        slot.state = ERROR;
      }
    }
    const ctx = this.ctx as HandlerContext;
    if (this.queue[0] === slot && this.deliver(ctx)) this.scheduleFlush();
  }

  /** Passes on every finished slot at the head of the queue; true if any. */
  private deliver(ctx: HandlerContext): boolean {
    const queue = this.queue;
    const session = this.session as OffloadSession;
    let delivered = false;
    while (queue.length > 0 && !this.closed) {
      const slot = queue[0] as Slot;
      if (slot.state === PENDING) break;
      queue.shift();
      delivered = true;
      session.release();
      if (slot.state === READY) ctx.fireRead(slot.value);
      else ctx.fireError(slot.value);
      if (!ctx.channel.isActive) return true;
    }
    return delivered;
  }

  private fireDeferred(ctx: HandlerContext): void {
    if (this.deferredInputShutdown) {
      this.deferredInputShutdown = false;
      ctx.fireInputShutdown();
    }
    if (this.deferredDraining && !this.closed) {
      this.deferredDraining = false;
      this.session?.block(false);
      ctx.fireUserEvent(DRAINING);
    }
  }

  /**
   * One read-complete and one flush per batch of results: piscina resolves the results that
   * arrived together one after another in the same turn, and a microtask runs after all of them.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushNow);
  }

  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    const ctx = this.ctx;
    if (ctx === undefined || this.closed || !ctx.channel.isActive) return;
    ctx.fireReadComplete();
    ctx.channel.flush();
    // Everything owed is out: now a half-close or the server's drain may close the connection.
    if (this.queue.length === 0) this.fireDeferred(ctx);
  };
}
