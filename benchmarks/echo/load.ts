/**
 * Echo load generator: N connections, each keeping `window` frames of `size` bytes in flight
 * (2-byte length + payload), for `duration` seconds. Prints one JSON line:
 * `{ frames, seconds, framesPerSecond, bytes, errors }`.
 *
 *   node dist/benchmarks/echo/load.js --port 7000 --connections 50 --size 64 --window 16 --duration 5
 *
 * Runs in its own process so that the server under test keeps its core.
 */
import net from 'node:net';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', integer: [1, 65535] },
  connections: { type: 'string', default: '50', integer: [1, 100_000] },
  size: { type: 'string', default: '64', integer: [0, 65535] },
  window: { type: 'string', default: '16', integer: [1, 100_000] },
  duration: { type: 'string', default: '5', number: [0.1, 86_400] },
});
if (values.port === undefined) throw new Error('--port is required');
const port = values.port;
const connections = values.connections;
const size = values.size;
const window = values.window;
const durationMs = values.duration * 1000;

const frameLen = 2 + size;
const one = Buffer.alloc(frameLen, 0x61);
one.writeUInt16BE(size, 0);
const batch = Buffer.concat(Array.from({ length: window }, () => one));

let frames = 0;
let errors = 0;
let sending = true;
let open = 0;

function run(): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: values.host, port, noDelay: true });
    let received = 0;
    let inFlight = 0;
    s.on('connect', () => {
      open++;
      inFlight = window;
      s.write(batch);
    });
    s.on('data', (d: Buffer) => {
      received += d.length;
      const done = Math.floor(received / frameLen);
      if (done === 0) return;
      received -= done * frameLen;
      frames += done;
      inFlight -= done;
      if (sending) {
        const k = window - inFlight;
        inFlight += k;
        s.write(k === window ? batch : batch.subarray(0, k * frameLen));
      } else if (inFlight === 0) {
        s.end();
      }
    });
    s.on('error', () => {
      errors++;
    });
    s.on('close', () => {
      open--;
      resolve();
    });
  });
}

const runs = Array.from({ length: connections }, run);
const t0 = performance.now();
let measured = 0;
setTimeout(() => {
  sending = false;
  measured = frames;
}, durationMs);
await Promise.all(runs);
const seconds = durationMs / 1000;
process.stdout.write(
  `${JSON.stringify({ frames: measured, seconds, framesPerSecond: Math.round(measured / seconds), bytes: measured * frameLen, errors, elapsed: (performance.now() - t0) / 1000, open })}\n`,
);
