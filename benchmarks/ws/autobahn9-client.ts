/**
 * The client side of benchmarks/ws/autobahn9.ts: performs one Autobahn section-9 case
 * (autobahn9-cases.ts) on a fresh WebSocket connection, on node:net, and times it.
 *
 * Why not test/integration/ws-fuzz-client.ts (the client of the Autobahn-case runner): that one
 * records every event for judging protocol behaviour, and costs what does not matter there but
 * would be timed here — it joins every read into the receive buffer (a 16 MiB echo read 64 KiB at
 * a time copies ~2 GiB), sleeps a timer turn (≥ 1 ms) between chopped writes (9.5.1 alone would
 * sleep 16 s), and masks while sending. Benchmarks do not import from test/ either. Here every
 * frame is built and masked before the clock starts, chopped writes are one event-loop turn apart
 * (upstream's Twisted client re-enters its reactor after each chop), and the echo is compared
 * with what was sent as it arrives, read by read, without being copied (EchoReader).
 *
 * Like upstream, a case fails when the echo is not the message sent (type, length — and here also
 * every byte, which upstream leaves as a FIXME), when it does not arrive within the case's time
 * limit, or when the closing handshake is not clean (our close 1000 first, the server's close and
 * its TCP FIN after, RFC 6455 §7.1.1).
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Case9, payloadOf } from './autobahn9-cases.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_TEXT = 1;
const OP_BINARY = 2;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

/** Bytes of a client frame header for a payload of `len` (RFC 6455 §5.2: 2, +2 or +8 for the length, +4 for the mask key). */
function headerLength(len: number): number {
  return (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4;
}

/** Writes one masked client frame of `payload` into `out` at `at`; returns the offset after it. */
function writeFrame(out: Buffer, at: number, opcode: number, fin: boolean, payload: Buffer): number {
  const len = payload.length;
  out[at] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) {
    out[at + 1] = 0x80 | len;
    at += 2;
  } else if (len < 65536) {
    out[at + 1] = 0x80 | 126;
    out.writeUInt16BE(len, at + 2);
    at += 4;
  } else {
    out[at + 1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), at + 2);
    at += 10;
  }
  const key = randomBytes(4);
  key.copy(out, at);
  at += 4;
  const k0 = key[0] as number;
  const k1 = key[1] as number;
  const k2 = key[2] as number;
  const k3 = key[3] as number;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    out[at + i] = (payload[i] as number) ^ k0;
    out[at + i + 1] = (payload[i + 1] as number) ^ k1;
    out[at + i + 2] = (payload[i + 2] as number) ^ k2;
    out[at + i + 3] = (payload[i + 3] as number) ^ k3;
  }
  for (; i < len; i++) out[at + i] = (payload[i] as number) ^ (key[i & 3] as number);
  return at + len;
}

/** A whole message as masked client frames, in one buffer: one frame, or frames of `fragment` payload bytes. */
export function encodeMessage(payload: Buffer, binary: boolean, fragment = 0): Buffer {
  const op = binary ? OP_BINARY : OP_TEXT;
  if (fragment <= 0 || payload.length <= fragment) {
    const out = Buffer.allocUnsafe(headerLength(payload.length) + payload.length);
    writeFrame(out, 0, op, true, payload);
    return out;
  }
  let total = 0;
  for (let at = 0; at < payload.length; at += fragment) {
    const n = Math.min(fragment, payload.length - at);
    total += headerLength(n) + n;
  }
  const out = Buffer.allocUnsafe(total);
  let w = 0;
  for (let at = 0; at < payload.length; at += fragment) {
    const end = Math.min(payload.length, at + fragment);
    w = writeFrame(out, w, at === 0 ? op : 0, end === payload.length, payload.subarray(at, end));
  }
  return out;
}

function closeFrame(code: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(code, 0);
  return encodeControl(OP_CLOSE, p);
}

function encodeControl(op: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(headerLength(payload.length) + payload.length);
  writeFrame(out, 0, op, true, payload);
  return out;
}

/**
 * Reads what the server sends and checks every data message against `expected` as it arrives:
 * the type (text/binary), the length, and every byte, compared per read with the same span of
 * `expected` (memcmp on views: nothing copied). Control frames go to `onControl`. The first
 * difference stops it: `error` says what and where, and nothing more is read.
 */
export class EchoReader {
  /** What was wrong with the echo, once something was. */
  error: string | undefined;
  /** Whole messages received, each equal to `expected`. */
  messages = 0;
  private readonly head = Buffer.alloc(14);
  private headHave = 0;
  private headNeed = 2;
  private inPayload = false;
  private remaining = 0;
  private opcode = 0;
  private fin = false;
  private inMessage = false;
  /** Bytes of the current message so far. */
  private got = 0;
  private control: Buffer[] = [];

  constructor(
    private readonly expected: Buffer,
    private readonly binary: boolean,
    private readonly onMessage: () => void,
    private readonly onControl: (opcode: number, payload: Buffer) => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.error === undefined) {
      if (!this.inPayload) {
        const n = Math.min(this.headNeed - this.headHave, chunk.length - i);
        chunk.copy(this.head, this.headHave, i, i + n);
        this.headHave += n;
        i += n;
        if (this.headHave === 2) {
          const len7 = (this.head[1] as number) & 0x7f;
          this.headNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
        }
        if (this.headHave === this.headNeed) this.header();
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - i);
      if (this.opcode >= OP_CLOSE) this.control.push(Buffer.from(chunk.subarray(i, i + n)));
      else this.compare(chunk, i, n);
      i += n;
      this.remaining -= n;
      if (this.remaining === 0 && this.error === undefined) this.frameEnd();
    }
  }

  private fail(why: string): void {
    this.error ??= why;
  }

  private header(): void {
    const b0 = this.head[0] as number;
    const b1 = this.head[1] as number;
    const len7 = b1 & 0x7f;
    const len = len7 === 126 ? this.head.readUInt16BE(2) : len7 === 127 ? Number(this.head.readBigUInt64BE(2)) : len7;
    this.headHave = 0;
    this.headNeed = 2;
    this.opcode = b0 & 0x0f;
    this.fin = (b0 & 0x80) !== 0;
    // RFC 6455 §5.1: a server never masks; §5.2: no extension was negotiated, so no RSV bit.
    if ((b1 & 0x80) !== 0) {
      this.fail('the server sent a masked frame');
      return;
    }
    if ((b0 & 0x70) !== 0) {
      this.fail(`the server set RSV bits (${(b0 >> 4) & 7}) with no extension negotiated`);
      return;
    }
    if (this.opcode >= OP_CLOSE) {
      this.control = [];
    } else if (this.opcode === 0) {
      if (!this.inMessage) {
        this.fail('a continuation frame with no message begun');
        return;
      }
    } else {
      if (this.opcode !== OP_TEXT && this.opcode !== OP_BINARY) {
        this.fail(`unknown opcode ${this.opcode}`);
        return;
      }
      if (this.inMessage) {
        this.fail('a new message before the previous one ended');
        return;
      }
      const want = this.binary ? OP_BINARY : OP_TEXT;
      if (this.opcode !== want) {
        this.fail(`expected a ${this.binary ? 'binary' : 'text'} message, got opcode ${this.opcode}`);
        return;
      }
      this.inMessage = true;
      this.got = 0;
    }
    this.remaining = len;
    this.inPayload = len > 0;
    if (len === 0) this.frameEnd();
  }

  private compare(chunk: Buffer, at: number, n: number): void {
    const e = this.expected;
    if (this.got + n > e.length) {
      this.fail(`the echo is longer than the ${e.length} bytes sent`);
      return;
    }
    const got = chunk.subarray(at, at + n);
    if (!got.equals(e.subarray(this.got, this.got + n))) {
      let k = 0;
      while (got[k] === e[this.got + k]) k++;
      this.fail(
        `the echo differs at byte ${this.got + k} of ${e.length}: 0x${(got[k] as number).toString(16)} instead of 0x${(e[this.got + k] as number).toString(16)}`,
      );
      return;
    }
    this.got += n;
  }

  private frameEnd(): void {
    this.inPayload = false;
    if (this.opcode >= OP_CLOSE) {
      const p = this.control.length === 1 ? (this.control[0] as Buffer) : Buffer.concat(this.control);
      this.control = [];
      this.onControl(this.opcode, p);
      return;
    }
    if (!this.fin) return;
    if (this.got !== this.expected.length) {
      this.fail(`the echo has ${this.got} bytes, ${this.expected.length} were sent`);
      return;
    }
    this.inMessage = false;
    this.got = 0;
    this.messages++;
    this.onMessage();
  }
}

export interface CaseOutcome {
  readonly ok: boolean;
  /** Why it failed (empty when ok). */
  readonly detail: string;
  /** From the first byte written to the last byte of the last echo read (what the table shows). */
  readonly echoMs: number;
  /** From the first byte written to the server's TCP close after the closing handshake (upstream's "duration"). */
  readonly totalMs: number;
}

interface Opened {
  readonly socket: net.Socket;
  /** Bytes after the handshake response (frames the server sent at once). */
  readonly rest: Buffer;
}

/** Connects and performs the opening handshake (RFC 6455 §4.1), checking Sec-WebSocket-Accept. */
export async function openWebSocket(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<Opened> {
  const socket = net.connect({ port, host, noDelay: true });
  const key = randomBytes(16).toString('base64');
  try {
    return await new Promise<Opened>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no handshake response within ${timeoutMs} ms`)), timeoutMs);
      let acc: Buffer = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        acc = acc.length === 0 ? d : Buffer.concat([acc, d]);
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.pause();
        clearTimeout(timer);
        const lines = acc.subarray(0, end).toString('latin1').split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) return reject(new Error(`handshake refused: ${lines[0]}`));
        const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.replace(/^[^:]*:\s*/, '');
        const want = createHash('sha1')
          .update(key + GUID)
          .digest('base64');
        if (accept?.trim() !== want) return reject(new Error('wrong Sec-WebSocket-Accept'));
        resolve({ socket, rest: acc.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new Error('connection closed during the handshake'));
      });
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Performs case `c` against the echo server on `port`: frames built, connection opened, then
 * `onOpen` (the caller samples the server's CPU there), then the clock starts with the first
 * write; it ends with the closing handshake. Never rejects: a failure is an outcome.
 */
export async function runCase9(c: Case9, port: number, onOpen: () => void = () => {}): Promise<CaseOutcome> {
  const payload = payloadOf(c);
  // One buffer per message sent: each with its own mask key, as a client must (RFC 6455 §5.3).
  const messages: Buffer[] = [];
  for (let i = 0; i < c.count; i++) messages.push(encodeMessage(payload, c.binary, c.fragment));

  let opened: Opened;
  try {
    opened = await openWebSocket(port);
  } catch (err) {
    return { ok: false, detail: `handshake: ${(err as Error).message}`, echoMs: Number.NaN, totalMs: Number.NaN };
  }
  const { socket } = opened;
  socket.removeAllListeners('close');
  socket.removeAllListeners('error');
  socket.on('error', () => {});

  let t0 = 0;
  let t1 = Number.NaN;
  let failure: string | undefined;
  let closeSent = false;
  let serverCode: number | null | undefined; // undefined: no close frame yet; null: one without a code
  let serverEnded = false;
  let droppedByUs = false;
  let sent = 0;

  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  const drop = (why: string | undefined) => {
    if (why !== undefined) failure ??= why;
    if (!socket.destroyed) {
      droppedByUs = true;
      socket.destroy();
    }
  };
  // After a close frame either way, the server has 3 s to finish the handshake and close the TCP
  // connection (upstream waits 1 s; more here for a loaded machine), else we drop it and fail the case.
  const sendClose = () => {
    if (closeSent || socket.destroyed) return;
    closeSent = true;
    socket.write(closeFrame(1000));
    const wait = setTimeout(() => drop('the server did not finish the closing handshake within 3 s'), 3000);
    socket.once('close', () => clearTimeout(wait));
  };
  const sendNext = () => {
    const bytes = messages[sent++] as Buffer;
    if (c.chop <= 0) {
      socket.write(bytes);
      return;
    }
    void (async () => {
      for (let at = 0; at < bytes.length; at += c.chop) {
        if (socket.destroyed) return;
        socket.write(bytes.subarray(at, at + c.chop));
        await turn();
      }
    })();
  };

  const reader = new EchoReader(
    payload,
    c.binary,
    () => {
      if (reader.messages < c.count) {
        sendNext();
        return;
      }
      t1 = performance.now();
      sendClose();
    },
    (op, p) => {
      if (op === OP_PING) {
        if (!closeSent && !socket.destroyed) socket.write(encodeControl(OP_PONG, p));
      } else if (op === OP_CLOSE && serverCode === undefined) {
        serverCode = p.length >= 2 ? p.readUInt16BE(0) : null;
        if (reader.messages < c.count) {
          const reason = p.length > 2 ? ` ${JSON.stringify(p.toString('utf8', 2))}` : '';
          failure ??= `the server closed (code ${serverCode}${reason}) after ${reader.messages} of ${c.count} echoes`;
        }
        // RFC 6455 §5.5.1: answer a close we did not start; then the server closes the TCP connection.
        sendClose();
      }
    },
  );
  socket.on('data', (d: Buffer) => {
    reader.push(d);
    if (reader.error !== undefined) drop(reader.error);
  });
  socket.once('end', () => {
    serverEnded = true;
    socket.end();
  });
  const limit = setTimeout(
    () => drop(`not finished within ${c.waitSecs} s (${reader.messages} of ${c.count} echoes)`),
    c.waitSecs * 1000,
  );

  onOpen();
  t0 = performance.now();
  sendNext();
  if (opened.rest.length > 0) socket.emit('data', opened.rest);
  socket.resume();
  const t2 = await closed;
  clearTimeout(limit);

  if (failure === undefined) {
    if (serverCode !== 1000) failure = `the server's close code was ${serverCode ?? 'missing'}, not 1000`;
    else if (droppedByUs || !serverEnded)
      failure = 'the server did not close the TCP connection after the closing handshake';
  }
  return failure === undefined
    ? { ok: true, detail: '', echoMs: t1 - t0, totalMs: t2 - t0 }
    : { ok: false, detail: failure, echoMs: Number.NaN, totalMs: Number.NaN };
}
