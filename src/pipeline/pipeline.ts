/**
 * The per-connection pipeline: a doubly linked list of handler contexts between a head (the
 * transport) and a tail (where unhandled messages and errors end).
 *
 * Memory: a pipeline is made per connection and lives as long as it, so it holds little. Head and
 * tail are one context, the list's sentinel: the list is a ring through it, so an inbound walk that
 * reaches it has reached the tail and an outbound walk the head — one object where two contexts
 * and two handlers were. Its handler is one object shared by every pipeline (it finds the
 * transport through the sentinel). A context does not point at its pipeline: `ctx.pipeline`
 * follows `next` to the sentinel, which does (a step or three; handlers ask rarely). Names are
 * looked up by walking the 3–8 contexts rather than in a Map per pipeline (`get`, `remove` by name
 * are rare), and a context's flags share its mask.
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

/** Flag bits kept in a context's `bits` beside its event mask (which uses bits 0–11). */
const REMOVED = 1 << 16;
/** `handlerAdded` was called (so `handlerRemoved` will be). */
const ADDED = 1 << 17;
/** On the sentinel: the pipeline is attached and past `initChannel`; additions are announced at once. */
const ANNOUNCING = 1 << 18;
/** The sentinel (head and tail), a `PipelineSentinel`. */
const SENTINEL = 1 << 19;
const EVENTS = M_ALL_INBOUND | M_ALL_OUTBOUND;

/**
 * A handler's place in one pipeline: how it passes events on. Inbound `fire*` calls go to the
 * next handler towards the tail; outbound calls (`write`, `flush`, `close`, `shutdownOutput`) go
 * to the previous handler towards the head.
 */
export class HandlerContext {
  /** @internal */ prev: HandlerContext;
  /** @internal */ next: HandlerContext;
  /** @internal The events the handler implements (`handlerMask`) and the context's flags. */
  bits: number;

  constructor(
    readonly name: string,
    readonly handler: ChannelHandler,
    mask?: number,
  ) {
    this.prev = this;
    this.next = this;
    this.bits = mask ?? handlerMask(handler);
  }

  /** The pipeline: the sentinel's, found by following `next` (which a removed context keeps). */
  get pipeline(): Pipeline {
    let c: HandlerContext = this;
    while ((c.bits & SENTINEL) === 0) c = c.next;
    return (c as PipelineSentinel).owner;
  }

  get channel(): Channel {
    return this.pipeline.channel;
  }

  /** @internal The events its handler implements. */
  get mask(): number {
    return this.bits & EVENTS;
  }

  /** Whether the handler was removed from (or replaced in) its pipeline. */
  get removed(): boolean {
    return (this.bits & REMOVED) !== 0;
  }

  private nextIn(bit: number): HandlerContext {
    // The sentinel (the tail, going this way) implements every inbound event: the walk ends.
    let c = this.next;
    while ((c.bits & bit) === 0) c = c.next;
    return c;
  }

  private prevOut(bit: number): HandlerContext {
    // The sentinel (the head, going this way) implements every outbound operation.
    let c = this.prev;
    while ((c.bits & bit) === 0) c = c.prev;
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
      // The tail's end of the chain failed (the transport's error report threw): nothing is left
      // to hand it to, and going round the ring again could repeat it for ever.
      if (c.handler === HEAD_TAIL) throw err;
      // A failing error handler passes its own error on; the tail ends the chain.
      c.fireError(err);
    }
  }

  /**
   * @internal Whether this handler's writes go straight to a transport that releases them on flush
   * (`Transport.releasesOnFlush`): no handler between that implements `write`.
   */
  get writesToReleasingTransport(): boolean {
    const c = this.prevOut(M_WRITE);
    return (c.bits & SENTINEL) !== 0 && (c as PipelineSentinel).owner.transport.releasesOnFlush === true;
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

/** The transport below the sentinel `ctx` (its handler is only ever called with its own context). */
function transportOf(ctx: HandlerContext): Transport {
  return (ctx as PipelineSentinel).owner.transport;
}

/**
 * The sentinel's handler, shared by every pipeline: outbound operations that reach it have
 * reached the head (the transport), inbound events the tail (nobody consumed them).
 */
class HeadTailHandler implements ChannelHandler {
  // ---- head ----
  write(ctx: HandlerContext, msg: unknown): void {
    transportOf(ctx).transportWrite(msg);
  }
  flush(ctx: HandlerContext): void {
    transportOf(ctx).transportFlush();
  }
  close(ctx: HandlerContext, reason: CloseReason): void {
    transportOf(ctx).transportClose(reason);
  }
  shutdownOutput(ctx: HandlerContext): void {
    transportOf(ctx).transportShutdownOutput();
  }
  // ---- tail ----
  onActive(): void {}
  onRead(ctx: HandlerContext, msg: unknown): void {
    transportOf(ctx).unhandledMessage(msg);
  }
  onReadComplete(): void {}
  onInputShutdown(): void {}
  onWritabilityChanged(): void {}
  onUserEvent(ctx: HandlerContext, event: unknown): void {
    // Nobody closed politely for the draining server: close gracefully now.
    if (event instanceof ServerDrainingEvent) transportOf(ctx).transportClose('shutdown');
  }
  onInactive(): void {}
  onError(ctx: HandlerContext, error: unknown): void {
    transportOf(ctx).unhandledError(error);
  }
}

const HEAD_TAIL = new HeadTailHandler();

/** Head and tail of one pipeline (see the module comment): the only context that knows its pipeline. */
class PipelineSentinel extends HandlerContext {
  constructor(readonly owner: Pipeline) {
    super('head', HEAD_TAIL, EVENTS | SENTINEL);
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
  /** @internal Head and tail in one: the ring of contexts starts and ends here. */
  readonly sentinel: HandlerContext;
  /** The channel, which is also the transport below the head; undefined until attached. */
  private io: (Channel & Transport) | undefined = undefined;

  constructor() {
    this.sentinel = new PipelineSentinel(this);
  }

  /** @internal What the head writes to (the channel, once attached). */
  get transport(): Transport {
    return this.io ?? DETACHED;
  }

  /**
   * Adds the handlers of a new connection. Called once, when the channel is attached and before
   * `onActive`. The default adds nothing.
   */
  initChannel(_channel: Channel): void {}

  /** The channel this pipeline serves. */
  get channel(): Channel {
    if (this.io === undefined) throw new Error('pipeline is not attached to a channel yet');
    return this.io;
  }

  /**
   * @internal Binds the pipeline to its channel, runs `initChannel`, then deferred `handlerAdded`s.
   * The channel is the transport below the head too (one object: a connection, an embedded channel).
   */
  attach(channel: Channel, transport: Transport = channel as Channel & Transport): void {
    if (this.io !== undefined) throw new Error('pipeline is already attached');
    if ((transport as unknown) !== channel)
      throw new TypeError('a pipeline attaches to a channel that is its own transport');
    this.io = channel as Channel & Transport;
    this.initChannel(channel);
    const s = this.sentinel;
    s.bits |= ANNOUNCING;
    // Every handler added so far, in pipeline order. One added by a handlerAdded is announced at
    // once (and flagged, so the walk skips it); one removed by it keeps its `next`, so the walk
    // goes on from there.
    for (let c = s.next; c !== s; c = c.next) {
      if ((c.bits & (ADDED | REMOVED)) === 0) this.callAdded(c);
    }
  }

  // ---- building ----

  /** Appends a handler before the tail. The name is optional and must be unique. */
  addLast(name: string, handler: ChannelHandler): this;
  addLast(handler: ChannelHandler): this;
  addLast(a: string | ChannelHandler, b?: ChannelHandler): this {
    const [name, handler] = this.args(a, b);
    this.link(new HandlerContext(name, handler), this.sentinel.prev);
    return this;
  }

  /** Inserts a handler right after the head. */
  addFirst(name: string, handler: ChannelHandler): this;
  addFirst(handler: ChannelHandler): this;
  addFirst(a: string | ChannelHandler, b?: ChannelHandler): this {
    const [name, handler] = this.args(a, b);
    this.link(new HandlerContext(name, handler), this.sentinel);
    return this;
  }

  /** Inserts a handler before the one named `baseName`. */
  addBefore(baseName: string, name: string, handler: ChannelHandler): this {
    const base = this.mustGet(baseName);
    this.link(new HandlerContext(this.checkName(name), handler), base.prev);
    return this;
  }

  /** Inserts a handler after the one named `baseName`. */
  addAfter(baseName: string, name: string, handler: ChannelHandler): this {
    const base = this.mustGet(baseName);
    this.link(new HandlerContext(this.checkName(name), handler), base);
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
    const ctx = new HandlerContext(newName, handler);
    ctx.prev = old.prev;
    ctx.next = old.next;
    old.prev.next = ctx;
    old.next.prev = ctx;
    old.bits |= REMOVED;
    // The old context now points at the new one in both directions (as Netty's replace does), so
    // its in-flight events, and anything its handlerRemoved fires or writes, pass through the new
    // handler.
    old.prev = ctx;
    old.next = ctx;
    this.announceAdded(ctx);
    this.callRemoved(old);
    return old.handler;
  }

  /** The handler named `name`, if any. */
  get(name: string): ChannelHandler | undefined {
    return this.named(name)?.handler;
  }

  /** The context of a handler (by name or instance). */
  context(which: string | ChannelHandler): HandlerContext | undefined {
    if (typeof which === 'string') return this.named(which);
    const s = this.sentinel;
    for (let c = s.next; c !== s; c = c.next) if (c.handler === which) return c;
    return undefined;
  }

  /** Handler names from head to tail. */
  names(): string[] {
    const out: string[] = [];
    const s = this.sentinel;
    for (let c = s.next; c !== s; c = c.next) out.push(c.name);
    return out;
  }

  // ---- inbound, from the head ----

  fireActive(): void {
    this.sentinel.fireActive();
  }
  fireRead(msg: unknown): void {
    this.sentinel.fireRead(msg);
  }
  fireReadComplete(): void {
    this.sentinel.fireReadComplete();
  }
  fireInputShutdown(): void {
    this.sentinel.fireInputShutdown();
  }
  fireWritabilityChanged(writable: boolean): void {
    this.sentinel.fireWritabilityChanged(writable);
  }
  fireUserEvent(event: unknown): void {
    this.sentinel.fireUserEvent(event);
  }
  fireInactive(reason: CloseReason): void {
    this.sentinel.fireInactive(reason);
  }
  fireError(error: unknown): void {
    this.sentinel.fireError(error);
  }

  // ---- outbound, from the tail ----

  write(msg: unknown): void {
    this.sentinel.write(msg);
  }
  flush(): void {
    this.sentinel.flush();
  }
  writeAndFlush(msg: unknown): void {
    this.sentinel.write(msg);
    this.sentinel.flush();
  }
  close(reason: CloseReason = 'local'): void {
    this.sentinel.close(reason);
  }
  shutdownOutput(): void {
    this.sentinel.shutdownOutput();
  }

  // ---- internals ----

  /** The context named `name` (a walk: pipelines are short and lookups by name rare). */
  private named(name: string): HandlerContext | undefined {
    const s = this.sentinel;
    for (let c = s.next; c !== s; c = c.next) if (c.name === name) return c;
    return undefined;
  }

  private args(a: string | ChannelHandler, b?: ChannelHandler): [string, ChannelHandler] {
    if (typeof a === 'string') {
      if (b === undefined) throw new TypeError('addLast/addFirst: handler is missing');
      return [this.checkName(a), b];
    }
    // The class name and the first free number: `Echo#0`, `Echo#1`, …
    const base = `${a.constructor?.name || 'handler'}#`;
    let i = 0;
    while (this.named(`${base}${i}`) !== undefined) i++;
    return [`${base}${i}`, a];
  }

  private checkName(name: string): string {
    if (name === 'head' || name === 'tail' || this.named(name) !== undefined) {
      throw new Error(`duplicate handler name: ${name}`);
    }
    return name;
  }

  private mustGet(name: string): HandlerContext {
    const c = this.named(name);
    if (c === undefined) throw new Error(`no handler named ${name}`);
    return c;
  }

  private mustFind(which: string | ChannelHandler | HandlerContext): HandlerContext {
    const c =
      which instanceof HandlerContext
        ? which.pipeline === this && !which.removed && which !== this.sentinel
          ? which
          : undefined
        : this.context(which);
    if (c === undefined)
      throw new Error(`no such handler in the pipeline: ${typeof which === 'string' ? which : String(which)}`);
    return c;
  }

  private link(ctx: HandlerContext, after: HandlerContext): void {
    const before = after.next;
    ctx.prev = after;
    ctx.next = before;
    after.next = ctx;
    before.prev = ctx;
    this.announceAdded(ctx);
  }

  private unlink(ctx: HandlerContext): void {
    ctx.prev.next = ctx.next;
    ctx.next.prev = ctx.prev;
    ctx.bits |= REMOVED;
  }

  private announceAdded(ctx: HandlerContext): void {
    // Before attach (and during initChannel) `attach` announces it, in pipeline order.
    if ((this.sentinel.bits & ANNOUNCING) !== 0) this.callAdded(ctx);
  }

  private callAdded(ctx: HandlerContext): void {
    ctx.bits |= ADDED;
    try {
      ctx.handler.handlerAdded?.(ctx);
    } catch (err) {
      ctx.fireError(err);
    }
  }

  private callRemoved(ctx: HandlerContext): void {
    if ((ctx.bits & ADDED) === 0) return; // never announced
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
