/**
 * Fan-out load for benchmarks/pubsub: `--members` WebSockets to each server of `--url` (a
 * comma-separated list), all members of one topic, and one publisher on the first server sending
 * `--size`-byte text messages. Each message carries its number and the moment it was sent (this
 * process's clock, the same for every member), so each delivery gives a latency from publish to
 * delivery. Closed loop (the default): `--window` messages are in flight, and the next one goes
 * when one has reached every member of every server — throughput is what the slowest path
 * sustains, and no queue grows without bound; latency then includes the queueing of a saturated
 * path. Open loop (`--rate N`): N messages a second, whatever happens — latency at a load the
 * servers keep up with. A message not complete within 5 s is given up (counted `lost`).
 *
 * Before measuring, the publisher sends probes until every member has heard one: subscriptions
 * are live on every worker and server. Prints `ready`, then one JSON line: messages, deliveries,
 * deliveries per second, latency percentiles in µs, lost.
 *
 * `--protocol socketio` speaks socket.io 4 over its WebSocket transport (Engine.IO 4 packets:
 * `0` open, `40` connect, `42["m",…]` events, `2`/`3` ping/pong) with the same client.
 *
 *   node dist/benchmarks/pubsub/load.js --url ws://127.0.0.1:9121/,ws://127.0.0.1:9122/ --members 1000 --duration 5
 */
import type { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { Histogram } from '../../src/client/histogram.js';
import { connectWebSocket, type WebSocket } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  url: { type: 'string', default: 'ws://127.0.0.1:9121/' },
  members: { type: 'string', default: '1000', integer: [1, 100_000] },
  duration: { type: 'string', default: '5', number: [0.1, 3600] },
  window: { type: 'string', default: '8', integer: [1, 10_000] },
  rate: { type: 'string', default: '0', integer: [0, 1_000_000] },
  size: { type: 'string', default: '64', integer: [26, 65_536] },
  protocol: { type: 'string', default: 'multireactor', choices: ['multireactor', 'socketio'] },
});

const urls = values.url.split(',');
const socketio = values.protocol === 'socketio';
const total = urls.length * values.members;
const GIVE_UP_MS = 5000;

/** The URL of a connection with `role` (socket.io's Engine.IO endpoint with `--protocol socketio`). */
function target(base: string, role: string): string {
  const u = new URL(base);
  if (socketio) {
    u.pathname = '/socket.io/';
    u.search = `?EIO=4&transport=websocket&role=${role}`;
  } else u.search = `?role=${role}`;
  return u.toString();
}

/**
 * Opens a WebSocket; with socket.io, through its connect handshake. `onMessage(data, at)`: a
 * message, whose payload starts at `data[at]` (after socket.io's `42["m","`).
 */
async function open(url: string, onMessage: (data: Buffer, at: number) => void): Promise<WebSocket> {
  const ws = await connectWebSocket(url, { maxMessageSize: 1 << 20, copyMessages: false });
  if (!socketio) {
    ws.onMessage = (data) => onMessage(data, 0);
    return ws;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket.io handshake timed out')), 10_000);
    ws.onMessage = (data) => {
      const t = data.toString();
      if (t.startsWith('0')) ws.send('40');
      else if (t.startsWith('40')) {
        clearTimeout(timer);
        ws.onMessage = (d) => {
          // 0x32 '2': a ping (answered); 0x34 0x32 '42': an event.
          if (d.length === 1 && d[0] === 0x32) ws.send('3');
          else if (d[0] === 0x34 && d[1] === 0x32) onMessage(d, 8);
        };
        resolve();
      }
    };
  });
  return ws;
}

function send(ws: WebSocket, text: string): void {
  ws.send(socketio ? `42["m","${text}"]` : text);
}

/**
 * `SEQ TIME xxx…`, `size` bytes of ASCII (nothing JSON would escape): the message's number in 10
 * digits and the moment it was sent in µs of this process's clock in 14, both read back from the
 * bytes by each member without making a string.
 */
function message(seq: number): string {
  const head = `${String(seq).padStart(10, '0')} ${String(Math.round(performance.now() * 1000)).padStart(14, '0')} `;
  return head + 'x'.repeat(Math.max(0, values.size - head.length));
}

/** The decimal number in `d[from, to)`. */
function digits(d: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + ((d[i] as number) - 0x30);
  return n;
}

/** A probe starts with `p`. */
const P = 0x70;

const latency = new Histogram();
let measuring = false;
let probesHeard = 0;
const heardProbe: boolean[] = [];
/** Deliveries per message in flight. */
const pending = new Map<number, { count: number; sentAt: number }>();
let deliveries = 0;
let completed = 0;
let lost = 0;
let next = 0;

function delivered(member: number, d: Buffer, at: number): void {
  if (d[at] === P) {
    if (!heardProbe[member]) {
      heardProbe[member] = true;
      probesHeard++;
    }
    return;
  }
  if (!measuring) return;
  const seq = digits(d, at, at + 10);
  deliveries++;
  latency.record(performance.now() * 1000 - digits(d, at + 11, at + 25));
  const p = pending.get(seq);
  if (p === undefined) return; // given up already
  if (++p.count === total) {
    pending.delete(seq);
    completed++;
    if (values.rate === 0) publishNext();
  }
}

let publisher: WebSocket;

function publishNext(): void {
  if (!measuring) return;
  const seq = next++;
  pending.set(seq, { count: 0, sentAt: performance.now() });
  send(publisher, message(seq));
}

// Members first, 100 at a time per server; then the publisher.
const members: WebSocket[] = [];
for (const base of urls) {
  for (let i = 0; i < values.members; i += 100) {
    const first = members.length;
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, values.members - i) }, (_, k) =>
        open(target(base, 'member'), (data, at) => delivered(first + k, data, at)),
      ),
    );
    members.push(...batch);
  }
}
publisher = await open(target(urls[0] as string, 'publisher'), () => {});

// Probes until every member heard one: every worker's and server's subscription is live.
const probeUntil = performance.now() + 30_000;
while (probesHeard < total) {
  if (performance.now() > probeUntil) throw new Error(`only ${probesHeard} of ${total} members heard a probe`);
  send(publisher, `probe ${'x'.repeat(values.size)}`.slice(0, values.size));
  await new Promise((r) => setTimeout(r, 50));
}
await new Promise((r) => setTimeout(r, 300)); // the last probes drain

process.stdout.write('ready\n');
measuring = true;
const started = performance.now();
let pacer: NodeJS.Timeout | undefined;
if (values.rate === 0) for (let i = 0; i < values.window; i++) publishNext();
else {
  // Open loop: as many as are due every 5 ms.
  pacer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * values.rate);
    while (next < due) publishNext();
  }, 5);
}
// Messages stuck for GIVE_UP_MS (a delivery lost on the way) are given up, so the window moves on.
const sweeper = setInterval(() => {
  const now = performance.now();
  for (const [seq, p] of pending) {
    if (now - p.sentAt > GIVE_UP_MS) {
      pending.delete(seq);
      lost++;
      if (values.rate === 0) publishNext();
    }
  }
}, 100);
await new Promise((r) => setTimeout(r, values.duration * 1000));
measuring = false;
clearInterval(sweeper);
clearInterval(pacer);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({
    servers: urls.length,
    members: total,
    messages: completed,
    deliveries,
    seconds,
    deliveriesPerSecond: deliveries / seconds,
    messagesPerSecond: completed / seconds,
    p50us: latency.percentile(50),
    p99us: latency.percentile(99),
    maxUs: latency.percentile(100),
    lost,
  })}\n`,
);
for (const ws of [...members, publisher]) ws.terminate();
setTimeout(() => process.exit(0), 200).unref();
