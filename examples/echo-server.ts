/**
 * The echo server: every frame goes back as it came.
 *
 *   node dist/examples/echo-server.js --host 127.0.0.1 --port 0 --workers N --balance reuseport|shared \
 *        --poller epoll|poll --trigger level|edge --framing length|line|json \
 *        [--reader-idle SECONDS] [--keepalive-idle SECONDS --keepalive-interval SECONDS --keepalive-count N] \
 *        [--user-timeout MS] [--decoder-errors continue|close] [--log-closes] \
 *        [--tls-cert FILE --tls-key FILE]
 *
 * With --tls-cert and --tls-key the frames travel over TLS (docs/tls.md). Framings: `length` — a 2-byte big-endian length and that many bytes; `line` — lines ending in
 * \n or \r\n (up to 64 KiB); `json` — one JSON value per line, re-encoded on the way back.
 * `--reader-idle 1` closes a connection that sends nothing for a second (reason idle-timeout);
 * `--keepalive-idle 30` arms the kernel's keepalive timer on every accepted socket (`ss -tno`).
 *
 * `--workers 0` (default) serves in this process; `--workers N` makes it a master with N workers
 * (SIGUSR2 or SIGHUP reloads them, SIGTERM/SIGINT stop, SIGQUIT stops without a deadline).
 * Prints `listening on HOST:PORT` once it accepts connections — with workers, once all of them
 * are ready; stops cleanly on SIGTERM/SIGINT.
 */
import {
  type ChannelHandler,
  ChannelInboundHandler,
  type CloseReason,
  type HandlerContext,
  HeartbeatHandler,
  JsonLinesDecoder,
  JsonLinesEncoder,
  LengthFieldFrameDecoder,
  LineFrameDecoder,
  Pipeline,
  type ServerOptions,
} from '../src/index.js';
import { cli, listenOrExit } from './cli.js';
import { tlsOptions } from './tls-files.js';

const USAGE = `
usage: node dist/examples/echo-server.js [--host 127.0.0.1] [--port 7000] [--workers N]
         [--balance reuseport|shared] [--poller epoll|poll] [--trigger level|edge]
         [--framing length|line|json] [--reader-idle SECONDS]
         [--keepalive-idle SECONDS [--keepalive-interval SECONDS] [--keepalive-count N]]
         [--user-timeout MS] [--decoder-errors continue|close] [--log-closes]
         [--tls-cert FILE --tls-key FILE]

Every frame goes back as it came (over TLS with --tls-cert/--tls-key, PEM files). Framings: length (2-byte big-endian length, then the bytes),
line (\\n or \\r\\n, up to 64 KiB), json (one JSON value per line). --workers 0 (default) serves
in this process; N makes it a master with N workers (SIGUSR2/SIGHUP reload, SIGTERM/SIGINT stop).
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '7000', integer: [0, 65535] },
  workers: { type: 'string', default: '0', integer: [0, 1024] },
  balance: { type: 'string', default: 'reuseport', choices: ['reuseport', 'shared'] },
  poller: { type: 'string', default: 'epoll', choices: ['epoll', 'poll'] },
  trigger: { type: 'string', default: 'level', choices: ['level', 'edge'] },
  framing: { type: 'string', default: 'length', choices: ['length', 'line', 'json'] },
  'reader-idle': { type: 'string', number: [0.01, 86_400] },
  // tcp(7): TCP_KEEPIDLE and TCP_KEEPINTVL up to 32767 s, TCP_KEEPCNT up to 127.
  'keepalive-idle': { type: 'string', integer: [1, 32_767] },
  'keepalive-interval': { type: 'string', default: '5', integer: [1, 32_767] },
  'keepalive-count': { type: 'string', default: '4', integer: [1, 127] },
  'user-timeout': { type: 'string', integer: [1, 0x7fffffff] },
  'decoder-errors': { type: 'string', default: 'continue', choices: ['continue', 'close'] },
  'log-closes': { type: 'boolean', default: false },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});

/** Writes every message back; the connection flushes when the read completes. */
class EchoHandler extends ChannelInboundHandler {
  override onRead(ctx: HandlerContext, msg: unknown): void {
    ctx.write(msg);
  }
}

/** Prints why each connection closed (for --log-closes). */
class CloseLogger extends ChannelInboundHandler {
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    console.error(`connection ${ctx.channel.id} closed: ${reason}`);
    ctx.fireInactive(reason);
  }
}

function framing(kind: 'length' | 'line' | 'json'): ChannelHandler[] {
  switch (kind) {
    case 'length':
      // Keep the header on the frame (no strip): the echo is the frame as it came.
      return [new LengthFieldFrameDecoder({ lengthFieldLength: 2, maxFrameLength: 2 + 0xffff })];
    case 'line':
      return [new LineFrameDecoder({ maxLength: 64 * 1024, stripDelimiter: false })];
    case 'json':
      return [new JsonLinesDecoder(), new JsonLinesEncoder()];
  }
}

// Built once: every connection's handler takes the same, already checked, options (a bad one
// would fail listen(), which builds one pipeline before it binds).
const idle = values['reader-idle'] === undefined ? undefined : { timeout: values['reader-idle'] * 1000 };

class EchoPipeline extends Pipeline {
  override initChannel(): void {
    for (const h of framing(values.framing)) this.addLast(h);
    if (idle !== undefined) this.addLast('idle', new HeartbeatHandler(idle));
    if (values['log-closes']) this.addLast('log', new CloseLogger());
    this.addLast('echo', new EchoHandler());
  }
}

const options: ServerOptions = {
  host: values.host,
  port: values.port,
  workers: values.workers,
  balance: values.balance,
  poller: values.poller,
  trigger: values.trigger,
  decoderErrors: values['decoder-errors'],
  pipeline: EchoPipeline,
  ...tlsOptions(values['tls-cert'], values['tls-key']),
  ...(values['keepalive-idle'] !== undefined
    ? {
        keepAlive: {
          idle: values['keepalive-idle'],
          interval: values['keepalive-interval'],
          count: values['keepalive-count'],
        },
      }
    : {}),
  ...(values['user-timeout'] !== undefined ? { userTimeout: values['user-timeout'] } : {}),
};
const server = await listenOrExit('echo-server', options);

// Workers run this script too; the master (or a single process) speaks for the server.
if (server.role !== 'worker') {
  const { address, family, port } = server.address();
  console.log(`listening on ${family === 'IPv6' ? `[${address}]` : address}:${port}`);
}

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`${signal}: closing (${server.connections} connections open)`);
  server.close().then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      console.error('close failed', err);
      process.exitCode = 1;
    },
  );
};
// A master and its workers handle signals themselves (docs/master.md).
if (server.role === 'single') {
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
