/**
 * Open-loop HTTP load for the offload benchmark: `GET /plaintext` at a fixed rate over some
 * connections, and `GET /hash?rounds=N` at its own fixed rate over others. Requests are sent when
 * they are due whether or not earlier answers came back (HTTP/1.1 pipelining), so a stalled server
 * shows up as latency, not as fewer requests — there is no coordinated omission to correct, and
 * latency is measured from the moment each request was written (the generator's own 1 ms timer
 * granularity is not counted against the server). Prints one JSON line with the percentiles.
 *
 *   node dist/benchmarks/offload/load.js --port 19080 --plain-rate 4000 --plain-connections 16 \
 *        --hash-rate 40 --hash-connections 4 --rounds 10000 --duration 5 --warmup 1
 *
 * Runs in its own process, so the server under test keeps its core (node:net clients are the
 * outside world here; only the server is multireactor).
 */
import net from 'node:net';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', integer: [1, 65535] },
  'plain-rate': { type: 'string', default: '4000', number: [0, 1_000_000] },
  'plain-connections': { type: 'string', default: '16', integer: [0, 10_000] },
  'hash-rate': { type: 'string', default: '40', number: [0, 1_000_000] },
  'hash-connections': { type: 'string', default: '4', integer: [0, 10_000] },
  rounds: { type: 'string', default: '10000', integer: [1, 1_000_000] },
  duration: { type: 'string', default: '5', number: [0.1, 86_400] },
  warmup: { type: 'string', default: '1', number: [0, 86_400] },
});
if (values.port === undefined) throw new Error('--port is required');
const port = values.port;

/** Latencies and answers of one request class. */
interface Kind {
  readonly name: string;
  readonly rate: number;
  readonly conns: Conn[];
  readonly request: (i: number) => Buffer;
  sent: number;
  answered: number;
  /** Latencies in µs of requests due after the warm-up. */
  readonly latencies: number[];
  readonly status: Record<string, number>;
}

interface Conn {
  readonly socket: net.Socket;
  /** When the requests sent and not yet answered were written (ms, performance.now()), in order. */
  readonly sentAt: number[];
  buf: Buffer;
}

const warmupEnd = values.warmup * 1000;
const durationMs = warmupEnd + values.duration * 1000;
const PLAIN = Buffer.from('GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n');
/** When the load started (performance.now()). */
let t0 = 0;

function open(kind: () => Kind): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: values.host, port, noDelay: true });
    const c: Conn = { socket, sentAt: [], buf: Buffer.alloc(0) };
    socket.once('connect', () => resolve(c));
    socket.once('error', reject);
    socket.on('data', (d: Buffer) => onData(kind(), c, d));
  });
}

/** Parses every complete response (status line, Content-Length body) and records its latency. */
function onData(kind: Kind, c: Conn, d: Buffer): void {
  c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
  const now = performance.now();
  for (;;) {
    const end = c.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = c.buf.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (c.buf.length < end + 4 + length) return;
    c.buf = c.buf.subarray(end + 4 + length);
    const status = head.slice(9, 12);
    kind.status[status] = (kind.status[status] ?? 0) + 1;
    kind.answered++;
    const sent = c.sentAt.shift() as number;
    if (sent >= t0 + warmupEnd) kind.latencies.push((now - sent) * 1000);
  }
}

function makeKind(name: string, rate: number, request: (i: number) => Buffer): Kind {
  return { name, rate, conns: [], request, sent: 0, answered: 0, latencies: [], status: {} };
}

const plain = makeKind('plaintext', values['plain-rate'], () => PLAIN);
const hash = makeKind('hash', values['hash-rate'], (i) =>
  Buffer.from(`GET /hash?rounds=${values.rounds}&password=p${i} HTTP/1.1\r\nHost: bench\r\n\r\n`),
);
const kinds = [plain, hash].filter((k) => k.rate > 0);
for (const [kind, n] of [
  [plain, values['plain-connections']],
  [hash, values['hash-connections']],
] as const) {
  if (kind.rate > 0) for (let i = 0; i < n; i++) kind.conns.push(await open(() => kind));
}

/** Sends what is due by now (round-robin over each class's connections). */
function tick(): void {
  const now = performance.now();
  const elapsed = Math.min(now - t0, durationMs);
  for (const k of kinds) {
    const due = Math.floor((elapsed * k.rate) / 1000);
    while (k.sent < due) {
      const c = k.conns[k.sent % k.conns.length] as Conn;
      c.sentAt.push(now);
      c.socket.write(k.request(k.sent));
      k.sent++;
    }
  }
}

t0 = performance.now();
const timer = setInterval(tick, 1);
await new Promise((r) => setTimeout(r, durationMs));
clearInterval(timer);
tick();
// Let the answers owed arrive (bounded), then report.
const until = performance.now() + 10_000;
while (kinds.some((k) => k.answered < k.sent) && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
for (const k of kinds) for (const c of k.conns) c.socket.destroy();

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const report: Record<string, unknown> = { seconds: values.duration };
for (const k of kinds) {
  const sorted = Float64Array.from(k.latencies).sort();
  report[k.name] = {
    sent: k.sent,
    answered: k.answered,
    status: k.status,
    measured: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1],
  };
}
console.log(JSON.stringify(report));
