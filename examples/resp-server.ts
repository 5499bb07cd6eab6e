/**
 * A small key-value server speaking RESP2, the Redis protocol: `redis-cli -p 6380`, or any Redis
 * client, or `nc 127.0.0.1 6380` with inline commands (`SET k v`, `GET k`).
 *
 *   node dist/examples/resp-server.js [--host 127.0.0.1] [--port 6380] [--workers N]
 *
 * Commands: PING [msg], ECHO msg, SET key value, GET key, DEL key..., EXISTS key..., INCR key,
 * DBSIZE, COMMAND (an empty reply, for redis-cli's start-up), QUIT. Pipelined commands are answered
 * in order, each read's answers in one write. The keyspace lives in the worker's memory: with
 * `--workers N` each worker has its own (the default, 0, serves everything in this process).
 * A protocol error is answered with `-ERR Protocol error: …` and the connection closes, as Redis
 * does; an unknown command or a wrong number of arguments gets an error reply and the connection
 * goes on.
 */
import {
  ChannelInboundHandler,
  type HandlerContext,
  Pipeline,
  RespDecoder,
  RespEncoder,
  RespError,
  RespProtocolError,
  RespSimpleString,
  type RespValue,
  TooLongFrameError,
} from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';

const USAGE = `
usage: node dist/examples/resp-server.js [--host 127.0.0.1] [--port 6380] [--workers N]

A key-value server speaking RESP2 (redis-cli -p 6380): PING, ECHO, SET, GET, DEL, EXISTS, INCR,
DBSIZE, COMMAND, QUIT. --workers 0 (default) serves in this process with one keyspace.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '6380', integer: [0, 65535] },
  workers: { type: 'string', default: '0', integer: [0, 1024] },
});

/** This worker's keyspace: values as the bytes the client sent. */
const store = new Map<string, Buffer>();
const OK = new RespSimpleString('OK');
const PONG = new RespSimpleString('PONG');

function arity(name: string): RespError {
  return new RespError(`ERR wrong number of arguments for '${name}' command`);
}

/** Runs command `name` (lower case) with `args` (`args[0]` is the name as sent) and returns its reply. */
function run(name: string, args: Buffer[]): RespValue {
  const key = args[1]?.toString('latin1');
  switch (name) {
    case 'ping':
      if (args.length > 2) return arity(name);
      return args.length === 2 ? (args[1] as Buffer) : PONG;
    case 'echo':
      return args.length === 2 ? (args[1] as Buffer) : arity(name);
    case 'set':
      if (args.length !== 3) return arity(name);
      store.set(key as string, args[2] as Buffer);
      return OK;
    case 'get':
      return args.length === 2 ? (store.get(key as string) ?? null) : arity(name);
    case 'del':
    case 'exists': {
      if (args.length < 2) return arity(name);
      let n = 0;
      for (const k of args.slice(1)) {
        const s = k.toString('latin1');
        if (store.has(s)) {
          n++;
          if (name === 'del') store.delete(s);
        }
      }
      return n;
    }
    case 'incr': {
      if (args.length !== 2) return arity(name);
      const old = store.get(key as string);
      const text = old === undefined ? '0' : old.toString('latin1');
      if (!/^-?\d{1,19}$/.test(text) || !Number.isSafeInteger(Number(text))) {
        return new RespError('ERR value is not an integer or out of range');
      }
      const n = Number(text) + 1;
      store.set(key as string, Buffer.from(String(n)));
      return n;
    }
    case 'dbsize':
      return args.length === 1 ? store.size : arity(name);
    case 'command':
      return [];
    default:
      return new RespError(`ERR unknown command '${name}'`);
  }
}

class Commands extends ChannelInboundHandler {
  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (!Array.isArray(msg) || msg.length === 0 || !msg.every((a) => Buffer.isBuffer(a))) {
      ctx.write(new RespError('ERR Protocol error: expected an array of bulk strings'));
      return;
    }
    const args = msg as Buffer[];
    const name = (args[0] as Buffer).toString('latin1').toLowerCase();
    if (name === 'quit') {
      ctx.write(OK);
      ctx.close(); // flushes the answers before it first
      return;
    }
    ctx.write(run(name, args));
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    if (error instanceof RespProtocolError || error instanceof TooLongFrameError) {
      // The stream is out of step: say why, and close (the decoder reads nothing more).
      ctx.write(new RespError(`ERR Protocol error: ${error.message}`));
      ctx.close();
      return;
    }
    ctx.fireError(error);
  }
}

// Answers written while a read is handled leave together when it completes: one write for all
// the pipelined commands of a read, without a flush per reply.
class RespPipeline extends Pipeline {
  override initChannel(): void {
    this.addLast('resp', new RespDecoder()).addLast('encoder', new RespEncoder()).addLast('commands', new Commands());
  }
}

const server = await listenOrExit('resp-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  pipeline: RespPipeline,
});
announce(server);
