/**
 * What serves connections in one process: a loop, its acceptors, the open connections, and the
 * drain that ends them. Used by the in-process server (`workers: 0`) and by each worker of a
 * master; the difference between the two is only where the listening sockets come from.
 */
import { DRAINING } from '../pipeline/events.js';
import type { PipelineSpec } from '../pipeline/pipeline.js';
import type { ServerStage } from '../pipeline/stages.js';
import { close as sysClose } from '../syscalls/libc.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { applySocketOptions, isUnixSocket, type SocketOptions } from '../syscalls/socket.js';
import { Acceptor, type AcceptorOptions } from './acceptor.js';
import { Connection, type ConnectionContext } from './connection.js';
import { enterServing, leaveServing } from './current.js';
import type { EventLoop, LoopStats } from './loop.js';
import type { ResolvedConnectionOptions } from './options.js';

// Process-wide resources that outlive one connection (offload thread pools) end with the last
// Serving of the process: in a worker that is its only one, closed after its connections drained
// and before the process exits.
const lastCloseHooks = new Set<() => unknown>();
let openServings = 0;

/**
 * Runs `hook` (awaited) each time the last open `Serving` of this process has closed — after its
 * connections drained and its loop closed. Returns a function that unregisters it.
 */
export function onLastServingClosed(hook: () => unknown): () => void {
  lastCloseHooks.add(hook);
  return () => lastCloseHooks.delete(hook);
}

// Reports of the process's other parts (its offload pools), sent with the worker's counters when
// the master collects stats. A registry rather than imports, so that a worker that does not offload
// never loads the thread pool's module.
const reports = new Map<string, () => unknown>();

/** Adds `name: source()` to what this process reports to `collectStats()` (replacing `name`'s). */
export function addWorkerReport(name: string, source: () => unknown): void {
  reports.set(name, source);
}

/** Every registered report, read now (a source that throws reports its error's message). */
export function workerReports(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, source] of reports) {
    try {
      out[name] = source();
    } catch (err) {
      out[name] = { error: (err as Error).message };
    }
  }
  return out;
}

/**
 * A process's counters: its loop's, and those of the stages before the user's pipeline under their
 * names (with TLS, its handshakes under `tls`: a `TlsStats`).
 */
export type ServingStats = LoopStats & { [stage: string]: unknown };
/** The socket options that apply to a Unix domain socket: the buffer sizes, not TCP's. */
function unixSocketOptions(o: SocketOptions): SocketOptions {
  return {
    ...(o.sendBufferSize !== undefined ? { sendBufferSize: o.sendBufferSize } : {}),
    ...(o.receiveBufferSize !== undefined ? { receiveBufferSize: o.receiveBufferSize } : {}),
  };
}

export class Serving {
  /**
   * Connections open now. Counted, not kept in a Set (~33 B per connection): a drain finds them
   * among the loop's handles, which hold every open one anyway.
   */
  private open = 0;
  /** Stages before the user's pipeline (PROXY protocol, TLS): their handlers per connection, their lifecycle with the server. */
  private readonly stages: readonly ServerStage[];
  private readonly acceptors: Acceptor[] = [];
  private readonly ctx: ConnectionContext;
  private onEmpty: (() => void) | undefined;
  private closed = false;
  /** Counted in `openServings` (from its first listening socket on, so a failed start is not). */
  private counted = false;
  /** 0: no limit. */
  private readonly maxConnections: number;
  /** Accepting is held off: `maxConnections` are open. */
  private atLimit = false;

  constructor(
    readonly loop: EventLoop,
    pipeline: PipelineSpec,
    private readonly connOptions: ResolvedConnectionOptions,
    private readonly acceptOptions: AcceptorOptions & {
      readonly maxConnections?: number;
      /** Stages put before the user's pipeline on every connection (pipeline/stages.ts), in order; closed with the server. */
      readonly stages?: readonly ServerStage[];
    },
  ) {
    this.maxConnections = acceptOptions.maxConnections ?? 0;
    // One SSL_CTX per server and process: certificate files the script read are this run's.
    this.stages = acceptOptions.stages ?? [];
    // Every key present, in one order (a listener's `local` replaces one): the connections read
    // their context on the hot path, and one shape keeps those reads monomorphic.
    this.ctx = {
      loop,
      pipeline,
      options: connOptions,
      owner: this,
      local: undefined,
      stages: acceptOptions.stages !== undefined && acceptOptions.stages.length > 0 ? acceptOptions.stages : undefined,
      onClosed: () => {
        this.open--;
        if (this.atLimit && this.open < this.maxConnections) this.holdAccepting(false);
        if (this.open === 0) this.onEmpty?.();
      },
    };
    // Client connections made in this process without an explicit loop run on this one.
    enterServing(loop);
  }

  /** Starts accepting on a listening socket (the acceptor closes it on stop when `ownsFd`). */
  listen(fd: number, options: { exclusive?: boolean; ownsFd?: boolean } = {}): Acceptor {
    const loop = this.loop;
    // TCP options fail on a Unix domain socket (EOPNOTSUPP): only the buffer sizes apply there.
    const socketOptions = isUnixSocket(fd) ? unixSocketOptions(this.connOptions.socket) : this.connOptions.socket;
    // A listener bound to one address knows its connections' local address: in their context,
    // shared, rather than in each connection.
    let ctx = this.ctx;
    const acceptor: Acceptor = new Acceptor(
      loop,
      fd,
      (cfd, peer, peerLength) => {
        // A peer that reset while queued fails here; that connection is simply gone.
        if (applySocketOptions(cfd, socketOptions) < 0) {
          sysClose(cfd);
          loop.stats.closed.reset++;
          return;
        }
        const conn = new Connection(ctx, cfd);
        conn.setSocketAddresses(peer, peerLength);
        // Counted first: a connection closed while it opens (in onActive) is uncounted in open().
        this.open++;
        if (!conn.open()) this.open--;
        else if (this.open === this.maxConnections) this.holdAccepting(true);
      },
      { ...this.acceptOptions, ...options },
    );
    const local = acceptor.connectionLocalAddress;
    if (local !== undefined) ctx = { ...this.ctx, local };
    // At the limit, held before it starts: no registration to take back at once.
    if (this.atLimit) acceptor.hold(true);
    acceptor.start();
    this.acceptors.push(acceptor);
    if (!this.counted) {
      this.counted = true;
      openServings++;
    }
    return acceptor;
  }

  /**
   * At `maxConnections` open, stops accepting on every listening socket until one closes: new
   * connections wait in the kernel's accept queue (with `shared` balancing another worker takes
   * them) instead of being accepted into a worker that has no room — nginx's worker_connections,
   * without the reset Node's `server.maxConnections` answers with.
   */
  private holdAccepting(on: boolean): void {
    this.atLimit = on;
    if (on) {
      this.loop.stats.connectionLimitPauses++;
      this.loop.warnOnce(
        'maxConnections',
        `maxConnections (${this.maxConnections}) open: accepting paused until one closes; new connections wait in the queue`,
      );
    }
    for (const a of this.acceptors) a.hold(on);
  }

  /** The address of the first listening socket. */
  address(): SocketAddress {
    const a = this.acceptors[0];
    if (a === undefined) throw new Error('not listening');
    return a.address;
  }

  get connections(): number {
    return this.open;
  }

  stats(): ServingStats {
    const s = structuredClone(this.loop.stats) as ServingStats;
    for (const stage of this.stages) if (stage.stats !== undefined) s[stage.name] = stage.stats();
    return s;
  }

  /** Stops accepting; queued connections stay in the kernel for whoever accepts next. */
  stopAccepting(): void {
    for (const a of this.acceptors.splice(0)) a.close();
  }

  /**
   * Stops accepting, asks every connection to finish (`DRAINING` through its pipeline), waits
   * until they are all closed or `timeoutMs` passed (Infinity: no deadline), and aborts the rest.
   * Timeout 0 aborts at once.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.stopAccepting();
    if (this.open === 0) return;
    if (timeoutMs <= 0) {
      for (const c of this.openConnections()) c.abort('shutdown');
      return;
    }
    const empty = new Promise<void>((resolve) => {
      this.onEmpty = resolve;
    });
    for (const c of this.openConnections()) {
      if (c.isActive) c.pipeline.fireUserEvent(DRAINING);
    }
    if (this.open > 0) {
      let timer: NodeJS.Timeout | undefined;
      const deadline =
        timeoutMs === Number.POSITIVE_INFINITY
          ? new Promise<void>(() => {})
          : new Promise<void>((resolve) => {
              timer = setTimeout(resolve, timeoutMs);
            });
      await Promise.race([empty, deadline]);
      clearTimeout(timer);
    }
    this.onEmpty = undefined;
    const left = this.openConnections();
    if (left.length > 0) this.logAborted(left, timeoutMs);
    for (const c of left) c.abort('shutdown');
  }

  /** This server's open connections, found among the loop's handles (a copy). */
  private openConnections(): Connection[] {
    const out: Connection[] = [];
    for (const h of this.loop.registeredHandles()) {
      if (h instanceof Connection && h.madeBy(this)) out.push(h);
    }
    return out;
  }

  /**
   * Says how many connections the drain deadline cuts, and why they were still open: an operator
   * sees requests lost to a stop, or a protocol that does not end on DRAINING, only here.
   */
  private logAborted(left: readonly Connection[], timeoutMs: number): void {
    let unread = 0;
    for (const c of left) if (c.pendingWriteBytes > 0) unread++;
    const busy = left.length - unread;
    const why = [
      unread > 0 ? `${unread} with output its peer has not read` : '',
      busy > 0 ? `${busy} still busy (a request in progress, or a protocol that did not close on DRAINING)` : '',
    ]
      .filter((w) => w !== '')
      .join(', ');
    this.loop.logger.warn(
      `drain deadline (${timeoutMs} ms) passed with ${left.length} connection${left.length === 1 ? '' : 's'} still open; aborting: ${why}`,
    );
  }

  /** Drains (see `drain`) and releases the loop. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    leaveServing(this.loop);
    await this.drain(timeoutMs);
    await this.loop.close();
    for (const stage of this.stages) stage.close?.();
    if (!this.counted) return;
    this.counted = false;
    if (--openServings > 0) return;
    for (const hook of [...lastCloseHooks]) {
      try {
        await hook();
      } catch (err) {
        this.loop.logger.error('a close hook failed', err);
      }
    }
  }
}

/** What every handle that serves in its own process shows of its `Serving`. */
export abstract class ServingHandle {
  constructor(protected readonly serving: Serving) {}

  /** The bound address (the real port when listening on port 0). */
  address(): SocketAddress {
    return this.serving.address();
  }

  /** Connections open now. */
  get connections(): number {
    return this.serving.connections;
  }

  /** A snapshot of the loop's counters (and TLS ones, under `tls`). */
  stats(): ServingStats {
    return this.serving.stats();
  }
}
