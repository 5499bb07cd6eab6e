/**
 * The WebSocket stage (RFC 6455 §5–§7): one object per connection that is both the pipeline
 * handler — frame decoder, message aggregator, encoder, closing handshake — and the application's
 * `WebSocket` (`send`, `close`, `ping`, `onMessage`, `onClose` …). One object rather than a
 * handler plus a facade: an idle connection's memory is what it holds, and this holds little —
 * numbers and a few references; buffers, timers and zlib contexts are made on first use.
 *
 * Reading. Bytes are parsed as they arrive, whatever the cut: a header split across reads waits in
 * 14 bytes of its own; payload bytes are unmasked in place in one copy of the read (made when the
 * first payload byte of the read needs keeping — or no copy at all: 16 KiB and more of the loop's
 * read buffer is claimed, see pipeline/read-loan.ts) and a message is a view of that copy, or the
 * join of its pieces when it spans reads or frames. Text is validated as it arrives (utf8.ts), so
 * an invalid byte fails the connection (1007) in the read that brings it, mid-frame or
 * mid-fragment. Control frames may come between the fragments of a message (§5.4): a ping is
 * answered in the stage, a pong reported, a close answered.
 *
 * Failing (§7.1.7): a protocol violation (1002), invalid UTF-8 (1007) or a size limit (1009)
 * sends a close frame with that code and closes the connection — gracefully: what is queued is
 * flushed, then FIN, then the rest of the peer's input is read and dropped until its FIN (so our
 * close frame is not destroyed by a reset). Nothing read after that is processed.
 *
 * Closing (§7.1.2–§7.1.4): the side that receives a close frame answers with one; the server then
 * closes the TCP connection (§7.1.1: the server closes first, the client waits, `closeTimeout`).
 * `onClose(code, reason)` fires once, when the connection is gone: the peer's code (1005 when its
 * frame had none), the code we failed with, or 1006 with the connection's close reason
 * (`heartbeat`, `timeout`, `reset`, `idle-timeout`, `peer-closed` …) when no close frame came.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { bufferView } from '../common/buffer-view.js';
import type { Timeout } from '../common/timing-wheel.js';
import type { Channel } from '../pipeline/channel.js';
import { DRAINING } from '../pipeline/events.js';
import type { ChannelHandler, CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { claim, isLent } from '../pipeline/read-loan.js';
import { type DeflateParams, PerMessageDeflate } from './deflate.js';
import { recycleSlabs, writeFrame } from './encode.js';
import {
  applyMask,
  CLOSE_ABNORMAL,
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL_ERROR,
  CLOSE_INVALID_PAYLOAD,
  CLOSE_NO_STATUS,
  CLOSE_POLICY,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TOO_BIG,
  FIN,
  isValidCloseCode,
  MAX_CONTROL_PAYLOAD,
  maskKey,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  RSV1,
} from './frame.js';
import type { WebSocketConfig } from './options.js';
import { UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from './utf8.js';
import { InvalidDeflateDataError, OutputTooLargeError } from './zlib-engine.js';

// Parser phases.
const P_HEADER = 0;
const P_PAYLOAD = 1;
/** After a close frame or a failure: input is dropped. */
const P_DONE = 2;

// Flags.
const CLOSE_SENT = 1;
const CLOSE_RECEIVED = 2;
/** We sent the first close frame (the closing handshake is ours). */
const CLOSE_INITIATED = 4;
/** We failed the connection (the code we sent is the one reported). */
const FAILED = 8;
const CLOSED = 16;
/** Inside our onRead (or `cork`): writes are flushed when it ends, not one by one. */
const BATCHING = 32;
/** Between this connection's first read of a burst and its read-complete (see `bursts`). */
const IN_BURST = 64;
/** Written to during another connection's burst: in `deferred`, flushed when the bursts end. */
const DEFERRED = 128;

// The frame being read (`fBits`).
const F_OP = 0x0f;
const F_FIN = 0x10;
const F_MASKED = 0x20;
const F_PHASE_SHIFT = 6;
// The message being read (`mBits`): its opcode, and whether it is compressed.
const M_OP = 0x0f;
const M_DEFLATED = 0x10;
/**
 * `parts` is the whole message's memory, reserved when its single frame began in a read that did
 * not hold all of it, and filled as the rest arrives (`mSize` bytes so far): see `payload`.
 */
const M_ACCUM = 0x20;

/**
 * What a WebSocket needs only now and then — callbacks most applications leave unset, a header or
 * control frame cut by a read, the closing handshake, groups, backpressure counts — made on first
 * use: an idle connection that uses none of it does not carry its fields.
 */
class Rare {
  onDrain: ((this: WebSocket) => void) | undefined = undefined;
  onPing: ControlCallback | undefined = undefined;
  onPong: ControlCallback | undefined = undefined;
  protocol = '';
  /** A header cut by the end of a read, its length in byte 14. */
  hBuf: Buffer | undefined = undefined;
  /** A control frame's payload being collected (how much: its length minus `fLeft`). */
  ctrl: Buffer | undefined = undefined;
  /** The code and reason to report when closing; the close timer. */
  code = CLOSE_ABNORMAL;
  reason = '';
  timer: Timeout | undefined = undefined;
  groups: GroupMembership | GroupMembership[] | undefined = undefined;
  dropped = 0;
  /** `'wait'`: bytes queued since the connection went above its high watermark. */
  overflow = 0;
}

/**
 * This read's copy of its payload bytes (see `own`) and where the read's byte 0 is in it: valid
 * during one `read` call only, so one per thread rather than one per connection (saved and
 * restored around a read, should an application feed another connection from inside one).
 */
let readCopy: Buffer | undefined;
let readCopyBase = 0;

/**
 * Sends to a WebSocket made while some connection is handling a read burst — a broadcast from the
 * publisher's message, a reply to another peer — are flushed when the bursts in progress end, not
 * one by one: several messages published in one burst leave in one write per member (uWebSockets
 * batches its publishes the same way). Sends made outside any burst (timers, promises) are
 * flushed at once.
 */
let bursts = 0;
const deferred: WebSocket[] = [];

function burstEnded(recycle: boolean): void {
  if (--bursts > 0) return;
  // A flush may run application code (onDrain) that sends again: outside any burst now, at once.
  for (let i = 0; i < deferred.length; i++) (deferred[i] as WebSocket).flushDeferred();
  deferred.length = 0;
  // Every frame of the bursts is flushed now (the reading connection flushed before it ended
  // its burst, the others just now; sends outside bursts flush at once): encode.ts may rewrite
  // their memory. Not after a burst ended by a close or a removal (`recycle` false): the
  // connection may not have flushed then.
  if (recycle) recycleSlabs();
}

/**
 * @internal Opens a burst that is no WebSocket's read: a relay delivering the messages of one read
 * of its own (src/pubsub/) — sends made until the matching `endSendBurst` leave in one write per
 * member. Every call must be paired.
 */
export function beginSendBurst(): void {
  bursts++;
}

/** @internal Closes a burst opened by `beginSendBurst`: the deferred sends are flushed when none is left open. */
export function endSendBurst(): void {
  burstEnded(true);
}

/**
 * Read copies up to this size go into a shared block, bump-allocated and never reused (a full one
 * is replaced): one allocation per 64 KiB of reads instead of one per read (`Buffer.allocUnsafe`
 * of 4 KiB costs ~1 µs here, beyond Node's own 4 KiB pool). A message kept by the application
 * keeps its block alive, as a pooled Buffer keeps Node's: copy small messages you keep for long.
 */
const COPY_BLOCK_SIZE = 64 * 1024;
const COPY_BLOCK_MAX = 8 * 1024;
let copyBlock: Buffer | undefined;
let copyBlockUsed = COPY_BLOCK_SIZE;

/** From this many bytes of a read left, claim the loop's read buffer instead of copying them. */
const CLAIM_THRESHOLD = 16 * 1024;
/**
 * A single-frame message up to this size that a read cuts is collected in memory reserved for
 * the whole frame (its header announced the length): each byte copied once, where it stays —
 * instead of a copy of each read's part and a join of the parts at the end. Bounded so that a
 * header announcing a large frame does not reserve memory the peer never sends: beyond it, parts
 * and a join (a peer can hold at most this much reserved per connection without sending it).
 */
const ACCUM_MAX = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/** The state a WebSocket is in, as the browser API names them. */
export type WebSocketState = 'open' | 'closing' | 'closed';

/** Callbacks receive the WebSocket as `this` (so one function can serve every connection). */
export type MessageCallback = (this: WebSocket, data: Buffer, isBinary: boolean) => void;
/**
 * `onClose(code, reason)`: called once, when the connection is gone — with the peer's code (1005
 * when its close frame had none), the code we failed the connection with, or 1006 and the
 * connection's close reason (`heartbeat`, `timeout`, `reset`, `idle-timeout`, …) when no close
 * frame came.
 */
export type CloseCallback = (this: WebSocket, code: number, reason: string) => void;
/** `onPing` / `onPong`: the payload of a control frame (at most 125 bytes; a ping is already answered). */
export type ControlCallback = (this: WebSocket, data: Buffer) => void;

/** Groups a WebSocket is in (group.ts keeps this up to date). */
export interface GroupMembership {
  /** @internal */
  removeOnClose(ws: WebSocket): void;
}

/**
 * One WebSocket connection (RFC 6455), server or client side: `send`, `close`, `ping`, the
 * callbacks `onMessage`, `onClose`, `onDrain`, `onPing`, `onPong`, and `data` for what the
 * application keeps with it. It is also the connection's pipeline stage (frames, fragments, the
 * closing handshake), which is why an idle WebSocket costs little memory.
 *
 * Contract:
 * - `onMessage(data, isBinary)` gets each whole message; text is UTF-8 already validated (an
 *   invalid byte fails the connection with 1007 in the read that brings it). With `copyMessages`
 *   (the default) `data` is the application's to keep; with `copyMessages: false` it is lent for
 *   the call only.
 * - `send()` returns false when the message was not queued below the high watermark — dropped,
 *   refused, or queued above it under `backpressure: 'wait'` (then wait for `onDrain`).
 * - A protocol violation (1002), invalid UTF-8 (1007) or a size limit (1009) closes the
 *   connection with that code; a server stop or reload closes it with 1001. `onClose` fires once.
 * - Callbacks run on the loop, with the WebSocket as `this`; a callback that throws is logged and
 *   fails the connection (1011), never the worker.
 *
 * @example
 * ```ts
 * import { Server, type WebSocket, websocket } from 'multireactor';
 *
 * function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
 *   if (isBinary) this.close(1003, 'text only');
 *   else if (!this.send(data.toString().toUpperCase())) this.onDrain = () => console.log('drained');
 * }
 * await Server.listen({
 *   port: 9001,
 *   pipeline: websocket((ws) => {
 *     ws.onMessage = onMessage; // one function for every connection: `this` is the WebSocket
 *     ws.onClose = (code, reason) => console.log(code, reason, ws.channel.remoteAddress);
 *   }),
 * });
 * ```
 */
export class WebSocket {
  /** A message arrived (text: UTF-8 bytes, already validated; `data.toString()` decodes it). */
  onMessage: MessageCallback | undefined = undefined;
  /** The connection is closed (fires once). */
  onClose: CloseCallback | undefined = undefined;
  /** Anything the application wants to keep with the connection (a user, a room). */
  data: unknown = undefined;

  private ctx: HandlerContext | undefined = undefined;
  private flags = 0;
  private phase = P_HEADER;
  /** The frame being read: opcode | FIN | masked | mask phase (see F_*). */
  private fBits = 0;
  private fKey = 0;
  /** Its payload bytes still to come. */
  private fLeft = 0;
  /** The message being read: opcode | compressed (see M_*). */
  private mBits = 0;
  private mSize = 0;
  private utf8 = UTF8_ACCEPT;
  /** Its pieces so far: one, or several to join. */
  private parts: Buffer | Buffer[] | undefined = undefined;
  private pmd: PerMessageDeflate | undefined;
  /** The rest of the state, made on first use (see `Rare`). */
  private x: Rare | undefined = undefined;

  constructor(
    /** @internal */ readonly config: WebSocketConfig,
    protocol = '',
    deflate?: DeflateParams,
  ) {
    this.pmd = deflate === undefined ? undefined : new PerMessageDeflate(deflate);
    if (protocol !== '') this.rare().protocol = protocol;
  }

  /** The outbound queue drained below the low watermark after `send` returned false. */
  get onDrain(): ((this: WebSocket) => void) | undefined {
    return this.x?.onDrain;
  }
  set onDrain(fn: ((this: WebSocket) => void) | undefined) {
    this.rare().onDrain = fn;
  }

  /** The peer's ping (already answered with a pong). */
  get onPing(): ControlCallback | undefined {
    return this.x?.onPing;
  }
  set onPing(fn: ControlCallback | undefined) {
    this.rare().onPing = fn;
  }

  /** The peer's pong. */
  get onPong(): ControlCallback | undefined {
    return this.x?.onPong;
  }
  set onPong(fn: ControlCallback | undefined) {
    this.rare().onPong = fn;
  }

  /** The subprotocol agreed in the handshake ('' if none). */
  get protocol(): string {
    return this.x?.protocol ?? '';
  }

  /** Messages not sent because of the backpressure policy `'drop'`. */
  get droppedMessages(): number {
    return this.x?.dropped ?? 0;
  }

  /** @internal groups this connection is in (group.ts). */
  get groups(): GroupMembership | GroupMembership[] | undefined {
    return this.x?.groups;
  }
  set groups(g: GroupMembership | GroupMembership[] | undefined) {
    if (g !== undefined || this.x !== undefined) this.rare().groups = g;
  }

  private rare(): Rare {
    let x = this.x;
    if (x === undefined) {
      x = new Rare();
      this.x = x;
    }
    return x;
  }

  // ---- the application's API ----

  /** The connection under this WebSocket (addresses, socket options, counters). */
  get channel(): Channel {
    return (this.ctx as HandlerContext).channel;
  }

  /** The extensions agreed in the handshake, as the response header listed them ('' if none). */
  get extensions(): string {
    return this.pmd?.params.response ?? '';
  }

  get readyState(): WebSocketState {
    if ((this.flags & CLOSED) !== 0) return 'closed';
    return (this.flags & CLOSE_SENT) !== 0 ? 'closing' : 'open';
  }

  /** Bytes queued for the peer and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.ctx === undefined || (this.flags & CLOSED) !== 0 ? 0 : this.ctx.channel.pendingWriteBytes;
  }

  /** False while more than the connection's high watermark is queued (until `onDrain`). */
  get isWritable(): boolean {
    return (this.flags & (CLOSE_SENT | CLOSED)) === 0 && this.ctx !== undefined && this.ctx.channel.isWritable;
  }

  /**
   * Sends a message: text for a string, binary for bytes (`isBinary` overrides: false sends bytes
   * that are UTF-8 as text). Returns true when it was queued and the connection is still below its
   * high watermark; false when it was dropped or closed the connection (backpressure policy), or
   * queued above the watermark (`'wait'`: hold further sends until `onDrain`), or the WebSocket is
   * closing. A Buffer larger than 16 KiB is sent without a copy: do not change it until sent.
   */
  send(data: string | Uint8Array, isBinary: boolean = typeof data !== 'string'): boolean {
    const ctx = this.ctx;
    if (ctx === undefined || (this.flags & (CLOSE_SENT | CLOSED)) !== 0) return false;
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new TypeError('WebSocket.send: data must be a string, a Buffer or a Uint8Array');
    }
    const ch = ctx.channel;
    if (!ch.isWritable && !this.mayQueue(ch, data.length)) return false;
    let b0 = FIN | (isBinary ? OP_BINARY : OP_TEXT);
    let payload: string | Uint8Array = data;
    const pmd = this.pmd;
    if (pmd !== undefined && data.length >= pmd.threshold) {
      payload = pmd.compress(typeof data === 'string' ? Buffer.from(data) : data);
      b0 |= RSV1;
    }
    writeFrame(ctx, b0, payload, this.config.client, ctx.writesToReleasingTransport);
    if ((this.flags & BATCHING) === 0) this.flushSoon(ctx);
    return ch.isWritable;
  }

  /**
   * @internal Writes a frame encoded for many connections (group.ts); `length` is the message's
   * size for the backpressure policy. Returns whether it was queued.
   */
  sendFrame(frame: Buffer, length: number): boolean {
    const ctx = this.ctx;
    if (ctx === undefined || (this.flags & (CLOSE_SENT | CLOSED)) !== 0) return false;
    const ch = ctx.channel;
    if (!ch.isWritable && !this.mayQueue(ch, length)) return false;
    ctx.write(frame);
    if ((this.flags & BATCHING) === 0) this.flushSoon(ctx);
    return true;
  }

  /**
   * @internal For a group: the terms under which a message of `length` bytes may be sent as a
   * frame compressed once for several connections (compressed, and no context kept by our side),
   * or undefined when it goes uncompressed to this connection.
   */
  sharedCompression(length: number): DeflateParams | undefined {
    const pmd = this.pmd;
    if (pmd === undefined || length < pmd.threshold || !pmd.params.sendNoContext || this.config.client)
      return undefined;
    return pmd.params;
  }

  /** @internal Compresses a message with the shared compressor of this connection's terms. */
  compressShared(data: Uint8Array): Buffer {
    return (this.pmd as PerMessageDeflate).compress(data);
  }

  /** Sends a ping (at most 125 bytes of payload); the peer's pong comes to `onPong`. */
  ping(data: string | Uint8Array = EMPTY): void {
    this.control(OP_PING, data);
  }

  /** Sends an unsolicited pong (a one-way heartbeat, §5.5.3). */
  pong(data: string | Uint8Array = EMPTY): void {
    this.control(OP_PONG, data);
  }

  /**
   * Starts the closing handshake: sends a close frame (`code` 1000 or 3000–4999, or any valid
   * code; none → an empty close frame) and closes the connection when the peer answers, or after
   * `closeTimeout`. A reason is at most 123 bytes of UTF-8.
   */
  close(code?: number, reason = ''): void {
    if (code !== undefined && !isValidCloseCode(code)) throw new RangeError(`invalid close code: ${code}`);
    if (Buffer.byteLength(reason) > MAX_CONTROL_PAYLOAD - 2) throw new RangeError('close reason longer than 123 bytes');
    if (code === undefined && reason !== '') throw new TypeError('a close reason needs a close code');
    if (this.ctx === undefined || (this.flags & (CLOSE_SENT | CLOSED)) !== 0) return;
    this.flags |= CLOSE_INITIATED;
    this.sendClose(code, reason);
    this.armCloseTimer();
  }

  /** Closes the connection now, without the closing handshake (reported as 1006). */
  terminate(): void {
    if (this.ctx !== undefined && (this.flags & CLOSED) === 0) this.ctx.channel.abort('local');
  }

  /**
   * Runs `fn` and flushes once after it: sends made in it leave in one write (as those made while
   * a message is being handled always do).
   */
  cork(fn: () => void): void {
    if ((this.flags & BATCHING) !== 0) {
      fn();
      return;
    }
    this.flags |= BATCHING;
    try {
      fn();
    } finally {
      this.flags &= ~BATCHING;
      if (this.ctx !== undefined && (this.flags & CLOSED) === 0) this.flushSoon(this.ctx);
    }
  }

  // ---- pipeline events (through WebSocketHandler: the WebSocket's own `close` is not the pipeline's) ----

  /** @internal */
  attached(ctx: HandlerContext): void {
    this.ctx = ctx;
  }

  /** @internal */
  detached(): void {
    this.release();
    this.endBurst(false);
  }

  /** @internal */
  read(ctx: HandlerContext, msg: unknown): void {
    if (!(msg instanceof Uint8Array)) {
      ctx.fireRead(msg);
      return;
    }
    if (this.phase === P_DONE) return;
    if ((this.flags & IN_BURST) === 0) {
      this.flags |= IN_BURST;
      bursts++;
    }
    this.flags |= BATCHING;
    const outerCopy = readCopy;
    const outerBase = readCopyBase;
    readCopy = undefined;
    const e = msg.length;
    let p = 0;
    try {
      while (p < e) {
        if (this.phase === P_HEADER) p = this.header(msg, p, e);
        else if (this.phase === P_PAYLOAD) p = this.payload(msg, p, e);
        else break;
      }
    } finally {
      readCopy = outerCopy;
      readCopyBase = outerBase;
    }
  }

  /** @internal */
  readComplete(ctx: HandlerContext): void {
    this.flags &= ~BATCHING;
    ctx.fireReadComplete();
    // What this burst wrote leaves now (the connection would flush it after this event anyway),
    // before the burst ends and the encoder may rewrite its slabs (`burstEnded`).
    if ((this.flags & CLOSED) === 0) ctx.flush();
    this.endBurst(true);
  }

  /** @internal Flushes a send deferred to the end of the read bursts. */
  flushDeferred(): void {
    this.flags &= ~DEFERRED;
    if ((this.flags & CLOSED) === 0) this.ctx?.flush();
  }

  private flushSoon(ctx: HandlerContext): void {
    if (bursts === 0) ctx.flush();
    else if ((this.flags & DEFERRED) === 0) {
      this.flags |= DEFERRED;
      deferred.push(this);
    }
  }

  private endBurst(recycle: boolean): void {
    if ((this.flags & IN_BURST) === 0) return;
    this.flags &= ~IN_BURST;
    burstEnded(recycle);
  }

  /** @internal */
  writabilityChanged(ctx: HandlerContext, writable: boolean): void {
    const x = this.x;
    if (writable && x !== undefined) {
      x.overflow = 0;
      if (x.onDrain !== undefined && (this.flags & (CLOSE_SENT | CLOSED)) === 0) {
        try {
          x.onDrain.call(this);
        } catch (err) {
          this.appError(err);
        }
      }
    }
    ctx.fireWritabilityChanged(writable);
  }

  /** @internal */
  userEvent(ctx: HandlerContext, event: unknown): void {
    // The server is stopping or reloading: say so (1001) and let the peer answer.
    if (event === DRAINING) this.close(CLOSE_GOING_AWAY, 'server going away');
    else ctx.fireUserEvent(event);
  }

  /** @internal */
  inactive(ctx: HandlerContext, reason: CloseReason): void {
    this.flags |= CLOSED;
    this.release();
    this.endBurst(false);
    const x = this.x;
    const groups = x?.groups;
    if (x !== undefined && groups !== undefined) {
      x.groups = undefined;
      if (Array.isArray(groups)) for (const g of groups) g.removeOnClose(this);
      else groups.removeOnClose(this);
    }
    let code: number = CLOSE_ABNORMAL;
    let text: string = reason;
    if (x !== undefined && (this.flags & (CLOSE_RECEIVED | FAILED)) !== 0) {
      code = x.code;
      text = x.reason;
    }
    const cb = this.onClose;
    if (cb !== undefined) {
      try {
        cb.call(this, code, text);
      } catch (err) {
        ctx.fireError(err);
      }
    }
    ctx.fireInactive(reason);
  }

  /** @internal Strings and bytes written through the pipeline by stages after this one become messages. */
  outbound(ctx: HandlerContext, msg: unknown): void {
    if (typeof msg === 'string' || msg instanceof Uint8Array) {
      if ((this.flags & (CLOSE_SENT | CLOSED)) !== 0) return;
      const ch = ctx.channel;
      if (!ch.isWritable && !this.mayQueue(ch, msg.length)) return;
      writeFrame(ctx, FIN | (typeof msg === 'string' ? OP_TEXT : OP_BINARY), msg, this.config.client);
    } else ctx.write(msg);
  }

  // ---- reading ----

  /** Reads (the rest of) a frame header from `buf[p, e)`; returns where reading goes on. */
  private header(buf: Uint8Array, p: number, e: number): number {
    let hb = this.x?.hBuf;
    if ((hb === undefined || hb[14] === 0) && e - p >= 2) {
      const need = headerSize(buf[p + 1] as number);
      if (e - p >= need) {
        this.parseHeader(buf, p);
        return p + need;
      }
    }
    // A header cut by the end of the read: gather it (at most 14 bytes; byte 14 counts them).
    if (hb === undefined) {
      hb = Buffer.allocUnsafe(15);
      hb[14] = 0;
      this.rare().hBuf = hb;
    }
    let have = hb[14] as number;
    while (p < e) {
      const need = have < 2 ? 2 : headerSize(hb[1] as number);
      if (have === need) break;
      const n = Math.min(need - have, e - p);
      for (let i = 0; i < n; i++) hb[have++] = buf[p++] as number;
    }
    hb[14] = have;
    if (have < 2 || have < headerSize(hb[1] as number)) return e;
    hb[14] = 0;
    this.parseHeader(hb, 0);
    return p;
  }

  /** Returns false when the header failed the connection. */
  private parseHeader(src: Uint8Array, at: number): boolean {
    const b0 = src[at] as number;
    const b1 = src[at + 1] as number;
    const op = b0 & 0x0f;
    const fin = (b0 & FIN) !== 0;
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let i = at + 2;
    if (len === 126) {
      len = ((src[i] as number) << 8) | (src[i + 1] as number);
      i += 2;
      // §5.2: "the minimal number of bytes MUST be used to encode the length".
      if (len < 126) return this.fail(CLOSE_PROTOCOL_ERROR, 'length not minimally encoded');
    } else if (len === 127) {
      const hi =
        (((src[i] as number) << 24) |
          ((src[i + 1] as number) << 16) |
          ((src[i + 2] as number) << 8) |
          (src[i + 3] as number)) >>>
        0;
      const lo =
        (((src[i + 4] as number) << 24) |
          ((src[i + 5] as number) << 16) |
          ((src[i + 6] as number) << 8) |
          (src[i + 7] as number)) >>>
        0;
      i += 8;
      // §5.2: "the most significant bit MUST be 0".
      if (hi >= 0x80000000) return this.fail(CLOSE_PROTOCOL_ERROR, '64-bit length with the top bit set');
      len = hi * 0x100000000 + lo;
      if (len < 0x10000) return this.fail(CLOSE_PROTOCOL_ERROR, 'length not minimally encoded');
    }
    // §5.1: clients mask every frame, servers none.
    if (masked !== !this.config.client) {
      return this.fail(
        CLOSE_PROTOCOL_ERROR,
        masked ? 'masked frame from the server' : 'unmasked frame from the client',
      );
    }
    if (masked) this.fKey = maskKey(src, i);
    if (op >= 8) {
      if (op > OP_PONG) return this.fail(CLOSE_PROTOCOL_ERROR, `reserved opcode ${op}`);
      // §5.5: control frames are never fragmented and carry at most 125 bytes; RSV bits need an
      // extension that defines them, and permessage-deflate defines none for control frames.
      if (!fin) return this.fail(CLOSE_PROTOCOL_ERROR, 'fragmented control frame');
      if (len > MAX_CONTROL_PAYLOAD) return this.fail(CLOSE_PROTOCOL_ERROR, 'control frame longer than 125 bytes');
      if ((b0 & 0x70) !== 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'RSV bits set on a control frame');
      this.rare().ctrl = len === 0 ? EMPTY : Buffer.allocUnsafe(len);
    } else {
      if (op > OP_BINARY) return this.fail(CLOSE_PROTOCOL_ERROR, `reserved opcode ${op}`);
      if ((b0 & 0x30) !== 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'RSV2/RSV3 set without an extension');
      if (op === OP_CONTINUATION) {
        if (this.mBits === 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'continuation frame without a message');
        // RFC 7692 §6.1: RSV1 marks the first frame of a compressed message only.
        if ((b0 & RSV1) !== 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'RSV1 set on a continuation frame');
      } else {
        if (this.mBits !== 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'new message inside a fragmented one');
        const deflated = (b0 & RSV1) !== 0;
        if (deflated && this.pmd === undefined) return this.fail(CLOSE_PROTOCOL_ERROR, 'RSV1 set without an extension');
        this.mBits = deflated ? op | M_DEFLATED : op;
        this.mSize = 0;
        this.utf8 = UTF8_ACCEPT;
      }
      if (len > this.config.maxPayload) return this.fail(CLOSE_TOO_BIG, 'frame too large');
      // Compressed bytes are bounded by the same limit as the message they inflate to.
      if (this.mSize + len > this.config.maxMessageSize) return this.fail(CLOSE_TOO_BIG, 'message too large');
    }
    this.fBits = op | (fin ? F_FIN : 0) | (masked ? F_MASKED : 0);
    this.fLeft = len;
    this.phase = P_PAYLOAD;
    if (len === 0) this.frameEnd();
    return true;
  }

  /** Reads payload bytes of the current frame from `buf[p, e)`. */
  private payload(buf: Uint8Array, p: number, e: number): number {
    const n = Math.min(this.fLeft, e - p);
    const bits = this.fBits;
    const phase = bits >>> F_PHASE_SHIFT;
    const masked = (bits & F_MASKED) !== 0;
    if ((bits & F_OP) >= 8) {
      const c = (this.x as Rare).ctrl as Buffer;
      const at = c.length - this.fLeft;
      c.set(n === buf.length ? buf : buf.subarray(p, p + n), at);
      if (masked) applyMask(c, at, at + n, this.fKey, phase);
    } else {
      const mBits = this.mBits;
      const parts = this.parts;
      let mem: Buffer;
      let s: number;
      let piece = false;
      if ((mBits & M_ACCUM) !== 0) {
        // The rest of a frame whose memory is reserved (below).
        mem = parts as Buffer;
        s = this.mSize;
        mem.set(n === buf.length ? buf : buf.subarray(p, p + n), s);
      } else if (
        n < this.fLeft &&
        this.fLeft <= ACCUM_MAX &&
        (bits & F_FIN) !== 0 &&
        parts === undefined &&
        this.mSize === 0
      ) {
        // The first bytes of a single-frame message that this read cuts: reserve its memory.
        mem = reserve(this.fLeft);
        s = 0;
        mem.set(buf.subarray(p, p + n), 0);
        this.parts = mem;
        this.mBits = mBits | M_ACCUM;
      } else {
        // A whole message in this read, with `copyMessages: false` and a callback to hand it to:
        // it is unmasked where it lies and lent for the callback only (no copy, no allocation).
        const copy = this.config.copyMessages;
        const lend =
          !copy &&
          n === this.fLeft &&
          (bits & F_FIN) !== 0 &&
          parts === undefined &&
          (mBits & M_DEFLATED) === 0 &&
          this.onMessage !== undefined;
        if (lend) {
          mem = buf as Buffer;
          s = p;
        } else {
          // Lending, the frames after this piece will be lent where they lie: copy only this
          // piece, not the rest of the read.
          mem = own(buf, p, copy ? e : p + n);
          s = p - readCopyBase;
          if (!copy) readCopy = undefined;
        }
        piece = true;
      }
      const t = s + n;
      if (masked) applyMask(mem, s, t, this.fKey, phase);
      // Uncompressed text: validated as it arrives (compressed text once inflated).
      if ((mBits & (M_OP | M_DEFLATED)) === OP_TEXT) {
        const u = validateUtf8(this.utf8, mem, s, t);
        if (u === UTF8_REJECT) {
          this.fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
          return e;
        }
        this.utf8 = u;
      }
      if (piece) {
        const view = s === 0 && t === mem.length ? mem : bufferView(mem.buffer, mem.byteOffset + s, n);
        if (parts === undefined) this.parts = view;
        else if (Array.isArray(parts)) parts.push(view);
        else this.parts = [parts, view];
      }
      this.mSize += n;
    }
    this.fBits = (bits & ~(3 << F_PHASE_SHIFT)) | (((phase + n) & 3) << F_PHASE_SHIFT);
    this.fLeft -= n;
    if (this.fLeft === 0) this.frameEnd();
    return p + n;
  }

  private frameEnd(): void {
    this.phase = P_HEADER;
    const op = this.fBits & F_OP;
    if (op >= 8) {
      const x = this.x as Rare;
      const payload = x.ctrl as Buffer;
      x.ctrl = undefined;
      if (op === OP_CLOSE) {
        this.receivedClose(payload);
        return;
      }
      if (op === OP_PING) {
        if ((this.flags & CLOSE_SENT) === 0) this.control(OP_PONG, payload);
        if (x.onPing !== undefined) this.callback(x.onPing, payload);
      } else if (x.onPong !== undefined) this.callback(x.onPong, payload);
    } else if ((this.fBits & F_FIN) !== 0) this.messageEnd();
  }

  private messageEnd(): boolean {
    const bits = this.mBits;
    const isBinary = (bits & M_OP) === OP_BINARY;
    const parts = this.parts;
    let data = parts === undefined ? EMPTY : Array.isArray(parts) ? (parts[0] as Buffer) : parts;
    this.mBits = 0;
    this.parts = undefined;
    if ((bits & M_DEFLATED) !== 0) {
      try {
        data = (this.pmd as PerMessageDeflate).decompress(
          Array.isArray(parts) ? parts : [data],
          this.config.maxMessageSize,
        );
      } catch (err) {
        if (err instanceof OutputTooLargeError) return this.fail(CLOSE_TOO_BIG, 'message too large after inflation');
        if (err instanceof InvalidDeflateDataError) return this.fail(CLOSE_INVALID_PAYLOAD, 'invalid compressed data');
        throw err;
      }
      if (!isBinary && !isUtf8(data)) return this.fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
    } else {
      if (!isBinary && this.utf8 !== UTF8_ACCEPT)
        return this.fail(CLOSE_INVALID_PAYLOAD, 'text message ends inside a code point');
      if (Array.isArray(parts)) data = Buffer.concat(parts, this.mSize);
    }
    this.mSize = 0;
    const cb = this.onMessage;
    if (cb !== undefined) {
      try {
        cb.call(this, data, isBinary);
      } catch (err) {
        this.appError(err);
      }
    } else (this.ctx as HandlerContext).fireRead(isBinary ? data : data.toString());
    return true;
  }

  private receivedClose(payload: Buffer): boolean {
    let code = CLOSE_NO_STATUS;
    let reason = '';
    if (payload.length === 1) return this.fail(CLOSE_PROTOCOL_ERROR, 'close frame with a 1-byte payload');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidCloseCode(code)) return this.fail(CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`);
      if (validateUtf8(UTF8_ACCEPT, payload, 2, payload.length) !== UTF8_ACCEPT) {
        return this.fail(CLOSE_INVALID_PAYLOAD, 'close reason is not UTF-8');
      }
      reason = payload.toString('utf8', 2);
    }
    this.flags |= CLOSE_RECEIVED;
    this.closingState(code, reason);
    // §5.5.1: nothing comes after a close frame.
    this.phase = P_DONE;
    this.dropMessage();
    const ctx = this.ctx as HandlerContext;
    // §5.5.1: answer with a close frame, typically echoing the code.
    if ((this.flags & CLOSE_SENT) === 0) this.sendClose(code === CLOSE_NO_STATUS ? undefined : code, '');
    if (this.config.client) this.armCloseTimer();
    else ctx.close((this.flags & CLOSE_INITIATED) !== 0 ? 'local' : 'peer-closed');
    return true;
  }

  // ---- writing ----

  /** Whether a message may be queued on a connection that is above its high watermark. */
  private mayQueue(ch: Channel, length: number): boolean {
    switch (this.config.backpressure) {
      case 'drop':
        this.rare().dropped++;
        return false;
      case 'wait': {
        // Bounded: what was queued while writable (at most the high watermark and one message),
        // plus maxBufferedAmount of messages sent while it was not.
        const x = this.rare();
        if (x.overflow + length <= this.config.maxBufferedAmount) {
          x.overflow += length;
          return true;
        }
        break;
      }
    }
    // A reader this slow is dropped: what waits for it is freed at once.
    this.flags |= FAILED | CLOSE_SENT;
    this.closingState(CLOSE_POLICY, 'send buffer over its limit');
    ch.abort('aborted');
    return false;
  }

  private control(op: number, data: string | Uint8Array): void {
    const ctx = this.ctx;
    if (ctx === undefined || (this.flags & (CLOSE_SENT | CLOSED)) !== 0) return;
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (length > MAX_CONTROL_PAYLOAD) throw new RangeError('a control frame carries at most 125 bytes');
    writeFrame(ctx, FIN | op, data, this.config.client, ctx.writesToReleasingTransport);
    if ((this.flags & BATCHING) === 0) this.flushSoon(ctx);
  }

  private sendClose(code: number | undefined, reason: string): void {
    const ctx = this.ctx as HandlerContext;
    this.flags |= CLOSE_SENT;
    let payload: Buffer = EMPTY;
    if (code !== undefined) {
      payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
      payload.writeUInt16BE(code, 0);
      payload.write(reason, 2);
    }
    writeFrame(ctx, FIN | OP_CLOSE, payload, this.config.client);
    if ((this.flags & BATCHING) === 0) this.flushSoon(ctx);
  }

  private armCloseTimer(): void {
    const c = this.rare();
    if (c.timer !== undefined || this.ctx === undefined) return;
    c.timer = this.ctx.channel.timers.schedule(this.config.closeTimeout, () => {
      c.timer = undefined;
      if ((this.flags & CLOSED) === 0) (this.ctx as HandlerContext).close('local');
    });
  }

  /** Records the code and reason `onClose` will report. */
  private closingState(code: number, reason: string): void {
    const x = this.rare();
    x.code = code;
    x.reason = reason;
  }

  /**
   * Fails the connection (§7.1.7): a close frame with `code`, then the TCP connection closes; the
   * rest of the input is dropped.
   */
  private fail(code: number, reason: string, why: CloseReason = 'protocol-error'): false {
    this.phase = P_DONE;
    this.dropMessage();
    if ((this.flags & CLOSED) !== 0) return false;
    if ((this.flags & CLOSE_SENT) === 0) {
      this.flags |= FAILED;
      this.closingState(code, reason);
      this.sendClose(code, reason);
    }
    (this.ctx as HandlerContext).close(why);
    return false;
  }

  /** @internal Closes for the heartbeat stage: 1001 when the peer went silent (`idle-timeout`). */
  idleClose(): void {
    if ((this.flags & CLOSE_SENT) === 0) this.fail(CLOSE_GOING_AWAY, 'idle timeout', 'idle-timeout');
  }

  /** @internal Whether the closing handshake has started (no more pings). */
  get closing(): boolean {
    return (this.flags & (CLOSE_SENT | CLOSED)) !== 0;
  }

  private appError(err: unknown): void {
    // An application bug: tell the peer (1011), and let the pipeline log the error.
    const ctx = this.ctx as HandlerContext;
    this.fail(CLOSE_INTERNAL_ERROR, 'internal error', 'error');
    ctx.fireError(err);
  }

  private callback(cb: ControlCallback, payload: Buffer): void {
    try {
      cb.call(this, payload);
    } catch (err) {
      this.appError(err);
    }
  }

  private dropMessage(): void {
    this.mBits = 0;
    this.parts = undefined;
    this.mSize = 0;
  }

  private release(): void {
    const x = this.x;
    if (x !== undefined) {
      x.timer?.cancel();
      x.timer = undefined;
      x.hBuf = x.ctrl = undefined;
    }
    this.pmd?.close();
    this.dropMessage();
  }
}

/**
 * `size` bytes of memory of our own for a message being collected (see ACCUM_MAX): from the shared
 * copy block when small (8-byte aligned, for the word-wise mask), else a Buffer of its own.
 */
function reserve(size: number): Buffer {
  if (size > COPY_BLOCK_MAX) return Buffer.allocUnsafe(size);
  if (copyBlockUsed + size > COPY_BLOCK_SIZE) {
    copyBlock = Buffer.allocUnsafeSlow(COPY_BLOCK_SIZE);
    copyBlockUsed = 0;
  }
  const at = copyBlockUsed;
  copyBlockUsed = (at + size + 7) & ~7;
  return bufferView((copyBlock as Buffer).buffer, at, size);
}

/**
 * The memory holding this read's bytes from `p`, ours to unmask in place and hand out: the first
 * call of a read copies the rest of the read once (or claims the loop's buffer when that rest is
 * large, pipeline/read-loan.ts); `readCopyBase` maps read offsets into it.
 */
function own(buf: Uint8Array, p: number, e: number): Buffer {
  const c = readCopy;
  if (c !== undefined) return c;
  const rest = e - p;
  let mem: Buffer;
  if (rest >= CLAIM_THRESHOLD && isLent(buf) && claim(buf)) {
    mem = buf instanceof Buffer ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    readCopyBase = 0;
  } else if (rest <= COPY_BLOCK_MAX) {
    if (copyBlockUsed + rest > COPY_BLOCK_SIZE) {
      copyBlock = Buffer.allocUnsafeSlow(COPY_BLOCK_SIZE);
      copyBlockUsed = 0;
    }
    mem = copyBlock as Buffer;
    const at = copyBlockUsed;
    mem.set(p === 0 && e === buf.length ? buf : buf.subarray(p, e), at);
    // 8-byte aligned starts: the mask then works whole words from the first payload byte.
    copyBlockUsed = (at + rest + 7) & ~7;
    readCopyBase = p - at;
  } else {
    mem = Buffer.allocUnsafe(rest);
    mem.set(p === 0 && e === buf.length ? buf : buf.subarray(p, e));
    readCopyBase = p;
  }
  readCopy = mem;
  return mem;
}

/**
 * The WebSocket's place in the pipeline: a one-field object that passes the pipeline's events to
 * it (the WebSocket's `close(code, reason)` is the application's, not the pipeline's outbound
 * `close(ctx, reason)`, so the two cannot be one object).
 */
export class WebSocketHandler implements ChannelHandler {
  constructor(readonly ws: WebSocket) {}
  handlerAdded(ctx: HandlerContext): void {
    this.ws.attached(ctx);
  }
  handlerRemoved(): void {
    this.ws.detached();
  }
  onRead(ctx: HandlerContext, msg: unknown): void {
    this.ws.read(ctx, msg);
  }
  onReadComplete(ctx: HandlerContext): void {
    this.ws.readComplete(ctx);
  }
  onWritabilityChanged(ctx: HandlerContext, writable: boolean): void {
    this.ws.writabilityChanged(ctx, writable);
  }
  onUserEvent(ctx: HandlerContext, event: unknown): void {
    this.ws.userEvent(ctx, event);
  }
  onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.ws.inactive(ctx, reason);
  }
  write(ctx: HandlerContext, msg: unknown): void {
    this.ws.outbound(ctx, msg);
  }
}

/** Header bytes announced by its second byte: 2, plus the extended length, plus the mask key. */
function headerSize(b1: number): number {
  const len = b1 & 0x7f;
  return 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}
