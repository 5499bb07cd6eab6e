/**
 * Shared pieces of the integration suite: the transport matrix, a seeded PRNG, the test echo
 * pipeline, and small socket helpers. The clients use node:net — they stand for the outside
 * world; only the server under test runs on multireactor's loop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ChannelInboundHandler,
  type CloseReason,
  type HandlerContext,
  LengthFieldFrameDecoder,
  Pipeline,
  type PollerKind,
  Server,
  type ServerHandle,
  type ServerOptions,
} from '../../src/index.js';
import { prng } from '../support.js';

export { prng };

/** Every poller × trigger combination: the same suite runs on each (Netty's SocketEchoTest). */
export const TRANSPORTS: ReadonlyArray<{ readonly poller: PollerKind; readonly trigger: 'level' | 'edge' }> = [
  { poller: 'epoll', trigger: 'level' },
  { poller: 'epoll', trigger: 'edge' },
  { poller: 'poll', trigger: 'level' },
  { poller: 'poll', trigger: 'edge' },
];

/** A seed from the environment (MULTIREACTOR_SEED) or the clock, printed by the caller on failure. */
export function testSeed(): number {
  const env = process.env.MULTIREACTOR_SEED;
  return env !== undefined && env !== '' ? Number(env) : (Date.now() ^ (process.pid << 8)) >>> 0;
}

/** Integer in [lo, hi], log-uniform: as many 1–16 B frames as 1–16 KiB ones. */
export function logUniform(rand: () => number, lo: number, hi: number): number {
  return Math.min(hi, Math.floor(Math.exp(Math.log(lo) + rand() * (Math.log(hi + 1) - Math.log(lo)))));
}

/** One echo frame: 2-byte big-endian length, then payload bytes derived from `tag`. */
export function frame(length: number, tag: number): Buffer {
  const b = Buffer.allocUnsafe(2 + length);
  b.writeUInt16BE(length, 0);
  for (let i = 0; i < length; i++) b[2 + i] = (tag * 31 + i) & 0xff;
  return b;
}

/** `count` frames of random size in [minSize, maxSize], concatenated. */
export function frames(rand: () => number, count: number, minSize = 1, maxSize = 16 * 1024): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(frame(logUniform(rand, minSize, maxSize), i + Math.floor(rand() * 1000)));
  return Buffer.concat(parts);
}

/** Cuts `data` at random points (1 to 4 KiB pieces, sometimes 1 byte). */
export function randomSplits(rand: () => number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const n = rand() < 0.1 ? 1 : 1 + Math.floor(rand() * 4096);
    out.push(data.subarray(at, Math.min(data.length, at + n)));
    at += n;
  }
  return out;
}

/** Writes pieces one by one, yielding to the event loop now and then so that they leave as separate segments. */
export async function writeInPieces(socket: net.Socket, pieces: readonly Buffer[], rand: () => number): Promise<void> {
  for (const p of pieces) {
    if (!socket.write(p)) await new Promise((resolve) => socket.once('drain', resolve));
    if (rand() < 0.2) await nextTurn();
  }
}

/** Connects to 127.0.0.1:port. */
export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Reads until `n` bytes arrived (resolves early with what came if the peer ends first). */
export function readBytes(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) finish();
    };
    const finish = () => {
      socket.off('data', onData);
      socket.off('end', finish);
      socket.off('error', onError);
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      socket.off('data', onData);
      socket.off('end', finish);
      reject(err);
    };
    socket.on('data', onData);
    socket.once('end', finish);
    socket.once('error', onError);
    socket.resume();
  });
}

/** Resolves when the peer's FIN arrived ('end'), rejects on error. */
export function ended(socket: net.Socket): Promise<void> {
  if (socket.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
}

/** Resolves when the socket is fully closed (its fd released). */
export function closed(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Destroys sockets and waits until their descriptors are gone. */
export async function destroyAll(sockets: Iterable<net.Socket>): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const s of sockets) {
    s.destroy();
    waits.push(closed(s));
  }
  await Promise.all(waits);
}

/** Descriptors this process holds now. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Polls `cond` every few ms until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What the echo pipeline observed, shared by every connection of one server. */
export interface EchoProbe {
  /** Largest pendingWriteBytes seen right after a write, per connection id. */
  peakPending: Map<number, number>;
  /** Close reasons seen by onInactive, in order. */
  inactive: CloseReason[];
  inputShutdowns: number;
}

export function newProbe(): EchoProbe {
  return { peakPending: new Map(), inactive: [], inputShutdowns: 0 };
}

class ProbingEcho extends ChannelInboundHandler<Buffer> {
  constructor(
    private readonly probe: EchoProbe,
    private readonly farewell: Buffer | undefined,
  ) {
    super();
  }

  override onRead(ctx: HandlerContext, msg: Buffer): void {
    ctx.write(msg);
    const ch = ctx.channel;
    const peak = this.probe.peakPending.get(ch.id) ?? 0;
    if (ch.pendingWriteBytes > peak) this.probe.peakPending.set(ch.id, ch.pendingWriteBytes);
  }

  override onInputShutdown(ctx: HandlerContext): void {
    this.probe.inputShutdowns++;
    // Half-open: the peer is done sending, we may still write — answer, then close.
    if (this.farewell !== undefined) ctx.writeAndFlush(this.farewell);
    ctx.close();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.probe.inactive.push(reason);
    ctx.fireInactive(reason);
  }
}

/** The echo protocol (2-byte length + payload, echoed as it came), with a probe. */
export function echoPipeline(probe: EchoProbe = newProbe(), farewell?: Buffer): () => Pipeline {
  return () =>
    new Pipeline()
      .addLast('frames', new LengthFieldFrameDecoder({ lengthFieldLength: 2, maxFrameLength: 2 + 0xffff }))
      .addLast('echo', new ProbingEcho(probe, farewell));
}

/** The compiled echo example. */
export const ECHO_EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'echo-server.js');

export interface StartedProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
}

/**
 * Spawns `command` (default: node running `args`) and resolves once it printed
 * `listening on HOST:PORT`; rejects if it exits first. The caller kills it.
 */
export async function startListening(
  args: readonly string[],
  command: string = process.execPath,
  options: { stdin?: 'pipe' | 'ignore'; env?: NodeJS.ProcessEnv; fds?: readonly number[] } = {},
): Promise<StartedProcess> {
  const child = spawn(command, args, {
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe', ...(options.fds ?? [])],
    env: options.env ?? process.env,
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (.+):(\d+)$/m.exec(out);
      if (m) resolve(Number(m[2]));
    });
    child.once('exit', (code, signal) => reject(new Error(`process exited early (${code ?? signal}): ${err}`)));
  });
  return { child, port, stderr: () => err };
}

/**
 * What one integration test opened: servers and client sockets, all closed by `teardown()` (call
 * it from afterEach, so that a failing test leaves nothing behind).
 */
export class Opened {
  private readonly servers: ServerHandle[] = [];
  private readonly sockets = new Set<net.Socket>();

  /** Server.listen in this process (`workers: 0` unless given), remembered for teardown. */
  async listen(options: ServerOptions): Promise<ServerHandle> {
    const server = await Server.listen({ workers: 0, ...options });
    this.servers.push(server);
    return server;
  }

  /** A client connection (errors swallowed: tests look at what they expect), remembered for teardown. */
  async client(port: number, host = '127.0.0.1'): Promise<net.Socket> {
    const s = await connect(port, host);
    this.sockets.add(s);
    s.on('error', () => {});
    return s;
  }

  /** Forgets a server the test closes itself. */
  forget(server: ServerHandle): void {
    const i = this.servers.indexOf(server);
    if (i >= 0) this.servers.splice(i, 1);
  }

  /** Destroys every client, aborts every server, and waits until all descriptors are released. */
  async teardown(): Promise<void> {
    await destroyAll(this.sockets);
    this.sockets.clear();
    await Promise.all(this.servers.splice(0).map((s) => s.close({ timeout: 0 })));
  }
}

/** Feeds each JSON line a socket receives to `handle`, with `reply(value)` writing one line back. */
export function jsonLines(
  socket: net.Socket,
  handle: (msg: Record<string, unknown>, reply: (value: unknown) => void) => void,
): void {
  let buf = '';
  const reply = (value: unknown) => socket.write(`${JSON.stringify(value)}\n`);
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.length > 0) handle(JSON.parse(line) as Record<string, unknown>, reply);
    }
  });
}

export interface Exited {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit, in ms. */
  readonly ms: number;
}

/**
 * Runs node with `args` until it exits by itself (SIGKILL after `limitMs`, reported as a null
 * code); the child is pushed to `children` so that a failing test's teardown can kill it.
 */
export async function runToExit(args: readonly string[], children: ChildProcess[], limitMs = 15_000): Promise<Exited> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

/** Reads responses off a socket: status, headers (lower-case names), body (Content-Length or chunked). */
export class ResponseReader {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async more(): Promise<void> {
    if (this.ended) throw new Error(`connection ended; unparsed: ${JSON.stringify(this.buf.toString('latin1'))}`);
    await new Promise<void>((r) => this.waiters.push(r));
  }

  /** The next response. */
  async next(): Promise<{ status: number; headers: Record<string, string>; body: string; raw: string }> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buf.subarray(0, end).toString('latin1');
        const [statusLine, ...lines] = head.split('\r\n');
        const status = Number(statusLine?.split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        const bodyStart = end + 4;
        if (headers['content-length'] !== undefined) {
          const n = Number(headers['content-length']);
          if (this.buf.length >= bodyStart + n) {
            const body = this.buf.subarray(bodyStart, bodyStart + n).toString();
            const raw = this.buf.subarray(0, bodyStart + n).toString('latin1');
            this.buf = this.buf.subarray(bodyStart + n);
            return { status, headers, body, raw };
          }
        } else if (status === 100 || status === 101 || status === 204 || status === 304) {
          const raw = this.buf.subarray(0, bodyStart).toString('latin1');
          this.buf = this.buf.subarray(bodyStart);
          return { status, headers, body: '', raw };
        }
      }
      await this.more();
    }
  }

  /** The next `n` raw bytes (after an upgrade the stream is not HTTP any more). */
  async bytes(n: number): Promise<string> {
    while (this.buf.length < n) await this.more();
    const out = this.buf.subarray(0, n).toString('latin1');
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Bytes left after the parsed responses, once the peer closed. */
  async rest(): Promise<string> {
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
    return this.buf.toString('latin1');
  }
}
