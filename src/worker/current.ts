/**
 * The loop serving in this process, for clients that connect without naming a loop: a worker (or
 * an in-process server) then drives its outgoing connections on the loop that serves its
 * incoming ones, as Netty users share one EventLoopGroup between Bootstrap and ServerBootstrap.
 * A stack, because tests (and unusual programs) may run several in-process servers: the most
 * recent one still open is current.
 */
import type { EventLoop } from './loop.js';

const serving: EventLoop[] = [];

/** A server started serving on `loop`. */
export function enterServing(loop: EventLoop): void {
  serving.push(loop);
}

/** The server on `loop` is stopping: new clients must not pick its loop any more. */
export function leaveServing(loop: EventLoop): void {
  const i = serving.lastIndexOf(loop);
  if (i >= 0) serving.splice(i, 1);
}

/** The loop of the most recent server still serving in this process, if any. */
export function servingLoop(): EventLoop | undefined {
  for (let i = serving.length - 1; i >= 0; i--) {
    const loop = serving[i] as EventLoop;
    if (!loop.isClosed) return loop;
  }
  return undefined;
}
