/**
 * The master's pub/sub relay (in-cluster mode of src/pubsub/, docs/pubsub.md): one AF_UNIX stream
 * socket pair per worker, made before its fork — the worker's end goes down as one more inherited
 * descriptor (WorkerSpec.relay), the master's end is a `Connection` on an event loop of the
 * master's own. A worker says which topics and patterns it has local subscribers for, and sends
 * what it publishes; the master forwards each message to every other worker with a matching
 * subscription.
 *
 * Why sockets rather than the IPC channel of `fork`: Node's IPC serialises every message to JSON
 * on each `send` — once per receiving worker in a relay — and carries text (bytes as base64). Here
 * the master reads the frame's op and topic and writes the very bytes it read to each receiver:
 * one copy per read of the sender's socket (out of the loop's read buffer, shared by every
 * receiver), no serialisation at all. Measured against the IPC channel in docs/benchmarks.md
 * ("Pub/sub").
 *
 * A receiver that does not keep up (its socket full) is not allowed to hold the others up: its
 * bytes wait in its connection's queue, and past `maxPendingBytes` its messages are dropped —
 * counted, and seen by that worker as gaps in the sequence numbers (`missed`). A worker that exits
 * closes its end: its subscriptions go with it. Frames are relay-protocol.ts.
 */
import { Buffer } from 'node:buffer';
import { outboundView } from '../common/buffer-view.js';
import { SyscallError } from '../common/errors.js';
import { GlobPattern } from '../common/glob.js';
import type { Logger } from '../common/logger.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from '../syscalls/constants.js';
import { socketpair, close as sysClose } from '../syscalls/libc.js';
import { Connection } from '../worker/connection.js';
import { EventLoop } from '../worker/loop.js';
import { resolveConnectionOptions } from '../worker/options.js';
import {
  RELAY_HEAD,
  RELAY_MAX_FRAME,
  RELAY_PSUB,
  RELAY_PUB,
  RELAY_PUNSUB,
  RELAY_SUB,
  RELAY_UNSUB,
} from './relay-protocol.js';

/** Counters of the relay (docs/pubsub.md). */
export interface RelayStats {
  /** Workers connected now. */
  workers: number;
  /** Messages received from workers. */
  messages: number;
  /** Copies written to receiving workers. */
  forwarded: number;
  /** Copies not written: the receiver had more than `maxPendingBytes` waiting. */
  dropped: number;
  /** Connections closed because they sent a malformed frame. */
  protocolErrors: number;
}

// The relay's connections: a receiver's queue turns unwritable past 4 MiB (its socket full), which
// stops reading what *it* publishes until it catches up.
const CONNECTION = resolveConnectionOptions({ highWaterMark: 4 * 1024 * 1024, lowWaterMark: 1024 * 1024 });

export class RelayHub {
  private loop: EventLoop | undefined;
  private readonly peers = new Set<RelayPeer>();
  /** Topic (its bytes as latin1, one char per byte) → the workers subscribed to it. */
  readonly topics = new Map<string, Set<RelayPeer>>();
  /** Pattern (latin1 of its bytes) → its compiled glob and the workers subscribed to it. */
  readonly patterns = new Map<string, { readonly glob: GlobPattern; readonly peers: Set<RelayPeer> }>();
  readonly counts: RelayStats = { workers: 0, messages: 0, forwarded: 0, dropped: 0, protocolErrors: 0 };

  constructor(
    readonly logger: Logger,
    /** Bytes that may wait for one receiving worker before its messages are dropped. */
    readonly maxPendingBytes = 16 * 1024 * 1024,
  ) {}

  /**
   * A socket pair for a worker about to be forked: returns the worker's end, to pass down at the
   * fork (it is close-on-exec, non-blocking) and to close in the master right after it.
   */
  open(label: string): number {
    if (this.loop === undefined || this.loop.isClosed) this.loop = new EventLoop({ logger: this.logger });
    const pair = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (typeof pair === 'number') throw new SyscallError('socketpair', -pair);
    const [mine, theirs] = pair;
    const peer = new RelayPeer(this, label);
    const conn = new Connection(
      {
        loop: this.loop,
        pipeline: () => new Pipeline().addLast('relay', peer),
        options: CONNECTION,
        onClosed: () => this.gone(peer),
      },
      mine,
    );
    if (!conn.open()) {
      sysClose(theirs);
      throw new Error(`pub/sub relay: the master could not open its end for ${label}`);
    }
    this.peers.add(peer);
    this.counts.workers = this.peers.size;
    return theirs;
  }

  stats(): RelayStats {
    return { ...this.counts };
  }

  /** Closes every worker's connection and the loop (the workers have exited by then). */
  async close(): Promise<void> {
    for (const p of [...this.peers]) p.abort();
    const loop = this.loop;
    this.loop = undefined;
    if (loop !== undefined && !loop.isClosed) await loop.close();
  }

  /** A worker's connection closed: its subscriptions go. */
  private gone(peer: RelayPeer): void {
    this.peers.delete(peer);
    this.counts.workers = this.peers.size;
    for (const t of peer.topics) this.unsubscribe(peer, t, false);
    for (const p of peer.patterns) this.unsubscribe(peer, p, true);
    peer.topics.clear();
    peer.patterns.clear();
  }

  subscribe(peer: RelayPeer, key: string, pattern: boolean, name: Buffer): void {
    if (pattern) {
      if (peer.patterns.has(key)) return;
      peer.patterns.add(key);
      let p = this.patterns.get(key);
      if (p === undefined) {
        p = { glob: new GlobPattern(Buffer.from(name)), peers: new Set() };
        this.patterns.set(key, p);
      }
      p.peers.add(peer);
    } else {
      if (peer.topics.has(key)) return;
      peer.topics.add(key);
      let set = this.topics.get(key);
      if (set === undefined) {
        set = new Set();
        this.topics.set(key, set);
      }
      set.add(peer);
    }
  }

  unsubscribe(peer: RelayPeer, key: string, pattern: boolean): void {
    if (pattern) {
      if (!peer.patterns.delete(key)) return;
      const p = this.patterns.get(key);
      if (p?.peers.delete(peer) && p.peers.size === 0) this.patterns.delete(key);
    } else {
      if (!peer.topics.delete(key)) return;
      const set = this.topics.get(key);
      if (set?.delete(peer) && set.size === 0) this.topics.delete(key);
    }
  }
}

/** One worker's end in the master: splits its frames, routes its messages. */
class RelayPeer extends ChannelInboundHandler {
  readonly topics = new Set<string>();
  readonly patterns = new Set<string>();
  private ctx: HandlerContext | undefined;
  /** A frame cut by the end of a read: its length first (4 bytes), then the whole frame. */
  private pend: Buffer | undefined;
  private pendFill = 0;
  /** Written to during the current read: flushed at its end. */
  private dirty = false;
  private dropping = false;

  constructor(
    private readonly hub: RelayHub,
    readonly label: string,
  ) {
    super();
  }

  handlerAdded(ctx: HandlerContext): void {
    this.ctx = ctx;
  }

  abort(): void {
    this.ctx?.channel.abort('shutdown');
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    const buf = msg as Buffer;
    let at = 0;
    if (this.pend !== undefined) {
      at = this.complete(ctx, buf);
      if (at < 0) return;
    }
    const rest = this.frames(ctx, buf, at, false);
    if (rest < 0 || rest === buf.length) return;
    // A frame cut by the end of the read: its start waits in a buffer of its own.
    this.pend = Buffer.allocUnsafeSlow(4);
    this.pendFill = 0;
    this.complete(ctx, buf.subarray(rest));
  }

  /**
   * Feeds `buf` to the frame being completed: returns how much of `buf` it took (-1 after a
   * failure); once the frame is whole, it is handled.
   */
  private complete(ctx: HandlerContext, buf: Buffer): number {
    let p = this.pend as Buffer;
    let at = 0;
    if (this.pendFill < 4) {
      const n = Math.min(4 - this.pendFill, buf.length);
      buf.copy(p, this.pendFill, 0, n);
      this.pendFill += n;
      at = n;
      if (this.pendFill < 4) return at;
      const length = p.readUInt32BE(0);
      if (length < RELAY_HEAD - 4 || length > RELAY_MAX_FRAME) {
        this.fail(ctx, `a frame of ${length} bytes`);
        return -1;
      }
      // Allocated once at its full size: a large message cut into many reads is copied once.
      const full = Buffer.allocUnsafeSlow(4 + length);
      p.copy(full, 0, 0, 4);
      this.pend = p = full;
    }
    const n = Math.min(p.length - this.pendFill, buf.length - at);
    buf.copy(p, this.pendFill, at, at + n);
    this.pendFill += n;
    at += n;
    if (this.pendFill < p.length) return at;
    this.pend = undefined;
    return this.frames(ctx, p, 0, true) < 0 ? -1 : at;
  }

  /**
   * Handles the complete frames of `buf` from `at`; returns where the first incomplete one starts
   * (`buf.length` if none), or -1 after a failure. `owned`: `buf` is memory of our own (a completed
   * frame), else a view of the loop's read buffer.
   */
  private frames(ctx: HandlerContext, buf: Buffer, at: number, owned: boolean): number {
    // A view of the read buffer is overwritten by the next read: the messages to forward are
    // copied out of it once (`copy`, lazily), and every receiver gets views of that copy.
    let copy: Buffer | undefined = owned ? buf : undefined;
    let copyFrom = 0;
    const end = buf.length;
    while (end - at >= 4) {
      const length = buf.readUInt32BE(at);
      if (length < RELAY_HEAD - 4 || length > RELAY_MAX_FRAME) {
        this.fail(ctx, `a frame of ${length} bytes`);
        return -1;
      }
      const frameEnd = at + 4 + length;
      if (frameEnd > end) break;
      const op = buf[at + 4] as number;
      const nameEnd = at + RELAY_HEAD + buf.readUInt16BE(at + 5);
      if (nameEnd > frameEnd) {
        this.fail(ctx, 'a name longer than its frame');
        return -1;
      }
      const key = buf.toString('latin1', at + RELAY_HEAD, nameEnd);
      switch (op) {
        case RELAY_PUB: {
          this.hub.counts.messages++;
          if (copy === undefined) {
            // Every complete frame from here on, in one copy.
            let last = at;
            while (end - last >= 4 && last + 4 + buf.readUInt32BE(last) <= end) last += 4 + buf.readUInt32BE(last);
            copy = Buffer.allocUnsafeSlow(last - at);
            buf.copy(copy, 0, at, last);
            copyFrom = at;
          }
          this.route(key, buf.subarray(at + RELAY_HEAD, nameEnd), copy, at - copyFrom, frameEnd - at);
          break;
        }
        case RELAY_SUB:
        case RELAY_PSUB:
          this.hub.subscribe(this, key, op === RELAY_PSUB, buf.subarray(at + RELAY_HEAD, nameEnd));
          break;
        case RELAY_UNSUB:
        case RELAY_PUNSUB:
          this.hub.unsubscribe(this, key, op === RELAY_PUNSUB);
          break;
        default:
          this.fail(ctx, `an unknown op ${op}`);
          return -1;
      }
      at = frameEnd;
    }
    return at;
  }

  /** Writes the frame `copy[offset, offset + length)` to every other worker subscribed to `key` or a pattern matching `name`. */
  private route(key: string, name: Buffer, copy: Buffer, offset: number, length: number): void {
    const hub = this.hub;
    const view = outboundView(copy.buffer, copy.byteOffset + offset, length);
    const exact = hub.topics.get(key);
    if (exact !== undefined) for (const p of exact) if (p !== this) p.send(view);
    if (hub.patterns.size > 0) {
      for (const { glob, peers } of hub.patterns.values()) {
        if (!glob.matches(name)) continue;
        // A worker that has the topic too, or several matching patterns, gets the message once:
        // it delivers to all its matching subscriptions itself.
        for (const p of peers) if (p !== this && !p.sentNow(view)) p.send(view);
      }
    }
  }

  /** The last frame written to this worker (to send one message once, whatever matched it). */
  private last: Buffer | undefined;

  sentNow(view: Buffer): boolean {
    return this.last === view;
  }

  send(view: Buffer): void {
    const ctx = this.ctx;
    if (ctx === undefined) return;
    this.last = view;
    const hub = this.hub;
    if (ctx.channel.pendingWriteBytes > hub.maxPendingBytes) {
      hub.counts.dropped++;
      if (!this.dropping) {
        this.dropping = true;
        hub.logger.warn(
          `pub/sub relay: ${this.label} is not reading its messages (${ctx.channel.pendingWriteBytes} bytes waiting): dropping its messages until it catches up`,
        );
      }
      return;
    }
    this.dropping = false;
    hub.counts.forwarded++;
    ctx.write(view);
    if (!this.dirty) {
      this.dirty = true;
      flushing.push(this);
      if (flushing.length === 1) queueMicrotask(flushAll);
    }
  }

  flushNow(): void {
    this.dirty = false;
    this.last = undefined;
    this.ctx?.flush();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.pend = undefined;
    ctx.fireInactive(reason);
  }

  private fail(ctx: HandlerContext, what: string): void {
    this.hub.counts.protocolErrors++;
    this.hub.logger.error(`pub/sub relay: ${this.label} sent ${what}: closing its relay`);
    this.pend = undefined;
    ctx.channel.abort('protocol-error');
  }
}

/**
 * Receivers written to in this turn: flushed once when it ends (a microtask), so that the messages
 * of one read — and of every read of one batch of events — leave in one write per receiver.
 */
const flushing: RelayPeer[] = [];

function flushAll(): void {
  for (let i = 0; i < flushing.length; i++) (flushing[i] as RelayPeer).flushNow();
  flushing.length = 0;
}
