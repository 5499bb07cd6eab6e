/**
 * A chat: an HTTP server whose page at `/` (plain HTML and JavaScript, examples/ws-chat-page.ts)
 * talks to a WebSocket route at `/ws`. Clients join a room (`/ws?room=NAME&name=WHO`, room
 * `lobby` when none is given); a text message `{"type":"message","text":…}` from one client reaches
 * every client of the room as `{"type":"message","room":…,"from":…,"text":…}`, and joins and leaves
 * are announced. Heartbeats find dead clients (a ping after 15 s of silence, closed after two
 * unanswered), and a reload (SIGUSR2) tells every open WebSocket 1001: the page reconnects by itself.
 *
 *   node dist/examples/ws-chat-server.js --host 127.0.0.1 --port 8080 [--workers 1] [--heartbeat MS]
 *
 * Rooms live in a worker: with `--workers N` above 1, clients of one room meet only if they reach
 * the same worker (a relay between workers — Redis pub/sub, say — would join them). The default is
 * one worker behind a master, which keeps reloads working. Prints `listening on HOST:PORT`.
 */
import { http, type WebSocket, WebSocketGroup, websocketRoute } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';
import { CHAT_PAGE } from './ws-chat-page.js';

const USAGE = `
usage: node dist/examples/ws-chat-server.js [--host 127.0.0.1] [--port 8080] [--workers 1] [--heartbeat MS]

Serves a chat page at / and the chat itself at /ws (rooms: /ws?room=NAME). --workers 0 serves in
this process; N (default 1) makes it a master with N workers (SIGUSR2/SIGHUP reload, SIGTERM/SIGINT stop).
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8080', integer: [0, 65535] },
  workers: { type: 'string', default: '1', integer: [0, 1024] },
  heartbeat: { type: 'string', default: '15000', integer: [1, 2 ** 31 - 1] },
});

interface Member {
  readonly room: string;
  readonly name: string;
}

const rooms = new Map<string, WebSocketGroup>();
const page = Buffer.from(CHAT_PAGE);

/** A name or room from the query: printable, short. */
function clean(value: string | null, fallback: string, max: number): string {
  const v = (value ?? '').replace(/[^\p{L}\p{N}_.-]/gu, '').slice(0, max);
  return v === '' ? fallback : v;
}

const chat = websocketRoute(
  (ws, req) => {
    const query = new URLSearchParams(req.queryString);
    const member: Member = { room: clean(query.get('room'), 'lobby', 64), name: clean(query.get('name'), 'guest', 32) };
    let room = rooms.get(member.room);
    if (room === undefined) {
      room = new WebSocketGroup();
      rooms.set(member.room, room);
    }
    room.publish(JSON.stringify({ type: 'joined', room: member.room, name: member.name }));
    room.join(ws);
    ws.data = member;
    ws.onMessage = onMessage;
    ws.onClose = onClose;
  },
  {
    heartbeat: { interval: values.heartbeat, missed: 2 },
    maxMessageSize: 64 * 1024,
    // The page is served from this host: a page of another site may not use the chat.
    origin: (origin, req) => origin === undefined || origin === `http://${req.headers.get('host') ?? ''}`,
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
  rooms.get(room)?.publish(JSON.stringify({ type: 'message', room, from: name, text: m.text.slice(0, 4000) }));
}

function onClose(this: WebSocket): void {
  const { room, name } = this.data as Member;
  const group = rooms.get(room);
  if (group === undefined) return;
  // The WebSocket has already left its groups.
  if (group.size === 0) rooms.delete(room);
  else group.publish(JSON.stringify({ type: 'left', room, name }));
}

const server = await listenOrExit('ws-chat-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  pipeline: http((req, res) => {
    if (req.path === '/ws') return chat(req, res);
    if (req.path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.setHeader('Content-Type', 'text/html; charset=utf-8').setHeader('Cache-Control', 'no-store').end(page);
      return;
    }
    res.writeHead(404).setHeader('Content-Type', 'text/plain').end('not found\n');
  }),
});
announce(server);
