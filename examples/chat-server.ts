/**
 * A line-based chat room: every line a client sends goes to the other clients of the same worker.
 * A small real program on the pipeline: line framing, strings, heartbeats, backpressure.
 *
 *   node dist/examples/chat-server.js --port 7100 [--ping-interval SECONDS] [--missed N]
 *                                     [--workers N --balance reuseport|shared]
 *   nc 127.0.0.1 7100
 *
 * Commands: `/nick NAME`, `/who`, `/quit`. After `--ping-interval` seconds of silence (default
 * 30) the server sends `:ping`; a client answers `:pong` (or says anything); after `--missed`
 * unanswered pings (default 2) it is disconnected. A client that does not read its messages is
 * skipped (its queue is over the high watermark) instead of slowing the room down.
 */
import {
  type Channel,
  ChannelInboundHandler,
  type CloseReason,
  type HandlerContext,
  HeartbeatHandler,
  LineEncoder,
  LineFrameDecoder,
  Pipeline,
  StringDecoder,
} from '../src/index.js';
import { cli, listenOrExit } from './cli.js';

const USAGE = `
usage: node dist/examples/chat-server.js [--host 127.0.0.1] [--port 7100] [--ping-interval SECONDS]
         [--missed N] [--workers N] [--balance reuseport|shared]

A line-based chat room (nc 127.0.0.1 7100): /nick NAME, /who, /quit. Silent clients get ':ping'
and are dropped after --missed unanswered pings.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '7100', integer: [0, 65535] },
  'ping-interval': { type: 'string', default: '30', number: [0.01, 86_400] },
  missed: { type: 'string', default: '2', integer: [0, 1000] },
  // One room per worker: 0 (default) keeps everybody in one room in this process.
  workers: { type: 'string', default: '0', integer: [0, 1024] },
  balance: { type: 'string', default: 'reuseport', choices: ['reuseport', 'shared'] },
});

// Built once: every connection's heartbeat takes the same, already checked, options (a bad one
// would fail listen(), which builds one pipeline before it binds).
const HEARTBEAT = {
  interval: values['ping-interval'] * 1000,
  missed: values.missed,
  ping: () => ':ping',
  isPong: (m: unknown) => m === ':pong',
};

/** The room of this worker: every open channel and its nickname. */
const room = new Map<Channel, string>();
let skipped = 0;

function broadcast(from: Channel | undefined, text: string): void {
  for (const [ch] of room) {
    if (ch === from) continue;
    // A reader that fell behind gets skipped rather than buffered without bound.
    if (!ch.isWritable) {
      skipped++;
      continue;
    }
    ch.writeAndFlush(text);
  }
}

class ChatHandler extends ChannelInboundHandler<string> {
  override onActive(ctx: HandlerContext): void {
    const nick = `guest${ctx.channel.id}`;
    room.set(ctx.channel, nick);
    ctx.writeAndFlush(`welcome, ${nick}: /nick NAME, /who, /quit`);
    broadcast(ctx.channel, `* ${nick} joined`);
  }

  override onRead(ctx: HandlerContext, line: string): void {
    const me = room.get(ctx.channel) ?? '?';
    if (line.startsWith('/nick ')) {
      const nick = line.slice(6).trim();
      if (!/^[\w-]{1,20}$/.test(nick) || [...room.values()].includes(nick)) {
        ctx.write(`! nick must be 1-20 letters, digits, _ or -, and free`);
        return;
      }
      room.set(ctx.channel, nick);
      broadcast(undefined, `* ${me} is now ${nick}`);
    } else if (line === '/who') {
      ctx.write(`* here: ${[...room.values()].join(', ')}`);
    } else if (line === '/quit') {
      ctx.write('* bye');
      ctx.close();
    } else if (line.length > 0) {
      broadcast(ctx.channel, `${me}: ${line}`);
    }
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    const nick = room.get(ctx.channel);
    room.delete(ctx.channel);
    if (nick !== undefined) broadcast(undefined, `* ${nick} left (${reason})`);
    ctx.fireInactive(reason);
  }
}

class ChatPipeline extends Pipeline {
  override initChannel(): void {
    this.addLast('lines', new LineFrameDecoder({ maxLength: 4096 }))
      .addLast('text', new StringDecoder())
      .addLast('encoder', new LineEncoder())
      .addLast('heartbeat', new HeartbeatHandler(HEARTBEAT))
      .addLast('chat', new ChatHandler());
  }
}

const server = await listenOrExit('chat-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  balance: values.balance,
  pipeline: ChatPipeline,
});
if (server.role !== 'worker') {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
}

if (server.role === 'single') {
  const stop = () => {
    broadcast(undefined, '* the server is shutting down');
    if (skipped > 0) console.error(`${skipped} messages skipped for slow readers`);
    void server.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
