/**
 * In-cluster mode: the worker's side of its master's relay (src/master/relay.ts, frames in
 * relay-protocol.ts). The worker's end of the socket pair is inherited at fork; it becomes a
 * `Connection` on the worker's loop the first time a `PubSub` of this process needs it, and stays
 * open until the loop closes (the worker's end): a `PubSub` closed and another made later use the
 * same connection, one at a time.
 *
 * Out: SUB/UNSUB (PSUB/PUNSUB) when a topic (pattern) gets its first local subscriber or loses its
 * last one, and PUB with each message published — the frame encoded once, in one allocation.
 * In: the messages of the other workers, PUB frames exactly as their publishers wrote them; the
 * worker delivers each to every local subscription it matches (the master sends a message once
 * per worker, whatever matched it there).
 *
 * A publisher never waits for the master: frames queue in the connection, and past
 * `maxQueuedBytes` waiting (a master that does not read) a message is dropped and counted.
 */
import { Buffer } from 'node:buffer';
import { acquireLoop, type LoopLease } from '../client/loops.js';
import { LengthFieldFrameDecoder } from '../codec/length-field.js';
import { bufferView } from '../common/buffer-view.js';
import {
  RELAY_HEAD,
  RELAY_MAX_FRAME,
  RELAY_PSUB,
  RELAY_PUB,
  RELAY_PUNSUB,
  RELAY_SUB,
  RELAY_UNSUB,
} from '../master/relay-protocol.js';
import { relaySocket } from '../master/worker-side.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { beginSendBurst, endSendBurst } from '../websocket/websocket.js';
import { Connection } from '../worker/connection.js';
import type { EventLoop } from '../worker/loop.js';
import { resolveConnectionOptions } from '../worker/options.js';
import { HEADER_SIZE, writeHeader } from './envelope.js';
import { newTransportStats, type Transport, type TransportHost, type TransportStats } from './transport.js';

let claimed = false;

/**
 * Claims this worker's relay for one `PubSub` (true), or says there is none to claim: not a worker
 * of a master, or claimed by another `PubSub` still open (false). `release` gives it back.
 */
export function claimRelay(release = false): boolean {
  if (release) {
    claimed = false;
    return false;
  }
  if (claimed || relaySocket() === undefined || link?.closed === true) return false;
  claimed = true;
  return true;
}

const CONNECTION = resolveConnectionOptions({ highWaterMark: 1024 * 1024, lowWaterMark: 512 * 1024 });

/** The open relay connection of this process, shared by the `PubSub`s that use it one after the other. */
let link: RelayLink | undefined;

class RelayLink extends ChannelInboundHandler {
  host: TransportHost | undefined;
  stats: TransportStats = newTransportStats();
  closed = false;
  ctx: HandlerContext | undefined;
  private readonly lease: LoopLease;
  private removeHook: (() => void) | undefined;
  private inBurst = false;
  private flushQueued = false;

  constructor(loop: EventLoop | undefined, fd: number) {
    super();
    this.lease = acquireLoop(loop);
    const conn = new Connection(
      {
        loop: this.lease.loop,
        pipeline: () =>
          new Pipeline()
            .addLast(
              'frames',
              new LengthFieldFrameDecoder({
                lengthFieldLength: 4,
                initialBytesToStrip: 4,
                maxFrameLength: RELAY_MAX_FRAME,
              }),
            )
            .addLast('relay', this),
        options: CONNECTION,
        onClosed: () => this.ended(),
      },
      fd,
    );
    if (!conn.open()) {
      this.ended();
      return;
    }
    // The worker's loop closing (its drain is over) ends the relay: the master drops our subscriptions.
    if (!this.closed) this.removeHook = this.lease.loop.onClose(() => conn.abort('shutdown'));
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
    this.stats.connected = true;
  }

  private ended(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.connected = false;
    this.ctx = undefined;
    this.removeHook?.();
    this.lease.release();
  }

  /**
   * Writes a subscription change and flushes it now: it leaves before anything the process
   * writes after it (a welcome to the client that joined). That orders it on this worker's socket
   * only: the master reads the workers' sockets in turn, so a message another worker publishes in
   * the same few milliseconds may still be routed before the subscription is in place.
   */
  sendNow(frame: Buffer): void {
    const ctx = this.ctx as HandlerContext;
    ctx.write(frame);
    ctx.flush();
  }

  /** Writes a frame; flushed once at the end of this turn. */
  send(frame: Buffer): void {
    const ctx = this.ctx as HandlerContext;
    ctx.write(frame);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => {
    this.flushQueued = false;
    this.ctx?.flush();
  };

  override onRead(_ctx: HandlerContext, msg: unknown): void {
    // The frames of one read go out to the WebSockets in one write per member (websocket.ts bursts).
    if (!this.inBurst) {
      this.inBurst = true;
      beginSendBurst();
    }
    const f = msg as Buffer; // op, name length, name, envelope (the length is stripped)
    if (f.length < RELAY_HEAD - 4 || f[0] !== RELAY_PUB) return;
    const nameEnd = 3 + f.readUInt16BE(1);
    if (nameEnd > f.length) return;
    const topic = f.toString('utf8', 3, nameEnd);
    this.host?.onRelayed(topic, bufferView(f.buffer, f.byteOffset + nameEnd, f.length - nameEnd));
  }

  override onReadComplete(ctx: HandlerContext): void {
    this.endBurst();
    ctx.fireReadComplete();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.endBurst();
    ctx.fireInactive(reason);
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    // The master never sends a malformed frame; if it did, the relay cannot be trusted any more.
    ctx.channel.logger.error('pub/sub relay: closing the connection to the master', error);
    ctx.channel.abort('protocol-error');
  }

  private endBurst(): void {
    if (!this.inBurst) return;
    this.inBurst = false;
    endSendBurst();
  }
}

export interface ClusterTransportOptions {
  readonly loop: EventLoop | undefined;
  readonly maxQueuedBytes: number;
}

export class ClusterTransport implements Transport {
  readonly kind = 'cluster';
  private readonly link: RelayLink | undefined;
  private detached = false;

  constructor(
    private readonly host: TransportHost,
    private readonly o: ClusterTransportOptions,
  ) {
    if (link === undefined) {
      const fd = relaySocket();
      if (fd !== undefined) link = new RelayLink(o.loop, fd);
    }
    if (link !== undefined && !link.closed) {
      link.host = host;
      link.stats = newTransportStats();
      link.stats.connected = link.ctx !== undefined;
      this.link = link;
      const { topics, patterns } = host.subscriptions();
      for (const t of topics) this.subscribe(t, false);
      for (const p of patterns) this.subscribe(p, true);
    }
  }

  private usable(): RelayLink | undefined {
    const l = this.link;
    return this.detached || l === undefined || l.closed || l.ctx === undefined ? undefined : l;
  }

  subscribe(name: string, pattern: boolean): void {
    this.control(pattern ? RELAY_PSUB : RELAY_SUB, name);
  }

  unsubscribe(name: string, pattern: boolean): void {
    this.control(pattern ? RELAY_PUNSUB : RELAY_UNSUB, name);
  }

  private control(op: number, name: string): void {
    const l = this.usable();
    if (l === undefined) return;
    const n = Buffer.byteLength(name);
    const f = Buffer.allocUnsafe(RELAY_HEAD + n);
    f.writeUInt32BE(RELAY_HEAD - 4 + n, 0);
    f[4] = op;
    f.writeUInt16BE(n, 5);
    f.write(name, RELAY_HEAD, n, 'utf8');
    l.sendNow(f);
  }

  publish(topic: string, data: string | Uint8Array, binary: boolean, origin: number, seq: number): void {
    const l = this.usable();
    if (l === undefined) {
      // The relay is gone (the master died; this worker is on its way out): never sent.
      if (this.link !== undefined) this.link.stats.dropped++;
      return;
    }
    const s = l.stats;
    const n = Buffer.byteLength(topic);
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const total = RELAY_HEAD + n + HEADER_SIZE + size;
    const ch = (l.ctx as HandlerContext).channel;
    // Never wait for the master: past the bound, this message is not sent (its receivers will see the gap).
    if (ch.pendingWriteBytes + total > this.o.maxQueuedBytes) {
      s.dropped++;
      return;
    }
    const f = Buffer.allocUnsafe(total);
    f.writeUInt32BE(total - 4, 0);
    f[4] = RELAY_PUB;
    f.writeUInt16BE(n, 5);
    f.write(topic, RELAY_HEAD, n, 'utf8');
    const at = RELAY_HEAD + n;
    writeHeader(f, at, binary, origin, seq);
    if (typeof data === 'string') f.write(data, at + HEADER_SIZE, size, 'utf8');
    else f.set(data, at + HEADER_SIZE);
    s.forwarded++;
    l.send(f);
  }

  connected(): Promise<void> {
    return Promise.resolve();
  }

  stats(): TransportStats {
    const l = this.link;
    if (l === undefined) return newTransportStats();
    const s = { ...l.stats };
    s.connected = !l.closed && l.ctx !== undefined && !this.detached;
    const ctx = l.ctx;
    if (ctx !== undefined) s.queuedBytes = ctx.channel.pendingWriteBytes;
    return s;
  }

  /**
   * Lets the next `PubSub` of this worker use the connection (the host has unsubscribed everything
   * before: its subscribers left).
   */
  async close(): Promise<void> {
    if (this.detached) return;
    this.detached = true;
    if (this.link !== undefined && this.link.host === this.host) this.link.host = undefined;
  }
}
