/**
 * Runs inside a private network namespace (see ../kernel-timeout.test.ts): serves one loopback
 * connection, then takes the namespace's `lo` down so that nothing the server sends is ever
 * acknowledged, and reports how the connection ended as one JSON line on stdout.
 *
 *   ip netns exec NS node kernel-timeout.js --mode user-timeout|keepalive|none
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { parseArgs } from 'node:util';
import {
  ChannelInboundHandler,
  type CloseReason,
  type HandlerContext,
  Pipeline,
  Server,
  type ServerOptions,
  silentLogger,
} from '../../../src/index.js';

const { values } = parseArgs({
  options: { mode: { type: 'string', default: 'none' }, wait: { type: 'string', default: '10000' } },
});
const mode = values.mode;
const options: Partial<ServerOptions> =
  mode === 'user-timeout'
    ? { userTimeout: 1000 }
    : mode === 'keepalive'
      ? { keepAlive: { idle: 1, interval: 1, count: 2 } }
      : {};

let cutAt = 0;
let pusher: NodeJS.Timeout | undefined;

function report(result: Record<string, unknown>): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

class Watch extends ChannelInboundHandler {
  override onActive(ctx: HandlerContext): void {
    // With a user timeout the kernel only gives up on data it sent and never saw acknowledged:
    // keep sending. Keepalive needs silence instead.
    if (mode === 'user-timeout') pusher = setInterval(() => ctx.writeAndFlush(Buffer.alloc(1000, 1)), 50);
    ctx.fireActive();
  }
  override onInactive(_ctx: HandlerContext, reason: CloseReason): void {
    clearInterval(pusher);
    report({ reason, afterMs: Date.now() - cutAt });
  }
}

const server = await Server.listen({
  workers: 0,
  host: '127.0.0.1',
  port: 0,
  logger: silentLogger,
  pipeline: () => new Pipeline().addLast(new Watch()),
  ...options,
});
const client = net.connect(server.address().port, '127.0.0.1');
client.on('error', () => {});
client.on('connect', () => {
  setTimeout(() => {
    client.pause();
    execFileSync('ip', ['link', 'set', 'lo', 'down']);
    cutAt = Date.now();
  }, 200);
});
setTimeout(() => report({ reason: 'still-open', afterMs: Date.now() - cutAt }), Number(values.wait));
