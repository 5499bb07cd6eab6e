/**
 * Broadcast within a worker (Netty's `ChannelGroup`, uWebSockets' topics): WebSockets join and
 * leave a group; `publish` encodes the frame once and writes the same bytes to every member.
 *
 * ```ts
 * const room = new WebSocketGroup();
 * websocket((ws) => {
 *   room.join(ws);
 *   ws.onMessage = (data, isBinary) => room.publish(data, isBinary, ws); // to everyone else
 * });
 * ```
 *
 * - **Encode once, write many.** The frame lives in memory of its own (encode.ts `sharedFrame`),
 *   so a member that has to wait keeps a reference to the shared bytes, not a copy.
 *   permessage-deflate: members without server context takeover (the default) share one
 *   compressed frame per window size, compressed once; a member with context takeover gets the
 *   uncompressed frame (RFC 7692 lets any message go uncompressed), since its compressor's state
 *   is its own.
 * - **A slow member does not hold up the others.** Each write goes to its member's queue; a member
 *   over its high watermark meets its connection's backpressure policy (`'drop'`: skipped,
 *   `'close'`: closed, `'wait'`: queued up to `maxBufferedAmount`) while the others go on.
 * - **Members leave on close**, by themselves: a closed WebSocket is removed from its groups.
 *
 * Groups are per worker: a message published in one worker reaches the members connected to it.
 * Workers share nothing — see docs/websocket.md for reaching every worker.
 */
import { Buffer } from 'node:buffer';
import { sharedFrame } from './encode.js';
import { FIN, OP_BINARY, OP_TEXT, RSV1 } from './frame.js';
import type { GroupMembership, WebSocket } from './websocket.js';

/** What `WebSocketGroup.publish()` did: for how many members the message was queued, and how many were passed over. */
export interface PublishResult {
  /** Members the message was queued for. */
  readonly sent: number;
  /** Members it was not queued for (backpressure policy, closing). */
  readonly skipped: number;
}

/**
 * A set of WebSockets to broadcast to, within one worker (Netty's `ChannelGroup`, uWebSockets'
 * topics): `publish()` encodes the frame once — compressed once per window size with
 * permessage-deflate — and queues the same bytes for every member.
 *
 * Contract: a slow member does not hold up the others — each member's connection applies its own
 * backpressure policy (`'drop'`: skipped, `'close'`: closed, `'wait'`: queued up to
 * `maxBufferedAmount`), and `publish` says how many were skipped. A closed WebSocket leaves its
 * groups by itself. Groups are per worker process: members connected to other workers do not
 * hear a publish here (docs/websocket.md, "Groups", for reaching every worker).
 *
 * @example
 * ```ts
 * import { Server, WebSocketGroup, websocket } from 'multireactor';
 *
 * const rooms = new Map<string, WebSocketGroup>();
 * await Server.listen({
 *   port: 9001,
 *   pipeline: websocket((ws, req) => {
 *     const name = req.path; // one room per path
 *     let room = rooms.get(name);
 *     if (room === undefined) rooms.set(name, (room = new WebSocketGroup()));
 *     room.join(ws);
 *     ws.onMessage = (data, isBinary) => {
 *       const { skipped } = room.publish(data, isBinary, ws); // everyone but the sender
 *       if (skipped > 0) console.log(`${skipped} slow members passed over`);
 *     };
 *   }),
 * });
 * ```
 */
export class WebSocketGroup implements GroupMembership {
  private readonly members = new Set<WebSocket>();

  /** Members now. */
  get size(): number {
    return this.members.size;
  }

  has(ws: WebSocket): boolean {
    return this.members.has(ws);
  }

  /** Adds a member (a closed WebSocket is not added). Returns false if it was one already or is closed. */
  join(ws: WebSocket): boolean {
    if (this.members.has(ws) || ws.readyState === 'closed') return false;
    this.members.add(ws);
    const g = ws.groups;
    if (g === undefined) ws.groups = this;
    else if (Array.isArray(g)) g.push(this);
    else ws.groups = [g, this];
    return true;
  }

  /** Removes a member. Returns false if it was not one. */
  leave(ws: WebSocket): boolean {
    if (!this.members.delete(ws)) return false;
    const g = ws.groups;
    if (g === this) ws.groups = undefined;
    else if (Array.isArray(g)) {
      const i = g.indexOf(this);
      if (i >= 0) g.splice(i, 1);
      if (g.length === 1) ws.groups = g[0];
    }
    if (this.members.size === 0) this.emptied();
    return true;
  }

  /** @internal A member closed. */
  removeOnClose(ws: WebSocket): void {
    if (this.members.delete(ws) && this.members.size === 0) this.emptied();
  }

  /**
   * Called when the last member left, by `leave` or by closing. A hook for subclasses: a pub/sub
   * topic unsubscribes here (src/pubsub/). Does nothing by default.
   */
  protected emptied(): void {}

  /** Iterates over the members. */
  [Symbol.iterator](): IterableIterator<WebSocket> {
    return this.members.values();
  }

  /**
   * Sends one message to every member (but `except`, typically the sender): text for a string,
   * binary for bytes unless `isBinary` says otherwise.
   */
  publish(data: string | Uint8Array, isBinary: boolean = typeof data !== 'string', except?: WebSocket): PublishResult {
    let sent = 0;
    let skipped = 0;
    const b0 = FIN | (isBinary ? OP_BINARY : OP_TEXT);
    let plain: Buffer | undefined;
    let bytes: Uint8Array | undefined;
    let compressed: Map<number, Buffer> | undefined;
    for (const ws of this.members) {
      if (ws === except) continue;
      if (ws.config.client) {
        // A client's frames are masked with a key of their own: nothing to share.
        if (ws.send(data, isBinary) || ws.readyState === 'open') sent++;
        else skipped++;
        continue;
      }
      let frame: Buffer | undefined;
      const pmd = ws.sharedCompression(data.length);
      if (pmd !== undefined) {
        compressed ??= new Map();
        frame = compressed.get(pmd.sendWindowBits);
        if (frame === undefined) {
          bytes ??= typeof data === 'string' ? Buffer.from(data) : data;
          frame = sharedFrame(b0 | RSV1, ws.compressShared(bytes));
          compressed.set(pmd.sendWindowBits, frame);
        }
      } else frame = plain ??= sharedFrame(b0, data);
      if (ws.sendFrame(frame, data.length)) sent++;
      else skipped++;
    }
    return { sent, skipped };
  }
}
