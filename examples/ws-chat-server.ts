/**
 * A chat: an HTTP server whose page at `/` (plain HTML and JavaScript, examples/ws-chat-page.ts)
 * talks to a WebSocket route at `/ws`. Clients join a room (`/ws?room=NAME&name=WHO`, room
 * `lobby` when none is given); a text message `{"type":"message","text":…}` from one client reaches
 * every client of the room as `{"type":"message","room":…,"from":…,"text":…}`, and joins and leaves
 * are announced. Heartbeats find dead clients (a ping after 15 s of silence, closed after two
 * unanswered), and a reload (SIGUSR2) tells every open WebSocket 1001: the page reconnects by itself.
 *
 *   node dist/examples/ws-chat-server.js --host 127.0.0.1 --port 8080 [--workers N] [--redis URL] [--heartbeat MS]
 *        [--admin-port P] [--tls-cert FILE --tls-key FILE]
 *
 * A room is a pub/sub topic (`room:NAME`, docs/pubsub.md): every worker's clients of a room hear
 * each other — the workers relay through their master — and with `--redis redis://HOST:PORT`
 * every server sharing that Redis does too (two servers behind a load balancer). If Redis
 * restarts, the servers reconnect and resubscribe by themselves; what was published meanwhile is
 * lost (Redis pub/sub is at most once) and counted. A new client is told which process serves it
 * (`{"type":"hello","pid":…}`), and `GET /stats` answers the serving process's pub/sub counters;
 * with `--admin-port` the master serves every worker's at `/metrics` (docs/operations.md).
 * With `--tls-cert` and `--tls-key` (PEM files) it serves https:// and wss:// on the one port (ALPN
 * http/1.1): the page, loaded over https:, opens its WebSocket with wss: (a browser refuses ws:
 * from a secure page as mixed content). Prints `listening on HOST:PORT`.
 */
import { http, PubSub, type WebSocket, websocketRoute } from '../src/index.js';
import { announce, cli, listenOrExit, usageError } from './cli.js';
import { tlsOptions } from './tls-files.js';
import { CHAT_PAGE } from './ws-chat-page.js';

const USAGE = `
usage: node dist/examples/ws-chat-server.js [--host 127.0.0.1] [--port 8080] [--workers N] [--redis URL] [--heartbeat MS]
       [--admin-port P] [--tls-cert FILE --tls-key FILE]

Serves a chat page at / and the chat itself at /ws (rooms: /ws?room=NAME). --workers 0 serves in
this process; N makes it a master with N workers (default: one per CPU; SIGUSR2/SIGHUP reload,
SIGTERM/SIGINT stop), whose clients meet through the master. --redis redis://[user:password@]host:port[/db]
joins the rooms of every server using that Redis. GET /stats: this process's pub/sub counters.
--admin-port P (with workers): the master's admin listener on HOST:P, /metrics with every worker's
pub/sub counters, /healthz, /readyz (0: any free port, logged). --tls-cert/--tls-key (PEM files):
serve the page over https:// and the chat over wss://.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8080', integer: [0, 65535] },
  workers: { type: 'string', integer: [0, 1024] },
  redis: { type: 'string' },
  heartbeat: { type: 'string', default: '15000', integer: [1, 2 ** 31 - 1] },
  'admin-port': { type: 'string', integer: [0, 65535] },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});
// Read here, in every process (each worker as it starts: a reload serves the files as they are then).
const tls = tlsOptions(values['tls-cert'], values['tls-key'], ['http/1.1']);
/** The scheme of the page's own origin (RFC 6454): what a browser sends as `Origin`. */
const pageScheme = tls.tls !== undefined ? 'https' : 'http';

// Made in the master too (the same script), where nothing uses it: it connects on first use only.
let pubsub: PubSub;
try {
  pubsub = new PubSub(values.redis !== undefined ? { redis: values.redis } : {});
} catch (err) {
  usageError(`--redis: ${(err as Error).message}`);
}

interface Member {
  readonly room: string;
  readonly name: string;
}

const page = Buffer.from(CHAT_PAGE);
const hello = JSON.stringify({ type: 'hello', pid: process.pid });

/** A name or room from the query: printable, short. */
function clean(value: string | null, fallback: string, max: number): string {
  const v = (value ?? '').replace(/[^\p{L}\p{N}_.-]/gu, '').slice(0, max);
  return v === '' ? fallback : v;
}

const chat = websocketRoute(
  (ws, req) => {
    const query = new URLSearchParams(req.queryString);
    const member: Member = { room: clean(query.get('room'), 'lobby', 64), name: clean(query.get('name'), 'guest', 32) };
    const topic = `room:${member.room}`;
    pubsub.publish(topic, JSON.stringify({ type: 'joined', room: member.room, name: member.name }));
    pubsub.join(topic, ws);
    ws.send(hello);
    ws.data = member;
    ws.onMessage = onMessage;
    ws.onClose = onClose;
  },
  {
    heartbeat: { interval: values.heartbeat, missed: 2 },
    maxMessageSize: 64 * 1024,
    // The page is served from this host: a page of another site may not use the chat.
    origin: (origin, req) => origin === undefined || origin === `${pageScheme}://${req.headers.get('host') ?? ''}`,
  },
);

// One function object for every connection: `this` is the WebSocket.
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  if (isBinary) return;
  let m: { type?: unknown; text?: unknown };
  try {
    m = JSON.parse(data.toString()) as typeof m;
  } catch {
    return;
  }
  if (m === null || m.type !== 'message' || typeof m.text !== 'string') return;
  const { room, name } = this.data as Member;
  pubsub.publish(`room:${room}`, JSON.stringify({ type: 'message', room, from: name, text: m.text.slice(0, 4000) }));
}

function onClose(this: WebSocket): void {
  // The WebSocket has already left its topic (the last one out of a worker unsubscribes it).
  const { room, name } = this.data as Member;
  pubsub.publish(`room:${room}`, JSON.stringify({ type: 'left', room, name }));
}

const server = await listenOrExit('ws-chat-server', {
  host: values.host,
  port: values.port,
  ...(values.workers !== undefined ? { workers: values.workers } : {}),
  ...(values['admin-port'] !== undefined ? { admin: { host: values.host, port: values['admin-port'] } } : {}),
  ...tls,
  pipeline: http((req, res) => {
    if (req.path === '/ws') return chat(req, res);
    if (req.path === '/stats' && req.method === 'GET') {
      res
        .setHeader('Content-Type', 'application/json')
        .setHeader('Cache-Control', 'no-store')
        .end(JSON.stringify({ pid: process.pid, pubsub: pubsub.stats() }));
      return;
    }
    if (req.path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.setHeader('Content-Type', 'text/html; charset=utf-8').setHeader('Cache-Control', 'no-store').end(page);
      return;
    }
    res.writeHead(404).setHeader('Content-Type', 'text/plain').end('not found\n');
  }),
});
announce(server);
