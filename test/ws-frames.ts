/**
 * WebSocket frames as a peer writes them, for tests: any opcode, RSV bits, FIN, masking, length
 * — including the ones the server must refuse — and a decoder of what a server sends back. Shares
 * no code with src/websocket on purpose.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';

export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Buffer | string;
  readonly fin?: boolean;
  readonly rsv?: number;
  /** Write the frame in pieces of this many bytes, each its own TCP write. */
  readonly chop?: number;
  /** Write the frame on its own and pause after it (Autobahn's `sync`). */
  readonly sync?: boolean;
  /** Repeat `payload` up to this many bytes. */
  readonly length?: number;
  /** Mask (default true: we are a client). */
  readonly mask?: boolean;
}

export function encodeFrame(f: FrameSpec): Buffer {
  let payload = typeof f.payload === 'string' ? Buffer.from(f.payload) : (f.payload ?? Buffer.alloc(0));
  if (f.length !== undefined) {
    const p = Buffer.alloc(f.length);
    for (let i = 0; i < f.length; i += payload.length) payload.copy(p, i);
    payload = p;
  }
  const len = payload.length;
  const mask = f.mask ?? true;
  const h = (len < 126 ? 2 : len < 65536 ? 4 : 10) + (mask ? 4 : 0);
  const out = Buffer.alloc(h + len);
  out[0] = ((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode;
  let at = 2;
  if (len < 126) out[1] = len;
  else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
    at = 4;
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(len), 2);
    at = 10;
  }
  if (mask) {
    out[1] = (out[1] as number) | 0x80;
    const key = randomBytes(4);
    key.copy(out, at);
    at += 4;
    for (let i = 0; i < len; i++) out[at + i] = (payload[i] as number) ^ (key[i & 3] as number);
  } else payload.copy(out, at);
  return out;
}

/** A frame as the server sent it. */
export interface ParsedFrame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
}

/** Decodes whole frames from `bytes` (unmasking masked ones); throws on a trailing partial frame. */
export function parseFrames(bytes: Buffer): ParsedFrame[] {
  const out: ParsedFrame[] = [];
  let p = 0;
  while (p < bytes.length) {
    const b0 = bytes[p] as number;
    const b1 = bytes[p + 1] as number;
    let len = b1 & 0x7f;
    let at = p + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer | undefined;
    if (masked) {
      key = bytes.subarray(at, at + 4);
      at += 4;
    }
    if (at + len > bytes.length) throw new Error(`partial frame at ${p}`);
    const payload = Buffer.from(bytes.subarray(at, at + len));
    if (key !== undefined) for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    p = at + len;
  }
  return out;
}

/** A close frame's code and reason (code undefined for an empty close frame). */
export function closeOf(f: ParsedFrame): { code: number | undefined; reason: string } {
  return f.payload.length >= 2
    ? { code: f.payload.readUInt16BE(0), reason: f.payload.toString('utf8', 2) }
    : { code: undefined, reason: '' };
}
