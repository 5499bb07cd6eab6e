/**
 * Which loop a client connection runs on.
 *
 * 1. The loop given as `loop`: the caller owns it and closes it.
 * 2. Else the loop of the server serving in this process (a worker, or `workers: 0`), so that a
 *    server's outgoing connections share its reactor; the server closes it (and with it, through
 *    `EventLoop.onClose`, the client connections still open on it).
 * 3. Else one standalone loop for the process, created on first use and closed when its last
 *    lease (connection, connect in progress, pool) is released — its poll handle is what keeps
 *    Node alive, so a script that only uses the client exits by itself once it closed them.
 */
import { InvalidOptionError } from '../common/errors.js';
import { servingLoop } from '../worker/current.js';
import { EventLoop } from '../worker/loop.js';

/** A loop borrowed for a connection or a pool; `release()` once, when done with it. */
export interface LoopLease {
  readonly loop: EventLoop;
  release(): void;
}

let standalone: EventLoop | undefined;
let leases = 0;

/** Borrows the loop for a client (see the rules above). */
export function acquireLoop(explicit: EventLoop | undefined): LoopLease {
  if (explicit !== undefined) {
    if (!(explicit instanceof EventLoop)) throw new InvalidOptionError('loop', 'must be an EventLoop');
    if (explicit.isClosed) throw new InvalidOptionError('loop', 'is closed');
    return { loop: explicit, release: noop };
  }
  const serving = servingLoop();
  if (serving !== undefined) return { loop: serving, release: noop };
  if (standalone === undefined || standalone.isClosed) {
    standalone = new EventLoop();
    leases = 0;
  }
  const loop = standalone;
  leases++;
  let released = false;
  return {
    loop,
    release: () => {
      if (released) return;
      released = true;
      if (loop !== standalone) return;
      if (--leases > 0) return;
      standalone = undefined;
      void loop.close();
    },
  };
}

/** Leases held on the standalone loop (0 when it is closed): for tests and diagnostics. */
export function standaloneLeases(): number {
  return standalone === undefined ? 0 : leases;
}

function noop(): void {}
