/**
 * A client process of the connections benchmark (run.ts forks it, with an IPC channel; it is
 * never the server's process). It opens connections from its own loopback source addresses at a
 * controlled rate, sends one request on each, and holds them: it answers the server's pings
 * (length-field "p" → "o"; WebSocket ping → pong) and, for HTTP, which has no server-initiated
 * message, sends one keep-alive request per connection every `heartbeat` ms. Commands arrive as
 * IPC messages, answers go back the same way:
 *   { cmd: 'open', … }     → { ev: 'opened', ok, failed, ms, errors }
 *   { cmd: 'stats' }       → { ev: 'stats', open, pings, beats, closedByPeer, errors }
 *   { cmd: 'latency', … }  → { ev: 'latency', total: ms[], request: ms[], failed }
 *   { cmd: 'close' }       → every connection reset (RST: no TIME_WAIT to exhaust the ports of a
 *                            source address before the next run), { ev: 'closed' }, exit
 * It exits when its parent goes away (the IPC channel closes).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Protocol } from './options.js';

export interface OpenCommand {
  readonly cmd: 'open';
  readonly port: number;
  readonly protocol: Protocol;
  readonly addresses: readonly string[];
  readonly count: number;
  /** New connections per second from this process; 0: bounded by `concurrency` only. */
  readonly rate: number;
  /** Connections opened but not yet answered, at most. */
  readonly concurrency: number;
  /** HTTP only: ms between keep-alive requests on each held connection; 0: none. */
  readonly heartbeat: number;
}
export interface LatencyCommand {
  readonly cmd: 'latency';
  readonly port: number;
  readonly protocol: Protocol;
  readonly address: string;
  readonly samples: number;
}
export type ClientCommand = OpenCommand | LatencyCommand | { readonly cmd: 'stats' } | { readonly cmd: 'close' };

const HTTP_GET = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n', 'latin1');
const WS_UPGRADE = Buffer.from(
  'GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'latin1',
);
/** A client frame must be masked (RFC 6455 §5.3); a zero key leaves the payload as it is. */
const WS_MESSAGE = Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x71]); // text "q"
const WS_PONG = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);
const LF_REQUEST = Buffer.from([0, 0, 0, 1, 0x71]); // "q", echoed
const LF_PONG = Buffer.from([0, 0, 0, 1, 0x6f]); // "o"
const EMPTY = Buffer.alloc(0);

/** One held connection: the bytes of an incomplete message, and what it is waiting for. */
class Conn {
  pending: Buffer = EMPTY;
  /** Answers received (the first one establishes it). */
  answers = 0;
  /** WebSocket: upgraded. */
  upgraded = false;
  startedAt = 0;
  connectedAt = 0;
  constructor(
    readonly socket: net.Socket,
    readonly protocol: Protocol,
  ) {}
}

const stats = { pings: 0, beats: 0, closedByPeer: 0, errors: {} as Record<string, number> };
const held: Conn[] = [];
let closing = false;

function countError(err: Error): void {
  const code = (err as NodeJS.ErrnoException).code ?? err.message;
  stats.errors[code] = (stats.errors[code] ?? 0) + 1;
}

/** Consumes what arrived; calls `answered` for each answer to a request (not for pings). */
function onData(c: Conn, data: Buffer, answered: () => void): void {
  let buf = c.pending.length === 0 ? data : Buffer.concat([c.pending, data]);
  for (;;) {
    if (c.protocol === 'lf') {
      if (buf.length < 4) break;
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      if (buf[4] === 0x70) {
        stats.pings++;
        c.socket.write(LF_PONG);
      } else answered();
      buf = buf.subarray(4 + len);
    } else if (c.protocol === 'http' || !c.upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) break;
      const head = buf.toString('latin1', 0, end);
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const total = end + 4 + (m === null ? 0 : Number(m[1]));
      if (buf.length < total) break;
      if (c.protocol === 'ws') {
        if (!head.startsWith('HTTP/1.1 101')) throw new Error(`no upgrade: ${head.split('\r\n')[0]}`);
        c.upgraded = true;
        c.socket.write(WS_MESSAGE);
      } else answered();
      buf = buf.subarray(total);
    } else {
      if (buf.length < 2) break;
      let len = (buf[1] as number) & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) throw new Error('unexpected 64-bit WebSocket frame');
      if (buf.length < at + len) break;
      const opcode = (buf[0] as number) & 0x0f;
      if (opcode === 0x9) {
        stats.pings++;
        c.socket.write(WS_PONG);
      } else if (opcode === 0x8) {
        c.socket.destroy(); // a close frame: the server is leaving
      } else answered();
      buf = buf.subarray(at + len);
    }
  }
  // Keep a copy of a partial message only: `data` is Node's, reused by nobody, but small slices of
  // it would pin the whole chunk.
  c.pending = buf.length === 0 ? EMPTY : Buffer.from(buf);
}

/**
 * The local port of the next connection from `address`, chosen here rather than by the kernel:
 * bind(2) to port 0 searches the range for a free port, a cost that grows with the ports in use
 * (inet_csk_find_open_port), and at ~10k connections per address that search took most of the
 * machine. Ports come from the ephemeral range, so that nothing else that binds a fixed port is
 * disturbed; each source address has the whole range to itself.
 */
const PORT_RANGE = ((): [number, number] => {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && hi !== undefined && hi > lo) return [lo, hi];
  } catch {
    // not Linux
  }
  return [32768, 60999];
})();
const nextPorts = new Map<string, number>();
function nextPort(address: string): number {
  const [lo, hi] = PORT_RANGE;
  const p = nextPorts.get(address) ?? lo + Math.floor(Math.random() * (hi - lo));
  nextPorts.set(address, p >= hi ? lo : p + 1);
  return p;
}

function firstRequest(c: Conn): void {
  c.socket.write(c.protocol === 'lf' ? LF_REQUEST : c.protocol === 'ws' ? WS_UPGRADE : HTTP_GET);
}

function reply(msg: unknown): void {
  process.send?.(msg);
}

function open(cmd: OpenCommand): void {
  const t0 = performance.now();
  let started = 0;
  let inFlight = 0;
  let ok = 0;
  let failed = 0;
  let done = false;
  const waiting = new Set<Conn>();
  const finish = () => {
    if (done || ok + failed < cmd.count) return;
    done = true;
    clearInterval(pump);
    clearInterval(sweep);
    reply({ ev: 'opened', ok, failed, ms: performance.now() - t0, errors: stats.errors });
  };
  // From the start: the first connections must not wait for the last to be opened.
  if (cmd.heartbeat > 0) startHeartbeats(cmd.heartbeat);
  const start = (retries = 0) => {
    const address = cmd.addresses[started % cmd.addresses.length] as string;
    if (retries === 0) {
      started++;
      inFlight++;
    }
    const socket = net.connect({
      host: '127.0.0.1',
      port: cmd.port,
      localAddress: address,
      localPort: nextPort(address),
      noDelay: true,
    });
    const c = new Conn(socket, cmd.protocol);
    c.startedAt = performance.now();
    waiting.add(c);
    let established = false;
    socket.on('connect', () => firstRequest(c));
    socket.on('data', (d: Buffer) => {
      try {
        onData(c, d, () => {
          c.answers++;
          if (established) {
            stats.beats++;
            return;
          }
          established = true;
          waiting.delete(c);
          inFlight--;
          ok++;
          held.push(c);
          finish();
        });
      } catch (err) {
        countError(err as Error);
        socket.destroy();
      }
    });
    let portTaken = false;
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A port some other socket holds on this address (a listener on 0.0.0.0, a connection in
      // TIME_WAIT to our server): the next one.
      if (!established && (err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL') && retries < 100) {
        portTaken = true;
        return;
      }
      countError(err);
    });
    socket.on('close', () => {
      if (closing) return;
      if (established) {
        stats.closedByPeer++;
        return;
      }
      if (!waiting.delete(c)) return;
      if (portTaken) {
        start(retries + 1);
        return;
      }
      inFlight--;
      failed++;
      finish();
    });
  };
  const perSecond = cmd.rate;
  const pump = setInterval(() => {
    const allowed = perSecond > 0 ? Math.floor((perSecond * (performance.now() - t0)) / 1000) + 1 : cmd.count;
    while (started < cmd.count && started < allowed && inFlight < cmd.concurrency) start();
  }, 5);
  // A connection that was never answered (the server stopped accepting, a SYN dropped twice)
  // fails after 20 s instead of holding the run.
  const sweep = setInterval(() => {
    const old = performance.now() - 20_000;
    for (const c of waiting) {
      if (c.startedAt < old) {
        stats.errors['no answer in 20 s'] = (stats.errors['no answer in 20 s'] ?? 0) + 1;
        c.socket.destroy();
      }
    }
  }, 1000);
  if (cmd.count === 0) finish();
}

/** HTTP's heartbeat: each held connection sends a request every `ms`, spread over the interval. */
function startHeartbeats(ms: number): void {
  const tickMs = 250;
  let cursor = 0;
  setInterval(() => {
    const n = Math.ceil((held.length * tickMs) / ms);
    for (let i = 0; i < n && held.length > 0; i++) {
      const c = held[cursor++ % held.length] as Conn;
      if (!c.socket.destroyed) c.socket.write(HTTP_GET);
    }
  }, tickMs).unref();
}

/** Fresh connections one after another: connect, one request, its answer, reset. */
async function latency(cmd: LatencyCommand): Promise<void> {
  const total: number[] = [];
  const request: number[] = [];
  let failed = 0;
  for (let i = 0; i < cmd.samples; i++) {
    await new Promise<void>((resolve) => {
      const t0 = performance.now();
      const socket = net.connect({ host: '127.0.0.1', port: cmd.port, localAddress: cmd.address, noDelay: true });
      const c = new Conn(socket, cmd.protocol);
      let t1 = t0;
      let answered = false;
      const timer = setTimeout(() => socket.destroy(), 10_000);
      socket.on('connect', () => {
        t1 = performance.now();
        firstRequest(c);
      });
      socket.on('data', (d: Buffer) => {
        try {
          onData(c, d, () => {
            if (answered) return;
            answered = true;
            const t2 = performance.now();
            total.push(t2 - t0);
            request.push(t2 - t1);
            socket.resetAndDestroy();
          });
        } catch {
          socket.destroy();
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        if (!answered) failed++;
        resolve();
      });
    });
  }
  reply({ ev: 'latency', total, request, failed });
}

process.on('message', (msg: ClientCommand) => {
  if (msg.cmd === 'open') open(msg);
  else if (msg.cmd === 'latency') void latency(msg);
  else if (msg.cmd === 'stats') {
    const openNow = held.reduce((n, c) => n + (c.socket.destroyed ? 0 : 1), 0);
    reply({ ev: 'stats', open: openNow, ...stats });
  } else if (msg.cmd === 'close') {
    closing = true;
    for (const c of held) c.socket.resetAndDestroy();
    reply({ ev: 'closed' });
    setTimeout(() => process.exit(0), 50);
  }
});
process.on('disconnect', () => process.exit(0));
