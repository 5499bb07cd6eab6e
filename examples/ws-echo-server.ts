/**
 * The WebSocket echo server: every message goes back as it came (text as text, binary as binary),
 * on any path — the server the Autobahn-case runner and the benchmarks talk to.
 *
 *   node dist/examples/ws-echo-server.js --host 127.0.0.1 --port 0 --workers N [--deflate]
 *        [--max-message BYTES] [--heartbeat MS] [--idle-timeout MS] [--log-closes]
 *        [--tls-cert FILE --tls-key FILE]
 *
 * `--deflate` enables permessage-deflate (no context takeover either way, the default; add
 * `--context-takeover` to keep context per connection). `--http` serves through an HTTP server
 * instead, the WebSocket as a route taking the connection from HTTP (`websocketRoute`). `--workers 0` (default) serves in this
 * process; `--workers N` makes it a master with N workers (SIGUSR2 reloads them: open WebSockets
 * get a 1001 close). With --tls-cert and --tls-key (PEM files, read anew by every worker: a reload
 * rotates them) it serves wss:// — TLS first, ALPN http/1.1 for the opening handshake
 * (docs/tls.md, docs/websocket.md). Prints `listening on HOST:PORT` once it accepts connections.
 */
import { http, type WebSocket, type WebSocketServerOptions, websocket, websocketRoute } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';
import { tlsOptions } from './tls-files.js';

const USAGE = `
usage: node dist/examples/ws-echo-server.js [--host 127.0.0.1] [--port 9001] [--workers N]
         [--deflate [--context-takeover]] [--max-message BYTES] [--heartbeat MS] [--idle-timeout MS]
         [--log-closes] [--http] [--tls-cert FILE --tls-key FILE]

Echoes every WebSocket message on any path (--http: through an HTTP server's WebSocket route). --workers 0 (default) serves in this process; N makes
it a master with N workers (SIGUSR2/SIGHUP reload, SIGTERM/SIGINT stop). --tls-cert/--tls-key
(PEM files) serve wss:// instead of ws://.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '9001', integer: [0, 65535] },
  workers: { type: 'string', default: '0', integer: [0, 1024] },
  deflate: { type: 'boolean', default: false },
  'context-takeover': { type: 'boolean', default: false },
  'max-message': { type: 'string', default: String(16 * 1024 * 1024), integer: [1, 2 ** 40] },
  heartbeat: { type: 'string', integer: [1, 2 ** 31 - 1] },
  'idle-timeout': { type: 'string', integer: [1, 2 ** 31 - 1] },
  'log-closes': { type: 'boolean', default: false },
  http: { type: 'boolean', default: false },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});

const maxMessageSize = values['max-message'];
const options: WebSocketServerOptions = {
  maxMessageSize,
  maxPayload: maxMessageSize,
  ...(values.deflate
    ? {
        perMessageDeflate: values['context-takeover']
          ? { serverNoContextTakeover: false, clientNoContextTakeover: false }
          : true,
      }
    : {}),
  ...(values.heartbeat !== undefined ? { heartbeat: { interval: values.heartbeat } } : {}),
  ...(values['idle-timeout'] !== undefined ? { idleTimeout: values['idle-timeout'] } : {}),
};
const logCloses = values['log-closes'];

let pipeline: ReturnType<typeof websocket>;
try {
  const onConnection = (ws: WebSocket) => {
    // One function object for every connection: `this` is the WebSocket.
    ws.onMessage = function (data, isBinary) {
      this.send(data, isBinary);
    };
    if (logCloses) {
      ws.onClose = function (code, reason) {
        console.error(`websocket ${this.channel.id} closed: ${code} ${reason}`);
      };
    }
  };
  if (values.http) {
    const route = websocketRoute(onConnection, options);
    pipeline = http((req, res) => route(req, res));
  } else pipeline = websocket(onConnection, options);
} catch (err) {
  process.stderr.write(`ws-echo-server: ${(err as Error).message}\n`);
  process.exit(2);
}

const server = await listenOrExit('ws-echo-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  // The opening handshake is HTTP/1.1 (RFC 6455 §4.1): ALPN says so to clients that ask (browsers do).
  ...tlsOptions(values['tls-cert'], values['tls-key'], ['http/1.1']),
  pipeline,
});
announce(server);
