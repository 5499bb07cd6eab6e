/**
 * Raw WebSocket clients for the stress tests (stress-ws-*.test.ts): node:net sockets that speak
 * RFC 6455 themselves — masked frames with seeded keys, messages cut into fragments with pings
 * between them, reads paused and resumed on a seeded schedule — and record every frame the server
 * sends, so that a test can check every byte: content that names its sender, receiver and
 * sequence number, and the order of data, pongs and the close frame.
 */
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { prng } from './helpers.js';

/** A frame as received (the server never masks; it never fragments its own messages either). */
export interface RxFrame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly op: number;
  readonly payload: Buffer;
}

/** Sizes around the encoder's limits: 7-bit/16-bit/64-bit lengths, the 16 KiB slab bound. */
export const EDGE_SIZES = [
  0, 1, 2, 124, 125, 126, 127, 1000, 4095, 4096, 16_369, 16_370, 16_380, 16_383, 16_384, 16_385, 20_000, 65_535, 65_536,
  65_537, 100_000,
];

/** A size for message `seq`: an edge size one time in three, else a small one (many frames per read). */
export function sizeFor(rand: () => number): number {
  return rand() < 0.35 ? (EDGE_SIZES[Math.floor(rand() * EDGE_SIZES.length)] as number) : 1 + Math.floor(rand() * 300);
}

/** Everyone: the receiver in the tag of a message for several. */
export const ALL = 127;

/**
 * Message `seq` of sender `from` (to `to`, or ALL): a 10-byte tag — sender, receiver, sequence,
 * length, each byte below 0x80 (valid UTF-8 in a text message too) — then bytes derived from all
 * of them, ASCII when `text`. Shorter messages are a prefix of the same bytes (identified by their
 * place in the stream, which the tests check too).
 */
export function messageBytes(from: number, to: number, seq: number, size: number, text: boolean): Buffer {
  const b = Buffer.allocUnsafe(size);
  const tag = [from & 0x7f, to & 0x7f, ...base128(seq), ...base128(size)];
  for (let k = 0; k < size; k++) {
    let v = k < 10 ? (tag[k] as number) : (from * 131 + to * 71 + seq * 17 + k * 7) & 0xff;
    if (text && k >= 10) v = 0x21 + (v % 94);
    b[k] = v;
  }
  return b;
}

function base128(n: number): number[] {
  return [(n >>> 21) & 0x7f, (n >>> 14) & 0x7f, (n >>> 7) & 0x7f, n & 0x7f];
}

/** The tag of a message of `messageBytes` (at least 10 bytes). */
export function tagOf(b: Buffer): { from: number; to: number; seq: number; size: number } {
  const n = (at: number) =>
    ((b[at] as number) << 21) | ((b[at + 1] as number) << 14) | ((b[at + 2] as number) << 7) | (b[at + 3] as number);
  return { from: b[0] as number, to: b[1] as number, seq: n(2), size: n(6) };
}

/** A client frame: masked with a key from `rand` (RFC 6455 §5.3). */
export function clientFrame(b0: number, payload: Uint8Array, rand: () => number): Buffer {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65_536 ? 2 : 8;
  const f = Buffer.allocUnsafe(2 + ext + 4 + n);
  f[0] = b0;
  if (ext === 0) f[1] = 0x80 | n;
  else if (ext === 2) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(n, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeUInt32BE(0, 2);
    f.writeUInt32BE(n, 6);
  }
  const at = 2 + ext;
  const key = [0, 1, 2, 3].map(() => Math.floor(rand() * 256));
  for (let i = 0; i < 4; i++) f[at + i] = key[i] as number;
  for (let i = 0; i < n; i++) f[at + 4 + i] = (payload[i] as number) ^ (key[i & 3] as number);
  return f;
}

export const OP_CONT = 0;
export const OP_TEXT = 1;
export const OP_BINARY = 2;
export const OP_CLOSE = 8;
export const OP_PING = 9;
export const OP_PONG = 10;

export const UPGRADE =
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/**
 * One raw client: sends the upgrade, then parses every frame the server sends (`frames`). A
 * frame that is malformed for a server (masked, reserved bits, a length over `maxFrame`) is
 * recorded in `errors`, and parsing stops: the stream can no longer be trusted.
 */
export class RawClient {
  readonly frames: RxFrame[] = [];
  readonly errors: string[] = [];
  /** Data bytes received after the handshake. */
  received = 0;
  ended = false;
  private head = true;
  private pending: Buffer = Buffer.alloc(0);
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: net.Socket,
    readonly id: number,
    private readonly maxFrame = 1 << 24,
  ) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => {
      this.ended = true;
    });
    socket.write(UPGRADE);
  }

  get open(): boolean {
    return !this.head;
  }

  private onData(d: Buffer): void {
    if (this.head) {
      const all = Buffer.concat([this.pending, d]);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        this.pending = all;
        return;
      }
      if (!all.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) {
        this.errors.push(`handshake: ${all.subarray(0, end).toString('latin1')}`);
      }
      this.head = false;
      this.pending = Buffer.alloc(0);
      d = all.subarray(end + 4);
    }
    this.received += d.length;
    if (this.errors.length > 0) return;
    let buf = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
    let p = 0;
    for (;;) {
      if (buf.length - p < 2) break;
      const b0 = buf[p] as number;
      const b1 = buf[p + 1] as number;
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) {
        if (buf.length - p < 4) break;
        len = buf.readUInt16BE(p + 2);
        h = 4;
        if (len < 126) this.errors.push(`frame ${this.frames.length}: 16-bit length ${len}`);
      } else if (len === 127) {
        if (buf.length - p < 10) break;
        len = buf.readUInt32BE(p + 2) * 2 ** 32 + buf.readUInt32BE(p + 6);
        h = 10;
        if (len < 65_536) this.errors.push(`frame ${this.frames.length}: 64-bit length ${len}`);
      }
      if ((b1 & 0x80) !== 0) this.errors.push(`frame ${this.frames.length}: masked`);
      if ((b0 & 0x30) !== 0) this.errors.push(`frame ${this.frames.length}: RSV2/3 set (${b0.toString(16)})`);
      const op = b0 & 0x0f;
      if (![0, 1, 2, 8, 9, 10].includes(op)) this.errors.push(`frame ${this.frames.length}: opcode ${op}`);
      if (len > this.maxFrame) this.errors.push(`frame ${this.frames.length}: ${len} bytes`);
      if (this.errors.length > 0) {
        this.errors.push(`(at byte ${this.received - (buf.length - p)} of the stream)`);
        return;
      }
      if (buf.length - p < h + len) break;
      this.frames.push({
        fin: (b0 & 0x80) !== 0,
        rsv: b0 & 0x70,
        op,
        payload: Buffer.from(buf.subarray(p + h, p + h + len)),
      });
      p += h + len;
    }
    this.pending = p === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(p));
    buf = this.pending;
  }

  /** Sends a whole message, cut into `pieces` fragments with a ping (payload `pings[i]`) after each fragment but the last. */
  sendMessage(op: number, payload: Buffer, rand: () => number, pieces = 1, pings: Buffer[] = []): void {
    const out: Buffer[] = [];
    if (pieces <= 1 || payload.length < pieces) out.push(clientFrame(0x80 | op, payload, rand));
    else {
      const cuts = new Set<number>();
      while (cuts.size < pieces - 1) cuts.add(1 + Math.floor(rand() * (payload.length - 1)));
      const at = [0, ...[...cuts].sort((a, b) => a - b), payload.length];
      for (let i = 0; i + 1 < at.length; i++) {
        const last = i + 2 === at.length;
        out.push(clientFrame((last ? 0x80 : 0) | (i === 0 ? op : OP_CONT), payload.subarray(at[i], at[i + 1]), rand));
        const ping = pings[i];
        if (!last && ping !== undefined) out.push(clientFrame(0x80 | OP_PING, ping, rand));
      }
    }
    this.socket.write(Buffer.concat(out));
  }

  sendClose(code: number, rand: () => number): void {
    const p = Buffer.allocUnsafe(2);
    p.writeUInt16BE(code, 0);
    this.socket.write(clientFrame(0x80 | OP_CLOSE, p, rand));
  }

  /** Pauses and resumes reading on a seeded schedule (0–`maxMs` ms each) until `stopStalling`. */
  stall(seed: number, maxMs: number, pausedShare = 0.6): void {
    const rand = prng(seed);
    const step = (paused: boolean) => {
      if (paused) this.socket.pause();
      else this.socket.resume();
      const ms = Math.floor(rand() * maxMs);
      this.stallTimer = setTimeout(() => step(rand() < pausedShare), ms);
    };
    step(true);
  }

  stopStalling(): void {
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.socket.resume();
  }

  /** The data messages received (server messages are single frames), in order. */
  messages(): RxFrame[] {
    return this.frames.filter((f) => f.op === OP_TEXT || f.op === OP_BINARY);
  }
}

/** Describes where `got` differs from `want`, or returns '' when they are the same. */
export function firstDifference(got: readonly Buffer[], want: readonly Buffer[], label: string): string {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const g = got[i] as Buffer;
    const w = want[i] as Buffer;
    if (!g.equals(w)) {
      const describe = (b: Buffer) => {
        if (b.length < 10) return `${b.length} bytes`;
        const t = tagOf(b);
        return `from ${t.from} to ${t.to} seq ${t.seq} size ${t.size}`;
      };
      const tag = describe(g);
      const wtag = describe(w);
      return `${label}: message ${i} is [${tag}] (${g.length} bytes), expected [${wtag}] (${w.length} bytes)`;
    }
  }
  if (got.length !== want.length) return `${label}: ${got.length} messages, expected ${want.length}`;
  return '';
}

export async function until(cond: () => boolean, what: () => string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
