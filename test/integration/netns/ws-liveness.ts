/**
 * Runs inside a private network namespace (see ../ws-liveness.test.ts): a WebSocket server with a
 * heartbeat and kernel detectors as asked, one `ws` client that completes the handshake and
 * exchanges a message; then the namespace's `lo` goes down — the client is now a dead peer that
 * neither answers nor resets — and the script reports, as one JSON line, how the server's
 * WebSocket ended (`onClose` code and reason) and after how long.
 *
 *   ip netns exec NS node ws-liveness.js --heartbeat MS --missed N [--keepalive] [--user-timeout MS]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import WsClient from 'ws';
import { Server, type ServerOptions, silentLogger, websocket } from '../../../src/index.js';

const { values } = parseArgs({
  options: {
    heartbeat: { type: 'string', default: '0' },
    missed: { type: 'string', default: '1' },
    keepalive: { type: 'boolean', default: false },
    'user-timeout': { type: 'string' },
    wait: { type: 'string', default: '15000' },
  },
});

let cutAt = 0;
function report(result: Record<string, unknown>): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const heartbeat = Number(values.heartbeat);
const options: Partial<ServerOptions> = {
  ...(values.keepalive ? { keepAlive: { idle: 1, interval: 1, count: 2 } } : {}),
  ...(values['user-timeout'] !== undefined ? { userTimeout: Number(values['user-timeout']) } : {}),
};
const server = await Server.listen({
  workers: 0,
  host: '127.0.0.1',
  port: 0,
  logger: silentLogger,
  ...options,
  pipeline: websocket(
    (ws) => {
      ws.onMessage = (data, isBinary) => {
        ws.send(data, isBinary);
      };
      ws.onClose = (code, reason) => report({ code, reason, afterMs: Date.now() - cutAt });
    },
    heartbeat > 0 ? { heartbeat: { interval: heartbeat, missed: Number(values.missed) } } : {},
  ),
});
const client = new WsClient(`ws://127.0.0.1:${server.address().port}/`);
client.on('error', () => {});
client.on('open', () => client.send('hello'));
client.on('message', () => {
  // The client goes silent and the network goes away: no FIN, no RST, no pong. After a moment, so
  // that the echo is acknowledged: with data in flight the kernel retransmits instead of probing.
  (client as unknown as { _socket: { pause(): void } })._socket.pause();
  setTimeout(() => {
    execFileSync('ip', ['link', 'set', 'lo', 'down']);
    cutAt = Date.now();
  }, 300);
});
setTimeout(() => report({ code: 0, reason: 'still-open', afterMs: Date.now() - cutAt }), Number(values.wait));
