/**
 * The two Redis connections of a process, as pipeline stages after a `RespDecoder` (RESP2):
 *
 * - `RedisSubscriber`: runs the handshake (AUTH, SELECT, CLIENT SETNAME — every reply must be
 *   `+OK`), then SUBSCRIBE/PSUBSCRIBE for every topic and pattern with local subscribers, and
 *   from then on turns the pushed `message`/`pmessage` arrays into calls (redis.ts decides what
 *   they reach). In subscribed mode RESP2 allows only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING and
 *   QUIT, and replies to each (un)subscription with a confirmation array, which is only counted.
 * - `RedisPublisher`: the same handshake, then one integer reply (receivers) per PUBLISH, in
 *   order: the replies tell which messages Redis took; messages written when the connection
 *   breaks are counted as unconfirmed (redis.ts).
 *
 * Commands are written as RESP arrays of bulk strings (`respCommand`), a PUBLISH with its envelope
 * in one allocation (`publishCommand`). Nothing here knows sockets: the unit tests drive both
 * stages on an EmbeddedChannel.
 */
import { Buffer } from 'node:buffer';
import { RespError } from '../codec/resp.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { beginSendBurst, endSendBurst } from '../websocket/websocket.js';
import { HEADER_SIZE, writeHeader } from './envelope.js';

/** A RESP array of bulk strings: how a client sends a command. */
export function respCommand(args: readonly (string | Uint8Array)[]): Buffer {
  let size = 3 + String(args.length).length;
  const lengths: number[] = [];
  for (const a of args) {
    const n = typeof a === 'string' ? Buffer.byteLength(a) : a.length;
    lengths.push(n);
    size += 5 + String(n).length + n;
  }
  const buf = Buffer.allocUnsafe(size);
  let p = buf.write(`*${args.length}\r\n`, 0, 'latin1');
  args.forEach((a, i) => {
    const n = lengths[i] as number;
    p += buf.write(`$${n}\r\n`, p, 'latin1');
    if (typeof a === 'string') p += buf.write(a, p, n, 'utf8');
    else {
      buf.set(a, p);
      p += n;
    }
    buf[p++] = 0x0d;
    buf[p++] = 0x0a;
  });
  return buf;
}

const PUBLISH_HEAD = Buffer.from('*3\r\n$7\r\nPUBLISH\r\n');

/**
 * `PUBLISH <channel> <envelope + data>` in one Buffer: the channel is `prefix + topic`, the
 * message the envelope header (envelope.ts) and `data`.
 */
export function publishCommand(
  prefix: string,
  topic: string,
  data: string | Uint8Array,
  binary: boolean,
  origin: number,
  seq: number,
): Buffer {
  const channelLength = (prefix === '' ? 0 : Buffer.byteLength(prefix)) + Buffer.byteLength(topic);
  const dataLength = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  const payloadLength = HEADER_SIZE + dataLength;
  const cl = `$${channelLength}\r\n`;
  const pl = `\r\n$${payloadLength}\r\n`;
  const buf = Buffer.allocUnsafe(PUBLISH_HEAD.length + cl.length + channelLength + pl.length + payloadLength + 2);
  let p = PUBLISH_HEAD.copy(buf, 0);
  p += buf.write(cl, p, 'latin1');
  if (prefix !== '') p += buf.write(prefix, p, 'utf8');
  p += buf.write(topic, p, 'utf8');
  p += buf.write(pl, p, 'latin1');
  writeHeader(buf, p, binary, origin, seq);
  p += HEADER_SIZE;
  if (typeof data === 'string') p += buf.write(data, p, dataLength, 'utf8');
  else {
    buf.set(data, p);
    p += dataLength;
  }
  buf[p] = 0x0d;
  buf[p + 1] = 0x0a;
  return buf;
}

/** SUBSCRIBE (or PSUBSCRIBE …) of many names: commands of at most 1024 names each. */
export function subscribeCommands(verb: string, names: readonly string[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < names.length; i += 1024) out.push(respCommand([verb, ...names.slice(i, i + 1024)]));
  return out;
}

/** PING: what the heartbeat sends after a silence. */
export const PING = respCommand(['PING']);

/** A pong: `+PONG` outside subscribed mode, `["pong", ""]` inside it. */
export function isPong(msg: unknown): boolean {
  if (msg === 'PONG') return true;
  if (!Array.isArray(msg) || msg.length !== 2) return false;
  const k = msg[0];
  return k instanceof Uint8Array && k.length === 4 && k[0] === 0x70 && k[1] === 0x6f && k[2] === 0x6e && k[3] === 0x67;
}

/** What both connections report to their owner. */
export interface LinkEvents {
  /** Every handshake reply was +OK: the connection serves from now on. */
  up(): void;
  /** A handshake reply was not +OK (a wrong password, a database that does not exist). */
  refused(reply: unknown): void;
  /** An error reply after the handshake. */
  errorReply(error: RespError): void;
  /** The connection closed (after `up` or not). */
  down(reason: CloseReason): void;
}

/** The handshake both connections run: commands whose replies must all be `+OK`. */
abstract class RedisLinkHandler extends ChannelInboundHandler {
  protected ctx: HandlerContext | undefined;
  /** Handshake replies still awaited; -1 once refused (nothing more is read). */
  private awaiting: number;
  private isUp = false;

  constructor(
    protected readonly events: LinkEvents,
    private readonly handshake: readonly Buffer[],
  ) {
    super();
    this.awaiting = handshake.length;
  }

  get active(): boolean {
    return this.ctx !== undefined;
  }

  override onActive(ctx: HandlerContext): void {
    this.ctx = ctx;
    for (const c of this.handshake) ctx.write(c);
    this.afterHandshake(ctx);
    ctx.flush();
    if (this.awaiting === 0) this.goUp();
    ctx.fireActive();
  }

  /** Writes what follows the handshake at once (pipelined behind it). */
  protected afterHandshake(_ctx: HandlerContext): void {}

  private goUp(): void {
    this.isUp = true;
    this.events.up();
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (this.awaiting > 0) {
      if (msg !== 'OK') {
        // The first refusal says why (WRONGPASS); what follows it in the read (NOAUTH …) is its echo.
        this.awaiting = -1;
        this.events.refused(msg);
        ctx.close('protocol-error');
        return;
      }
      if (--this.awaiting === 0) this.goUp();
      return;
    }
    if (this.awaiting < 0) return;
    if (msg instanceof RespError) {
      this.events.errorReply(msg);
      return;
    }
    this.reply(ctx, msg);
  }

  protected abstract reply(ctx: HandlerContext, msg: unknown): void;

  override onError(ctx: HandlerContext, error: unknown): void {
    // A RespProtocolError (or a frame too long): the stream cannot be read on. Close; the owner reconnects.
    ctx.channel.logger.error('pubsub: Redis sent what cannot be read; closing the connection', error);
    ctx.close('protocol-error');
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.ctx = undefined;
    this.events.down(reason);
    ctx.fireInactive(reason);
  }

  /** Whether the handshake is over. */
  get up(): boolean {
    return this.isUp;
  }
}

/** What the subscriber connection delivers. */
export interface SubscriberEvents extends LinkEvents {
  message(channel: Buffer, payload: Buffer): void;
  pmessage(pattern: Buffer, channel: Buffer, payload: Buffer): void;
}

/**
 * The subscriber connection's stage. `initial`: the SUBSCRIBE/PSUBSCRIBE commands for what has
 * local subscribers when the connection opens, written right behind the handshake.
 */
export class RedisSubscriber extends RedisLinkHandler {
  /** (Un)subscription confirmations received. */
  confirmations = 0;
  private inBurst = false;

  constructor(
    protected override readonly events: SubscriberEvents,
    handshake: readonly Buffer[],
    private readonly initial: () => readonly Buffer[],
  ) {
    super(events, handshake);
  }

  protected override afterHandshake(ctx: HandlerContext): void {
    for (const c of this.initial()) ctx.write(c);
  }

  /** Writes a command now (SUBSCRIBE, UNSUBSCRIBE …); the caller flushes. */
  send(command: Buffer): void {
    this.ctx?.write(command);
  }

  /** Flushes what `send` wrote (not named `flush`: that would make the stage an outbound one). */
  flushNow(): void {
    this.ctx?.flush();
  }

  protected override reply(_ctx: HandlerContext, msg: unknown): void {
    if (!Array.isArray(msg) || msg.length < 3) return;
    const kind = msg[0];
    if (!(kind instanceof Uint8Array)) return;
    // Told apart by length and first byte: message 7 'm', pmessage 8 'p', subscribe 9,
    // psubscribe 10, unsubscribe 11, punsubscribe 12.
    if (kind.length === 7 && kind[0] === 0x6d && msg.length === 3) {
      this.burst();
      this.events.message(msg[1] as Buffer, msg[2] as Buffer);
    } else if (kind.length === 8 && kind[0] === 0x70 && msg.length === 4) {
      this.burst();
      this.events.pmessage(msg[1] as Buffer, msg[2] as Buffer, msg[3] as Buffer);
    } else if (kind.length >= 9 && kind.length <= 12) {
      this.confirmations++;
    }
  }

  /** The messages of one read leave in one write per WebSocket member (websocket.ts bursts). */
  private burst(): void {
    if (this.inBurst) return;
    this.inBurst = true;
    beginSendBurst();
  }

  private endBurst(): void {
    if (!this.inBurst) return;
    this.inBurst = false;
    endSendBurst();
  }

  override onReadComplete(ctx: HandlerContext): void {
    this.endBurst();
    ctx.fireReadComplete();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.endBurst();
    super.onInactive(ctx, reason);
  }
}

/** What the publisher connection reports. */
export interface PublisherEvents extends LinkEvents {
  /** Redis took a PUBLISH (its reply: how many of its clients received it). */
  confirmed(receivers: number): void;
}

/** The publisher connection's stage: counts the replies to its PUBLISH commands. */
export class RedisPublisher extends RedisLinkHandler {
  constructor(
    protected override readonly events: PublisherEvents,
    handshake: readonly Buffer[],
  ) {
    super(events, handshake);
  }

  /** Writes a command (a PUBLISH); the caller flushes. */
  send(command: Buffer): void {
    this.ctx?.write(command);
  }

  /** Flushes what `send` wrote (not named `flush`: that would make the stage an outbound one). */
  flushNow(): void {
    this.ctx?.flush();
  }

  /** Bytes written and not yet taken by the kernel. */
  get pendingBytes(): number {
    return this.ctx?.channel.pendingWriteBytes ?? 0;
  }

  protected override reply(_ctx: HandlerContext, msg: unknown): void {
    if (typeof msg === 'number') this.events.confirmed(msg);
    else if (typeof msg === 'bigint') this.events.confirmed(Number(msg));
  }
}
