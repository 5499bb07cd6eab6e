/**
 * Idle WebSockets for benchmarks/ws: opens `--count` connections to 127.0.0.1:`--port` (raw
 * node:net sockets, 200 handshakes at a time), checks each got its 101, prints `open N` and then
 * holds them, silent, until its standard input closes. Source addresses rotate over 127.0.0.2–9,
 * clear of the ephemeral ports that other loopback traffic of 127.0.0.1 may have used up.
 *
 *   node dist/benchmarks/ws/idle-clients.js --port 9001 --count 10000
 */
import net from 'node:net';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  port: { type: 'string', default: '9001' },
  count: { type: 'string', default: '10000' },
});

const port = Number(values.port);
const total = Number(values.count);
const request =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
const sockets: net.Socket[] = [];
let upgraded = 0;

function one(): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (sockets.length % 8)}` }, () =>
      s.write(request),
    );
    s.once('data', (d: Buffer) => {
      if (d.toString('latin1', 0, 12) === 'HTTP/1.1 101') upgraded++;
      resolve();
    });
    s.on('error', () => resolve());
    sockets.push(s);
  });
}

for (let i = 0; i < total; i += 200) await Promise.all(Array.from({ length: Math.min(200, total - i) }, one));
process.stdout.write(`open ${upgraded}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
