/**
 * Two embedded channels with a TlsHandler each, wired back to back: what one flushes is read by
 * the other. No sockets; the real OpenSSL on both sides.
 */
import { Buffer } from 'node:buffer';
import {
  type ChannelHandler,
  ChannelInboundHandler,
  type CloseReason,
  EmbeddedChannel,
  type EmbeddedChannelOptions,
  type HandlerContext,
  Pipeline,
  type TlsContext,
  TlsHandler,
} from '../../../src/index.js';
import type { ClientTarget } from '../../../src/tls/context.js';

/** Records what the application behind a TlsHandler sees (reads copied: they are borrowed). */
export class AppProbe extends ChannelInboundHandler {
  readonly reads: Buffer[] = [];
  readonly events: string[] = [];
  inactive: CloseReason | undefined;

  override onActive(ctx: HandlerContext): void {
    this.events.push('active');
    ctx.fireActive();
  }
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.reads.push(Buffer.from(msg as Uint8Array));
  }
  override onReadComplete(ctx: HandlerContext): void {
    this.events.push('readComplete');
    ctx.fireReadComplete();
  }
  override onInputShutdown(ctx: HandlerContext): void {
    this.events.push('inputShutdown');
    ctx.fireInputShutdown();
  }
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.events.push('inactive');
    this.inactive = reason;
    ctx.fireInactive(reason);
  }

  /** Everything read so far, concatenated (and forgotten). */
  take(): Buffer {
    return Buffer.concat(this.reads.splice(0));
  }
}

export interface Side {
  readonly channel: EmbeddedChannel;
  readonly tls: TlsHandler;
  readonly app: AppProbe;
}

export const LOCALHOST: ClientTarget = {
  servername: 'localhost',
  verifyHost: 'localhost',
  sessionKey: 'localhost:443',
};

/** An embedded channel: `tls`, then `extra` handlers, then an AppProbe. */
export function side(
  context: TlsContext,
  target?: ClientTarget,
  extra: readonly ChannelHandler[] = [],
  options: EmbeddedChannelOptions = {},
): Side {
  const tls = new TlsHandler(context, target);
  const app = new AppProbe();
  const p = new Pipeline().addLast('tls', tls);
  for (const h of extra) p.addLast(h);
  p.addLast('app', app);
  return { channel: new EmbeddedChannel(p, options), tls, app };
}

/** How bytes cross: as flushed, one byte per read, or everything pending concatenated into one read. */
export type Delivery = 'chunks' | 'bytes' | 'joined';

/** Moves what `from` flushed into `to` as reads; returns the bytes moved. */
export function transfer(from: EmbeddedChannel, to: EmbeddedChannel, delivery: Delivery = 'chunks'): number {
  const chunks = from.outbound.splice(0).map((m) => Buffer.from(m as Uint8Array));
  let n = 0;
  if (delivery === 'joined' && chunks.length > 0) {
    const all = Buffer.concat(chunks);
    n = all.length;
    if (to.isActive) to.writeInbound(all);
    return n;
  }
  for (const c of chunks) {
    n += c.length;
    if (!to.isActive) continue;
    if (delivery === 'bytes') for (let i = 0; i < c.length; i++) to.writeInbound(c.subarray(i, i + 1));
    else to.writeInbound(c);
  }
  return n;
}

/** Pumps both ways until nothing moves (at most `rounds` times). */
export function pump(a: Side, b: Side, delivery: Delivery = 'chunks', rounds = 50): void {
  for (let i = 0; i < rounds; i++) {
    const moved = transfer(a.channel, b.channel, delivery) + transfer(b.channel, a.channel, delivery);
    if (moved === 0) return;
  }
  throw new Error('pump: still moving after the last round');
}

/** A client and a server side, handshake done (pumped). */
export function connectedPair(
  server: TlsContext,
  client: TlsContext,
  target: ClientTarget = LOCALHOST,
  delivery: Delivery = 'chunks',
): { server: Side; client: Side } {
  const s = side(server);
  const c = side(client, target);
  pump(c, s, delivery);
  return { server: s, client: c };
}

/** TLS record types of a byte stream (5-byte headers), to count records and alerts. */
export function recordTypes(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    out.push(bytes[at] as number);
    at += 5 + bytes.readUInt16BE(at + 3);
  }
  return out;
}
