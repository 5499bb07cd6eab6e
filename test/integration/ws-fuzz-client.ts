/**
 * A fuzzing WebSocket client on node:net, written for the Autobahn-case runner: it sends frames
 * exactly as told — any opcode, RSV bits, FIN, length, masking — cut into TCP writes as told
 * (`chop` bytes at a time, or frame by frame), and records what the server under test does:
 * messages, pongs, its close frame and code, and who closed first and how (Autobahn|Testsuite's
 * `received` list and `expectedClose` checks). It shares no code with the server's codec on
 * purpose: a bug there cannot hide itself here.
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import { encodeFrame, type FrameSpec } from '../ws-frames.js';

export type Received =
  | readonly ['message', Buffer, boolean]
  | readonly ['pong', Buffer]
  | readonly ['ping', Buffer]
  | readonly ['timeout', string];

export interface ConnectOptions {
  readonly port: number;
  readonly host?: string;
  readonly path?: string;
  /** `Sec-WebSocket-Extensions` to offer. */
  readonly extensions?: string;
}

/** Negotiated permessage-deflate terms, as the response stated them. */
interface Deflate {
  readonly serverNoContext: boolean;
  readonly clientNoContext: boolean;
  readonly serverBits: number;
  readonly clientBits: number;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FuzzClient {
  readonly received: Received[] = [];
  /** Our close frame went first. */
  closedByMe = false;
  closeSent = false;
  closeReceived = false;
  remoteCloseCode: number | null = null;
  remoteCloseReason = '';
  /** We had to drop the TCP connection (a kill timer, or the server kept it open after the closing handshake). */
  droppedByMe = false;
  /** The server's FIN or RST came. */
  serverClosedTcp = false;
  readonly closed: Promise<void>;
  /** Called after each recorded event (the case's `finishWhenDone`). */
  onEvent: (() => void) | undefined;
  /** Called with each message (sections 12 and 13). */
  onMessage: ((data: Buffer, binary: boolean) => void) | undefined;
  deflate: Deflate | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragOp = 0;
  private fragRsv1 = false;
  private writeChain: Promise<void> = Promise.resolve();
  private timers = new Set<NodeJS.Timeout>();
  private inflater: zlib.InflateRaw | undefined;
  private inflateChain: Promise<void> = Promise.resolve();

  private constructor(
    readonly socket: net.Socket,
    closed: Promise<void>,
  ) {
    this.closed = closed;
  }

  /** Connects and completes the opening handshake; rejects if the server refuses it. */
  static async connect(o: ConnectOptions): Promise<FuzzClient> {
    const socket = net.connect({ port: o.port, host: o.host ?? '127.0.0.1', noDelay: true });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('close', () => reject(new Error('connection closed before the handshake')));
    });
    const key = randomBytes(16).toString('base64');
    let req = `GET ${o.path ?? '/'} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
    if (o.extensions !== undefined) req += `Sec-WebSocket-Extensions: ${o.extensions}\r\n`;
    socket.write(`${req}\r\n`);
    const head = await new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
      let acc = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        acc = Buffer.concat([acc, d]);
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.pause();
        resolve({ head: acc.subarray(0, end).toString('latin1'), rest: acc.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('connection closed during the handshake')));
    });
    const lines = head.head.split('\r\n');
    if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) {
      socket.destroy();
      throw new Error(`handshake refused: ${lines[0]}`);
    }
    const fields = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      fields.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    const expected = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    if (fields.get('sec-websocket-accept') !== expected) {
      socket.destroy();
      throw new Error('wrong Sec-WebSocket-Accept');
    }
    const c = new FuzzClient(socket, closed);
    const ext = fields.get('sec-websocket-extensions');
    if (ext !== undefined) c.deflate = parseDeflate(ext);
    socket.on('data', (d: Buffer) => c.onData(d));
    socket.once('end', () => {
      c.serverClosedTcp = true;
    });
    socket.once('close', () => {
      c.serverClosedTcp ||= !c.droppedByMe;
      for (const t of c.timers) clearTimeout(t);
      c.timers.clear();
      c.inflater?.close();
    });
    if (head.rest.length > 0) c.onData(head.rest);
    socket.resume();
    return c;
  }

  get open(): boolean {
    return !this.closeSent && !this.closeReceived && !this.socket.destroyed;
  }

  /** Queues a frame (writes happen in order, chopped and paused as asked). */
  sendFrame(f: FrameSpec): void {
    const bytes = encodeFrame(f);
    this.write(bytes, f.chop, f.sync === true);
  }

  /** A message, in one frame or split into frames of `fragmentSize` payload bytes; compressed when negotiated. */
  sendMessage(
    payload: Buffer | string,
    binary: boolean,
    fragmentSize = 0,
    compress = this.deflate !== undefined,
  ): void {
    let data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    let rsv = 0;
    if (compress && this.deflate !== undefined) {
      const out = zlib.deflateRawSync(data, {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        windowBits: Math.max(9, this.deflate.clientBits),
      });
      data = out.subarray(0, out.length - 4);
      rsv = 4;
    }
    const op = binary ? 2 : 1;
    if (fragmentSize <= 0 || data.length <= fragmentSize) {
      this.sendFrame({ opcode: op, payload: data, rsv });
      return;
    }
    for (let at = 0, first = true; at < data.length; at += fragmentSize, first = false) {
      const piece = data.subarray(at, Math.min(data.length, at + fragmentSize));
      this.sendFrame({
        opcode: first ? op : 0,
        payload: piece,
        fin: at + fragmentSize >= data.length,
        rsv: first ? rsv : 0,
      });
    }
  }

  /** The protocol-level close (Autobahn's `sendClose`/`sendCloseFrame`): our close goes first. */
  sendClose(code?: number, reason?: Buffer | string): void {
    if (this.closeSent) return;
    if (!this.closeReceived) this.closedByMe = true;
    this.closeSent = true;
    this.sendFrame({ opcode: 8, payload: closePayload(code, reason) });
    if (this.closeReceived) this.awaitServerDrop();
  }

  /** Raw bytes (a header announcing more payload than follows, 6.4.3). */
  sendRaw(bytes: Buffer, sync = false): void {
    this.write(bytes, undefined, sync);
  }

  /** Drops the TCP connection after `ms` if it is still there. */
  killAfter(ms: number): void {
    this.later(ms, () => this.drop());
  }

  /** Starts the closing handshake after `ms` if nobody did. */
  closeAfter(ms: number): void {
    this.later(ms, () => {
      if (!this.closeSent && !this.closeReceived) this.sendClose(1000);
      this.killAfter(2000);
    });
  }

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.socket.destroyed) fn();
    }, ms);
    this.timers.add(t);
  }

  drop(): void {
    if (this.socket.destroyed) return;
    this.droppedByMe = true;
    this.socket.destroy();
  }

  /**
   * After the closing handshake the server should close the TCP connection. Upstream waits a
   * second; three here, so that a loaded test machine does not turn a slow close into a failure.
   */
  private awaitServerDrop(): void {
    this.later(3000, () => this.drop());
  }

  private write(bytes: Buffer, chop: number | undefined, sync: boolean): void {
    this.writeChain = this.writeChain.then(async () => {
      if (this.socket.destroyed) return;
      if (chop === undefined || chop <= 0) {
        this.socket.write(bytes);
      } else {
        for (let at = 0; at < bytes.length; at += chop) {
          if (this.socket.destroyed) return;
          this.socket.write(bytes.subarray(at, at + chop));
          // Separate segments: let the write leave before the next one.
          await pause(chop <= 16 ? 1 : 0);
        }
      }
      if (sync) await pause(10);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const b0 = b[0] as number;
      const b1 = b[1] as number;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if ((b1 & 0x80) !== 0) at += 4; // a masked server frame: recorded as is (the server must not)
      if (b.length < at + len) return;
      const payload = Buffer.from(b.subarray(at, at + len));
      this.buf = b.subarray(at + len);
      this.frame(b0 & 0x0f, (b0 & 0x80) !== 0, (b0 & 0x40) !== 0, payload);
    }
  }

  private frame(op: number, fin: boolean, rsv1: boolean, payload: Buffer): void {
    if (op === 8) {
      if (this.closeReceived) return;
      this.closeReceived = true;
      this.remoteCloseCode = payload.length >= 2 ? payload.readUInt16BE(0) : null;
      this.remoteCloseReason = payload.length > 2 ? payload.toString('utf8', 2) : '';
      if (!this.closeSent) {
        // Answer, echoing the code (Autobahn does).
        this.closeSent = true;
        this.sendFrame({ opcode: 8, payload: closePayload(this.remoteCloseCode ?? undefined) });
      }
      this.awaitServerDrop();
      return;
    }
    if (op === 9) {
      this.record(['ping', payload]);
      if (!this.closeSent) this.sendFrame({ opcode: 10, payload });
      return;
    }
    if (op === 10) {
      this.record(['pong', payload]);
      return;
    }
    if (op !== 0) {
      this.fragOp = op;
      this.fragRsv1 = rsv1;
      this.fragments = [];
    }
    this.fragments.push(payload);
    if (!fin) return;
    const whole = Buffer.concat(this.fragments);
    this.fragments = [];
    const binary = this.fragOp === 2;
    if (this.fragRsv1 && this.deflate !== undefined) {
      this.inflate(whole, binary);
      return;
    }
    this.deliver(whole, binary);
  }

  private deliver(data: Buffer, binary: boolean): void {
    this.onMessage?.(data, binary);
    this.record(['message', data, binary]);
  }

  /** Server messages are inflated in order, keeping context unless the server said it keeps none. */
  private inflate(data: Buffer, binary: boolean): void {
    const d = this.deflate as Deflate;
    const input = Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]);
    if (d.serverNoContext) {
      // No context to keep: one-shot, in order with any stream inflation still running.
      this.inflateChain = this.inflateChain.then(() =>
        this.deliver(
          zlib.inflateRawSync(input, {
            windowBits: Math.max(9, d.serverBits),
            finishFlush: zlib.constants.Z_SYNC_FLUSH,
          }),
          binary,
        ),
      );
      return;
    }
    this.inflateChain = this.inflateChain.then(
      () =>
        new Promise<void>((resolve) => {
          this.inflater ??= zlib.createInflateRaw({ windowBits: Math.max(9, d.serverBits) });
          const inf = this.inflater;
          const out: Buffer[] = [];
          const onData = (c: Buffer) => out.push(c);
          inf.on('data', onData);
          inf.write(input);
          inf.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            inf.off('data', onData);
            this.deliver(Buffer.concat(out), binary);
            resolve();
          });
        }),
    );
  }

  record(e: Received): void {
    this.received.push(e);
    this.onEvent?.();
  }
}

function closePayload(code?: number, reason?: Buffer | string): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = typeof reason === 'string' ? Buffer.from(reason) : (reason ?? Buffer.alloc(0));
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}

function parseDeflate(header: string): Deflate {
  const params = header.split(';').map((s) => s.trim());
  if (params[0] !== 'permessage-deflate') throw new Error(`unexpected extension ${header}`);
  let serverBits = 15;
  let clientBits = 15;
  for (const p of params.slice(1)) {
    const [k, v] = p.split('=').map((s) => s.trim());
    if (k === 'server_max_window_bits') serverBits = Number(v);
    if (k === 'client_max_window_bits') clientBits = Number(v);
  }
  return {
    serverNoContext: params.includes('server_no_context_takeover'),
    clientNoContext: params.includes('client_no_context_takeover'),
    serverBits,
    clientBits,
  };
}
