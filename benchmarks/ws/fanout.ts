/**
 * Fan-out load for benchmarks/ws: opens `--members` WebSockets to a broadcast server (every
 * message goes to every connection, the sender included); member 0 publishes `--size`-byte
 * binary messages, keeping `--window` of them in flight (the next goes when it receives its own
 * copy of one), for `--duration` seconds. Prints `ready` when the publishing starts, then one
 * JSON line: publishes, deliveries (messages received by all members within the run) and
 * deliveries per second.
 *
 *   node dist/benchmarks/ws/fanout.js --url ws://127.0.0.1:9001/ --members 1000 --duration 5
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { connectWebSocket, type WebSocket } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  url: { type: 'string', default: 'ws://127.0.0.1:9001/' },
  members: { type: 'string', default: '1000' },
  duration: { type: 'string', default: '5' },
  window: { type: 'string', default: '4' },
  size: { type: 'string', default: '32' },
});

const members = Number(values.members);
const window = Number(values.window);
const payload = Buffer.alloc(Number(values.size), 0x62);
let running = false;
let deliveries = 0;
let publishes = 0;

const sockets: WebSocket[] = [];
for (let i = 0; i < members; i += 100) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(100, members - i) }, () => connectWebSocket(values.url, { maxMessageSize: 1 << 24 })),
  );
  sockets.push(...batch);
}
const count = function (this: WebSocket): void {
  if (running) deliveries++;
};
for (const ws of sockets) ws.onMessage = count;
const publisher = sockets[0] as WebSocket;
publisher.onMessage = () => {
  if (!running) return;
  deliveries++;
  publishes++;
  publisher.send(payload);
};
// Let every member's handshake settle before measuring; `ready` tells the runner to sample the
// server's CPU time now.
await new Promise((r) => setTimeout(r, 500));
process.stdout.write('ready\n');
running = true;
const started = performance.now();
for (let i = 0; i < window; i++) publisher.send(payload);
await new Promise((r) => setTimeout(r, Number(values.duration) * 1000));
running = false;
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ members, publishes, deliveries, seconds, deliveriesPerSecond: deliveries / seconds })}\n`,
);
for (const ws of sockets) ws.terminate();
setTimeout(() => process.exit(0), 200).unref();
