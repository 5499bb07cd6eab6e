/**
 * Handlers: Netty's vocabulary in TypeScript form.
 *
 * ```
 *                        I/O request (write, flush, close, shutdownOutput)
 *                        from Channel / Pipeline / HandlerContext
 *                                        |
 *  +-------------------------------------+---------------+
 *  |                           Pipeline  |               |
 *  |                                    \|/              |
 *  |   +---------------------+   +-----------+----------+ |
 *  |   | inbound handler  N  |   | outbound handler  1  | |
 *  |   +----------+----------+   +-----------+----------+ |
 *  |             /|\                         |            |
 *  |              |                         \|/           |
 *  |   +----------+----------+   +-----------+----------+ |
 *  |   | inbound handler  1  |   | outbound handler  N  | |
 *  |   +----------+----------+   +-----------+----------+ |
 *  |             /|\                         |            |
 *  +--------------+--------------------------+------------+
 *                 |                         \|/
 *   [ the connection: read() ... ]   [ write()/writev(), close(), shutdown() ]
 * ```
 *
 * Inbound events (`onActive`, `onRead`, `onReadComplete`, `onInputShutdown`,
 * `onWritabilityChanged`, `onUserEvent`, `onInactive`, `onError`) travel from the head (the
 * socket) towards the tail; outbound operations (`write`, `flush`, `close`, `shutdownOutput`)
 * from the tail towards the head. A handler implements the methods it cares about; the base
 * classes pass everything else along, and the pipeline skips pass-through methods entirely
 * (computed once per handler, as Netty's `@Skip` mask).
 */
import type { CloseReason } from '../common/close-reason.js';
import type { HandlerContext } from './pipeline.js';

export { CLOSE_REASONS, type CloseReason } from '../common/close-reason.js';

/** Every method a handler may implement. All optional: implement what you need. */
export interface ChannelHandler {
  /** The handler was added to a pipeline whose channel is attached. */
  handlerAdded?(ctx: HandlerContext): void;
  /** The handler was removed (or replaced); release what it holds. */
  handlerRemoved?(ctx: HandlerContext): void;

  onActive?(ctx: HandlerContext): void;
  onRead?(ctx: HandlerContext, msg: unknown): void;
  onReadComplete?(ctx: HandlerContext): void;
  onInputShutdown?(ctx: HandlerContext): void;
  onWritabilityChanged?(ctx: HandlerContext, writable: boolean): void;
  onUserEvent?(ctx: HandlerContext, event: unknown): void;
  onInactive?(ctx: HandlerContext, reason: CloseReason): void;
  onError?(ctx: HandlerContext, error: unknown): void;

  write?(ctx: HandlerContext, msg: unknown): void;
  flush?(ctx: HandlerContext): void;
  close?(ctx: HandlerContext, reason: CloseReason): void;
  shutdownOutput?(ctx: HandlerContext): void;
}

/**
 * Base class for inbound handlers: every inbound event passes on unchanged. `I` is the type of
 * message this handler reads.
 */
export class ChannelInboundHandler<I = unknown> implements ChannelHandler {
  onActive(ctx: HandlerContext): void {
    ctx.fireActive();
  }
  onRead(ctx: HandlerContext, msg: I): void {
    ctx.fireRead(msg);
  }
  onReadComplete(ctx: HandlerContext): void {
    ctx.fireReadComplete();
  }
  onInputShutdown(ctx: HandlerContext): void {
    ctx.fireInputShutdown();
  }
  onWritabilityChanged(ctx: HandlerContext, writable: boolean): void {
    ctx.fireWritabilityChanged(writable);
  }
  onUserEvent(ctx: HandlerContext, event: unknown): void {
    ctx.fireUserEvent(event);
  }
  onInactive(ctx: HandlerContext, reason: CloseReason): void {
    ctx.fireInactive(reason);
  }
  onError(ctx: HandlerContext, error: unknown): void {
    ctx.fireError(error);
  }
}

/** Base class for outbound handlers: every outbound operation passes on unchanged. */
export class ChannelOutboundHandler<O = unknown> implements ChannelHandler {
  write(ctx: HandlerContext, msg: O): void {
    ctx.write(msg);
  }
  flush(ctx: HandlerContext): void {
    ctx.flush();
  }
  close(ctx: HandlerContext, reason: CloseReason): void {
    ctx.close(reason);
  }
  shutdownOutput(ctx: HandlerContext): void {
    ctx.shutdownOutput();
  }
}

/** Both directions pass through; override the ones you handle. */
export class ChannelDuplexHandler<I = unknown, O = unknown> extends ChannelInboundHandler<I> {
  write(ctx: HandlerContext, msg: O): void {
    ctx.write(msg);
  }
  flush(ctx: HandlerContext): void {
    ctx.flush();
  }
  close(ctx: HandlerContext, reason: CloseReason): void {
    ctx.close(reason);
  }
  shutdownOutput(ctx: HandlerContext): void {
    ctx.shutdownOutput();
  }
}

// Event bits of a context's mask: a bit is set when its handler really implements the event.
export const M_ACTIVE = 1 << 0;
export const M_READ = 1 << 1;
export const M_READ_COMPLETE = 1 << 2;
export const M_INPUT_SHUTDOWN = 1 << 3;
export const M_WRITABILITY = 1 << 4;
export const M_USER_EVENT = 1 << 5;
export const M_INACTIVE = 1 << 6;
export const M_ERROR = 1 << 7;
export const M_WRITE = 1 << 8;
export const M_FLUSH = 1 << 9;
export const M_CLOSE = 1 << 10;
export const M_SHUTDOWN_OUTPUT = 1 << 11;
export const M_ALL_INBOUND = (1 << 8) - 1;
export const M_ALL_OUTBOUND = M_WRITE | M_FLUSH | M_CLOSE | M_SHUTDOWN_OUTPUT;

const METHOD_BITS: ReadonlyArray<readonly [keyof ChannelHandler, number]> = [
  ['onActive', M_ACTIVE],
  ['onRead', M_READ],
  ['onReadComplete', M_READ_COMPLETE],
  ['onInputShutdown', M_INPUT_SHUTDOWN],
  ['onWritabilityChanged', M_WRITABILITY],
  ['onUserEvent', M_USER_EVENT],
  ['onInactive', M_INACTIVE],
  ['onError', M_ERROR],
  ['write', M_WRITE],
  ['flush', M_FLUSH],
  ['close', M_CLOSE],
  ['shutdownOutput', M_SHUTDOWN_OUTPUT],
];

// The pass-through implementations of the base classes; a handler whose method is one of these
// is skipped for that event.
const PASS_THROUGH = new Set<unknown>();
for (const proto of [
  ChannelInboundHandler.prototype,
  ChannelOutboundHandler.prototype,
  ChannelDuplexHandler.prototype,
]) {
  for (const [name] of METHOD_BITS) {
    const fn = (proto as ChannelHandler)[name];
    if (typeof fn === 'function') PASS_THROUGH.add(fn);
  }
}

const maskCache = new WeakMap<object, number>();

/** The events `handler` implements (its own methods, not pass-through ones). */
export function handlerMask(handler: ChannelHandler): number {
  const proto = Object.getPrototypeOf(handler) as object | null;
  const ownMethods = Object.getOwnPropertyNames(handler).some(
    (n) => typeof (handler as Record<string, unknown>)[n] === 'function',
  );
  // Handlers of one class share a mask unless an instance carries its own function properties.
  if (proto !== null && !ownMethods) {
    const cached = maskCache.get(proto);
    if (cached !== undefined) return cached;
  }
  let mask = 0;
  for (const [name, bit] of METHOD_BITS) {
    const fn = handler[name];
    if (typeof fn === 'function' && !PASS_THROUGH.has(fn)) mask |= bit;
  }
  if (proto !== null && !ownMethods) maskCache.set(proto, mask);
  return mask;
}
