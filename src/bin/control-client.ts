/**
 * The client side of the control protocol (src/ops/protocol.ts), for the `multireactor` command
 * line and the tests: one request on a Unix socket connection, its answer, and — for `stop` — the
 * end of the connection, which the master closes once it has stopped.
 *
 * node:net, as any outside program talking to a master would: this runs in the operator's shell,
 * not in a server.
 */
import net from 'node:net';
import { CONTROL_PROTOCOL_VERSION, type ControlCommand, type ControlReply } from '../ops/protocol.js';

/** The master could not be reached at all (no socket, nobody listening, permission denied). */
export class UnreachableError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export interface ControlCallOptions {
  /** `stop`: the drain deadline in ms. */
  readonly timeoutMs?: number;
  /** Give up waiting for the answer after this long (ms); undefined waits as long as it takes. */
  readonly waitMs?: number;
  /** After the answer, wait (at most this long, ms) until the master closes the connection. */
  readonly awaitCloseMs?: number;
}

/** Sends one command and resolves with its answer (`ok` or not); rejects when it cannot talk to the master. */
export function controlCall(path: string, cmd: ControlCommand, o: ControlCallOptions = {}): Promise<ControlReply> {
  return new Promise<ControlReply>((resolve, reject) => {
    const socket = net.connect({ path });
    const id = 1;
    let buffered = '';
    let answer: ControlReply | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(answer as ControlReply);
    };
    if (o.waitMs !== undefined) {
      timer = setTimeout(() => finish(new Error(`no answer to ${cmd} from ${path} within ${o.waitMs} ms`)), o.waitMs);
    }
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(
        `${JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, id, cmd, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) })}\n`,
      );
    });
    socket.on('data', (chunk: string) => {
      if (answer !== undefined) return;
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let reply: ControlReply;
        try {
          reply = JSON.parse(line) as ControlReply;
        } catch {
          finish(new Error(`${path} answered something that is not JSON: ${line.slice(0, 200)}`));
          return;
        }
        if (reply.id !== id && reply.id !== null) continue;
        answer = reply;
        if (o.awaitCloseMs === undefined || !reply.ok) {
          finish(undefined);
          return;
        }
        clearTimeout(timer);
        timer = setTimeout(() => finish(undefined), o.awaitCloseMs);
        return;
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (answer !== undefined) {
        finish(undefined);
        return;
      }
      const why =
        err.code === 'ENOENT'
          ? 'no such socket (is the master running, and is this its control socket?)'
          : err.code === 'ECONNREFUSED'
            ? 'nothing listens on it (a stale socket: the master is gone)'
            : err.code === 'EACCES'
              ? 'permission denied (the socket file mode decides who may talk to the master)'
              : err.message;
      finish(new UnreachableError(`cannot reach the master at ${path}: ${why}`, err.code));
    });
    socket.on('close', () => {
      if (answer !== undefined) finish(undefined);
      else finish(new Error(`the master closed ${path} without answering ${cmd}`));
    });
  });
}
