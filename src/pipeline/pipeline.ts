/**
 * The per-connection pipeline: a doubly linked list of handler contexts between a head (the
 * transport) and a tail (where unhandled messages and errors end).
 *
 * Users extend `Pipeline` and add handlers in `initChannel`:
 *
 * ```ts
 * class EchoPipeline extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast('frames', new LengthFieldFrameDecoder({ lengthFieldLength: 2 }));
 *     this.addLast('echo', new EchoHandler());
 *   }
 * }
 * ```
 *
 * Error rule: an exception thrown by a handler's method is passed to `onError` of the handlers
 * after it; if none handles it, the tail logs it and closes the connection. The loop never dies
 * of a handler's bug.
 */
import type { Channel, Transport } from './channel.js';
import { ServerDrainingEvent } from './events.js';
import {
  type ChannelHandler,
  type CloseReason,
  handlerMask,
  M_ACTIVE,
  M_ALL_INBOUND,
  M_ALL_OUTBOUND,
  M_CLOSE,
  M_ERROR,
  M_FLUSH,
  M_INACTIVE,
  M_INPUT_SHUTDOWN,
  M_READ,
  M_READ_COMPLETE,
  M_SHUTDOWN_OUTPUT,
  M_USER_EVENT,
  M_WRITABILITY,
  M_WRITE,
} from './handler.js';

/**
 * A handler's place in one pipeline: how it passes events on. Inbound `fire*` calls go to the
 * next handler towards the tail; outbound calls (`write`, `flush`, `close`, `shutdownOutput`) go
 * to the previous handler towards the head.
 */
export class HandlerContext {
  /** @internal */ prev: HandlerContext | null = null;
  /** @internal */ next: HandlerContext | null = null;
  /** @internal */ readonly mask: number;
  /** @internal */ removed = false;

  constructor(
    readonly pipeline: Pipeline,
    readonly name: string,
    readonly handler: ChannelHandler,
    mask?: number,
  ) {
    this.mask = mask ?? handlerMask(handler);
  }

  get channel(): Channel {
    return this.pipeline.channel;
  }

  private nextIn(bit: number): HandlerContext {
    // The tail implements every inbound event, so the walk always ends.
    let c = this.next as HandlerContext;
    while ((c.mask & bit) === 0) c = c.next as HandlerContext;
    return c;
  }

  private prevOut(bit: number): HandlerContext {
    // The head implements every outbound operation.
    let c = this.prev as HandlerContext;
    while ((c.mask & bit) === 0) c = c.prev as HandlerContext;
    return c;
  }

  // ---- inbound: to the next handler ----

  fireActive(): void {
    const c = this.nextIn(M_ACTIVE);
    try {
      c.handler.onActive?.(c);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireRead(msg: unknown): void {
    const c = this.nextIn(M_READ);
    try {
      c.handler.onRead?.(c, msg);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireReadComplete(): void {
    const c = this.nextIn(M_READ_COMPLETE);
    try {
      c.handler.onReadComplete?.(c);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireInputShutdown(): void {
    const c = this.nextIn(M_INPUT_SHUTDOWN);
    try {
      c.handler.onInputShutdown?.(c);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireWritabilityChanged(writable: boolean): void {
    const c = this.nextIn(M_WRITABILITY);
    try {
      c.handler.onWritabilityChanged?.(c, writable);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireUserEvent(event: unknown): void {
    const c = this.nextIn(M_USER_EVENT);
    try {
      c.handler.onUserEvent?.(c, event);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireInactive(reason: CloseReason): void {
    const c = this.nextIn(M_INACTIVE);
    try {
      c.handler.onInactive?.(c, reason);
    } catch (err) {
      c.fireError(err);
    }
  }

  fireError(error: unknown): void {
    const c = this.nextIn(M_ERROR);
    try {
      c.handler.onError?.(c, error);
    } catch (err) {
      // A failing error handler passes its own error on; the tail ends the chain.
      c.fireError(err);
    }
  }

  // ---- outbound: to the previous handler ----

  write(msg: unknown): void {
    const c = this.prevOut(M_WRITE);
    try {
      c.handler.write?.(c, msg);
    } catch (err) {
      c.fireError(err);
    }
  }

  flush(): void {
    const c = this.prevOut(M_FLUSH);
    try {
      c.handler.flush?.(c);
    } catch (err) {
      c.fireError(err);
    }
  }

  writeAndFlush(msg: unknown): void {
    this.write(msg);
    this.flush();
  }

  close(reason: CloseReason = 'local'): void {
    const c = this.prevOut(M_CLOSE);
    try {
      c.handler.close?.(c, reason);
    } catch (err) {
      c.fireError(err);
    }
  }

  shutdownOutput(): void {
    const c = this.prevOut(M_SHUTDOWN_OUTPUT);
    try {
      c.handler.shutdownOutput?.(c);
    } catch (err) {
      c.fireError(err);
    }
  }
}

/** The head: outbound operations reach the transport here. */
class HeadHandler implements ChannelHandler {
  constructor(private readonly pipeline: Pipeline) {}
  write(_ctx: HandlerContext, msg: unknown): void {
    this.pipeline.transport.transportWrite(msg);
  }
  flush(): void {
    this.pipeline.transport.transportFlush();
  }
  close(_ctx: HandlerContext, reason: CloseReason): void {
    this.pipeline.transport.transportClose(reason);
  }
  shutdownOutput(): void {
    this.pipeline.transport.transportShutdownOutput();
  }
}

/** The tail: inbound events nobody consumed end here. */
class TailHandler implements ChannelHandler {
  constructor(private readonly pipeline: Pipeline) {}
  onActive(): void {}
  onRead(_ctx: HandlerContext, msg: unknown): void {
    this.pipeline.transport.unhandledMessage(msg);
  }
  onReadComplete(): void {}
  onInputShutdown(): void {}
  onWritabilityChanged(): void {}
  onUserEvent(_ctx: HandlerContext, event: unknown): void {
    // Nobody closed politely for the draining server: close gracefully now.
    if (event instanceof ServerDrainingEvent) this.pipeline.transport.transportClose('shutdown');
  }
  onInactive(): void {}
  onError(_ctx: HandlerContext, error: unknown): void {
    this.pipeline.transport.unhandledError(error);
  }
}

const DETACHED: Transport = {
  transportWrite() {
    throw new Error('pipeline is not attached to a channel');
  },
  transportFlush() {},
  transportClose() {},
  transportShutdownOutput() {},
  unhandledError() {},
  unhandledMessage() {},
};

/** What `Server.listen({ pipeline })` accepts: a `Pipeline` subclass or a factory. */
export type PipelineSpec = (new () => Pipeline) | ((channel: Channel) => Pipeline);

/**
 * The per-connection handler chain. Extend it and add handlers in {@link Pipeline.initChannel};
 * the server creates one instance per connection.
 *
 * Inbound events (`onActive`, `onRead`, `onReadComplete`, …, `onInactive`) travel from the socket
 * towards the tail, outbound operations (`write`, `flush`, `close`) from the tail towards the
 * socket; every callback runs on the connection's loop, one at a time. What handlers write during
 * a read is flushed when the read completes, so answers to pipelined requests leave together. A
 * handler that throws has its error passed to `onError` of the handlers after it; unhandled, the
 * tail logs it and closes the connection (`error`; a decoder's `DecoderError` is counted and the
 * connection kept, unless `decoderErrors: 'close'`) — the worker never dies of a handler's bug.
 * The bytes a decoder sees during `onRead` are the loop's shared read buffer: valid only during
 * the call (decoders built on `ByteToMessageDecoder` hand on frames that may be kept).
 *
 * @example
 * ```ts
 * import { ChannelInboundHandler, type HandlerContext, LineEncoder, LineFrameDecoder, Pipeline, Server, StringDecoder } from 'multireactor';
 *
 * class Shout extends ChannelInboundHandler<string> {
 *   override onRead(ctx: HandlerContext, line: string): void {
 *     if (line === 'quit') ctx.close();
 *     else ctx.write(line.toUpperCase()); // flushed when the read completes
 *   }
 * }
 * class ShoutPipeline extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast('frames', new LineFrameDecoder({ maxLength: 4096 })) // bytes → lines (Buffers)
 *       .addLast('text', new StringDecoder()) // → strings
 *       .addLast('encoder', new LineEncoder()) // outbound: string → bytes + '\n'
 *       .addLast('shout', new Shout());
 *   }
 * }
 * await Server.listen({ port: 7000, pipeline: ShoutPipeline }); // or a factory: () => new Pipeline().addLast(…)
 * ```
 */
export class Pipeline {
  /** @internal */ readonly head: HandlerContext;
  /** @internal */ readonly tail: HandlerContext;
  /** @internal */ transport: Transport = DETACHED;
  private ch: Channel | undefined;
  private readonly byName = new Map<string, HandlerContext>();
  private pendingAdded: HandlerContext[] | undefined = [];
  private autoName = 0;

  constructor() {
    this.head = new HandlerContext(this, 'head', new HeadHandler(this), M_ALL_OUTBOUND);
    this.tail = new HandlerContext(this, 'tail', new TailHandler(this), M_ALL_INBOUND);
    this.head.next = this.tail;
    this.tail.prev = this.head;
  }

  /**
   * Adds the handlers of a new connection. Called once, when the channel is attached and before
   * `onActive`. The default adds nothing.
   */
  initChannel(_channel: Channel): void {}

  /** The channel this pipeline serves. */
  get channel(): Channel {
    if (this.ch === undefined) throw new Error('pipeline is not attached to a channel yet');
    return this.ch;
  }

  /** @internal Binds the pipeline to its channel, runs `initChannel`, then deferred `handlerAdded`s. */
  attach(channel: Channel, transport: Transport): void {
    if (this.ch !== undefined) throw new Error('pipeline is already attached');
    this.ch = channel;
    this.transport = transport;
    this.initChannel(channel);
    const pending = this.pendingAdded ?? [];
    this.pendingAdded = undefined;
    for (const ctx of pending) if (!ctx.removed) this.callAdded(ctx);
  }

  // ---- building ----

  /** Appends a handler before the tail. The name is optional and must be unique. */
  addLast(name: string, handler: ChannelHandler): this;
  addLast(handler: ChannelHandler): this;
  addLast(a: string | ChannelHandler, b?: ChannelHandler): this {
    const [name, handler] = this.args(a, b);
    this.link(new HandlerContext(this, name, handler), this.tail.prev as HandlerContext);
    return this;
  }

  /** Inserts a handler right after the head. */
  addFirst(name: string, handler: ChannelHandler): this;
  addFirst(handler: ChannelHandler): this;
  addFirst(a: string | ChannelHandler, b?: ChannelHandler): this {
    const [name, handler] = this.args(a, b);
    this.link(new HandlerContext(this, name, handler), this.head);
    return this;
  }

  /** Inserts a handler before the one named `baseName`. */
  addBefore(baseName: string, name: string, handler: ChannelHandler): this {
    const base = this.mustGet(baseName);
    this.link(new HandlerContext(this, this.checkName(name), handler), base.prev as HandlerContext);
    return this;
  }

  /** Inserts a handler after the one named `baseName`. */
  addAfter(baseName: string, name: string, handler: ChannelHandler): this {
    const base = this.mustGet(baseName);
    this.link(new HandlerContext(this, this.checkName(name), handler), base);
    return this;
  }

  /**
   * Removes a handler (by name, instance or context) and returns it. Events already travelling
   * through it continue to its old neighbours, as in Netty.
   */
  remove(which: string | ChannelHandler | HandlerContext): ChannelHandler {
    const ctx = this.mustFind(which);
    this.unlink(ctx);
    this.callRemoved(ctx);
    return ctx.handler;
  }

  /**
   * Replaces a handler in place (a decoder upgrading the protocol replaces itself). The old one's
   * `handlerRemoved` runs after the new one is linked, so it can hand leftover bytes to it.
   */
  replace(which: string | ChannelHandler | HandlerContext, newName: string, handler: ChannelHandler): ChannelHandler {
    const old = this.mustFind(which);
    if (newName !== old.name) this.checkName(newName);
    const ctx = new HandlerContext(this, newName, handler);
    ctx.prev = old.prev;
    ctx.next = old.next;
    (old.prev as HandlerContext).next = ctx;
    (old.next as HandlerContext).prev = ctx;
    old.removed = true;
    // The old context now points at the new one in both directions (as Netty's replace does), so
    // its in-flight events, and anything its handlerRemoved fires or writes, pass through the new
    // handler.
    old.prev = ctx;
    old.next = ctx;
    this.byName.delete(old.name);
    this.byName.set(newName, ctx);
    this.announceAdded(ctx);
    this.callRemoved(old);
    return old.handler;
  }

  /** The handler named `name`, if any. */
  get(name: string): ChannelHandler | undefined {
    return this.byName.get(name)?.handler;
  }

  /** The context of a handler (by name or instance). */
  context(which: string | ChannelHandler): HandlerContext | undefined {
    if (typeof which === 'string') return this.byName.get(which);
    for (let c = this.head.next; c !== null && c !== this.tail; c = c.next) if (c.handler === which) return c;
    return undefined;
  }

  /** Handler names from head to tail. */
  names(): string[] {
    const out: string[] = [];
    for (let c = this.head.next; c !== null && c !== this.tail; c = c.next) out.push(c.name);
    return out;
  }

  // ---- inbound, from the head ----

  fireActive(): void {
    this.head.fireActive();
  }
  fireRead(msg: unknown): void {
    this.head.fireRead(msg);
  }
  fireReadComplete(): void {
    this.head.fireReadComplete();
  }
  fireInputShutdown(): void {
    this.head.fireInputShutdown();
  }
  fireWritabilityChanged(writable: boolean): void {
    this.head.fireWritabilityChanged(writable);
  }
  fireUserEvent(event: unknown): void {
    this.head.fireUserEvent(event);
  }
  fireInactive(reason: CloseReason): void {
    this.head.fireInactive(reason);
  }
  fireError(error: unknown): void {
    this.head.fireError(error);
  }

  // ---- outbound, from the tail ----

  write(msg: unknown): void {
    this.tail.write(msg);
  }
  flush(): void {
    this.tail.flush();
  }
  writeAndFlush(msg: unknown): void {
    this.tail.write(msg);
    this.tail.flush();
  }
  close(reason: CloseReason = 'local'): void {
    this.tail.close(reason);
  }
  shutdownOutput(): void {
    this.tail.shutdownOutput();
  }

  // ---- internals ----

  private args(a: string | ChannelHandler, b?: ChannelHandler): [string, ChannelHandler] {
    if (typeof a === 'string') {
      if (b === undefined) throw new TypeError('addLast/addFirst: handler is missing');
      return [this.checkName(a), b];
    }
    let name: string;
    do name = `${a.constructor?.name || 'handler'}#${this.autoName++}`;
    while (this.byName.has(name));
    return [name, a];
  }

  private checkName(name: string): string {
    if (this.byName.has(name) || name === 'head' || name === 'tail') {
      throw new Error(`duplicate handler name: ${name}`);
    }
    return name;
  }

  private mustGet(name: string): HandlerContext {
    const c = this.byName.get(name);
    if (c === undefined) throw new Error(`no handler named ${name}`);
    return c;
  }

  private mustFind(which: string | ChannelHandler | HandlerContext): HandlerContext {
    const c =
      which instanceof HandlerContext
        ? which.pipeline === this && !which.removed
          ? which
          : undefined
        : this.context(which);
    if (c === undefined)
      throw new Error(`no such handler in the pipeline: ${typeof which === 'string' ? which : String(which)}`);
    return c;
  }

  private link(ctx: HandlerContext, after: HandlerContext): void {
    const before = after.next as HandlerContext;
    ctx.prev = after;
    ctx.next = before;
    after.next = ctx;
    before.prev = ctx;
    this.byName.set(ctx.name, ctx);
    this.announceAdded(ctx);
  }

  private unlink(ctx: HandlerContext): void {
    (ctx.prev as HandlerContext).next = ctx.next;
    (ctx.next as HandlerContext).prev = ctx.prev;
    ctx.removed = true;
    this.byName.delete(ctx.name);
  }

  private announceAdded(ctx: HandlerContext): void {
    if (this.pendingAdded !== undefined) this.pendingAdded.push(ctx);
    else this.callAdded(ctx);
  }

  private callAdded(ctx: HandlerContext): void {
    try {
      ctx.handler.handlerAdded?.(ctx);
    } catch (err) {
      ctx.fireError(err);
    }
  }

  private callRemoved(ctx: HandlerContext): void {
    if (this.pendingAdded !== undefined) return; // never announced
    try {
      ctx.handler.handlerRemoved?.(ctx);
    } catch (err) {
      ctx.fireError(err);
    }
  }
}

/** Builds a pipeline from a spec (class or factory). */
export function createPipeline(spec: PipelineSpec, channel: Channel): Pipeline {
  if (spec.prototype instanceof Pipeline || spec === Pipeline) {
    return new (spec as new () => Pipeline)();
  }
  const p = (spec as (channel: Channel) => Pipeline)(channel);
  if (!(p instanceof Pipeline)) throw new TypeError('pipeline factory must return a Pipeline');
  return p;
}
